"""Attention primitives of the literature as plain NumPy functions.

Every function here is a forward pass with given weights: no state, no learning.
They share the engine's numerically stable softmax (the row maximum is subtracted
before ``exp``), so huge scores never overflow and a query whose keys are all masked
gets all-zero weights (and a zero output), never NaN and never a uniform
distribution over masked keys.

Conventions
-----------
- Arrays are batched over their leading dimensions, which broadcast against each
  other: ``query`` is ``(..., n_queries, d)``, ``key`` is ``(..., n_keys, d)`` and
  ``value`` is ``(..., n_keys, d_v)``.
- ``mask`` is boolean and broadcasts to the scores ``(..., n_queries, n_keys)``;
  ``True`` marks a key that takes part (as in
  ``torch.nn.functional.scaled_dot_product_attention``).
- ``valid_lens`` (as in Dive into Deep Learning) keeps the first ``valid_lens``
  keys: of shape ``(...)`` it holds one length per batch entry, of shape
  ``(..., n_queries)`` one per query. Given both, a key takes part only where both
  allow it.
- Weight matrices act on row vectors, ``x @ W``: a projection from ``d_in`` to
  ``d_out`` features is an array of shape ``(d_in, d_out)`` (PyTorch's
  ``nn.Linear.weight`` is its transpose).
- float32 input stays float32; integer input is computed in float64; mixed
  precision follows :func:`numpy.result_type`.
"""

# SPDX-License-Identifier: BSD-3-Clause

import math
import numbers

import numpy as np
from scipy.special import expit

from skattn._engine import attention_pool, chunk_rows
from skattn._engine import softmax as _stable_softmax
from skattn._kernels import KERNELS, get_kernel

__all__ = [
    "additive_attention",
    "kernel_attention",
    "masked_softmax",
    "multi_head_attention",
    "scaled_dot_product_attention",
    "sinusoidal_positional_encoding",
    "spatial_attention",
    "squeeze_excitation",
]


# -- validation ------------------------------------------------------------------------


