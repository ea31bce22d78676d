"""Boosted attention values (AttentionRegressor's ``boosting``), against matrix
powers, plain loops of the published formulas and Monte-Carlo spreads."""

# SPDX-License-Identifier: BSD-3-Clause

import math
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skattn import AttentionRegressor
from skattn._boosting import BOOST_ROUNDS, BoostedSmoother
from skattn._engine import prepare_keys
from skattn._kernels import get_kernel
from skattn._trend import apply_trend
from skattn._uncertainty import cv_folds
from tests._assertions import assert_same_regressor
from tests._reference import jackknife_plus_bounds, leave_one_out, nadaraya_watson


def _smooth(rng, n, noise=0.1, d=2):
    X = rng.uniform(-2, 2, size=(n, d))
    y = np.sin(1.5 * X[:, 0]) + 0.5 * X[:, 1] ** 2
    return X, y + noise * rng.normal(size=n)


def _plain_boosting(S, m):
    """H_m = I - (I - S)^m and G_m = sum_{k < m} (I - S)^k, by matrix powers."""
    n = len(S)
    step = np.eye(n) - S
    G = sum(np.linalg.matrix_power(step, k) for k in range(m))
    return np.eye(n) - np.linalg.matrix_power(step, m), G


def _boosted(rng, n=120, **params):
    X, y = _smooth(rng, n)
    params = {"boosting": True, "metric": "diagonal", **params}
    model = AttentionRegressor(**params).fit(X, y)
    assert model.boosting_rounds_ > 0
    return X, y, model


def _reference_parts(model, X, Q):
    """The boosted model's pieces by loops: the residuals r, the attention S of
    the rows and P of the queries at the widened bandwidths, H_m and G_m."""
    h = model.bandwidth_ * model.boosting_widening_
    r = model._values[:, 0]
    w = model._key_weights
    _, S = nadaraya_watson(X, r, X, "gaussian", h, w)
    _, P = nadaraya_watson(X, r, Q, "gaussian", h, w)
    H, G = _plain_boosting(S, model.boosting_rounds_ + 1)
    return r, w, S, P, H, G


@pytest.mark.parametrize("m", [1, 2, 7])
def test_smoother_equals_matrix_powers(rng, m):
    X = rng.uniform(-2, 2, size=(25, 2))
    r = rng.normal(size=(25, 2))
    w = rng.integers(1, 4, 25).astype(float)
    h = np.array([0.9, 1.3])
    _, S = nadaraya_watson(X, r, X, "gaussian", h, w)
    H, G = _plain_boosting(S, m)
    keys = prepare_keys(
        X, r, kernel=get_kernel("gaussian"), scale=1 / h, key_weights=w, dtype=float
    )
    smoother = BoostedSmoother(keys)
    assert_allclose(smoother.hat_matrix(m), H, atol=1e-10)
    assert_allclose(smoother.value_matrix(m), G, atol=1e-9)
    assert_allclose(smoother.values(r, m), G @ r, atol=1e-9)
    # one copy of row j of weight w_j: its self-influence is H_jj / w_j
    share = 1 - np.diag(H) / w
    assert_allclose(smoother.left_share(m), share, atol=1e-10)
    assert_allclose(
        smoother.loo_residuals(r, m), (r - H @ r) / share[:, None], atol=1e-8
    )


def test_one_round_is_nadaraya_watson_leave_one_out(rng):
    X = rng.uniform(-2, 2, size=(20, 2))
    r = rng.normal(size=20)
    w = rng.integers(1, 3, 20).astype(float)
    keys = prepare_keys(
        X, r[:, None], kernel=get_kernel("gaussian"), scale=[1.0, 1.0],
        key_weights=w, dtype=float,
    )  # fmt: skip
    loo = leave_one_out(X, r, "gaussian", 1.0, w)
    residuals = BoostedSmoother(keys).loo_residuals(r[:, None], 1)
    assert_allclose(residuals[:, 0], r - loo[:, 0], rtol=1e-9)


