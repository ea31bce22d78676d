"""The local-linear average of AttentionRegressor (``local_linear``), against plain
loops of the two smoothers and of the interval formulas."""

# SPDX-License-Identifier: BSD-3-Clause

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skattn import AttentionRegressor, LocalLinearRegressor
from skattn._local_average import LOCAL_LINEAR_WIDENINGS
from skattn._trend import TREND_RIDGE
from tests._assertions import assert_same_regressor
from tests._reference import jackknife_plus_bounds, local_linear, nadaraya_watson


def _data(rng, n=60, noise=0.3):
    X = rng.uniform(-2, 2, size=(n, 2))
    y = np.sin(1.5 * X[:, 0]) + 0.5 * X[:, 1] ** 2 + noise * rng.normal(size=n)
    return X, y


def _fitted(rng, n=60, weights=True, **params):
    X, y = _data(rng, n)
    w = rng.integers(1, 3, n).astype(float) if weights else np.ones(n)
    params = {"local_linear": True, "metric": "diagonal", "max_iter": 30, **params}
    return AttentionRegressor(**params).fit(X, y, sample_weight=w), X, y, w


def _trend(model, X):
    return X @ model.trend_coef_ + model.trend_intercept_


def _plain_average(model, X, y, w, queries, drop=None):
    """The average at ``queries`` by plain loops, without one copy of row
    ``drop``: the trend plus Nadaraya-Watson of its residuals at the learned
    bandwidths, and the local-linear fit of the targets at the widened ones."""
    # the ridge's unit, each feature's variance, is the full data's (held fixed)
    mean = np.average(X, axis=0, weights=w)
    variance = (w[:, None] * (X - mean) ** 2).sum(axis=0) / (w.sum() - 1.0)
    w = w.copy()
    if drop is not None:
        w[drop] -= 1.0
    keep = w > 0
    r = y - _trend(model, X)
    own, _ = nadaraya_watson(
        X[keep], r[keep], queries, "gaussian", model.bandwidth_, w[keep]
    )
    other, _ = local_linear(
        X[keep],
        y[keep],
        queries,
        "gaussian",
        model.local_linear_.bandwidth_,
        w[keep],
        ridge=model.local_linear_.ridge,
        variance=variance,
    )
    return 0.5 * (_trend(model, queries) + own[:, 0]) + 0.5 * other[:, 0]


@pytest.mark.parametrize("weights", [False, True])
def test_predictions_are_the_average_of_the_two_smoothers(rng, weights):
    model, X, y, w = _fitted(rng, weights=weights)
    assert model.local_linear_widening_ in LOCAL_LINEAR_WIDENINGS
    assert_allclose(
        model.local_linear_.bandwidth_,
        model.local_linear_widening_ * model.bandwidth_,
        rtol=1e-12,
    )
    queries = rng.uniform(-1.5, 1.5, size=(7, 2))
    assert_allclose(
        model.predict(queries), _plain_average(model, X, y, w, queries), rtol=1e-6
    )


def test_widening_has_the_lowest_leave_one_out_error(rng):
    model, X, y, w = _fitted(rng)
    errors = []
    for widening in LOCAL_LINEAR_WIDENINGS:
        other = LocalLinearRegressor(
            bandwidth=widening * model.bandwidth_, ridge=TREND_RIDGE
        )
        other.fit(X, y, sample_weight=w)
        loo = np.ldexp(other._leave_one_out_predict()[:, 0], other._exponents()[0])
        errors.append(np.sum(w * (y - loo) ** 2))
    assert model.local_linear_widening_ == LOCAL_LINEAR_WIDENINGS[np.argmin(errors)]


@pytest.mark.parametrize("coverage", [0.8, 0.9])
def test_jackknife_plus_equals_a_plain_implementation(rng, coverage):
    # unit weights: a row of weight 2 keeps a copy of itself when left out, and
    # the leave-one-out bandwidths shrink toward it (weights act as repetition)
    model, X, y, w = _fitted(rng, n=40, weights=False)
    queries = rng.uniform(-1.5, 1.5, size=(4, 2))
    left_out = np.column_stack(
        [_plain_average(model, X, y, w, queries, drop=j) for j in range(len(X))]
    )
    residuals = np.array(
        [
            y[j] - _plain_average(model, X, y, w, X[j : j + 1], drop=j)[0]
            for j in range(len(X))
        ]
    )
    expected = jackknife_plus_bounds(left_out, np.abs(residuals), w, coverage)
    bounds = model.predict_interval(queries, coverage=coverage)
    assert_allclose(bounds, expected, rtol=1e-6)


def test_quantile_method_mixes_the_two_predictive_distributions(rng):
    model, X, y, w = _fitted(rng, n=40, weights=False)
    queries = rng.uniform(-1.5, 1.5, size=(3, 2))
    levels = [0.1, 0.5, 0.9]
    got = model.predict_quantiles(queries, quantiles=levels, method="quantile")
    r = y - _trend(model, X)
    h = model.local_linear_.bandwidth_
    for a, q in enumerate(queries):
        _, own = nadaraya_watson(X, r, q[None], "gaussian", model.bandwidth_, w)
        _, other = nadaraya_watson(X, y, q[None], "gaussian", h, w)
        _, slopes = local_linear(
            X, y, q[None], "gaussian", h, w, ridge=model.local_linear_.ridge
        )
        moved = y - (X - q) @ slopes[0, :, 0]
        values = np.concatenate([r + _trend(model, q[None]), moved])
        weights = 0.5 * np.concatenate([own[0], other[0]])
        order = np.argsort(values, kind="stable")
        cumulated = np.cumsum(weights[order])
        for b, level in enumerate(levels):  # numpy's "inverted_cdf"
            position = np.searchsorted(cumulated, level - 1e-12)
            assert_allclose(got[a, b], values[order][position], rtol=1e-6)


