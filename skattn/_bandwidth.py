"""Bandwidth selection: weighted rules of thumb and leave-one-out cross-validation.

Sample weights act as repetition everywhere: ``n = sum(w)``, spreads and quantiles
are those of the data with each row repeated ``w`` times.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn import get_config

from skattn._engine import LOGIT_FLOOR, chunk_rows, map_slices, prepare_keys
from skattn._fastmath import exp_inplace
from skattn._kernels import get_kernel
from skattn._losses import get_loss

__all__ = [
    "BANDWIDTH_RULES",
    "check_bandwidth",
    "check_bandwidth_spec",
    "cv_bandwidth",
    "rule_of_thumb",
    "scott_factor",
    "select_bandwidth",
    "weighted_spread",
]

# The data-driven choices a ``bandwidth`` parameter may name.
BANDWIDTH_RULES = ("scott", "silverman", "cv")

# Scale factors (relative to Scott's rule) searched by the leave-one-out selection:
# a coarse grid over four decades, then a bounded Brent search around the grid's best.
CV_SCALE_RANGE = (1e-2, 1e2)
CV_GRID_SIZE = 13
CV_LOG_TOL = 1e-2
# The smallest bandwidth a data-driven rule returns: its reciprocal stays finite.
MIN_BANDWIDTH = 2.0**10 / np.finfo(np.float64).max
# The largest: a sixteenth of the float64 range (data near the limit).
MAX_BANDWIDTH = np.finfo(np.float64).max / 16


def _weighted_quantile(x, w, q):
    """Inverted-CDF quantile of ``x`` repeated ``w`` times (numpy's "inverted_cdf")."""
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(w[order])
    idx = np.searchsorted(cum, q * cum[-1], side="left")
    return x[order][np.minimum(idx, len(x) - 1)]


def weighted_spread(X, sample_weight, robust=False):
    """Per-feature spread of ``X`` with ``sample_weight`` acting as repetition.

    The standard deviation (ddof=1 on the repeated data); with ``robust``,
    ``min(std, IQR / 1.349)`` where the interquartile range is positive. A feature
    with zero (or subnormal) spread gets a spread of 1: it cannot tell rows apart,
    and a unit scale keeps its bandwidth finite and positive.
    """
    X = np.asarray(X, dtype=float)
    w = np.asarray(sample_weight, dtype=float)
    total = w.sum()
    # Columns divided by their largest magnitude first: no overflow for finite X.
    magnitude = np.max(np.abs(X), axis=0, initial=0.0)
    magnitude[magnitude == 0] = 1.0
    Xs = X / magnitude
    mean = w @ Xs / total
    if total > 1:
        var = w @ (Xs - mean) ** 2 / (total - 1.0)
    else:
        var = np.zeros(X.shape[1])
    spread = np.sqrt(var) * magnitude
    if robust:
        for j in range(X.shape[1]):
            iqr = _weighted_quantile(X[:, j], w, 0.75) - _weighted_quantile(
                X[:, j], w, 0.25
            )
            if iqr > 0:
                spread[j] = min(spread[j], iqr / 1.349)
    # Zero (or subnormal, whose reciprocal overflows) spread: the feature cannot
    # tell rows apart.
    spread[~(spread >= np.finfo(np.float64).tiny)] = 1.0
    return spread


def scott_factor(n, n_dims):
    """Scott's factor ``n ** (-1 / (d + 4))``, ``n`` the sum of the weights."""
    return float(n) ** (-1.0 / (n_dims + 4))


def rule_of_thumb(X, sample_weight, rule="scott"):
    """Per-feature rule-of-thumb bandwidths (multivariate Scott or Silverman).

    ``scott``: ``h_j = s_j * n ** (-1 / (d + 4))`` with ``s_j`` the standard deviation.
    ``silverman``: ``h_j = s_j * (n * (d + 2) / 4) ** (-1 / (d + 4))`` with ``s_j`` the
    robust spread ``min(std, IQR / 1.349)``. ``n`` is the sum of the sample weights.
    No bandwidth is below ``MIN_BANDWIDTH`` (about 5.7e-306), whose reciprocal is
    finite.
    """
    n_features = X.shape[1]
    n = float(np.sum(sample_weight))
    if rule == "scott":
        factor = scott_factor(n, n_features)
    elif rule == "silverman":
        factor = (n * (n_features + 2) / 4.0) ** (-1.0 / (n_features + 4))
    else:
        raise ValueError(
            f"Unknown rule of thumb {rule!r}; expected 'scott' or 'silverman'."
        )
    spread = weighted_spread(X, sample_weight, robust=rule == "silverman")
    return np.maximum(spread * factor, MIN_BANDWIDTH)


def _scaled_rows(sq, inv):
    """The ``sq_rows`` result of the engine's exact path: ``sq * inv``, and ``sq``
    itself (which orders the keys alike) where that overflows."""
    with np.errstate(over="ignore"):
        scaled = sq * inv
    return scaled, (None if np.isfinite(scaled).any(axis=1).all() else sq)


class _LeaveOneOutError:
    """Weighted leave-one-out squared error of attention pooling, as a function of a
    global scale factor on fixed per-feature bandwidths.

    The scaled squared distances are computed once: kept whole when they fit in
    sklearn's ``working_memory``, otherwise recomputed chunk by chunk, every candidate
    in a call evaluated on each chunk while it is at hand.

    For the Gaussian kernel each row's distances are stored minus ``m_i``, its
    squared distance to the nearest other key (0 for a row that keeps copies of
    itself): ``-(sq - m_i) / (2 c^2)`` is then an upper-bounded logit whose maximum
    is reached, so no row's normaliser underflows at any candidate ``c`` and the
    exact fallback is not needed (it stays for extreme weight ratios).
    """

    def __init__(
        self,
        X,
        Y,
        sample_weight,
        bandwidth,
        kernel,
        n_jobs=None,
        loss="squared",
        unit_weights=None,
    ):
        self.kernel = get_kernel(kernel)
        self.loss = get_loss(loss)
        # Targets in units where the loss can neither overflow nor underflow (the
        # minimiser is unchanged): they are also the pooled values.
        self.Y, self.y_scale = self.loss.standardise(
            np.asarray(Y, dtype=np.float64), sample_weight
        )
        self.w = sample_weight
        self.n_jobs = n_jobs
        self.keys = prepare_keys(
            X,
            self.Y,
            kernel=self.kernel,
            scale=1.0 / bandwidth,
            key_weights=sample_weight,
            dtype=X.dtype,
            unit_weights=unit_weights,
        )
        n = X.shape[0]
        itemsize = X.dtype.itemsize
        self.rows = chunk_rows(n, itemsize, n_temporaries=3)
        # with the row maximum at 0, a logit at the floor weighs nothing (float64:
        # the engine's LOGIT_FLOOR, whose weights keep their products normal)
        self.logit_floor = (
            LOGIT_FLOOR
            if X.dtype == np.float64
            else float(np.log(np.finfo(X.dtype).tiny)) + 8.0
        )
        self.sq = self.shift = None
        if n * n * itemsize <= get_config()["working_memory"] * 2**20:
            self.sq = np.empty((n, n), dtype=X.dtype)
            self.shift = np.zeros(n, dtype=X.dtype)
            for c in self._chunks(slice(0, n)):
                self.shift[c] = self._distances(c, self.sq[c])

    def _chunks(self, s):
        for start in range(s.start, s.stop, self.rows):
            yield slice(start, min(start + self.rows, s.stop))

    def _distances(self, c, out):
        """Write the chunk's squared distances, minus each row's shift, into ``out``;
        return the shifts (zeros unless the kernel is Gaussian)."""
        keys = self.keys
        with np.errstate(over="ignore", invalid="ignore"):
            keys.squared_distances(keys.z[c], out)
        shift = np.zeros(c.stop - c.start, dtype=out.dtype)
        if not self.kernel.gemm_logits:
            return shift
        idx = np.arange(c.stop - c.start)
        own = c.start + idx
        out[idx, own] = np.inf
        np.min(out, axis=1, out=shift)
        out[idx, own] = 0.0
        shift[~np.isfinite(shift) | np.isfinite(keys.self_log_w[c])] = 0.0
        out -= shift[:, None]
        return shift

    def _errors_slice(self, scales, s):
        with np.errstate(over="ignore", invalid="ignore"):
            return self._errors_slice_unchecked(scales, s)

    def _errors_slice_unchecked(self, scales, s):
        keys = self.keys
        errors = np.zeros(len(scales))
        buffer = np.empty((min(self.rows, s.stop - s.start), keys.n_keys), keys.dtype)
        for c in self._chunks(s):
            if self.sq is not None:
                sq, shift = self.sq[c], self.shift[c]
            else:
                sq = np.empty_like(buffer[: c.stop - c.start])
                shift = self._distances(c, sq)
            e = buffer[: c.stop - c.start]
            for i, scale in enumerate(scales):
                inv = 1.0 / scale**2
                if self.kernel.gemm_logits:
                    np.multiply(sq, -0.5 * inv, out=e)
                else:
                    np.multiply(sq, inv, out=e)
                    self.kernel.log_kernel(e, e)
                if not keys.uniform:
                    e += keys.log_w
                if not self.kernel.compact:
                    # exp is many times slower where it underflows
                    np.maximum(e, self.logit_floor, out=e)
                exp_inplace(e)
                pooled = keys.finish_chunk(
                    e,
                    np.arange(c.start, c.stop),
                    lambda rows, sq=sq, shift=shift, inv=inv: _scaled_rows(
                        sq[rows] + shift[rows, None], inv
                    ),
                )
                errors[i] += self.loss.value(pooled, self.Y[c], self.w[c])
        return errors

    def __call__(self, scales):
        """Weighted leave-one-out loss for each scale factor (of the standardised
        targets, :meth:`SquaredLoss.standardise`)."""
        scales = np.atleast_1d(np.asarray(scales, dtype=float))
        parts = map_slices(
            lambda s: self._errors_slice(scales, s),
            self.keys.n_keys,
            self.rows,
            self.n_jobs,
        )
        return np.sum(parts, axis=0)


def cv_bandwidth(
    X,
    Y,
    sample_weight,
    kernel="gaussian",
    n_jobs=None,
    base=None,
    loss="squared",
    unit_weights=None,
    progress=None,
):
    """Leave-one-out bandwidths (a global scale on Scott's rule).

    Minimises the leave-one-out loss, ``sum_i w_i ||y_hat_{-i} - y_i||^2`` for
    ``loss="squared"`` or ``-sum_i w_i log y_hat_{-i}[c_i]`` (probabilities clipped
    away from 0; ``Y`` one-hot) for ``loss="log"``, over a scale factor ``c`` of the
    per-feature Scott bandwidths (or of ``base``, one bandwidth per feature, when
    given): a log-spaced grid over ``CV_SCALE_RANGE``, then a bounded Brent search
    between the grid neighbours of the best point. The result is always positive and
    finite. ``unit_weights`` is the weight of one copy of each row (1 by default, a
    class weight for classifiers): leaving a row out takes that much of its weight.
    ``progress`` (a :class:`~skattn.utils._progress.Progress`) gets a line per
    candidate factor and one for the choice.

    Returns
    -------
    bandwidth : ndarray of shape (n_features,)
    scale : float
        The chosen factor ``c``.
    """
    if base is None:
        base = rule_of_thumb(X, sample_weight, "scott")
    loo = _LeaveOneOutError(
        X,
        Y,
        sample_weight,
        base,
        kernel,
        n_jobs=n_jobs,
        loss=loss,
        unit_weights=unit_weights,
    )
    log_lo, log_hi = np.log(CV_SCALE_RANGE)
    grid = np.linspace(log_lo, log_hi, CV_GRID_SIZE)
    errors = loo(np.exp(grid))
    n_candidates = [0]

    def say(log_factor, error):
        n_candidates[0] += 1
        if progress:
            progress.step(
                "cv candidate",
                n_candidates[0],
                factor=float(np.exp(log_factor)),
                loss=float(error),
            )

    for t, error in zip(grid, errors, strict=True):
        say(t, error)
    best = int(np.argmin(errors))
    lo = grid[max(best - 1, 0)]
    hi = grid[min(best + 1, len(grid) - 1)]
    log_scale = grid[best]
    if hi > lo:

        def refine(t):
            error = loo(np.exp(t))[0]
            say(t, error)
            return error

        res = minimize_scalar(
            refine, bounds=(lo, hi), method="bounded", options={"xatol": CV_LOG_TOL}
        )
        if np.isfinite(res.fun) and res.fun <= errors[best]:
            log_scale = float(res.x)
    scale = float(np.exp(np.clip(log_scale, log_lo, log_hi)))
    if progress:
        progress.message(
            f"cv chose the factor {scale:.6g} on the base bandwidths after "
            f"{n_candidates[0]} candidates"
        )
    with np.errstate(over="ignore"):
        bandwidth = np.clip(base * scale, MIN_BANDWIDTH, MAX_BANDWIDTH)
    return bandwidth, scale


def check_bandwidth(bandwidth, n_features):
    """Validate a numeric ``bandwidth`` parameter as one positive value per feature."""
    h = np.asarray(bandwidth)
    if h.dtype.kind not in "iuf":
        raise ValueError(
            f"bandwidth must be a positive float, an array of {n_features} positive "
            f"floats or one of {BANDWIDTH_RULES}; got {bandwidth!r}."
        )
    h = h.astype(np.float64)
    if h.ndim == 0:
        h = np.full(n_features, float(h))
    elif h.ndim != 1 or h.shape[0] != n_features:
        raise ValueError(
            f"bandwidth has shape {h.shape} but X has {n_features} features; "
            f"expected one bandwidth per feature, shape ({n_features},)."
        )
    with np.errstate(divide="ignore", over="ignore"):
        reciprocal_finite = np.isfinite(1.0 / h)
    if not np.all(np.isfinite(h)) or np.any(h <= 0) or not reciprocal_finite.all():
        raise ValueError(
            "bandwidth must be positive and finite for every feature, with a finite "
            f"reciprocal; got {h.tolist()}."
        )
    return h


def check_bandwidth_spec(bandwidth, n_features):
    """A ``bandwidth`` parameter validated before any search: one of
    ``BANDWIDTH_RULES`` as it is, or a number or array through
    :func:`check_bandwidth` (which refuses any other string)."""
    if isinstance(bandwidth, str) and bandwidth in BANDWIDTH_RULES:
        return bandwidth
    return check_bandwidth(bandwidth, n_features)


def select_bandwidth(
    bandwidth,
    X,
    Y,
    sample_weight,
    kernel,
    *,
    n_jobs=None,
    loss="squared",
    unit_weights=None,
    rule_weights=None,
    progress=None,
):
    """The per-feature bandwidth that a ``bandwidth`` parameter asks for: the one
    rule of every estimator (and every head of AttentionPooling).

    Parameters
    ----------
    bandwidth : float, array-like of shape (n_features,) or {"scott", "silverman", \
            "cv"}
        A number (one for every feature, or one per feature), a rule of thumb
        (:func:`rule_of_thumb`) or leave-one-out cross-validation
        (:func:`cv_bandwidth`).
    X : ndarray of shape (n_samples, n_features)
        The rows of positive weight.
    Y : ndarray of shape (n_samples, n_outputs) or None
        Their targets; needed by "cv" only.
    sample_weight : ndarray of shape (n_samples,)
        Positive weights, acting as repetition.
    kernel : str or Kernel
        The kernel ("cv" only).
    n_jobs : int or None, default=None
        The engine's threads ("cv" only).
    loss : {"squared", "log"}, default="squared"
        The leave-one-out loss of "cv".
    unit_weights : ndarray of shape (n_samples,), default=None
        The weight of one copy of each row ("cv" only; a classifier's class
        weights), 1 by default.
    rule_weights : ndarray of shape (n_samples,), default=None
        The weights of the rules of thumb (their ``n`` and spreads); None means
        ``sample_weight``. A classifier passes its sample weights without the class
        weights, which re-balance the classes but are no more data.
    progress : Progress, default=None
        Lines of the "cv" search (:func:`cv_bandwidth`).

    Returns
    -------
    bandwidth : ndarray of shape (n_features,)
        Positive, finite, float64.
    """
    bandwidth = check_bandwidth_spec(bandwidth, X.shape[1])
    if isinstance(bandwidth, str):
        if bandwidth != "cv":
            weights = sample_weight if rule_weights is None else rule_weights
            return rule_of_thumb(X, weights, bandwidth)
        unit = 1.0 if unit_weights is None else float(np.max(unit_weights))
        if np.sum(sample_weight) <= unit:
            raise ValueError(
                "bandwidth='cv' needs a total sample weight above 1 (leave-one-out "
                f"must leave at least one row); got {np.sum(sample_weight)!r}."
            )
        h, _ = cv_bandwidth(
            X,
            Y,
            sample_weight,
            kernel,
            n_jobs=n_jobs,
            loss=loss,
            unit_weights=unit_weights,
            progress=progress,
        )
        return np.asarray(h, dtype=np.float64)
    return bandwidth
