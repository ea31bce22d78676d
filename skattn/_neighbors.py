"""Top-k and radius attention: each query attends only to its candidate keys.

Dense attention costs O(n_queries x n_keys). Far keys get negligible weight (none at
all outside a compact kernel's support), so for large data each query can attend to
its nearest keys only. The candidates come from
:class:`sklearn.neighbors.NearestNeighbors` (trees or brute force, as scikit-learn
chooses) in the scaled feature space, where
the kernel sees the distances; the squared distances to the candidates are then
recomputed exactly and pooled with the same numerics as the dense engine: the row
maximum is subtracted before ``exp``, and a query with no candidate inside a compact
kernel's support attends to its nearest candidate(s), ties sharing by weight.

Error of top-k with a kernel of full support: let ``r_k`` be the scaled distance of
the query's k-th nearest key, ``S`` the kernel mass ``sum_j w_j K(r_j)`` of the k
candidates and ``W_out`` the weight of the other keys. Each of them has
``K <= K(r_k)``, so their mass is at most ``E = W_out K(r_k)``, and the dense
prediction differs from the top-k one by at most ``E / (S + E)`` times the range of
the values (a convex combination moves by at most its mixing weight times the range).
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from scipy import sparse
from sklearn.neighbors import NearestNeighbors

__all__ = ["CandidateKeys", "candidate_attention_pool"]

# Entries (query, candidate) per chunk: bounds the (entries, n_features) temporaries.
_CHUNK_ENTRIES = 1 << 18


class CandidateKeys:
    """A neighbour index over the scaled keys, fitted once in ``fit``.

    Parameters
    ----------
    z_keys : ndarray of shape (n_keys, n_features)
        Keys in the space where the kernel takes distances (scaled by the
        bandwidths, or projected).
    n_neighbors : int or "radius"
        The number of nearest keys each query attends to (at most ``n_keys``), or
        "radius": every key within ``radius``.
    radius : float
        The kernel's support radius (used with "radius").
    n_jobs : int or None
        Passed to :class:`~sklearn.neighbors.NearestNeighbors`.
    """

    def __init__(self, z_keys, n_neighbors, radius, n_jobs):
        self.n_keys = z_keys.shape[0]
        self.z_keys = z_keys
        self.radius = radius
        self.k = None if n_neighbors == "radius" else min(n_neighbors, self.n_keys)
        self.index = NearestNeighbors(
            n_neighbors=self.k or 1, n_jobs=n_jobs, algorithm="auto"
        ).fit(z_keys)

    def candidates(self, z_queries):
        """CSR structure ``(indptr, indices)`` of every query's candidate keys.

        Every query gets at least one candidate: in radius mode, a query with no key
        within the radius gets its nearest key(s).
        """
        n = z_queries.shape[0]
        if self.k is not None:
            indices = self.index.kneighbors(z_queries, return_distance=False)
            indptr = np.arange(0, n * self.k + 1, self.k, dtype=np.int64)
            return indptr, indices.ravel().astype(np.int64, copy=False)
        found = self.index.radius_neighbors(
            z_queries, radius=self.radius, return_distance=False
        )
        empty = np.flatnonzero([len(f) == 0 for f in found])
        if empty.size:
            nearest, _ = self.index.kneighbors(z_queries[empty], n_neighbors=1)
            # Keys tied at the nearest distance share the attention, as in the dense
            # engine: fetch all keys at about that distance; the pooling keeps those
            # exactly at the minimum of the recomputed distances.
            for row, distance in zip(empty, nearest[:, 0], strict=True):
                found[row] = self.index.radius_neighbors(
                    z_queries[row : row + 1],
                    radius=distance * (1 + 1e-9) + 1e-300,
                    return_distance=False,
                )[0]
        counts = np.fromiter((len(f) for f in found), dtype=np.int64, count=n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        indices = (
            np.concatenate(found).astype(np.int64, copy=False)
            if n
            else np.empty(0, dtype=np.int64)
        )
        return indptr, indices


def candidate_attention_pool(
    z_queries,
    z_keys,
    values,
    indptr,
    indices,
    *,
    kernel,
    key_weights,
    return_weights=False,
    return_bound=False,
    complete=False,
):
    """Attention pooling of ``values`` over each query's candidate keys.

    Parameters
    ----------
    z_queries : ndarray of shape (n_queries, n_features)
        Scaled queries.
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
    return_weights : bool, default=False
        Also return the weights as a CSR matrix of shape (n_queries, n_keys).
    return_bound : bool, default=False
        Also return, per query, the bound of the module's notes on the difference
        from dense attention (for the values' range 1): 0 in radius mode or when the
        candidates are all keys.
    complete : bool, default=False
        Whether the candidates hold every key of non-zero kernel weight (radius
        mode): then the result is exact and the bound 0.

    Returns
    -------
    pooled : ndarray of shape (n_queries, n_outputs)
    weights : scipy.sparse.csr_matrix of shape (n_queries, n_keys)
        Only if ``return_weights``.
    bound : ndarray of shape (n_queries,)
        Only if ``return_bound``.
    """
    n_queries, n_features = z_queries.shape
    n_keys = z_keys.shape[0]
    dtype = np.result_type(z_queries.dtype, z_keys.dtype, values.dtype)
    log_w = np.log(key_weights)
    values_min, values_max = values.min(axis=0), values.max(axis=0)
    counts = np.diff(indptr)
    if n_queries and counts.min() < 1:
        raise ValueError("Every query needs at least one candidate key.")
    pooled = np.empty((n_queries, values.shape[1]), dtype=dtype)
    data = np.empty(len(indices), dtype=dtype) if return_weights else None
    bound = np.zeros(n_queries) if return_bound else None
    total_weight = key_weights.sum()

    rows_per_chunk = max(1, _CHUNK_ENTRIES // max(1, int(counts.max(initial=1))))
    for start in range(0, n_queries, rows_per_chunk):
        stop = min(start + rows_per_chunk, n_queries)
        lo, hi = indptr[start], indptr[stop]
        ind = indices[lo:hi]
        starts = indptr[start:stop] - lo
        rows = np.repeat(np.arange(stop - start), counts[start:stop])
        diff = z_queries[start:stop][rows] - z_keys[ind]
        sq = np.einsum("ij,ij->i", diff, diff)
        logits = kernel.log_kernel(sq, np.empty_like(sq))  # sq is kept
        logits += log_w[ind]
        row_max = np.maximum.reduceat(logits, starts)
        no_support = ~np.isfinite(row_max)
        e = np.exp(logits - np.where(no_support, 0.0, row_max)[rows])
        if no_support.any():
            # No candidate in the kernel's support: the nearest candidate(s).
            row_min = np.minimum.reduceat(sq, starts)
            fallback = no_support[rows]
            nearest = fallback & (sq == row_min[rows])
            e[fallback] = 0.0
            e[nearest] = key_weights[ind[nearest]]
        norm = np.add.reduceat(e, starts)
        p = e / norm[rows]
        chunk = np.add.reduceat(p[:, None] * values[ind], starts, axis=0)
        pooled[start:stop] = np.clip(chunk, values_min, values_max)
        if return_weights:
            data[lo:hi] = p
        if return_bound and not complete:
            # E / (S + E) with S = norm * exp(row_max), E = W_out * K(r_k).
            k_counts = counts[start:stop]
            far = np.maximum.reduceat(sq, starts)
            log_k_far = kernel.log_kernel(far, np.empty_like(far))
            w_in = np.add.reduceat(key_weights[ind], starts)
            w_out = np.maximum(total_weight - w_in, 0.0)
            with np.errstate(divide="ignore"):
                log_e = np.log(w_out) + log_k_far
                log_s = np.log(norm) + row_max
            with np.errstate(over="ignore", invalid="ignore"):
                b = 1.0 / (1.0 + np.exp(log_s - log_e))
            b[(w_out <= 0) | (k_counts >= n_keys) | np.isneginf(log_e)] = 0.0
            bound[start:stop] = b
    result = (pooled,)
    if return_weights:
        weights = sparse.csr_matrix(
            (data, indices.copy(), indptr.copy()), shape=(n_queries, n_keys)
        )
        result += (weights,)
    if return_bound:
        result += (bound,)
    return result if len(result) > 1 else pooled
