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

CV+ (the same paper) leaves out folds instead of rows: with ``s_qk`` the
attention query ``q`` gives fold ``k``, the prediction without the fold is
``(y_hat(q) - sum_{j in k} p_qj y_j) / (1 - s_qk)``, and each row's residual is
the one of the prediction without its fold; the bounds are taken as for
jackknife+. The folds are order-free: the distinct training rows (features and
target), sorted, are dealt to ``CV_FOLDS`` folds in turn, so repeated rows share
a fold (weights act as repetition) and a permutation of the rows changes nothing.

Quantiles: with signed residuals ``r_j = y_j - y_hat_{-j}(x_j)`` the values
``y_hat_{-j}(q) + r_j`` form the jackknife+ (or CV+) predictive distribution at
``q``: its quantile ``tau`` is the ``ceil(tau (N + 1))``-th smallest for ``tau >=
1/2`` and the ``floor(tau (N + 1))``-th smallest below (each a one-sided bound of
the method, infinite beyond the data's ranks). The "quantile" method instead takes
the quantiles of the attention-weighted empirical distribution of the training
targets at ``q`` (the smallest target whose cumulated attention reaches ``tau``,
numpy's "inverted_cdf" with the attention as weights): the idea of R np's
``npqreg``, with no finite-sample guarantee.

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
    "CV_FOLDS",
    "METHODS",
    "fold_out_at_queries",
    "interval_rows",
    "jackknife_plus",
    "leave_one_out_at_queries",
    "LocalLinearQuantiles",
    "make_method",
    "plus_quantiles",
    "quantile_rows",
    "noise_variances",
    "standard_error_rows",
    "weighted_quantiles",
]

# Shares of one copy above this are recomputed exactly (the formula's cancellation
# would cost more than 3 digits).
_EXACT_SHARE = 1.0 - 1e-3
# Folds of the cv+ method.
CV_FOLDS = 10
METHODS = ("jackknife+", "cv+", "quantile")


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


def cv_folds(raw, values, n_folds=CV_FOLDS):
    """Fold labels of the training rows (``raw`` features, ``values`` targets):
    the distinct rows, sorted, dealt to ``min(n_folds, distinct rows)`` folds in
    turn. Raises ValueError with fewer than two distinct rows."""
    rows = np.column_stack([raw, values])
    _, group = np.unique(rows, axis=0, return_inverse=True)
    group = np.asarray(group).reshape(-1)
    n_groups = int(group.max(initial=-1)) + 1
    if n_groups < 2:
        raise ValueError(
            "method='cv+' needs at least two distinct training rows to leave a "
            "fold out; use method='jackknife+'."
        )
    return group % min(n_folds, n_groups)


def fold_out_at_queries(keys, fold_keys, values, folds, queries):
    """Predictions at ``queries`` with each fold of keys left out.

    Parameters
    ----------
    keys : PreparedKeys
        Dense keys prepared with ``values`` (float64).
    fold_keys : list of PreparedKeys
        ``fold_keys[k]``: the keys outside fold ``k``, prepared with their values
        (the exact path, where fold ``k`` takes almost all of a query's attention).
    values : ndarray of shape (n_keys, n_outputs)
    folds : ndarray of shape (n_keys,)
        Each key's fold, ``0 .. len(fold_keys) - 1``.
    queries : ndarray of shape (n_queries, n_features)

    Returns
    -------
    out : ndarray of shape (n_queries, n_folds, n_outputs)
    n_effective : ndarray of shape (n_queries,)
    """
    predictions, weights, stats = keys.pool(
        queries, return_weights=True, return_stats=True, n_jobs=1
    )
    n_folds = len(fold_keys)
    one_hot = np.zeros((keys.n_keys, n_folds))
    one_hot[np.arange(keys.n_keys), folds] = 1.0
    shares = weights @ one_hot  # (n_queries, n_folds)
    # values divided by a power of two (exact): no overflow near the float64 limit
    exponent = np.frexp(np.max(np.abs(values), axis=0, initial=0.0))[1]
    scaled = np.ldexp(values, -exponent)
    partial = np.einsum("qj,jk,jo->qko", weights, one_hot, scaled)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (np.ldexp(predictions, -exponent)[:, None, :] - partial) / (1.0 - shares)[
            :, :, None
        ]
    for a, k in zip(*np.nonzero(shares > _EXACT_SHARE), strict=True):
        out[a, k] = np.ldexp(
            fold_keys[k].pool(queries[a : a + 1], n_jobs=1)[0], -exponent
        )
    out = np.ldexp(out, exponent)
    # a convex combination of the other folds' values: within the values' range
    np.clip(out, values.min(axis=0), values.max(axis=0), out=out)
    return out, stats[:, 1]


def _weighted_rank_value(values, counts, rank):
    """Along the last axis: the value at ``rank`` (1-based, in copies) of the sorted
    ``values``, each counted ``counts`` times; -inf where the rank is below 1 and
    +inf where it is above the number of copies."""
    if rank < 1 - 1e-9:
        return np.full(values.shape[:-1], -np.inf)
    if rank > counts.sum() + 1e-9:
        return np.full(values.shape[:-1], np.inf)
    if np.all(counts == 1.0):
        # one copy each: a selection, O(n) per query instead of a sort
        k = int(round(rank)) - 1
        return np.partition(values, k, axis=-1)[..., k]
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


def plus_quantiles(left_out, residuals, counts, quantiles):
    """Quantiles of the jackknife+ predictive distribution at the queries.

    Parameters
    ----------
    left_out : ndarray of shape (n_queries, n_keys, n_outputs)
    residuals : ndarray of shape (n_keys, n_outputs)
        Signed, ``y_j - y_hat_{-j}(x_j)``.
    counts : ndarray of shape (n_keys,)
    quantiles : sequence of float in (0, 1)

    Returns
    -------
    values : ndarray of shape (n_queries, n_quantiles, n_outputs)
    """
    total = float(counts.sum())
    scores = np.swapaxes(left_out + residuals[None], 1, 2)
    out = np.empty((left_out.shape[0], len(quantiles), left_out.shape[2]))
    for i, tau in enumerate(quantiles):
        if tau >= 0.5:
            rank = np.ceil(tau * (total + 1.0) - 1e-9)
        else:
            rank = np.floor(tau * (total + 1.0) + 1e-9)
        out[:, i] = _weighted_rank_value(scores, counts, rank)
    return out


def weighted_quantiles(weights, values, quantiles):
    """Quantiles of the attention-weighted empirical distribution of ``values``.

    ``weights`` of shape (n_queries, n_keys), rows summing to 1; ``values`` of
    shape (n_keys, n_outputs). For each query and output, the smallest value whose
    cumulated weight (values in increasing order) reaches ``tau`` of the row's
    total. Returns an array of shape (n_queries, n_quantiles, n_outputs).
    """
    out = np.empty((weights.shape[0], len(quantiles), values.shape[1]))
    for o in range(values.shape[1]):
        order = np.argsort(values[:, o], kind="stable")
        positions = _inverted_cdf_positions(weights[:, order], quantiles)
        out[:, :, o] = values[order[positions], o]
    return out


def per_query_weighted_quantiles(weights, values, quantiles):
    """Weighted quantiles (numpy's "inverted_cdf") of values that differ per
    query: ``weights`` of shape (n_queries, n_keys), each row summing to 1,
    ``values`` (n_queries, n_keys, n_outputs); returns (n_queries, n_quantiles,
    n_outputs)."""
    weights = np.asarray(weights, dtype=np.float64)
    out = np.empty((values.shape[0], len(quantiles), values.shape[2]))
    for o in range(values.shape[2]):
        order = np.argsort(values[:, :, o], axis=1, kind="stable")
        ordered = np.take_along_axis(values[:, :, o], order, axis=1)
        positions = _inverted_cdf_positions(
            np.take_along_axis(weights, order, axis=1), quantiles
        )
        out[:, :, o] = np.take_along_axis(ordered, positions, axis=1)
    return out


def _inverted_cdf_positions(ordered_weights, quantiles):
    """For weights of shape (n_queries, n_keys) in the order of increasing
    values: the position of the first value whose cumulated weight reaches
    ``tau`` of the row's total, for each ``tau``: shape (n_queries, n_quantiles)."""
    cumulative = np.cumsum(ordered_weights, axis=1)
    total = cumulative[:, -1:]
    last = ordered_weights.shape[1] - 1
    return np.column_stack(
        [np.sum(cumulative < tau * total, axis=1).clip(max=last) for tau in quantiles]
    )


def _pooled_targets(pooled, queries):
    """Nadaraya-Watson: the pooled values are the predictions."""
    return pooled


class _Plus:
    """Jackknife+ or CV+ at the queries: the left-out predictions (method's own)
    and the signed residuals of the training rows.

    ``solve(pooled, queries)`` maps pooled values of shape (n_queries, k,
    n_values) to predictions (n_queries, k, n_outputs): the identity for
    Nadaraya-Watson, the local fits for local-linear pooling (its values the local
    moments)."""

    def __init__(self, keys, values, residuals, solve=_pooled_targets):
        self.keys = keys
        self.values = values
        self.residuals = residuals
        self.solve = solve
        self.counts = keys.w / keys.unit

    def interval(self, queries, coverage):
        left_out, n_effective = self.left_out(queries)
        bounds = jackknife_plus(left_out, np.abs(self.residuals), self.counts, coverage)
        return bounds, n_effective

    def quantiles(self, queries, quantiles):
        left_out, n_effective = self.left_out(queries)
        return plus_quantiles(left_out, self.residuals, self.counts, quantiles), (
            n_effective
        )


class JackknifePlus(_Plus):
    """Exact leave-one-out predictions at the queries
    (:func:`leave_one_out_at_queries`); ``residuals`` the training rows'
    leave-one-out residuals."""

    def left_out(self, queries):
        _, left_out, n_effective = leave_one_out_at_queries(
            self.keys, self.values, queries
        )
        return self.solve(left_out, queries), n_effective


class CVPlus(_Plus):
    """Predictions without each fold (:func:`fold_out_at_queries`); the
    residuals are those of each training row's prediction without its fold."""

    def __init__(self, keys, values, targets=None, solve=_pooled_targets, folds=None):
        targets = values if targets is None else targets
        self.folds = cv_folds(keys.raw, targets, CV_FOLDS) if folds is None else folds
        n_folds = int(self.folds.max()) + 1
        self.fold_keys = []
        residuals = np.empty_like(targets)
        for k in range(n_folds):
            inside = self.folds == k
            outside = keys.subset(~inside, values[~inside])
            self.fold_keys.append(outside)
            queries = keys.raw[inside]
            pooled = outside.pool(queries, n_jobs=1)
            residuals[inside] = (
                targets[inside] - solve(pooled[:, None, :], queries)[:, 0]
            )
        super().__init__(keys, values, residuals, solve)

    def left_out(self, queries):
        out, n_effective = fold_out_at_queries(
            self.keys, self.fold_keys, self.values, self.folds, queries
        )
        return self.solve(out, queries)[:, self.folds, :], n_effective


class _QuantileMethod:
    """A quantile method's interval of coverage ``c``: between its ``(1 - c) / 2``
    and ``(1 + c) / 2`` quantiles."""

    def interval(self, queries, coverage):
        return self.quantiles(queries, [(1.0 - coverage) / 2, (1.0 + coverage) / 2])


class AttentionQuantiles(_QuantileMethod):
    """Quantiles of the attention-weighted training targets
    (:func:`weighted_quantiles`); the interval of coverage ``c`` runs between the
    ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles."""

    def __init__(self, keys, values):
        self.keys = keys
        self.values = values

    def quantiles(self, queries, quantiles):
        _, weights, stats = self.keys.pool(
            queries, return_weights=True, return_stats=True, n_jobs=1
        )
        return weighted_quantiles(weights, self.values, quantiles), stats[:, 1]


class LocalLinearQuantiles(_QuantileMethod):
    """Quantiles of the targets moved along each query's local line,
    ``y_j - b(q).(x_j - q)``, weighted by the attention (the local-linear
    counterpart of :class:`AttentionQuantiles`: their weighted mean is the
    local-linear prediction). ``shifted(pooled, queries)`` gives those values,
    (n_queries, n_keys, n_outputs), from the pooled moments."""

    def __init__(self, keys, values, shifted):
        self.keys = keys
        self.values = values
        self.shifted = shifted

    def quantiles(self, queries, quantiles):
        pooled, weights, stats = self.keys.pool(
            queries, return_weights=True, return_stats=True, n_jobs=1
        )
        values = self.shifted(pooled, queries)
        return per_query_weighted_quantiles(weights, values, quantiles), stats[:, 1]


def make_method(method, keys, values, loo_residuals):
    """The interval method object of a ``method`` name (one of :data:`METHODS`,
    checked by the estimators) for Nadaraya-Watson pooling: ``keys`` the dense
    keys prepared with ``values`` (float64), ``loo_residuals`` the signed
    leave-one-out residuals of the training rows."""
    if method == "jackknife+":
        return JackknifePlus(keys, values, loo_residuals)
    if method == "cv+":
        return CVPlus(keys, values)
    return AttentionQuantiles(keys, values)


def interval_rows(queries, method, coverage):
    """Bounds (n_queries, 2, n_outputs) and the effective number of keys of some
    query rows by an interval ``method`` object (the task of
    :func:`~skattn._engine.map_query_chunks`), by chunks of rows."""
    return _by_chunks(queries, method, lambda chunk: method.interval(chunk, coverage))


def quantile_rows(queries, method, quantiles):
    """Quantiles (n_queries, n_quantiles, n_outputs) and the effective number of
    keys of some query rows, by chunks of rows."""
    return _by_chunks(queries, method, lambda chunk: method.quantiles(chunk, quantiles))


def _by_chunks(queries, method, task):
    n, o = method.values.shape
    rows = chunk_rows(n * o, 8, n_temporaries=4)
    # (no query: one empty chunk gives the shapes)
    starts = range(0, max(queries.shape[0], 1), rows)
    parts = [task(queries[s : s + rows]) for s in starts]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def noise_variances(dense, targets, loo, inflation, n_jobs):
    """The noise variance at each training row (per output), in units of
    ``2**exponent`` squared: the other rows' squared leave-one-out residuals
    ``targets - loo``, each divided by its variance factor ``inflation`` over the
    noise's, pooled by the attention of the ``dense`` head (leave-one-out). Targets
    and predictions are divided by the power of two of their largest magnitude
    (exact in binary) before the difference is taken and squared, so no target
    range overflows or underflows; standard errors computed from the variances are
    multiplied back by ``2**exponent``. Returns ``(variances, exponent)``."""
    largest = np.maximum(
        np.max(np.abs(targets), axis=0, initial=0.0),
        np.max(np.abs(loo), axis=0, initial=0.0),
    )
    exponent = np.frexp(largest)[1] + 1  # the difference stays finite too
    scaled = np.ldexp(targets, -exponent) - np.ldexp(loo, -exponent)
    keys = dense.prepare(scaled**2 / inflation[:, None], np.float64)
    return keys.pool(None, loo=True, n_jobs=n_jobs), exponent


def standard_error_rows(queries, keys, variances, smoother=None):
    """Pooled values, their standard errors and the effective number of keys at
    some query rows (the task of :func:`~skattn._engine.map_query_chunks`), by
    chunks of rows: with the smoother's weights ``l_qj`` and each training row's
    noise variance ``sigma_j^2`` (per output), ``Var y_hat(q) = sum_j l_qj^2
    sigma_j^2 / w_j`` (a row of weight ``w_j`` is ``w_j`` copies sharing its
    weight). ``l`` is the attention, or ``smoother(rows, pooled, weights)`` of the
    chunk's rows (a slice of ``queries``), its pooled values and its attention,
    for a linear smoother whose weights are not the attention's (local-linear's
    equivalent kernel, whose pooled values are its local moments)."""
    n = queries.shape[0]
    rows = chunk_rows(keys.n_keys, 8, n_temporaries=3 if smoother is None else 4)
    predictions = np.empty((n, keys.n_outputs))
    std = np.empty((n, variances.shape[1]))
    n_effective = np.empty(n)
    for start in range(0, n, rows):
        chunk = slice(start, min(start + rows, n))
        pooled, weights, stats = keys.pool(
            queries[chunk], return_weights=True, return_stats=True, n_jobs=1
        )
        predictions[chunk] = pooled
        n_effective[chunk] = stats[:, 1]
        if smoother is not None:
            weights = smoother(chunk, pooled, weights)
        weights *= weights
        std[chunk] = np.sqrt((weights / keys.w) @ variances)
    return predictions, std, n_effective
