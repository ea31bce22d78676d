"""skattn.functional against plain-loop references written here from the formulas."""

# SPDX-License-Identifier: BSD-3-Clause

import inspect
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpydoc.docscrape import FunctionDoc

from skattn import functional as F

# -- plain-loop references -------------------------------------------------------------


def ref_softmax_row(scores, keep):
    """Softmax of one row over the kept entries; zeros if none is kept."""
    kept = [s for s, k in zip(scores, keep, strict=True) if k]
    if not kept:
        return [0.0] * len(scores)
    top = max(kept)
    e = [math.exp(s - top) if k else 0.0 for s, k in zip(scores, keep, strict=True)]
    total = sum(e)
    return [x / total for x in e]


def ref_attention_2d(scores, value, keep):
    """weights = row softmax of scores over kept keys; output = weights @ value."""
    n_q, n_k = len(scores), len(scores[0]) if len(scores) else 0
    weights = np.zeros((n_q, n_k))
    out = np.zeros((n_q, value.shape[1]))
    for i in range(n_q):
        weights[i] = ref_softmax_row(list(scores[i]), list(keep[i]))
        for j in range(n_k):
            for c in range(value.shape[1]):
                out[i, c] += weights[i, j] * value[j, c]
    return out, weights


def ref_sdpa(q, k, v, keep, scale):
    """Loops over the batch, queries and keys of 3-d arrays."""
    outs, ws = [], []
    for b in range(q.shape[0]):
        scores = np.zeros((q.shape[1], k.shape[1]))
        for i in range(q.shape[1]):
            for j in range(k.shape[1]):
                scores[i, j] = scale * sum(
                    q[b, i, c] * k[b, j, c] for c in range(q.shape[2])
                )
        out, w = ref_attention_2d(scores, v[b], keep[b])
        outs.append(out)
        ws.append(w)
    return np.array(outs), np.array(ws)


def lens_to_keep(lens, n_q, n_k):
    """Keep-array from per-batch or per-query valid lengths, as loops."""
    lens = np.asarray(lens)
    keep = np.zeros((lens.shape[0], n_q, n_k), dtype=bool)
    for b in range(lens.shape[0]):
        for i in range(n_q):
            length = lens[b] if lens.ndim == 1 else lens[b, i]
            for j in range(n_k):
                keep[b, i, j] = j < length
    return keep


# -- masked_softmax --------------------------------------------------------------------


def test_masked_softmax_matches_loop_with_mask_and_lens(rng):
    scores = rng.normal(size=(3, 4, 6)) * 5
    mask = rng.random((3, 4, 6)) < 0.7
    lens = np.array([[6, 5, 0, 3], [1, 2, 3, 4], [6, 6, 6, 6]])
    got = F.masked_softmax(scores, mask=mask, valid_lens=lens)
    keep = mask & lens_to_keep(lens, 4, 6)
    for b in range(3):
        for i in range(4):
            np.testing.assert_allclose(
                got[b, i], ref_softmax_row(list(scores[b, i]), list(keep[b, i]))
            )


def test_masked_softmax_fully_masked_rows_are_zero_not_uniform():
    scores = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    got = F.masked_softmax(scores, valid_lens=[3, 0])
    assert np.all(got[1] == 0)
    np.testing.assert_allclose(got[0].sum(), 1.0)
    got = F.masked_softmax(scores, mask=np.zeros((2, 3), bool))
    assert np.all(got == 0)


def test_masked_softmax_per_batch_lens_d2l(rng):
    # d2l: scores (2, 2, 4), valid_lens (2,) repeated for every query
    scores = rng.random((2, 2, 4))
    got = F.masked_softmax(scores, valid_lens=np.array([2, 3]))
    assert np.all(got[0, :, 2:] == 0) and np.all(got[1, :, 3:] == 0)
    np.testing.assert_allclose(got.sum(-1), 1.0)


def test_masked_softmax_axis(rng):
    scores = rng.normal(size=(5, 3))
    mask = rng.random((5, 3)) < 0.8
    got = F.masked_softmax(scores, mask=mask, axis=0)
    np.testing.assert_array_equal(
        got, F.masked_softmax(scores.T, mask=mask.T, axis=-1).T
    )
    got = F.masked_softmax(scores, valid_lens=[2, 5, 0], axis=0)
    assert np.all(got[2:, 0] == 0) and np.all(got[:, 2] == 0)