def _float_array(x, name, finite=True):
    """``x`` as a floating point array (float32 kept, everything else float64)."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers; got an array of dtype {x.dtype}."
        )
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    if finite and not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return x


# Projections (additive attention, squeeze-and-excitation) beyond this are clipped:
# a quarter of the float64 range, so that adding a bias cannot overflow.
_PROJECTION_LIMIT = np.finfo(np.float64).max / 4


def _split_rows(A):
    """``A = ldexp(M, e)`` with ``e`` one power of two per row (last axis): the
    mantissas ``M`` are at most 1 in magnitude."""
    e = np.frexp(np.max(np.abs(A), axis=-1, keepdims=True, initial=0.0))[1]
    return np.ldexp(A, -e), e


def _may_overflow(*factors, length=1):
    """Whether a sum of ``length`` products of numbers as large as ``factors``
    could leave the float64 range (then the products are taken by exponents)."""
    exponent = sum(int(np.frexp(float(f))[1]) for f in factors)
    return exponent + math.log2(max(length, 1)) > 1000


def _scaled_products(A, B_t, factor=1.0):
    """``factor * A @ B_t`` for any finite inputs, never NaN: each row of ``A`` and
    column of ``B_t`` is split into mantissas and a power of two, the mantissas
    are multiplied (at most the inner length in magnitude), and the exponents are
    added back by ``ldexp``, so a product beyond the range is ``+-inf`` and one
    below it 0, with no ``inf - inf`` on the way."""
    Ma, ea = _split_rows(A)
    Mb, eb = _split_rows(np.swapaxes(B_t, -1, -2))
    mantissa, exponent = np.frexp(factor)
    # einsum, not BLAS: every entry is summed the same way whatever the batch, so
    # that no query depends on another when products cancel (BLAS kernels differ
    # by shape, with or without fused multiply-adds)
    products = np.einsum("...qf,...kf->...qk", Ma * mantissa, Mb, optimize=False)
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(products, ea + np.swapaxes(eb, -1, -2) + int(exponent))


def _attention_inputs(query, key, value, same_features):
    """Validated (..., n, d) query, key and value arrays and their batch shape.

    ``same_features``: query and key must share their last dimension (dot-product
    scores); otherwise each has its own (projected scores).
    """
    q_dim, k_dim = ("d", "d") if same_features else ("d_q", "d_k")
    arrays = {}
    for name, x, layout in (
        ("query", query, f"(..., n_queries, {q_dim})"),
        ("key", key, f"(..., n_keys, {k_dim})"),
        ("value", value, "(..., n_keys, d_v)"),
    ):
        x = _float_array(x, name)
        if x.ndim < 2:
            raise ValueError(
                f"{name} must have at least 2 dimensions {layout}; got shape {x.shape}."
            )
        arrays[name] = x
    query, key, value = arrays.values()
    if same_features and query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"query and key must have the same last dimension; got query "
            f"{query.shape} and key {key.shape}."
        )
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"key and value must have the same number of keys (axis -2); got key "
            f"{key.shape} and value {value.shape}."
        )
    return query, key, value, _batch_shape(**arrays)


def _batch_shape(**arrays):
    """Broadcast shape of the leading (batch) dimensions of (..., n, d) arrays."""
    try:
        return np.broadcast_shapes(*(a.shape[:-2] for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{name} {a.shape}" for name, a in arrays.items())
        raise ValueError(
            f"The leading (batch) dimensions do not broadcast: {shapes}."
        ) from None


def _check_weight(W, name, shape):
    """``W`` as a finite float array of the expected shape (None = any size)."""
    W = _float_array(W, name)
    sizes = ["any" if s is None else str(s) for s in shape]
    expected = f"({sizes[0]},)" if len(sizes) == 1 else "(" + ", ".join(sizes) + ")"
    if W.ndim != len(shape) or any(
        s is not None and s != t for s, t in zip(shape, W.shape, strict=True)
    ):
        raise ValueError(f"{name} must have shape {expected}; got shape {W.shape}.")
    return W


class _Keep:
    """Which keys take part, from a boolean mask and/or valid lengths.

    Built for scores of shape ``score_shape`` (keys on the last axis); ``block``
    gives the boolean keep-array for a slice of keys without materialising the
    whole (n_queries, n_keys) matrix.
    """

    def __init__(self, score_shape, mask, valid_lens):
        self.score_shape = tuple(score_shape)
        self.mask = None
        self.lens = None
        n_keys = self.score_shape[-1]
        if mask is not None:
            mask = np.asarray(mask)
            if mask.dtype != bool:
                raise TypeError(
                    "mask must be a boolean array (True marks a key that takes part); "
                    f"got dtype {mask.dtype}."
                )
            try:
                shape = np.broadcast_shapes(mask.shape, self.score_shape)
            except ValueError:
                shape = None
            if shape != self.score_shape:
                raise ValueError(
                    f"mask of shape {mask.shape} does not broadcast to the scores' "
                    f"shape {self.score_shape}."
                )
            self.mask = mask
        if valid_lens is not None:
            lens = np.asarray(valid_lens)
            if lens.dtype.kind not in "iuf" or (
                lens.dtype.kind == "f"
                and not (np.isfinite(lens).all() and np.all(lens == np.round(lens)))
            ):
                raise TypeError(
                    f"valid_lens must hold whole numbers; got {valid_lens!r}."
                )
            lens = lens.astype(np.int64)
            n_lead = len(self.score_shape) - 1  # batch dimensions + queries
            if lens.ndim == n_lead - 1:  # one length per batch entry
                lens = lens[..., None]
            elif lens.ndim != n_lead:
                raise ValueError(
                    f"valid_lens of shape {np.shape(valid_lens)} fits neither one "
                    f"length per batch entry (shape {self.score_shape[:-2]}) nor one "
                    f"per query (shape {self.score_shape[:-1]})."
                )
            try:
                shape = np.broadcast_shapes(lens.shape, self.score_shape[:-1])
            except ValueError:
                shape = None
            if shape != self.score_shape[:-1]:
                raise ValueError(
                    f"valid_lens of shape {np.shape(valid_lens)} does not broadcast "
                    f"to the batch and query dimensions {self.score_shape[:-1]}."
                )
            if lens.size and (lens.min() < 0 or lens.max() > n_keys):
                raise ValueError(
                    f"valid_lens must lie between 0 and the number of keys "
                    f"({n_keys}); got values from {lens.min()} to {lens.max()}."
                )
            self.lens = lens[..., None]

    @property
    def active(self):
        return self.mask is not None or self.lens is not None

    def block(self, start, stop):
        """Boolean keep-array for keys ``start:stop``, broadcastable to the scores."""
        keep = None
        if self.mask is not None:
            mask = self.mask
            if mask.shape[-1] != 1:
                mask = mask[..., start:stop]
            keep = mask
        if self.lens is not None:
            in_len = np.arange(start, stop) < self.lens
            keep = in_len if keep is None else keep & in_len
        return keep


def _softmax_last(logits):
    """Softmax along the last axis of ``logits``, in place.

    NaN is rejected; a row holding ``+inf`` scores puts equal weight on those
    entries (the limit of the softmax as they grow) and none elsewhere.
    """
    if logits.shape[-1] == 0:
        return logits
    row_max = np.max(logits, axis=-1, keepdims=True)
    if np.isnan(row_max).any():
        raise ValueError("The scores contain NaN at a position that takes part.")
    hard = np.isposinf(row_max)
    if hard.any():
        limit = np.where(np.isposinf(logits), 0.0, -np.inf).astype(logits.dtype)
        np.copyto(logits, limit, where=hard)
        row_max[hard] = 0.0
    with np.errstate(over="ignore"):  # s - max may overflow to -inf: weight 0
        return _stable_softmax(logits, axis=-1, out=logits, row_max=row_max)


# -- softmax ---------------------------------------------------------------------------


def masked_softmax(scores, mask=None, valid_lens=None, axis=-1):
    r"""Softmax of ``scores`` over the keys that take part.

    .. math::

        p_j = \frac{m_j \exp(s_j - \max_{k: m_k} s_k)}{\sum_k m_k \exp(s_k -
        \max_{k: m_k} s_k)}

    with ``m_j`` true where key ``j`` takes part. Masked keys get weight exactly 0;
    a slice with no key taking part gets all-zero weights (not NaN, not uniform).
    Scores of ``-inf`` act as masked; scores of ``+inf`` share the slice's weight
    equally (the limit of the softmax as they grow).

    Parameters
    ----------
    scores : array-like
        Real scores, keys along ``axis``. NaN is allowed only where masked.
    mask : array-like of bool, default=None
        Broadcasts to ``scores``; True marks a key that takes part.
    valid_lens : array-like of int, default=None
        Keep the first ``valid_lens`` keys along ``axis``: one length per batch entry
        (the shape of ``scores`` without its last two axes, after ``axis`` is moved
        last) or one per query (without the last axis).
    axis : int, default=-1
        The keys' axis: the weights sum to 1 along it.

    Returns
    -------
    weights : ndarray of the shape of ``scores``
        Non-negative; summing to 1 along ``axis``, or to 0 where nothing takes part.

    Examples
    --------
    >>> import numpy as np
    >>> from skattn.functional import masked_softmax
    >>> masked_softmax(np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]), valid_lens=[2, 0])
    array([[0.26894142, 0.73105858, 0.        ],
           [0.        , 0.        , 0.        ]])
    """
    scores = _float_array(scores, "scores", finite=False)
    if scores.ndim == 0:
        raise ValueError("scores must have at least one dimension (the keys' axis).")
    axis = _normalize_axis(axis, scores.ndim)
    if mask is not None:
        mask = np.asarray(mask)
        try:
            mask = np.broadcast_to(mask, scores.shape)
        except ValueError:
            raise ValueError(
                f"mask of shape {mask.shape} does not broadcast to the scores' shape "
                f"{scores.shape}."
            ) from None
        mask = np.moveaxis(mask, axis, -1)
    logits = np.moveaxis(scores, axis, -1)
    keep = _Keep(logits.shape, mask, valid_lens)
    if keep.active:
        block = keep.block(0, logits.shape[-1])
        logits = np.where(block, logits, -np.inf).astype(scores.dtype, copy=False)
    else:
        logits = logits.copy()
    return np.moveaxis(_softmax_last(logits), -1, axis)


def _normalize_axis(axis, ndim):
    if not isinstance(axis, numbers.Integral) or not -ndim <= axis < ndim:
        raise ValueError(f"axis={axis!r} is not an axis of a {ndim}-d array.")
    return int(axis) % ndim


# -- dot-product attention -------------------------------------------------------------


def scaled_dot_product_attention(
    query,
    key,
    value,
    mask=None,
    valid_lens=None,
    scale=None,
    return_weights=False,
    block_size=None,
):
    r"""Scaled dot-product attention, batched over leading dimensions.

    .. math::

        \operatorname{softmax}\left(\frac{Q K^\top}{\sqrt{d}}\right) V

    Parameters
    ----------
    query : array-like of shape (..., n_queries, d)
        The queries ``Q``.
    key : array-like of shape (..., n_keys, d)
        The keys ``K``.
    value : array-like of shape (..., n_keys, d_v)
        The values ``V``. Leading dimensions of the three broadcast against each
        other.
    mask : array-like of bool, default=None
        Broadcasts to (..., n_queries, n_keys); True marks a key that takes part.
    valid_lens : array-like of int, default=None
        Keep the first ``valid_lens`` keys: shape (...) for one length per batch
        entry, (..., n_queries) for one per query.
    scale : float, default=None
        Factor on the scores; None means ``1 / sqrt(d)``.
    return_weights : bool, default=False
        Also return the attention weights. Not available with ``block_size``.
    block_size : int, default=None
        Process the keys in blocks of this many with an online softmax (running
        maximum and running sum), so that memory stays O(n_queries * block_size)
        per batch entry instead of O(n_queries * n_keys). The result equals the
        dense one up to rounding. None computes the scores at once.

    Returns
    -------
    output : ndarray of shape (..., n_queries, d_v)
        A query whose keys are all masked gets zeros.
    weights : ndarray of shape (..., n_queries, n_keys)
        Only if ``return_weights``.

    Examples
    --------
    >>> import numpy as np
    >>> from skattn.functional import scaled_dot_product_attention
    >>> rng = np.random.default_rng(0)
    >>> q, k, v = rng.normal(size=(2, 4, 8)), rng.normal(size=(2, 6, 8)), np.eye(6)
    >>> out = scaled_dot_product_attention(q, k, v, valid_lens=[6, 3])
    >>> out.shape, bool(np.allclose(out.sum(-1), 1)), bool(np.all(out[1, :, 3:] == 0))
    ((2, 4, 6), True, True)
    """
    query, key, value, batch = _attention_inputs(query, key, value, True)
    dtype = np.result_type(query, key, value)
    if scale is None:
        if query.shape[-1] == 0:
            raise ValueError(
                "query and key have no features; give scale explicitly if intended."
            )
        scale = 1.0 / math.sqrt(query.shape[-1])
    elif not (isinstance(scale, numbers.Real) and math.isfinite(scale)):
        raise ValueError(f"scale must be a finite real number; got {scale!r}.")
    n_queries, n_keys = query.shape[-2], key.shape[-2]
    keep = _Keep(batch + (n_queries, n_keys), mask, valid_lens)
    # Scores that could leave the float range are taken by exponents: finite
    # inputs then never give NaN (no inf - inf), and no query depends on another.
    by_exponents = _may_overflow(
        np.max(np.abs(query), initial=0.0),
        scale,
        np.max(np.abs(key), initial=0.0),
        length=query.shape[-1],
    )
    if by_exponents:
        query = np.broadcast_to(
            query.astype(dtype, copy=False), batch + query.shape[-2:]
        )
    else:
        # the scores get every batch dimension, also those that only value has
        query = np.broadcast_to(
            (query * scale).astype(dtype, copy=False), batch + query.shape[-2:]
        )
    key = key.astype(dtype, copy=False)
    value = value.astype(dtype, copy=False)

    def products(key_t):
        if by_exponents:
            return _scaled_products(query, key_t, scale).astype(dtype, copy=False)
        with np.errstate(over="ignore"):  # scores beyond the range are +-inf
            return np.matmul(query, key_t)

    if block_size is None:
        scores = products(np.swapaxes(key, -1, -2))
        if keep.active:
            np.copyto(scores, -np.inf, where=~keep.block(0, n_keys))
        weights = _softmax_last(scores)
        output = np.matmul(weights, value)
        return (output, weights) if return_weights else output
    if return_weights:
        raise ValueError(
            "return_weights=True needs the dense weight matrix; use block_size=None."
        )
    if not isinstance(block_size, numbers.Integral) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer; got {block_size!r}.")
    return _blocked_attention(products, query, key, value, keep, batch, int(block_size))


def _blocked_attention(products, query, key, value, keep, batch, block_size):
    """Attention over key blocks with a running maximum and running sum;
    ``products(key_t_block)`` gives a block's scores."""
    n_queries, n_keys = query.shape[-2], key.shape[-2]
    dtype = query.dtype
    running_max = np.full(batch + (n_queries, 1), -np.inf, dtype=dtype)
    total = np.zeros(batch + (n_queries, 1), dtype=dtype)
    acc = np.zeros(batch + (n_queries, value.shape[-1]), dtype=dtype)
    key_t = np.swapaxes(key, -1, -2)
    for start in range(0, n_keys, block_size):
        stop = min(start + block_size, n_keys)
        s = products(key_t[..., start:stop])
        if keep.active:
            np.copyto(s, -np.inf, where=~keep.block(start, stop))
        block_max = np.max(s, axis=-1, keepdims=True)
        if np.isnan(block_max).any():
            raise ValueError("The scores contain NaN at a position that takes part.")
        new_max = np.maximum(running_max, block_max)
        shift = np.where(np.isfinite(new_max), new_max, 0.0).astype(dtype)
        hard = np.isposinf(new_max)
        if hard.any():
            # rows with +inf scores: the limit puts equal weight on the +inf keys
            with np.errstate(over="ignore", invalid="ignore"):
                p = np.where(hard, np.isposinf(s), np.exp(s - shift)).astype(dtype)
                correction = np.where(
                    hard, np.isposinf(running_max), np.exp(running_max - shift)
                ).astype(dtype)
        else:
            with np.errstate(over="ignore"):  # s - max may overflow to -inf
                p = np.exp(np.subtract(s, shift, out=s), out=s)
                correction = np.exp(running_max - shift)
        total *= correction
        total += np.sum(p, axis=-1, keepdims=True)
        acc *= correction
        acc += np.matmul(p, value[..., start:stop, :])
        running_max = new_max
    total[total == 0] = 1.0
    return acc / total


