"""AttentionPooling: values, heads, cross-fitting, weight statistics, conventions."""

# SPDX-License-Identifier: BSD-3-Clause

import math
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_friedman1
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold, ShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import (
    check_global_output_transform_pandas,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
)

from skattn import AttentionPooling, AttentionRegressor, NadarayaWatsonRegressor
from tests._instances import INIT_PARAMS
from tests._reference import leave_one_out, nadaraya_watson


def _data(rng, n=40, d=3):
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=n)
    return X, y


def _scott(X):
    return NadarayaWatsonRegressor(bandwidth="scott").fit(X, X[:, 0]).bandwidth_


POOLING_INSTANCES = [AttentionPooling(**p) for p in INIT_PARAMS[AttentionPooling]]


def _plain(**params):
    """AttentionPooling with the pooled columns only and each head's own bandwidth
    (the defaults append the features and learn bandwidths at small n): the
    mechanics the tests below check. The defaults have their own tests."""
    return AttentionPooling(
        **{"passthrough": False, "learn_bandwidth": False, **params}
    )


# -- the pooled values ------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov", "exponential"])
@pytest.mark.parametrize("bandwidth", ["scott", "silverman", "cv", 0.7])
def test_target_values_equal_nadaraya_watson_predictions(rng, kernel, bandwidth):
    X, y = _data(rng)
    Y = np.column_stack([y, y**2])
    Q = rng.normal(size=(15, 3))
    pooled = _plain(kernel=kernel, bandwidth=bandwidth).fit(X, Y)
    nw = NadarayaWatsonRegressor(kernel=kernel, bandwidth=bandwidth).fit(X, Y)
    np.testing.assert_allclose(pooled.bandwidths_[0], nw.bandwidth_)
    np.testing.assert_allclose(pooled.transform(Q), nw.predict(Q), rtol=1e-12)


def test_feature_values_equal_a_plain_loop(rng):
    X, _ = _data(rng)
    w = rng.integers(1, 4, size=len(X)).astype(float)
    Q = X[:10] + 0.1 * rng.normal(size=(10, 3))  # keys inside the compact support
    h = np.array([0.5, 1.0, 2.0])
    model = _plain(values="features", bandwidth=h, kernel="cosine")
    out = model.fit(X, sample_weight=w).transform(Q)
    expected, _ = nadaraya_watson(X, X, Q, "cosine", h, w)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-14)


def test_classification_target_pools_the_class_distribution(rng):
    X, _ = _data(rng)
    labels = np.array(["cat", "dog", "emu"])[rng.integers(0, 3, size=len(X))]
    Q = rng.normal(size=(8, 3))
    model = _plain(bandwidth=0.8).fit(X, labels)
    assert model.target_type_ == "multiclass"
    assert model.get_feature_names_out().tolist() == [
        "head0_proba_cat",
        "head0_proba_dog",
        "head0_proba_emu",
    ]
    onehot = (labels[:, None] == model.classes_).astype(float)
    expected, _ = nadaraya_watson(X, onehot, Q, "gaussian", 0.8)
    out = model.transform(Q)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)

    binary = _plain().fit(X, labels == "cat")
    assert binary.target_type_ == "binary"
    assert binary.transform(Q).shape == (8, 2)
    numbers = _plain(target_type="continuous").fit(X, (labels == "cat") * 3)
    assert numbers.get_feature_names_out().tolist() == ["head0_target"]


def test_auto_target_type_reads_floats_as_numbers_and_the_rest_as_labels(rng):
    X, _ = _data(rng)
    whole = rng.integers(25, 346, size=len(X))  # like load_diabetes' target
    assert _plain().fit(X, whole.astype(float)).target_type_ == "continuous"
    assert _plain().fit(X, whole).target_type_ == "multiclass"
    assert _plain().fit(X, whole > 100).target_type_ == "binary"
    floats = (whole % 3).astype(float)
    labels = _plain(target_type="multiclass").fit(X, floats)
    np.testing.assert_array_equal(labels.classes_, [0.0, 1.0, 2.0])
    indicator = np.column_stack([whole % 2, whole % 3 == 0]).astype(int)
    multilabel = _plain().fit(X, indicator)
    assert multilabel.target_type_ == "continuous"
    assert multilabel.transform(X).shape == (len(X), 2)


