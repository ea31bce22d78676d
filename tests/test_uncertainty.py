"""Exact leave-one-out at new queries and jackknife+ intervals, against refits."""

# SPDX-License-Identifier: BSD-3-Clause

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skattn import AttentionRegressor, LocalLinearRegressor, NadarayaWatsonRegressor
from skattn._engine import prepare_keys
from skattn._uncertainty import CV_FOLDS, cv_folds, leave_one_out_at_queries
from tests._reference import jackknife_plus_bounds


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


def _plain_loo(X, y, w, h):
    """Each training row's prediction from NW refitted without one copy of it."""
    return np.array(
        [
            NadarayaWatsonRegressor(bandwidth=h)
            .fit(X, y, sample_weight=w - np.eye(len(X))[j])
            .predict(X[j : j + 1])[0]
            for j in range(len(X))
        ]
    )


@pytest.mark.parametrize("coverage", [0.5, 0.8, 0.9])
def test_jackknife_plus_equals_a_plain_implementation(rng, coverage):
    X, Y = _data(rng, n=25, n_outputs=1)
    y = Y[:, 0]
    w = rng.integers(1, 3, len(X)).astype(float)
    h = 0.7
    Q = rng.uniform(-2.5, 2.5, size=(7, 2))
    model = NadarayaWatsonRegressor(bandwidth=h).fit(X, y, sample_weight=w)
    left_out = _refits(X, Y, w, Q, "gaussian", h)[:, :, 0]
    loo = _plain_loo(X, y, w, h)
    expected = jackknife_plus_bounds(left_out, np.abs(y - loo), w, coverage)
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
    # y = sin x + (0.1 + 0.5 |x|) eps: marginal coverage of 90 % intervals, and the
    # quantile method's coverage per x-bin (it follows the noise's spread)
    rng = np.random.default_rng(0)
    methods = ("jackknife+", "cv+", "quantile")
    covered = {m: [] for m in methods}
    bins = np.linspace(-3, 3, 7)
    per_bin = {m: np.zeros((len(bins) - 1, 2)) for m in methods}
    for _ in range(60):
        X = rng.uniform(-3, 3, size=(500, 1))
        y = np.sin(X[:, 0]) + (0.1 + 0.5 * np.abs(X[:, 0])) * rng.normal(size=500)
        Xt = rng.uniform(-3, 3, size=(200, 1))
        yt = np.sin(Xt[:, 0]) + (0.1 + 0.5 * np.abs(Xt[:, 0])) * rng.normal(size=200)
        model = NadarayaWatsonRegressor(bandwidth="cv").fit(X, y)
        for method in methods:
            bounds = model.predict_interval(Xt, method=method)
            inside = (yt >= bounds[:, 0]) & (yt <= bounds[:, 1])
            covered[method].append(np.mean(inside))
            where = np.digitize(Xt[:, 0], bins[1:-1])
            np.add.at(
                per_bin[method], where, np.column_stack([inside, np.ones_like(inside)])
            )
    assert abs(np.mean(covered["jackknife+"]) - 0.9) < 0.02
    assert abs(np.mean(covered["cv+"]) - 0.9) < 0.02
    assert abs(np.mean(covered["quantile"]) - 0.9) < 0.03
    # per x-bin: the quantile method between 0.87 and 0.96 (0.88 0.88 0.95 0.95
    # 0.90 0.87 from the edges in); jackknife+, whose width is the same everywhere,
    # spreads further (over-covers the quiet centre, under-covers the noisy edges)
    conditional = {m: b[:, 0] / b[:, 1] for m, b in per_bin.items()}
    quantile = conditional["quantile"]
    assert np.all((quantile > 0.86) & (quantile < 0.96)), quantile
    spread = {m: np.ptp(c) for m, c in conditional.items()}
    assert spread["quantile"] < spread["jackknife+"], conditional


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