def test_masked_softmax_huge_and_infinite_scores():
    got = F.masked_softmax(np.array([[1e300, -1e300, 1e300], [1e308, 0.0, -1e308]]))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, [[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]])
    # -inf acts as masked; +inf entries share the weight (the softmax's limit)
    got = F.masked_softmax(np.array([[-np.inf, 0.0], [np.inf, np.inf], [np.inf, 1.0]]))
    np.testing.assert_allclose(got, [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    # NaN under a mask is ignored
    got = F.masked_softmax(np.array([np.nan, 0.0]), mask=np.array([False, True]))
    np.testing.assert_array_equal(got, [0.0, 1.0])


def test_masked_softmax_dtypes(rng):
    scores = rng.normal(size=(3, 4))
    assert F.masked_softmax(scores.astype(np.float32)).dtype == np.float32
    assert F.masked_softmax(np.arange(6).reshape(2, 3)).dtype == np.float64
    got = F.masked_softmax(scores.astype(np.float32), valid_lens=[1, 2, 3])
    assert got.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"scores": [np.nan, 1.0]}, ValueError, "NaN"),
        ({"scores": ["a", "b"]}, TypeError, "real numbers"),
        (
            {"scores": np.ones((2, 3)), "mask": np.ones((3, 3), bool)},
            ValueError,
            "mask",
        ),
        ({"scores": np.ones((2, 3)), "mask": np.ones((2, 3))}, TypeError, "boolean"),
        ({"scores": np.ones((2, 3)), "valid_lens": [1, 4]}, ValueError, "between 0"),
        ({"scores": np.ones((2, 3)), "valid_lens": [1, -1]}, ValueError, "between 0"),
        ({"scores": np.ones((2, 3)), "valid_lens": [1.5, 1]}, TypeError, "whole"),
        ({"scores": np.ones((2, 3)), "valid_lens": [1, 2, 3]}, ValueError, "valid_"),
        (
            {"scores": np.ones((2, 3)), "valid_lens": np.ones((2, 2, 2), int)},
            ValueError,
            "fits",
        ),
        ({"scores": np.ones((2, 3)), "axis": 2}, ValueError, "axis"),
        ({"scores": 1.0}, ValueError, "dimension"),
    ],
)
def test_masked_softmax_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        F.masked_softmax(**kwargs)


@settings(max_examples=60, deadline=None)
@given(
    scores=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
        elements=st.floats(-1e308, 1e308),
    ),
    data=st.data(),
)
def test_masked_softmax_properties(scores, data):
    mask = data.draw(hnp.arrays(bool, scores.shape))
    weights = F.masked_softmax(scores, mask=mask)
    assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
    assert np.all(weights[~mask] == 0)
    sums = weights.sum(-1)
    any_kept = mask.any(-1)
    np.testing.assert_allclose(sums[any_kept], 1.0, rtol=1e-12)
    assert np.all(sums[~any_kept] == 0)


# -- scaled dot-product attention ------------------------------------------------------


@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("lens_kind", [None, "batch", "query"])
def test_sdpa_matches_loop(rng, with_mask, lens_kind):
    q, k, v = (
        rng.normal(size=(3, 4, 5)),
        rng.normal(size=(3, 6, 5)),
        rng.normal(size=(3, 6, 2)),
    )
    keep = np.ones((3, 4, 6), bool)
    mask = lens = None
    if with_mask:
        mask = rng.random((3, 4, 6)) < 0.6
        keep &= mask
    if lens_kind == "batch":
        lens = np.array([6, 0, 3])
        keep &= lens_to_keep(lens, 4, 6)
    elif lens_kind == "query":
        lens = rng.integers(0, 7, size=(3, 4))
        keep &= lens_to_keep(lens, 4, 6)
    out, w = F.scaled_dot_product_attention(
        q, k, v, mask=mask, valid_lens=lens, return_weights=True
    )
    ref_out, ref_w = ref_sdpa(q, k, v, keep, 1 / math.sqrt(5))
    np.testing.assert_allclose(w, ref_w, atol=1e-14)
    np.testing.assert_allclose(out, ref_out, atol=1e-13)
    blocked = F.scaled_dot_product_attention(
        q, k, v, mask=mask, valid_lens=lens, block_size=4
    )
    np.testing.assert_allclose(blocked, out, rtol=1e-12, atol=1e-12)


