"""The attention engine: chunked, numerically stable kernel attention pooling.

For queries ``q``, keys ``k_j`` with sample weights ``w_j`` and values ``v_j``::

    weights[q, j] = softmax_j( log K(||(q - k_j) / h||) + log w_j )
    output[q]     = sum_j weights[q, j] * v_j

How it is computed (per chunk of query rows, never more of the query-by-key matrix):

* Queries and keys are centred on the keys' weighted mean and scaled by ``1 / h``.
* One GEMM of augmented matrices gives ``S = -||q - k||^2 / 2 (+ log w)`` directly:
  ``[q, -||q||^2/2, 1] @ [k, 1, -||k||^2/2 + log w].T``, so no norm-broadcast pass.
* Every kernel here has ``K <= K(0) = 1`` and ``log w <= 0`` after dividing the weights
  by their maximum, so each logit is bounded above by 0: that *provable* upper bound of
  the row maximum is the softmax shift, and ``exp`` can never overflow.
* Pooling is one GEMM with an extra column of ones, ``E @ [v, 1]``, which yields the
  numerators and the normaliser together.
* Rows whose normaliser underflows (a tiny bandwidth, a far query) or is zero (a compact
  kernel with no key in its support) are recomputed exactly: the row maximum is
  subtracted before ``exp``; a row with no key in support attends to its nearest key(s)
  (ties share by weight), which is also the ``h -> 0`` limit of the Gaussian kernel.
  The result is never NaN.
* Leave-one-out mode (queries are the keys) gives each row's own key the log-weight
  ``log(max(w_i - u_i, 0))``: leaving the row out takes one copy's weight ``u_i`` (1,
  or a classifier's class weight), so a row of weight ``w`` keeps ``w - 1`` copies.
"""

# SPDX-License-Identifier: BSD-3-Clause

import copy
import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
from joblib import cpu_count, effective_n_jobs, parallel_config
from joblib.parallel import get_active_backend
from scipy import sparse
from scipy.special import entr
from sklearn import config_context, get_config
from sklearn.utils import gen_even_slices
from sklearn.utils.parallel import Parallel, delayed
from threadpoolctl import ThreadpoolController, threadpool_limits

from skattn._fastmath import exp_inplace, exp_pool, exp_pool_applies, gauss_pool
from skattn._kernels import get_kernel

__all__ = [
    "LOGIT_FLOOR",
    "PreparedKeys",
    "attention_pool",
    "chunk_rows",
    "engine_threads",
    "exact_weights",
    "map_query_chunks",
    "map_slices",
    "prepare_keys",
    "scaled_rows",
    "softmax",
    "weight_statistics",
]

# Query rows per chunk are chosen so that one chunk of the query-by-key matrix stays
# near the processor's cache (memory passes, not arithmetic, dominate at small d), and
# never above sklearn's ``working_memory``.
_CACHE_CHUNK_BYTES = 2 * 2**20
_MIN_CHUNK_ROWS = 8
# Fewest query rows per task of map_query_chunks.
_MIN_TASK_ROWS = 32
# Rows whose distance GEMM may err by more than this (in squared bandwidths) are
# recomputed exactly: data many bandwidths away from the keys' centre. float32 is
# held to 1e5 eps (about 1% of a squared bandwidth): a tighter bound would send
# ordinary float32 data down the exact path.
_DISTANCE_ERROR_FLOOR = 1e-9
_DISTANCE_ERROR_EPS = 1e5


# float64 logits are raised to this floor before their exp: the weight 2^-594 (about
# 1e-179) is 0 for every purpose (a normaliser that passes the sqrt(tiny) = 2^-511
# check moves by under n * 2^-83 of itself, below rounding for n < 2^30) and keeps
# the weights' products with values above 2^-428 in magnitude normal. A floor at
# finfo.tiny (2^-1022) left them subnormal, and subnormal operands made the GEMMs of
# the learning objective's gradient 10-35 times slower (Computers, a narrow bandwidth:
# 4 s an evaluation against 0.2 s).
LOGIT_FLOOR = -594.0 * float(np.log(2.0))


def _max_distance_error(dtype):
    return max(_DISTANCE_ERROR_FLOOR, _DISTANCE_ERROR_EPS * np.finfo(dtype).eps)


def softmax(logits, axis=-1, out=None, row_max=None):
    """Numerically stable softmax along ``axis``.

    The row maximum is subtracted before ``exp``. A slice whose logits are all
    ``-inf`` (every key masked) gives all-zero weights, never NaN.

    Parameters
    ----------
    logits : ndarray
        Floating point scores, none of them NaN or ``+inf``; ``-inf`` marks an
        excluded entry.
    axis : int, default=-1
        Axis along which the weights sum to 1.
    out : ndarray, default=None
        Where to write the result; may be ``logits`` itself.
    row_max : ndarray, default=None
        The maximum of ``logits`` along ``axis`` (with ``keepdims``) when the caller
        has it already; it may be overwritten.

    Returns
    -------
    weights : ndarray
        Non-negative weights summing to 1 along ``axis`` (or all zero).
    """
    logits = np.asarray(logits)
    if row_max is None:
        row_max = np.max(logits, axis=axis, keepdims=True)
    row_max[~np.isfinite(row_max)] = 0.0
    out = np.subtract(logits, row_max, out=out)
    exp_inplace(out)
    total = np.sum(out, axis=axis, keepdims=True)
    total[total == 0] = 1.0
    return np.divide(out, total, out=out)


