"""LocalLinearRegressor against plain loops, statsmodels and its limits."""

# SPDX-License-Identifier: BSD-3-Clause

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import approx_fprime
from sklearn.datasets import make_friedman1
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skattn import LocalLinearRegressor, NadarayaWatsonRegressor
from skattn._kernels import KERNELS
from skattn._learning import LeaveOneOutObjective, LinearPrior
from skattn._local import LocalLinear

from ._reference import local_linear

COMPACT = ("tophat", "epanechnikov", "linear", "cosine")


def _data(rng, n=40, d=2, n_outputs=1):
    X = rng.uniform(-1, 1, size=(n, d))
    Y = np.column_stack(
        [np.sin(2 * X[:, 0] + k) + X[:, -1] ** 2 for k in range(n_outputs)]
    ) + 0.1 * rng.normal(size=(n, n_outputs))
    return X, Y


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("bandwidth", [0.9, [1.2, 0.8]])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ridge", [0.0, 0.3])
def test_matches_plain_loop(rng, kernel, bandwidth, weighted, ridge):
    X, Y = _data(rng, n_outputs=2)
    w = rng.integers(1, 4, len(X)).astype(float) if weighted else None
    # inside the data: every compact support holds enough rows for a fit
    Q = rng.uniform(-0.5, 0.5, size=(7, 2))
    model = LocalLinearRegressor(kernel, bandwidth, ridge=ridge).fit(X, Y, w)
    intercepts, slopes = local_linear(X, Y, Q, kernel, bandwidth, w, ridge)
    assert_allclose(model.predict(Q), intercepts, rtol=1e-10, atol=1e-10)
    assert_allclose(
        model.marginal_effects(Q), np.swapaxes(slopes, 1, 2), rtol=1e-9, atol=1e-10
    )
    one = LocalLinearRegressor(kernel, bandwidth, ridge=ridge).fit(X, Y[:, 0], w)
    assert_allclose(one.predict(Q), intercepts[:, 0], rtol=1e-10, atol=1e-10)
    assert_allclose(one.marginal_effects(Q), slopes[:, :, 0], rtol=1e-9, atol=1e-10)


def test_equivalent_kernel(rng):
    X, Y = _data(rng, n_outputs=2)
    w = rng.integers(1, 3, len(X)).astype(float)
    w[3] = 0.0
    Q = rng.uniform(-1.5, 1.5, size=(9, 2))
    model = LocalLinearRegressor(bandwidth=0.5, ridge=0.01).fit(X, Y, w)
    weights = model.attention_weights(Q)
    assert weights.shape == (9, len(X))
    assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    assert_allclose(weights[:, 3], 0.0)
    assert_allclose(weights @ Y, model.predict(Q), rtol=1e-10, atol=1e-12)
    assert (weights < 0).any()  # a line through the data: far rows pull back

    sparse_model = LocalLinearRegressor(bandwidth=0.5, n_neighbors=10).fit(X, Y, w)
    sparse_weights = sparse_model.attention_weights(Q)
    assert sparse_weights.shape == (9, len(X))
    assert_allclose(sparse_weights.toarray() @ Y, sparse_model.predict(Q), atol=1e-10)
    assert np.all(np.diff(sparse_weights.indptr) == 10)


def test_top_k_is_the_fit_over_the_nearest_rows(rng):
    X, y = _data(rng, n=60)
    Q = rng.uniform(-0.8, 0.8, size=(5, 2))
    # ridge=0: the ridge's unit is the spread of the training rows
    model = LocalLinearRegressor(bandwidth=0.4, ridge=0.0, n_neighbors=15)
    model.fit(X, y[:, 0])
    for q, prediction in zip(Q, model.predict(Q), strict=True):
        nearest = np.argsort((((X - q) / 0.4) ** 2).sum(axis=1))[:15]
        dense = LocalLinearRegressor(bandwidth=0.4, ridge=0.0)
        dense.fit(X[nearest], y[nearest, 0])
        assert_allclose(prediction, dense.predict(q[None])[0], rtol=1e-10)
    radius = LocalLinearRegressor("epanechnikov", 0.7, n_neighbors="radius")
    dense = LocalLinearRegressor("epanechnikov", 0.7)
    assert_allclose(radius.fit(X, y).predict(Q), dense.fit(X, y).predict(Q), rtol=1e-10)


