"""The once-per-fit warning of quadratic work at large n, with its advice."""

# SPDX-License-Identifier: BSD-3-Clause

import warnings

import numpy as np
import pytest
from sklearn.exceptions import EfficiencyWarning

import skattn._base
from skattn import (
    AttentionClassifier,
    AttentionPooling,
    AttentionRegressor,
    LocalLinearRegressor,
    NadarayaWatsonClassifier,
    NadarayaWatsonRegressor,
)

CASES = [
    (NadarayaWatsonRegressor(bandwidth="cv"), "NadarayaWatsonRegressor", "subsample"),
    (NadarayaWatsonClassifier(bandwidth="cv"), "NadarayaWatsonClassifier", "rate"),
    (LocalLinearRegressor(), "LocalLinearRegressor", "subsample"),
    (AttentionRegressor(max_iter=2), "AttentionRegressor", "batch_size"),
    (AttentionClassifier(max_iter=2), "AttentionClassifier", "n_candidates"),
    (
        AttentionPooling(passthrough=False, learn_bandwidth=False, bandwidth="cv"),
        "AttentionPooling",
        "fixed bandwidths",
    ),
    (
        AttentionPooling(
            passthrough=False, learn_bandwidth=True, bandwidth_scales=[1.0, 2.0]
        ),
        "AttentionPooling",
        "n_neighbors",
    ),
]


def _efficiency(record):
    return [w for w in record if issubclass(w.category, EfficiencyWarning)]


@pytest.mark.parametrize(("model", "name", "advice"), CASES)
def test_warns_once_above_the_threshold(rng, monkeypatch, model, name, advice):
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    monkeypatch.setattr(skattn._base, "QUADRATIC_WARNING_ROWS", 50)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(X, y)
        if isinstance(model, AttentionPooling):
            model.fit_transform(X, y)
    found = _efficiency(record)
    expected = 2 if isinstance(model, AttentionPooling) else 1  # fit, fit_transform
    assert len(found) == expected
    message = str(found[0].message)
    assert message.startswith(f"{name}:") and "60 rows" in message
    assert "O(n^2)" in message and advice in message and "roughly" in message


@pytest.mark.parametrize(("model", "name", "advice"), CASES)
def test_silent_below_the_threshold(rng, model, name, advice):
    X = rng.normal(size=(60, 2))
    y = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(X, y)
    assert not _efficiency(record)


def test_no_warning_for_the_cheap_paths(rng, monkeypatch):
    X = rng.normal(size=(60, 2))
    y = X[:, 0]
    monkeypatch.setattr(skattn._base, "QUADRATIC_WARNING_ROWS", 50)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        NadarayaWatsonRegressor().fit(X, y)  # Scott: no search
        LocalLinearRegressor(bandwidth=1.0).fit(X, y)
        AttentionRegressor(batch_size=16, max_iter=2, random_state=0).fit(X, y)
        AttentionPooling(passthrough=False, learn_bandwidth=False, bandwidth=1.0).fit(
            X, y
        )
    assert not _efficiency(record)


def test_the_estimate_grows_with_n():
    with pytest.warns(EfficiencyWarning, match="roughly 1 minutes|roughly 60 s"):
        skattn._base.warn_quadratic("E", "task", 20_000, "cv", "advice")
    with pytest.warns(EfficiencyWarning, match="roughly 167 minutes"):
        skattn._base.warn_quadratic("E", "task", 100_000, "local_linear", "advice")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skattn._base.warn_quadratic("E", "task", 19_999, "cv", "advice")
    assert np.isclose(skattn._base._SECONDS_PER_PAIR["cv"] * 20_000**2, 60.0)


def test_a_subsample_bandwidth_carried_at_the_rule_of_thumb_rate():
    # the recipe of the user guide's "Scaling to large data"
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(n_samples=3000, n_features=5, noise=1.0, random_state=0)
    full = NadarayaWatsonRegressor(bandwidth="cv").fit(X, y).bandwidth_
    sub = np.random.default_rng(0).choice(len(X), 500, replace=False)
    h = NadarayaWatsonRegressor(bandwidth="cv").fit(X[sub], y[sub]).bandwidth_
    carried = h * (len(sub) / len(X)) ** (1 / (X.shape[1] + 4))
    assert np.all(np.abs(np.log(carried / full)) < np.log(1.2))
    assert np.abs(np.log(carried / full)).max() < np.abs(np.log(h / full)).min()
