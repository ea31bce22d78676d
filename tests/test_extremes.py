# SPDX-License-Identifier: BSD-3-Clause
"""Finite inputs that gave NaN or silently wrong answers (issue 16, section 2): each a
plain reproducer with the right answer asserted."""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skattn import (
    AttentionPooling,
    AttentionRegressor,
    AttentionWeightsDisplay,
    NadarayaWatsonClassifier,
    NadarayaWatsonRegressor,
)
from skattn import functional as F
from skattn._neighbors import CandidateKeys

X3 = np.array([[0.0], [1.0], [2.0]])
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# 1. |y| >= 2^1023 gave all-NaN predictions
def test_targets_near_the_float64_limit():
    y = np.array([0.0, 1.0, 9e307])
    for pred in (
        NadarayaWatsonRegressor(bandwidth=1.0).fit(X3, y).predict(X3),
        AttentionRegressor(max_iter=3).fit(X3, y).predict(X3),
        AttentionPooling(passthrough=False, learn_bandwidth=False, bandwidth=1.0)
        .fit(X3, y)
        .transform(X3)
        .ravel(),
        F.kernel_attention(X3, X3, y[:, None]).ravel(),
    ):
        assert np.isfinite(pred).all()
        # (AttentionRegressor's trend may leave the range; here its bandwidth is
        # floored at an eighth of the gap, where a neighbour weighs exp(-32):
        # residuals of 4e307 move a prediction by about 1e-14 of the range)
        assert pred.min() >= -1e-13 * 9e307 and pred.max() <= 9e307 * (1 + 1e-13)
    expected = NadarayaWatsonRegressor(bandwidth=1.0).fit(X3, y / 1e300).predict(X3)
    np.testing.assert_allclose(
        NadarayaWatsonRegressor(bandwidth=1.0).fit(X3, y).predict(X3),
        expected * 1e300,
        rtol=1e-12,
    )
    both = np.array([-9e307, 0.0, 9e307])
    pred = NadarayaWatsonRegressor(bandwidth=1.0).fit(X3, both).predict(X3)
    assert np.isfinite(pred).all() and pred[1] == pytest.approx(0.0, abs=1e293)


# 2. float32 X with a float64 y: y was cast to float32 (inf beyond its range, and
# predictions outside the range of the y given)
def test_float32_keys_keep_the_targets_precision():
    X32 = X3.astype(np.float32)
    pred = (
        NadarayaWatsonRegressor(bandwidth=1.0).fit(X32, [0.0, 1.0, 1e300]).predict(X32)
    )
    assert pred.dtype == np.float64 and np.isfinite(pred).all()
    np.testing.assert_allclose(
        pred,
        NadarayaWatsonRegressor(bandwidth=1.0).fit(X3, [0.0, 1.0, 1e300]).predict(X3),
        rtol=1e-6,
    )
    y = np.array([0.1, 0.2, 0.3])
    far = NadarayaWatsonRegressor(bandwidth=1e-3).fit(X32, y).predict(X32)
    assert far.max() <= 0.3 and far.min() >= 0.1
    with pytest.raises(ValueError, match="beyond the range of float32"):
        AttentionPooling(passthrough=False, learn_bandwidth=False, bandwidth=1.0).fit(
            X32, [0.0, 1.0, 1e300]
        )
    out = (
        AttentionPooling(passthrough=False, learn_bandwidth=False, bandwidth=1.0)
        .fit(X32, [0.0, 1.0, 1e30])
        .transform(X32)
    )
    assert out.dtype == np.float32 and np.isfinite(out).all()