def test_infinite_bandwidths_give_least_squares(rng):
    X = rng.normal(size=(50, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -3.0]
    y = X @ [1.0, -0.5, 4.0] + rng.normal(size=50)
    w = rng.uniform(0.5, 3.0, 50)
    Q = rng.normal(size=(6, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -3.0]
    ols = LinearRegression().fit(X, y, sample_weight=w)
    for kernel in ("gaussian", "exponential", "epanechnikov"):
        model = LocalLinearRegressor(kernel, 1e9 * X.std(axis=0), ridge=0.0)
        model.fit(X, y, sample_weight=w)
        assert_allclose(model.predict(Q), ols.predict(Q), rtol=1e-8, atol=1e-8)
        assert_allclose(
            model.marginal_effects(Q), np.tile(ols.coef_, (6, 1)), rtol=1e-8
        )
        assert model.linear_features_.all()
    # the default's tiny ridge stays within 1e-6 of least squares
    model = LocalLinearRegressor(bandwidth=1e9 * X.std(axis=0)).fit(X, y, w)
    assert_allclose(model.predict(Q), ols.predict(Q), rtol=1e-5)


def test_a_line_is_fitted_exactly_at_the_edges(rng):
    X = rng.uniform(0, 1, size=(30, 2))
    y = 3.0 * X[:, 0] - 2.0 * X[:, 1] + 1.0
    model = LocalLinearRegressor(bandwidth=0.1, ridge=0.0).fit(X, y)
    corners = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert_allclose(model.predict(corners), [1.0, 2.0, -1.0], atol=1e-9)
    nw = NadarayaWatsonRegressor(bandwidth=0.1).fit(X, y)
    assert np.abs(nw.predict(corners) - [1.0, 2.0, -1.0]).max() > 0.05


@pytest.mark.parametrize("kernel", ["gaussian", "exponential", "tophat"])
def test_small_bandwidth_gives_the_nearest_row(rng, kernel):
    X, y = _data(rng, n=30)
    Q = rng.uniform(-1, 1, size=(8, 2))
    model = LocalLinearRegressor(kernel, 1e-6).fit(X, y[:, 0])
    nearest = np.argmin(((Q[:, None] - X[None]) ** 2).sum(axis=2), axis=1)
    assert_allclose(model.predict(Q), y[nearest, 0], rtol=1e-12)
    assert_allclose(model.marginal_effects(Q), 0.0, atol=1e-12)


@pytest.mark.parametrize("ridge", [0.0, 1e-6])
def test_degenerate_designs_are_finite(rng, ridge):
    # collinear features, a duplicated column, far queries, a single weighted row
    x = rng.normal(size=40)
    X = np.column_stack([x, 2 * x, x, rng.normal(size=40)])
    y = np.sin(x)
    Q = np.array([[0.0, 0.0, 0.0, 0.0], [1e8, -1e8, 3e7, 1e150], [1e300] * 4])
    for kernel in ("gaussian", "tophat", "epanechnikov"):
        model = LocalLinearRegressor(kernel, 0.3, ridge=ridge).fit(X, y)
        assert np.isfinite(model.predict(Q)).all()
        assert np.isfinite(model.marginal_effects(Q)).all()
        assert np.isfinite(model.attention_weights(Q)).all()
    w = np.zeros(40)
    w[5] = 2.0
    w[9] = 1e-300
    model = LocalLinearRegressor(bandwidth=1.0, ridge=ridge).fit(X, y, w)
    assert np.isfinite(model.predict(Q)).all()
    weights = model.attention_weights(Q)
    assert np.isfinite(weights).all()
    assert_allclose(weights @ y, model.predict(Q), rtol=1e-9)


def test_sample_weight_is_repetition(rng):
    X, y = _data(rng, n=30)
    w = rng.integers(0, 3, 30)
    w[:2] = 1
    repeated = np.repeat(np.arange(30), w)
    Q = rng.uniform(-1, 1, size=(6, 2))
    for bandwidth in ("cv", 0.5, "scott"):
        a = LocalLinearRegressor(bandwidth=bandwidth).fit(X, y, w)
        b = LocalLinearRegressor(bandwidth=bandwidth).fit(X[repeated], y[repeated])
        assert_allclose(a.bandwidth_, b.bandwidth_, rtol=1e-6)
        assert_allclose(a.predict(Q), b.predict(Q), rtol=1e-6, atol=1e-9)


def _loo_predictions(model):
    """The fitted model's leave-one-out predictions of its rows, in y's units."""
    return model._to_target_units(model._leave_one_out_predict())


def test_leave_one_out_matches_refits(rng):
    X, Y = _data(rng, n=25, n_outputs=2)
    w = rng.integers(1, 3, 25).astype(float)
    model = LocalLinearRegressor(bandwidth=[0.7, 0.9], ridge=1e-3).fit(X, Y, w)
    loo = _loo_predictions(model)
    for i in range(25):
        w_i = w.copy()
        w_i[i] -= 1
        refit = LocalLinearRegressor(bandwidth=[0.7, 0.9], ridge=1e-3)
        # the ridge's unit (the spreads) is the full data's
        refit.fit(X, Y, w_i)
        refit._spread = model._spread
        refit._center = model._center
        refit._moments = refit._local.values(refit._values, refit._design(refit._keys))
        refit._fit_head(1.0 / refit.bandwidth_)
        assert_allclose(loo[i], refit.predict(X[i : i + 1])[0], rtol=1e-9)


@pytest.mark.parametrize("ridge", [0.0, 0.05])
@pytest.mark.parametrize("kernel", ["gaussian", "exponential"])
def test_objective_gradient(rng, kernel, ridge):
    X, Y = _data(rng, n=50, d=3, n_outputs=2)
    w = rng.integers(1, 3, 50).astype(float)
    objective = LeaveOneOutObjective(
        X,
        Y,
        w,
        kernel=kernel,
        metric="diagonal",
        n_components=None,
        alpha=0.0,
        n_jobs=1,
        local=LocalLinear(ridge, 3),
    )
    x0 = np.log([0.6, 1.4, 0.9])
    value, grad = objective(x0)
    numeric = approx_fprime(x0, lambda p: objective(p)[0], 1e-7)
    assert_allclose(grad, numeric, rtol=1e-4, atol=1e-8)
    # the value is 1 - R^2 of the leave-one-out predictions
    model = LocalLinearRegressor(kernel, np.exp(x0) * objective.spread, ridge=ridge)
    predictions = _loo_predictions(model.fit(X, Y, w))
    residual = ((predictions - Y) ** 2).sum(axis=1) @ w
    total = ((Y - w @ Y / w.sum()) ** 2).sum(axis=1) @ w
    assert_allclose(value, residual / total, rtol=1e-10)


def test_full_metric_gradient_with_local_linear_pooling(rng):
    X, Y = _data(rng, n=40, d=3)
    objective = LeaveOneOutObjective(
        X,
        Y,
        np.ones(40),
        kernel="gaussian",
        metric="full",
        n_components=2,
        alpha=0.0,
        n_jobs=1,
        local=LocalLinear(0.01, 3),
    )
    x0 = rng.normal(size=6)
    numeric = approx_fprime(x0, lambda p: objective(p)[0], 1e-7)
    assert_allclose(objective(x0)[1], numeric, rtol=1e-4, atol=1e-8)


def test_cv_lowers_the_leave_one_out_error(rng):
    X, y = make_friedman1(n_samples=200, n_features=5, noise=0.5, random_state=0)
    X = StandardScaler().fit_transform(X)
    model = LocalLinearRegressor().fit(X, y)
    nw = NadarayaWatsonRegressor(bandwidth="cv").fit(X, y)
    start = LocalLinearRegressor(bandwidth=nw.bandwidth_).fit(X, y)

    def loo(m):
        return np.mean((_loo_predictions(m)[:, 0] - y) ** 2)

    assert loo(model) < loo(start)
    assert model.n_iter_ >= 1
    # friedman1's x4 and x5 enter linearly; x1 and x2 through a sine
    assert not model.linear_features_[:2].any()
    for kernel in COMPACT[1:2]:
        compact = LocalLinearRegressor(kernel).fit(X, y)
        assert np.isfinite(compact.bandwidth_).all() and compact.n_iter_ > 1


def _local_linear_objective(X, Y, w, metric):
    """The local-linear leave-one-out objective (Gaussian kernel, no ridge)."""
    return LeaveOneOutObjective(
        X,
        Y,
        w,
        kernel="gaussian",
        metric=metric,
        n_components=None,
        alpha=0.0,
        n_jobs=1,
        local=LocalLinear(0.0, X.shape[1]),
    )


@pytest.mark.parametrize("strength", [0.5, 4.0])
def test_linear_prior_value_and_gradient(rng, strength):
    X, Y = _data(rng, n=40, d=3)
    w = rng.integers(1, 3, 40).astype(float)
    objective = _local_linear_objective(X, Y, w, "diagonal")
    prior = LinearPrior(objective, strength)
    x0 = np.log([0.5, 2.0, 0.9])
    value, grad = prior(x0)
    loss, _ = objective(x0)
    # log(1 - R^2 of the leave-one-out fits) + strength / n * sum (s / h)^2
    expected = np.log(loss) + strength / w.sum() * np.sum(np.exp(-2.0 * x0))
    assert_allclose(value, expected, rtol=1e-12)
    numeric = approx_fprime(x0, lambda p: prior(p)[0], 1e-7)
    assert_allclose(grad, numeric, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="diagonal metric and alpha=0"):
        LinearPrior(_local_linear_objective(X, Y, w, "isotropic"), 1.0)


def test_cv_prior_pulls_toward_linear(rng, monkeypatch):
    # a nearly linear target with few rows: without the prior ("cv_ls") the
    # leave-one-out loss alone tunes some bandwidths narrow; with it they are wider
    import skattn._local_linear as local_linear

    X = rng.normal(size=(60, 4))
    y = X @ [1.0, -0.5, 0.3, 0.0] + 0.1 * X[:, 0] ** 2 + 0.5 * rng.normal(size=60)
    with_prior = LocalLinearRegressor().fit(X, y)
    without = LocalLinearRegressor(bandwidth="cv_ls").fit(X, y)
    # "cv_ls" is "cv" with the prior's strength at 0
    monkeypatch.setattr(local_linear, "LINEAR_PRIOR", 0.0)
    assert_allclose(
        LocalLinearRegressor().fit(X, y).bandwidth_, without.bandwidth_, rtol=1e-12
    )

    # and its leave-one-out error is the lower one
    def loo(model):
        return np.mean((_loo_predictions(model)[:, 0] - y) ** 2)

    assert loo(without) <= loo(with_prior)
    spread = X.std(axis=0)

    def precision(model):  # what the prior penalises
        return np.sum((spread / model.bandwidth_) ** 2)

    assert precision(with_prior) < 0.9 * precision(without)
    assert with_prior.linear_features_.sum() >= without.linear_features_.sum()


def test_linear_features_and_the_cap(rng):
    X = rng.uniform(-2, 2, size=(200, 2))
    span = np.ptp(X, axis=0)
    model = LocalLinearRegressor(bandwidth=[10.0 * span[0], 0.1 * span[1]])
    assert model.fit(X, X[:, 0]).linear_features_.tolist() == [True, False]
    # "cv" on a linear function: bandwidths within the cap, the fit least squares'
    y = 2.0 * X[:, 0] - X[:, 1] + 0.3 * rng.normal(size=200)
    Q = rng.uniform(-2, 2, size=(200, 2))
    truth = 2.0 * Q[:, 0] - Q[:, 1]
    model = LocalLinearRegressor().fit(X, y)
    assert np.all(model.bandwidth_ <= 1e4 * span * (1 + 1e-12))
    ols = LinearRegression().fit(X, y)
    error = np.mean((model.predict(Q) - truth) ** 2)
    assert error < 2.0 * np.mean((ols.predict(Q) - truth) ** 2) + 1e-3


def test_float32_and_pandas(rng):
    pd = pytest.importorskip("pandas")
    X, y = _data(rng)
    model = LocalLinearRegressor(bandwidth=0.6)
    p64 = model.fit(X, y[:, 0]).predict(X)
    p32 = model.fit(X.astype(np.float32), y[:, 0].astype(np.float32)).predict(X)
    assert p32.dtype == np.float32
    assert_allclose(p32, p64, rtol=1e-5, atol=1e-5)
    assert model.fit(X.astype(np.float32), y[:, 0]).predict(X).dtype == np.float64
    frame = pd.DataFrame(X, columns=["a", "b"])
    model.fit(frame, y[:, 0])
    assert model.feature_names_in_.tolist() == ["a", "b"]
    assert_allclose(model.predict(frame), p64)


def test_pipeline_grid_search_pickle(rng):
    X, y = make_friedman1(n_samples=120, n_features=5, random_state=0)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LocalLinearRegressor()),
        {"locallinearregressor__ridge": [1e-6, 1.0]},
        cv=3,
    ).fit(X, y)
    restored = pickle.loads(pickle.dumps(search))
    assert_allclose(restored.predict(X), search.predict(X))