# bandwidths learned on 40 rows leave a query or two with little support
@pytest.mark.filterwarnings("ignore::skattn.LowSupportWarning")
def test_mapie_cv_plus_relearning_attention_regressor_is_plain_cv_plus():
    # The user guide's interval that accounts for the learned metric: MAPIE's CV+
    # relearning AttentionRegressor on each fold's complement. It wraps the
    # estimator unchanged and gives the CV+ of a plain loop of refits.
    pytest.importorskip("mapie", minversion="1.0")
    from mapie.regression import CrossConformalRegressor
    from sklearn.model_selection import KFold

    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(40, 2))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=40)
    Q = rng.uniform(-1.5, 1.5, size=(6, 2))
    folds = KFold(5, shuffle=True, random_state=0)
    wrapped = CrossConformalRegressor(
        AttentionRegressor(max_iter=30), confidence_level=0.8, method="plus", cv=folds
    )
    wrapped.fit_conformalize(X, y)
    theirs = wrapped.predict_interval(Q)[1][:, :, 0]
    left_out = np.empty((len(Q), len(X)))
    residuals = np.empty(len(X))
    for train, test in folds.split(X):
        model = AttentionRegressor(max_iter=30).fit(X[train], y[train])
        residuals[test] = np.abs(y[test] - model.predict(X[test]))
        left_out[:, test] = model.predict(Q)[:, None]
    expected = jackknife_plus_bounds(left_out, residuals, np.ones(len(X)), 0.8)
    assert_allclose(theirs, expected, rtol=1e-9)
    # ... and it is not the fixed-metric jackknife+ (the refits differ)
    fixed = AttentionRegressor(max_iter=30).fit(X, y).predict_interval(Q, 0.8)
    assert not np.allclose(theirs, fixed)


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


def _std_smoothers():
    return [
        pytest.param(lambda: NadarayaWatsonRegressor(bandwidth=0.7), id="nw"),
        pytest.param(lambda: LocalLinearRegressor(bandwidth=0.9), id="local-linear"),
    ]


