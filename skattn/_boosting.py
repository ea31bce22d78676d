"""Boosted attention values: L2-boosting of the attention smoother.

With ``S`` the attention of the training rows over themselves (rows summing to
one, each row's own weight included) and ``r`` the values (a learned metric's
trend residuals), pooling gives ``S r``. ``m`` rounds of L2-boosting (Buhlmann
and Yu, 2003; Tukey's "twicing" for two) fit what the previous rounds left with
the same smoother again:

    f_m = H_m r,   H_m = I - (I - S)^m = S G_m,   G_m = sum_{k < m} (I - S)^k,

so a prediction stays attention pooling, of learned values ``a = G_m r``:
``f(x) = sum_j p_j(x) a_j``. Each round removes more of the local average's bias
(the slope it flattens, the curvature and edges it rounds off), at the cost of
variance: a wide kernel (a weak learner) boosted for many rounds fits a smooth
function that the learned bandwidths, alone, average away.

``S = D^-1 K W`` (kernel matrix ``K``, weights ``W``, normalisers ``D``) is
similar to the symmetric ``M = A^-1 S A``, ``A = diag(a)``, ``a_i = (D_i
w_i)^(-1/2) = sqrt(S_ii) / w_i`` (``K(0) = 1``): with ``M = U diag(lam) U^T``
every ``H_m`` and ``G_m`` comes from one eigendecomposition, O(n^3) once and
O(n^2) per ``m``.

Leave-one-out: the residual of row ``j`` without one copy of it is taken as
``e_j = (r_j - (H r)_j) / (1 - H_jj u_j / w_j)``, the linear smoother's formula
(Nadaraya-Watson's exact one for ``m = 1``); weights act as repetition: with
``E`` expanding rows into copies, the copies' smoother is ``E H_m E~`` (``E~ E
= I``), so one copy's self-influence is ``H_jj u_j / w_j``. The same formula
gives the jackknife+ and CV+ of the boosted smoother: the prediction at ``x``
without one copy of row ``j`` is ``f(x) - h_j(x) e_j u_j / w_j``, ``h(x) = G_m^T
p(x)`` the smoother's weights, and without a fold ``F`` it is ``f(x) -
h_F(x) (I - H_FF)^-1 (r - H r)_F``.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

from skattn._uncertainty import (
    CV_FOLDS,
    _Plus,
    _QuantileMethod,
    cv_folds,
    weighted_quantiles,
)

__all__ = [
    "BOOST_MAX_ROWS",
    "BOOST_MIN_ROWS",
    "BOOST_ROUNDS",
    "BOOST_WIDENINGS",
    "BoostedCVPlus",
    "BoostedJackknifePlus",
    "BoostedQuantiles",
    "BoostedSmoother",
    "SmootherWeights",
    "select_boosting",
]

# boosting="auto" applies from BOOST_MIN_ROWS to BOOST_MAX_ROWS training rows
# (an O(n^3) eigendecomposition per widening: about 1 s at 1,200 rows on two
# cores; below 100 rows the paired z of the rule rests on too few rows).
BOOST_MIN_ROWS = 100
BOOST_MAX_ROWS = 2000
# The candidates: the learned bandwidths widened by these factors (weaker
# learners), boosted for these numbers of rounds. Not the learned bandwidths
# themselves: there the smoother is already near the identity on the rows, the
# leave-one-out formula degrades as H_m approaches it, and on make_friedman1 it
# chose 200 rounds that scored lower on new rows with an interval covering 1 %.
BOOST_WIDENINGS = (2.0, 3.0, 4.0)
BOOST_ROUNDS = tuple(int(m) for m in np.unique(np.round(np.geomspace(1, 256, 30))))
# A candidate whose copy keeps less than this share of its own residual
# (1 - H_jj u_j / w_j) at some row has no usable leave-one-out residual there.
_MIN_LEFT_SHARE = 1e-6


class BoostedSmoother:
    """The boosted smoothers ``H_m`` and values ``G_m`` of one head's attention
    over the training rows, from one eigendecomposition.

    Parameters
    ----------
    keys : PreparedKeys
        Dense keys (float64) of the head over the training rows, prepared with
        any values.
    n_jobs : int or None
        The engine's threads for the attention matrix.
    """

    def __init__(self, keys, n_jobs=None):
        _, S = keys.pool(keys.raw, return_weights=True, n_jobs=n_jobs)
        S = np.asarray(S, dtype=np.float64)
        self.w = np.asarray(keys.w, dtype=np.float64)
        self.unit = np.asarray(keys.unit, dtype=np.float64)
        self.a = np.sqrt(np.diag(S)) / self.w
        M = S * (self.a[None, :] / self.a[:, None])
        M = 0.5 * (M + M.T)
        lam, self.U = np.linalg.eigh(M)
        # S is row-stochastic with a positive semi-definite kernel: spectrum in [0, 1]
        self.lam = np.clip(lam, 0.0, 1.0)
        self._U2 = self.U**2

    def _filters(self, m):
        """``(g, g / lam)``: the eigenvalues of ``H_m = 1 - (1 - lam)^m`` and of
        ``G_m = H_m / lam`` (``m`` where ``lam`` is 0)."""
        with np.errstate(divide="ignore"):
            g = -np.expm1(m * np.log1p(-self.lam))
        positive = self.lam > 0.0
        values = np.full_like(g, float(m))
        values[positive] = g[positive] / self.lam[positive]
        return g, values

    def _apply(self, spectrum, r):
        """``A U diag(spectrum) U^T A^-1 r`` for ``r`` of shape (n, n_outputs),
        each output divided by the power of two of its largest magnitude first
        (exact), so that no range of values overflows on the way."""
        exponent = np.frexp(np.max(np.abs(r), axis=0, initial=0.0))[1]
        inner = self.U.T @ (np.ldexp(r, -exponent) / self.a[:, None])
        out = self.a[:, None] * (self.U @ (spectrum[:, None] * inner))
        with np.errstate(over="ignore"):
            return np.ldexp(out, exponent)

    def _matrix(self, spectrum):
        return (self.a[:, None] * self.U * spectrum[None, :]) @ (
            self.U.T / self.a[None, :]
        )

    def _left_share(self, g):
        return 1.0 - (self._U2 @ g) * self.unit / self.w

    def left_share(self, m):
        """``1 - H_jj u_j / w_j``: the share of one copy's own residual that its
        leave-one-out prediction leaves."""
        return self._left_share(self._filters(m)[0])

    def loo_residuals(self, r, m):
        """Signed leave-one-out residuals ``e`` (n, n_outputs) of ``H_m``, or None
        where a row keeps too little of its own residual or one is not finite."""
        g, _ = self._filters(m)
        share = self._left_share(g)
        if not np.all(share >= _MIN_LEFT_SHARE):
            return None
        with np.errstate(over="ignore", invalid="ignore"):
            residuals = (r - self._apply(g, r)) / share[:, None]
        return residuals if np.all(np.isfinite(residuals)) else None

    def residual_inflation(self, m):
        """``Var(e_j) / sigma^2`` for noise of variance ``sigma^2`` at every copy:
        ``1 + sum_{b != a} H~_ab^2 / (1 - H~_aa)^2`` over the copies ``b`` of the
        expanded data (``H~_ab = H_jk u_k / w_k``)."""
        H = self.hat_matrix(m)
        counts = self.w / self.unit
        own = np.diag(H) / counts
        others = (H**2) @ (1.0 / counts) - own**2
        return 1.0 + np.maximum(others, 0.0) / self.left_share(m) ** 2

    def values(self, r, m):
        """The boosted values ``G_m r``: pooled, they give ``H_m r``."""
        return self._apply(self._filters(m)[1], r)

    def value_matrix(self, m):
        """``G_m`` (n, n): the smoother's weights at a query are ``G_m^T p``."""
        return self._matrix(self._filters(m)[1])

    def hat_matrix(self, m):
        """``H_m`` (n, n)."""
        return self._matrix(self._filters(m)[0])