# -- additive attention ----------------------------------------------------------------


def additive_attention(
    query,
    key,
    value,
    W_q,
    W_k,
    w_v,
    mask=None,
    valid_lens=None,
    return_weights=False,
):
    r"""Additive (Bahdanau) attention, batched over leading dimensions.

    .. math::

        s(q, k) = w_v^\top \tanh(q W_q + k W_k), \qquad
        \text{output} = \operatorname{softmax}(s) V

    The (n_queries, n_keys, n_hidden) features are formed a chunk of queries at a
    time, within scikit-learn's ``working_memory``.

    Parameters
    ----------
    query : array-like of shape (..., n_queries, d_q)
        The queries.
    key : array-like of shape (..., n_keys, d_k)
        The keys.
    value : array-like of shape (..., n_keys, d_v)
        The values. Leading dimensions of the three broadcast against each other.
    W_q : array-like of shape (d_q, n_hidden)
        Projection of the queries into the hidden layer.
    W_k : array-like of shape (d_k, n_hidden)
        Projection of the keys into the hidden layer.
    w_v : array-like of shape (n_hidden,)
        Weights of the hidden units in the score.
    mask : array-like of bool, default=None
        Broadcasts to (..., n_queries, n_keys); True marks a key that takes part.
    valid_lens : array-like of int, default=None
        Keep the first ``valid_lens`` keys: shape (...) for one length per batch
        entry, (..., n_queries) for one per query.
    return_weights : bool, default=False
        Also return the attention weights.

    Returns
    -------
    output : ndarray of shape (..., n_queries, d_v)
        The attention-weighted values; a query whose keys are all masked gets
        zeros.
    weights : ndarray of shape (..., n_queries, n_keys)
        Only if ``return_weights``.

    Examples
    --------
    >>> import numpy as np
    >>> from skattn.functional import additive_attention
    >>> rng = np.random.default_rng(0)
    >>> q, k, v = rng.normal(size=(2, 1, 20)), rng.normal(size=(2, 10, 2)), np.eye(10)
    >>> W_q, W_k, w_v = rng.normal(size=(20, 8)), rng.normal(size=(2, 8)), np.ones(8)
    >>> out, w = additive_attention(
    ...     q, k, v, W_q, W_k, w_v, valid_lens=[2, 6], return_weights=True
    ... )
    >>> out.shape, int((w[0, 0] > 0).sum()), int((w[1, 0] > 0).sum())
    ((2, 1, 10), 2, 6)
    """
    query, key, value, batch = _attention_inputs(query, key, value, False)
    w_v = _float_array(w_v, "w_v")
    if w_v.ndim != 1:
        raise ValueError(f"w_v must have shape (n_hidden,); got shape {w_v.shape}.")
    n_hidden = w_v.shape[0]
    W_q = _check_weight(W_q, "W_q", (query.shape[-1], n_hidden))
    W_k = _check_weight(W_k, "W_k", (key.shape[-1], n_hidden))
    dtype = np.result_type(query, key, value, W_q, W_k, w_v)
    n_queries, n_keys = query.shape[-2], key.shape[-2]
    keep = _Keep(batch + (n_queries, n_keys), mask, valid_lens)
    # Projections that could leave the float range are clipped to it: each
    # feature is then a tanh of +-inf or of a finite sum, never of inf - inf (a
    # projection that large saturates tanh, whichever the other's sign).
    fq = _projection(query, W_q)
    fq = np.broadcast_to(fq.astype(dtype, copy=False), batch + (n_queries, n_hidden))
    fk = _projection(key, W_k).astype(dtype, copy=False)[..., None, :, :]
    w_v = w_v.astype(dtype, copy=False)
    scores = np.empty(batch + (n_queries, n_keys), dtype=dtype)
    # a query row's features: (batch, n_keys, n_hidden), then their tanh
    rows = chunk_rows(math.prod(batch) * n_keys * n_hidden, dtype.itemsize)
    for start in range(0, n_queries, rows):
        stop = min(start + rows, n_queries)
        with np.errstate(over="ignore"):
            features = np.tanh(fq[..., start:stop, None, :] + fk)
        scores[..., start:stop, :] = np.matmul(features, w_v)
    if keep.active:
        np.copyto(scores, -np.inf, where=~keep.block(0, n_keys))
    weights = _softmax_last(scores)
    output = np.matmul(weights, value.astype(dtype, copy=False))
    return (output, weights) if return_weights else output


