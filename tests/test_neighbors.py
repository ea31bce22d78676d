"""Top-k and radius attention (``n_neighbors``) against dense attention."""

# SPDX-License-Identifier: BSD-3-Clause

import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import KNeighborsTransformer

from skattn import (
    AttentionClassifier,
    AttentionPooling,
    AttentionRegressor,
    NadarayaWatsonClassifier,
    NadarayaWatsonRegressor,
)
from skattn._kernels import KERNELS, get_kernel

COMPACT = [k for k in KERNELS if get_kernel(k).compact]


def _data(rng, n=200, d=3):
    X = rng.normal(size=(n, d))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.normal(size=n)
    Q = 1.5 * rng.normal(size=(60, d))
    return X, y, Q


@pytest.mark.parametrize("kernel", KERNELS)
def test_top_k_with_all_rows_equals_dense(rng, kernel):
    X, y, Q = _data(rng)
    w = rng.uniform(0.2, 3.0, size=len(y))
    w[:10] = 0.0  # rows of zero weight are no keys
    dense = NadarayaWatsonRegressor(kernel=kernel, bandwidth=0.6).fit(X, y, w)
    for k in (190, 10_000):  # the 190 keys of positive weight; more means all
        top_k = NadarayaWatsonRegressor(kernel=kernel, bandwidth=0.6, n_neighbors=k)
        top_k.fit(X, y, w)
        np.testing.assert_allclose(top_k.predict(Q), dense.predict(Q), rtol=1e-12)
        weights = top_k.attention_weights(Q)
        assert sparse.issparse(weights) and weights.shape == (len(Q), len(y))
        np.testing.assert_allclose(
            weights.toarray(), dense.attention_weights(Q), rtol=1e-12, atol=1e-15
        )


@pytest.mark.parametrize("kernel", COMPACT)
def test_radius_equals_dense(rng, kernel):
    X, y, Q = _data(rng)
    # Far queries have no key in the support and fall back to the nearest key;
    # duplicated rows make ties.
    X = np.vstack([X, X[:5]])
    y = np.concatenate([y, y[:5] + 1.0])
    Q = np.vstack([Q, 10 * Q[:5], X[:5] + 3.0])
    w = rng.uniform(0.5, 2.0, size=len(y))
    for bandwidth in (0.3, [0.5, 1.0, 2.0]):
        dense = NadarayaWatsonRegressor(kernel=kernel, bandwidth=bandwidth).fit(X, y, w)
        radius = NadarayaWatsonRegressor(
            kernel=kernel, bandwidth=bandwidth, n_neighbors="radius"
        ).fit(X, y, w)
        # Equal up to rounding: the dense engine takes distances from a GEMM, the
        # radius path recomputes them directly; near the support's edge a kernel
        # like 1 - u**2 turns their last-bit differences into 1e-11 relative.
        np.testing.assert_allclose(radius.predict(Q), dense.predict(Q), rtol=1e-9)
        np.testing.assert_allclose(
            radius.attention_weights(Q).toarray(),
            dense.attention_weights(Q),
            rtol=1e-9,
            atol=1e-13,
        )


def test_radius_classifier_equals_dense(rng):
    X, y, Q = _data(rng)
    labels = np.digitize(y, [0.0, 1.0])
    params = {"kernel": "epanechnikov", "bandwidth": 0.5, "class_weight": "balanced"}
    dense = NadarayaWatsonClassifier(**params).fit(X, labels)
    radius = NadarayaWatsonClassifier(**params, n_neighbors="radius").fit(X, labels)
    np.testing.assert_allclose(
        radius.predict_proba(Q), dense.predict_proba(Q), rtol=1e-12, atol=1e-15
    )
    np.testing.assert_array_equal(radius.predict(Q), dense.predict(Q))


def _bound_by_loop(X, w, Q, h, k, value_range):
    """The documented bound, written plainly: E / (S + E) times the value range."""
    bounds = []
    for q in Q:
        sq = (((q - X) / h) ** 2).sum(axis=1)
        order = np.argsort(sq, kind="stable")
        near, far = order[:k], order[k:]
        kernel = np.exp(-sq / 2)
        S = (w[near] * kernel[near]).sum()
        E = w[far].sum() * kernel[near].min()
        bounds.append(E / (S + E) * value_range)
    return np.array(bounds)