# 3. weights were ignored for far queries with the Gaussian kernel
@pytest.mark.parametrize("n_neighbors", [None, 2, "all"])
def test_far_queries_keep_the_sample_weights(n_neighbors):
    X = np.array([[0.0], [0.0], [5.0]])
    y = np.array([0.0, 1.0, 5.0])
    k = 3 if n_neighbors == "all" else n_neighbors
    weighted = NadarayaWatsonRegressor(bandwidth=1.0, n_neighbors=k).fit(
        X, y, sample_weight=[1, 3, 1]
    )
    repeated = NadarayaWatsonRegressor(bandwidth=1.0, n_neighbors=k).fit(
        X[[0, 1, 1, 1, 2]], y[[0, 1, 1, 1, 2]]
    )
    np.testing.assert_allclose(weighted.predict([[-1e9]]), [0.75])
    np.testing.assert_allclose(repeated.predict([[-1e9]]), [0.75])
    clf = NadarayaWatsonClassifier(bandwidth=1.0, class_weight={0: 1, 1: 3})
    clf.fit([[0.0], [0.0], [5.0]], [0, 1, 1])
    np.testing.assert_allclose(clf.predict_proba([[-1e9]]), [[0.25, 0.75]])
    assert clf.predict([[-1e9]])[0] == 1


# 4. a tiny bandwidth gave the mean instead of the nearest target
@pytest.mark.parametrize("n_neighbors", [None, 2])
@pytest.mark.parametrize(
    "dtype, bandwidth",
    [(np.float64, 1e-160), (np.float64, 1e-300), (np.float32, 1e-19)],
)
def test_tiny_bandwidth_gives_the_nearest_target(dtype, bandwidth, n_neighbors):
    X = np.array([[0.0], [1.0], [2.0], [3.0]], dtype=dtype)
    model = NadarayaWatsonRegressor(bandwidth=bandwidth, n_neighbors=n_neighbors)
    model.fit(X, [0.0, 1.0, 2.0, 3.0])
    Q = np.array([[-1.0], [4.0], [1.4], [1.6]], dtype=dtype)
    np.testing.assert_array_equal(model.predict(Q), [0.0, 3.0, 1.0, 2.0])


# 5. one far training row sent every query down the per-row exact path
def test_an_outlier_key_does_not_make_every_query_exact(rng, monkeypatch):
    import skattn._engine as engine

    X = rng.normal(size=(400, 3))
    X[0] = 1000.0
    y = rng.normal(size=400)
    model = NadarayaWatsonRegressor(bandwidth=0.5).fit(X, y)
    rows = []
    original = engine.exact_weights
    monkeypatch.setattr(
        engine,
        "exact_weights",
        lambda kernel, sq, *a, **k: (
            rows.append(len(sq)) or original(kernel, sq, *a, **k)
        ),
    )
    Q = rng.normal(size=(300, 3))
    pred = model.predict(Q)
    assert sum(rows) == 0  # no query is near the outlier
    reference = NadarayaWatsonRegressor(bandwidth=0.5).fit(X[1:], y[1:]).predict(Q)
    np.testing.assert_allclose(pred, reference, rtol=1e-9, atol=1e-12)
    near = model.predict(np.full((2, 3), 1000.3))
    assert sum(rows) == 2  # the queries near the outlier are exact
    np.testing.assert_allclose(near, y[0])


# 6. scaled dot-product attention: batch dependence and NaN for finite inputs
def test_scaled_dot_product_attention_extremes(rng):
    q = np.array([[1e200, 1e200]])
    k = np.array([[1e200, -1e200], [1.0, 1.0]])
    v = np.array([[0.0], [1.0]])
    alone = F.scaled_dot_product_attention(q, k, v, scale=1.0)
    batch = F.scaled_dot_product_attention(
        np.vstack([q, [[0.0, 0.0]]]), k, v, scale=1.0
    )
    np.testing.assert_array_equal(alone[0], [1.0])
    np.testing.assert_array_equal(batch[0], alone[0])
    np.testing.assert_array_equal(batch[1], [0.5])
    blocked = F.scaled_dot_product_attention(q, k, v, scale=1.0, block_size=1)
    np.testing.assert_array_equal(blocked, alone)
    # scores beyond the float range are +-inf (their limit), never NaN
    keys = np.array([[-1.0, -1.0], [1.0, 1.0]])
    out = F.scaled_dot_product_attention(np.ones((2, 2)), keys, v, scale=1e308)
    np.testing.assert_array_equal(out.ravel(), [1.0, 1.0])
    out = F.scaled_dot_product_attention(np.full((1, 2), 1e300), keys, v, scale=1e10)
    np.testing.assert_array_equal(out.ravel(), [1.0])
    both_overflow = np.array([[1.0, 1.0], [1.0, 2.0]])
    out, w = F.scaled_dot_product_attention(
        np.ones((1, 2)), both_overflow, v, scale=1e308, return_weights=True
    )
    np.testing.assert_array_equal(w, [[0.5, 0.5]])  # two +inf scores share
    out = F.additive_attention(
        rng.normal(size=(2, 3)),
        rng.normal(size=(4, 2)),
        np.arange(4.0)[:, None],
        rng.normal(size=(3, 5)) * 1e307,
        rng.normal(size=(2, 5)) * 1e307,
        np.ones(5),
    )
    assert np.isfinite(out).all()