@pytest.mark.parametrize("make", _std_smoothers())
def test_return_std_shapes_dtypes_and_weights(rng, make):
    X, Y = _data(rng, n=30, n_outputs=2)
    Q = rng.uniform(-2, 2, size=(5, 2))
    model = make().fit(X, Y)
    prediction, std = model.predict(Q, return_std=True)
    assert prediction.shape == std.shape == (5, 2)
    assert_allclose(prediction, model.predict(Q), rtol=1e-12)
    assert np.all(std > 0)
    one = make().fit(X, Y[:, 0].astype(np.float32))
    prediction, std = one.predict(Q, return_std=True)
    assert prediction.dtype == std.dtype == np.float32 and std.shape == (5,)
    w = rng.integers(1, 4, len(X))
    repeated = np.repeat(np.arange(len(X)), w)
    a = make().fit(X, Y, sample_weight=w)
    b = make().fit(X[repeated], Y[repeated])
    assert_allclose(
        a.predict(Q, return_std=True)[1], b.predict(Q, return_std=True)[1], rtol=1e-9
    )
    # top-k predictions, dense standard errors
    top = make().set_params(n_neighbors=10).fit(X, Y)
    prediction, std = top.predict(Q, return_std=True)
    assert_allclose(prediction, top.predict(Q), rtol=1e-12)
    assert_allclose(std, model.predict(Q, return_std=True)[1], rtol=1e-9)
    float32 = make().fit(X.astype(np.float32), Y)
    assert_allclose(
        float32.predict(Q.astype(np.float32), return_std=True)[1],
        model.predict(Q, return_std=True)[1],
        rtol=1e-4,
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_return_std_of_a_learned_metric_has_the_shape_of_y(rng):
    X, Y = _data(rng, n=30, n_outputs=2)
    Q = rng.uniform(-2, 2, size=(5, 2))
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


def _plain_fold_out(X, Y, w, Q, h, folds):
    """Predictions at Q (and at the training rows) of NW refitted without each
    fold, by a loop."""
    at_queries = np.empty((len(Q), len(X), Y.shape[1]))
    at_rows = np.empty_like(Y)
    for k in np.unique(folds):
        out = folds != k
        model = NadarayaWatsonRegressor(bandwidth=h).fit(X[out], Y[out], w[out])
        at_queries[:, folds == k] = model.predict(Q)[:, None, :]
        at_rows[folds == k] = model.predict(X[folds == k])
    return at_queries, at_rows


@pytest.mark.filterwarnings("ignore::skattn.LowSupportWarning")  # the far query
def test_cv_plus_equals_a_plain_implementation(rng):
    X, Y = _data(rng, n=35, n_outputs=1)
    y = Y[:, 0]
    w = rng.integers(1, 3, len(X)).astype(float)
    h = 0.7
    Q = np.vstack([rng.uniform(-2.5, 2.5, size=(7, 2)), [[30.0, 0.0]]])
    folds = cv_folds(X, Y)
    assert len(np.unique(folds)) == CV_FOLDS
    left_out, at_rows = _plain_fold_out(X, Y, w, Q, h, folds)
    model = NadarayaWatsonRegressor(bandwidth=h).fit(X, y, sample_weight=w)
    for coverage in (0.5, 0.9):
        expected = jackknife_plus_bounds(
            left_out[:, :, 0], np.abs(y - at_rows[:, 0]), w, coverage
        )
        got = model.predict_interval(Q, coverage=coverage, method="cv+")
        assert_allclose(got, expected, rtol=1e-10)


def test_cv_plus_folds_are_order_free_and_keep_repeated_rows_together(rng):
    X, Y = _data(rng, n=40)
    Q = rng.uniform(-2, 2, size=(5, 2))
    model = NadarayaWatsonRegressor(bandwidth=0.6).fit(X, Y)
    order = rng.permutation(len(X))
    permuted = NadarayaWatsonRegressor(bandwidth=0.6).fit(X[order], Y[order])
    for method in ("cv+", "jackknife+", "quantile"):
        assert_allclose(
            model.predict_interval(Q, method=method),
            permuted.predict_interval(Q, method=method),
            rtol=1e-10,
        )
    w = rng.integers(0, 3, len(X))
    w[:3] = 1
    repeated = np.repeat(np.arange(len(X)), w)
    a = NadarayaWatsonRegressor(bandwidth=0.6).fit(X, Y, sample_weight=w)
    b = NadarayaWatsonRegressor(bandwidth=0.6).fit(X[repeated], Y[repeated])
    for method in ("cv+", "quantile"):
        assert_allclose(
            a.predict_interval(Q, method=method),
            b.predict_interval(Q, method=method),
            rtol=1e-10,
        )
        assert_allclose(
            a.predict_quantiles(Q, [0.1, 0.5, 0.8], method=method),
            b.predict_quantiles(Q, [0.1, 0.5, 0.8], method=method),
            rtol=1e-10,
        )


def _plain_signed_quantiles(left_out, signed, w, quantiles):
    n = int(w.sum())
    out = np.empty((left_out.shape[0], len(quantiles)))
    for q in range(left_out.shape[0]):
        values = sorted(
            v for j in range(len(w)) for v in [left_out[q, j] + signed[j]] * int(w[j])
        )
        for i, tau in enumerate(quantiles):
            rank = math.ceil(tau * (n + 1)) if tau >= 0.5 else math.floor(tau * (n + 1))
            out[q, i] = (
                -np.inf if rank < 1 else np.inf if rank > n else values[rank - 1]
            )
    return out


def test_jackknife_plus_quantiles_equal_a_plain_implementation(rng):
    X, Y = _data(rng, n=25, n_outputs=1)
    y = Y[:, 0]
    w = rng.integers(1, 3, len(X)).astype(float)
    h = 0.7
    Q = rng.uniform(-2.5, 2.5, size=(6, 2))
    model = NadarayaWatsonRegressor(bandwidth=h).fit(X, y, sample_weight=w)
    left_out = _refits(X, Y, w, Q, "gaussian", h)[:, :, 0]
    loo = _plain_loo(X, y, w, h)
    quantiles = [0.01, 0.1, 0.5, 0.75, 0.99]  # 0.01 and 0.99: beyond the ranks
    expected = _plain_signed_quantiles(left_out, y - loo, w, quantiles)
    got = model.predict_quantiles(Q, quantiles)
    assert_allclose(got, expected, rtol=1e-10)
    assert np.all(np.isneginf(got[:, 0])) and np.all(np.isposinf(got[:, -1]))
    cv = model.predict_quantiles(Q, quantiles, method="cv+")
    assert cv.shape == got.shape and np.all(np.diff(cv, axis=1) >= 0)


@pytest.mark.filterwarnings("ignore::skattn.LowSupportWarning")  # the far query
def test_quantile_method_is_the_attention_weighted_empirical_quantile(rng):
    X, Y = _data(rng, n=30, n_outputs=2)
    Y[:4] = Y[4]  # ties
    w = rng.integers(1, 4, len(X)).astype(float)
    Q = np.vstack([rng.uniform(-2, 2, size=(6, 2)), [[40.0, 0.0]]])
    model = NadarayaWatsonRegressor(bandwidth=0.5).fit(X, Y, sample_weight=w)
    p = model.attention_weights(Q)
    quantiles = [0.05, 0.3, 0.5, 0.95]
    expected = np.empty((len(Q), len(quantiles), 2))
    for q in range(len(Q)):
        for o in range(2):
            order = sorted(range(len(X)), key=lambda j: Y[j, o])
            for i, tau in enumerate(quantiles):
                total = 0.0
                for j in order:  # the smallest target whose cumulated weight >= tau
                    total += p[q, j]
                    if total >= tau * p[q].sum() - 1e-12:
                        expected[q, i, o] = Y[j, o]
                        break
    got = model.predict_quantiles(Q, quantiles, method="quantile")
    assert_allclose(got, expected, rtol=1e-12)
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        for q in range(len(Q)):
            reference = np.quantile(
                Y[:, 0], quantiles, weights=p[q], method="inverted_cdf"
            )
            assert_allclose(got[q, :, 0], reference, rtol=1e-12)
    bounds = model.predict_interval(Q, coverage=0.9, method="quantile")
    assert_allclose(bounds, got[:, [0, 3]], rtol=1e-12)
    # within the range of the targets (a far query: its nearest row's target)
    assert np.all((got >= Y.min(axis=0)) & (got <= Y.max(axis=0)))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_quantiles_shapes_dtypes_and_the_trend(rng):
    X, Y = _data(rng, n=40, n_outputs=2)
    Q = rng.uniform(-2, 2, size=(4, 2))
    model = NadarayaWatsonRegressor(bandwidth=0.7).fit(X, Y)
    for method in ("jackknife+", "cv+", "quantile"):
        assert model.predict_quantiles(Q, method=method).shape == (4, 3, 2)
        assert model.predict_quantiles(Q, 0.5, method=method).shape == (4, 1, 2)
        assert model.predict_interval(Q, method=method).shape == (4, 2, 2)
    one = NadarayaWatsonRegressor(bandwidth=0.7).fit(X, Y[:, 0].astype(np.float32))
    assert one.predict_quantiles(Q, method="cv+").dtype == np.float32
    # the trend is held fixed: it shifts the quantiles of its residuals' pooling
    from skattn._trend import apply_trend

    learned = AttentionRegressor(max_iter=3, local_linear=False).fit(X, Y[:, 0])
    fixed = NadarayaWatsonRegressor(bandwidth=learned.bandwidth_).fit(
        X, learned._values[:, 0]
    )
    shift = apply_trend(learned._trend, Q)[:, 0]
    for method in ("jackknife+", "cv+", "quantile"):
        assert_allclose(
            learned.predict_quantiles(Q, [0.2, 0.6], method=method),
            fixed.predict_quantiles(Q, [0.2, 0.6], method=method) + shift[:, None],
            rtol=1e-9,
        )


@pytest.mark.parametrize(
    "quantiles", [0, 1, [0.5, 1.2], [], "0.5", [[0.1, 0.2]], [0.1, np.nan]]
)
def test_bad_quantiles(rng, quantiles):
    X, Y = _data(rng)
    model = NadarayaWatsonRegressor().fit(X, Y[:, 0])
    with pytest.raises(ValueError, match="quantiles"):
        model.predict_quantiles(X, quantiles)


def test_bad_method_and_cv_plus_needs_two_rows(rng):
    X, Y = _data(rng)
    model = NadarayaWatsonRegressor().fit(X, Y[:, 0])
    for call in (model.predict_interval, model.predict_quantiles):
        with pytest.raises(ValueError, match="method must be one of"):
            call(X, method="jackknife")
    twice = NadarayaWatsonRegressor().fit([[0.0], [0.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match="two distinct training rows"):
        twice.predict_interval([[0.0]], method="cv+")
    assert_allclose(twice.predict_interval([[0.0]], coverage=0.5), [[1.0, 1.0]])


# -- local-linear ----------------------------------------------------------------


def _ll_data(rng, n=30):
    X = rng.uniform(-2, 2, size=(n, 2))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)
    return X, y


@pytest.mark.filterwarnings("ignore::skattn.LowSupportWarning")
def test_local_linear_jackknife_plus_equals_refits(rng):
    from skattn import LocalLinearRegressor

    # ridge=0: each local fit is plain weighted least squares, whatever the units
    X, y = _ll_data(rng)
    w = rng.integers(1, 3, len(X)).astype(float)
    h = np.array([0.9, 1.3])
    Q = np.vstack([rng.uniform(-2, 2, size=(5, 2)), [[2.5, -2.5]]])
    model = LocalLinearRegressor(bandwidth=h, ridge=0.0).fit(X, y, sample_weight=w)
    left_out = np.empty((len(Q), len(X)))
    loo = np.empty(len(X))
    for j in range(len(X)):
        refit = LocalLinearRegressor(bandwidth=h, ridge=0.0).fit(
            X, y, sample_weight=w - np.eye(len(X))[j]
        )
        left_out[:, j] = refit.predict(Q)
        loo[j] = refit.predict(X[j : j + 1])[0]
    for coverage in (0.5, 0.9):
        expected = jackknife_plus_bounds(left_out, np.abs(y - loo), w, coverage)
        got = model.predict_interval(Q, coverage=coverage)
        assert_allclose(got, expected, rtol=1e-8, atol=1e-10)
    expected = _plain_signed_quantiles(left_out, y - loo, w, [0.1, 0.5, 0.9])
    assert_allclose(model.predict_quantiles(Q, [0.1, 0.5, 0.9]), expected, rtol=1e-8)


@pytest.mark.filterwarnings("ignore::skattn.LowSupportWarning")
def test_local_linear_cv_plus_equals_refits(rng):
    from skattn import LocalLinearRegressor

    X, y = _ll_data(rng, n=40)
    h = np.array([1.0, 1.2])
    Q = rng.uniform(-2, 2, size=(6, 2))
    model = LocalLinearRegressor(bandwidth=h, ridge=0.0).fit(X, y)
    folds = cv_folds(X, y[:, None])
    left_out = np.empty((len(Q), len(X)))
    at_rows = np.empty(len(X))
    for k in np.unique(folds):
        out = folds != k
        refit = LocalLinearRegressor(bandwidth=h, ridge=0.0).fit(X[out], y[out])
        left_out[:, folds == k] = refit.predict(Q)[:, None]
        at_rows[folds == k] = refit.predict(X[folds == k])
    expected = jackknife_plus_bounds(
        left_out, np.abs(y - at_rows), np.ones(len(X)), 0.8
    )
    got = model.predict_interval(Q, coverage=0.8, method="cv+")
    assert_allclose(got, expected, rtol=1e-8, atol=1e-10)


def test_local_linear_quantiles_move_the_targets_along_the_local_line(rng):
    from skattn import LocalLinearRegressor

    X, y = _ll_data(rng, n=40)
    h = np.array([0.8, 1.0])
    Q = rng.uniform(-1.5, 1.5, size=(5, 2))
    model = LocalLinearRegressor(bandwidth=h).fit(X, y)
    p = NadarayaWatsonRegressor(bandwidth=h).fit(X, y).attention_weights(Q)
    slopes = model.marginal_effects(Q)
    quantiles = [0.05, 0.5, 0.9]
    got = model.predict_quantiles(Q, quantiles, method="quantile")
    for q in range(len(Q)):
        moved = y - (X - Q[q]) @ slopes[q]
        order = np.argsort(moved)
        cumulative = np.cumsum(p[q, order])
        for i, tau in enumerate(quantiles):
            expected = moved[order][np.searchsorted(cumulative, tau - 1e-12)]
            assert_allclose(got[q, i], expected, rtol=1e-8)
        # their attention-weighted mean is the local-linear prediction
        assert_allclose(p[q] @ moved, model.predict(Q[q : q + 1])[0], rtol=1e-8)


def test_local_linear_interval_shapes_and_errors(rng):
    from skattn import LocalLinearRegressor

    X, y = _ll_data(rng, n=40)
    Y = np.column_stack([y, -y])
    Q = rng.uniform(-2, 2, size=(4, 2))
    model = LocalLinearRegressor(bandwidth=1.0).fit(X, Y)
    for method in ("jackknife+", "cv+", "quantile"):
        bounds = model.predict_interval(Q, method=method)
        assert bounds.shape == (4, 2, 2) and np.all(bounds[:, 0] <= bounds[:, 1])
        assert model.predict_quantiles(Q, method=method).shape == (4, 3, 2)
    one = LocalLinearRegressor(bandwidth=1.0).fit(X, y.astype(np.float32))
    assert one.predict_interval(Q).dtype == np.float32
    assert model.n_effective(Q).shape == (4,)
    with pytest.raises(ValueError, match="method must be one of"):
        model.predict_interval(Q, method="bootstrap")


def _plain_local_linear_std(X, Y, Q, h):
    """LocalLinearRegressor's standard errors (``ridge=0``: the refits' ridge would
    be in their own design units) by a loop of refits (unit weights):
    leave-one-out residuals and equivalent kernels from explicit refits without
    each row, their deflated squares pooled by the other rows' Gaussian attention,
    and ``sqrt(sum_j l_j(q)^2 sigma_j^2)``."""
    from skattn import LocalLinearRegressor

    n = len(X)
    deflated = np.empty_like(Y)
    for i in range(n):
        rest = np.arange(n) != i
        model = LocalLinearRegressor(bandwidth=h, ridge=0.0).fit(X[rest], Y[rest])
        ell = model.attention_weights(X[i : i + 1])[0]
        deflated[i] = (Y[i] - model.predict(X[i : i + 1])[0]) ** 2 / (1 + ell @ ell)
    sq = (((X[:, None, :] - X[None, :, :]) / h) ** 2).sum(axis=2)
    p = np.exp(-sq / 2)
    np.fill_diagonal(p, 0.0)
    p /= p.sum(axis=1, keepdims=True)
    variances = p @ deflated
    ell = LocalLinearRegressor(bandwidth=h, ridge=0.0).fit(X, Y).attention_weights(Q)
    return np.sqrt((ell**2) @ variances)


def test_local_linear_std_equals_a_plain_loop_of_refits(rng):
    from skattn import LocalLinearRegressor

    X, Y = _data(rng, n=40, n_outputs=2)
    Q = rng.uniform(-2.5, 2.5, size=(7, 2))
    h = np.array([0.8, 1.1])
    model = LocalLinearRegressor(bandwidth=h, ridge=0.0).fit(X, Y)
    prediction, std = model.predict(Q, return_std=True)
    assert_allclose(std, _plain_local_linear_std(X, Y, Q, h), rtol=1e-9)
    assert_allclose(prediction, model.predict(Q), rtol=1e-12)


def test_local_linear_std_matches_the_monte_carlo_spread():
    from skattn import LocalLinearRegressor

    # as for Nadaraya-Watson: a smooth function, constant noise, the bandwidth
    # fixed; the edges too, where local-linear's equivalent kernel goes negative
    rng = np.random.default_rng(0)
    n, h, sigma = 400, 0.3, 0.2
    X = np.sort(rng.uniform(-3, 3, size=(n, 1)), axis=0)
    Q = np.array([[-2.9], [-1.5], [-0.5], [0.0], [0.5], [1.5], [2.9]])
    ell = LocalLinearRegressor(bandwidth=h).fit(X, X[:, 0]).attention_weights(Q)
    truth = sigma * np.sqrt((ell**2).sum(axis=1))
    predictions, stds = [], []
    for _ in range(300):
        y = np.sin(X[:, 0]) + sigma * rng.normal(size=n)
        model = LocalLinearRegressor(bandwidth=h).fit(X, y)
        prediction, std = model.predict(Q, return_std=True)
        predictions.append(prediction)
        stds.append(std)
    monte_carlo = np.std(predictions, axis=0)
    interior = slice(1, -1)  # the Monte-Carlo spread itself is noisier at the edges
    ratio = np.mean(stds, axis=0) / monte_carlo
    assert np.all(np.abs(ratio[interior] - 1.0) < 0.1)
    assert np.all(np.abs(np.mean(stds, axis=0) / truth - 1.0) < 0.05)


@pytest.mark.parametrize("make", _std_smoothers())
@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_return_std_scales_with_the_targets_at_the_float_limits(rng, make, scale):
    # the squared residuals of y * 1e300 overflowed: std was inf / NaN
    X, Y = _data(rng, n=40, n_outputs=2)
    Q = rng.uniform(-2, 2, size=(6, 2))
    _, std = make().fit(X, Y).predict(Q, return_std=True)
    _, scaled = make().fit(X, Y * scale).predict(Q, return_std=True)
    assert np.all(np.isfinite(scaled))
    assert_allclose(scaled, std * scale, rtol=1e-9)


@pytest.mark.parametrize("scale", [2.0**1000, 1e300, 1e-300])
def test_local_linear_scales_with_the_targets_at_the_float_limits(rng, scale):
    # the local fits' x * y moments of targets near 1.7e308 overflowed: predictions
    # were silently wrong (relative error 1.2), intervals and slopes inf / NaN
    X, Y = _data(rng, n=60, n_outputs=2)
    Y = Y / np.max(np.abs(Y), axis=0) * 1.5  # the largest target: 1.5 * scale
    Q = rng.uniform(-2, 2, size=(6, 2))
    model = LocalLinearRegressor(bandwidth=0.8).fit(X, Y)
    scaled = LocalLinearRegressor(bandwidth=0.8).fit(X, Y * scale)
    pairs = [
        (model.predict(Q), scaled.predict(Q)),
        (model.predict(Q, return_std=True)[1], scaled.predict(Q, return_std=True)[1]),
        (model.marginal_effects(Q), scaled.marginal_effects(Q)),
        (model.predict_interval(Q), scaled.predict_interval(Q)),
        (
            model.predict_quantiles(Q, method="quantile"),
            scaled.predict_quantiles(Q, method="quantile"),
        ),
    ]
    for expected, got in pairs:
        assert np.all(np.isfinite(got))
        assert_allclose(got / scale, expected, rtol=1e-9, atol=1e-12)
    # and the leave-one-out choice of the bandwidths does not see the scale (up to
    # the optimiser's tolerance where the scale is not a power of two; a bandwidth
    # in the flat, linear region may move, the fit not)
    cv = LocalLinearRegressor().fit(X, Y)
    cv_scaled = LocalLinearRegressor().fit(X, Y * scale)
    assert_allclose(cv_scaled.predict(Q) / scale, cv.predict(Q), rtol=1e-6)


def test_local_linear_at_the_largest_floats():
    # y up to 1.7e308: the reproducer (predict relative error 1.2 before)
    X = np.linspace(0.0, 1.0, 30).reshape(-1, 1)
    y = (1.0 + X[:, 0] + 0.1 * np.sin(6 * X[:, 0])) * (1.7e308 / 2.1)
    model = LocalLinearRegressor(bandwidth=0.2).fit(X, y)
    reference = LocalLinearRegressor(bandwidth=0.2).fit(X, y / 2.0**1000)
    assert_allclose(model.predict(X), reference.predict(X) * 2.0**1000, rtol=1e-12)
    bounds = model.predict_interval(X)
    assert np.all(np.isfinite(bounds)) and np.all(bounds[:, 0] <= bounds[:, 1])
