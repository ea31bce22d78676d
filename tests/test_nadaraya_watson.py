# SPDX-License-Identifier: BSD-3-Clause

import pickle
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skattn import NadarayaWatsonRegressor
from skattn._bandwidth import rule_of_thumb
from skattn._kernels import KERNELS
from tests._reference import nadaraya_watson

KERNEL_NAMES = sorted(KERNELS)


def _data(rng, n=50, d=3, m=20):
    X = rng.uniform(-1, 1, size=(n, d))
    y = np.sin(3 * X[:, 0]) + X[:, 1] + 0.1 * rng.normal(size=n)
    Q = rng.uniform(-1, 1, size=(m, d))
    return X, y, Q


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("bandwidth", [1.2, [0.9, 1.5, 2.5]])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_plain_loop(rng, kernel, bandwidth, weighted):
    X, y, Q = _data(rng)
    w = rng.uniform(0.2, 3.0, size=len(y)) if weighted else None
    model = NadarayaWatsonRegressor(kernel=kernel, bandwidth=bandwidth).fit(X, y, w)
    expected, expected_weights = nadaraya_watson(X, y, Q, kernel, bandwidth, w)
    np.testing.assert_allclose(model.predict(Q), expected[:, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        model.attention_weights(Q), expected_weights, rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("rule", ["scott", "silverman"])
def test_rule_of_thumb_bandwidths(rng, rule):
    X, y, Q = _data(rng)
    w = rng.integers(1, 4, size=len(y)).astype(float)
    model = NadarayaWatsonRegressor(bandwidth=rule).fit(X, y, w)
    np.testing.assert_allclose(model.bandwidth_, rule_of_thumb(X, w, rule))
    expected, _ = nadaraya_watson(X, y, Q, "gaussian", model.bandwidth_, w)
    np.testing.assert_allclose(model.predict(Q), expected[:, 0], rtol=1e-10)


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_small_bandwidth_limit_is_nearest_neighbour(rng, kernel):
    X, y, Q = _data(rng)
    model = NadarayaWatsonRegressor(kernel=kernel, bandwidth=1e-6).fit(X, y)
    nearest = np.argmin(((Q[:, None, :] - X[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(model.predict(Q), y[nearest])


@pytest.mark.parametrize("kernel", ["gaussian", "exponential"])
def test_large_bandwidth_limit_is_weighted_mean(rng, kernel):
    X, y, Q = _data(rng)
    w = rng.uniform(0.5, 2.0, size=len(y))
    model = NadarayaWatsonRegressor(kernel=kernel, bandwidth=1e13).fit(X, y, w)
    np.testing.assert_allclose(model.predict(Q), np.average(y, weights=w), rtol=1e-8)


@pytest.mark.parametrize("bandwidth", ["scott", "silverman", "cv", 0.7])
@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_sample_weight_is_repetition(rng, bandwidth, kernel):
    X, y, Q = _data(rng, n=40)
    w = rng.integers(0, 4, size=len(y))
    w[0] = 0
    weighted = NadarayaWatsonRegressor(kernel=kernel, bandwidth=bandwidth).fit(X, y, w)
    repeated = NadarayaWatsonRegressor(kernel=kernel, bandwidth=bandwidth).fit(
        np.repeat(X, w, axis=0), np.repeat(y, w)
    )
    np.testing.assert_allclose(weighted.bandwidth_, repeated.bandwidth_, rtol=1e-8)
    np.testing.assert_allclose(weighted.predict(Q), repeated.predict(Q), rtol=1e-8)
    weights = weighted.attention_weights(Q)
    assert weights.shape == (len(Q), len(y))
    assert np.all(weights[:, w == 0] == 0)


def test_multi_output_equals_separate_fits(rng):
    X, y, Q = _data(rng)
    Y = np.column_stack([y, y**2, -y])
    model = NadarayaWatsonRegressor(bandwidth=0.5).fit(X, Y)
    pred = model.predict(Q)
    assert pred.shape == (len(Q), 3)
    for j in range(3):
        single = NadarayaWatsonRegressor(bandwidth=0.5).fit(X, Y[:, j]).predict(Q)
        np.testing.assert_allclose(pred[:, j], single, rtol=1e-12)
    assert NadarayaWatsonRegressor().fit(X, Y[:, :1]).predict(Q).shape == (len(Q), 1)


def test_multi_output_cv_sums_the_losses(rng):
    X, y, _ = _data(rng)
    Y = np.column_stack([y, 2 * y])
    h_multi = NadarayaWatsonRegressor(bandwidth="cv").fit(X, Y).bandwidth_
    h_single = NadarayaWatsonRegressor(bandwidth="cv").fit(X, y).bandwidth_
    # 2y adds 4 times the same loss: the same minimiser
    np.testing.assert_allclose(h_multi, h_single, rtol=1e-6)


@pytest.mark.parametrize("bandwidth", ["scott", "cv"])
def test_float32_keys_and_the_targets_dtype(rng, bandwidth):
    # float32 X is the working dtype (weights stay float32); predictions keep the
    # dtype of y: float64 for a float64 y, float32 for a float32 y.
    X, y, Q = _data(rng)
    m64 = NadarayaWatsonRegressor(bandwidth=bandwidth).fit(X, y)
    m32 = NadarayaWatsonRegressor(bandwidth=bandwidth).fit(X.astype(np.float32), y)
    pred = m32.predict(Q.astype(np.float32))
    assert pred.dtype == np.float64
    assert m32.attention_weights(Q.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(pred, m64.predict(Q), rtol=1e-4, atol=1e-4)
    assert m64.predict(Q.astype(np.float32)).dtype == np.float64
    both32 = NadarayaWatsonRegressor(bandwidth=bandwidth).fit(
        X.astype(np.float32), y.astype(np.float32)
    )
    assert both32.predict(Q.astype(np.float32)).dtype == np.float32


def test_pandas_input_and_feature_names(rng):
    X, y, Q = _data(rng)
    columns = ["a", "b", "c"]
    model = NadarayaWatsonRegressor().fit(
        pd.DataFrame(X, columns=columns), pd.Series(y)
    )
    np.testing.assert_array_equal(model.feature_names_in_, columns)
    np.testing.assert_allclose(
        model.predict(pd.DataFrame(Q, columns=columns)),
        NadarayaWatsonRegressor().fit(X, y).predict(Q),
    )


def test_pickle_round_trip(rng):
    X, y, Q = _data(rng)
    model = NadarayaWatsonRegressor(kernel="cosine", bandwidth="cv").fit(X, y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(Q), model.predict(Q))


def test_grid_search_over_bandwidth_and_kernel():
    X, y = make_friedman1(n_samples=150, n_features=5, noise=0.5, random_state=0)
    pipe = make_pipeline(StandardScaler(), NadarayaWatsonRegressor())
    grid = GridSearchCV(
        pipe,
        {
            "nadarayawatsonregressor__bandwidth": [0.3, 1.0, "scott", "cv"],
            "nadarayawatsonregressor__kernel": ["gaussian", "epanechnikov"],
        },
        cv=3,
        n_jobs=2,
    ).fit(X, y)
    assert grid.best_score_ > 0.4
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()


def test_cv_beats_rules_of_thumb_on_diabetes():
    X, y = load_diabetes(return_X_y=True)
    scores = {
        b: cross_val_score(
            make_pipeline(StandardScaler(), NadarayaWatsonRegressor(bandwidth=b)),
            X,
            y,
            cv=5,
        ).mean()
        for b in ["scott", "cv"]
    }
    assert scores["cv"] > scores["scott"]
    assert scores["cv"] > 0.4


def test_clone_keeps_array_bandwidth():
    model = NadarayaWatsonRegressor(bandwidth=np.array([1.0, 2.0]))
    np.testing.assert_array_equal(clone(model).bandwidth, [1.0, 2.0])


def test_numpy_scalar_parameters(rng):
    X, y, Q = _data(rng)
    a = NadarayaWatsonRegressor(bandwidth=np.float32(0.5), n_jobs=np.int64(1)).fit(X, y)
    np.testing.assert_allclose(
        a.predict(Q), NadarayaWatsonRegressor(bandwidth=0.5).fit(X, y).predict(Q)
    )


def test_n_jobs_gives_the_same_predictions(rng):
    X, y, Q = _data(rng, n=300, m=400)
    one = NadarayaWatsonRegressor(bandwidth="cv", n_jobs=1).fit(X, y)
    two = NadarayaWatsonRegressor(bandwidth="cv", n_jobs=2).fit(X, y)
    np.testing.assert_allclose(two.bandwidth_, one.bandwidth_, rtol=1e-10)
    np.testing.assert_allclose(two.predict(Q), one.predict(Q), rtol=1e-12)


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_X_or_y(rng, bad):
    X, y, Q = _data(rng)
    X_bad = X.copy()
    X_bad[3, 1] = bad
    y_bad = y.copy()
    y_bad[2] = bad
    word = "NaN" if np.isnan(bad) else "infinity"
    with pytest.raises(ValueError, match=f"Input X contains {word}"):
        NadarayaWatsonRegressor().fit(X_bad, y)
    with pytest.raises(ValueError, match=f"Input y contains {word}"):
        NadarayaWatsonRegressor().fit(X, y_bad)
    model = NadarayaWatsonRegressor().fit(X, y)
    with pytest.raises(ValueError, match=f"Input X contains {word}"):
        model.predict(X_bad)


@pytest.mark.parametrize("bandwidth", [0.0, -1.0, np.inf, np.nan])
def test_non_positive_or_non_finite_scalar_bandwidth(rng, bandwidth):
    X, y, _ = _data(rng)
    with pytest.raises(
        ValueError, match="'bandwidth' parameter of NadarayaWatsonRegressor"
    ):
        NadarayaWatsonRegressor(bandwidth=bandwidth).fit(X, y)


@pytest.mark.parametrize(
    "bandwidth",
    [
        [1.0, 0.0, 1.0],
        [1.0, -2.0, 1.0],
        [1.0, np.inf, 1.0],
        [1, np.nan, 1],
        [1.0, 1e-310, 1.0],
    ],
)
def test_non_positive_array_bandwidth(rng, bandwidth):
    X, y, _ = _data(rng)
    with pytest.raises(
        ValueError, match="bandwidth must be positive and finite for every feature"
    ):
        NadarayaWatsonRegressor(bandwidth=bandwidth).fit(X, y)


@pytest.mark.parametrize("bandwidth", [[1.0, 2.0], np.ones((3, 1)), [[1.0, 1.0, 1.0]]])
def test_wrong_length_bandwidth(rng, bandwidth):
    X, y, _ = _data(rng)
    with pytest.raises(
        ValueError, match=re.escape("expected one bandwidth per feature, shape (3,)")
    ):
        NadarayaWatsonRegressor(bandwidth=bandwidth).fit(X, y)


def test_bandwidth_of_strings_in_an_array(rng):
    X, y, _ = _data(rng)
    with pytest.raises(ValueError, match="bandwidth must be a positive float"):
        NadarayaWatsonRegressor(bandwidth=["a", "b", "c"]).fit(X, y)


def test_unknown_kernel(rng):
    X, y, _ = _data(rng)
    with pytest.raises(
        ValueError, match="'kernel' parameter of NadarayaWatsonRegressor must be"
    ):
        NadarayaWatsonRegressor(kernel="boxcar").fit(X, y)


def test_unknown_bandwidth_rule(rng):
    X, y, _ = _data(rng)
    with pytest.raises(
        ValueError, match="'bandwidth' parameter of NadarayaWatsonRegressor"
    ):
        NadarayaWatsonRegressor(bandwidth="normal_reference").fit(X, y)


def test_mismatched_feature_count(rng):
    X, y, Q = _data(rng)
    model = NadarayaWatsonRegressor().fit(X, y)
    with pytest.raises(
        ValueError, match="X has 2 features, but NadarayaWatsonRegressor is expecting 3"
    ):
        model.predict(Q[:, :2])
    with pytest.raises(ValueError, match="X has 2 features"):
        model.attention_weights(Q[:, :2])


def test_bad_sample_weight(rng):
    X, y, _ = _data(rng)
    with pytest.raises(
        ValueError, match="Negative values in data passed to .?sample_weight"
    ):
        NadarayaWatsonRegressor().fit(X, y, -np.ones(len(y)))
    # scikit-learn >= 1.7 says it first; our own check says it on 1.6
    with pytest.raises(
        ValueError, match="(zero for every sample|at least one non-zero)"
    ):
        NadarayaWatsonRegressor().fit(X, y, np.zeros(len(y)))
    with pytest.raises(ValueError, match="sample_weight"):
        NadarayaWatsonRegressor().fit(X, y, np.ones(len(y) - 1))


def test_cv_needs_two_samples(rng):
    X, y, _ = _data(rng)
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        NadarayaWatsonRegressor(bandwidth="cv").fit(X[:1], y[:1])
    w = np.zeros(len(y))
    w[4] = 1.0
    with pytest.raises(
        ValueError, match="bandwidth='cv' needs a total sample weight above 1"
    ):
        NadarayaWatsonRegressor(bandwidth="cv").fit(X, y, w)


def test_predict_before_fit(rng):
    from sklearn.exceptions import NotFittedError

    X, _, _ = _data(rng)
    with pytest.raises(NotFittedError):
        NadarayaWatsonRegressor().predict(X)
    with pytest.raises(NotFittedError):
        NadarayaWatsonRegressor().attention_weights(X)
