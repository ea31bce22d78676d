# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest
from sklearn import config_context

import skattn._engine as engine
from skattn._engine import attention_pool, exact_weights, softmax
from skattn._kernels import KERNELS, get_kernel
from tests._reference import leave_one_out, nadaraya_watson

KERNEL_NAMES = sorted(KERNELS)


def _problem(rng, n=60, m=25, d=3, t=2):
    X = rng.normal(size=(n, d))
    V = rng.normal(size=(n, t))
    Q = rng.normal(size=(m, d))
    w = rng.integers(1, 4, size=n).astype(float)
    return X, V, Q, w


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("weighted", [False, True])
def test_pool_matches_plain_loop(rng, kernel, weighted):
    X, V, Q, w = _problem(rng)
    w = w if weighted else None
    h = np.array([1.5, 2.0, 3.0])
    expected, expected_weights = nadaraya_watson(X, V, Q, kernel, h, w)
    got, weights = attention_pool(
        Q, X, V, kernel=kernel, scale=1 / h, key_weights=w, return_weights=True
    )
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_leave_one_out_keeps_w_minus_one_copies(rng, kernel):
    X, V, _, w = _problem(rng)
    h = np.array([1.5, 2.0, 3.0])
    got = attention_pool(
        None, X, V, kernel=kernel, scale=1 / h, key_weights=w, loo=True
    )
    expected = leave_one_out(X, V, kernel, h, w)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_leave_one_out_equals_repeated_rows(rng):
    X, V, _, w = _problem(rng, n=30)
    scale = np.full(3, 0.7)
    got = attention_pool(None, X, V, scale=scale, key_weights=w, loo=True)
    reps = w.astype(int)
    expanded = attention_pool(
        None,
        np.repeat(X, reps, axis=0),
        np.repeat(V, reps, axis=0),
        scale=scale,
        loo=True,
    )
    first = np.concatenate([[0], np.cumsum(reps)[:-1]])
    np.testing.assert_allclose(got, expanded[first], rtol=1e-12)


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_chunking_and_threads_do_not_change_results(rng, kernel, n_jobs, monkeypatch):
    X, V, Q, w = _problem(rng, n=200, m=150)
    args = dict(
        kernel=kernel, scale=np.full(3, 0.8), key_weights=w, return_weights=True
    )
    full, full_w = attention_pool(Q, X, V, **args)
    monkeypatch.setattr(engine, "_MIN_CHUNK_ROWS", 1)
    with config_context(working_memory=0.001):  # a few rows per chunk
        assert engine.chunk_rows(200, 8) < 10
        chunked, chunked_w = attention_pool(Q, X, V, n_jobs=n_jobs, **args)
    np.testing.assert_allclose(chunked, full, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(chunked_w, full_w, rtol=1e-12, atol=1e-14)


def test_chunk_rows_respects_working_memory():
    with config_context(working_memory=1):
        rows = engine.chunk_rows(10_000, 8, n_temporaries=2, cache_bytes=2**40)
        assert engine.chunk_rows(10**7, 8) == 1  # one row is always allowed
    assert 1 < rows and rows * 10_000 * 8 * 2 <= 2**20
    assert engine.chunk_rows(100, 8) >= engine._MIN_CHUNK_ROWS


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_far_queries_and_tiny_bandwidth_give_nearest_key(rng, kernel):
    X, V, Q, w = _problem(rng)
    nearest = np.argmin(((Q[:, None, :] - X[None]) ** 2).sum(-1), axis=1)
    got = attention_pool(Q, X, V, kernel=kernel, scale=np.full(3, 1e9), key_weights=w)
    np.testing.assert_array_equal(got, V[nearest])
    far = X[:5] + 1e6 * np.array([1.0, -1.0, 0.5])
    got = attention_pool(far, X, V, kernel=kernel, scale=np.ones(3), key_weights=w)
    assert np.isfinite(got).all()
    if kernel != "exponential":  # exp(-u) keeps O(1) weight ratios however far
        nearest = np.argmin(((far[:, None, :] - X[None]) ** 2).sum(-1), axis=1)
        np.testing.assert_array_equal(got, V[nearest])


def test_equidistant_nearest_keys_share_by_weight():
    X = np.array([[-1.0], [1.0], [5.0]])
    V = np.array([[0.0], [3.0], [100.0]])
    got, weights = attention_pool(
        np.array([[0.0]]),
        X,
        V,
        kernel="tophat",
        scale=[10.0],
        key_weights=[1.0, 2.0, 1.0],
        return_weights=True,
    )
    np.testing.assert_allclose(weights, [[1 / 3, 2 / 3, 0.0]])
    np.testing.assert_allclose(got, [[2.0]])


def test_leave_one_out_without_other_key_in_support(rng):
    X = np.array([[0.0], [0.1], [10.0]])
    V = np.array([[1.0], [2.0], [3.0]])
    got = attention_pool(None, X, V, kernel="epanechnikov", scale=[1.0], loo=True)
    np.testing.assert_allclose(got, [[2.0], [1.0], [2.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(rng, dtype):
    X, V, Q, _ = _problem(rng)
    got = attention_pool(
        Q.astype(dtype), X.astype(dtype), V.astype(dtype), scale=np.ones(3)
    )
    assert got.dtype == dtype
    expected = attention_pool(Q, X, V, scale=np.ones(3))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_offset_data_is_centred(rng):
    X, V, Q, _ = _problem(rng)
    expected = attention_pool(Q, X, V, kernel="exponential", scale=np.ones(3))
    got = attention_pool(Q + 1e7, X + 1e7, V, kernel="exponential", scale=np.ones(3))
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-8)


def test_softmax():
    logits = np.array(
        [[1e300, 0.0, -1e300], [-np.inf, -np.inf, -np.inf], [1.0, 2.0, 3.0]]
    )
    got = softmax(logits, axis=1)
    np.testing.assert_allclose(got[0], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(got[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(got[2], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
    assert not np.isnan(got).any()


def test_exact_weights_ignores_keys_without_weight():
    sq = np.array([[0.0, 4.0, 9.0]])
    weights = exact_weights(
        get_kernel("tophat"), sq * 100, np.array([-np.inf, 0.0, 0.0])
    )
    np.testing.assert_array_equal(weights, [[0.0, 1.0, 0.0]])


def test_queries_must_be_none_in_leave_one_out():
    with pytest.raises(ValueError, match="queries must be None"):
        attention_pool(np.ones((2, 1)), np.ones((2, 1)), np.ones((2, 1)), loo=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ordinary_data_stays_on_the_fast_path(rng, dtype, monkeypatch):
    # Standardised data at a smallish bandwidth must not be sent to the exact path
    # (that would be correct but many times slower).
    X = rng.normal(size=(400, 8)).astype(dtype)
    y = rng.normal(size=(400, 1)).astype(dtype)
    calls = []
    original = engine.exact_weights
    monkeypatch.setattr(
        engine, "exact_weights", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    attention_pool(X, X, y, scale=np.full(8, 1 / 0.3))
    assert calls == []


def test_rows_far_from_the_centre_are_recomputed_exactly():
    # Keys at 0 and a query on them, 1e7 bandwidths from the keys' centre: the
    # distance GEMM alone would miss K(0) = 1 by about 5%.
    X = np.array([[0.0]] * 9 + [[0.6875]])
    V = np.array([[0.0]] + [[1.0]] * 9)
    got = attention_pool(np.array([[0.0]]), X, V, kernel="cosine", scale=[1e8])
    np.testing.assert_allclose(got, [[8 / 9]], rtol=1e-12)


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_leave_one_out_rows_are_the_rows_of_the_full_leave_one_out(rng, kernel):
    X, V, _, w = _problem(rng)
    keys = engine.prepare_keys(X, V, kernel=kernel, scale=1.0 / 1.3, key_weights=w)
    full = keys.pool(None, loo=True, return_weights=True, return_stats=True)
    for rows in (slice(0, 7), slice(13, 41), slice(55, 60), slice(58, 99)):
        part = keys.pool(
            None, loo=True, loo_rows=rows, return_weights=True, return_stats=True
        )
        for a, b in zip(part, full, strict=True):
            np.testing.assert_allclose(a, b[rows], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kernel", KERNEL_NAMES)
def test_moved_keys_equal_keys_prepared_there(rng, kernel):
    X, V, Q, w = _problem(rng)
    keys = engine.prepare_keys(X, V, kernel=kernel, key_weights=w, scale=[2.0] * 3)
    X_new = X * [0.5, 3.0, 1.0] + 0.25
    moved = keys.moved(X_new)
    fresh = engine.prepare_keys(X_new, V, kernel=kernel, key_weights=w, scale=[2.0] * 3)
    for loo in (False, True):
        queries = None if loo else Q
        expected = fresh.pool(queries, loo=loo, return_weights=True)
        got = moved.pool(queries, loo=loo, return_weights=True)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
    # the original keys stay where they were
    np.testing.assert_array_equal(keys.raw, X)
    with pytest.raises(ValueError, match="moved keys must keep the shape"):
        keys.moved(X[:, :2])


def test_cpu_count_is_read_at_most_once_a_second(monkeypatch):
    calls = []
    monkeypatch.setattr(engine, "cpu_count", lambda: calls.append(1) or 3)
    monkeypatch.setattr(engine, "_cores_seen", [None, -np.inf])
    assert engine._cores() == 3
    assert engine._cores() == 3
    assert len(calls) == 1
    engine._cores_seen[1] -= 2.0  # read more than a second ago
    assert engine._cores() == 3
    assert len(calls) == 2


def test_floored_weights_keep_their_products_normal(rng):
    # Narrow bandwidths: most weights underflow. Raised to LOGIT_FLOOR before
    # their exp, none is subnormal, nor is its product with a value of ordinary
    # size (subnormal operands slowed the learning objective's GEMMs 10-35 times),
    # and the pooled values are those of the exact weights (to the rounding of the
    # distance GEMM, whose logits here reach -1e4).
    X = rng.normal(size=(300, 2))
    V = rng.normal(size=(300, 1))
    keys = engine.prepare_keys(X, V, kernel="gaussian", scale=[30.0, 30.0])
    e = np.empty((300, 300))
    keys.unnormalised_weights(keys.transform_queries(X), e)
    assert e.min() >= np.exp(engine.LOGIT_FLOOR) > 2.0**-600
    products = e[:, :, None] * np.array([1e-100, 1e-20, 1.0, 1e100])
    assert products.min() >= np.finfo(np.float64).tiny
    got = keys.pool(None, loo=True)
    sq = ((X[:, None, :] - X[None]) ** 2).sum(-1) * 900.0
    np.fill_diagonal(sq, np.inf)
    weights = softmax(-0.5 * sq, axis=1)
    np.testing.assert_allclose(got, weights @ V, rtol=1e-10, atol=1e-300)