def test_bad_parameters(rng):
    X, y = _data(rng)
    with pytest.raises(ValueError, match="ridge"):
        LocalLinearRegressor(ridge=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="bandwidth"):
        LocalLinearRegressor(bandwidth=[1.0, 2.0, 3.0]).fit(X, y)
    with pytest.raises(ValueError, match="bandwidth"):
        LocalLinearRegressor(bandwidth="wide").fit(X, y)
    with pytest.raises(ValueError, match="minimum of 2"):
        LocalLinearRegressor().fit(X[:1], y[:1])


statsmodels = pytest.importorskip("statsmodels.nonparametric.kernel_regression")


@pytest.mark.filterwarnings("ignore::FutureWarning")  # statsmodels' own RNG notice
def test_agrees_with_statsmodels(rng):
    X, Y = _data(rng, n=60, d=3)
    y = Y[:, 0]
    h = np.array([0.5, 0.8, 0.6])
    Q = rng.uniform(-0.8, 0.8, size=(10, 3))
    reference = statsmodels.KernelReg(y, X, var_type="ccc", reg_type="ll", bw=h)
    mean, mfx = reference.fit(Q)
    model = LocalLinearRegressor(bandwidth=h, ridge=0.0).fit(X, y)
    assert_allclose(model.predict(Q), mean, rtol=1e-8)
    assert_allclose(model.marginal_effects(Q), mfx, rtol=1e-8, atol=1e-10)
    # statsmodels' cv_ls objective (the mean squared leave-one-out error)
    cv_ls = reference.cv_loo(h, reference._est_loc_linear)
    loo = np.mean((_loo_predictions(model)[:, 0] - y) ** 2)
    assert_allclose(loo, cv_ls, rtol=1e-8)