@pytest.mark.parametrize("k", [5, 20, 60])
def test_gaussian_top_k_error_within_documented_bound(rng, k):
    X, y, Q = _data(rng, n=300, d=4)
    w = rng.uniform(0.5, 2.0, size=len(y))
    h = 0.8
    dense = NadarayaWatsonRegressor(bandwidth=h).fit(X, y, w).predict(Q)
    model = NadarayaWatsonRegressor(bandwidth=h, n_neighbors=k).fit(X, y, w)
    error = np.abs(model.predict(Q) - dense)
    bound = _bound_by_loop(X, w, Q, h, k, np.ptp(y))
    assert np.all(error <= bound * (1 + 1e-9) + 1e-12)
    assert error.max() > 0  # top-k is an approximation here
    # The engine's own per-query bound is the same formula.
    _, engine_bound = model._pool(Q, return_bound=True)[1]
    np.testing.assert_allclose(engine_bound * np.ptp(y), bound, rtol=1e-9)


def test_top_k_weights_are_a_sparse_distribution(rng):
    X, y, Q = _data(rng)
    model = NadarayaWatsonRegressor(n_neighbors=7).fit(X, y)
    weights = model.attention_weights(Q)
    assert isinstance(weights, sparse.csr_matrix)
    assert np.all(np.diff(weights.indptr) == 7)
    assert weights.data.min() >= 0
    np.testing.assert_allclose(np.asarray(weights.sum(axis=1)).ravel(), 1.0)
    np.testing.assert_allclose(weights @ y, model.predict(Q), rtol=1e-12)
    # The support is the 7 nearest training rows.
    sq = ((Q[:, None, :] - X[None]) / model.bandwidth_) ** 2
    nearest = np.sort(np.argsort(sq.sum(axis=2), axis=1)[:, :7], axis=1)
    np.testing.assert_array_equal(weights.indices.reshape(-1, 7), nearest)


def test_top_k_float32_stays_float32(rng):
    X, y, Q = _data(rng)
    X32, Q32 = X.astype(np.float32), Q.astype(np.float32)
    model = NadarayaWatsonRegressor(n_neighbors=10).fit(X32, y.astype(np.float32))
    assert model.predict(Q32).dtype == np.float32
    assert model.attention_weights(Q32).dtype == np.float32
    # the predictions keep the dtype of y
    model = NadarayaWatsonRegressor(n_neighbors=10).fit(X32, y)
    assert model.predict(Q32).dtype == np.float64
    dense = NadarayaWatsonRegressor().fit(X, y)
    top_k = NadarayaWatsonRegressor(n_neighbors=10).fit(X, y)
    np.testing.assert_allclose(
        model.predict(Q.astype(np.float32)), top_k.predict(Q), rtol=1e-4, atol=1e-5
    )
    assert np.isfinite(dense.predict(Q)).all()


def test_radius_needs_a_compact_kernel(rng):
    X, y, _ = _data(rng)
    with pytest.raises(ValueError, match="n_neighbors='radius' needs a compact"):
        NadarayaWatsonRegressor(n_neighbors="radius").fit(X, y)


def test_top_k_in_a_grid_search(rng):
    from sklearn.model_selection import GridSearchCV, cross_val_score

    X, y, _ = _data(rng)
    search = GridSearchCV(
        NadarayaWatsonRegressor(bandwidth=0.5), {"n_neighbors": [5, 50, None]}, cv=3
    ).fit(X, y)
    # every candidate was fitted with its own n_neighbors: the search's scores are
    # those of the models fitted by hand, and top-k with k=5 is not dense attention
    candidates = [5, 50, None]
    by_hand = [
        cross_val_score(
            NadarayaWatsonRegressor(bandwidth=0.5, n_neighbors=k), X, y, cv=3
        ).mean()
        for k in candidates
    ]
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], by_hand, rtol=1e-12
    )
    assert by_hand[0] != by_hand[2]
    assert search.best_params_["n_neighbors"] == candidates[int(np.argmax(by_hand))]


class _BruteForceGraph(TransformerMixin, BaseEstimator):
    """A neighbours transformer written plainly, as a third-party library would
    supply one: ``transform`` gives each query's ``n_neighbors`` nearest fitted rows
    as a sparse distance graph (KNeighborsTransformer's convention)."""

    def __init__(self, n_neighbors=5):
        self.n_neighbors = n_neighbors

    def fit(self, X, y=None):
        self.X_ = np.asarray(X)
        return self

    def transform(self, X):
        X = np.asarray(X)
        rows, cols, dists = [], [], []
        for i, q in enumerate(X):
            d = np.sqrt(((self.X_ - q) ** 2).sum(axis=1))
            nearest = np.argsort(d, kind="stable")[: self.n_neighbors]
            rows += [i] * len(nearest)
            cols += nearest.tolist()
            dists += d[nearest].tolist()
        return sparse.csr_matrix((dists, (rows, cols)), shape=(len(X), len(self.X_)))


