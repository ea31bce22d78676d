"""Predictive uncertainty from the attention smoother itself.

Leave-one-out at new queries: removing one copy of training row ``j`` from the
keys removes one term from the numerator and the normaliser of every query's
pooling. With the attention weights ``p_qj`` and the share of one copy
``r_qj = p_qj u_j / w_j`` (``w_j`` the row's weight, ``u_j`` the weight of one
copy, 1 unless class weights), the prediction without it is

    y_hat_{-j}(q) = (y_hat(q) - r_qj y_j) / (1 - r_qj),

exactly the refit without that copy (the bandwidths or metric held fixed). Where
``r_qj`` is close to 1 (the query attends almost only to that row) the formula
cancels, and the pooling over the other keys is recomputed with the engine's exact
path (nearest-key fallback included).

Jackknife+ (Barber, Candes, Ramdas and Tibshirani, 2021): with the leave-one-out
residuals ``R_j = |y_j - y_hat_{-j}(x_j)|`` the interval at ``q`` runs from the
``floor(alpha (N + 1))``-th smallest of ``y_hat_{-j}(q) - R_j`` to the
``ceil((1 - alpha)(N + 1))``-th smallest of ``y_hat_{-j}(q) + R_j``, each row
counted ``w_j / u_j`` times (``N`` their sum, ``alpha = 1 - coverage``); a rank
below 1 or above ``N`` gives an infinite bound, as the method's guarantee needs.
Time O(n_queries x n_keys x n_outputs) (and a sort of each query's values), memory
one chunk of queries.

Standard errors of the fitted mean: the prediction is linear in the targets,
``y_hat(q) = sum_j p_qj y_j``, so with independent noise of variance
``sigma^2(x_j)`` its variance is ``sum_j p_qj^2 sigma^2(x_j)``. The noise
variance at each training row is estimated by the same attention pooling the
squared leave-one-out residuals of the other rows, ``sigma^2(x_i) = sum_{j != i}
p_ij r_j^2`` (a local, leave-one-out variance smoother; the residuals also carry
the smoother's bias, so where that is large the errors are overstated).
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

from skattn._engine import chunk_rows

__all__ = [
    "interval_rows",
    "jackknife_plus",
    "leave_one_out_at_queries",
    "standard_error_rows",
]

# Shares of one copy above this are recomputed exactly (the formula's cancellation
# would cost more than 3 digits).
_EXACT_SHARE = 1.0 - 1e-3


def leave_one_out_at_queries(keys, values, queries):
    """Predictions at ``queries`` with one copy of each key left out.

    Parameters
    ----------
    keys : PreparedKeys
        Dense keys prepared with ``values`` (float64).
    values : ndarray of shape (n_keys, n_outputs)
        The pooled values, as given to ``keys``.
    queries : ndarray of shape (n_queries, n_features)
        Query rows in the keys' space (before scaling).

    Returns
    -------
    predictions : ndarray of shape (n_queries, n_outputs)
    left_out : ndarray of shape (n_queries, n_keys, n_outputs)
        ``left_out[q, j]`` the prediction at query ``q`` without one copy of key
        ``j``.
    n_effective : ndarray of shape (n_queries,)
        The queries' effective number of keys (the engine's weight statistics).
    """
    predictions, weights, stats = keys.pool(
        queries, return_weights=True, return_stats=True, n_jobs=1
    )
    share = weights * (keys.unit / keys.w)
    with np.errstate(divide="ignore", invalid="ignore"):
        left_out = (predictions[:, None, :] - share[:, :, None] * values[None]) / (
            1.0 - share
        )[:, :, None]
    for a, j in zip(*np.nonzero(share > _EXACT_SHARE), strict=True):
        # the pooling of the other keys, from this query's logits: the engine's
        # leave-one-out mode with key j as the query's own
        q_raw = queries[a : a + 1]
        qz = keys.transform_queries(q_raw)
        row = np.empty((1, keys.n_keys), dtype=keys.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            keys.unnormalised_weights(qz, row)
            inexact = keys.distance_error_bound(qz) > keys.max_distance_error
            left_out[a, j] = keys.finish_chunk(
                row,
                np.array([j]),
                keys.exact_rows(qz, q_raw),
                inexact=inexact if inexact.any() else None,
            )[0]
    return predictions, left_out, stats[:, 1]


def _weighted_rank_value(values, counts, rank):
    """Along the last axis: the value at ``rank`` (1-based, in copies) of the sorted
    ``values``, each counted ``counts`` times; -inf where the rank is below 1 and
    +inf where it is above the number of copies."""
    if rank < 1 - 1e-9:
        return np.full(values.shape[:-1], -np.inf)
    if rank > counts.sum() + 1e-9:
        return np.full(values.shape[:-1], np.inf)
    order = np.argsort(values, axis=-1, kind="stable")
    cumulative = np.cumsum(counts[order], axis=-1)
    position = np.argmax(cumulative >= rank - 1e-9, axis=-1)
    ordered = np.take_along_axis(values, order, axis=-1)
    return np.take_along_axis(ordered, position[..., None], axis=-1)[..., 0]


def jackknife_plus(left_out, residuals, counts, coverage):
    """Jackknife+ bounds from leave-one-out predictions at the queries.

    Parameters
    ----------
    left_out : ndarray of shape (n_queries, n_keys, n_outputs)
    residuals : ndarray of shape (n_keys, n_outputs)
        ``|y_j - y_hat_{-j}(x_j)|``.
    counts : ndarray of shape (n_keys,)
        Copies of each key (``w / u``).
    coverage : float in (0, 1)

    Returns
    -------
    bounds : ndarray of shape (n_queries, 2, n_outputs)
    """
    alpha = 1.0 - coverage
    total = float(counts.sum())
    low_rank = np.floor(alpha * (total + 1.0) + 1e-9)
    high_rank = np.ceil((1.0 - alpha) * (total + 1.0) - 1e-9)
    # (n_queries, n_outputs, n_keys): the keys along the last axis
    lower = np.swapaxes(left_out - residuals[None], 1, 2)
    upper = np.swapaxes(left_out + residuals[None], 1, 2)
    bounds = np.empty((left_out.shape[0], 2, left_out.shape[2]))
    bounds[:, 0] = _weighted_rank_value(lower, counts, low_rank)
    bounds[:, 1] = _weighted_rank_value(upper, counts, high_rank)
    return bounds


def interval_rows(queries, keys, values, residuals, counts, coverage):
    """Jackknife+ bounds and the effective number of keys of some query rows (the
    task of :func:`~skattn._engine.map_query_chunks`), by chunks of rows."""
    n, o = values.shape
    rows = chunk_rows(n * o, 8, n_temporaries=4)
    out = np.empty((queries.shape[0], 2, o))
    n_effective = np.empty(queries.shape[0])
    for start in range(0, queries.shape[0], rows):
        chunk = queries[start : start + rows]
        _, left_out, n_effective[start : start + rows] = leave_one_out_at_queries(
            keys, values, chunk
        )
        out[start : start + rows] = jackknife_plus(
            left_out, residuals, counts, coverage
        )
    return out, n_effective


def standard_error_rows(queries, keys, variances):
    """Predictions, their standard errors and the effective number of keys at
    some query rows (the task of :func:`~skattn._engine.map_query_chunks`), by
    chunks of rows: with the
    attention weights ``p_qj`` and each training row's noise variance
    ``sigma_j^2`` (per output), ``Var y_hat(q) = sum_j p_qj^2 sigma_j^2 / w_j`` (a
    row of weight ``w_j`` is ``w_j`` copies sharing its attention)."""
    o = variances.shape[1]
    rows = chunk_rows(keys.n_keys, 8, n_temporaries=3)
    predictions = np.empty((queries.shape[0], o))
    std = np.empty((queries.shape[0], o))
    n_effective = np.empty(queries.shape[0])
    for start in range(0, queries.shape[0], rows):
        chunk = queries[start : start + rows]
        pooled, weights, stats = keys.pool(
            chunk, return_weights=True, return_stats=True, n_jobs=1
        )
        predictions[start : start + rows] = pooled
        n_effective[start : start + rows] = stats[:, 1]
        weights *= weights
        std[start : start + rows] = np.sqrt((weights / keys.w) @ variances)
    return predictions, std, n_effective
