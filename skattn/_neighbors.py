"""Top-k and radius attention: each query attends only to its candidate keys.

Dense attention costs O(n_queries x n_keys). Far keys get negligible weight (none at
all outside a compact kernel's support), so for large data each query can attend to
its nearest keys only. The candidates come from
:class:`sklearn.neighbors.NearestNeighbors` (trees or brute force, as scikit-learn
chooses) in the scaled feature space, where the kernel sees the distances, or from
the sparse graph of a neighbours transformer in the convention of
:class:`sklearn.neighbors.KNeighborsTransformer` (approximate nearest-neighbour
libraries); the squared distances to the candidates are then recomputed exactly
and pooled with the same numerics as the dense engine: the row maximum is
subtracted before ``exp``, and a query with no candidate inside a compact kernel's
support attends to its nearest candidate(s), ties sharing by weight.

Error of top-k with a kernel of full support: let ``r_k`` be the scaled distance of
the query's k-th nearest key, ``S`` the kernel mass ``sum_j w_j K(r_j)`` of the k
candidates and ``W_out`` the weight of the other keys. Each of them has
``K <= K(r_k)``, so their mass is at most ``E = W_out K(r_k)``, and the dense
prediction differs from the top-k one by at most ``E / (S + E)`` times the range of
the values (a convex combination moves by at most its mixing weight times the range).
"""

# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral

import numpy as np
from scipy import sparse
from sklearn.base import clone
from sklearn.neighbors import NearestNeighbors

from skattn._engine import (
    scaled_rows,
    segment_weights,
    weight_statistics,
    weighted_mean,
)
from skattn._kernels import KERNELS
from skattn.utils._sklearn_compat import HasMethods, Interval, StrOptions

__all__ = [
    "NEIGHBORS_CONSTRAINT",
    "CandidateKeys",
    "candidate_attention_pool",
    "check_neighbors",
]

# Neighbours fetched beyond the nearest for the rows of radius mode with no key in
# the support, to catch keys tied with the nearest in one search.
_EXTRA_TIES = 7
# Entries (query, candidate) per chunk: bounds the (entries, n_features) temporaries.
_CHUNK_ENTRIES = 1 << 18
# Keys whose distance in the index space is within this of the last neighbour's are
# tied with it (the search's own rounding may tell exact ties apart).
_TIE_RTOL = 1e-9
_TIE_ATOL = 1e-150

# The values ``n_neighbors`` takes: None (dense), an int (top-k), "radius" (a compact
# kernel's support) or a neighbours transformer that makes a sparse graph.
NEIGHBORS_CONSTRAINT = [
    Interval(Integral, 1, None, closed="left"),
    StrOptions({"radius"}),
    HasMethods(["fit", "transform"]),
    None,
]


def check_neighbors(n_neighbors, kernel):
    """Refuse ``n_neighbors="radius"`` with a kernel of full support."""
    if isinstance(n_neighbors, str) and not kernel.compact:
        compact = ", ".join(repr(k) for k in KERNELS if KERNELS[k].compact)
        raise ValueError(
            f"n_neighbors='radius' needs a compact kernel (one of {compact}); "
            f"kernel={kernel.name!r} gives every key some weight. Use an int "
            "n_neighbors for top-k attention."
        )