@pytest.mark.parametrize(
    "graph",
    [
        # distance mode adds one neighbour (each fitted row is its own neighbour)
        KNeighborsTransformer(n_neighbors=8, mode="distance"),
        KNeighborsTransformer(n_neighbors=9, mode="connectivity"),
        _BruteForceGraph(n_neighbors=9),
    ],
)
def test_precomputed_graph_equals_internal_search(rng, graph):
    X, y, Q = _data(rng)
    w = rng.uniform(0.5, 2.0, size=len(y))
    w[:7] = 0.0
    bandwidth = [0.5, 1.0, 2.0]  # per feature: the graph lives in the scaled space
    internal = NadarayaWatsonRegressor(bandwidth=bandwidth, n_neighbors=9).fit(X, y, w)
    plugged = NadarayaWatsonRegressor(bandwidth=bandwidth, n_neighbors=graph)
    plugged.fit(X, y, w)
    np.testing.assert_array_equal(plugged.predict(Q), internal.predict(Q))
    a, b = plugged.attention_weights(Q), internal.attention_weights(Q)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)
    # The transformer was cloned and fitted on the scaled keys, not the original.
    assert not hasattr(graph, "n_samples_fit_") and not hasattr(graph, "X_")
    # And so do the classifiers, the learned estimators and the transformer.
    labels = (y > np.median(y)).astype(int)
    for make in (
        lambda n: NadarayaWatsonClassifier(bandwidth=0.7, n_neighbors=n),
        lambda n: AttentionRegressor(max_iter=5, n_neighbors=n),
        lambda n: AttentionPooling(
            passthrough=False,
            learn_bandwidth=False,
            values="both",
            return_entropy=True,
            n_neighbors=n,
        ),
    ):
        target = labels if isinstance(make(None), NadarayaWatsonClassifier) else y
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            first, second = make(9).fit(X, target), make(graph).fit(X, target)
        method = "transform" if hasattr(first, "transform") else "predict"
        np.testing.assert_allclose(
            getattr(second, method)(Q), getattr(first, method)(Q), rtol=1e-13
        )


class _Returns(BaseEstimator):
    """A transformer that returns a fixed kind of output, to test the errors."""

    def __init__(self, kind="dense"):
        self.kind = kind

    def fit(self, X, y=None):
        self.n_ = len(X)
        return self

    def transform(self, X):
        if self.kind == "dense":
            return np.ones((len(X), self.n_))
        if self.kind == "shape":
            return sparse.csr_matrix(np.ones((len(X), self.n_ + 1)))
        graph = sparse.lil_matrix((len(X), self.n_))
        graph[1:, 0] = 1.0  # the first query has no neighbour
        return graph.tocsr()


@pytest.mark.parametrize(
    "kind, error, match",
    [
        ("dense", TypeError, "must return a scipy.sparse"),
        ("shape", ValueError, "201 columns; expected 200, one per training row"),
        ("empty", ValueError, "a query row of no neighbour"),
    ],
)
def test_bad_neighbours_graph_is_a_clear_error(rng, kind, error, match):
    X, y, Q = _data(rng)
    model = NadarayaWatsonRegressor(n_neighbors=_Returns(kind)).fit(X, y)
    with pytest.raises(error, match=match):
        model.predict(Q)


def test_neighbours_parameter_is_validated(rng):
    X, y, _ = _data(rng)
    with pytest.raises(ValueError, match="n_neighbors"):
        NadarayaWatsonRegressor(n_neighbors=0).fit(X, y)
    with pytest.raises(ValueError, match="n_neighbors"):
        NadarayaWatsonRegressor(n_neighbors="all").fit(X, y)
    with pytest.raises(ValueError, match="learns only kernels of full support"):
        AttentionClassifier(n_neighbors="radius").fit(X, y > 0)
    with pytest.raises(ValueError, match="n_neighbors='radius' needs a compact"):
        AttentionPooling(
            passthrough=False, learn_bandwidth=False, n_neighbors="radius"
        ).fit(X, y)


