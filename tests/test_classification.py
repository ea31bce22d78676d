"""NadarayaWatsonClassifier and AttentionClassifier: probabilities against plain loops,
the leave-one-out log loss and its gradient, class weights, labels, conventions."""

# SPDX-License-Identifier: BSD-3-Clause

import math
import pickle
import warnings

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.calibration import calibration_curve
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.model_selection import GridSearchCV, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skattn import AttentionClassifier, NadarayaWatsonClassifier
from skattn._learning import LeaveOneOutObjective
from tests._reference import kernel_value, leave_one_out, nadaraya_watson

METRICS = [("isotropic", None), ("diagonal", None), ("full", 2), ("full", 3)]


def _data(rng, n=45, d=3, n_classes=3):
    X = rng.normal(size=(n, d)) * [1.0, 2.0, 0.5][:d]
    score = X[:, 0] + 0.5 * rng.normal(size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y


def _onehot(y, classes):
    return (np.asarray(y)[:, None] == np.asarray(classes)[None, :]).astype(float)


def _plain_loo_log_loss(X, Y, w, kernel, bandwidth, unit=None):
    """Leave-one-out log loss by loops: row i keeps w_i - u_i of its weight; a row
    with no other row in a compact kernel's support takes its nearest rows' classes
    (ties shared by weight)."""
    unit = np.ones(len(X)) if unit is None else unit
    n = len(X)
    h = np.broadcast_to(np.asarray(bandwidth, dtype=float), (X.shape[1],))
    total = 0.0
    for i in range(n):
        num = den = 0.0
        nearest, near_num, near_den = math.inf, 0.0, 0.0
        for j in range(n):
            weight = w[j] - (unit[i] if j == i else 0.0)
            if weight <= 0:
                continue
            u = math.sqrt(sum(((X[i, k] - X[j, k]) / h[k]) ** 2 for k in range(len(h))))
            kv = weight * kernel_value(kernel, u)
            den += kv
            num += kv * (Y[j] @ Y[i])
            if u < nearest:
                nearest, near_num, near_den = u, 0.0, 0.0
            if u == nearest:
                near_num += weight * (Y[j] @ Y[i])
                near_den += weight
        p = num / den if den > 0 else near_num / near_den
        total -= w[i] * math.log(max(p, np.finfo(float).eps))
    return total / w.sum()


# -- probabilities -----------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov", "exponential"])
@pytest.mark.parametrize("bandwidth", ["scott", "silverman", 2.0])
def test_probabilities_equal_a_plain_loop(rng, kernel, bandwidth):
    X, y = _data(rng)
    w = rng.integers(1, 4, size=len(X)).astype(float)
    Q = X[:12] + 0.05 * rng.normal(size=(12, 3))
    model = NadarayaWatsonClassifier(kernel=kernel, bandwidth=bandwidth)
    proba = model.fit(X, y, sample_weight=w).predict_proba(Q)
    expected, _ = nadaraya_watson(
        X, _onehot(y, model.classes_), Q, kernel, model.bandwidth_, w
    )
    np.testing.assert_allclose(proba, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_array_equal(
        model.predict(Q), model.classes_[np.argmax(expected, axis=1)]
    )
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(model.predict_log_proba(Q), np.log(proba))


def test_ties_go_to_the_first_class():
    X = np.array([[-1.0], [1.0]])
    model = NadarayaWatsonClassifier(bandwidth=1.0).fit(X, ["zebra", "ant"])
    np.testing.assert_allclose(model.predict_proba([[0.0]]), [[0.5, 0.5]])
    assert model.predict([[0.0]]).tolist() == ["ant"]


def test_no_row_in_a_compact_support_takes_the_nearest_rows_class():
    X = np.array([[0.0], [1.0], [10.0]])
    model = NadarayaWatsonClassifier(kernel="tophat", bandwidth=0.1)
    model.fit(X, ["a", "b", "c"])
    np.testing.assert_allclose(
        model.predict_proba([[8.0], [0.6]]), [[0, 0, 1], [0, 1, 0]]
    )


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["cat", "dog", "emu"]),
        np.array([3, -1, 7]),
        np.array([True, False, True]),
    ],
    ids=["str", "int", "bool"],
)
@pytest.mark.parametrize("cls", [NadarayaWatsonClassifier, AttentionClassifier])
def test_labels_round_trip_with_pandas_input(rng, labels, cls):
    import pandas as pd

    X, codes = _data(rng)
    y = labels[codes % len(labels)]
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = cls().fit(frame, pd.Series(y))
    np.testing.assert_array_equal(model.classes_, np.unique(y))
    pred = model.predict(frame)
    assert pred.dtype == model.classes_.dtype
    assert set(pred) <= set(y)
    assert model.score(frame, y) > 0.6
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(
        restored.predict_proba(frame), model.predict_proba(frame)
    )