def test_sdpa_scale_and_broadcasting(rng):
    q = rng.normal(size=(2, 1, 3, 4))  # (batch, 1, n_q, d)
    k = rng.normal(size=(5, 4, 4))  # (heads, n_k, d): broadcasts to (2, 5)
    v = rng.normal(size=(1, 5, 4, 3))
    out, w = F.scaled_dot_product_attention(q, k, v, scale=0.3, return_weights=True)
    assert out.shape == (2, 5, 3, 3) and w.shape == (2, 5, 3, 4)
    for a in range(2):
        for h in range(5):
            ref_out, ref_w = ref_sdpa(
                q[a], k[h][None], v[0, h][None], np.ones((1, 3, 4), bool), 0.3
            )
            np.testing.assert_allclose(out[a, h], ref_out[0], atol=1e-13)
            np.testing.assert_allclose(w[a, h], ref_w[0], atol=1e-14)
    # a batch dimension only value has reaches the output, also with a mask
    q, k = rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    v = rng.normal(size=(6, 4, 1))
    mask = np.ones((6, 3, 4), bool)
    mask[0, :, 1:] = False
    out = F.scaled_dot_product_attention(q, k, v, mask=mask)
    assert out.shape == (6, 3, 1)
    np.testing.assert_allclose(out[0], np.broadcast_to(v[0, :1], (3, 1)))
    blocked = F.scaled_dot_product_attention(q, k, v, mask=mask, block_size=3)
    np.testing.assert_allclose(blocked, out, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("block_size", [1, 7, 64, 1000])
def test_sdpa_blocked_equals_dense(rng, block_size):
    q, k, v = (
        rng.normal(size=(2, 50, 8)),
        rng.normal(size=(2, 300, 8)),
        rng.normal(size=(2, 300, 3)),
    )
    q *= 4  # peaked weights: the running maximum changes between blocks
    lens = rng.integers(0, 301, size=(2, 50))
    lens[0, 0] = 0
    dense = F.scaled_dot_product_attention(q, k, v, valid_lens=lens)
    blocked = F.scaled_dot_product_attention(
        q, k, v, valid_lens=lens, block_size=block_size
    )
    np.testing.assert_allclose(blocked, dense, rtol=1e-12, atol=1e-12)
    assert np.all(blocked[0, 0] == 0)


def test_sdpa_huge_scores_and_masked_rows_are_finite():
    q = np.array([[[1e154, 0.0], [1.0, 1.0]]])
    k = np.array([[[1e154, 0.0], [-1e154, 0.0], [0.0, 1.0]]])
    v = np.array([[[1.0], [2.0], [3.0]]])
    mask = np.array([[[True, True, True], [False, False, False]]])
    for block_size in (None, 1, 2):
        out = F.scaled_dot_product_attention(
            q, k, v, mask=mask, scale=1.0, block_size=block_size
        )
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, [[[1.0], [0.0]]])
    # scores that overflow to +inf take the softmax's limit, in both modes
    q = np.array([[1e200, 0.0]])
    k = np.array([[1e200, 0.0], [1e200, 0.0], [0.0, 1.0]])
    v = np.array([[1.0], [3.0], [10.0]])
    for block_size in (None, 1, 2, 3):
        out = F.scaled_dot_product_attention(q, k, v, block_size=block_size)
        np.testing.assert_allclose(out, [[2.0]])


def test_sdpa_float32_stays_float32(rng):
    q, k, v = (
        rng.normal(size=s).astype(np.float32) for s in [(2, 3, 4), (2, 5, 4), (2, 5, 2)]
    )
    out, w = F.scaled_dot_product_attention(q, k, v, return_weights=True)
    assert out.dtype == np.float32 and w.dtype == np.float32
    blocked = F.scaled_dot_product_attention(q, k, v, valid_lens=[2, 5], block_size=2)
    assert blocked.dtype == np.float32
    ref = F.scaled_dot_product_attention(
        *(a.astype(np.float64) for a in (q, k, v)), valid_lens=[2, 5]
    )
    np.testing.assert_allclose(blocked, ref, rtol=1e-5, atol=1e-6)
    assert F.scaled_dot_product_attention(q, k, v.astype(float)).dtype == np.float64


def test_sdpa_no_keys_gives_zeros():
    out = F.scaled_dot_product_attention(
        np.ones((2, 3)), np.ones((0, 3)), np.ones((0, 4))
    )
    np.testing.assert_array_equal(out, np.zeros((2, 4)))
    out = F.scaled_dot_product_attention(
        np.ones((2, 3)), np.ones((0, 3)), np.ones((0, 4)), block_size=2
    )
    np.testing.assert_array_equal(out, np.zeros((2, 4)))


