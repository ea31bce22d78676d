# SPDX-License-Identifier: BSD-3-Clause

import pickle
import re
import warnings

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.base import clone
from sklearn.datasets import make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectFromModel
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skattn import AttentionRegressor, NadarayaWatsonRegressor
from skattn._learning import LeaveOneOutObjective
from tests._reference import leave_one_out, nadaraya_watson

METRICS = [("isotropic", None), ("diagonal", None), ("full", 2), ("full", 3)]


def _data(rng, n=40, d=3, outputs=1):
    X = rng.normal(size=(n, d)) * [1.0, 3.0, 0.5][:d]
    Y = np.column_stack(
        [np.sin(X[:, 0]) + 0.1 * rng.normal(size=n), X[:, 1] * X[:, 2]][:outputs]
    )
    return X, Y


def _objective(X, Y, w, kernel, metric, k, alpha=0.0):
    return LeaveOneOutObjective(
        X, Y, w, kernel=kernel, metric=metric, n_components=k, alpha=alpha, n_jobs=None
    )


@pytest.mark.parametrize("metric, k", METRICS)
@pytest.mark.parametrize("kernel", ["gaussian", "exponential"])
@pytest.mark.parametrize("weights", ["none", "integer", "fractional"])
@pytest.mark.parametrize("outputs", [1, 2])
def test_gradient_matches_finite_differences(rng, metric, k, kernel, weights, outputs):
    X, Y = _data(rng, outputs=outputs)
    w = {
        "none": np.ones(len(X)),
        "integer": rng.integers(1, 4, len(X)).astype(float),
        "fractional": rng.uniform(0.3, 3.0, len(X)),
    }[weights]
    obj = _objective(X, Y, w, kernel, metric, k, alpha=0.01)
    x0 = rng.normal(size=obj.n_params) * 0.3
    error = check_grad(lambda p: obj(p)[0], lambda p: obj(p)[1], x0)
    assert error / np.linalg.norm(obj(x0)[1]) < 1e-5


@pytest.mark.parametrize("metric, k", METRICS)
@pytest.mark.parametrize("outputs", [1, 2])
def test_gradient_sums_by_gemm_equal_those_of_the_formed_terms(
    rng, monkeypatch, metric, k, outputs
):
    # the Gaussian Nadaraya-Watson gradient takes the sums of A from GEMMs of the
    # attention (skattn._learning._constant_gaussian_terms) where they pay; forming
    # A gives the same loss and gradient
    import skattn._learning as learning

    X, Y = _data(rng, outputs=outputs)
    w = rng.integers(1, 4, len(X)).astype(float)  # own copies in leave-one-out
    x0 = rng.normal(size=_objective(X, Y, w, "gaussian", metric, k).n_params) * 0.3
    by_gemm = _objective(X, Y, w, "gaussian", metric, k)(x0)
    monkeypatch.setattr(learning, "GEMM_SUMS_MAX_WIDTH", 0)
    formed = _objective(X, Y, w, "gaussian", metric, k)(x0)
    np.testing.assert_allclose(by_gemm[0], formed[0], rtol=1e-12)
    np.testing.assert_allclose(by_gemm[1], formed[1], rtol=1e-9, atol=1e-12)


def _plain_loo_loss(X, Y, w, kernel, bandwidth):
    residual = leave_one_out(X, Y, kernel, bandwidth, w) - Y
    tss = (w[:, None] * (Y - np.average(Y, axis=0, weights=w)) ** 2).sum()
    return (w[:, None] * residual**2).sum() / tss


@pytest.mark.parametrize("metric, k", METRICS)
@pytest.mark.parametrize("kernel", ["gaussian", "exponential"])
def test_loss_matches_plain_loop(rng, metric, k, kernel):
    X, Y = _data(rng, n=25, outputs=2)
    w = rng.integers(1, 3, len(X)).astype(float)
    obj = _objective(X, Y, w, kernel, metric, k)
    params = rng.normal(size=obj.n_params) * 0.3
    if metric == "full":
        W = obj.metric.components_from_params(params)
        expected = _plain_loo_loss(X @ W.T, Y, w, kernel, 1.0)
    else:
        expected = _plain_loo_loss(
            X, Y, w, kernel, obj.metric.bandwidth_from_params(params)
        )
    np.testing.assert_allclose(obj(params)[0], expected, rtol=1e-10)