def test_heads_are_every_bandwidth_times_every_scale(rng):
    X, y = _data(rng)
    model = _plain(
        values="both", bandwidth=["scott", 0.5], bandwidth_scales=[1.0, 2.0]
    ).fit(X, y)
    scott = _scott(X)
    expected = [scott, 2 * scott, np.full(3, 0.5), np.full(3, 1.0)]
    np.testing.assert_allclose(model.bandwidths_, expected)
    Q = rng.normal(size=(6, 3))
    out = model.transform(Q)
    assert out.shape == (6, 4 * (1 + 3))
    names = model.get_feature_names_out()
    assert names[:4].tolist() == [
        "head0_target",
        "head0_mean_x0",
        "head0_mean_x1",
        "head0_mean_x2",
    ]
    for head, h in enumerate(expected):
        columns = [i for i, name in enumerate(names) if name.startswith(f"head{head}_")]
        nw = NadarayaWatsonRegressor(bandwidth=h).fit(X, np.column_stack([y, X]))
        np.testing.assert_allclose(out[:, columns], nw.predict(Q), rtol=1e-12)


def test_a_per_feature_bandwidth_in_a_list_is_one_head(rng):
    X, y = _data(rng)
    model = _plain(bandwidth=[[0.5, 1.0, 2.0], 1.0]).fit(X, y)
    np.testing.assert_allclose(model.bandwidths_, [[0.5, 1.0, 2.0], [1.0, 1.0, 1.0]])


def test_learned_heads_use_the_attention_regressor_objective(rng):
    X, y = _data(rng, n=60)
    model = _plain(learn_bandwidth=True, bandwidth_scales=[0.5, 2.0])
    model.fit(X, y)
    for h, scale in zip(model.bandwidths_, [0.5, 2.0], strict=True):
        learner = AttentionRegressor(init=scale * _scott(X), trend=None, alpha=0.0).fit(
            X, y
        )
        np.testing.assert_allclose(h, learner.bandwidth_, rtol=1e-10)
    # learning improves on the rule's leave-one-out error
    rule = _plain(values="target", random_state=0)
    learned = _plain(learn_bandwidth=True, random_state=0)
    err_rule = np.mean((rule.fit_transform(X, y)[:, 0] - y) ** 2)
    err_learned = np.mean((learned.fit_transform(X, y)[:, 0] - y) ** 2)
    assert err_learned < err_rule


# -- cross-fitting and leaving the row out -----------------------------------------


@pytest.mark.parametrize("bandwidth", ["scott", "cv"])
def test_a_rows_own_target_never_reaches_its_fit_transform_output(rng, bandwidth):
    X, y = _data(rng)
    params = dict(bandwidth=bandwidth, cv=4, random_state=0)
    before = _plain(**params).fit_transform(X, y)
    for row in (0, 17, 39):
        y_changed = y.copy()
        y_changed[row] += 1000.0
        after = _plain(**params).fit_transform(X, y_changed)
        assert after[row, 0] == before[row, 0]
        # and the change does reach the other rows' encodings
        assert np.any(np.delete(after[:, 0] != before[:, 0], row))


def test_user_splitter_covers_every_row_once(rng):
    X, y = _data(rng)
    folds = [
        (np.arange(10, 40), np.arange(0, 10)),
        (np.r_[0:10, 25:40], np.arange(10, 25)),
        (np.arange(0, 25), np.arange(25, 40)),
    ]
    model = _plain(bandwidth="cv", cv=folds)
    out = model.fit_transform(X, y)
    for train, test in folds:
        nw = NadarayaWatsonRegressor(bandwidth="cv").fit(X[train], y[train])
        np.testing.assert_allclose(out[test, 0], nw.predict(X[test]), rtol=1e-12)
    # the full fit is what transform uses
    full = NadarayaWatsonRegressor(bandwidth="cv").fit(X, y)
    np.testing.assert_allclose(model.transform(X)[:, 0], full.predict(X), rtol=1e-12)
    assert not np.allclose(model.transform(X)[:, 0], out[:, 0])


def test_splitter_that_is_not_a_partition_is_rejected(rng):
    X, y = _data(rng)
    with pytest.raises(ValueError, match="exactly one test fold"):
        _plain(cv=ShuffleSplit(3, random_state=0)).fit_transform(X, y)