def test_prediction_pools_the_boosted_values(rng):
    X, y, model = _boosted(rng)
    Q = rng.uniform(-2, 2, size=(9, 2))
    r, _, _, P, _, G = _reference_parts(model, X, Q)
    trend = apply_trend(model._trend, Q)[:, 0]
    assert_allclose(model.predict(Q), trend + P @ (G @ r), rtol=1e-7, atol=1e-9)
    # the attention of the widened head, the effective number of its keys
    assert_allclose(model.attention_weights(Q), P, atol=1e-12)
    assert model.boosting_widening_ in (2.0, 3.0, 4.0)
    assert model.boosting_rounds_ + 1 in BOOST_ROUNDS


@pytest.mark.parametrize("coverage", [0.5, 0.9])
def test_jackknife_plus_is_the_linear_smoothers(rng, coverage):
    X, y, model = _boosted(rng)
    Q = rng.uniform(-2.5, 2.5, size=(6, 2))
    r, w, _, P, H, G = _reference_parts(model, X, Q)
    e = (r - H @ r) / (1 - np.diag(H) / w)
    Hq = P @ G  # the smoother's weights at the queries
    f = Hq @ r
    left_out = f[:, None] - Hq / w[None, :] * e[None, :]
    trend = apply_trend(model._trend, Q)
    expected = jackknife_plus_bounds(left_out, np.abs(e), w, coverage) + trend
    got = model.predict_interval(Q, coverage=coverage)
    assert_allclose(got, expected, rtol=1e-7, atol=1e-8)
    # its quantiles: the signed residuals, one-sided
    q = model.predict_quantiles(Q, quantiles=[0.2, 0.8])
    scores = left_out[:, :, None] + e[None, :, None]
    n = int(w.sum())
    low = np.sort(scores[:, :, 0], axis=1)[:, math.floor(0.2 * (n + 1)) - 1]
    high = np.sort(scores[:, :, 0], axis=1)[:, math.ceil(0.8 * (n + 1)) - 1]
    assert_allclose(q, np.column_stack([low, high]) + trend, rtol=1e-7, atol=1e-8)


def test_cv_plus_leaves_each_fold_out_of_the_linear_smoother(rng):
    X, y, model = _boosted(rng)
    Q = rng.uniform(-2.5, 2.5, size=(5, 2))
    r, w, _, P, H, G = _reference_parts(model, X, Q)
    folds = cv_folds(X, r[:, None])
    Hq = P @ G
    f = Hq @ r
    deltas = np.empty_like(r)
    left_out = np.empty((len(Q), len(X)))
    for k in np.unique(folds):
        F = np.flatnonzero(folds == k)
        deltas[F] = np.linalg.solve(np.eye(len(F)) - H[np.ix_(F, F)], (r - H @ r)[F])
        left_out[:, F] = (f - Hq[:, F] @ deltas[F])[:, None]
    expected = jackknife_plus_bounds(left_out, np.abs(deltas), w, 0.9)
    expected += apply_trend(model._trend, Q)
    got = model.predict_interval(Q, method="cv+")
    assert_allclose(got, expected, rtol=1e-7, atol=1e-8)


def test_quantile_method_spreads_the_residuals_around_the_prediction(rng):
    X, y, model = _boosted(rng)
    Q = rng.uniform(-2, 2, size=(4, 2))
    r, w, _, P, H, _ = _reference_parts(model, X, Q)
    e = (r - H @ r) / (1 - np.diag(H) / w)
    prediction = model.predict(Q)
    got = model.predict_quantiles(Q, quantiles=[0.1, 0.9], method="quantile")
    order = np.argsort(e)
    for a in range(len(Q)):
        cumulative = np.cumsum(P[a, order])
        for b, tau in enumerate([0.1, 0.9]):
            position = min(np.sum(cumulative < tau * cumulative[-1]), len(e) - 1)
            assert got[a, b] == pytest.approx(prediction[a] + e[order[position]])