@pytest.mark.parametrize("metric, k", METRICS)
def test_weights_equal_repetition(rng, metric, k):
    X, Y = _data(rng, n=30)
    w = rng.integers(1, 4, len(X))
    weighted = _objective(X, Y, w.astype(float), "gaussian", metric, k)
    repeated = _objective(
        np.repeat(X, w, axis=0),
        np.repeat(Y, w, axis=0),
        np.ones(w.sum()),
        "gaussian",
        metric,
        k,
    )
    params = rng.normal(size=weighted.n_params) * 0.3
    np.testing.assert_allclose(weighted.spread, repeated.spread, rtol=1e-12)
    loss_w, grad_w = weighted(params)
    loss_r, grad_r = repeated(params)
    np.testing.assert_allclose(loss_w, loss_r, rtol=1e-10)
    np.testing.assert_allclose(grad_w, grad_r, rtol=1e-8, atol=1e-12)

    a = AttentionRegressor(metric=metric, n_components=k).fit(X, Y[:, 0], w)
    b = AttentionRegressor(metric=metric, n_components=k).fit(
        np.repeat(X, w, axis=0), np.repeat(Y[:, 0], w)
    )
    # the optimiser's path may round differently (the objectives agree to 1e-10):
    # the optima reached agree, and so do the predictions, up to the optimiser's
    # tolerance
    np.testing.assert_allclose(
        a.loss_curve_[-1], b.loss_curve_[-1], rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(
        a.predict(X), b.predict(X), rtol=1e-4, atol=1e-3 * np.ptp(Y[:, 0])
    )


def test_minibatch_gradient_is_the_full_one_on_all_rows(rng):
    X, Y = _data(rng)
    obj = _objective(X, Y, np.ones(len(X)), "gaussian", "diagonal", None)
    params = rng.normal(size=obj.n_params) * 0.3
    full = obj(params)
    every = obj(params, np.arange(len(X)))
    np.testing.assert_allclose(every[0], full[0], rtol=1e-12)
    np.testing.assert_allclose(every[1], full[1], rtol=1e-12)
    halves = [obj(params, rows) for rows in (np.arange(0, 20), np.arange(20, 40))]
    np.testing.assert_allclose(
        np.mean([h[1] for h in halves], axis=0), full[1], rtol=1e-10
    )


def test_d2l_parametric_pooling_beats_the_untrained_kernel(rng):
    # Dive into Deep Learning's toy problem: y = 2 sin(x) + x^0.8 + noise
    x_train = np.sort(rng.uniform(0, 5, 50))
    y_train = 2 * np.sin(x_train) + x_train**0.8 + rng.normal(0, 0.5, 50)
    x_test = np.arange(0, 5, 0.1)
    y_true = 2 * np.sin(x_test) + x_test**0.8
    untrained = NadarayaWatsonRegressor(bandwidth=1.0).fit(x_train[:, None], y_train)
    learned = AttentionRegressor(metric="isotropic", init="identity").fit(
        x_train[:, None], y_train
    )
    assert learned.loss_curve_[-1] < learned.loss_curve_[0]
    assert learned.bandwidth_[0] < 1.0  # a sharper kernel, as the book finds
    mse_untrained = mean_squared_error(y_true, untrained.predict(x_test[:, None]))
    mse_learned = mean_squared_error(y_true, learned.predict(x_test[:, None]))
    assert mse_learned < mse_untrained


def test_friedman1_informative_features_rank_first():
    X, y = make_friedman1(n_samples=1000, n_features=10, noise=1.0, random_state=0)
    for metric in ["diagonal", "full"]:
        model = AttentionRegressor(metric=metric).fit(X, y)
        np.testing.assert_allclose(model.feature_importances_.sum(), 1.0)
        assert set(np.argsort(model.feature_importances_)[-5:]) == {0, 1, 2, 3, 4}
    selected = SelectFromModel(AttentionRegressor(), threshold=0.02).fit(X, y)
    assert set(np.flatnonzero(selected.get_support())) == {0, 1, 2, 3, 4}


def test_learning_beats_the_rule_of_thumb_held_out():
    X, y = make_friedman1(n_samples=600, n_features=10, noise=1.0, random_state=0)
    X_test, y_test = make_friedman1(
        n_samples=600, n_features=10, noise=1.0, random_state=1
    )
    learned = r2_score(y_test, AttentionRegressor().fit(X, y).predict(X_test))
    rule = r2_score(
        y_test, NadarayaWatsonRegressor(bandwidth="cv").fit(X, y).predict(X_test)
    )
    assert learned > rule + 0.05


@pytest.mark.parametrize("trend", [None, "linear"])
@pytest.mark.parametrize("metric", ["isotropic", "diagonal", "full"])
def test_predict_uses_the_learned_metric(rng, metric, trend):
    X, Y = _data(rng)
    # the learned attention alone (its local-linear average: test_local_average)
    model = AttentionRegressor(metric=metric, trend=trend, local_linear=False)
    model.fit(X, Y[:, 0])
    # with a trend, the attention pools its residuals and predictions add it back
    fitted = np.zeros((len(X), 1))
    at_queries = np.zeros((5, 1))
    if trend == "linear":
        fitted = (X @ model.trend_coef_ + model.trend_intercept_)[:, None]
        at_queries = fitted[:5]
    else:
        assert not hasattr(model, "trend_coef_")
    values = Y[:, :1] - fitted
    if metric == "full":
        W = model.components_
        expected, weights = nadaraya_watson(
            X @ W.T, values, X[:5] @ W.T, "gaussian", 1.0
        )
        assert not hasattr(model, "bandwidth_")
    else:
        expected, weights = nadaraya_watson(
            X, values, X[:5], "gaussian", model.bandwidth_
        )
        assert not hasattr(model, "components_")
    expected = expected + at_queries
    np.testing.assert_allclose(model.predict(X[:5]), expected[:, 0], rtol=1e-9)
    np.testing.assert_allclose(
        model.attention_weights(X[:5]), weights, rtol=1e-9, atol=1e-14
    )
    if metric == "isotropic":
        assert np.all(model.bandwidth_ == model.bandwidth_[0])


def test_minibatch_mode_learns(rng):
    X, y = make_friedman1(n_samples=800, n_features=6, noise=0.5, random_state=0)
    X_test, y_test = make_friedman1(
        n_samples=500, n_features=6, noise=0.5, random_state=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = AttentionRegressor(batch_size=64, max_iter=150, random_state=0).fit(
            X, y
        )
        again = AttentionRegressor(batch_size=64, max_iter=150, random_state=0).fit(
            X, y
        )
    assert 1 <= model.n_iter_ <= 150 and len(model.loss_curve_) == model.n_iter_
    start = r2_score(
        y_test, NadarayaWatsonRegressor(bandwidth="cv").fit(X, y).predict(X_test)
    )
    assert r2_score(y_test, model.predict(X_test)) > start
    np.testing.assert_array_equal(again.bandwidth_, model.bandwidth_)


def test_minibatch_warns_when_max_iter_is_reached(rng):
    X, Y = _data(rng)
    with pytest.warns(ConvergenceWarning, match="mini-batch Adam reached max_iter=3"):
        AttentionRegressor(batch_size=8, max_iter=3, random_state=0).fit(X, Y[:, 0])


def test_convergence_warning_verbose_and_callback(rng, capsys):
    X, Y = _data(rng)
    seen = []
    model = AttentionRegressor(
        metric="full",
        init="identity",
        max_iter=2,
        verbose=1,
        callback=lambda params, n_iter: seen.append((params.shape, n_iter)),
    )
    with pytest.warns(ConvergenceWarning, match="L-BFGS-B stopped without converging"):
        model.fit(X, Y[:, 0])
    assert model.n_iter_ == 2
    assert seen == [((3, 3), 0), ((3, 3), 1), ((3, 3), 2)]
    out = capsys.readouterr().out
    assert out.count("[AttentionRegressor] iter") == 3 and "loss" in out


def test_warm_start_continues(rng):
    X, Y = _data(rng, n=60)
    model = AttentionRegressor(warm_start=True, max_iter=3)
    with pytest.warns(ConvergenceWarning):
        model.fit(X, Y[:, 0])
    first = model.loss_curve_[-1]
    model.set_params(max_iter=100)
    model.fit(X, Y[:, 0])
    assert model.loss_curve_[0] == pytest.approx(first, rel=1e-12)
    cold = AttentionRegressor(max_iter=100).fit(X, Y[:, 0])
    assert cold.loss_curve_[0] > first


@pytest.mark.parametrize("init", ["scott", "cv", "identity", "pca", "auto"])
def test_every_init_gives_a_finite_fit(rng, init):
    X, Y = _data(rng)
    metric = "full" if init == "pca" else "diagonal"
    model = AttentionRegressor(
        metric=metric, init=init, n_components=2 if init == "pca" else None
    )
    model.fit(X, Y[:, 0])
    assert np.isfinite(model.loss_curve_).all()
    assert model.loss_curve_[-1] <= model.loss_curve_[0]


@pytest.mark.parametrize(
    ("batch_size", "expected"), [(None, "cv"), (8, "scott")], ids=["full", "batch"]
)
def test_auto_init_skips_the_quadratic_cv_search_in_minibatch_mode(
    rng, batch_size, expected
):
    X, Y = _data(rng)
    params = dict(batch_size=batch_size, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        auto = AttentionRegressor(init="auto", **params).fit(X, Y[:, 0])
        chosen = AttentionRegressor(init=expected, **params).fit(X, Y[:, 0])
        other = "scott" if expected == "cv" else "cv"
        not_chosen = AttentionRegressor(init=other, **params).fit(X, Y[:, 0])
    assert auto.loss_curve_[0] == chosen.loss_curve_[0]
    assert auto.loss_curve_[0] != not_chosen.loss_curve_[0]


def test_array_init(rng):
    X, Y = _data(rng)
    model = AttentionRegressor(
        metric="diagonal", init=[1.0, 2.0, 0.5], max_iter=1, trend=None
    )
    with pytest.warns(ConvergenceWarning):
        model.fit(X, Y[:, 0])
    obj = _objective(X, Y[:, :1], np.ones(len(X)), "gaussian", "diagonal", None)
    assert model.loss_curve_[0] == pytest.approx(
        obj(obj.metric.params_from_bandwidth([1.0, 2.0, 0.5]))[0]
    )
    eye = AttentionRegressor(
        metric="full", init=np.eye(2, 3), n_components=2, max_iter=1
    )
    with pytest.warns(ConvergenceWarning):
        eye.fit(X, Y[:, 0])
    assert eye.components_.shape == (2, 3)


def test_float32_pandas_pickle_clone(rng):
    import pandas as pd

    X, Y = _data(rng)
    model = AttentionRegressor().fit(X.astype(np.float32), Y[:, 0].astype(np.float32))
    assert model.predict(X.astype(np.float32)).dtype == np.float32
    assert model.predict(X).dtype == np.float32  # the dtype of y, whatever X's
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    fitted = AttentionRegressor(metric="full").fit(frame, Y)
    np.testing.assert_array_equal(fitted.feature_names_in_, ["a", "b", "c"])
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(frame), fitted.predict(frame))
    assert clone(fitted).get_params() == fitted.get_params()


def test_pipeline_grid_search():
    X, y = make_friedman1(n_samples=200, n_features=6, noise=0.5, random_state=0)
    grid = GridSearchCV(
        make_pipeline(StandardScaler(), AttentionRegressor()),
        {
            "attentionregressor__metric": ["isotropic", "diagonal"],
            "attentionregressor__alpha": [0.0, 0.01],
        },
        cv=3,
        n_jobs=2,
    ).fit(X, y)
    assert grid.best_params_["attentionregressor__metric"] == "diagonal"
    assert grid.best_score_ > 0.6


def test_n_jobs_gives_the_same_fit(rng):
    X, Y = _data(rng, n=300)
    one = AttentionRegressor(n_jobs=1).fit(X, Y[:, 0])
    two = AttentionRegressor(n_jobs=2).fit(X, Y[:, 0])
    np.testing.assert_allclose(two.bandwidth_, one.bandwidth_, rtol=1e-6)


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["tophat", "epanechnikov", "linear", "cosine"])
def test_compact_kernels_are_rejected(rng, kernel):
    X, Y = _data(rng)
    with pytest.raises(ValueError, match=re.escape(f"got kernel={kernel!r}")):
        AttentionRegressor(kernel=kernel).fit(X, Y[:, 0])


def test_bad_init_and_components(rng):
    X, Y = _data(rng)
    y = Y[:, 0]
    with pytest.raises(ValueError, match="init='pca' needs metric='full'"):
        AttentionRegressor(init="pca").fit(X, y)
    with pytest.raises(ValueError, match="n_components=4 must not exceed"):
        AttentionRegressor(metric="full", n_components=4).fit(X, y)
    with pytest.raises(ValueError, match="needs n_components equal to"):
        AttentionRegressor(metric="full", n_components=2, init="scott").fit(X, y)
    with pytest.raises(
        ValueError, match=re.escape("expects a projection of shape (3, 3)")
    ):
        AttentionRegressor(metric="full", init=np.eye(2)).fit(X, y)
    with pytest.raises(ValueError, match="expects one bandwidth or one per feature"):
        AttentionRegressor(init=[1.0, 2.0]).fit(X, y)
    with pytest.raises(ValueError, match="init bandwidths must be positive"):
        AttentionRegressor(init=[1.0, -2.0, 1.0]).fit(X, y)
    with pytest.raises(ValueError, match="takes a single bandwidth"):
        AttentionRegressor(metric="isotropic", init=[1.0, 2.0, 3.0]).fit(X, y)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        AttentionRegressor().fit(np.where(X > 2, np.nan, X), y)
    w = np.zeros(len(y))
    w[0] = 1.0
    with pytest.raises(ValueError, match="needs a total sample weight above 1"):
        AttentionRegressor().fit(X, y, w)
    with pytest.raises(ValueError, match="'metric' parameter of AttentionRegressor"):
        AttentionRegressor(metric="mahalanobis").fit(X, y)


@pytest.mark.parametrize("metric", ["diagonal", "full"])
def test_duplicated_rows_drive_bandwidths_to_their_bound_not_to_overflow(rng, metric):
    # every row has a twin with the same target: the leave-one-out optimum is a
    # bandwidth of zero, which the box bounds stop before any overflow
    X = np.repeat(rng.integers(0, 5, size=(15, 2)).astype(float), 2, axis=0)
    y = X[:, 0] * 4 + X[:, 1]
    model = AttentionRegressor(metric=metric, max_iter=500).fit(X, y)
    assert np.isfinite(model.loss_curve_).all()
    assert np.isfinite(model.predict(X + 0.3)).all()
    np.testing.assert_allclose(model.predict(X), y, atol=1e-8)


def _plain_sampled_loss(X, Y, w, bandwidth, rows, candidates):
    """The mini-batch loss over sampled candidate keys, written plainly: query ``i``
    attends to the candidates, itself among them with ``w_i - 1`` copies."""
    total = 0.0
    for i in rows:
        num, den = np.zeros(Y.shape[1]), 0.0
        for j in candidates:
            copies = w[j] - 1.0 if j == i else w[j]
            k = np.exp(-0.5 * np.sum(((X[i] - X[j]) / bandwidth) ** 2))
            num += copies * k * Y[j]
            den += copies * k
        total += w[i] * np.sum((num / den - Y[i]) ** 2)
    tss = (w[:, None] * (Y - np.average(Y, axis=0, weights=w)) ** 2).sum()
    return total / tss * w.sum() / w[rows].sum()


@pytest.mark.parametrize("metric, k", METRICS)
def test_sampled_candidates_objective(rng, metric, k):
    X, Y = _data(rng, n=40, outputs=2)
    w = rng.integers(1, 4, len(X)).astype(float)
    obj = _objective(X, Y, w, "gaussian", metric, k, alpha=0.01)
    params = rng.normal(size=obj.n_params) * 0.3
    # every row as a candidate: the mini-batch objective itself
    rows = np.sort(rng.choice(40, size=12, replace=False))
    every = obj(params, rows, np.arange(40))
    np.testing.assert_allclose(every[0], obj(params, rows)[0], rtol=1e-12)
    np.testing.assert_allclose(every[1], obj(params, rows)[1], rtol=1e-12)
    # a sample of candidates, some of the queries among them and some not
    candidates = np.sort(rng.choice(40, size=15, replace=False))
    assert 0 < np.isin(rows, candidates).sum() < len(rows)
    loss, _ = obj(params, rows, candidates)
    if metric == "full":
        W = obj.metric.components_from_params(params)
        expected = _plain_sampled_loss(X @ W.T, Y, w, 1.0, rows, candidates)
    else:
        h = obj.metric.bandwidth_from_params(params)
        expected = _plain_sampled_loss(X, Y, w, h, rows, candidates)
    np.testing.assert_allclose(loss - 0.01 * params @ params, expected, rtol=1e-10)
    error = check_grad(
        lambda p: obj(p, rows, candidates)[0],
        lambda p: obj(p, rows, candidates)[1],
        params,
    )
    assert error / np.linalg.norm(obj(params, rows, candidates)[1]) < 1e-5


def test_sampled_candidates_learn_at_a_fraction_of_the_cost():
    X, y = make_friedman1(n_samples=3000, n_features=10, noise=0.5, random_state=0)
    X_test, y_test = make_friedman1(
        n_samples=1000, n_features=10, noise=0.5, random_state=1
    )
    params = {"batch_size": 128, "max_iter": 300, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        every = AttentionRegressor(**params).fit(X, y)
        sampled = AttentionRegressor(**params, n_candidates=0.1).fit(X, y)
        counted = AttentionRegressor(**params, n_candidates=300).fit(X, y)
    np.testing.assert_array_equal(counted.bandwidth_, sampled.bandwidth_)
    start = r2_score(
        y_test, NadarayaWatsonRegressor(bandwidth="scott").fit(X, y).predict(X_test)
    )
    r2_every = r2_score(y_test, every.predict(X_test))
    r2_sampled = r2_score(y_test, sampled.predict(X_test))
    # Scott 0.780, every row 0.951, a tenth of the rows per step 0.924: bandwidths
    # learned against fewer keys come out a little wider than all the rows need
    assert r2_sampled > start + 0.1
    assert r2_sampled > r2_every - 0.05
    # the three features that enter nonlinearly get the three smallest bandwidths
    # (x3 and x4 enter linearly: the trend takes them), the five informative ones
    # the five largest importances
    assert set(np.argsort(sampled.bandwidth_)[:3]) == {0, 1, 2}
    assert set(np.argsort(sampled.feature_importances_)[-5:]) == {0, 1, 2, 3, 4}


def test_sampled_candidates_need_batch_size(rng):
    X, Y = _data(rng)
    with pytest.raises(ValueError, match="needs batch_size"):
        AttentionRegressor(n_candidates=0.5).fit(X, Y[:, 0])
    with pytest.raises(ValueError, match="n_candidates"):
        AttentionRegressor(batch_size=8, n_candidates=1.5).fit(X, Y[:, 0])


# -- early stopping and the reference penalty ----------------------------------------


def _held_out_split(n, fraction=0.1, random_state=0):
    """The rows AttentionRegressor holds out, drawn as its documentation says."""
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state

    train, held = train_test_split(
        np.arange(n),
        test_size=int(np.ceil(fraction * n)),
        random_state=check_random_state(random_state),
    )
    return np.sort(train), np.sort(held)


def test_early_stopping_keeps_the_best_held_out_iterate():
    X, y = make_friedman1(n_samples=300, n_features=6, noise=1.0, random_state=0)
    seen = []
    model = AttentionRegressor(
        metric="full",
        early_stopping=True,
        n_iter_no_change=3,
        trend=None,
        random_state=0,
        callback=lambda components, n_iter: seen.append(components.copy()),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    scores = np.asarray(model.validation_scores_)
    assert len(scores) == model.n_iter_ + 1 == len(model.loss_curve_) == len(seen)
    best = model.best_iteration_
    assert scores[best] >= scores.max() - 1e-4
    assert np.all(scores[best + 1 :] < scores[best] + 1e-4)
    np.testing.assert_array_equal(model.components_, seen[best])
    if model.n_iter_ < model.max_iter:  # stopped by the held-out rule
        assert model.n_iter_ - best == 3

    # the held-out score is the R^2 of the held-out rows attending to the others,
    # at the kept parameters; every row is a key at prediction
    train, held = _held_out_split(len(y))
    projected = X @ model.components_.T
    nw = NadarayaWatsonRegressor(bandwidth=1.0).fit(projected[train], y[train])
    r2 = 1.0 - np.sum((nw.predict(projected[held]) - y[held]) ** 2) / np.sum(
        (y[held] - y[held].mean()) ** 2
    )
    np.testing.assert_allclose(scores[best], r2, rtol=1e-10)
    everyone = NadarayaWatsonRegressor(bandwidth=1.0).fit(projected, y)
    np.testing.assert_allclose(model.predict(X[:20]), everyone.predict(projected[:20]))


def test_early_stopping_learns_on_the_other_rows_only():
    X, y = make_friedman1(n_samples=200, n_features=5, noise=1.0, random_state=1)
    # (a trend is fitted on every row, held out or not: the pooled targets here)
    model = AttentionRegressor(
        metric="diagonal", early_stopping=True, trend=None, alpha=0.0, random_state=0
    ).fit(X, y)
    assert model.best_iteration_ >= 1
    train, _ = _held_out_split(len(y))
    by_hand = AttentionRegressor(
        metric="diagonal",
        early_stopping=False,
        trend=None,
        alpha=0.0,
        max_iter=model.best_iteration_,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        by_hand.fit(X[train], y[train])
    np.testing.assert_allclose(model.bandwidth_, by_hand.bandwidth_, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_early_stopping_auto_and_off():
    X, y = make_friedman1(n_samples=150, n_features=5, random_state=0)
    # "auto": not for diagonal
    diagonal = AttentionRegressor(metric="diagonal", max_iter=5).fit(X, y)
    assert diagonal.validation_scores_ is None and diagonal.best_iteration_ is None
    assert len(diagonal.loss_curve_) == diagonal.n_iter_ + 1
    full = AttentionRegressor(metric="full", max_iter=5, random_state=0).fit(X, y)
    assert len(full.validation_scores_) == full.n_iter_ + 1
    small = AttentionRegressor(metric="full", max_iter=5).fit(X[:90], y[:90])
    assert small.validation_scores_ is None  # "auto": too few rows to hold out
    off = AttentionRegressor(metric="full", max_iter=5, early_stopping=False)
    assert off.fit(X, y).validation_scores_ is None
    minibatch = AttentionRegressor(
        metric="full", batch_size=64, max_iter=5, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert minibatch.fit(X, y).validation_scores_ is None


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_early_stopping_verbose_lines_show_the_held_out_loss(capsys):
    X, y = make_friedman1(n_samples=120, n_features=5, random_state=0)
    AttentionRegressor(
        metric="diagonal", early_stopping=True, verbose=1, max_iter=3
    ).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    iterations = [line for line in lines if " iter " in line]
    assert len(iterations) == 4  # the start and 3 iterations
    assert all("held-out loss" in line for line in iterations)


@pytest.mark.parametrize("metric, k", METRICS)
def test_penalty_gradient_with_a_reference(rng, metric, k):
    X, Y = _data(rng)
    obj = _objective(X, Y, np.ones(len(X)), "gaussian", metric, k, alpha=0.3)
    obj.reference = rng.normal(size=obj.n_params)
    x0 = rng.normal(size=obj.n_params) * 0.3
    error = check_grad(lambda p: obj(p)[0], lambda p: obj(p)[1], x0)
    assert error / np.linalg.norm(obj(x0)[1]) < 1e-5
    free = _objective(X, Y, np.ones(len(X)), "gaussian", metric, k, alpha=0.0)
    deviation = x0 - obj.reference
    np.testing.assert_allclose(
        obj(x0)[0], free(x0)[0] + 0.3 * deviation @ deviation, rtol=1e-12
    )


def test_a_large_penalty_keeps_the_start_not_the_mean():
    X, y = make_friedman1(n_samples=200, n_features=5, noise=1.0, random_state=0)
    start = NadarayaWatsonRegressor(bandwidth="cv").fit(X, y)
    pulled = AttentionRegressor(alpha=1e6, trend=None, early_stopping=False).fit(X, y)
    np.testing.assert_allclose(pulled.bandwidth_, start.bandwidth_, rtol=1e-4)
    np.testing.assert_allclose(pulled.predict(X), start.predict(X), rtol=1e-3)
    # with the trend: the same start bandwidths, the attention on its residuals
    trended = AttentionRegressor(alpha=1e6, early_stopping=False).fit(X, y)
    np.testing.assert_allclose(trended.bandwidth_, start.bandwidth_, rtol=1e-4)


@pytest.mark.parametrize("metric", ["diagonal", "full"])
def test_feature_importances_are_drop_feature_leave_one_out_losses(rng, metric):
    X, Y = _data(rng, n=40)
    model = AttentionRegressor(
        metric=metric, max_iter=15, early_stopping=False, trend=None
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, Y[:, 0])
    # by plain loops: the leave-one-out loss, all features and each left out
    if metric == "full":
        features, h = X @ model.components_.T, np.ones(X.shape[1])
    else:
        features, h = X, model.bandwidth_

    def loss(F, bandwidth):
        return _plain_loo_loss(F, Y, np.ones(len(X)), "gaussian", bandwidth)

    base = loss(features, h)
    score = []
    for j in range(X.shape[1]):
        if metric == "full":
            dropped = X.copy()
            dropped[:, j] = X[:, j].mean()  # centred data: column j contributes 0
            score.append(loss(dropped @ model.components_.T, h) - base)
        else:
            keep = np.arange(X.shape[1]) != j
            score.append(loss(X[:, keep], h[keep]) - base)
    score = np.maximum(score, 0.0)
    np.testing.assert_allclose(
        model.feature_importances_, score / score.sum(), rtol=1e-7
    )


def test_feature_importances_agree_with_permutation_importance():
    from scipy.stats import spearmanr
    from sklearn.datasets import load_diabetes
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import train_test_split

    data = {
        "diabetes": load_diabetes(return_X_y=True),
        "friedman1": make_friedman1(
            n_samples=600, n_features=10, noise=1.0, random_state=0
        ),
    }
    for name, (X, y) in data.items():
        X = StandardScaler().fit_transform(X)
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        model = AttentionRegressor().fit(X_train, y_train)
        permuted = permutation_importance(
            model, X_test, y_test, n_repeats=10, random_state=0
        ).importances_mean
        rho = spearmanr(model.feature_importances_, permuted).correlation
        assert rho >= 0.7, (name, rho)
        if name == "friedman1":  # the five informative features on top
            assert set(np.argsort(model.feature_importances_)[-5:]) == set(range(5))
        else:  # the binary sex column (1) is not mistaken for the most relevant
            assert set(np.argsort(model.feature_importances_)[-2:]) == {2, 8}


# -- the linear trend -------------------------------------------------------------


def _standardised(X, w):
    mean = w @ X / w.sum()
    std = np.sqrt(w @ (X - mean) ** 2 / (w.sum() - 1.0))
    return (X - mean) / std, mean, std


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("weighted", [False, True])
def test_the_trend_is_a_ridge_regression_on_standardised_features(rng, weighted):
    from sklearn.linear_model import Ridge

    X, Y = _data(rng, n=60, outputs=2)
    X = X * [1e3, 1.0, 1e-4] + [5.0, -2.0, 0.0]
    w = rng.uniform(0.5, 3.0, size=len(X)) if weighted else np.ones(len(X))
    model = AttentionRegressor(max_iter=2).fit(X, Y, sample_weight=w)
    Z, mean, std = _standardised(X, w)
    ridge = Ridge(alpha=1e-2 * w.sum()).fit(Z, Y, sample_weight=w)
    np.testing.assert_allclose(model.trend_coef_, ridge.coef_ / std, rtol=1e-9)
    np.testing.assert_allclose(
        model.trend_intercept_,
        ridge.intercept_ - (ridge.coef_ / std) @ mean,
        rtol=1e-9,
        atol=1e-12,
    )
    single = AttentionRegressor(max_iter=2).fit(X, Y[:, 0])
    assert single.trend_coef_.shape == (3,) and isinstance(
        single.trend_intercept_, float
    )


def test_gradient_with_an_offset(rng):
    X, Y = _data(rng, outputs=2)
    offset = X @ rng.normal(size=(3, 2)) + 0.3
    obj = LeaveOneOutObjective(
        X,
        Y,
        np.ones(len(X)),
        kernel="gaussian",
        metric="diagonal",
        n_components=None,
        alpha=0.0,
        n_jobs=None,
        offset=offset,
    )
    x0 = rng.normal(size=obj.n_params) * 0.3
    error = check_grad(lambda p: obj(p)[0], lambda p: obj(p)[1], x0)
    assert error / np.linalg.norm(obj(x0)[1]) < 1e-5
    # the loss: 1 - R^2 of offset + leave-one-out pooled residuals, by plain loops
    h = obj.metric.bandwidth_from_params(x0)
    residual = Y - offset
    loo = leave_one_out(X, residual, "gaussian", h, np.ones(len(X)))
    tss = np.sum((Y - Y.mean(axis=0)) ** 2)
    np.testing.assert_allclose(
        obj(x0)[0], np.sum((offset + loo - Y) ** 2) / tss, rtol=1e-10
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_infinite_bandwidths_leave_the_trend(rng):
    X, Y = _data(rng, n=50)
    model = AttentionRegressor(init=[1e8] * 3, alpha=1e8, max_iter=3).fit(X, Y[:, 0])
    trend = X @ model.trend_coef_ + model.trend_intercept_
    np.testing.assert_allclose(model.predict(X), trend, rtol=1e-6, atol=1e-9)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_trend_is_constant_beyond_the_training_range(rng):
    X, Y = _data(rng, n=50)
    model = AttentionRegressor(max_iter=5).fit(X, Y[:, 0])
    from skattn._trend import apply_trend

    inside = X.min(axis=0) + 0.3 * (X.max(axis=0) - X.min(axis=0))
    expected = inside @ model.trend_coef_ + model.trend_intercept_
    assert apply_trend(model._trend, [inside])[0, 0] == pytest.approx(expected)
    edge = X.max(axis=0)
    far = np.vstack([edge, edge + 5.0, edge + 1e300])
    trends = apply_trend(model._trend, far)
    np.testing.assert_allclose(trends, trends[[0, 0, 0]], rtol=1e-12)
    assert np.isfinite(model.predict(far)).all()
    assert np.isfinite(model.predict(np.full((1, 3), -1e308))).all()


def test_importance_counts_what_the_trend_takes(rng):
    n = 300
    X = rng.uniform(-1, 1, size=(n, 3))
    y = np.sin(3 * X[:, 0]) + 2 * X[:, 1] + 0.1 * rng.normal(size=n)
    model = AttentionRegressor().fit(X, y)
    # x1 enters linearly: its bandwidth is wide, but it matters (the trend)
    assert model.bandwidth_[1] > model.bandwidth_[0]
    importance = model.feature_importances_
    assert importance[1] > 0.3 and importance[2] < 0.05


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_intervals_and_std_shift_by_the_trend(rng):
    X, Y = _data(rng, n=80)
    y = Y[:, 0] + 2 * X[:, 1]
    model = AttentionRegressor(max_iter=10, local_linear=False).fit(X, y)
    queries = X[:7] + 0.1
    trend_train = X @ model.trend_coef_ + model.trend_intercept_
    trend = queries @ model.trend_coef_ + model.trend_intercept_
    smoother = NadarayaWatsonRegressor(bandwidth=model.bandwidth_).fit(
        X, y - trend_train
    )
    np.testing.assert_allclose(
        model.predict_interval(queries),
        smoother.predict_interval(queries) + trend[:, None],
        rtol=1e-9,
    )
    mean, std = model.predict(queries, return_std=True)
    expected_mean, expected_std = smoother.predict(queries, return_std=True)
    np.testing.assert_allclose(mean, expected_mean + trend, rtol=1e-9)
    np.testing.assert_allclose(std, expected_std, rtol=1e-9)


def test_the_trend_without_a_feature_is_its_refit(rng):
    from skattn._trend import apply_trend, fit_trend, trend_without

    X = rng.normal(size=(50, 4)) * [1.0, 10.0, 0.1, 3.0]
    Y = rng.normal(size=(50, 2))
    w = rng.uniform(0.5, 2.0, size=50)
    trend, inverse = fit_trend(X, Y, w, return_inverse=True)
    for j in range(4):
        dropped = X.copy()
        dropped[:, j] = 0.0  # a constant column takes no part in the trend
        refit = apply_trend(fit_trend(dropped, Y, w), dropped)
        np.testing.assert_allclose(
            apply_trend(trend_without(trend, inverse, j), X), refit, atol=1e-12
        )


def test_minimize_lbfgs_evaluates_each_point_once():
    from skattn._learning import minimize_lbfgs

    seen = []

    class Quadratic:
        bounds = (np.full(2, -10.0), np.full(2, 10.0))

        def __call__(self, params):
            seen.append(np.array(params, copy=True))
            d = params - [1.0, -2.0]
            return float(d @ d), 2.0 * d

    reports = []
    x0 = np.array([3.0, 3.0])
    params, n_iter, message, _, _ = minimize_lbfgs(
        Quadratic(),
        x0,
        max_iter=50,
        tol=1e-12,
        report=lambda p, i, loss, held: reports.append((i, loss)),
    )
    np.testing.assert_allclose(params, [1.0, -2.0], atol=1e-8)
    assert message is None and reports[0] == (0, 29.0)
    # the start, reported first and then taken by the optimiser, was computed once
    assert sum(np.array_equal(p, x0) for p in seen) == 1


# -- metric="auto" -------------------------------------------------------------


def _rotated(n, seed=0):
    """A target that varies along x0 + x1 and x2 - x3: no per-feature bandwidths
    capture it, a projection does."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = np.sin(2 * (X[:, 0] + X[:, 1])) + 0.5 * np.cos(2 * (X[:, 2] - X[:, 3]))
    return X, y + 0.1 * rng.normal(size=n)


def test_auto_keeps_a_projection_where_the_structure_is_rotated():
    X, y = _rotated(1300)
    train, test = slice(0, 300), slice(300, None)
    auto = AttentionRegressor(random_state=0).fit(X[train], y[train])
    diagonal = AttentionRegressor(metric="diagonal").fit(X[train], y[train])
    assert auto.metric == "auto" and auto.metric_ == "full"
    assert auto.components_.shape == (4, 4) and not hasattr(auto, "bandwidth_")
    assert auto.score(X[test], y[test]) > diagonal.score(X[test], y[test]) + 0.1
    # the projection's stage stopped early on held-out rows
    assert len(auto.validation_scores_) - 1 <= auto.n_iter_ - diagonal.n_iter_
    assert auto.validation_scores_[auto.best_iteration_] == max(auto.validation_scores_)
    # each stage's curve: its start, then its iterations
    assert len(auto.loss_curve_) == auto.n_iter_ + 2


def test_auto_that_keeps_the_bandwidths_is_the_diagonal_fit():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.normal(size=200)
    auto = AttentionRegressor(random_state=0).fit(X, y)
    diagonal = AttentionRegressor(metric="diagonal").fit(X, y)
    assert auto.metric_ == "diagonal" and not hasattr(auto, "components_")
    np.testing.assert_array_equal(auto.bandwidth_, diagonal.bandwidth_)
    np.testing.assert_array_equal(auto.predict(X), diagonal.predict(X))
    np.testing.assert_array_equal(
        auto.feature_importances_, diagonal.feature_importances_
    )
    assert auto.n_iter_ > diagonal.n_iter_  # the projection was tried
    assert auto.loss_curve_[: diagonal.n_iter_ + 1] == diagonal.loss_curve_


def test_auto_rule_decides(monkeypatch):
    import skattn._base

    X, y = _rotated(200)
    monkeypatch.setattr(skattn._base, "AUTO_FULL_Z", np.inf)
    assert AttentionRegressor(random_state=0).fit(X, y).metric_ == "diagonal"
    monkeypatch.setattr(skattn._base, "AUTO_FULL_Z", -np.inf)
    model = AttentionRegressor(random_state=0).fit(X[:, :3], y)
    assert model.metric_ == "full" and model.components_.shape == (3, 3)


@pytest.mark.parametrize(
    "case", ["early_stopping=False", "batch_size", "few rows", "one feature"]
)
def test_auto_tries_no_projection_where_it_cannot_be_held_out(case):
    X, y = _rotated(200)
    params, n = {}, 200
    if case == "early_stopping=False":
        params["early_stopping"] = False
    elif case == "batch_size":
        params.update(batch_size=32, max_iter=20, random_state=0)
    elif case == "few rows":
        n = 99
    else:
        X = X[:, :1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        auto = AttentionRegressor(**params).fit(X[:n], y[:n])
        diagonal = AttentionRegressor(metric="diagonal", **params).fit(X[:n], y[:n])
    assert auto.metric_ == "diagonal" and auto.n_iter_ == diagonal.n_iter_
    np.testing.assert_array_equal(auto.bandwidth_, diagonal.bandwidth_)


def test_auto_verbose_lines_say_what_was_kept(capsys):
    X, y = _rotated(200)
    model = AttentionRegressor(random_state=0, verbose=1).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    # local_linear="auto" says what it averaged last, where it applies
    if model.local_linear_ is not None:
        assert "local_linear: averaged" in lines.pop()
    assert any("metric='auto': a full projection" in line for line in lines)
    assert re.search(
        r"metric='auto': kept the (full projection|bandwidths) \(held-out loss "
        r"[-\d.e]+ against the bandwidths' [-\d.e]+: [-\d.]+ standard errors",
        lines[-2],
    )
    # then boosting="auto" says what it kept
    assert re.search(
        r"boosting: (kept the learned smoother|the bandwidths widened [\d.]+ times, "
        r"boosted for \d+ rounds) \(.*leave-one-out loss (was )?-?[\d.]+ standard "
        "errors lower",
        lines[-1],
    )


@pytest.mark.parametrize("loss", ["squared", "log"])
def test_held_out_row_losses_are_each_rows_share(rng, loss):
    X, Y = _data(rng, n=60)
    w = rng.uniform(0.5, 2.0, 60)
    if loss == "log":
        Y = np.eye(2)[(Y[:, 0] > 0).astype(int)]
    objective = LeaveOneOutObjective(
        X[:40],
        Y[:40],
        w[:40],
        kernel="gaussian",
        metric="diagonal",
        n_components=None,
        alpha=0.0,
        loss=loss,
        n_jobs=None,
    )
    held_out = objective.held_out(X[40:], Y[40:], w[40:])
    params = rng.normal(size=objective.n_params) * 0.3
    rows = held_out.row_losses(params)
    assert rows.shape == (20,) and np.all(rows >= 0)
    np.testing.assert_allclose(rows.sum(), held_out(params), rtol=1e-12)
    # each row: its weight times its loss under the pooling by hand
    bandwidth = objective.metric.fitted(params)[0]
    pooled, _ = nadaraya_watson(X[:40], Y[:40], X[40:], "gaussian", bandwidth, w[:40])
    if loss == "squared":
        by_hand = w[40:] * np.sum((pooled - Y[40:]) ** 2, axis=1)
    else:
        by_hand = -w[40:] * np.log(np.sum(pooled * Y[40:], axis=1))
    np.testing.assert_allclose(rows / rows.sum(), by_hand / by_hand.sum(), rtol=1e-8)


def test_a_discrete_features_bandwidth_saturates_at_an_eighth_of_its_gap(
    monkeypatch,
):
    import skattn._learning

    rng = np.random.default_rng(0)
    b = rng.integers(0, 2, 300) * 2.0  # two values, 2 apart
    x = rng.normal(size=300)
    X = np.column_stack([b, x])
    y = 3 * b + np.sin(2 * x) + 0.1 * rng.normal(size=300)
    params = dict(metric="diagonal", alpha=0.0, trend=None)
    floored = AttentionRegressor(**params).fit(X, y)
    assert floored.bandwidth_[0] == pytest.approx(2.0 / 8, rel=1e-12)
    assert floored.bandwidth_[1] > 2.0 / 8 * 0.1  # a continuous feature: free
    # the exponential kernel's floor: exp(-32) at 32 bandwidths
    exponential = AttentionRegressor(kernel="exponential", **params).fit(X, y)
    assert exponential.bandwidth_[0] >= 2.0 / 32 * (1 - 1e-12)
    # without the floor the bandwidth drifts lower, and nothing else changes: the
    # floor is applied once the optimiser has stopped, so its path is the same
    monkeypatch.setattr(skattn._learning, "SATURATION_LOG_WEIGHT", -np.inf)
    free = AttentionRegressor(**params).fit(X, y)
    assert free.bandwidth_[0] < 0.2
    assert free.n_iter_ == floored.n_iter_
    assert free.bandwidth_[1] == floored.bandwidth_[1]
    queries = np.column_stack([rng.integers(0, 2, 50) * 2.0, rng.normal(size=50)])
    # (a query whose nearest level rows are far along x lets the exp(-32) of the
    # other level show: 3e-11 of the range at most here)
    np.testing.assert_allclose(
        floored.predict(queries), free.predict(queries), atol=1e-9 * np.ptp(y)
    )


def test_saturation_distance():
    from skattn._kernels import get_kernel
    from skattn._learning import saturation_distance

    assert saturation_distance(get_kernel("gaussian")) == pytest.approx(8.0, rel=1e-12)
    assert saturation_distance(get_kernel("exponential")) == pytest.approx(
        32.0, rel=1e-12
    )


def test_smallest_gaps():
    from skattn._learning import smallest_gaps

    X = np.array([[0.0, 5.0, 1.0], [2.0, 5.0, 1.5], [2.0, 5.0, 4.0], [7.0, 5.0, 1.0]])
    np.testing.assert_array_equal(smallest_gaps(X), [2.0, 0.0, 0.5])
    np.testing.assert_array_equal(smallest_gaps(X[:1]), [0.0, 0.0, 0.0])


def test_default_fits_hold_out_the_same_rows():
    # random_state=None: the held-out draw is fixed (that of 0), so the default
    # fit, and the choice of metric="auto", is reproducible
    X, y = _rotated(200, seed=3)
    fits = [AttentionRegressor().fit(X, y) for _ in range(2)]
    fits.append(AttentionRegressor(random_state=0).fit(X, y))
    for model in fits[1:]:
        assert model.metric_ == fits[0].metric_
        assert model.validation_scores_ == fits[0].validation_scores_
        np.testing.assert_array_equal(model.predict(X), fits[0].predict(X))
    other = AttentionRegressor(random_state=1).fit(X, y)
    assert other.validation_scores_ != fits[0].validation_scores_