class SmootherWeights:
    """The boosted smoother's weights at queries, ``h = G_m^T p`` from their
    attention ``p`` (the ``smoother`` of
    :func:`~skattn._uncertainty.standard_error_rows`)."""

    def __init__(self, G):
        self.G = G

    def __call__(self, rows, pooled, weights):
        return np.asarray(weights, dtype=np.float64) @ self.G


def _smoothed_at(keys, G, queries):
    """At the queries: the boosted predictions (``keys`` prepared with the
    boosted values), the smoother's weights ``h = G^T p`` and the effective
    number of keys."""
    predictions, weights, stats = keys.pool(
        queries, return_weights=True, return_stats=True, n_jobs=1
    )
    return predictions, SmootherWeights(G)(None, predictions, weights), stats[:, 1]


def _paired_z(base, candidate, counts):
    """How many standard errors the per-copy loss ``candidate`` is below
    ``base`` (each row counted ``counts`` times): the mean paired difference
    over its standard error, 0 when they do not differ."""
    gain = base - candidate
    total = counts.sum()
    mean = float(counts @ gain) / total
    if total <= 1.0:
        return 0.0
    variance = float(counts @ (gain - mean) ** 2) / (total - 1.0)
    if variance <= 0.0:
        return np.inf if mean > 0 else 0.0
    return mean / np.sqrt(variance / total)