def _projection(X, W):
    """``X @ W``, taken by exponents (never NaN) and clipped to
    ``[-_PROJECTION_LIMIT, _PROJECTION_LIMIT]`` when it could overflow."""
    if _may_overflow(
        np.max(np.abs(X), initial=0.0),
        np.max(np.abs(W), initial=0.0),
        length=W.shape[0],
    ):
        return np.clip(_scaled_products(X, W), -_PROJECTION_LIMIT, _PROJECTION_LIMIT)
    return X @ W


# -- kernel attention ------------------------------------------------------------------


def kernel_attention(
    query, key, value, kernel="gaussian", bandwidth=1.0, return_weights=False
):
    r"""Nadaraya–Watson kernel attention pooling.

    .. math::

        f(q) = \sum_i \frac{K(\lVert (q - k_i) / h \rVert)}
        {\sum_j K(\lVert (q - k_j) / h \rVert)} v_i

    the pooling of :class:`~skattn.NadarayaWatsonRegressor`, on the same engine.
    A query with no key inside a compact kernel's support takes the value of its
    nearest key(s).

    Parameters
    ----------
    query : array-like of shape (n_queries, d) or (n_queries,)
        One-dimensional input means one feature.
    key : array-like of shape (n_keys, d) or (n_keys,)
        The keys, in the features of ``query``.
    value : array-like of shape (n_keys, d_v) or (n_keys,)
        The values pooled, one row per key.
    kernel : str, default="gaussian"
        One of the engine's kernels: "gaussian", "exponential", "tophat",
        "epanechnikov", "linear", "cosine".
    bandwidth : float or array-like of shape (d,), default=1.0
        Positive bandwidth, shared or one per feature.
    return_weights : bool, default=False
        Also return the weights, of shape (n_queries, n_keys).

    Returns
    -------
    output : ndarray of shape (n_queries, d_v) or (n_queries,)
        The shape follows that of ``value``.
    weights : ndarray of shape (n_queries, n_keys)
        Only if ``return_weights``.

    Examples
    --------
    >>> import numpy as np
    >>> from skattn.functional import kernel_attention
    >>> x = np.array([0.0, 1.0, 2.0])
    >>> kernel_attention([0.0, 10.0], x, x**2, bandwidth=0.5).round(3)
    array([0.12, 4.  ])
    """
    query = _float_array(query, "query")
    key = _float_array(key, "key")
    value = _float_array(value, "value")
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {sorted(KERNELS)}; got {kernel!r}.")
    queries = query[:, None] if query.ndim == 1 else query
    keys = key[:, None] if key.ndim == 1 else key
    values = value[:, None] if value.ndim == 1 else value
    for name, a in (("query", queries), ("key", keys), ("value", values)):
        if a.ndim != 2:
            raise ValueError(
                f"{name} must be one- or two-dimensional; got shape {a.shape}."
            )
    if queries.shape[1] != keys.shape[1]:
        raise ValueError(
            f"query and key must have the same number of features; got query "
            f"{query.shape} and key {key.shape}."
        )
    if keys.shape[0] != values.shape[0]:
        raise ValueError(
            f"key and value must have the same number of rows; got key {key.shape} "
            f"and value {value.shape}."
        )
    if keys.shape[0] == 0:
        raise ValueError("kernel_attention needs at least one key.")
    bandwidth = _float_array(bandwidth, "bandwidth")
    if bandwidth.ndim > 1 or bandwidth.size not in (1, keys.shape[1]):
        raise ValueError(
            f"bandwidth must be a number or have one entry per feature "
            f"({keys.shape[1]}); got shape {bandwidth.shape}."
        )
    if np.any(bandwidth <= 0):
        raise ValueError(f"bandwidth must be positive; got {bandwidth}.")
    dtype = np.result_type(query, key, value)
    scale = np.broadcast_to(1.0 / bandwidth, (keys.shape[1],))
    result = attention_pool(
        queries.astype(dtype, copy=False),
        keys.astype(dtype, copy=False),
        values.astype(dtype, copy=False),
        kernel=get_kernel(kernel),
        scale=scale,
        return_weights=return_weights,
        dtype=dtype,
    )
    output, weights = result if return_weights else (result, None)
    if value.ndim == 1:
        output = output[:, 0]
    return (output, weights) if return_weights else output