@pytest.mark.parametrize(
    "shapes, kwargs, error, match",
    [
        (((2, 3), (4, 2), (4, 1)), {}, ValueError, r"query \(2, 3\) and key \(4, 2\)"),
        (((2, 3), (4, 3), (5, 1)), {}, ValueError, r"key \(4, 3\) and value \(5, 1\)"),
        (((3,), (4, 3), (4, 1)), {}, ValueError, "at least 2 dimensions"),
        (((2, 2, 3), (3, 4, 3), (3, 4, 1)), {}, ValueError, "batch"),
        (((2, 3), (4, 3), (4, 1)), {"mask": np.ones((3, 4), bool)}, ValueError, "mask"),
        (((2, 3), (4, 3), (4, 1)), {"valid_lens": [5, 1]}, ValueError, "between 0"),
        (((2, 3), (4, 3), (4, 1)), {"block_size": 0}, ValueError, "block_size"),
        (
            ((2, 3), (4, 3), (4, 1)),
            {"block_size": 2, "return_weights": True},
            ValueError,
            "dense",
        ),
        (((2, 3), (4, 3), (4, 1)), {"scale": np.inf}, ValueError, "scale"),
        (((2, 0), (4, 0), (4, 1)), {}, ValueError, "no features"),
    ],
)
def test_sdpa_errors(shapes, kwargs, error, match):
    q, k, v = (np.ones(s) for s in shapes)
    with pytest.raises(error, match=match):
        F.scaled_dot_product_attention(q, k, v, **kwargs)


@pytest.mark.parametrize("name", ["query", "key", "value"])
def test_sdpa_rejects_non_finite_input(name):
    arrays = {
        "query": np.ones((2, 3)),
        "key": np.ones((4, 3)),
        "value": np.ones((4, 1)),
    }
    arrays[name][0, 0] = np.nan
    with pytest.raises(ValueError, match=f"{name} contains NaN"):
        F.scaled_dot_product_attention(**arrays)


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    n_q=st.integers(1, 5),
    n_k=st.integers(1, 9),
    block_size=st.integers(1, 10),
)
def test_sdpa_finite_and_blocked_equals_dense(data, n_q, n_k, block_size):
    finite = st.floats(-1e6, 1e6)
    q = data.draw(hnp.arrays(np.float64, (n_q, 3), elements=finite))
    k = data.draw(hnp.arrays(np.float64, (n_k, 3), elements=finite))
    v = data.draw(hnp.arrays(np.float64, (n_k, 2), elements=st.floats(-1e3, 1e3)))
    mask = data.draw(hnp.arrays(bool, (n_q, n_k)))
    dense = F.scaled_dot_product_attention(q, k, v, mask=mask)
    assert np.all(np.isfinite(dense))
    blocked = F.scaled_dot_product_attention(q, k, v, mask=mask, block_size=block_size)
    assert np.all(np.isfinite(blocked))
    # Scores near 1e12 carry rounding errors near 1e-4, which BLAS makes differently
    # for different block shapes; compare the two paths where scores are well
    # conditioned.
    q_small, k_small = q * 1e-5, k * 1e-5
    dense_small = F.scaled_dot_product_attention(q_small, k_small, v, mask=mask)
    blocked_small = F.scaled_dot_product_attention(
        q_small, k_small, v, mask=mask, block_size=block_size
    )
    np.testing.assert_allclose(blocked_small, dense_small, rtol=1e-12, atol=1e-10)
    # a convex combination of the values (or zero when nothing is kept)
    lo, hi = v.min(0), v.max(0)
    kept = mask.any(1)
    assert np.all(dense[kept] >= lo - 1e-9) and np.all(dense[kept] <= hi + 1e-9)
    assert np.all(dense[~kept] == 0)


# -- additive attention ----------------------------------------------------------------


