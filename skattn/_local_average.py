"""The local-linear average of :class:`~skattn.AttentionRegressor`.

On small noisy data the learned bandwidths' attention (a linear trend corrected by
pooling its residuals) and a local-linear attention at those bandwidths widened
(a local line fitted at each query with the same kind of weights) make errors
that are far from equal; their equal average has less variance than either. Both
are linear smoothers of the targets once the bandwidths (and the trend) are held
fixed, and so is the average: with ``a_j(x)`` the learned attention's weights on
the residuals ``r = y - t(X)`` and ``l_j(x)`` the local-linear equivalent kernel
(the local lines are fitted to the targets themselves),

    f(x) = (t(x) + sum_j a_j(x) r_j) / 2 + sum_j l_j(x) y_j / 2.

The local lines' slopes are penalised as the
trend's are (``TREND_RIDGE`` on the standardised features): unpenalised, the
slopes along collinear features are large and opposite, and a query off the data
along them (a permuted column) gets a far prediction. Beyond the training rows'
range the local-linear half takes each query clipped to it, as the trend does.

The average's leave-one-out prediction of a row is the average of the two exact
ones, and so are its predictions without a row or a fold at any query: the
jackknife+ and CV+ of the average are exact, as each one's.

The widening of the local-linear bandwidths is the one of ``LOCAL_LINEAR_WIDENINGS``
with the lowest exact leave-one-out error of the local-linear attention alone
(the learned bandwidths are narrow for a local line, which spends its own degrees
of freedom on the slope). The learned attention's own leave-one-out loss is
optimistic (its bandwidths minimised it), so no in-sample criterion weighs the two
fairly: the weights are equal and fixed.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

from skattn._engine import chunk_rows
from skattn._trend import TREND_RIDGE, apply_trend
from skattn._uncertainty import (
    CVPlus,
    JackknifePlus,
    _Plus,
    _QuantileMethod,
    cv_folds,
    per_query_weighted_quantiles,
)

__all__ = [
    "LOCAL_LINEAR_MAX_ROWS",
    "LOCAL_LINEAR_MIN_ROWS",
    "LOCAL_LINEAR_WIDENINGS",
    "AveragedParts",
    "fit_local_linear",
]

# local_linear="auto" applies from LOCAL_LINEAR_MIN_ROWS to LOCAL_LINEAR_MAX_ROWS
# training rows where boosting kept nothing: on the development panel the average
# lifts the small noisy data sets (Prestige, diabetes, Housing, Salaries,
# airquality) and costs the large ones (Wages, 4,165 rows), whose learned
# bandwidths have the data to be right alone. (A row count, not a weight: weights
# act as repetition on either side of it, but for the estimator checks' data, 9
# weighted rows and 27 repeated ones, both sides must average alike.)
LOCAL_LINEAR_MIN_ROWS = 3
LOCAL_LINEAR_MAX_ROWS = 2000
LOCAL_LINEAR_WIDENINGS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def fit_local_linear(estimator, X, Y, w):
    """The :class:`~skattn.LocalLinearRegressor` at the estimator's learned
    bandwidths times each of ``LOCAL_LINEAR_WIDENINGS``, with the lowest exact
    leave-one-out squared error (summed over the outputs, each in units of its
    largest power of two), fitted to the stored rows ``X``, their targets ``Y``
    (2-D) and weights ``w``. Returns ``(model, widening)``, or ``(None, None)``
    where no widening has a finite leave-one-out error."""
    from skattn._local_linear import LocalLinearRegressor

    y = Y[:, 0] if estimator._y_1d else Y
    bandwidth = np.asarray(estimator.bandwidth_, dtype=np.float64)
    limit = np.finfo(np.float64).max
    best, best_loss = (None, None), np.inf
    for widening in LOCAL_LINEAR_WIDENINGS:
        with np.errstate(over="ignore"):
            widened = np.minimum(bandwidth * widening, limit)
        model = LocalLinearRegressor(
            bandwidth=widened,
            kernel=estimator.kernel,
            ridge=TREND_RIDGE,
            n_jobs=estimator.n_jobs,
        ).fit(X, y, sample_weight=w)
        with np.errstate(over="ignore", invalid="ignore"):
            residuals = model._values - model._leave_one_out_predict()
            loss = float(np.sum(w[:, None] * residuals**2))
        if np.isfinite(loss) and loss < best_loss:
            best, best_loss = (model, widening), loss
    return best


class AveragedParts:
    """The two halves of the average at query rows ``X`` (validated), in the
    units of the learned attention's pooled values (the trend residuals): the
    local-linear half in the targets' units less the trend.

    Parameters
    ----------
    estimator : AttentionRegressor
        Fitted, with ``local_linear_``.
    """

    def __init__(self, estimator):
        self.estimator = estimator
        self.model = estimator.local_linear_
        self.own_head = estimator._heads[0]
        self.other_head = self.model._heads[0]
        self.exponent = self.model._exponents()
        self.trend = getattr(estimator, "_trend", None)
        keys = np.asarray(self.model._keys)
        self.low, self.high = keys.min(axis=0), keys.max(axis=0)

    def own_queries(self, X):
        return np.asarray(self.own_head.features(X), dtype=np.float64)

    def clipped(self, X):
        """The queries clipped to the training rows' range, feature by feature:
        the local-linear half is constant beyond the data, as the trend is."""
        return np.clip(X, self.low, self.high)

    def other_queries(self, X):
        return np.asarray(self.other_head.features(self.clipped(X)), dtype=np.float64)

    def to_own_units(self, values, X):
        """Local-linear values (scaled targets) of shape (n_queries, ...,
        n_outputs) in the learned attention's units."""
        with np.errstate(over="ignore", invalid="ignore"):
            values = np.ldexp(values, self.exponent)
            if self.trend is not None:
                shape = (len(X),) + (1,) * (values.ndim - 2) + (values.shape[-1],)
                values = values - apply_trend(self.trend, X).reshape(shape)
        return values

    def training_trend(self):
        """The trend at the stored rows (zero without one)."""
        estimator = self.estimator
        if self.trend is None:
            return np.zeros_like(estimator._values, dtype=np.float64)
        return apply_trend(self.trend, estimator._keys)