def test_float32_stays_float32(rng):
    X, y = _data(rng)
    for model in (NadarayaWatsonClassifier(), AttentionClassifier(max_iter=5)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X.astype(np.float32), y)
        assert model.predict_proba(X.astype(np.float32)).dtype == np.float32


# -- the leave-one-out log loss --------------------------------------------------------


@pytest.mark.parametrize("kernel", ["gaussian", "exponential", "epanechnikov"])
def test_cv_bandwidth_minimises_the_leave_one_out_log_loss(rng, kernel):
    X, y = _data(rng, n=30)
    w = rng.integers(1, 3, size=len(X)).astype(float)
    model = NadarayaWatsonClassifier(kernel=kernel, bandwidth="cv").fit(X, y, w)
    Y = _onehot(y, model.classes_)
    scott = NadarayaWatsonClassifier().fit(X, y, w).bandwidth_
    chosen = _plain_loo_log_loss(X, Y, w, kernel, model.bandwidth_)
    for factor in np.geomspace(0.3, 20, 25):  # below, the plain loop underflows
        assert chosen <= _plain_loo_log_loss(X, Y, w, kernel, factor * scott) + 1e-9


def _log_objective(X, Y, w, kernel, metric, k, unit, offset=None):
    return LeaveOneOutObjective(
        X,
        Y,
        w,
        kernel=kernel,
        metric=metric,
        n_components=k,
        alpha=0.01,
        n_jobs=None,
        loss="log",
        unit_weights=unit,
        offset=offset,
    )


@pytest.mark.parametrize("metric, k", METRICS)
@pytest.mark.parametrize("kernel", ["gaussian", "exponential"])
@pytest.mark.parametrize("weights", ["none", "integer", "class"])
def test_log_loss_gradient_matches_finite_differences(rng, metric, k, kernel, weights):
    X, y = _data(rng)
    Y = _onehot(y, np.unique(y))
    w, unit = np.ones(len(X)), None
    if weights == "integer":
        w = rng.integers(1, 4, len(X)).astype(float)
    elif weights == "class":
        unit = np.array([0.5, 1.0, 2.5])[y]
        w = rng.integers(1, 4, len(X)) * unit
    obj = _log_objective(X, Y, w, kernel, metric, k, unit)
    x0 = rng.normal(size=obj.n_params) * 0.3
    error = check_grad(lambda p: obj(p)[0], lambda p: obj(p)[1], x0)
    assert error / np.linalg.norm(obj(x0)[1]) < 1e-5

    # and the value is the plain-loop leave-one-out log loss (plus the penalty)
    if metric == "full":
        W = obj.metric.components_from_params(x0)
        plain = _plain_loo_log_loss(X @ W.T, Y, w, kernel, 1.0, unit)
    else:
        plain = _plain_loo_log_loss(
            X, Y, w, kernel, obj.metric.bandwidth_from_params(x0), unit
        )
    np.testing.assert_allclose(obj(x0)[0] - 0.01 * x0 @ x0, plain, rtol=1e-10)


@pytest.mark.parametrize("metric, k", METRICS)
@pytest.mark.parametrize("weights", ["none", "class"])
def test_log_loss_gradient_with_the_logistic_trend(rng, metric, k, weights):
    from skattn._trend import apply_logistic_trend, fit_logistic_trend

    X, y = _data(rng)
    Y = _onehot(y, np.unique(y))
    w, unit = np.ones(len(X)), None
    if weights == "class":
        unit = np.array([0.5, 1.0, 2.5])[y]
        w = rng.integers(1, 4, len(X)) * unit
    prior = apply_logistic_trend(fit_logistic_trend(X, Y, w), X)
    obj = _log_objective(X, Y, w, "gaussian", metric, k, unit, offset=prior)
    # small bandwidths: the correction binds (scaled back) for some rows
    for scale in (0.3, 1.5):
        x0 = rng.normal(size=obj.n_params) * 0.3 + scale
        error = check_grad(lambda p: obj(p)[0], lambda p: obj(p)[1], x0)
        assert error / np.linalg.norm(obj(x0)[1]) < 1e-5