def test_additive_attention_matches_loop(rng):
    q, k, v = (
        rng.normal(size=(2, 3, 4)),
        rng.normal(size=(2, 5, 6)),
        rng.normal(size=(2, 5, 2)),
    )
    W_q, W_k, w_v = rng.normal(size=(4, 7)), rng.normal(size=(6, 7)), rng.normal(size=7)
    lens = np.array([5, 2])
    out, w = F.additive_attention(
        q, k, v, W_q, W_k, w_v, valid_lens=lens, return_weights=True
    )
    for b in range(2):
        scores = np.zeros((3, 5))
        for i in range(3):
            for j in range(5):
                for h in range(7):
                    hidden = sum(q[b, i, c] * W_q[c, h] for c in range(4)) + sum(
                        k[b, j, c] * W_k[c, h] for c in range(6)
                    )
                    scores[i, j] += w_v[h] * math.tanh(hidden)
        keep = np.arange(5)[None, :].repeat(3, 0) < lens[b]
        ref_out, ref_w = ref_attention_2d(scores, v[b], keep)
        np.testing.assert_allclose(w[b], ref_w, atol=1e-14)
        np.testing.assert_allclose(out[b], ref_out, atol=1e-13)


def test_additive_attention_chunks_queries_within_working_memory(rng):
    import sklearn

    q, k, v = (
        rng.normal(size=(40, 3)),
        rng.normal(size=(30, 3)),
        rng.normal(size=(30, 2)),
    )
    W_q, W_k, w_v = rng.normal(size=(3, 5)), rng.normal(size=(3, 5)), rng.normal(size=5)
    whole = F.additive_attention(q, k, v, W_q, W_k, w_v)
    with sklearn.config_context(working_memory=0.001):  # ~1 KiB: a few rows per chunk
        chunked = F.additive_attention(q, k, v, W_q, W_k, w_v)
    np.testing.assert_allclose(chunked, whole, rtol=1e-14)
    f32 = F.additive_attention(
        *(a.astype(np.float32) for a in (q, k, v, W_q, W_k, w_v))
    )
    assert f32.dtype == np.float32


@pytest.mark.parametrize(
    "W_q, W_k, w_v, match",
    [
        (np.ones((4, 5)), np.ones((3, 5)), np.ones(5), r"W_q must have shape \(3, 5\)"),
        (np.ones((3, 5)), np.ones((3, 4)), np.ones(5), r"W_k must have shape \(3, 5\)"),
        (np.ones((3, 5)), np.ones((3, 5)), np.ones((5, 1)), "w_v must have shape"),
    ],
)
def test_additive_attention_shape_errors(W_q, W_k, w_v, match):
    with pytest.raises(ValueError, match=match):
        F.additive_attention(
            np.ones((2, 3)), np.ones((4, 3)), np.ones((4, 1)), W_q, W_k, w_v
        )


# -- kernel attention ------------------------------------------------------------------


def test_kernel_attention_is_the_nadaraya_watson_formula(rng):
    x, y = rng.uniform(0, 5, size=50), rng.normal(size=50)
    queries = np.linspace(0, 5, 7)
    got = F.kernel_attention(queries, x, y, bandwidth=0.4)
    for i, q in enumerate(queries):
        kw = [math.exp(-0.5 * ((q - xi) / 0.4) ** 2) for xi in x]
        expected = sum(w * yi for w, yi in zip(kw, y, strict=True)) / sum(kw)
        assert got[i] == pytest.approx(expected, rel=1e-12)
    assert got.shape == (7,)


def test_kernel_attention_per_feature_bandwidth_and_weights(rng):
    X, V = rng.normal(size=(20, 2)), rng.normal(size=(20, 3))
    Q = rng.normal(size=(4, 2))
    h = np.array([0.5, 2.0])
    out, w = F.kernel_attention(
        Q, X, V, kernel="epanechnikov", bandwidth=h, return_weights=True
    )
    for i in range(4):
        u2 = (((Q[i] - X) / h) ** 2).sum(1)
        kw = np.where(u2 < 1, 1 - u2, 0.0)
        if kw.sum() == 0:  # no key in support: the nearest key's value
            nearest = np.argmin(u2)
            np.testing.assert_allclose(out[i], V[nearest])
            continue
        np.testing.assert_allclose(w[i], kw / kw.sum(), atol=1e-12)
        np.testing.assert_allclose(out[i], kw @ V / kw.sum(), atol=1e-12)
    assert out.shape == (4, 3)