@pytest.mark.parametrize("cls", [AttentionRegressor, AttentionClassifier])
@pytest.mark.parametrize("metric", ["diagonal", "full"])
def test_learned_estimators_top_k_with_all_rows_equals_dense(rng, cls, metric):
    X, y, Q = _data(rng, n=80)
    target = y if cls is AttentionRegressor else (y > 0)
    # (top-k attention is not averaged with a local-linear one)
    params = {"local_linear": False} if cls is AttentionRegressor else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = cls(metric=metric, max_iter=10, **params).fit(X, target)
        top_k = cls(metric=metric, max_iter=10, n_neighbors=80, **params)
        top_k.fit(X, target)
    method = "predict" if cls is AttentionRegressor else "predict_proba"
    np.testing.assert_allclose(
        getattr(top_k, method)(Q),
        getattr(dense, method)(Q),
        rtol=1e-12,
        atol=1e-12 * np.abs(y).max(),
    )
    # the learning is unchanged: n_neighbors acts at prediction only
    np.testing.assert_array_equal(
        top_k.feature_importances_, dense.feature_importances_
    )
    weights = top_k.attention_weights(Q)
    assert sparse.issparse(weights)
    np.testing.assert_allclose(
        weights.toarray(), dense.attention_weights(Q), atol=1e-14
    )


def _pooling_params(kernel):
    return {
        "values": "both",
        "kernel": kernel,
        "bandwidth": [0.7, [0.5, 1.0, 2.0]],
        "return_entropy": True,
        "return_n_effective": True,
        "random_state": 0,
    }


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_pooling_top_k_with_all_rows_and_radius_equal_dense(rng, kernel):
    X, y, Q = _data(rng, n=120)
    Q = np.vstack([Q, 10 * Q[:3]])  # far queries: no key in a compact support
    w = rng.uniform(0.5, 3.0, size=len(y))
    w[:5] = 0.0  # no keys, but transformed by fit_transform
    w[5:15] = 1.0  # leave-one-out leaves no copy of these rows
    dense = AttentionPooling(
        passthrough=False, learn_bandwidth=False, **_pooling_params(kernel)
    )
    expected = dense.fit_transform(X, y, sample_weight=w), dense.transform(Q)
    modes = [500] + (["radius"] if kernel == "epanechnikov" else [])
    for n_neighbors in modes:
        pooling = AttentionPooling(
            passthrough=False,
            learn_bandwidth=False,
            **_pooling_params(kernel),
            n_neighbors=n_neighbors,
        )
        got = pooling.fit_transform(X, y, sample_weight=w), pooling.transform(Q)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_pooling_leave_one_out_top_k_by_loop(rng):
    """fit_transform's leave-one-out features pool each row's k nearest *other*
    rows: checked against a loop written plainly."""
    X, y, _ = _data(rng, n=90)
    k, h = 6, 0.8
    pooling = AttentionPooling(
        passthrough=False,
        learn_bandwidth=False,
        values="features",
        bandwidth=h,
        n_neighbors=k,
    )
    got = pooling.fit_transform(X)
    expected = np.empty_like(X)
    for i in range(len(X)):
        others = np.delete(np.arange(len(X)), i)
        sq = (((X[others] - X[i]) / h) ** 2).sum(axis=1)
        nearest = others[np.argsort(sq)[:k]]
        weights = np.exp(-(((X[nearest] - X[i]) / h) ** 2).sum(axis=1) / 2)
        expected[i] = weights @ X[nearest] / weights.sum()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("n_neighbors", [None, 12, "radius"])
def test_query_chunks_on_threads_equal_one_thread(rng, n_neighbors):
    """predict / attention_weights / transform split their queries over threads
    (``n_jobs``); every query's result is its own, so nothing changes."""
    X, y, Q = _data(rng)
    Q = np.vstack([Q] * 4)  # enough queries for several chunks
    kernel = "epanechnikov" if n_neighbors == "radius" else "gaussian"
    params = {"kernel": kernel, "bandwidth": 0.7, "n_neighbors": n_neighbors}
    one = NadarayaWatsonRegressor(**params).fit(X, y)
    two = NadarayaWatsonRegressor(**params, n_jobs=2).fit(X, y)
    np.testing.assert_allclose(two.predict(Q), one.predict(Q), rtol=1e-13)
    a, b = two.attention_weights(Q), one.attention_weights(Q)
    if sparse.issparse(a):
        np.testing.assert_array_equal(a.indices, b.indices)
        a, b = a.data, b.data
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-16)
    pooling = {"values": "both", "return_entropy": True, "n_neighbors": n_neighbors}
    one = AttentionPooling(
        passthrough=False, learn_bandwidth=False, kernel=kernel, **pooling
    ).fit(X, y)
    two = AttentionPooling(
        passthrough=False, learn_bandwidth=False, kernel=kernel, **pooling, n_jobs=2
    ).fit(X, y)
    np.testing.assert_allclose(two.transform(Q), one.transform(Q), rtol=1e-13)