def test_squeeze_excitation_extremes():
    gate_ones = (np.ones((2, 1)), np.ones(1), np.ones((1, 2)), np.ones(2))
    y, gate = F.squeeze_excitation(
        np.full((1, 2, 3, 3), 1e308), *gate_ones, return_gate=True
    )
    np.testing.assert_array_equal(gate, [[1.0, 1.0]])
    np.testing.assert_array_equal(y, np.full((1, 2, 3, 3), 1e308))
    with pytest.raises(ValueError, match="0 x 0 pixels"):
        F.squeeze_excitation(np.ones((1, 2, 0, 0)), *gate_ones)


# 7. top-k depended on the row order with duplicate rows
def test_top_k_with_duplicates_is_order_free():
    X = np.array([[0.0], [0.0], [1.0], [3.0]])
    y = np.array([0.0, 1.0, 1.0, 3.0])
    for order in ([0, 1, 2, 3], [1, 0, 2, 3], [3, 2, 1, 0]):
        model = NadarayaWatsonRegressor(bandwidth=1.0, n_neighbors=1)
        model.fit(X[order], y[order])
        np.testing.assert_allclose(model.predict([[0.0], [0.1]]), [0.5, 0.5])
        weights = model.attention_weights([[0.0]])
        assert weights.nnz == 2  # both copies: keys tied with the k-th come too


# 8. AttentionRegressor did not scale y; extreme X failed
@pytest.mark.parametrize("factor", [1e-170, 1.0, 1e156])
@pytest.mark.parametrize("boosting", ["auto", True])
def test_attention_regressor_is_invariant_to_the_scale_of_y(rng, factor, boosting):
    X = rng.uniform(size=(60, 3))
    y = X @ [1.0, 2.0, 3.0] + np.sin(6 * X[:, 0])  # the trend leaves a curve
    ref = AttentionRegressor(max_iter=15, boosting=boosting).fit(X, y)
    scaled = AttentionRegressor(max_iter=15, boosting=boosting).fit(X, y * factor)
    assert scaled.n_iter_ == ref.n_iter_ > 1
    np.testing.assert_allclose(scaled.bandwidth_, ref.bandwidth_, rtol=1e-6)
    np.testing.assert_allclose(scaled.predict(X), ref.predict(X) * factor, rtol=1e-6)
    assert scaled.boosting_rounds_ == ref.boosting_rounds_
    assert (ref.boosting_rounds_ > 0) == (boosting is True)
    np.testing.assert_allclose(
        scaled.predict_interval(X), ref.predict_interval(X) * factor, rtol=1e-6
    )


