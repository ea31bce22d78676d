"""Exact leave-one-out at new queries and jackknife+ intervals, against refits."""

# SPDX-License-Identifier: BSD-3-Clause

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skattn import AttentionRegressor, NadarayaWatsonRegressor
from skattn._engine import prepare_keys
from skattn._uncertainty import leave_one_out_at_queries


def _data(rng, n=30, n_outputs=2):
    X = rng.uniform(-2, 2, size=(n, 2))
    Y = np.column_stack([np.sin(X[:, 0] + k) for k in range(n_outputs)])
    return X, Y + 0.1 * rng.normal(size=Y.shape)


def _refits(X, Y, w, Q, kernel, h):
    """Predictions at Q of NW refitted without one copy of each row, by a loop."""
    out = np.empty((len(Q), len(X), Y.shape[1]))
    for j in range(len(X)):
        w_j = w.copy()
        w_j[j] -= 1.0
        model = NadarayaWatsonRegressor(kernel, h).fit(X, Y, sample_weight=w_j)
        out[:, j] = model.predict(Q)
    return out


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov", "exponential"])
def test_leave_one_out_at_queries_equals_refits(rng, kernel):
    X, Y = _data(rng)
    w = rng.integers(1, 4, len(X)).astype(float)
    h = np.array([0.8, 1.1])
    # inside the data, and far away (one key takes all the attention)
    Q = np.vstack([rng.uniform(-2, 2, size=(6, 2)), [[40.0, 0.0], [0.0, -1e6]]])
    keys = prepare_keys(X, Y, kernel=kernel, scale=1 / h, key_weights=w, dtype=float)
    predictions, left_out, _ = leave_one_out_at_queries(keys, Y, Q)
    model = NadarayaWatsonRegressor(kernel, h).fit(X, Y, sample_weight=w)
    assert_allclose(predictions, model.predict(Q), rtol=1e-12)
    assert_allclose(left_out, _refits(X, Y, w, Q, kernel, h), rtol=1e-10, atol=1e-12)


def _plain_jackknife_plus(left_out, residuals, w, coverage):
    alpha = 1 - coverage
    n = int(w.sum())
    bounds = np.empty((left_out.shape[0], 2))
    for q in range(left_out.shape[0]):
        low = sorted(
            v
            for j in range(len(w))
            for v in [left_out[q, j] - residuals[j]] * int(w[j])
        )
        high = sorted(
            v
            for j in range(len(w))
            for v in [left_out[q, j] + residuals[j]] * int(w[j])
        )
        k_low = math.floor(alpha * (n + 1))
        k_high = math.ceil((1 - alpha) * (n + 1))
        bounds[q, 0] = -np.inf if k_low < 1 else low[k_low - 1]
        bounds[q, 1] = np.inf if k_high > n else high[k_high - 1]
    return bounds


@pytest.mark.parametrize("coverage", [0.5, 0.8, 0.9])
def test_jackknife_plus_equals_a_plain_implementation(rng, coverage):
    X, Y = _data(rng, n=25, n_outputs=1)
    y = Y[:, 0]
    w = rng.integers(1, 3, len(X)).astype(float)
    h = 0.7
    Q = rng.uniform(-2.5, 2.5, size=(7, 2))
    model = NadarayaWatsonRegressor(bandwidth=h).fit(X, y, sample_weight=w)
    left_out = _refits(X, Y, w, Q, "gaussian", h)[:, :, 0]
    loo = np.array(
        [
            NadarayaWatsonRegressor(bandwidth=h)
            .fit(X, y, sample_weight=w - np.eye(len(X))[j])
            .predict(X[j : j + 1])[0]
            for j in range(len(X))
        ]
    )
    expected = _plain_jackknife_plus(left_out, np.abs(y - loo), w, coverage)
    assert_allclose(model.predict_interval(Q, coverage=coverage), expected, rtol=1e-10)


def test_weights_act_as_repetition(rng):
    X, Y = _data(rng, n=20)
    w = rng.integers(0, 3, len(X))
    w[:3] = 1
    repeated = np.repeat(np.arange(len(X)), w)
    Q = rng.uniform(-2, 2, size=(5, 2))
    a = NadarayaWatsonRegressor(bandwidth=0.6).fit(X, Y, sample_weight=w)
    b = NadarayaWatsonRegressor(bandwidth=0.6).fit(X[repeated], Y[repeated])
    assert_allclose(a.predict_interval(Q), b.predict_interval(Q), rtol=1e-10)