class AveragedPlus(_Plus):
    """The jackknife+ or CV+ of the average from those of its halves: left-out
    predictions and residuals averaged (the same rows, or folds, left out of
    both). ``own`` and ``other`` are the halves' :class:`_Plus` objects; the
    queries are the validated rows ``X``, each half taking its own features."""

    def __init__(self, parts, own, other):
        self.parts = parts
        self.own = own
        self.other = other
        self.values = own.values
        self.counts = own.counts
        other_residuals = np.ldexp(other.residuals, parts.exponent)
        self.residuals = 0.5 * own.residuals + 0.5 * other_residuals

    def left_out(self, X):
        parts = self.parts
        own, n_effective = self.own.left_out(parts.own_queries(X))
        other, _ = self.other.left_out(parts.other_queries(X))
        return 0.5 * own + 0.5 * parts.to_own_units(other, X), n_effective


class AveragedQuantiles(_QuantileMethod):
    """The quantiles of the halves' predictive distributions mixed in equal
    shares: the learned attention's weighted residuals and the local-linear
    attention's targets moved along each query's local line, each weighted by its
    attention halved (the mixture's mean is the average's prediction)."""

    def __init__(self, parts, own_keys, other_keys):
        self.parts = parts
        self.own_keys = own_keys
        self.other_keys = other_keys
        self.values = parts.estimator._values

    def quantiles(self, X, quantiles):
        parts = self.parts
        values = np.asarray(self.values, dtype=np.float64)
        _, own_weights, stats = self.own_keys.pool(
            parts.own_queries(X), return_weights=True, return_stats=True, n_jobs=1
        )
        queries = parts.other_queries(X)
        pooled, other_weights = self.other_keys.pool(
            queries, return_weights=True, n_jobs=1
        )
        moved = parts.to_own_units(parts.model._moved_targets(pooled, queries), X)
        mixed = np.concatenate(
            [np.broadcast_to(values, (len(X),) + values.shape), moved], axis=1
        )
        weights = 0.5 * np.concatenate([own_weights, other_weights], axis=1)
        return per_query_weighted_quantiles(weights, mixed, quantiles), stats[:, 1]