def select_boosting(base_residuals, smoothers, r, z_needed):
    """The boosted smoother whose leave-one-out loss is lowest, and whether it is
    kept.

    Parameters
    ----------
    base_residuals : ndarray of shape (n, n_outputs)
        The unboosted smoother's exact leave-one-out residuals.
    smoothers : dict
        ``widening -> BoostedSmoother``.
    r : ndarray of shape (n, n_outputs)
        The values (float64).
    z_needed : float or None
        Keep the best only where its loss is below the unboosted one's by more
        than this many standard errors of their paired per-row differences
        (None: wherever it is lower).

    Returns
    -------
    choice : tuple or None
        ``(widening, rounds, smoother, z)`` of the kept candidate (``rounds``
        the ``m`` of ``H_m``), None where none is kept.
    z : float
        The best candidate's z (``-inf`` where none had a residual).
    """
    first = next(iter(smoothers.values()))
    counts = first.w / first.unit
    # the losses in units of the values' largest power of two (squares of any
    # finite range stay finite; the z and the order are unchanged)
    exponent = np.frexp(np.max(np.abs(r), axis=0, initial=0.0))[1]

    def squares(residuals):
        return np.sum(np.ldexp(residuals, -exponent) ** 2, axis=1)

    base = squares(base_residuals)
    best = None
    for widening, smoother in smoothers.items():
        for m in BOOST_ROUNDS:
            e = smoother.loo_residuals(r, m)
            if e is None:
                continue
            per_row = squares(e)
            loss = float(counts @ per_row)
            if best is None or loss < best[0]:
                best = (loss, widening, m, smoother, per_row)
    if best is None:
        return None, -np.inf
    loss, widening, m, smoother, per_row = best
    z = _paired_z(base, per_row, counts)
    better = loss < float(counts @ base)
    if not better or (z_needed is not None and not z > z_needed):
        return None, z
    return (widening, m, smoother, z), z


class BoostedJackknifePlus(_Plus):
    """Jackknife+ of the boosted smoother: at each query ``f(q) - h_j(q) e_j u_j
    / w_j`` without one copy of row ``j``; ``keys`` prepared with the boosted
    values, ``G`` the value matrix, ``residuals`` the rows' signed
    leave-one-out residuals."""

    def __init__(self, keys, values, G, residuals):
        super().__init__(keys, values, residuals)
        self.G = G

    def left_out(self, queries):
        predictions, h, n_effective = _smoothed_at(self.keys, self.G, queries)
        h *= (self.keys.unit / self.keys.w)[None, :]  # one copy's share
        left_out = predictions[:, None, :] - h[:, :, None] * self.residuals[None]
        return left_out, n_effective


class BoostedCVPlus(_Plus):
    """CV+ of the boosted smoother: the folds of :func:`cv_folds` over the rows
    and the targets ``r``, each left out by ``(I - H_FF)^-1 (r - H r)_F``."""

    def __init__(self, keys, values, G, H, r):
        self.folds = cv_folds(keys.raw, r, CV_FOLDS)
        fitted = H @ r
        self.G = G
        self.deltas = np.empty_like(r)
        for k in range(int(self.folds.max()) + 1):
            inside = np.flatnonzero(self.folds == k)
            block = np.eye(len(inside)) - H[np.ix_(inside, inside)]
            self.deltas[inside] = np.linalg.lstsq(
                block, (r - fitted)[inside], rcond=None
            )[0]
        # the residual of a row's prediction without its fold
        super().__init__(keys, values, self.deltas)

    def left_out(self, queries):
        predictions, h, n_effective = _smoothed_at(self.keys, self.G, queries)
        n_folds = int(self.folds.max()) + 1
        out = np.empty((len(predictions), n_folds, predictions.shape[1]))
        for k in range(n_folds):
            inside = self.folds == k
            out[:, k] = predictions - h[:, inside] @ self.deltas[inside]
        return out[:, self.folds, :], n_effective


class BoostedQuantiles(_QuantileMethod):
    """The "quantile" method of the boosted smoother: the attention-weighted
    distribution of the rows' leave-one-out residuals ``e``, around the boosted
    prediction (the targets' own distribution, which the method takes for
    Nadaraya-Watson, would spread the signal under the widened kernel too)."""

    def __init__(self, keys, values, residuals):
        self.keys = keys
        self.values = values
        self.residuals = residuals

    def quantiles(self, queries, quantiles):
        predictions, weights, stats = self.keys.pool(
            queries, return_weights=True, return_stats=True, n_jobs=1
        )
        spread = weighted_quantiles(weights, self.residuals, quantiles)
        return predictions[:, None, :] + spread, stats[:, 1]