def test_weights_act_as_repetition(rng):
    X, y = _smooth(rng, 110)
    w = rng.integers(1, 3, len(X))
    repeated = np.repeat(np.arange(len(X)), w)
    Q = rng.uniform(-2, 2, size=(6, 2))
    params = {"boosting": True, "metric": "diagonal"}
    a = AttentionRegressor(**params).fit(X, y, sample_weight=w)
    b = AttentionRegressor(**params).fit(X[repeated], y[repeated])
    assert a.boosting_rounds_ > 0
    assert (a.boosting_widening_, a.boosting_rounds_) == (
        b.boosting_widening_,
        b.boosting_rounds_,
    )
    assert_same_regressor(a, b, Q, std_rtol=1e-5)


def test_return_std_matches_the_monte_carlo_spread(rng):
    # the boosted smoother held fixed: its prediction's noise is h(x).eps
    sigma = 0.1
    X, y, model = _boosted(rng, n=300)
    Q = rng.uniform(-1.5, 1.5, size=(8, 2))
    _, _, _, P, _, G = _reference_parts(model, X, Q)
    truth = sigma * np.sqrt(((P @ G) ** 2).sum(axis=1))
    _, std = model.predict(Q, return_std=True)
    assert np.all(std > 0)
    assert 0.75 < np.median(std / truth) < 1.33


def test_jackknife_plus_covers_new_rows():
    rng = np.random.default_rng(0)
    X, y = _smooth(rng, 400)
    Xt, yt = _smooth(rng, 4000)
    model = AttentionRegressor().fit(X, y)
    assert model.boosting_rounds_ > 0
    plain = AttentionRegressor(boosting=False).fit(X, y)
    assert model.score(Xt, yt) > plain.score(Xt, yt)
    for method in ("jackknife+", "cv+"):
        bounds = model.predict_interval(Xt, method=method)
        covered = np.mean((yt >= bounds[:, 0]) & (yt <= bounds[:, 1]))
        assert 0.86 < covered < 0.95, (method, covered)


def test_auto_boosts_no_rounds_on_noise(rng):
    # pure noise: no round of boosting pays (a wider kernel, nearer the mean, may)
    X = rng.uniform(-2, 2, size=(200, 3))
    y = rng.normal(size=200)
    model = AttentionRegressor().fit(X, y)
    assert model.boosting_rounds_ == 0
    # where it does not apply: too few rows, no trend, top-k attention
    X, y = _smooth(rng, 60)
    for params in ({}, {"trend": None}, {"n_neighbors": 5}):
        model = AttentionRegressor(**params).fit(X, y)
        assert model.boosting_rounds_ == 0 and model.boosting_widening_ == 1.0


def test_boosting_true_needs_dense_attention(rng):
    X, y = _smooth(rng, 30)
    with pytest.raises(ValueError, match="boosting=True needs dense attention"):
        AttentionRegressor(boosting=True, n_neighbors=5).fit(X, y)


def test_order_dtypes_outputs_and_pickling(rng):
    X, y, model = _boosted(rng, n=120)
    Q = rng.uniform(-2, 2, size=(5, 2))
    order = rng.permutation(len(X))
    permuted = AttentionRegressor(boosting=True, metric="diagonal").fit(
        X[order], y[order]
    )
    assert_allclose(permuted.predict(Q), model.predict(Q), rtol=1e-7)
    loaded = pickle.loads(pickle.dumps(model))
    assert_allclose(loaded.predict(Q), model.predict(Q), rtol=0)
    assert_allclose(loaded.predict_interval(Q), model.predict_interval(Q), rtol=0)
    low = AttentionRegressor(boosting=True, metric="diagonal").fit(
        X.astype(np.float32), y.astype(np.float32)
    )
    assert low.predict(Q.astype(np.float32)).dtype == np.float32
    assert low.predict_interval(Q.astype(np.float32)).dtype == np.float32
    Y = np.column_stack([y, -2 * y])
    two = AttentionRegressor(boosting=True, metric="diagonal").fit(X, Y)
    prediction, std = two.predict(Q, return_std=True)
    assert prediction.shape == std.shape == (5, 2)
    assert two.predict_interval(Q).shape == (5, 2, 2)
    assert_allclose(prediction[:, 1], -2 * prediction[:, 0], rtol=1e-6, atol=1e-9)