def test_kernel_attention_far_query_and_dtype():
    x = np.array([0.0, 1.0, 2.0])
    out = F.kernel_attention([1e6], x, x**2, bandwidth=1e-3)
    np.testing.assert_allclose(out, [4.0])
    f32 = F.kernel_attention(
        x.astype(np.float32), x.astype(np.float32), x.astype(np.float32)
    )
    assert f32.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kernel": "boxcar"}, "kernel must be one of"),
        ({"bandwidth": 0.0}, "positive"),
        ({"bandwidth": [1.0, 2.0, 3.0]}, "one entry per feature"),
        ({"key": np.ones((3, 3))}, "same number of features"),
        ({"value": np.ones(4)}, "same number of rows"),
        ({"key": np.ones((0, 2)), "value": np.ones(0)}, "at least one key"),
        ({"query": np.ones((2, 2, 2))}, "one- or two-dimensional"),
    ],
)
def test_kernel_attention_errors(kwargs, match):
    args = {"query": np.ones((2, 2)), "key": np.ones((3, 2)), "value": np.ones(3)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        F.kernel_attention(**args)


# -- multi-head attention --------------------------------------------------------------


def ref_multi_head(q, k, v, W_q, W_k, W_v, W_o, heads, keep, biases):
    """Loop over batch entries and heads; each head a plain-loop attention."""
    b_q, b_k, b_v, b_o = biases
    d_model = W_q.shape[1]
    d_head = d_model // heads
    outs, weights = [], []
    for b in range(q.shape[0]):
        Q, K, V = q[b] @ W_q + b_q, k[b] @ W_k + b_k, v[b] @ W_v + b_v
        concat, ws = [], []
        for h in range(heads):
            cols = slice(h * d_head, (h + 1) * d_head)
            out, w = ref_sdpa(
                Q[None, :, cols],
                K[None, :, cols],
                V[None, :, cols],
                keep[b][None],
                1 / math.sqrt(d_head),
            )
            concat.append(out[0])
            ws.append(w[0])
        outs.append(np.concatenate(concat, axis=1) @ W_o + b_o)
        weights.append(ws)
    return np.array(outs), np.array(weights)


@pytest.mark.parametrize("self_attention", [True, False])
@pytest.mark.parametrize("lens_kind", [None, "batch", "query"])
def test_multi_head_attention_matches_loop(rng, self_attention, lens_kind):
    d_model, heads = 8, 2
    q = rng.normal(size=(2, 4, 6))
    k, v = (
        (q, q)
        if self_attention
        else (rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 7)))
    )
    W_q = rng.normal(size=(q.shape[-1], d_model))
    W_k = rng.normal(size=(k.shape[-1], d_model))
    W_v = rng.normal(size=(v.shape[-1], d_model))
    W_o = rng.normal(size=(d_model, 3))
    biases = [rng.normal(size=d_model) for _ in range(3)] + [rng.normal(size=3)]
    n_q, n_k = q.shape[1], k.shape[1]
    keep = np.ones((2, n_q, n_k), bool)
    lens = None
    if lens_kind == "batch":
        lens = np.array([n_k, 2])
        keep = lens_to_keep(lens, n_q, n_k)
    elif lens_kind == "query":
        lens = rng.integers(0, n_k + 1, size=(2, n_q))
        keep = lens_to_keep(lens, n_q, n_k)
    out, w = F.multi_head_attention(
        q,
        k,
        v,
        W_q,
        W_k,
        W_v,
        W_o,
        heads,
        valid_lens=lens,
        return_weights=True,
        b_q=biases[0],
        b_k=biases[1],
        b_v=biases[2],
        b_o=biases[3],
    )
    ref_out, ref_w = ref_multi_head(q, k, v, W_q, W_k, W_v, W_o, heads, keep, biases)
    np.testing.assert_allclose(w, ref_w, atol=1e-13)
    np.testing.assert_allclose(out, ref_out, atol=1e-11)
    assert w.shape == (2, heads, n_q, n_k)