def test_classification_cross_fitting_is_stratified(rng):
    X, _ = _data(rng, n=30)
    labels = np.repeat([0, 1, 2], 10)
    out = _plain(cv=5, random_state=0).fit_transform(X, labels)
    assert out.shape == (30, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_fit_transform_leaves_each_row_out_of_its_own_features_and_stats(rng):
    X, _ = _data(rng, n=25)
    w = rng.integers(1, 4, size=len(X)).astype(float)
    w[3] = 0.0  # a row of zero weight is an ordinary query
    h = np.array([0.6, 0.9, 1.2])
    model = _plain(
        values="features", bandwidth=h, return_entropy=True, return_n_effective=True
    )
    out = model.fit_transform(X, sample_weight=w)
    kept = w > 0
    expected = np.empty((len(X), 3))
    expected[kept] = leave_one_out(X[kept], X[kept], "gaussian", h, w[kept])
    expected[~kept], _ = nadaraya_watson(
        X[kept], X[kept], X[~kept], "gaussian", h, w[kept]
    )
    np.testing.assert_allclose(out[:, :3], expected, rtol=1e-12)

    # statistics: row i sees the others with their weights and w_i - 1 copies of itself
    for i in range(len(X)):
        copies = w.copy()
        if kept[i]:
            copies[i] -= 1.0
        p = []
        for j in range(len(X)):
            u = math.sqrt(sum(((X[i, k] - X[j, k]) / h[k]) ** 2 for k in range(3)))
            p += [math.exp(-0.5 * u * u)] * int(copies[j])
        p = np.array(p) / sum(p)
        assert out[i, 3] == pytest.approx(-np.sum(p * np.log(p)), rel=1e-10)
        assert out[i, 4] == pytest.approx(1.0 / np.sum(p * p), rel=1e-10)


def test_weight_statistics_count_sample_weights_as_repetition(rng):
    X, y = _data(rng, n=20)
    w = rng.integers(0, 4, size=len(X)).astype(float)
    w[0] = 1.0
    Q = rng.normal(size=(7, 3))
    params = dict(bandwidth=1.3, return_entropy=True, return_n_effective=True)
    weighted = _plain(**params).fit(X, y, sample_weight=w).transform(Q)
    repeated = _plain(**params).fit(
        np.repeat(X, w.astype(int), axis=0), np.repeat(y, w.astype(int))
    )
    np.testing.assert_allclose(weighted, repeated.transform(Q), rtol=1e-10)
    assert np.all(weighted[:, 1] >= 0) and np.all(weighted[:, 1] <= np.log(w.sum()))
    assert np.all(weighted[:, 2] >= 1) and np.all(weighted[:, 2] <= w.sum())


def test_statistics_of_a_tiny_bandwidth(rng):
    X, y = _data(rng)
    model = _plain(bandwidth=1e-9, return_entropy=True, return_n_effective=True).fit(
        X, y
    )
    out = model.transform(rng.normal(size=(5, 3)))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 1], 0.0, atol=1e-12)
    np.testing.assert_allclose(out[:, 2], 1.0)


# -- conventions --------------------------------------------------------------------