def test_standard_errors_rest_on_the_averaged_weights(rng):
    # pure noise of standard deviation 0.5: the noise variance the standard
    # errors rest on, std^2 / sum_j h_j^2 / w_j, is about 0.25
    X = rng.uniform(-2, 2, size=(400, 2))
    y = 0.5 * rng.normal(size=400)
    model = AttentionRegressor(local_linear=True, max_iter=20).fit(X, y)
    queries = rng.uniform(-1.5, 1.5, size=(50, 2))
    _, std = model.predict(queries, return_std=True)
    h = 0.5 * model.attention_weights(queries) + 0.5 * (
        model.local_linear_.attention_weights(queries)
    )
    noise = std**2 / np.sum(h**2, axis=1)
    assert 0.18 < np.median(noise) < 0.32


@pytest.mark.filterwarnings("ignore::skattn.LowSupportWarning")
def test_cv_plus_covers_new_rows(rng):
    model, *_ = _fitted(rng, n=300, weights=False)
    X_new, y_new = _data(rng, 2000)
    for method in ("jackknife+", "cv+", "quantile"):
        bounds = model.predict_interval(X_new, coverage=0.9, method=method)
        covered = np.mean((bounds[:, 0] <= y_new) & (y_new <= bounds[:, 1]))
        assert 0.84 < covered < 0.96, (method, covered)
        pred = model.predict(X_new)
        assert np.all((bounds[:, 0] <= pred) & (pred <= bounds[:, 1]))


def test_weights_act_as_repetition(rng):
    X, y = _data(rng, 30)
    w = rng.integers(1, 4, 30)
    params = {"local_linear": True, "metric": "diagonal", "init": "scott"}
    params["max_iter"] = 20
    weighted = AttentionRegressor(**params).fit(X, y, sample_weight=w)
    repeated = AttentionRegressor(**params).fit(X.repeat(w, 0), y.repeat(w))
    queries = rng.uniform(-1.5, 1.5, size=(6, 2))
    assert weighted.local_linear_widening_ == repeated.local_linear_widening_
    assert_same_regressor(weighted, repeated, queries)


def test_auto_and_where_it_does_not_apply(rng):
    X, y = _data(rng, 120)
    auto = AttentionRegressor(boosting=False).fit(X, y)  # the default: "auto"
    assert auto.local_linear_ is not None
    off = AttentionRegressor(local_linear=False).fit(X, y)
    assert off.local_linear_ is None and off.local_linear_widening_ is None
    boosted = AttentionRegressor(boosting=True).fit(X, y)  # boosted: not averaged
    assert boosted.boosting_rounds_ > 0 and boosted.local_linear_ is None
    top_k = AttentionRegressor(local_linear="auto", n_neighbors=10).fit(X, y)
    assert top_k.local_linear_ is None
    no_trend = AttentionRegressor(local_linear="auto", trend=None).fit(X, y)
    assert no_trend.local_linear_ is None
    # without the trend, True averages too (the local line fits y itself)
    forced = AttentionRegressor(local_linear=True, trend=None, max_iter=20)
    forced.fit(X, y)
    queries = rng.uniform(-1.5, 1.5, size=(5, 2))
    alone = forced.local_linear_.predict(queries)
    own = nadaraya_watson(X, y, queries, "gaussian", forced.bandwidth_)[0][:, 0]
    assert_allclose(forced.predict(queries), 0.5 * (own + alone), rtol=1e-6)
    assert np.all(np.isfinite(forced.predict_interval(queries)))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"boosting": True}, "boosting=True"),
        ({"metric": "full"}, "metric"),
        ({"n_neighbors": 5}, "n_neighbors"),
    ],
)
def test_true_refuses_what_it_cannot_average(rng, params, match):
    X, y = _data(rng, 40)
    with pytest.raises(ValueError, match=match):
        AttentionRegressor(local_linear=True, **params).fit(X, y)


def test_pickle_float32_multi_output_and_far_queries(rng):
    model, X, y, _ = _fitted(rng, weights=False)
    queries = np.vstack([rng.uniform(-1.5, 1.5, size=(4, 2)), [[1e6, -1e6]]])
    restored = pickle.loads(pickle.dumps(model))
    assert_allclose(restored.predict(queries), model.predict(queries), rtol=0)
    # beyond the data the local-linear half is constant, as the trend is
    assert np.all(np.abs(model.predict(queries)) < 10 * np.abs(y).max())
    single = AttentionRegressor(local_linear=True, max_iter=20)
    single.fit(X.astype(np.float32), y.astype(np.float32))
    assert single.predict(queries[:4]).dtype == np.float32
    Y = np.column_stack([y, -2 * y])
    both = AttentionRegressor(local_linear=True, max_iter=20).fit(X, Y)
    assert both.predict(queries[:4]).shape == (4, 2)
    assert both.predict_interval(queries[:4]).shape == (4, 2, 2)
    assert both.predict(queries[:4], return_std=True)[1].shape == (4, 2)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_verbose_says_what_was_averaged(rng, capsys):
    X, y = _data(rng, 60)
    AttentionRegressor(local_linear=True, max_iter=5, verbose=1).fit(X, y)
    line = [s for s in capsys.readouterr().out.splitlines() if "local_linear" in s]
    assert len(line) == 1 and "widened" in line[0]