def test_marginal_coverage_on_heteroscedastic_data():
    rng = np.random.default_rng(0)
    coverages = []
    for _ in range(60):
        X = rng.uniform(-3, 3, size=(500, 1))
        y = np.sin(X[:, 0]) + (0.1 + 0.5 * np.abs(X[:, 0])) * rng.normal(size=500)
        Xt = rng.uniform(-3, 3, size=(200, 1))
        yt = np.sin(Xt[:, 0]) + (0.1 + 0.5 * np.abs(Xt[:, 0])) * rng.normal(size=200)
        bounds = NadarayaWatsonRegressor(bandwidth="cv").fit(X, y).predict_interval(Xt)
        coverages.append(np.mean((yt >= bounds[:, 0]) & (yt <= bounds[:, 1])))
    assert abs(np.mean(coverages) - 0.9) < 0.02


@pytest.mark.filterwarnings("ignore::skattn.LowSupportWarning")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_learned_metric_is_held_fixed(rng):
    X, Y = _data(rng, n=40, n_outputs=1)
    # (with the trend: test_attention.py::test_intervals_and_std_shift_by_the_trend)
    model = AttentionRegressor(max_iter=10, trend=None).fit(X, Y[:, 0])
    fixed = NadarayaWatsonRegressor(bandwidth=model.bandwidth_).fit(X, Y[:, 0])
    Q = rng.uniform(-2, 2, size=(6, 2))
    assert_allclose(model.predict_interval(Q), fixed.predict_interval(Q), rtol=1e-9)
    full = AttentionRegressor(metric="full", max_iter=5, early_stopping=False)
    bounds = full.fit(X, Y[:, 0]).predict_interval(Q)
    assert bounds.shape == (6, 2) and np.all(bounds[:, 0] <= bounds[:, 1])


@pytest.mark.filterwarnings("ignore::skattn.LowSupportWarning")
def test_shapes_dtypes_and_infinite_bounds(rng):
    X, Y = _data(rng, n=30, n_outputs=2)
    Q = rng.uniform(-2, 2, size=(4, 2))
    model = NadarayaWatsonRegressor(bandwidth=0.7, n_neighbors=5).fit(X, Y)
    bounds = model.predict_interval(Q)
    assert bounds.shape == (4, 2, 2)
    assert np.all(bounds[:, 0] < bounds[:, 1])
    one = NadarayaWatsonRegressor(bandwidth=0.7).fit(X, Y[:, 0].astype(np.float32))
    assert one.predict_interval(Q).dtype == np.float32
    small = NadarayaWatsonRegressor(bandwidth=0.7).fit(X[:5], Y[:5, 0])
    bounds = small.predict_interval(Q, coverage=0.9)  # 0.9 > 5 / 6
    assert np.all(np.isneginf(bounds[:, 0])) and np.all(np.isposinf(bounds[:, 1]))


def test_a_single_row_has_no_interval():
    model = NadarayaWatsonRegressor().fit([[0.0], [1.0]], [0.0, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="total sample weight above 1"):
        model.predict_interval([[0.5]])


@pytest.mark.parametrize("coverage", [0, 1, 1.5, -0.1, "0.9", True, np.nan])
def test_bad_coverage(rng, coverage):
    X, Y = _data(rng)
    model = NadarayaWatsonRegressor().fit(X, Y[:, 0])
    with pytest.raises(ValueError, match="coverage"):
        model.predict_interval(X, coverage=coverage)


def test_mapie_wraps_the_estimator_and_agrees():
    mapie = pytest.importorskip("mapie", minversion="1.0")
    from mapie.regression import CrossConformalRegressor
    from sklearn.model_selection import LeaveOneOut

    assert mapie
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(60, 1))
    y = np.sin(X[:, 0]) + 0.2 * rng.normal(size=60)
    Q = rng.uniform(-3, 3, size=(8, 1))
    wrapped = CrossConformalRegressor(
        NadarayaWatsonRegressor(bandwidth=0.5),
        confidence_level=0.9,
        method="plus",
        cv=LeaveOneOut(),
    )
    wrapped.fit_conformalize(X, y)
    _, theirs = wrapped.predict_interval(Q)
    ours = NadarayaWatsonRegressor(bandwidth=0.5).fit(X, y).predict_interval(Q)
    # MAPIE's leave-one-out jackknife+ refits 60 times; ours is exact without refits
    assert_allclose(ours, theirs[:, :, 0], rtol=1e-9)