@pytest.mark.parametrize("metric", ["isotropic", "diagonal", "full"])
@pytest.mark.parametrize("factor", [1e-201, 1e156])
def test_attention_regressor_extreme_features(rng, metric, factor):
    X = rng.uniform(size=(40, 3))
    y = X @ [1.0, 2.0, 3.0]
    ref = AttentionRegressor(metric=metric, max_iter=10).fit(X, y)
    model = AttentionRegressor(metric=metric, max_iter=10).fit(X * factor, y)
    np.testing.assert_allclose(model.predict(X * factor), ref.predict(X), rtol=1e-5)
    huge = np.array([[1e308, 0, 1], [-1e308, 1, 0], [0, 0, 0], [1e308, 1, 1]])
    model = AttentionRegressor(metric=metric, max_iter=5).fit(huge, [0.0, 1, 2, 3])
    assert np.isfinite(model.predict(huge)).all()
    boosted = AttentionRegressor(metric=metric, max_iter=5, boosting=True)
    boosted.fit(huge, [0.0, 1, 2, 3])
    assert np.isfinite(boosted.predict(huge)).all()
    assert np.isfinite(boosted.predict_interval(huge, coverage=0.5)).all()
    if metric != "full":
        assert np.isfinite(model.bandwidth_).all()


# 9. the top-k path raised "Input X contains infinity" for finite X
def test_top_k_finite_for_extreme_scales():
    X = np.array([[1e-41], [0.0]], dtype=np.float32)
    model = NadarayaWatsonRegressor(n_neighbors=1).fit(X, [0.0, 1.0])
    np.testing.assert_array_equal(model.predict(X), [0.0, 1.0])
    X4 = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = NadarayaWatsonRegressor(bandwidth=3e-308, n_neighbors=2).fit(X4, X4[:, 0])
    np.testing.assert_array_equal(model.predict([[1.0], [2.2]]), [1.0, 2.0])
    index = CandidateKeys(X4 * 1e300, np.full(1, 1e8), 2, np.inf)
    assert np.isfinite(index.z_keys).all() and np.abs(index.z_keys).max() <= 1.0


# 10. set_params after fit changed predictions or crashed: predict uses fitted state
def test_predict_uses_fitted_state_only(rng):
    X = rng.uniform(size=(50, 3))
    y = X @ [1.0, 2.0, 3.0]
    X4 = np.array([[0.0], [1.0], [2.0], [3.0]])
    nw = NadarayaWatsonRegressor(bandwidth=1.0, kernel="tophat", n_neighbors="radius")
    nw.fit(X4, X4[:, 0])
    before = nw.predict([[1.5], [0.2]])
    nw.set_params(kernel="gaussian")
    np.testing.assert_array_equal(nw.predict([[1.5], [0.2]]), before)
    ar = AttentionRegressor(max_iter=2).fit(X, y)
    before = ar.predict(X[:3])
    ar.set_params(metric="full")
    np.testing.assert_array_equal(ar.predict(X[:3]), before)
    pool = AttentionPooling(
        passthrough=False, learn_bandwidth=False, values="features"
    ).fit(X, y)
    before = pool.transform(X[:3])
    pool.set_params(values="target", return_entropy=True)
    np.testing.assert_array_equal(pool.transform(X[:3]), before)
    assert len(pool.get_feature_names_out()) == before.shape[1]


# 11. AttentionWeightsDisplay crashed with sparse (top-k) weights
def test_display_of_top_k_weights(rng):
    pytest.importorskip("matplotlib")
    X = rng.uniform(size=(50, 3))
    model = NadarayaWatsonRegressor(n_neighbors=3).fit(X, X[:, 0])
    display = AttentionWeightsDisplay.from_estimator(model, X[:5])
    dense = display.weights if hasattr(display, "weights") else None
    assert dense is None or np.allclose(np.asarray(dense).sum(axis=1), 1.0)
    assert display.ax_ is not None


# 12. metric="full" had no memory guard
def test_full_metric_refuses_too_many_parameters(rng):
    X = rng.normal(size=(3, 3000))
    with pytest.raises(ValueError, match="9,000,000 parameters"):
        AttentionRegressor(metric="full").fit(X, [0.0, 1.0, 2.0])
    fitted = AttentionRegressor(metric="full", n_components=2, max_iter=2)
    assert fitted.fit(X, [0.0, 1.0, 2.0]).components_.shape == (2, 3000)


def test_convergence_warning_still_raised_when_asked(rng):
    X = rng.normal(size=(30, 2))
    with pytest.warns(ConvergenceWarning):
        AttentionRegressor(max_iter=1).fit(X, X[:, 0] ** 2)