def test_corrected_probabilities_stay_above_a_share_of_the_prior(rng):
    from scipy.optimize import approx_fprime

    from skattn._trend import TREND_KEEP, corrected_probabilities

    prior = rng.dirichlet(np.ones(4), size=50)
    pooled = rng.normal(size=(50, 4)) * 0.3
    pooled -= pooled.mean(axis=1, keepdims=True)  # pooled residuals sum to 0
    P, backward = corrected_probabilities(pooled, prior)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert np.all(P >= TREND_KEEP * prior - 1e-15)
    free = np.all(prior + pooled >= TREND_KEEP * prior, axis=1)
    assert 0 < free.sum() < 50
    np.testing.assert_allclose(P[free], (prior + pooled)[free], rtol=1e-12)
    # backward is the vector-Jacobian product
    G = rng.normal(size=(50, 4))
    for i in range(50):

        def f(r, i=i):
            return corrected_probabilities(r[None], prior[i : i + 1])[0][0] @ G[i]

        numeric = approx_fprime(pooled[i], f, 1e-7)
        np.testing.assert_allclose(backward(G)[i], numeric, rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_logistic_trend_is_sklearns_logistic_regression(rng):
    from sklearn.linear_model import LogisticRegression

    X, y = _data(rng, n=60)
    w = rng.integers(1, 4, len(X)).astype(float)
    # standardised as the repeated rows (ddof=1), as the trend does
    repeated = np.repeat(X, w.astype(int), axis=0)
    Z = (X - repeated.mean(axis=0)) / repeated.std(axis=0, ddof=1)
    reference = LogisticRegression().fit(Z, y, sample_weight=w).predict_proba(Z)
    clf = AttentionClassifier(max_iter=5).fit(X, y, sample_weight=w)
    from skattn._trend import apply_logistic_trend

    np.testing.assert_allclose(
        apply_logistic_trend(clf._trend, X), reference, rtol=1e-4, atol=1e-6
    )
    # every bandwidth infinite: the trend corrected by the classes' mean residual
    # (the loss is flat there: one iteration stays)
    far = AttentionClassifier(init=np.full(X.shape[1], 1e8), max_iter=1, alpha=0.0)
    proba = far.fit(X, y, sample_weight=w).predict_proba(X)
    mean_residual = np.average(_onehot(y, np.unique(y)) - reference, axis=0, weights=w)
    np.testing.assert_allclose(proba, reference + mean_residual, atol=1e-4)
    # binary classes, and a class absent from the rows of positive weight
    y2 = (y > 0).astype(int)
    two = AttentionClassifier(max_iter=3).fit(X, y2).predict_proba(X)
    assert two.shape == (len(X), 2) and np.all(two > 0)
    w0 = np.where(y == 2, 0.0, 1.0)
    absent = AttentionClassifier(max_iter=3).fit(X, y, sample_weight=w0)
    assert np.all(absent.predict_proba(X)[:, 2] == 0.0)


def test_squared_loss_of_one_hot_values_is_the_regressor_loo(rng):
    # the shared objective: the same pooling, the loss only differs
    X, y = _data(rng, n=20)
    Y = _onehot(y, np.unique(y))
    loo = leave_one_out(X, Y, "gaussian", 0.8, np.ones(len(X)))
    obj = LeaveOneOutObjective(
        X,
        Y,
        np.ones(len(X)),
        kernel="gaussian",
        metric="diagonal",
        n_components=None,
        alpha=0.0,
        n_jobs=None,
        loss="log",
    )
    params = obj.metric.params_from_bandwidth(np.full(3, 0.8))
    expected = -np.mean(np.log(np.sum(loo * Y, axis=1)))
    np.testing.assert_allclose(obj(params)[0], expected, rtol=1e-10)


# -- class weights -------------------------------------------------------------------


def test_class_weight_multiplies_the_attention(rng):
    X, y = _data(rng)
    Q = rng.normal(size=(10, 3))
    weights = {0: 3.0, 2: 0.5}
    a = NadarayaWatsonClassifier(bandwidth=1.0, class_weight=weights).fit(X, y)
    sample_weight = np.array([3.0, 1.0, 0.5])[y]
    b = NadarayaWatsonClassifier(bandwidth=1.0).fit(X, y, sample_weight=sample_weight)
    np.testing.assert_allclose(a.predict_proba(Q), b.predict_proba(Q), rtol=1e-12)

    balanced = NadarayaWatsonClassifier(bandwidth=1.0, class_weight="balanced")
    counts = np.bincount(y)
    c = NadarayaWatsonClassifier(bandwidth=1.0).fit(
        X, y, sample_weight=(len(y) / (3 * counts))[y]
    )
    np.testing.assert_allclose(
        balanced.fit(X, y).predict_proba(Q), c.predict_proba(Q), rtol=1e-12
    )


@pytest.mark.parametrize(
    "model",
    [
        NadarayaWatsonClassifier(bandwidth="cv", class_weight="balanced"),
        AttentionClassifier(class_weight="balanced"),
        AttentionClassifier(metric="full", class_weight={0: 2.0, 1: 0.5}),
    ],
    ids=["nw-cv", "diagonal", "full"],
)
def test_class_weighted_fits_equal_repetition(rng, model):
    X, y = _data(rng, n=30)
    w = rng.integers(1, 4, len(X))
    a = model.fit(X, y, sample_weight=w.astype(float))
    pa = a.predict_proba(X)
    b = model.fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(pa, b.predict_proba(X), rtol=1e-5, atol=1e-9)


def test_class_weight_errors(rng):
    X, y = _data(rng)
    with pytest.raises(ValueError, match="not in y"):
        NadarayaWatsonClassifier(class_weight={7: 2.0}).fit(X, y)
    with pytest.raises(ValueError, match="non-negative"):
        NadarayaWatsonClassifier(class_weight={0: -1.0}).fit(X, y)
    with pytest.raises(ValueError, match="zero weight"):
        NadarayaWatsonClassifier(class_weight={0: 0, 1: 0, 2: 0}).fit(X, y)
    with pytest.raises(ValueError, match="exponential"):
        AttentionClassifier(kernel="tophat").fit(X, y)


# -- learning and conventions ------------------------------------------------------


def test_learning_lowers_the_log_loss_and_finds_the_informative_features(rng):
    X, y = make_classification(
        n_samples=800,
        n_features=8,
        n_informative=3,
        n_redundant=0,
        n_repeated=0,
        shuffle=False,
        random_state=0,
    )
    # shuffle=False keeps the informative features first, and the rows by class
    order = rng.permutation(len(y))
    X, X_test, y, y_test = (
        X[order[:400]],
        X[order[400:]],
        y[order[:400]],
        y[order[400:]],
    )
    learned = AttentionClassifier().fit(X, y)
    assert learned.loss_curve_[-1] < learned.loss_curve_[0]
    assert set(np.argsort(learned.feature_importances_)[-3:]) == {0, 1, 2}
    rule = NadarayaWatsonClassifier(bandwidth="cv").fit(X, y)
    assert log_loss(y_test, learned.predict_proba(X_test)) < log_loss(
        y_test, rule.predict_proba(X_test)
    )


def test_pipeline_grid_search_with_log_loss_and_calibration_ready_probabilities():
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    grid = GridSearchCV(
        make_pipeline(StandardScaler(), AttentionClassifier()),
        {"attentionclassifier__metric": ["isotropic", "diagonal"]},
        scoring="neg_log_loss",
        cv=3,
    ).fit(X, y)
    assert np.isfinite(grid.best_score_) and grid.best_score_ < 0
    # Held-out probabilities are calibrated: the expected calibration error (the
    # bins' gaps weighted by their share of rows) is small, and the Brier score
    # beats the constant prediction of the base rate.
    proba = cross_val_predict(grid.best_estimator_, X, y, cv=5, method="predict_proba")[
        :, 1
    ]
    prob_true, prob_pred = calibration_curve(y, proba, n_bins=5)
    counts = np.histogram(proba, bins=5, range=(0.0, 1.0))[0]
    counts = counts[counts > 0]
    ece = np.sum(counts * np.abs(prob_true - prob_pred)) / len(y)
    assert ece < 0.1
    assert brier_score_loss(y, proba) < 0.5 * brier_score_loss(
        y, np.full(len(y), y.mean())
    )
    restored = pickle.loads(pickle.dumps(grid.best_estimator_))
    np.testing.assert_array_equal(restored.predict_proba(X), grid.predict_proba(X))


@pytest.mark.parametrize("rule", ["scott", "silverman"])
def test_class_weights_leave_the_rule_of_thumb_alone(rng, rule):
    # Class weights re-balance the classes; they are not more data, so the rules
    # of thumb keep the n and spreads of the sample weights.
    X, y = _data(rng, n=60)
    w = rng.uniform(0.5, 2.0, size=len(y))
    plain = NadarayaWatsonClassifier(bandwidth=rule).fit(X, y, sample_weight=w)
    for class_weight in ({0: 1000.0, 1: 1e-4, 2: 1.0}, "balanced"):
        weighted = NadarayaWatsonClassifier(bandwidth=rule, class_weight=class_weight)
        weighted.fit(X, y, sample_weight=w)
        np.testing.assert_allclose(weighted.bandwidth_, plain.bandwidth_, rtol=1e-12)
    # a class of weight 0 is dropped from the keys, and from the rule's data
    kept = y != 2
    dropped = NadarayaWatsonClassifier(bandwidth=rule, class_weight={2: 0.0})
    dropped.fit(X, y, sample_weight=w)
    expected = NadarayaWatsonClassifier(bandwidth=rule).fit(
        X[kept], y[kept], sample_weight=w[kept]
    )
    np.testing.assert_allclose(dropped.bandwidth_, expected.bandwidth_, rtol=1e-12)
    # the class weights still act in the attention
    Q = rng.normal(size=(5, X.shape[1]))
    assert not np.allclose(weighted.predict_proba(Q), plain.predict_proba(Q), atol=1e-3)


def test_early_stopping_holds_out_a_stratified_share():
    X, y = make_classification(
        n_samples=240, n_features=5, weights=[0.8, 0.2], random_state=0
    )
    seen = []
    clf = AttentionClassifier(
        metric="diagonal",
        early_stopping=True,
        validation_fraction=0.25,
        trend=None,  # the held-out rows then attend as a NW classifier's queries
        random_state=0,
        callback=lambda bandwidth, n_iter: seen.append(bandwidth.copy()),
    ).fit(X, y)
    scores = np.asarray(clf.validation_scores_)
    assert np.all(scores < 0)  # minus the held-out log loss
    best = clf.best_iteration_
    np.testing.assert_array_equal(clf.bandwidth_, seen[best])
    # the held-out rows keep the class shares (stratified), and their score is
    # minus the log loss of the held-out rows attending to the others
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state

    train, held = train_test_split(
        np.arange(len(y)),
        test_size=60,
        random_state=check_random_state(0),
        stratify=y,
    )
    assert abs(np.mean(y[held]) - np.mean(y)) < 0.02
    nw = NadarayaWatsonClassifier(bandwidth=clf.bandwidth_).fit(X[train], y[train])
    np.testing.assert_allclose(
        scores[best], -log_loss(y[held], nw.predict_proba(X[held])), rtol=1e-10
    )


def test_auto_keeps_a_projection_where_the_classes_are_rotated():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1600, 4))
    f = np.sin(2 * (X[:, 0] + X[:, 1])) + 0.5 * np.cos(2 * (X[:, 2] - X[:, 3]))
    y = (f + 0.1 * rng.normal(size=1600) > 0).astype(int)
    train, test = slice(0, 600), slice(600, None)
    auto = AttentionClassifier(random_state=0).fit(X[train], y[train])
    diagonal = AttentionClassifier(metric="diagonal").fit(X[train], y[train])
    assert auto.metric_ == "full" and not hasattr(auto, "bandwidth_")
    assert (
        log_loss(y[test], auto.predict_proba(X[test]))
        < log_loss(y[test], diagonal.predict_proba(X[test])) - 0.02
    )
    # where the bandwidths suffice they are kept: the diagonal fit itself
    X, y = make_classification(n_samples=300, n_features=4, random_state=0)
    auto = AttentionClassifier(random_state=0).fit(X, y)
    diagonal = AttentionClassifier(metric="diagonal").fit(X, y)
    assert auto.metric_ == "diagonal"
    np.testing.assert_array_equal(auto.predict_proba(X), diagonal.predict_proba(X))