@pytest.mark.parametrize("ridge", [0.0, 0.3])
def test_solved_fits_equal_the_eigenvector_fits(rng, ridge, monkeypatch):
    # local designs with every direction kept are solved directly; the same fits
    # by eigenvectors (the path of degenerate chunks) agree to rounding
    X, Y = _data(rng, n=60, d=3, n_outputs=2)
    Q = rng.uniform(-1, 1, size=(30, 3))
    model = LocalLinearRegressor(bandwidth=[0.7, 0.9, 1.3], ridge=ridge).fit(X, Y)
    expected = (
        model.predict(Q),
        model.marginal_effects(Q),
        model.attention_weights(Q),
    )

    def not_positive_definite(a):
        raise np.linalg.LinAlgError("forced")

    monkeypatch.setattr(np.linalg, "cholesky", not_positive_definite)
    got = (model.predict(Q), model.marginal_effects(Q), model.attention_weights(Q))
    for a, b in zip(got, expected, strict=True):
        assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_snap_to_linear_never_raises_the_objective():
    from skattn._local_linear import _snap_to_linear

    class Objective:
        bounds = (np.full(3, -5.0), np.full(3, 10.0))

        def __init__(self, loss):
            self.loss = loss

        def __call__(self, params):
            return self.loss(params), np.zeros(3)

    start = np.array([1.0, 2.0, 3.0])
    every = np.ones(3, bool)
    # lower toward every cap: all go together
    falling = Objective(lambda p: -np.sum(p))
    assert_allclose(_snap_to_linear(falling, start, every), [10.0, 10.0, 10.0])
    # only the second feature's cap is lower: it alone moves
    second = Objective(lambda p: (p[0] - 1) ** 2 + (p[2] - 3) ** 2 - p[1])
    assert_allclose(_snap_to_linear(second, start, every), [1.0, 10.0, 3.0])
    # higher at every cap, or no candidates: nothing moves
    rising = Objective(lambda p: np.sum(p))
    assert_allclose(_snap_to_linear(rising, start, every), start)
    assert_allclose(_snap_to_linear(falling, start, np.zeros(3, bool)), start)
    # a candidate already at its cap is no candidate
    at_cap = np.array([10.0, 2.0, 3.0])
    assert_allclose(_snap_to_linear(rising, at_cap, every), at_cap)


def test_cv_puts_an_exactly_linear_feature_at_the_cap(rng):
    # the targets linear in x0: its leave-one-out loss is flat in h0 (a local-linear
    # fit reproduces a line at any bandwidth), and "cv" ends at the linear limit
    X = rng.uniform(-2, 2, size=(200, 2))
    y = 2 * X[:, 0] + np.sin(2 * X[:, 1]) + 0.1 * rng.normal(size=200)
    model = LocalLinearRegressor().fit(X, y)
    span = np.ptp(X, axis=0)
    assert_allclose(model.bandwidth_[0], 1e4 * span[0], rtol=1e-12)
    assert model.linear_features_.tolist() == [True, False]
    assert model.bandwidth_[1] < 0.2 * span[1]