class CandidateKeys:
    """A neighbour index over the scaled keys, fitted once in ``fit``.

    The index lives in the space where the kernel takes distances, centred on the
    keys' mean and divided by one power of two so that its coordinates are at most
    1 in magnitude: a global scale changes no neighbour, and the search's distances
    then neither overflow nor underflow whatever the bandwidths (a bandwidth of
    1e-160, float32 data near 1e-41). The true scaled squared distances are the
    index's times ``2 ** sq_exponent``.

    Parameters
    ----------
    features : ndarray of shape (n_keys, n_features)
        Keys in the estimator's feature space (raw, or projected).
    scale : ndarray of shape (n_features,)
        Inverse bandwidths in that space.
    n_neighbors : int, "radius" or transformer
        The number of nearest keys each query attends to (at most ``n_keys``;
        every key tied with the last of them comes too); "radius": every key
        within ``radius``; or an unfitted transformer in the convention of
        :class:`~sklearn.neighbors.KNeighborsTransformer`: cloned, fitted on the
        keys in the index space, and its ``transform`` of the queries is a sparse
        graph of shape (n_queries, n_keys) whose stored entries are each query's
        candidates (their values are not used: distances are recomputed).
    radius : float
        The kernel's support radius (used with "radius").
    key_weights : ndarray of shape (n_keys,), default=None
        The keys' weights, for the centre; None means equal.
    """

    def __init__(self, features, scale, n_neighbors, radius, key_weights=None):
        features = np.asarray(features, dtype=np.float64)
        self.n_keys = features.shape[0]
        self.center = weighted_mean(features, key_weights)
        self.scale = np.asarray(scale, dtype=np.float64)
        z = scaled_rows(features, self.center, self.scale, np.float64)
        self.exponent = int(np.frexp(np.max(np.abs(z), initial=0.0))[1])
        self.sq_exponent = 2 * self.exponent
        self.z_keys = z_keys = np.ldexp(z, -self.exponent)
        self.radius = float(np.ldexp(radius, -self.exponent))  # in the index space
        self.k = None
        self.transformer = None
        if hasattr(n_neighbors, "transform"):
            self.mode = "graph"
            self.transformer = clone(n_neighbors).fit(z_keys)
            return
        if n_neighbors == "radius":
            self.mode = "radius"
        else:
            self.mode = "top_k"
            self.k = min(int(n_neighbors), self.n_keys)
        # One thread per search: the queries are spread over threads (or a
        # cluster) by chunks, above this index.
        self.index = NearestNeighbors(n_neighbors=self.k or 1, algorithm="auto").fit(
            z_keys
        )

    def transform(self, X):
        """Queries in the index space (float64)."""
        z = scaled_rows(np.asarray(X, np.float64), self.center, self.scale, np.float64)
        return np.ldexp(z, -self.exponent)

    @property
    def complete(self):
        """Whether the candidates hold every key of non-zero kernel weight."""
        return self.mode == "radius"

    def candidates(self, z_queries, loo=False):
        """CSR structure ``(indptr, indices)`` of every query's candidate keys,
        each row's in increasing order (so that every search rounds alike).

        Every query gets at least one candidate: in radius mode, a query with no key
        within the radius gets its nearest key(s). With ``loo`` the queries are the
        keys themselves (leave-one-out): top-k takes one neighbour more, to keep k
        candidates besides the row itself, and in radius mode a row with no other
        key within the radius also gets its nearest other key(s).
        """
        n = z_queries.shape[0]
        if self.mode == "graph":
            return self._graph_candidates(z_queries)
        if self.mode == "top_k":
            k = min(self.k + 1, self.n_keys) if loo else self.k
            if k == self.n_keys:
                indices = np.broadcast_to(np.arange(k, dtype=np.int64), (n, k))
                indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
                return indptr, indices.ravel().copy()
            distances, indices = self.index.kneighbors(z_queries, n_neighbors=k + 1)
            # Keys tied with the k-th come too, so that the candidates do not
            # depend on the order of the training rows (duplicates, symmetry).
            limit = distances[:, k - 1] * (1 + _TIE_RTOL) + _TIE_ATOL
            tied = np.flatnonzero(distances[:, k] <= limit)
            counts = np.full(n, k, dtype=np.int64)
            extra = self._within(
                z_queries[tied], distances[tied], indices[tied], limit[tied]
            )
            counts[tied] = [len(f) for f in extra]
            indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(counts, out=indptr[1:])
            flat = np.empty(indptr[-1], dtype=np.int64)
            untied = np.ones(n, dtype=bool)
            untied[tied] = False
            first = np.sort(indices[untied, :k], axis=1)
            flat[indptr[:-1][untied, None] + np.arange(k)] = first
            for row, f in zip(tied, extra, strict=True):
                flat[indptr[row] : indptr[row + 1]] = np.sort(f)
            return indptr, flat
        found = self.index.radius_neighbors(
            z_queries, radius=self.radius, return_distance=False
        )
        if loo:
            empty = np.flatnonzero(
                [not np.any(f != row) for row, f in enumerate(found)]
            )
            n_nearest = 2  # the row itself, at distance 0, and its nearest other key
        else:
            empty = np.flatnonzero([len(f) == 0 for f in found])
            n_nearest = 1
        if empty.size:
            self._add_nearest(z_queries, found, empty, n_nearest)
        return self._structure(found, n)

    @staticmethod
    def _structure(found, n):
        """CSR structure of a list of index arrays, each row sorted."""
        counts = np.fromiter((len(f) for f in found), dtype=np.int64, count=n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        indices = (
            np.concatenate([np.sort(f) for f in found]).astype(np.int64, copy=False)
            if n
            else np.empty(0, dtype=np.int64)
        )
        return indptr, indices

    def pool(
        self,
        X,
        values,
        *,
        kernel,
        key_weights,
        loo=False,
        unit_weights=None,
        **returns,
    ):
        """Search the candidates of each query (rows of ``X`` in the estimator's
        feature space; None in leave-one-out mode, where the keys are the queries)
        and pool ``values`` over them with :func:`candidate_attention_pool`, in
        the values' dtype (``returns``: its ``return_*`` flags)."""
        z_queries = self.z_keys if loo else self.transform(X)
        indptr, indices = self.candidates(z_queries, loo=loo)
        return candidate_attention_pool(
            z_queries,
            self.z_keys,
            values,
            indptr,
            indices,
            kernel=kernel,
            key_weights=key_weights,
            loo=loo,
            unit_weights=unit_weights,
            complete=self.complete,
            sq_exponent=self.sq_exponent,
            **returns,
        )

    def _add_nearest(self, z_queries, found, empty, n_nearest):
        """Give the rows ``empty`` their nearest key(s): the ``n_nearest``-th
        nearest (the row itself comes first in leave-one-out mode), and every key
        tied with it, which share the attention as in the dense engine.

        Ties are taken at about that distance: the pooling keeps the keys exactly
        at the minimum of the recomputed distances. A few extra neighbours catch
        them in one search; rows with more ties than that search again
        (:meth:`_within`).
        """
        n_fetch = min(n_nearest + _EXTRA_TIES, self.n_keys)
        rows = z_queries[empty]
        distances, neighbors = self.index.kneighbors(rows, n_neighbors=n_fetch)
        n_nearest = min(n_nearest, self.n_keys)
        limit = distances[:, n_nearest - 1] * (1 + _TIE_RTOL) + _TIE_ATOL
        for row, f in zip(
            empty, self._within(rows, distances, neighbors, limit), strict=True
        ):
            found[row] = f

    def _within(self, z_rows, distances, neighbors, limit):
        """Every key within ``limit`` of each row, from a first search's sorted
        ``distances`` and ``neighbors``: the rows whose last fetched key is still
        within search again, for twice as many neighbours each round, in one
        search per round. Returns one index array per row."""
        inside = distances <= limit[:, None]
        found = [neighbors[i, inside[i]] for i in range(len(z_rows))]
        fetch = distances.shape[1]
        more = np.flatnonzero(inside[:, -1]) if fetch else np.zeros(0, int)
        while more.size and fetch < self.n_keys:
            fetch = min(2 * fetch, self.n_keys)
            d, nb = self.index.kneighbors(z_rows[more], n_neighbors=fetch)
            inside = d <= limit[more, None]
            for r, row in enumerate(more):
                found[row] = nb[r, inside[r]]
            more = more[inside[:, -1]]
        return found

    def _graph_candidates(self, z_queries):
        graph = self.transformer.transform(z_queries)
        name = type(self.transformer).__name__
        if not sparse.issparse(graph):
            raise TypeError(
                f"n_neighbors={name}: its transform must return a scipy.sparse "
                f"neighbours graph (KNeighborsTransformer's convention); got "
                f"{type(graph).__name__}."
            )
        if graph.shape[1] != self.n_keys:
            raise ValueError(
                f"n_neighbors={name} returned a graph of {graph.shape[1]} columns; "
                f"expected {self.n_keys}, one per training row it was fitted on."
            )
        if graph.shape[0] != z_queries.shape[0]:
            raise ValueError(
                f"n_neighbors={name} returned a graph of {graph.shape[0]} rows for "
                f"{z_queries.shape[0]} queries; expected one row per query."
            )
        graph = sparse.csr_matrix(graph)  # keeps explicit zeros: they are neighbours
        graph.sum_duplicates()
        graph.sort_indices()
        if graph.shape[0] and np.diff(graph.indptr).min() < 1:
            raise ValueError(
                f"n_neighbors={name} returned a graph with a query row of no "
                "neighbour; every query needs at least one candidate key."
            )
        return (
            graph.indptr.astype(np.int64, copy=False),
            graph.indices.astype(np.int64, copy=False),
        )


def candidate_attention_pool(
    z_queries,
    z_keys,
    values,
    indptr,
    indices,
    *,
    kernel,
    key_weights,
    loo=False,
    unit_weights=None,
    return_weights=False,
    return_bound=False,
    return_stats=False,
    complete=False,
    sq_exponent=0,
):
    """Attention pooling of ``values`` over each query's candidate keys.

    Parameters
    ----------
    z_queries : ndarray of shape (n_queries, n_features)
        Scaled queries (the scaled keys in leave-one-out mode).
    z_keys : ndarray of shape (n_keys, n_features)
        Scaled keys.
    values : ndarray of shape (n_keys, n_outputs)
        Values of the keys.
    indptr, indices : ndarray of int
        CSR structure of the candidates; every row non-empty.
    kernel : Kernel
        The kernel.
    key_weights : ndarray of shape (n_keys,)
        Positive key weights.
    loo : bool, default=False
        Leave-one-out mode: query ``i`` is key ``i``, whose weight for it becomes
        ``w_i - u_i`` (sample weights act as repetition).
    unit_weights : ndarray of shape (n_keys,), default=None
        ``u_i``, the weight of one copy of each row (1 by default; a class weight),
        as in the dense engine.
    return_weights : bool, default=False
        Also return the weights as a CSR matrix of shape (n_queries, n_keys).
    return_bound : bool, default=False
        Also return, per query, the bound of the module's notes on the difference
        from dense attention (for the values' range 1): 0 in radius mode or when the
        candidates are all keys.
    return_stats : bool, default=False
        Also return each query's entropy of the weights and effective number of
        keys, a key of weight ``w`` counting as ``w`` copies (as the dense engine).
    complete : bool, default=False
        Whether the candidates hold every key of non-zero kernel weight (radius
        mode): then the result is exact and the bound 0.
    sq_exponent : int, default=0
        The scaled squared distances are those of ``z_queries`` and ``z_keys``
        times ``2 ** sq_exponent`` (:class:`CandidateKeys`' index space); where
        that overflows, the index's distances still order the keys.

    Returns
    -------
    pooled : ndarray of shape (n_queries, n_outputs)
        In the dtype of ``values`` (float64 for integer values).
    weights : scipy.sparse.csr_matrix of shape (n_queries, n_keys)
        Only if ``return_weights``.
    bound : ndarray of shape (n_queries,)
        Only if ``return_bound``.
    stats : ndarray of shape (n_queries, 2)
        Only if ``return_stats``: entropy and effective number of keys.
    """
    n_queries = z_queries.shape[0]
    n_keys = z_keys.shape[0]
    values = np.asarray(values)
    dtype = values.dtype if values.dtype.kind == "f" else np.dtype(np.float64)
    values_min = values.min(axis=0, initial=np.inf)
    values_max = values.max(axis=0, initial=-np.inf)
    counts = np.diff(indptr)
    if n_queries and counts.min() < 1:
        raise ValueError("Every query needs at least one candidate key.")
    key_weights = np.asarray(key_weights, dtype=np.float64)
    unit = np.ones(n_keys) if unit_weights is None else np.asarray(unit_weights, float)
    pooled = np.empty((n_queries, values.shape[1]), dtype=dtype)
    data = np.empty(len(indices)) if return_weights else None
    bound = np.zeros(n_queries) if return_bound else None
    stats = np.empty((n_queries, 2)) if return_stats else None
    total_weight = key_weights.sum()

    rows_per_chunk = max(1, _CHUNK_ENTRIES // max(1, int(counts.max(initial=1))))
    for start in range(0, n_queries, rows_per_chunk):
        stop = min(start + rows_per_chunk, n_queries)
        lo, hi = indptr[start], indptr[stop]
        ind = indices[lo:hi]
        starts = indptr[start:stop] - lo
        rows = np.repeat(np.arange(stop - start), counts[start:stop])
        diff = z_queries[start:stop][rows] - z_keys[ind]
        sq_index = np.einsum("ij,ij->i", diff, diff)
        with np.errstate(over="ignore"):
            sq = np.ldexp(sq_index, sq_exponent)
        # Each candidate's weight for its query; the row's own key keeps w - u.
        cand_w = key_weights[ind]
        if loo:
            own = ind == rows + start
            cand_w[own] = np.maximum(cand_w[own] - unit[ind[own]], 0.0)
        with np.errstate(divide="ignore"):
            log_w = np.log(cand_w)
        p = segment_weights(kernel, sq, log_w, starts, proxy=sq_index)
        chunk = np.add.reduceat(p[:, None] * values[ind], starts, axis=0)
        pooled[start:stop] = np.clip(chunk, values_min, values_max)
        if return_weights:
            data[lo:hi] = p
        if return_stats:
            stats[start:stop] = weight_statistics(p, cand_w, starts)
        if return_bound and not complete:
            # E / (S + E) with S = sum of the candidates' w K, E = W_out * K(r_k),
            # both relative to the largest candidate's w K (a far query's kernel
            # values may all underflow).
            k_counts = counts[start:stop]
            log_kw = kernel.log_kernel(sq, np.empty_like(sq)) + log_w
            top = np.maximum.reduceat(log_kw, starts)
            finite_top = np.where(np.isfinite(top), top, 0.0)
            with np.errstate(under="ignore"):
                norm = np.add.reduceat(np.exp(log_kw - finite_top[rows]), starts)
            far = np.maximum.reduceat(sq, starts)
            log_k_far = kernel.log_kernel(far, np.empty_like(far))
            w_in = np.add.reduceat(cand_w, starts)
            own_unit = unit[start:stop] if loo else 0.0
            w_out = np.maximum(total_weight - own_unit - w_in, 0.0)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                log_e = np.log(w_out) + log_k_far - finite_top
                b = 1.0 / (1.0 + norm * np.exp(-log_e))
            b[(w_out <= 0) | (k_counts >= n_keys) | ~(log_e > -np.inf)] = 0.0
            bound[start:stop] = b
    result = (pooled,)
    if return_weights:
        weights = sparse.csr_matrix(
            (data, indices.copy(), indptr.copy()), shape=(n_queries, n_keys)
        )
        result += (weights,)
    if return_bound:
        result += (bound,)
    if return_stats:
        result += (stats,)
    return result if len(result) > 1 else pooled