def averaged_method(estimator, method):
    """The interval ``method`` object of the average (validated queries in)."""
    parts = AveragedParts(estimator)
    model = parts.model
    own_dense, own_keys = estimator._dense_interval_keys(
        np.asarray(estimator._values, dtype=np.float64)
    )
    other_dense, other_keys = model._dense_interval_keys(model._moments)
    values = np.asarray(estimator._values, dtype=np.float64)
    if method == "quantile":
        return AveragedQuantiles(parts, own_keys, other_keys)
    Y = np.asarray(model._values, dtype=np.float64)
    if method == "jackknife+":
        own_loo = own_keys.pool(None, loo=True, n_jobs=estimator.n_jobs)
        other_loo = model._leave_one_out_predict(other_dense)
        own = JackknifePlus(own_keys, values, values - own_loo)
        other = JackknifePlus(
            other_keys, model._moments, Y - other_loo, model._solve_at
        )
        return AveragedPlus(parts, own, other)
    folds = cv_folds(own_keys.raw, values)
    own = CVPlus(own_keys, values, folds=folds)
    other = CVPlus(other_keys, model._moments, Y, model._solve_at, folds=folds)
    return AveragedPlus(parts, own, other)


def averaged_noise_state(estimator):
    """What the average's standard errors need: the learned attention's dense
    head and keys, the residuals (its values), the average's leave-one-out
    predictions of them, and each leave-one-out residual's variance factor over
    the noise's, ``1 + sum_k b_{-i,k}^2 / w'_k`` with ``b`` the average's
    leave-one-out weights (half the learned attention's, half the local-linear
    equivalent kernel's)."""
    parts = AveragedParts(estimator)
    model = parts.model
    values = np.asarray(estimator._values, dtype=np.float64)
    own_dense, own_keys = estimator._dense_interval_keys(values)
    _, other_keys = model._dense_interval_keys(model._moments)

    def averaged(rows, local_weights):
        _, own_weights = own_keys.pool(
            None, loo=True, loo_rows=rows, n_jobs=estimator.n_jobs, return_weights=True
        )
        return 0.5 * np.asarray(own_weights, dtype=np.float64) + 0.5 * local_weights

    other_loo, inflation = model._deflation(other_keys, combine=averaged)
    own_loo = own_keys.pool(None, loo=True, n_jobs=estimator.n_jobs)
    with np.errstate(over="ignore", invalid="ignore"):
        other_loo = np.ldexp(other_loo, parts.exponent) - parts.training_trend()
    loo = 0.5 * own_loo + 0.5 * other_loo
    return own_dense, own_keys, values, loo, inflation, parts


def averaged_std_rows(X, parts, own_keys, other_keys, variances):
    """Standard errors and the effective number of keys of some validated query
    rows ``X`` (the task of :func:`~skattn._engine.map_query_chunks`):
    ``sqrt(sum_j h_j(x)^2 sigma_j^2 / w_j)`` with the average's weights ``h =
    (a + l) / 2``, by chunks of rows."""
    from skattn._local_linear import _equivalent_kernel_rows

    n = X.shape[0]
    rows = chunk_rows(own_keys.n_keys, 8, n_temporaries=5)
    std = np.empty((n, variances.shape[1]))
    n_effective = np.empty(n)
    model = parts.model
    for start in range(0, n, rows):
        chunk = X[start : start + rows]
        _, own_weights, stats = own_keys.pool(
            parts.own_queries(chunk), return_weights=True, return_stats=True, n_jobs=1
        )
        pooled, weights = other_keys.pool(
            parts.other_queries(chunk), return_weights=True, n_jobs=1
        )
        design = model._design(parts.clipped(chunk).astype(np.float64))
        local = _equivalent_kernel_rows(model, pooled, weights, design)
        h = 0.5 * np.asarray(own_weights, dtype=np.float64) + 0.5 * local
        h *= h
        std[start : start + rows] = np.sqrt((h / own_keys.w) @ variances)
        n_effective[start : start + rows] = stats[:, 1]
    return std, n_effective