def test_multi_head_attention_mask_shared_by_heads_and_unbatched(rng):
    x = rng.normal(size=(5, 8))
    W = rng.normal(size=(4, 8, 8))
    causal = np.tril(np.ones((5, 5), bool))
    out, w = F.multi_head_attention(
        x, x, x, *W, num_heads=4, mask=causal, return_weights=True
    )
    assert out.shape == (5, 8) and w.shape == (4, 5, 5)
    assert np.all(w[:, ~causal] == 0)
    batched_mask = np.broadcast_to(causal, (3, 5, 5))
    xb = np.broadcast_to(x, (3, 5, 8))
    out_b = F.multi_head_attention(xb, xb, xb, *W, num_heads=4, mask=batched_mask)
    np.testing.assert_allclose(out_b, np.broadcast_to(out, (3, 5, 8)), atol=1e-13)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"num_heads": 3}, "num_heads must be a positive integer dividing d_model=8"),
        ({"num_heads": 0}, "num_heads"),
        ({"W_k": np.ones((5, 8))}, r"W_k must have shape \(6, 8\)"),
        ({"W_o": np.ones((4, 8))}, r"W_o must have shape \(8, any\)"),
        ({"b_q": np.ones(7)}, r"b_q must have shape \(8,\)"),
        ({"mask": np.ones((4, 3), bool)}, "mask"),
        ({"valid_lens": np.ones((2, 2, 2), int)}, "valid_lens"),
    ],
)
def test_multi_head_attention_errors(change, match):
    x = np.ones((2, 4, 6))
    args = {
        "query": x,
        "key": x,
        "value": x,
        "W_q": np.ones((6, 8)),
        "W_k": np.ones((6, 8)),
        "W_v": np.ones((6, 8)),
        "W_o": np.ones((8, 8)),
        "num_heads": 2,
    }
    args.update(change)
    with pytest.raises(ValueError, match=match):
        F.multi_head_attention(**args)


# -- positional encoding and CNN blocks ------------------------------------------------


@pytest.mark.parametrize("d_model", [1, 6, 7])
def test_sinusoidal_positional_encoding_formula(d_model):
    got = F.sinusoidal_positional_encoding(9, d_model, base=100.0)
    assert got.shape == (9, d_model)
    for p in range(9):
        for j in range(d_model):
            angle = p / 100.0 ** ((j - j % 2) / d_model)
            expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert got[p, j] == pytest.approx(expected, abs=1e-14)


def test_sinusoidal_positional_encoding_errors():
    with pytest.raises(ValueError, match="n_positions"):
        F.sinusoidal_positional_encoding(-1, 4)
    with pytest.raises(ValueError, match="d_model"):
        F.sinusoidal_positional_encoding(3, 2.5)
    with pytest.raises(ValueError, match="base"):
        F.sinusoidal_positional_encoding(3, 4, base=0)


def sigmoid(t):
    return 1 / (1 + math.exp(-t))


def test_squeeze_excitation_matches_loop(rng):
    N, C, H, W, r = 2, 4, 3, 5, 2
    x = rng.normal(size=(N, C, H, W))
    W1, b1 = rng.normal(size=(C, r)), rng.normal(size=r)
    W2, b2 = rng.normal(size=(r, C)), rng.normal(size=C)
    y, gate = F.squeeze_excitation(x, W1, b1, W2, b2, return_gate=True)
    for n in range(N):
        z = [
            sum(x[n, c, i, j] for i in range(H) for j in range(W)) / (H * W)
            for c in range(C)
        ]
        hidden = [
            max(0.0, sum(z[c] * W1[c, m] for c in range(C)) + b1[m]) for m in range(r)
        ]
        for c in range(C):
            g = sigmoid(sum(hidden[m] * W2[m, c] for m in range(r)) + b2[c])
            assert gate[n, c] == pytest.approx(g, rel=1e-12)
            np.testing.assert_allclose(y[n, c], g * x[n, c], rtol=1e-12)
    f32 = F.squeeze_excitation(*(a.astype(np.float32) for a in (x, W1, b1, W2, b2)))
    assert f32.dtype == np.float32
    with pytest.raises(ValueError, match=r"W2 must have shape \(2, 4\)"):
        F.squeeze_excitation(x, W1, b1, W2.T, b2)
    with pytest.raises(ValueError, match="x must have shape"):
        F.squeeze_excitation(x[0], W1, b1, W2, b2)


@pytest.mark.parametrize("kernel_size", [(7, 7), (3, 5)])
def test_spatial_attention_matches_loop(rng, kernel_size):
    N, C, H, W = 2, 3, 6, 5
    kh, kw = kernel_size
    x = rng.normal(size=(N, C, H, W))
    weight, bias = rng.normal(size=(1, 2, kh, kw)), 0.3
    y, gate = F.spatial_attention(x, weight, bias, return_gate=True)
    for n in range(N):
        maps = [x[n].mean(0), x[n].max(0)]
        for i in range(H):
            for j in range(W):
                acc = bias
                for c in range(2):
                    for a in range(kh):
                        for b in range(kw):
                            ii, jj = i + a - kh // 2, j + b - kw // 2
                            if 0 <= ii < H and 0 <= jj < W:
                                acc += weight[0, c, a, b] * maps[c][ii, jj]
                assert gate[n, 0, i, j] == pytest.approx(sigmoid(acc), rel=1e-12)
    np.testing.assert_allclose(y, x * gate, rtol=1e-14)
    y3 = F.spatial_attention(x, weight[0], np.array([bias]))
    np.testing.assert_array_equal(y3, y)


