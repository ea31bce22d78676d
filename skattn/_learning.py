"""Learning the attention metric: the leave-one-out objective and its gradient.

The model pools the training targets with the engine's weights
``p_ij = softmax_{j != i}(log K(u_ij^2) + log w_j)`` (a row of weight ``w_i`` keeps
``w_i - 1`` copies of itself), where the squared scaled distance is

* ``u_ij^2 = sum_k (z_ik - z_jk)^2 exp(-2 theta_k)`` for the isotropic (one ``theta``)
  and diagonal metrics, ``theta`` the log-bandwidths, and
* ``u_ij^2 = ||L (z_i - z_j)||^2`` for the full metric, ``L`` of shape
  (n_components, n_features),

on standardised features ``z`` (centred, divided by each feature's spread; one common
spread for the isotropic metric). The objective is a leave-one-out loss of the pooled
values (:mod:`skattn._losses`): the weighted squared error divided by the weighted
total sum of squares, i.e. ``1 - R^2`` of the leave-one-out predictions (regression),
or the mean log loss of the pooled one-hot classes (classification), plus ``alpha``
times the squared norm of the parameters.

Gradient: with ``g_i = dL/dy_hat_i`` (``2 w_i (y_hat_i - y_i)`` for the squared
error, ``-w_i e_{c_i} / y_hat_i[c_i]`` for the log loss),
``dL/ds_ij = p_ij g_i . (y_j - y_hat_i)`` and
``A_ij = dL/d(u_ij^2) = dL/ds_ij * d log K / d(u^2)`` (zero on the diagonal), so for the
diagonal metric ``dL/dtheta_k = -2 sum_ij A_ij (zs_ik - zs_jk)^2``, which expands into
row sums, column sums and one GEMM ``A @ Zs``, and for the full metric
``dL/dL = 2 L sum_ij A_ij (z_i - z_j)(z_i - z_j)^T``. Everything is chunked over query
rows: O(n^2 d) time, O(chunk * n) memory, no n x n x d tensor.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

from skattn._bandwidth import MAX_BANDWIDTH, weighted_spread
from skattn._engine import chunk_rows, map_slices, prepare_keys, weighted_mean
from skattn._kernels import get_kernel
from skattn._losses import get_loss

__all__ = ["LeaveOneOutObjective", "LEARNABLE_KERNELS", "METRICS"]

LEARNABLE_KERNELS = ("gaussian", "exponential")
PARAM_BOUND = 25.0
# The most parameters a full metric may have (n_components * n_features): L-BFGS-B
# keeps about 20 vectors of them, 160 MiB at this size.
MAX_FULL_PARAMS = 2**20
METRICS = ("isotropic", "diagonal", "full")


class LeaveOneOutObjective:
    """The leave-one-out objective of attention pooling and its analytic gradient.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Training rows with positive weight.
    Y : ndarray of shape (n_samples, n_outputs)
        Targets.
    sample_weight : ndarray of shape (n_samples,)
        Positive weights, acting as repetition.
    kernel : {"gaussian", "exponential"}
        A kernel with full support, differentiable almost everywhere.
    metric : {"isotropic", "diagonal", "full"}
        The parametrisation.
    n_components : int
        Rows of ``L`` for the full metric.
    alpha : float
        L2 penalty on the parameters.
    n_jobs : int or None
        Threads over chunks of query rows.
    loss : {"squared", "log"}, default="squared"
        The loss of the pooled values (:mod:`skattn._losses`); "log" needs one-hot
        ``Y``.
    unit_weights : ndarray of shape (n_samples,), default=None
        The weight of one copy of each row (1 by default; a classifier's class
        weight): in leave-one-out, row ``i`` keeps ``w_i - u_i`` of its weight.
    """

    def __init__(
        self,
        X,
        Y,
        sample_weight,
        *,
        kernel,
        metric,
        n_components,
        alpha,
        n_jobs,
        loss="squared",
        unit_weights=None,
    ):
        self.kernel = get_kernel(kernel)
        self.loss = get_loss(loss)
        if self.kernel.dlog_dsq is None:
            raise ValueError(f"kernel {self.kernel.name!r} cannot be learned.")
        self.metric = metric
        self.alpha = float(alpha)
        self.n_jobs = n_jobs
        self.unit_weights = unit_weights
        X = np.asarray(X, dtype=np.float64)
        self.w = np.asarray(sample_weight, dtype=np.float64)
        self.Y, _ = self.loss.standardise(np.asarray(Y, dtype=np.float64), self.w)
        self.n_samples, self.n_features = X.shape
        self.n_components = n_components
        if metric == "full" and n_components * self.n_features > MAX_FULL_PARAMS:
            raise ValueError(
                f"metric='full' would learn n_components * n_features = "
                f"{n_components} * {self.n_features} = "
                f"{n_components * self.n_features:,} parameters, above the "
                f"{MAX_FULL_PARAMS:,} that L-BFGS-B can hold in memory and the data "
                "can inform; set n_components (say 10) or use metric='diagonal'."
            )
        self.center = weighted_mean(X, self.w)
        spread = weighted_spread(X, self.w)
        if metric == "isotropic":
            # the root mean square spread, free of overflow and underflow
            top = spread.max()
            spread = np.full(
                self.n_features, top * np.sqrt(np.mean((spread / top) ** 2))
            )
        self.spread = spread
        # divided before centring: no overflow for data near the float64 limit
        self.Z = X / spread - self.center / spread
        self.normaliser = self.loss.normaliser(self.Y, self.w)
        self.rows = chunk_rows(self.n_samples, 8, n_temporaries=3)

    # -- parameters <-> user-facing quantities -------------------------------------

    @property
    def bounds(self):
        """Box bounds of the parameters, (lower, upper), one array each:
        log-bandwidths within ``PARAM_BOUND`` of a feature's spread (and below
        ``MAX_BANDWIDTH``, a sixteenth of the float64 range), projection entries below
        ``exp(PARAM_BOUND)``. Beyond them nothing changes but overflow: a feature
        whose bandwidth is 1e-11 of its spread already separates every distinct
        value, and one at 1e11 is already ignored."""
        if self.metric == "full":
            bound = float(np.exp(PARAM_BOUND))
            return np.full(self.n_params, -bound), np.full(self.n_params, bound)
        upper = np.minimum(PARAM_BOUND, np.log(MAX_BANDWIDTH) - np.log(self.spread))
        if self.metric == "isotropic":
            upper = upper[:1]
        return -np.full(self.n_params, PARAM_BOUND), upper

    @property
    def n_params(self):
        if self.metric == "isotropic":
            return 1
        if self.metric == "diagonal":
            return self.n_features
        return self.n_components * self.n_features

    def params_from_bandwidth(self, bandwidth):
        """Log-bandwidths in standardised units from bandwidths in data units."""
        theta = np.log(np.asarray(bandwidth, dtype=float) / self.spread)
        return theta[:1].copy() if self.metric == "isotropic" else theta

    def bandwidth_from_params(self, params):
        """Bandwidths in data units, one per feature."""
        return self.spread * np.exp(np.broadcast_to(params, (self.n_features,)))

    def params_from_components(self, components):
        """``L`` (flattened) from a projection of the raw features."""
        return (np.asarray(components, dtype=float) * self.spread).ravel()

    def components_from_params(self, params):
        """The projection of the (centred) raw features, (n_components, n_features)."""
        return params.reshape(self.n_components, self.n_features) / self.spread

    def relevance(self, params):
        """Normalised squared influence of each feature on the learned distances."""
        if self.metric == "full":
            L = params.reshape(self.n_components, self.n_features)
            score = (L**2).sum(axis=0)
        else:
            score = np.exp(-2 * np.broadcast_to(params, (self.n_features,)))
        total = score.sum()
        if not np.isfinite(total) or total <= 0:
            return np.full(self.n_features, 1.0 / self.n_features)
        return score / total

    # -- objective ---------------------------------------------------------------

    def projected(self, params):
        """The features on which distances are plain Euclidean."""
        if self.metric == "full":
            return self.Z @ params.reshape(self.n_components, self.n_features).T
        return self.Z * np.exp(-np.broadcast_to(params, (self.n_features,)))

    def __call__(self, params, rows=None, candidates=None):
        """Objective and gradient at ``params``.

        Parameters
        ----------
        params : ndarray of shape (n_params,)
        rows : ndarray of int, default=None
            Query rows of a mini-batch (sorted); None means every row. With a
            mini-batch the value and gradient are unbiased estimates of the full ones.
        candidates : ndarray of int, default=None
            Sorted rows that serve as keys (sampled candidates); None means every
            row. A query row among them keeps ``w - 1`` copies of itself, as in
            the full objective; the softmax is invariant to scaling every key's
            weight alike, so a uniform sample of keys estimates the full attention.

        Returns
        -------
        loss : float
        grad : ndarray of shape (n_params,)
        """
        params = np.asarray(params, dtype=np.float64)
        projected = self.projected(params)
        key_rows = np.arange(self.n_samples) if candidates is None else candidates

        def of_keys(a):  # the rows that are keys (no copy when they all are)
            return a if candidates is None or a is None else a[candidates]

        keys = prepare_keys(
            of_keys(projected),
            of_keys(self.Y),
            kernel=self.kernel,
            key_weights=of_keys(self.w),
            dtype=np.float64,
            unit_weights=of_keys(self.unit_weights),
        )
        Y_keys, Z_keys = of_keys(self.Y), of_keys(self.Z)
        queries = np.arange(self.n_samples) if rows is None else np.asarray(rows)
        # Each query's own key among the keys (-1 if it is not a key).
        position = np.searchsorted(key_rows, queries).clip(max=len(key_rows) - 1)
        own = np.where(key_rows[position] == queries, position, -1)
        parts = map_slices(
            lambda s: self._partial(
                keys, Y_keys, Z_keys, projected, queries[s], own[s]
            ),
            len(queries),
            self.rows,
            self.n_jobs,
        )
        loss = sum(p[0] for p in parts)
        row_part = sum(p[1] for p in parts)
        col_sums = sum(p[2] for p in parts)
        cross = sum(p[3] for p in parts)
        if self.metric == "full":
            M = row_part + (Z_keys.T * col_sums) @ Z_keys - cross - cross.T
            L = params.reshape(self.n_components, self.n_features)
            grad = (2.0 * L @ M).ravel()
        else:
            zs = keys.z
            D = row_part + col_sums @ (zs * zs) - 2.0 * cross
            grad = -2.0 * D
            if self.metric == "isotropic":
                grad = np.array([grad.sum()])
        factor = 1.0 / self.normaliser
        if rows is not None:
            factor *= self.w.sum() / self.w[queries].sum()
        loss = loss * factor + self.alpha * float(params @ params)
        grad = grad * factor + 2.0 * self.alpha * params
        return loss, grad

    def _partial(self, keys, Y_keys, Z_keys, projected, queries, own):
        """Loss and gradient pieces of some query rows (sums over their chunks):
        ``Y_keys`` and ``Z_keys`` the targets and standardised features of the
        keys, ``own`` each query's position among them (-1 if none)."""
        n = keys.n_keys
        full = self.metric == "full"
        width = self.n_features if full else keys.z.shape[1]
        loss = 0.0
        row_part = np.zeros((width, width) if full else width)
        col_sums = np.zeros(n)
        cross = np.zeros((width, width) if full else width)
        rows = min(self.rows, max(len(queries), 1))
        e_buf = np.empty((rows, n))
        b_buf = np.empty((rows, n))
        gaussian = self.kernel.gemm_logits
        # other kernels' gradients need the squared distances: kept, not recomputed
        sq_buf = None if gaussian else np.empty((rows, n))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for start in range(0, len(queries), rows):
                chunk = queries[start : start + rows]
                chunk_own = own[start : start + rows]
                m = len(chunk)
                q_raw = projected[chunk]
                qz = keys.transform_queries(q_raw)  # as keys.z, elementwise
                e = e_buf[:m]
                sq = None if gaussian else sq_buf[:m]
                keys.unnormalised_weights(qz, e, sq_out=sq)
                pooled = keys.finish_chunk(
                    e, chunk_own, keys.exact_rows(qz, q_raw), normalize=True
                )
                value, G = self.loss.value_and_gradient(
                    pooled, self.Y[chunk], self.w[chunk]
                )
                loss += value

                # A_ij = p_ij g_i.(y_j - y_hat_i) * dlogK/d(u^2), g_i = dL/dy_hat_i
                A = np.matmul(G, Y_keys.T, out=b_buf[:m])
                A -= np.einsum("ij,ij->i", G, pooled)[:, None]
                A *= e
                if gaussian:
                    A *= -0.5
                else:
                    dk = self.kernel.dlog_dsq(sq)
                    dk[sq == 0] = 0.0  # no distance, no gradient (zero differences)
                    A *= dk
                has = np.flatnonzero(chunk_own >= 0)
                A[has, chunk_own[has]] = 0.0

                row_sums = A.sum(axis=1)
                col_sums += A.sum(axis=0)
                if full:
                    Zq = self.Z[chunk]
                    row_part += (Zq.T * row_sums) @ Zq
                    cross += Zq.T @ (A @ Z_keys)
                else:
                    row_part += row_sums @ (qz * qz)
                    cross += np.einsum("ij,ij->j", qz, A @ keys.z)
        return loss, row_part, col_sums, cross