def test_pipeline_in_grid_search_over_heads_and_bandwidths_and_pickle():
    X, y = make_friedman1(n_samples=200, random_state=0)
    pipe = make_pipeline(_plain(random_state=0), Ridge())
    grid = GridSearchCV(
        pipe,
        {
            "attentionpooling__bandwidth": ["scott", "cv", [0.5, 1.0]],
            "attentionpooling__bandwidth_scales": [None, [0.5, 1.0, 2.0]],
        },
        cv=3,
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 6
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    restored = pickle.loads(pickle.dumps(grid.best_estimator_))
    np.testing.assert_array_equal(restored.predict(X), grid.best_estimator_.predict(X))
    assert clone(grid.best_estimator_).get_params()["attentionpooling__cv"] == 5


def test_float32_and_pandas_names(rng):
    import pandas as pd

    X, y = _data(rng)
    frame = pd.DataFrame(X.astype(np.float32), columns=["a", "b", "c"])
    model = _plain(values="both", return_entropy=True, random_state=0)
    out = model.fit_transform(frame, y)
    assert out.dtype == np.float32
    assert model.transform(frame).dtype == np.float32
    assert model.get_feature_names_out().tolist() == [
        "head0_target",
        "head0_mean_a",
        "head0_mean_b",
        "head0_mean_c",
        "head0_entropy",
    ]
    model.set_output(transform="pandas")
    assert (
        list(model.transform(frame).columns) == model.get_feature_names_out().tolist()
    )


def test_multi_output_names(rng):
    X, y = _data(rng)
    model = _plain(bandwidth_scales=[1, 2]).fit(X, np.column_stack([y, -y]))
    assert model.get_feature_names_out().tolist() == [
        "head0_target0",
        "head0_target1",
        "head1_target0",
        "head1_target1",
    ]


@pytest.mark.parametrize(
    ("params", "fit_y", "match"),
    [
        ({}, None, "requires y to be passed"),
        ({"values": "features", "bandwidth": "cv"}, None, "requires y to be passed"),
        ({"bandwidth": []}, "y", "empty list"),
        ({"bandwidth": ["scott", "wide"]}, "y", "one of"),
        ({"bandwidth": [[1.0, 2.0]]}, "y", "shape"),
        ({"bandwidth": [0.5, -1.0]}, "y", "positive"),
        ({"bandwidth_scales": [1.0, -2.0]}, "y", "bandwidth_scales"),
        ({"bandwidth_scales": []}, "y", "bandwidth_scales"),
        ({"learn_bandwidth": True, "kernel": "tophat"}, "y", "learn_bandwidth"),
        ({"target_type": "binary"}, "labels3", "binary"),
        ({}, "multiclass-multioutput", "target_type='continuous'"),
        ({"target_type": "continuous"}, "strings", "numeric y"),
    ],
)
def test_errors(rng, params, fit_y, match):
    X, y = _data(rng)
    targets = {
        None: None,
        "y": y,
        "labels3": np.arange(len(X)) % 3,
        "multiclass-multioutput": np.column_stack([np.arange(40) % 3] * 2),
        "strings": np.array(["a", "b"] * 20),
    }
    with pytest.raises(ValueError, match=match):
        _plain(**params).fit(X, targets[fit_y])


def test_zero_weight_fold_is_reported(rng):
    X, y = _data(rng, n=10)
    w = np.r_[np.zeros(5), np.ones(5)]
    folds = [(np.arange(5), np.arange(5, 10)), (np.arange(5, 10), np.arange(5))]
    with pytest.raises(ValueError, match="no training row of positive sample weight"):
        _plain(cv=folds).fit_transform(X, y, sample_weight=w)


# -- the transformer checks parametrize_with_checks leaves out ----------------------


@pytest.mark.parametrize(
    "check",
    [
        check_transformer_get_feature_names_out,
        check_transformer_get_feature_names_out_pandas,
        check_set_output_transform,
        check_set_output_transform_pandas,
        check_global_output_transform_pandas,
    ],
    ids=lambda check: check.__name__,
)
@pytest.mark.parametrize("estimator", POOLING_INSTANCES, ids=repr)
# the set_output checks fit on a DataFrame and transform an array, by design
@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.filterwarnings("ignore:X has feature names")
def test_transformer_output_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(type(estimator).__name__, estimator)


def test_fit_transform_is_deterministic_with_a_random_state(rng):
    X, y = _data(rng)
    model = _plain(values="both", bandwidth_scales=[0.5, 1], random_state=3)
    first = model.fit_transform(X, y)
    np.testing.assert_array_equal(first, clone(model).fit_transform(X, y))
    assert first.shape == model.transform(X).shape == (40, 8)
    # the features part is the leave-one-out pooling, not transform's
    assert not np.allclose(first[:, 1:4], model.transform(X)[:, 1:4])
    # KFold given explicitly gives the same as the int
    explicit = _plain(
        values="both",
        bandwidth_scales=[0.5, 1],
        cv=KFold(5, shuffle=True, random_state=3),
    )
    np.testing.assert_array_equal(first, explicit.fit_transform(X, y))


@pytest.mark.parametrize("n_neighbors", [None, 6])
def test_attention_weights_per_head_match_the_regressor(rng, n_neighbors):
    X, y = _data(rng)
    w = rng.uniform(0.0, 2.0, size=len(y))
    w[:3] = 0.0  # rows of no weight get no attention, and keep their columns
    Q = rng.normal(size=(7, X.shape[1]))
    pooling = _plain(bandwidth=[0.5, 1.5], n_neighbors=n_neighbors, random_state=0).fit(
        X, y, sample_weight=w
    )
    assert pooling.n_samples_fit_ == len(X)
    for head, h in enumerate([0.5, 1.5]):
        model = NadarayaWatsonRegressor(bandwidth=h, n_neighbors=n_neighbors)
        expected = model.fit(X, y, sample_weight=w).attention_weights(Q)
        weights = pooling.attention_weights(Q, head=head)
        if n_neighbors is not None:
            weights, expected = weights.toarray(), expected.toarray()
        np.testing.assert_allclose(weights, expected, rtol=1e-12, atol=1e-15)
        # they are the weights of transform
        np.testing.assert_allclose(
            weights @ y, pooling.transform(Q)[:, head], rtol=1e-10
        )
    assert np.all(pooling.attention_weights(Q, head=-1) == weights)


def test_attention_weights_refuses_an_unknown_head(rng):
    X, y = _data(rng)
    pooling = _plain(bandwidth=[0.5, 1.5]).fit(X, y)
    for head in (2, -3, 0.5):
        with pytest.raises(ValueError, match="is not a head.*it has 2"):
            pooling.attention_weights(X, head=head)


def test_weights_display_shows_pooling(rng):
    pytest.importorskip("matplotlib")
    from skattn import AttentionWeightsDisplay

    X, y = _data(rng)
    pooling = _plain(bandwidth=0.8).fit(X, y)
    display = AttentionWeightsDisplay.from_estimator(pooling, X[:5])
    np.testing.assert_allclose(
        display.image_.get_array(), pooling.attention_weights(X[:5])
    )


def test_integer_target_read_as_classes_says_what_to_do(rng):
    X = rng.normal(size=(60, 2))
    salary = (1000 * rng.uniform(50, 150, size=60)).astype(int)  # integer amounts
    with pytest.raises(ValueError, match="target_type='continuous'"):
        _plain().fit_transform(X, salary)
    out = _plain(target_type="continuous").fit_transform(X, salary)
    assert out.shape == (60, 1)
    labels = np.repeat([0, 1, 2], 20)
    labels[0] = 3  # one row of a fourth class
    with pytest.raises(ValueError, match="4 classes, the smallest with 1 row"):
        _plain(target_type="multiclass").fit_transform(X, labels)


def test_learned_heads_warn_in_the_transformers_own_words(rng, monkeypatch):
    import skattn._pooling as pooling_module

    class Hurried(AttentionRegressor):  # stops after one iteration
        def __init__(
            self,
            metric="diagonal",
            kernel="gaussian",
            init="auto",
            trend=None,
            alpha=0.0,
            n_jobs=None,
            verbose=0,
        ):
            super().__init__(
                metric=metric,
                kernel=kernel,
                init=init,
                trend=trend,
                alpha=alpha,
                n_jobs=n_jobs,
                max_iter=1,
                verbose=verbose,
            )

    monkeypatch.setattr(pooling_module, "AttentionRegressor", Hurried)
    X, y = _data(rng, n=60)
    with pytest.warns(ConvergenceWarning) as record:
        _plain(learn_bandwidth=True, bandwidth=[0.5, 1.0]).fit(X, y)
    messages = [str(w.message) for w in record if w.category is ConvergenceWarning]
    assert messages and all(
        m.startswith("AttentionPooling(learn_bandwidth=True)") for m in messages
    )
    assert any("head 1's" in m for m in messages)
    assert not any("Increase max_iter or tol" in m for m in messages)


# -- the defaults: learned bandwidths at small n, the features passed through ------


def test_the_default_appends_the_features_after_the_pooled_columns(rng):
    X, y = _data(rng, n=60)
    Q = rng.normal(size=(5, 3))
    default = AttentionPooling(random_state=0).fit(X, y)
    plain = _plain(bandwidth=default.bandwidths_[0], random_state=0).fit(X, y)
    np.testing.assert_array_equal(default.transform(Q)[:, 1:], Q)
    np.testing.assert_allclose(default.transform(Q)[:, :1], plain.transform(Q))
    assert default.get_feature_names_out().tolist() == [
        "head0_target",
        "x0",
        "x1",
        "x2",
    ]
    out = AttentionPooling(random_state=0).fit_transform(X, y)
    np.testing.assert_array_equal(out[:, 1:], X)
    assert out.shape == (60, 4)


def test_auto_learns_a_rules_bandwidth_at_small_n_only(rng, monkeypatch):
    import skattn._pooling as pooling_module

    X, y = _data(rng, n=60)
    learned = AttentionPooling().fit(X, y)
    by_hand = AttentionRegressor(init=_scott(X), trend=None, alpha=0.0).fit(X, y)
    np.testing.assert_allclose(learned.bandwidths_[0], by_hand.bandwidth_, rtol=1e-10)
    # a number is kept as given; features alone are not learned (no target)
    assert (
        AttentionPooling(bandwidth=0.7).fit(X, y).bandwidths_[0].tolist() == [0.7] * 3
    )
    features = AttentionPooling(values="features").fit(X)
    np.testing.assert_allclose(features.bandwidths_[0], _scott(X))
    # above the threshold, the rule
    monkeypatch.setattr(pooling_module, "AUTO_LEARN_MAX_ROWS", 59)
    np.testing.assert_allclose(AttentionPooling().fit(X, y).bandwidths_[0], _scott(X))


def test_the_default_helps_a_linear_model():
    X, y = make_friedman1(n_samples=500, noise=1.0, random_state=0)
    from sklearn.model_selection import cross_val_score

    ridge = cross_val_score(Ridge(), X, y).mean()
    pooled = cross_val_score(
        make_pipeline(AttentionPooling(random_state=0), Ridge()), X, y
    ).mean()
    assert pooled > ridge + 0.1