def test_return_std_matches_the_monte_carlo_spread():
    # a smooth function, constant noise, interior points, the bandwidth fixed
    rng = np.random.default_rng(0)
    n, h, sigma = 400, 0.3, 0.2
    X = np.sort(rng.uniform(-3, 3, size=(n, 1)), axis=0)
    Q = np.array([[-1.5], [-0.5], [0.0], [0.5], [1.5]])
    weights = NadarayaWatsonRegressor(bandwidth=h).fit(X, X[:, 0]).attention_weights(Q)
    truth = sigma * np.sqrt((weights**2).sum(axis=1))
    predictions, stds = [], []
    for _ in range(300):
        y = np.sin(X[:, 0]) + sigma * rng.normal(size=n)
        prediction, std = (
            NadarayaWatsonRegressor(bandwidth=h).fit(X, y).predict(Q, return_std=True)
        )
        predictions.append(prediction)
        stds.append(std)
    monte_carlo = np.std(predictions, axis=0)
    assert np.all(np.abs(np.mean(stds, axis=0) / monte_carlo - 1.0) < 0.1)
    assert np.all(np.abs(np.mean(stds, axis=0) / truth - 1.0) < 0.05)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_return_std_shapes_dtypes_and_weights(rng):
    X, Y = _data(rng, n=30, n_outputs=2)
    Q = rng.uniform(-2, 2, size=(5, 2))
    model = NadarayaWatsonRegressor(bandwidth=0.7).fit(X, Y)
    prediction, std = model.predict(Q, return_std=True)
    assert prediction.shape == std.shape == (5, 2)
    assert_allclose(prediction, model.predict(Q), rtol=1e-12)
    assert np.all(std > 0)
    one = NadarayaWatsonRegressor(bandwidth=0.7).fit(X, Y[:, 0].astype(np.float32))
    prediction, std = one.predict(Q, return_std=True)
    assert prediction.dtype == std.dtype == np.float32 and std.shape == (5,)
    w = rng.integers(1, 3, len(X))
    repeated = np.repeat(np.arange(len(X)), w)
    a = NadarayaWatsonRegressor(bandwidth=0.7).fit(X, Y, sample_weight=w)
    b = NadarayaWatsonRegressor(bandwidth=0.7).fit(X[repeated], Y[repeated])
    assert_allclose(
        a.predict(Q, return_std=True)[1], b.predict(Q, return_std=True)[1], rtol=1e-10
    )
    learned = AttentionRegressor(max_iter=3).fit(X, Y[:, 0])
    assert learned.predict(Q, return_std=True)[1].shape == (5,)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_n_effective_is_kish_of_the_attention_and_weights_act_as_repetition(rng):
    from skattn import AttentionRegressor

    X, Y = _data(rng, n=30, n_outputs=1)
    w = rng.integers(1, 4, size=len(X)).astype(float)
    Q = rng.uniform(-2, 2, size=(6, 2))
    model = NadarayaWatsonRegressor(bandwidth=0.6).fit(X, Y[:, 0], w)
    p = model.attention_weights(Q)
    assert_allclose(model.n_effective(Q), 1.0 / np.sum(p**2 / w, axis=1), rtol=1e-10)
    repeated = NadarayaWatsonRegressor(bandwidth=0.6).fit(
        np.repeat(X, w.astype(int), axis=0), np.repeat(Y[:, 0], w.astype(int))
    )
    assert_allclose(model.n_effective(Q), repeated.n_effective(Q), rtol=1e-10)
    learned = AttentionRegressor(max_iter=3).fit(X, Y[:, 0])
    assert learned.n_effective(Q).shape == (6,)


def test_low_support_queries_warn(rng):
    import warnings

    from skattn._base import LowSupportWarning

    X, Y = _data(rng, n=40, n_outputs=1)
    model = NadarayaWatsonRegressor(bandwidth=1.0).fit(X, Y[:, 0])
    inside = X[:3] + 0.01
    far = np.array([[50.0, 50.0]])
    assert np.all(model.n_effective(inside) > 2.0)
    assert model.n_effective(far)[0] < 1.01
    with pytest.warns(LowSupportWarning, match="1 of 4 queries"):
        model.predict_interval(np.vstack([inside, far]))
    with pytest.warns(LowSupportWarning, match="predict"):
        model.predict(far, return_std=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LowSupportWarning)
        model.predict_interval(inside)
        model.predict(far)  # a plain prediction says nothing