def chunk_rows(n_keys, itemsize, n_temporaries=2, cache_bytes=None):
    """Number of query rows per chunk for ``n_keys`` keys.

    Bounded by sklearn's ``working_memory`` (in MiB) for ``n_temporaries`` arrays of
    shape (rows, n_keys), and sized to keep one chunk near the cache when possible.
    """
    if cache_bytes is None:
        cache_bytes = _CACHE_CHUNK_BYTES
    row_bytes = max(1, n_keys) * itemsize
    working = get_config()["working_memory"] * 2**20
    rows_memory = max(1, int(working // (row_bytes * n_temporaries)))
    rows_cache = max(_MIN_CHUNK_ROWS, int(cache_bytes // row_bytes))
    return min(rows_memory, rows_cache)


def weighted_mean(X, w):
    """Weighted column means of ``X``, free of overflow for any finite ``X``."""
    X = np.asarray(X, dtype=float)
    magnitude = np.max(np.abs(X), axis=0, initial=0.0)
    magnitude[magnitude == 0] = 1.0
    return np.average(X / magnitude, axis=0, weights=w) * magnitude


def weight_statistics(p, w, starts=None):
    """Entropy (in nats) and effective number of keys of normalised attention
    weights ``p``, a key of weight ``w`` counting as ``w`` copies that share its
    attention: ``-sum_j p_j log(p_j / w_j)`` and ``1 / sum_j p_j^2 / w_j``. The one
    rule of the dense and sparse paths.

    ``p`` and ``w`` are of shape (n_rows, n_keys), summed along the rows, or, with
    ``starts``, flat entries grouped in segments that start there (one per query).
    Entries with ``p = 0`` count for nothing (their ``w`` may be 0). Returns an
    array of shape (n_rows, 2) in the dtype of ``p``.
    """
    positive = p > 0
    safe_w = np.where(positive, w, 1.0).astype(p.dtype, copy=False)
    entropy_terms = entr(p) + p * np.log(safe_w)
    sum_sq_terms = p * p / safe_w
    if starts is None:
        entropy, sum_sq = entropy_terms.sum(axis=1), sum_sq_terms.sum(axis=1)
    else:
        entropy = np.add.reduceat(entropy_terms, starts)
        sum_sq = np.add.reduceat(sum_sq_terms, starts)
    stats = np.empty((len(entropy), 2), dtype=p.dtype)
    stats[:, 0] = np.maximum(entropy, 0.0)
    with np.errstate(divide="ignore"):
        stats[:, 1] = 1.0 / sum_sq
    return stats


class PreparedKeys:
    """Keys, weights and values prepared for the engine (one dtype throughout):
    the engine's one door, built by :func:`prepare_keys`.

    Estimators pool with :meth:`pool`. The bandwidth and learning layers, which
    fill chunks of weights themselves, use :meth:`squared_distances`,
    :meth:`unnormalised_weights`, :meth:`exact_rows` (the exact fallback's
    distances) and :meth:`finish_chunk` (pooling, leave-one-out and the exact
    fallback); :meth:`statistics` gives the weights' entropy and effective number
    of keys.
    """

    def __init__(
        self, keys, values, scale, key_weights, kernel, dtype, unit_weights=None
    ):
        keys = np.asarray(keys)
        n, d = keys.shape
        self.kernel = kernel
        self.dtype = dtype
        w = np.ones(n) if key_weights is None else np.asarray(key_weights, float)
        if np.any(w <= 0):
            raise ValueError("The engine's key weights must be positive.")
        w_max = w.max()
        self.w = w
        # Weights relative to the largest, so that every log-weight is <= 0.
        self.log_w = np.log(w / w_max).astype(dtype)
        self.uniform = bool(np.all(w == w_max))  # every log-weight is 0
        with np.errstate(divide="ignore"):
            # a row of weight w keeps w - u copies of itself in leave-one-out mode,
            # u the weight of one copy (1, or a class weight)
            unit = (
                np.ones(n) if unit_weights is None else np.asarray(unit_weights, float)
            )
            self.unit = unit
            self.self_log_w = np.log(np.maximum(w - unit, 0.0) / w_max).astype(dtype)
        self.scale = np.asarray(scale, dtype=float)
        if not (np.isfinite(self.scale).all() and np.all(self.scale > 0)):
            raise ValueError(
                "Every inverse bandwidth must be positive and finite; a bandwidth "
                "below about 5.6e-309 has no finite reciprocal."
            )
        self._place(keys)
        values = np.asarray(values)
        if values.dtype.kind != "f":
            values = values.astype(np.float64)
        # The pooled values keep the dtype they were given (the keys' dtype is the
        # working dtype): float64 targets beside float32 features stay float64.
        self.values_dtype = np.result_type(values.dtype, dtype)
        self.n_outputs = values.shape[1]
        # Each output is pooled divided by the power of two of its largest magnitude
        # (exact in binary floating point), so that it lies in [-1, 1] in the
        # working dtype whatever its range (no overflow of sums near the float64
        # limit, none of a float64 value beyond float32's range), and the pooled
        # result is multiplied back in the values' dtype.
        magnitude = np.max(np.abs(values), axis=0, initial=0.0)
        self.values_exponent = np.frexp(magnitude)[1]
        values_aug = np.empty((n, self.n_outputs + 1), dtype=dtype)
        values_aug[:, :-1] = np.ldexp(values, -self.values_exponent)
        values_aug[:, -1] = 1.0
        self.values_aug = values_aug
        # The values transposed for the fused exp-and-pool, where it applies.
        self.values_t = (
            np.ascontiguousarray(values_aug.T)
            if exp_pool_applies(dtype, values_aug.shape[1])
            else None
        )
        self.values_min = values.min(axis=0, initial=np.inf)
        self.values_max = values.max(axis=0, initial=-np.inf)
        self.tiny = np.sqrt(np.finfo(dtype).tiny)
        # float64 exp is several times slower where it underflows (a small
        # bandwidth, keys far from the query), and its subnormal results slow every
        # product with them: logits are raised to LOGIT_FLOOR first; rows whose
        # normaliser fails the ``self.tiny`` check are recomputed exactly. Not for
        # compact kernels, whose zeros are exact, nor float32, whose exp is
        # vectorised and barely slower there.
        self.logit_floor = (
            LOGIT_FLOOR if dtype == np.float64 and not kernel.compact else None
        )
        self.max_distance_error = _max_distance_error(dtype)

    def _place(self, keys):
        """Set what depends on where the keys are (not on their values or
        weights): their centre, scaled rows and the key side of the logits' GEMM."""
        n, d = keys.shape
        self.center = weighted_mean(keys, self.w)
        self.raw = keys  # for distances that must not depend on the keys' order
        self.z = z = self.transform_queries(keys)
        self.sq_norms = np.einsum("ij,ij->i", z, z)
        self.sq_norms_max = float(self.sq_norms.max(initial=0.0))
        aug = np.empty((d + 2, n), dtype=self.dtype)
        aug[:d] = z.T
        aug[d] = 1.0
        aug[d + 1] = -0.5 * self.sq_norms
        if self.kernel.gemm_logits:
            # log K + log w = -sq / 2 + log w comes straight out of the GEMM.
            aug[d + 1] += self.log_w
        self.aug_t = aug

    def moved(self, keys):
        """These keys' values, weights, kernel, scale and dtype at new positions
        ``keys`` (same shape): a learning objective's keys at its next parameters,
        without preparing the values again."""
        keys = np.asarray(keys)
        if keys.shape != self.raw.shape:
            raise ValueError(
                f"moved keys must keep the shape {self.raw.shape}, got {keys.shape}."
            )
        other = copy.copy(self)
        other._place(keys)
        return other

    @property
    def n_keys(self):
        return self.z.shape[0]

    def subset(self, rows, values):
        """These keys restricted to ``rows`` (same kernel, scale, weights and
        dtype), prepared with ``values``, one row per kept key."""
        return PreparedKeys(
            self.raw[rows],
            values,
            self.scale,
            self.w[rows],
            self.kernel,
            self.dtype,
            self.unit[rows],
        )

    def transform_queries(self, queries):
        """Centre and scale rows by ``1 / h`` (:func:`scaled_rows`)."""
        return scaled_rows(queries, self.center, self.scale, self.dtype)

    def squared_distances(self, qz, out):
        """Write scaled squared distances between ``qz`` and the keys into ``out``."""
        np.matmul(_augment_queries(qz), self.aug_t, out=out)
        if self.kernel.gemm_logits:
            out -= self.log_w  # the gaussian key matrix carries the log-weights
        np.minimum(out, 0.0, out=out)  # cancellation can make -sq / 2 slightly positive
        out *= -2.0
        if self.kernel.uses_distance:
            # Kernels with a kink at 0 amplify cancellation near 0 through sqrt:
            # recompute small squared distances exactly from the differences.
            q_sq = np.einsum("ij,ij->i", qz, qz)
            eps = np.finfo(self.dtype).eps
            limit = 64 * eps * (q_sq.max(initial=0.0) + self.sq_norms_max)
            rows, cols = np.nonzero(out < limit)
            if rows.size:
                diff = qz[rows] - self.z[cols]
                out[rows, cols] = np.einsum("ij,ij->i", diff, diff)
        return out

    def exact_squared_distances(self, q_rows, q_raw, out):
        """Squared distances of a few rows, free of NaN for any finite scaled data and
        independent of the keys' order near each row's minimum; and, for rows whose
        every squared distance overflows, finite stand-ins that order the keys alike.

        Returns ``(out, proxy)``: ``proxy`` is None when no row overflows throughout,
        else ``out`` with those rows replaced by their squared differences divided by
        the square of the row's largest difference.

        The distance GEMM is used when it is finite; otherwise each non-finite row's
        differences are taken directly and scaled by their largest magnitude before
        squaring (no ``inf - inf``). A squared distance beyond the dtype's range becomes
        ``inf``: its key gets weight 0, and a row whose every key is that far shares its
        attention among them by weight.

        The GEMM's rounding (which can depend on a key's position in the matrix) may
        order keys that are equidistant from a row arbitrarily, and these rows are the
        ones whose weights concentrate on the nearest keys. So the keys within the
        GEMM's error bound of the row's minimum are recomputed from their sorted squared
        differences, taken from the raw rows (the centring mean's rounding depends on
        the order of the keys): keys equidistant by symmetry then get bit-identical
        distances and share the attention, whatever their order. Where the GEMM's error
        bound is not negligible next to the kernel's scale (data many bandwidths from
        the keys' centre), every key that can get weight is recomputed that way.
        """
        self.squared_distances(q_rows, out)
        proxy = None
        if not np.isfinite(out).all():
            for r in np.flatnonzero(~np.isfinite(out).all(axis=1)):
                diff = self.z - q_rows[r]
                big = np.max(np.abs(diff), axis=1)
                big[big == 0] = 1.0
                ratio = diff / big[:, None]
                with np.errstate(over="ignore"):
                    out[r] = np.einsum("ij,ij->i", ratio, ratio) * big * big
                if not np.isfinite(out[r]).any():
                    # every key beyond sqrt(max): one scale for the row keeps the order
                    if proxy is None:
                        proxy = out.copy()
                    ratio = diff / max(big.max(), np.finfo(diff.dtype).tiny)
                    proxy[r] = np.einsum("ij,ij->i", ratio, ratio)
        with np.errstate(over="ignore", invalid="ignore"):
            margin = 64 * self.distance_error_bound(q_rows)
            for r in np.flatnonzero(np.isfinite(margin)):
                lowest = out[r].min()
                if not np.isfinite(lowest):
                    continue
                # every key whose weight can be non-zero next to the nearest one
                limit = (np.sqrt(lowest) + self.kernel.reach) ** 2 + margin[r]
                near = np.flatnonzero(out[r] <= limit)
                if len(near) > 1 or margin[r] > self.max_distance_error:
                    diff = (self.raw[near] - q_raw[r]) * self.scale
                    exact = np.sort(diff * diff, axis=1).sum(axis=1)
                    finite = np.isfinite(exact)
                    out[r, near[finite]] = exact[finite]
        return out, proxy

    def distance_error_bound(self, qz):
        """A bound (up to a small factor) of the GEMM's error in each row's squared
        distances to the keys that can weigh next to its nearest: they are differences
        of squared norms of that size. Keys farther than the kernel's reach from the row
        weigh nothing whatever the error, so a far outlier among the keys does not make
        every row inexact."""
        q_sq = np.einsum("ij,ij->i", qz, qz).astype(np.float64)
        reach_sq = (np.sqrt(q_sq) + self.kernel.reach) ** 2
        k_sq = np.minimum(self.sq_norms_max, reach_sq)
        return np.finfo(self.dtype).eps * (q_sq + k_sq)

    def finish_chunk(self, e, own, sq_rows, normalize=False, inexact=None):
        """Pool one chunk of unnormalised weights ``e = exp(logits)``, logits <= 0.

        Sets the leave-one-out self weights (``own``: the key index of each row of the
        chunk, -1 where it is not a key, or None outside leave-one-out mode), pools by
        one GEMM with a column of ones, and recomputes exactly the rows whose
        normaliser underflowed or is zero (``sq_rows(rows)`` gives their scaled squared
        distances and a finite stand-in that orders the keys alike where those
        overflow, or None; see :func:`exact_weights`), and also the rows flagged
        ``inexact`` (distance GEMM too coarse for them). With ``normalize``, ``e`` is
        normalised in place into attention weights. Returns the pooled values of the
        chunk, in the values' dtype.
        """
        if own is not None:
            has = np.flatnonzero(own >= 0)
            e[has, own[has]] = np.exp(self.self_log_w[own[has]])
        pooled = e @ self.values_aug
        result = self._finish_pooled(pooled, e, own, sq_rows, inexact)
        if normalize:
            e /= pooled[:, -1:]
        return result

    def _pooled_sums(self, logits, out):
        """Write the pooled sums of one chunk, ``exp(logits) @ values_aug`` (the
        normaliser last), into ``out``, outside leave-one-out mode; ``logits``
        (:meth:`logits`) are overwritten. With the compiled helpers (float64, at most
        7 outputs), ``exp`` and the sums run fused, the weights never written
        (:func:`skattn._fastmath.exp_pool`)."""
        if self.values_t is None:
            np.matmul(self._exp_logits(logits), self.values_aug, out=out)
        else:
            exp_pool(logits, self.values_t, out=out)

    def _finish_pooled(self, pooled, e, own, sq_rows, inexact):
        """The pooled values of a chunk from its pooled sums (the normaliser last):
        rows whose normaliser underflowed, is zero or is not finite, and those flagged
        ``inexact``, are recomputed exactly (their weights written into ``e`` when it
        is given); ``pooled`` then holds normaliser 1 on those rows."""
        norm = pooled[:, -1]
        ok = (norm >= self.tiny) & np.isfinite(norm)
        if inexact is not None:
            ok &= ~inexact
        bad = np.flatnonzero(~ok)
        if bad.size:
            sq, proxy = sq_rows(bad)
            exact = exact_weights(
                self.kernel,
                sq,
                self.log_w,
                None if own is None else own[bad],
                self.self_log_w,
                proxy=proxy,
            ).astype(self.dtype, copy=False)
            if e is not None:
                e[bad] = exact
            norm[bad] = 1.0
            pooled[bad] = exact @ self.values_aug
        result = pooled[:, :-1].astype(self.values_dtype)
        result /= norm[:, None]
        result = np.ldexp(result, self.values_exponent, out=result)
        np.clip(result, self.values_min, self.values_max, out=result)
        return result

    def logits(self, qz, out, sq_out=None):
        """Write the logits ``log K + log w`` of the queries ``qz`` over the keys into
        ``out`` and return it.

        They are at most 0 (the softmax shift is their provable upper bound, see the
        module's notes); ``-inf`` outside a compact kernel's support. For the Gaussian
        kernel they come straight out of one GEMM; other kernels go through the scaled
        squared distances, which are kept in ``sq_out`` when it is given.
        """
        if self.kernel.gemm_logits:
            return np.matmul(_augment_queries(qz), self.aug_t, out=out)
        sq = self.squared_distances(qz, out if sq_out is None else sq_out)
        self.kernel.log_kernel(sq, out)
        if not self.uniform:
            out += self.log_w
        return out

    def unnormalised_weights(self, qz, out, sq_out=None):
        """Write ``exp(logits)`` of the queries ``qz`` over the keys into ``out``
        (:meth:`logits`; ``sq_out`` as there). Returns ``out``."""
        return self._exp_logits(self.logits(qz, out, sq_out))

    def _exp_logits(self, logits):
        """``exp`` of ``logits`` in place, raised to the floor first where there is
        one (see ``logit_floor``)."""
        if self.logit_floor is not None:
            np.maximum(logits, self.logit_floor, out=logits)
        return exp_inplace(logits)

    def exact_rows(self, qz, q_raw):
        """The ``sq_rows`` of :func:`finish_chunk` for a chunk of queries: the exact
        squared distances of some of its rows (``qz`` scaled, ``q_raw`` as given)."""

        def sq_rows(rows):
            out = np.empty((len(rows), self.n_keys), self.dtype)
            return self.exact_squared_distances(qz[rows], q_raw[rows], out)

        return sq_rows

    def statistics(self, e, own):
        """Entropy and effective number of keys of normalised weights ``e`` of a
        chunk (:func:`weight_statistics`); in leave-one-out mode (``own``: each
        row's own key) a row's own key keeps ``w - u`` of its weight (``u`` one
        copy's)."""
        w = np.broadcast_to(self.w.astype(e.dtype), e.shape)
        if own is not None:
            w = w.copy()
            has = np.flatnonzero(own >= 0)
            left = self.w[own[has]] - self.unit[own[has]]
            w[has, own[has]] = np.maximum(left, 0.0)
        return weight_statistics(e, w)

    def pool(
        self,
        queries,
        *,
        loo=False,
        loo_rows=None,
        n_jobs=None,
        return_weights=False,
        return_stats=False,
    ):
        """Pool the values for every query (:func:`attention_pool`'s result).

        ``queries`` of shape (n_queries, n_features), or None with ``loo``: every
        key is then a query and keeps ``w - u`` copies of itself; ``loo_rows``, a
        slice of the keys, restricts the queries to those keys (the results' rows are
        then theirs, in order).
        """
        dtype = self.dtype
        offset = 0
        if loo:
            if queries is not None:
                raise ValueError("queries must be None in leave-one-out mode.")
            n_queries = self.n_keys
            if loo_rows is not None:
                start, stop, _ = loo_rows.indices(self.n_keys)
                offset, n_queries = start, max(stop - start, 0)
        else:
            queries = np.asarray(queries)
            n_queries = queries.shape[0]
        out = np.empty((n_queries, self.n_outputs), dtype=self.values_dtype)
        weights = (
            np.empty((n_queries, self.n_keys), dtype=dtype) if return_weights else None
        )
        stats = np.empty((n_queries, 2), dtype=dtype) if return_stats else None
        if n_queries:
            rows = chunk_rows(self.n_keys, dtype.itemsize)
            map_slices(
                lambda s: self._pool_slice(
                    queries, s, loo, rows, out, weights, stats, offset
                ),
                n_queries,
                rows,
                n_jobs,
            )
        result = (out,)
        if return_weights:
            result += (weights,)
        if return_stats:
            result += (stats,)
        return result if len(result) > 1 else out

    def _pool_chunk(
        self, qz, queries_raw, s, loo, buffer, out, weights_out, stats_out, offset=0
    ):
        """Pool the queries ``s`` (their keys ``s`` shifted by ``offset`` in
        leave-one-out mode) into ``out[s]``."""
        own = np.arange(s.start + offset, s.stop + offset) if loo else None
        inexact = self.distance_error_bound(qz) > self.max_distance_error
        inexact = inexact if inexact.any() else None
        sq_rows = self.exact_rows(qz, self.raw[own] if loo else queries_raw)
        e = buffer[: s.stop - s.start] if weights_out is None else weights_out[s]
        self.unnormalised_weights(qz, e)
        out[s] = self.finish_chunk(
            e,
            own,
            sq_rows,
            normalize=weights_out is not None or stats_out is not None,
            inexact=inexact,
        )
        if stats_out is not None:
            stats_out[s] = self.statistics(e, own)

    def _pool_slice(self, queries, s, loo, rows, out, weights_out, stats_out, offset):
        if weights_out is None and stats_out is None and not loo:
            self._predict_slice(queries, s, rows, out)
            return
        buffer = None
        if weights_out is None:
            buffer = np.empty((min(rows, s.stop - s.start), self.n_keys), self.dtype)
        # Overflow in the distance GEMM (data huge next to the bandwidth) is caught by
        # the check of the normaliser and recomputed exactly: no warning needed.
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(s.start, s.stop, rows):
                c = slice(start, min(start + rows, s.stop))
                raw = None if loo else np.asarray(queries[c])
                if loo:
                    qz = self.z[c.start + offset : c.stop + offset]
                else:
                    qz = self.transform_queries(raw)
                self._pool_chunk(
                    qz, raw, c, loo, buffer, out, weights_out, stats_out, offset
                )

    def _predict_slice(self, queries, s, rows, out):
        """Pool the queries ``s`` into ``out[s]``: predict's path (no weights, no
        statistics, no leave-one-out). The slice's queries are scaled, augmented and
        checked once; each chunk of ``rows`` queries then costs its logits and their
        pooled sums alone (in the cache, the GIL released), and the pooled sums are
        finished, exact fallback included, once for the slice. With the compiled
        helpers, a Gaussian kernel's slice is one call that computes the logits in
        the cache too (:func:`skattn._fastmath.gauss_pool`)."""
        raw = np.asarray(queries[s])
        qz = self.transform_queries(raw)
        inexact = self.distance_error_bound(qz) > self.max_distance_error
        inexact = inexact if inexact.any() else None
        n_rows = qz.shape[0]
        pooled = np.empty((n_rows, self.n_outputs + 1), dtype=self.dtype)
        # Overflow in the distance GEMM (data huge next to the bandwidth) is caught by
        # the check of the normaliser and recomputed exactly: no warning needed.
        with np.errstate(over="ignore", invalid="ignore"):
            q_aug = _augment_queries(qz) if self.kernel.gemm_logits else None
            if q_aug is not None and self.values_t is not None:
                gauss_pool(q_aug, self.aug_t, self.values_t, out=pooled)
            else:
                buffer = np.empty((min(rows, n_rows), self.n_keys), self.dtype)
                for start in range(0, n_rows, rows):
                    c = slice(start, min(start + rows, n_rows))
                    logits = buffer[: c.stop - c.start]
                    if q_aug is None:
                        self.logits(qz[c], logits)
                    else:
                        np.matmul(q_aug[c], self.aug_t, out=logits)
                    self._pooled_sums(logits, pooled[c])
            out[s] = self._finish_pooled(
                pooled, None, None, self.exact_rows(qz, raw), inexact
            )


def scaled_rows(X, center, scale, dtype):
    """``(X - center) * scale`` in ``dtype``: rows centred and scaled by ``1 / h``.

    Coordinates beyond a quarter of the dtype's range (a row astronomically many
    bandwidths away) are clipped there: differences stay finite, every kernel weight
    of such a row underflows, and it attends to its nearest key(s) as far as
    rounding can tell them apart.
    """
    limit = np.finfo(dtype).max / 4
    with np.errstate(over="ignore", invalid="ignore"):
        z = (np.asarray(X) - center) * scale
    return np.clip(z, -limit, limit).astype(dtype, copy=False)


def _augment_queries(qz):
    m, d = qz.shape
    q_aug = np.empty((m, d + 2), dtype=qz.dtype)
    q_aug[:, :d] = qz
    q_aug[:, d] = -0.5 * np.einsum("ij,ij->i", qz, qz)
    q_aug[:, d + 1] = 1.0
    return q_aug


def segment_weights(kernel, sq, log_w, starts, proxy=None):
    """Attention weights over flat entries grouped in segments, one per query: the
    one rule of the exact paths, dense and sparse alike.

    The kernel's log-values are shifted by their segment maximum *before* the
    log-weights are added, so a far query (all kernel values tiny, their logs huge)
    keeps its keys' weights: equidistant keys then share the attention by weight,
    exactly as repeated rows would. A segment with no eligible key inside the
    kernel's support attends to its nearest eligible key(s), ties sharing by
    weight; this is also the ``h -> 0`` limit.

    Parameters
    ----------
    kernel : Kernel
        The kernel.
    sq : ndarray of shape (n_entries,)
        Scaled squared distances; ``inf`` where they overflow.
    log_w : ndarray of shape (n_entries,)
        Log-weights of the entries' keys, ``-inf`` for a key of no weight.
    starts : ndarray of int of shape (n_segments,)
        Where each (non-empty) segment starts.
    proxy : ndarray of shape (n_entries,), default=None
        Finite numbers that order each segment's keys as ``sq`` does, used where
        every eligible ``sq`` of a segment is ``inf``. None: ``sq`` itself.

    Returns
    -------
    weights : ndarray of shape (n_entries,)
        Non-negative, summing to 1 over each segment with an eligible key (all
        zero otherwise).
    """
    if len(sq) == 0:
        return np.zeros_like(sq)
    counts = np.diff(np.append(starts, len(sq)))
    rows = np.repeat(np.arange(len(starts)), counts)
    eligible = np.isfinite(log_w)
    with np.errstate(invalid="ignore"):
        kernel_log = kernel.log_kernel(sq, np.empty_like(sq))
    kernel_log[~eligible] = -np.inf
    kernel_max = np.maximum.reduceat(kernel_log, starts)
    support = np.isfinite(kernel_max)
    logits = kernel_log - np.where(support, kernel_max, 0.0)[rows]
    logits += log_w  # -inf (no weight) stays -inf
    row_max = np.maximum.reduceat(logits, starts)
    row_max[~np.isfinite(row_max)] = 0.0
    e = np.exp(logits - row_max[rows])
    if not support.all():
        # No eligible key in the support: the nearest eligible key(s).
        fallback = ~support[rows]
        distance = np.where(eligible, sq, np.inf)
        nearest_sq = np.minimum.reduceat(distance, starts)
        if proxy is not None:
            overflow = ~support & ~np.isfinite(nearest_sq)
            use = overflow[rows]
            distance[use] = np.where(eligible, proxy, np.inf)[use]
            nearest_sq[overflow] = np.minimum.reduceat(distance, starts)[overflow]
        nearest = fallback & eligible & (distance == nearest_sq[rows])
        top = np.maximum.reduceat(np.where(nearest, log_w, -np.inf), starts)
        top[~np.isfinite(top)] = 0.0
        e[fallback] = 0.0
        e[nearest] = np.exp(log_w[nearest] - top[rows[nearest]])
    norm = np.add.reduceat(e, starts)
    norm[norm == 0] = 1.0
    return e / norm[rows]


def exact_weights(kernel, sq, log_w, own=None, self_log_w=None, proxy=None):
    """Attention weights of a few rows over every key (:func:`segment_weights`).

    Parameters
    ----------
    kernel : Kernel
        The kernel.
    sq : ndarray of shape (n_rows, n_keys)
        Scaled squared distances of the rows to every key (``inf`` where they
        overflow).
    log_w : ndarray of shape (n_keys,)
        Log-weights of the keys.
    own : ndarray of shape (n_rows,), default=None
        In leave-one-out mode, the index of each row's own key (-1 for a row whose
        own key is not among the keys).
    self_log_w : ndarray of shape (n_keys,), default=None
        In leave-one-out mode, the log-weight a key has as its own row's key.
    proxy : ndarray of shape (n_rows, n_keys), default=None
        Finite stand-ins of ``sq`` that order each row's keys alike, for rows whose
        every distance overflows; None: ``sq``.

    Returns
    -------
    weights : ndarray of shape (n_rows, n_keys)
        Rows sum to 1. A row with no key in the kernel's support attends to its
        nearest key(s) of positive weight, ties sharing by weight.
    """
    n_rows, n_keys = sq.shape
    row_log_w = np.broadcast_to(np.asarray(log_w, dtype=sq.dtype), sq.shape).copy()
    if own is not None:
        has = np.flatnonzero(own >= 0)
        row_log_w[has, own[has]] = self_log_w[own[has]]
        sq = sq.copy()
        sq[has, own[has]] = 0.0
        if proxy is not None:
            proxy = proxy.copy()
            proxy[has, own[has]] = 0.0
    if n_keys == 0:
        return sq
    weights = segment_weights(
        kernel,
        sq.ravel(),
        row_log_w.ravel(),
        np.arange(0, n_rows * n_keys, n_keys),
        None if proxy is None else proxy.ravel(),
    )
    return weights.reshape(n_rows, n_keys)


# Most tasks of a threaded map: the tasks are handed to the threads as they become
# free, so a core slowed by another process takes fewer of them; their boundaries
# do not depend on the number of threads, so sums over them do not either.
_MAX_TASKS = 32
# joblib backends that run in this process or on this machine's cores: under them
# (and by default) the engine spreads work over its own threads.
_LOCAL_BACKENDS = frozenset(
    {"LokyBackend", "MultiprocessingBackend", "ThreadingBackend", "SequentialBackend"}
)

_controller = None
_limits_lock = threading.Lock()
_limits = {}  # user_api -> [depth, limiter, the pools' thread count before it]
_worker = threading.local()  # depth: > 0 while a thread runs an engine task


def _threadpool_controller():
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller


def _pool_threads(user_api):
    """The smallest thread count of the pools of ``user_api`` (None if none)."""
    counts = [
        info["num_threads"]
        for info in _threadpool_controller().info()
        if info.get("user_api") == user_api and info.get("num_threads")
    ]
    return min(counts) if counts else None


def _thread_limit():
    """The smallest thread count of the BLAS and OpenMP pools loaded in this
    process: what ``threadpoolctl.threadpool_limits``, ``OMP_NUM_THREADS`` or a
    joblib worker's own limit allow (None if no pool is found). While the engine
    holds a pool at one thread itself (:func:`_one_thread`), that pool counts with
    the thread count it had before."""
    counts = []
    for api in ("blas", "openmp"):
        with _limits_lock:
            entry = _limits.get(api)
            held = entry is not None and entry[0] > 0
            count = entry[2] if held else None
        if not held:
            count = _pool_threads(api)
        if count is not None:
            counts.append(count)
    return min(counts) if counts else None


def engine_threads(n_jobs):
    """The number of threads of this process the engine uses for ``n_jobs``.

    ``n_jobs=None`` follows an enclosing ``joblib.parallel_config(n_jobs=...)``; with
    none, the engine takes every core the process may use (as scikit-learn's
    pairwise-distance reductions do with their OpenMP threads), but no more than the
    thread limits of the BLAS and OpenMP pools: ``threadpoolctl.threadpool_limits(1)``
    or ``OMP_NUM_THREADS=1`` make it single-threaded, and so does a joblib worker
    process, whose pools joblib limits to its share of the cores. An int is joblib's
    meaning (``-1``: every core); under joblib's sequential backend, and inside one
    of the engine's tasks (no nested threads), 1.
    """
    backend, context_n_jobs = get_active_backend()
    if type(backend).__name__ == "SequentialBackend" or getattr(_worker, "depth", 0):
        return 1
    if n_jobs is None:
        n_jobs = context_n_jobs
    if n_jobs is None:
        limit = _thread_limit()
        n_cores = _cores()
        return max(1, n_cores if limit is None else min(n_cores, limit))
    with parallel_config(backend="threading"):
        return max(1, effective_n_jobs(n_jobs))


_cores_seen = [None, -np.inf]  # joblib's cpu_count() and when it was read


def _cores():
    """joblib's ``cpu_count()`` (the cores this process may use, cgroup quotas
    and affinity included), read again at most once a second: it reads files
    under /sys and /proc, 70 us a call, more than some of the engine's calls
    take in all."""
    now = time.monotonic()
    if now - _cores_seen[1] > 1.0:
        _cores_seen[:] = [cpu_count(), now]
    return _cores_seen[0]


def _engine_chooses(n_jobs):
    """Whether the number of threads is the engine's own choice: neither
    ``n_jobs`` nor an enclosing ``joblib.parallel_config`` sets it."""
    return n_jobs is None and get_active_backend()[1] is None


@contextmanager
def _one_thread(user_apis):
    """Limit the BLAS (and OpenMP) pools to one thread while the engine's threads run.

    The limits are process-wide: nested and concurrent uses (several threads
    predicting at once) share one limit, set by the first to enter and restored by
    the last to leave.
    """
    with _limits_lock:
        for api in user_apis:
            entry = _limits.setdefault(api, [0, None, None])
            if entry[0] == 0:
                entry[2] = _pool_threads(api)
                # a controller of this API's pools alone restores only them
                pools = _threadpool_controller().select(user_api=api)
                entry[1] = pools.limit(limits=1)
            entry[0] += 1
    try:
        yield
    finally:
        with _limits_lock:
            for api in user_apis:
                entry = _limits[api]
                entry[0] -= 1
                if entry[0] == 0:
                    entry[1].restore_original_limits()
                    entry[1] = None


def owns_threads(method):
    """Decorate an estimator's method (``fit``) to run with BLAS on one thread.

    The engine's threads take the cores (its maps, :func:`engine_threads`); the
    BLAS calls between them work on small matrices, where BLAS's own threads cost
    more than they give, and spin meanwhile on cores that the engine's threads, or
    other processes, need (measured on a loaded 2-core machine: a default
    ``AttentionRegressor().fit`` 1.3-1.5x slower than under ``threadpool_limits(1)``,
    1.0x with this). The user's thread limits still count (:func:`_thread_limit`).
    """

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _one_thread(("blas",)):
            return method(*args, **kwargs)

    return wrapper


def _task_slices(n_items, rows):
    """Slices of ``range(n_items)``: whole chunks of ``rows``, at most
    ``_MAX_TASKS`` of them, independent of the number of threads."""
    n_chunks = max(1, -(-n_items // rows))
    per_task = -(-n_chunks // _MAX_TASKS) * rows
    return [
        slice(start, min(start + per_task, n_items))
        for start in range(0, n_items, per_task)
    ] or [slice(0, 0)]


# The engine's own threading adapts per call site (the function mapped): a site
# whose threads gave less than _MIN_SPEEDUP over one thread (the tasks' CPU time
# over the call's wall time: GIL-bound small work, or a core another process keeps
# busy, where the last task waits for a thread that the OS has descheduled) runs on
# one thread for its next _SINGLE_CALLS calls, then tries the threads again.
_MIN_SPEEDUP = 1.1
_SINGLE_CALLS = 16
_sites = {}  # (code object, number of tasks) -> calls left on one thread


def _run_threads(func, tasks, n_workers, adaptive=False):
    """``[func(t) for t in tasks]`` on ``n_workers`` threads of this process,
    tasks taken as threads become free; BLAS (and OpenMP, with several threads)
    run on one thread meanwhile. scikit-learn's configuration follows the tasks.

    With ``adaptive`` (the engine chose ``n_workers`` itself), a call site whose
    threads did not pay runs on one thread for a while (``_MIN_SPEEDUP``)."""
    n_workers = max(1, min(n_workers, len(tasks)))
    site = (getattr(func, "__code__", None), len(tasks))
    if adaptive and n_workers > 1 and site[0] is not None:
        left = _sites.get(site, 0)
        if left > 0:
            _sites[site] = left - 1
            n_workers = 1
    if n_workers == 1:
        with _one_thread(("blas",)):
            return [_as_task(func, t) for t in tasks]
    config = get_config()
    cpu = []

    def run(task):
        start = time.thread_time()
        with config_context(**config):
            result = _as_task(func, task)
        cpu.append(time.thread_time() - start)
        return result

    with _one_thread(("blas", "openmp")):
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            results = list(pool.map(run, tasks))
        wall = time.perf_counter() - start
    if adaptive and site[0] is not None:
        speedup = sum(cpu) / max(wall, 1e-9)
        _sites[site] = _SINGLE_CALLS if speedup < _MIN_SPEEDUP else 0
    return results


def _as_task(func, task):
    """``func(task)``, marked as one of the engine's tasks (:func:`engine_threads`)."""
    _worker.depth = getattr(_worker, "depth", 0) + 1
    try:
        return func(task)
    finally:
        _worker.depth -= 1


def map_slices(func, n_items, rows, n_jobs):
    """Run ``func(slice)`` on slices of ``range(n_items)`` over the engine's threads.

    The slices are whole chunks of ``rows`` items, at most ``_MAX_TASKS`` of them,
    whatever the number of threads (:func:`engine_threads` of ``n_jobs``), so a sum
    of their results does not depend on it; threads take them as they become free.
    BLAS runs on one thread inside (small, cache-sized GEMMs lose to BLAS's thread
    synchronisation, badly on a loaded machine). The threads are threads of this
    process whatever joblib backend is active (``func`` may write into shared
    arrays): spreading work over processes or a cluster happens above the engine,
    by chunks of queries (:func:`map_query_chunks`). Returns the list of results,
    in slice order.
    """
    return _run_threads(
        func,
        _task_slices(n_items, rows),
        engine_threads(n_jobs),
        adaptive=_engine_chooses(n_jobs),
    )


def _stack(parts):
    """Stack the per-chunk results of :func:`map_query_chunks` along the rows."""
    first = parts[0]
    if isinstance(first, tuple):
        return tuple(_stack(list(column)) for column in zip(*parts, strict=True))
    if sparse.issparse(first):
        return sparse.vstack(parts, format="csr")
    return np.concatenate(parts, axis=0)


def map_query_chunks(func, X, n_jobs, *args):
    """``func(X, *args)`` computed on chunks of the query rows of ``X`` in
    parallel, and stacked along the rows.

    Every query's result depends on that query alone, so the chunks can run
    anywhere. By default, and under a local joblib backend, they run on the
    engine's threads (:func:`engine_threads`: every core unless ``n_jobs``, a
    joblib context or a thread limit says otherwise), with BLAS on one thread each.
    Under any other joblib backend (``joblib.parallel_config(backend="dask")``) they
    go through joblib, ``n_jobs`` tasks or as many as the backend has workers, with
    the fitted estimator shipped to each task. ``func`` returns an array, a sparse
    matrix or a tuple of them, with one row per query.
    """
    n_queries = X.shape[0]
    backend, _ = get_active_backend()
    if type(backend).__name__ in _LOCAL_BACKENDS:
        # The same slices whatever the number of threads: each query's result is
        # then bit for bit the same with any n_jobs (a GEMM's rounding may depend
        # on the shape of the block its row sits in).
        tasks = _task_slices(n_queries, _MIN_TASK_ROWS)
        if len(tasks) == 1:
            return func(X, *args)
        parts = _run_threads(
            lambda s: func(X[s], *args),
            tasks,
            engine_threads(n_jobs),
            adaptive=_engine_chooses(n_jobs),
        )
        return _stack(parts)
    n_tasks = max(1, min(effective_n_jobs(n_jobs), -(-n_queries // _MIN_TASK_ROWS)))
    if n_tasks == 1:
        return func(X, *args)
    # Each chunk travels inside a tuple: joblib's Dask backend then sends it with
    # its task instead of scattering it (it scatters large weakrefable arguments,
    # and a chunk is used once).
    with threadpool_limits(limits=1):
        parts = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(_apply)(func, (X[s],), args)
            for s in gen_even_slices(n_queries, n_tasks)
        )
    return _stack(parts)


def _apply(func, packed_rows, args):
    return func(packed_rows[0], *args)


def prepare_keys(
    keys,
    values,
    *,
    kernel="gaussian",
    scale=None,
    key_weights=None,
    dtype=None,
    unit_weights=None,
):
    """Keys, values and weights prepared once: a :class:`PreparedKeys`.

    Its :meth:`~PreparedKeys.pool` pools the values for queries (or leave-one-out);
    :func:`attention_pool` also takes it in place of ``keys`` (its ``values``,
    ``kernel``, ``scale``, ``key_weights`` and ``dtype`` must then be None), and
    threads that pool chunks of queries share one copy. The parameters are those
    of :func:`attention_pool`; ``unit_weights`` is the weight of one copy of each
    key (1 by default, a class weight for classifiers), which leave-one-out takes
    out of the row's own key."""
    kernel = get_kernel(kernel)
    keys = np.asarray(keys)
    dtype = np.dtype(keys.dtype if dtype is None else dtype)
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    if scale is None:
        scale = np.ones(keys.shape[1])
    return PreparedKeys(keys, values, scale, key_weights, kernel, dtype, unit_weights)


def attention_pool(
    queries,
    keys,
    values,
    *,
    kernel=None,
    scale=None,
    key_weights=None,
    loo=False,
    n_jobs=None,
    return_weights=False,
    return_stats=False,
    dtype=None,
):
    """Kernel attention pooling of ``values`` for every query.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, n_features) or None
        The queries. Must be None when ``loo=True`` (the keys are the queries).
    keys : ndarray of shape (n_keys, n_features) or prepared keys
        The keys, or the result of :func:`prepare_keys`, which carries the
        values, kernel, scale, key weights and dtype: those must then be None.
    values : ndarray of shape (n_keys, n_outputs) or None
        The values pooled for each query.
    kernel : str or Kernel, default=None
        Kernel name (see :mod:`skattn._kernels`); None means "gaussian".
    scale : ndarray of shape (n_features,), default=None
        Inverse bandwidths ``1 / h``; None means ones.
    key_weights : ndarray of shape (n_keys,), default=None
        Positive key weights (sample weights acting as repetition); None means ones.
    loo : bool, default=False
        Leave-one-out mode: each key is a query and its own weight becomes ``w - 1``.
    n_jobs : int, default=None
        Threads over chunks of queries.
    return_weights : bool, default=False
        Also return the dense (n_queries, n_keys) weight matrix.
    return_stats : bool, default=False
        Also return, for every query, the entropy of its weights (in nats) and the
        effective number of keys ``1 / sum_j p_j^2``, a key of weight ``w`` counting
        as ``w`` copies.
    dtype : dtype, default=None
        Working dtype (float32 or float64); None means that of ``keys``.

    Returns
    -------
    pooled : ndarray of shape (n_queries, n_outputs)
        In the dtype of ``values`` (at least that of the working dtype).
    weights : ndarray of shape (n_queries, n_keys)
        Only if ``return_weights``, in the working dtype.
    stats : ndarray of shape (n_queries, 2)
        Only if ``return_stats``: entropy and effective number of keys.
    """
    if isinstance(keys, PreparedKeys):
        given = {
            "values": values,
            "kernel": kernel,
            "scale": scale,
            "key_weights": key_weights,
            "dtype": dtype,
        }
        ignored = sorted(name for name, value in given.items() if value is not None)
        if ignored:
            raise TypeError(
                f"attention_pool got prepared keys and {', '.join(ignored)}: prepared "
                "keys carry them already; pass them to prepare_keys instead."
            )
        prepared = keys
    else:
        prepared = prepare_keys(
            keys,
            values,
            kernel="gaussian" if kernel is None else kernel,
            scale=scale,
            key_weights=key_weights,
            dtype=dtype,
        )
    return prepared.pool(
        queries,
        loo=loo,
        n_jobs=n_jobs,
        return_weights=return_weights,
        return_stats=return_stats,
    )