def test_spatial_attention_errors():
    x = np.ones((1, 2, 4, 4))
    with pytest.raises(ValueError, match="odd"):
        F.spatial_attention(x, np.ones((1, 2, 4, 4)))
    with pytest.raises(ValueError, match=r"conv_weight must have shape"):
        F.spatial_attention(x, np.ones((3, 7, 7)))
    with pytest.raises(ValueError, match="conv_bias"):
        F.spatial_attention(x, np.ones((2, 3, 3)), np.ones(2))
    with pytest.raises(ValueError, match="x contains NaN"):
        F.spatial_attention(np.full((1, 1, 2, 2), np.nan), np.ones((2, 3, 3)))


# -- against PyTorch, when it happens to be installed ----------------------------------


def test_against_torch_scaled_dot_product_attention(rng):
    torch = pytest.importorskip("torch")
    q, k, v = (
        rng.normal(size=(2, 3, 4, 8)),
        rng.normal(size=(2, 3, 6, 8)),
        rng.normal(size=(2, 3, 6, 5)),
    )
    mask = rng.random((4, 6)) < 0.7
    mask[:, 0] = True  # torch gives NaN for fully masked rows
    expected = torch.nn.functional.scaled_dot_product_attention(
        *(torch.from_numpy(a) for a in (q, k, v)), attn_mask=torch.from_numpy(mask)
    ).numpy()
    got = F.scaled_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_against_torch_multihead_attention(rng):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    d_model, heads = 8, 2
    module = torch.nn.MultiheadAttention(d_model, heads, batch_first=True).double()
    x = torch.from_numpy(rng.normal(size=(3, 5, d_model)))
    causal = np.tril(np.ones((5, 5), bool))
    with torch.no_grad():
        expected, expected_w = module(
            x, x, x, attn_mask=torch.from_numpy(~causal), average_attn_weights=False
        )
    W = module.in_proj_weight.detach().numpy()
    b = module.in_proj_bias.detach().numpy()
    got, w = F.multi_head_attention(
        x.numpy(),
        x.numpy(),
        x.numpy(),
        W[:d_model].T,
        W[d_model : 2 * d_model].T,
        W[2 * d_model :].T,
        module.out_proj.weight.detach().numpy().T,
        heads,
        mask=causal,
        return_weights=True,
        b_q=b[:d_model],
        b_k=b[d_model : 2 * d_model],
        b_v=b[2 * d_model :],
        b_o=module.out_proj.bias.detach().numpy(),
    )
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-12)
    np.testing.assert_allclose(w, expected_w.numpy(), atol=1e-12)


# -- documentation ---------------------------------------------------------------------


@pytest.mark.parametrize("name", F.__all__)
def test_functions_documented_with_formula_and_example(name):
    func = getattr(F, name)
    doc = FunctionDoc(func)
    documented = [
        part.strip()
        for p in doc["Parameters"]
        for part in p.name.split(" : ")[0].split(",")
    ]
    assert documented == list(inspect.signature(func).parameters), name
    assert doc["Returns"], name
    assert ">>>" in func.__doc__, name
    assert ".. math::" in func.__doc__, name


def test_float32_stays_float32_everywhere(rng):
    f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)  # noqa: E731
    x = f32(2, 5, 8)
    out, w = F.multi_head_attention(
        x, x, x, f32(8, 8), f32(8, 8), f32(8, 8), f32(8, 4), 2, return_weights=True
    )
    assert out.dtype == np.float32 and w.dtype == np.float32
    y, gate = F.spatial_attention(f32(1, 3, 6, 6), f32(1, 2, 3, 3), return_gate=True)
    assert y.dtype == np.float32 and gate.dtype == np.float32
    out, w = F.additive_attention(
        f32(3, 2),
        f32(4, 2),
        f32(4, 1),
        f32(2, 3),
        f32(2, 3),
        f32(3),
        return_weights=True,
    )
    assert out.dtype == np.float32 and w.dtype == np.float32