# -- multi-head attention --------------------------------------------------------------


def multi_head_attention(
    query,
    key,
    value,
    W_q,
    W_k,
    W_v,
    W_o,
    num_heads,
    mask=None,
    valid_lens=None,
    return_weights=False,
    b_q=None,
    b_k=None,
    b_v=None,
    b_o=None,
):
    r"""Multi-head attention: self-attention when query, key and value are one array.

    .. math::

        \text{head}_h = \operatorname{softmax}\left(
        \frac{(Q W_q)_h (K W_k)_h^\top}{\sqrt{d_{model} / H}}\right) (V W_v)_h,
        \qquad \text{output} = [\text{head}_1, \dots, \text{head}_H] W_o

    where ``(X W)_h`` is the ``h``-th of ``H`` equal slices of the last axis (head
    ``h`` owns columns ``h * d_head`` to ``(h + 1) * d_head``), the layout of
    ``torch.nn.MultiheadAttention`` and of Dive into Deep Learning. With PyTorch's
    module, ``W_q`` is ``in_proj_weight[:d_model].T`` and ``W_o`` is
    ``out_proj.weight.T``.

    Parameters
    ----------
    query : array-like of shape (..., n_queries, d_q)
        The queries.
    key : array-like of shape (..., n_keys, d_k)
        The keys.
    value : array-like of shape (..., n_keys, d_v)
        The values. Leading dimensions of the three broadcast against each other.
    W_q : array-like of shape (d_q, d_model)
        Input projection of the queries (split into ``num_heads`` heads).
    W_k : array-like of shape (d_k, d_model)
        Input projection of the keys.
    W_v : array-like of shape (d_v, d_model)
        Input projection of the values.
    W_o : array-like of shape (d_model, d_out)
        Output projection of the concatenated heads.
    num_heads : int
        Number of heads; must divide ``d_model``.
    mask : array-like of bool, default=None
        Broadcasts to (..., n_queries, n_keys), shared by the heads; True marks a
        key that takes part.
    valid_lens : array-like of int, default=None
        As in :func:`scaled_dot_product_attention`, shared by the heads.
    return_weights : bool, default=False
        Also return every head's weights.
    b_q, b_k, b_v : array-like of shape (d_model,), default=None
        Biases of the input projections.
    b_o : array-like of shape (d_out,), default=None
        Bias of the output projection.

    Returns
    -------
    output : ndarray of shape (..., n_queries, d_out)
        The heads' outputs, concatenated and projected by ``W_o``.
    weights : ndarray of shape (..., num_heads, n_queries, n_keys)
        Only if ``return_weights`` (PyTorch averages them over heads by default).

    Examples
    --------
    >>> import numpy as np
    >>> from skattn.functional import multi_head_attention
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2, 5, 16))  # two sequences of five tokens
    >>> W_q, W_k, W_v, W_o = rng.normal(size=(4, 16, 16)) / 4
    >>> out, w = multi_head_attention(
    ...     x, x, x, W_q, W_k, W_v, W_o, num_heads=4, return_weights=True
    ... )
    >>> out.shape, w.shape
    ((2, 5, 16), (2, 4, 5, 5))
    """
    query, key, value, batch = _attention_inputs(query, key, value, False)
    W_q = _float_array(W_q, "W_q")
    if W_q.ndim != 2:
        raise ValueError(f"W_q must have shape (d_q, d_model); got shape {W_q.shape}.")
    d_model = W_q.shape[1]
    W_q = _check_weight(W_q, "W_q", (query.shape[-1], d_model))
    W_k = _check_weight(W_k, "W_k", (key.shape[-1], d_model))
    W_v = _check_weight(W_v, "W_v", (value.shape[-1], d_model))
    W_o = _check_weight(W_o, "W_o", (d_model, None))
    if (
        not isinstance(num_heads, numbers.Integral)
        or isinstance(num_heads, bool)
        or num_heads < 1
        or d_model % num_heads
    ):
        raise ValueError(
            f"num_heads must be a positive integer dividing d_model={d_model}; got "
            f"{num_heads!r}."
        )
    biases = {}
    for name, b, size in (
        ("b_q", b_q, d_model),
        ("b_k", b_k, d_model),
        ("b_v", b_v, d_model),
        ("b_o", b_o, W_o.shape[1]),
    ):
        biases[name] = None if b is None else _check_weight(b, name, (size,))
    n_queries, n_keys = query.shape[-2], key.shape[-2]
    # validate mask and valid_lens against the head-free shapes, for clear errors
    _Keep(batch + (n_queries, n_keys), mask, valid_lens)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.ndim >= 2:
            mask = np.expand_dims(mask, -3)  # shared by the heads
    if valid_lens is not None:
        valid_lens = np.asarray(valid_lens)
        if valid_lens.ndim == len(batch):
            valid_lens = valid_lens[..., None]  # one per (batch entry, head)
        else:
            valid_lens = np.expand_dims(valid_lens, -2)  # per query, for every head

    def heads(x, W, b):
        x = np.matmul(x, W)
        if b is not None:
            x = x + b
        x = x.reshape(x.shape[:-1] + (num_heads, d_model // num_heads))
        return np.swapaxes(x, -2, -3)  # (..., heads, n, d_head)

    result = scaled_dot_product_attention(
        heads(query, W_q, biases["b_q"]),
        heads(key, W_k, biases["b_k"]),
        heads(value, W_v, biases["b_v"]),
        mask=mask,
        valid_lens=valid_lens,
        return_weights=return_weights,
    )
    pooled, weights = result if return_weights else (result, None)
    pooled = np.swapaxes(pooled, -2, -3)
    pooled = pooled.reshape(pooled.shape[:-2] + (d_model,))
    output = np.matmul(pooled, W_o)
    if biases["b_o"] is not None:
        output = output + biases["b_o"]
    return (output, weights) if return_weights else output


# -- positional encoding ---------------------------------------------------------------


def sinusoidal_positional_encoding(n_positions, d_model, base=10000.0):
    r"""The sinusoidal positional encoding of "Attention Is All You Need".

    .. math::

        P_{p, 2i} = \sin\left(p / \text{base}^{2i / d}\right), \qquad
        P_{p, 2i+1} = \cos\left(p / \text{base}^{2i / d}\right)

    Parameters
    ----------
    n_positions : int
        Number of positions ``p = 0, ..., n_positions - 1``.
    d_model : int
        Encoding dimension ``d`` (odd values end with a sine column).
    base : float, default=10000.0
        Wavelength base.

    Returns
    -------
    encoding : ndarray of shape (n_positions, d_model)
        Row ``p`` encodes position ``p``: sines in the even columns, cosines in
        the odd ones.

    Examples
    --------
    >>> from skattn.functional import sinusoidal_positional_encoding
    >>> sinusoidal_positional_encoding(2, 4).round(4)
    array([[0.    , 1.    , 0.    , 1.    ],
           [0.8415, 0.5403, 0.01  , 1.    ]])
    """
    for name, n in (("n_positions", n_positions), ("d_model", d_model)):
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
            raise ValueError(f"{name} must be a non-negative integer; got {n!r}.")
    if not (isinstance(base, numbers.Real) and math.isfinite(base) and base > 0):
        raise ValueError(f"base must be a positive finite number; got {base!r}.")
    positions = np.arange(n_positions, dtype=float)[:, None]
    frequencies = np.power(float(base), -np.arange(0, d_model, 2) / max(d_model, 1))
    angles = positions * frequencies
    encoding = np.empty((n_positions, d_model))
    encoding[:, 0::2] = np.sin(angles)
    encoding[:, 1::2] = np.cos(angles[:, : d_model // 2])
    return encoding


# -- attention blocks of convolutional networks ----------------------------------------


def _check_images(x):
    x = _float_array(x, "x")
    if x.ndim != 4:
        raise ValueError(
            f"x must have shape (n_samples, n_channels, height, width); got shape "
            f"{x.shape}."
        )
    return x


def squeeze_excitation(x, W1, b1, W2, b2, return_gate=False):
    r"""Squeeze-and-excitation channel attention (Hu et al., 2018).

    .. math::

        z = \operatorname{mean}_{h, w} x, \qquad
        g = \sigma(\max(0, z W_1 + b_1) W_2 + b_2), \qquad
        y_{c, h, w} = g_c \, x_{c, h, w}

    Parameters
    ----------
    x : array-like of shape (n_samples, n_channels, height, width)
        Feature maps.
    W1 : array-like of shape (n_channels, n_reduced)
        Weights of the squeezing layer (followed by a ReLU).
    b1 : array-like of shape (n_reduced,)
        Its bias.
    W2 : array-like of shape (n_reduced, n_channels)
        Weights of the exciting layer (followed by a sigmoid).
    b2 : array-like of shape (n_channels,)
        Its bias.
    return_gate : bool, default=False
        Also return the channel gates ``g``.

    Returns
    -------
    y : ndarray of the shape of ``x``
        ``x`` with each channel multiplied by its gate.
    gate : ndarray of shape (n_samples, n_channels)
        Only if ``return_gate``.

    Examples
    --------
    >>> import numpy as np
    >>> from skattn.functional import squeeze_excitation
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2, 8, 5, 5))
    >>> W1, W2 = rng.normal(size=(8, 2)), rng.normal(size=(2, 8))
    >>> y, gate = squeeze_excitation(
    ...     x, W1, np.zeros(2), W2, np.zeros(8), return_gate=True
    ... )
    >>> y.shape, gate.shape, bool(np.allclose(y, x * gate[:, :, None, None]))
    ((2, 8, 5, 5), (2, 8), True)
    """
    x = _check_images(x)
    n_channels = x.shape[1]
    W1 = _float_array(W1, "W1")
    if W1.ndim != 2:
        raise ValueError(
            f"W1 must have shape (n_channels, n_reduced); got shape {W1.shape}."
        )
    n_reduced = W1.shape[1]
    W1 = _check_weight(W1, "W1", (n_channels, n_reduced))
    b1 = _check_weight(b1, "b1", (n_reduced,))
    W2 = _check_weight(W2, "W2", (n_reduced, n_channels))
    b2 = _check_weight(b2, "b2", (n_channels,))
    dtype = np.result_type(x, W1, b1, W2, b2)
    if x.shape[2] * x.shape[3] == 0:
        raise ValueError(
            f"x has images of {x.shape[2]} x {x.shape[3]} pixels; squeeze-and-"
            "excitation needs at least one pixel to average."
        )
    # each channel's mean, free of overflow (divided by its largest magnitude)
    magnitude = np.max(np.abs(x), axis=(2, 3), initial=0.0)
    magnitude[magnitude == 0] = 1.0
    squeezed = (x / magnitude[:, :, None, None]).mean(axis=(2, 3)) * magnitude
    with np.errstate(over="ignore"):
        hidden = _projection(squeezed, W1) + b1  # +inf once past the range
        hidden = np.clip(hidden, 0.0, _PROJECTION_LIMIT)  # ReLU, kept finite
        gate = expit(_projection(hidden, W2) + b2).astype(dtype, copy=False)
    y = (x * gate[:, :, None, None]).astype(dtype, copy=False)
    return (y, gate) if return_gate else y


def spatial_attention(x, conv_weight, conv_bias=0.0, return_gate=False):
    r"""CBAM spatial attention (Woo et al., 2018).

    The channel-wise mean and maximum form a two-channel map; a convolution with
    zero "same" padding and a sigmoid turn it into one gate per pixel:

    .. math::

        g = \sigma(\text{conv}([\operatorname{mean}_c x, \max_c x]) + b), \qquad
        y_{c, h, w} = g_{h, w} \, x_{c, h, w}

    The convolution is a cross-correlation, as in ``torch.nn.Conv2d``.

    Parameters
    ----------
    x : array-like of shape (n_samples, n_channels, height, width)
        Feature maps.
    conv_weight : array-like of shape (1, 2, k_h, k_w) or (2, k_h, k_w)
        The convolution's weights (PyTorch's layout); input channel 0 is the mean,
        1 the maximum. Kernel sizes must be odd (CBAM uses 7 x 7).
    conv_bias : float or array-like of shape (1,), default=0.0
        The convolution's bias.
    return_gate : bool, default=False
        Also return the gate ``g``.

    Returns
    -------
    y : ndarray of the shape of ``x``
        ``x`` with each position multiplied by its gate.
    gate : ndarray of shape (n_samples, 1, height, width)
        Only if ``return_gate``.

    Examples
    --------
    >>> import numpy as np
    >>> from skattn.functional import spatial_attention
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2, 8, 10, 10))
    >>> y, gate = spatial_attention(
    ...     x, rng.normal(size=(1, 2, 7, 7)), 0.1, return_gate=True
    ... )
    >>> y.shape, gate.shape
    ((2, 8, 10, 10), (2, 1, 10, 10))
    """
    x = _check_images(x)
    weight = _float_array(conv_weight, "conv_weight")
    if weight.ndim == 4 and weight.shape[0] == 1:
        weight = weight[0]
    if weight.ndim != 3 or weight.shape[0] != 2:
        raise ValueError(
            "conv_weight must have shape (1, 2, k_h, k_w) or (2, k_h, k_w); got shape "
            f"{np.shape(conv_weight)}."
        )
    k_h, k_w = weight.shape[1:]
    if k_h % 2 == 0 or k_w % 2 == 0:
        raise ValueError(
            f"conv_weight's kernel size must be odd for 'same' padding; got {k_h} x "
            f"{k_w}."
        )
    bias = _float_array(conv_bias, "conv_bias")
    if bias.size != 1 or bias.ndim > 1:
        raise ValueError(
            f"conv_bias must be a number or have shape (1,); got shape {bias.shape}."
        )
    dtype = np.result_type(x, weight)  # the bias is one number: it sets no dtype
    pooled = np.stack([x.mean(axis=1), x.max(axis=1)], axis=1)
    pad = ((0, 0), (0, 0), (k_h // 2, k_h // 2), (k_w // 2, k_w // 2))
    windows = np.lib.stride_tricks.sliding_window_view(
        np.pad(pooled, pad), (k_h, k_w), axis=(2, 3)
    )
    logits = np.einsum("nchwij,cij->nhw", windows, weight) + bias.reshape(())
    gate = expit(logits)[:, None].astype(dtype, copy=False)
    y = (x * gate).astype(dtype, copy=False)
    return (y, gate) if return_gate else y
