"""Persistence: every fitted estimator of the registry round-trips through pickle
and skops.io with identical outputs, and its persisted state is plain data."""

# SPDX-License-Identifier: BSD-3-Clause

import numbers
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import KNeighborsTransformer

from skattn import NadarayaWatsonRegressor

from ._instances import instances

sio = pytest.importorskip("skops.io")

ESTIMATORS = instances() + [
    NadarayaWatsonRegressor(n_neighbors=KNeighborsTransformer(n_neighbors=6))
]


def _fitted(estimator, rng):
    X = rng.normal(size=(60, 3))
    y = X[:, 0] + 0.1 * rng.normal(size=60)
    if is_classifier(estimator) or type(estimator).__name__ == "AttentionPooling":
        y = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    return estimator, X


def _outputs(estimator, X):
    if hasattr(estimator, "transform"):
        return [estimator.transform(X)]
    out = [estimator.predict(X), estimator.attention_weights(X)]
    if hasattr(estimator, "predict_proba"):
        out.append(estimator.predict_proba(X))
    return out


def _assert_same(a, b):
    for x, y in zip(a, b, strict=True):
        assert_array_equal(
            x.toarray() if hasattr(x, "toarray") else x,
            y.toarray() if hasattr(y, "toarray") else y,
        )


def _plain(value):
    """Whether a persisted value is plain data: arrays, numbers, strings, None,
    containers of them, or a scikit-learn estimator given as a parameter."""
    if value is None or isinstance(value, (str, bool, numbers.Number, np.ndarray)):
        return not (isinstance(value, np.ndarray) and value.dtype == object)
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return isinstance(value, BaseEstimator) and type(value).__module__.startswith(
        "sklearn."
    )


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
def test_skops_round_trip(estimator, rng):
    estimator, X = _fitted(estimator, rng)
    data = sio.dumps(estimator)
    untrusted = sio.get_untrusted_types(data=data)
    # only the estimator's own class needs trusting: no kernels, heads or trees
    assert untrusted == [f"{type(estimator).__module__}.{type(estimator).__name__}"]
    loaded = sio.loads(data, trusted=untrusted)
    _assert_same(_outputs(estimator, X), _outputs(loaded, X))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
def test_pickled_state_is_plain_data(estimator, rng):
    estimator, X = _fitted(estimator, rng)
    state = estimator.__getstate__()
    bad = {k: type(v).__name__ for k, v in state.items() if not _plain(v)}
    assert not bad
    restored = pickle.loads(pickle.dumps(estimator))
    _assert_same(_outputs(estimator, X), _outputs(restored, X))
