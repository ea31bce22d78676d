"""Local models: what attention pools at each query.

* :class:`LocalConstant` pools the targets themselves (Nadaraya-Watson).
* :class:`LocalLinear` pools a weighted least-squares fit around each query: with
  the attention weights ``p_j`` of a query ``q`` (non-negative, summing to 1) it
  solves ``min_{b0, b} sum_j p_j (y_j - b0 - b.(x_j - q))^2 + ridge * ||b||^2`` and
  predicts ``b0``. The local moments it needs are attention-pooled values, so the
  engine pools them by GEMM like any target, for dense, top-k and radius attention
  alike: per key ``[y, x, x_a x_b (a <= b), x (x) y]``, in the design's units (the
  features centred on the training mean and divided by each one's spread). From
  the pooled moments, ``x_bar = sum_j p_j x_j``, ``y_bar = sum_j p_j y_j``, the local
  covariance ``C = sum_j p_j (x_j - x_bar)(x_j - x_bar)^T`` and cross-covariance
  ``c = sum_j p_j (x_j - x_bar)(y_j - y_bar)^T``; then ``b = (C + ridge I)^+ c`` and
  ``b0 = y_bar + b.(q - x_bar)``.

  The ridge (in units of each feature's variance, on the slopes only) shrinks the
  fit toward the local constant, as R np does after Cheng, Hall and Titterington
  (1997): where the local design is singular (one key with weight, collinear
  features, a far query) the slope in a degenerate direction is zero and the
  prediction is the local-constant one. Directions of ``C`` whose variance is below
  ``sqrt(eps)`` times the local second moments (where the moments' rounding would
  decide the slope) are treated as degenerate whatever the ridge.

The equivalent kernel of the fit (the weights of the linear smoother,
``y_hat(q) = sum_j l_j(q) y_j``) is ``l_j = p_j (1 + g.(x_j - x_bar))`` with
``g = (C + ridge I)^+ (q - x_bar)``: rows sum to 1, entries may be negative.

Gradient of a loss through the fit: with ``G = dL/dy_hat`` at a query, the
derivative with respect to the logit ``s_j`` of key ``j`` is ``p_j T_j`` with

    T_j = (1 + g.(x_j - x_bar)) (G.y_j - G.y_hat - (b G).(x_j - q)) - ridge g.(b G)

(the residual of key ``j`` from the local fit, weighted by the equivalent kernel,
and the ridge's share): for the local constant ``T_j = G.(y_j - y_hat)``. The
learning layer multiplies ``p_j T_j`` by ``d log K / d(u^2)`` and reduces over the
metric as for Nadaraya-Watson.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

__all__ = ["LocalConstant", "LocalLinear"]


class LocalConstant:
    """Nadaraya-Watson: the pooled values are the prediction."""

    name = "constant"
    n_temporaries = 0

    def values(self, Y, D):
        """The values that keys carry: the targets."""
        return Y

    def solve(self, pooled, Dq):
        """Predictions from pooled values, and the state of the gradient terms."""
        return pooled, None

    def score_terms(self, G, predictions, state, Dq, D_keys, Y_keys, out, work=None):
        """``T`` (module notes) of a chunk of queries, into ``out``."""
        if G.shape[1] == 1:  # one output: broadcasting, not a GEMM of depth 1
            T = np.subtract(Y_keys[:, 0], predictions[:, :1], out=out)
            T *= G
            return T
        T = np.matmul(G, Y_keys.T, out=out)
        T -= np.einsum("ij,ij->i", G, predictions)[:, None]
        return T


class _LinearFit:
    """A chunk of local linear fits: local means, slopes and the regularised
    pseudo-inverse of the local covariances, as a batch of matrices
    ``C + ridge I`` to solve with (every direction kept) or by eigenvectors (some
    directions degenerate)."""

    def __init__(self, x_bar, y_bar, matrices=None, eigenvectors=None, inverse=None):
        self.x_bar = x_bar
        self.y_bar = y_bar
        self.slopes = None  # (m, d, o)
        self.matrices = matrices  # (m, d, d)
        self.eigenvectors = eigenvectors
        self.inverse = inverse  # (m, d): 1 / (eigenvalue + ridge), 0 if degenerate

    def apply_inverse(self, v):
        """``(C + ridge I)^+ v`` for ``v`` of shape (m, d) or (m, d, k)."""
        vec = v[:, :, None] if v.ndim == 2 else v
        if self.matrices is not None:
            out = np.linalg.solve(self.matrices, vec)
        else:
            V = self.eigenvectors
            out = V @ (self.inverse[:, :, None] * (np.swapaxes(V, 1, 2) @ vec))
        return out[:, :, 0] if v.ndim == 2 else out


class LocalLinear:
    """Local-linear fits from pooled moments.

    Parameters
    ----------
    ridge : float
        Penalty on the slopes, in units of each (standardised) feature's variance.
    n_features : int
        Columns of the design.
    """

    name = "linear"
    n_temporaries = 1

    def __init__(self, ridge, n_features):
        self.ridge = float(ridge)
        self.n_features = n_features
        self.upper = np.triu_indices(n_features)

    def values(self, Y, D):
        """The values that keys carry: ``[y, x, x_a x_b (a <= b), x (x) y]`` of the
        design ``D`` (n, d) and targets ``Y`` (n, o), in float64."""
        D = np.asarray(D, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        n, d = D.shape
        a, b = self.upper
        cross = (D[:, :, None] * Y[:, None, :]).reshape(n, -1)
        return np.hstack([Y, D, D[:, a] * D[:, b], cross])

    def fit(self, pooled, n_outputs):
        """The local fits of a chunk of pooled moments (:class:`_LinearFit`)."""
        o, d = n_outputs, self.n_features
        m = pooled.shape[0]
        pooled = np.asarray(pooled, dtype=np.float64)
        a, b = self.upper
        p = len(a)
        y_bar = pooled[:, :o]
        x_bar = pooled[:, o : o + d]
        second = np.empty((m, d, d))
        second[:, a, b] = pooled[:, o + d : o + d + p]
        second[:, b, a] = pooled[:, o + d : o + d + p]
        C = second - x_bar[:, :, None] * x_bar[:, None, :]
        c = (
            pooled[:, o + d + p :].reshape(m, d, o)
            - x_bar[:, :, None] * y_bar[:, None, :]
        )
        # C is a difference of second moments of this size: its directions of
        # variance below sqrt(eps) of it are known to fewer than half the digits
        # (slopes there would amplify rounding), and count as degenerate.
        scale = np.max(np.abs(np.diagonal(second, axis1=1, axis2=2)), axis=1, initial=0)
        cut = np.maximum(
            np.sqrt(np.finfo(np.float64).eps) * scale, np.finfo(np.float64).tiny
        )
        eye = np.eye(d)
        try:
            # every eigenvalue above the cut (the usual case): no direction is
            # degenerate, and a batched solve is all the fit needs (Cholesky and LU
            # of small matrices take a tenth of the time of their eigenvectors)
            np.linalg.cholesky(C - cut[:, None, None] * eye)
        except np.linalg.LinAlgError:
            eigenvalues, eigenvectors = np.linalg.eigh(C)
            kept = eigenvalues > cut[:, None]
            with np.errstate(divide="ignore"):
                inverse = np.where(kept, 1.0 / (eigenvalues + self.ridge), 0.0)
            fit = _LinearFit(x_bar, y_bar, eigenvectors=eigenvectors, inverse=inverse)
        else:
            fit = _LinearFit(x_bar, y_bar, matrices=C + self.ridge * eye)
        fit.slopes = fit.apply_inverse(c)
        return fit

    def solve(self, pooled, Dq):
        """Predictions at the queries ``Dq`` (design units) from their pooled
        moments, and the fits (the state of the gradient terms)."""
        o = self._n_outputs(pooled)
        fit = self.fit(pooled, o)
        offset = Dq - fit.x_bar
        predictions = fit.y_bar + np.einsum("mdo,md->mo", fit.slopes, offset)
        # A linear extrapolation beyond the float range (a query astronomically far
        # from a degenerate pair of keys) falls back to the local constant.
        bad = ~np.isfinite(predictions)
        if bad.any():
            predictions[bad] = fit.y_bar[bad]
        return predictions, fit

    def _n_outputs(self, pooled):
        d = self.n_features
        p = len(self.upper[0])
        return (pooled.shape[1] - d - p) // (1 + d)

    def equivalent_factor(self, fit, Dq):
        """``g`` of the equivalent kernel ``l_j = p_j (1 + g.(x_j - x_bar))``."""
        return fit.apply_inverse(Dq - fit.x_bar)

    def score_terms(self, G, predictions, state, Dq, D_keys, Y_keys, out, work=None):
        """``T`` (module notes) of a chunk of queries, into ``out`` (``work``: a
        buffer of its shape for the equivalent-kernel factor, or None)."""
        fit = state
        g = self.equivalent_factor(fit, Dq)  # (m, d)
        bG = np.einsum("mdo,mo->md", fit.slopes, G)  # (m, d)
        m, o = G.shape
        # residual part G.y_j - (b G).x_j + ((b G).q - G.y_hat) and the factor
        # 1 + g.x_j - g.x_bar, each one GEMM against [Y_keys, D_keys, 1]
        keys = self._keys_matrix(D_keys, Y_keys)
        left = np.empty((m, keys.shape[0]))
        left[:, :o] = G
        left[:, o:-1] = -bG
        left[:, -1] = np.einsum("md,md->m", bG, Dq) - np.einsum(
            "mo,mo->m", G, predictions
        )
        T = np.matmul(left, keys, out=out)
        right = np.zeros((m, keys.shape[0]))
        right[:, o:-1] = g
        right[:, -1] = 1.0 - np.einsum("md,md->m", g, fit.x_bar)
        T *= np.matmul(right, keys, out=work)
        if self.ridge:
            T -= self.ridge * np.einsum("md,md->m", g, bG)[:, None]
        return T

    def _keys_matrix(self, D_keys, Y_keys):
        """``[Y_keys, D_keys, 1]`` transposed, (o + d + 1, n), kept for the keys
        of the last call (every chunk of an objective's pass has the same)."""
        cached = getattr(self, "_keys_cache", None)
        if cached is not None and cached[0] is D_keys and cached[1] is Y_keys:
            return cached[2]
        n = D_keys.shape[0]
        keys = np.empty((Y_keys.shape[1] + D_keys.shape[1] + 1, n))
        keys[: Y_keys.shape[1]] = Y_keys.T
        keys[Y_keys.shape[1] : -1] = D_keys.T
        keys[-1] = 1.0
        self._keys_cache = (D_keys, Y_keys, keys)
        return keys
