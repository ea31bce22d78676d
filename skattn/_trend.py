"""The linear trend that attention corrects: a ridge regression fitted first, whose
residuals the attention pools.

``AttentionRegressor(trend="linear")`` predicts ``t(x) + sum_j p_j(x) (y_j - t(x_j))``:
the trend ``t`` is a weighted ridge regression of the targets on the standardised
features (penalty ``TREND_RIDGE`` times the total weight, so weights act as
repetition), fitted once before the metric is learned; the attention then learns,
by leave-one-out, how the residuals vary. A feature whose bandwidth grows without
bound leaves only its linear part, and every bandwidth infinite gives the ridge
regression itself, so the model nests the linear one.

The trend is a plain dict of arrays (persistence stores no custom objects). It does
not extrapolate: a query's features are clipped to their training range before the
trend is evaluated, so beyond the data it is constant (finite for every finite query),
and a query with a feature far outside (diamonds recorded with zero dimensions) is not
carried off by the linear coefficients: on the development panel's diamonds, linear
extrapolation gave one such test row a log price of -0.3 against 9.8, the clipped
trend 3.9.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

from skattn._bandwidth import weighted_spread
from skattn._engine import weighted_mean
from skattn._losses import get_loss, standardise_with, unstandardise

__all__ = [
    "TREND_RIDGE",
    "apply_trend",
    "fit_trend",
    "trend_coefficients",
    "trend_without",
]

# The ridge penalty of the trend, per unit of total sample weight, on standardised
# features: light shrinkage (measured on the development panel: 1e-3, 1e-2 and 1e-1
# give the same scores to 0.004), and a solvable system for collinear columns.
TREND_RIDGE = 1e-2


def fit_trend(X, Y, sample_weight, return_inverse=False):
    """The weighted ridge regression of ``Y`` (2-D) on ``X``, on standardised
    features and targets (no overflow for data near the float64 limit).

    Returns a dict: ``center`` and ``spread`` of the features, ``low`` and ``high``
    their standardised training range, ``coef`` of shape
    (n_features, n_outputs) and ``intercept`` of shape (n_outputs,) in standardised
    target units, and the target map ``first``, ``second``, ``mean`` (see
    :meth:`~skattn._losses.SquaredLoss.target_map`). With ``return_inverse``, also
    the inverse of the penalised Gram matrix, for :func:`trend_without`.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    w = np.asarray(sample_weight, dtype=np.float64)
    center = weighted_mean(X, w)
    spread = weighted_spread(X, w)
    Z = X / spread - center / spread
    first, second, mean = target = get_loss("squared").target_map(Y, w)
    T = standardise_with(Y, target)
    total = w.sum()
    z_mean = (w @ Z) / total
    t_mean = (w @ T) / total
    Zc = Z - z_mean
    gram = Zc.T @ (w[:, None] * Zc)
    gram[np.diag_indices_from(gram)] += TREND_RIDGE * total
    inverse = np.linalg.inv(gram)
    coef = inverse @ (Zc.T @ (w[:, None] * (T - t_mean)))
    trend = {
        "center": center,
        "spread": spread,
        "low": Z.min(axis=0),
        "high": Z.max(axis=0),
        "coef": coef,
        "intercept": t_mean - z_mean @ coef,
        "first": first,
        "second": second,
        "mean": mean,
        "z_mean": z_mean,
    }
    return (trend, inverse) if return_inverse else trend


def trend_without(trend, inverse, j):
    """The trend refitted without feature ``j``, from the full fit and the inverse
    of its penalised Gram matrix: ridge regression is least squares on the design
    stacked over ``sqrt(ridge) I``, and dropping a column of least squares moves
    the other coefficients by ``-inverse[:, j] coef[j] / inverse[j, j]``."""
    coef = trend["coef"] - np.outer(inverse[:, j], trend["coef"][j]) / inverse[j, j]
    coef[j] = 0.0
    t_mean = trend["intercept"] + trend["z_mean"] @ trend["coef"]
    return {**trend, "coef": coef, "intercept": t_mean - trend["z_mean"] @ coef}


def apply_trend(trend, X):
    """The trend at the rows ``X``, in the units of the targets (float64, shape
    (n_rows, n_outputs)); finite for every finite ``X``."""
    X = np.asarray(X, dtype=np.float64)
    Z = X / trend["spread"] - trend["center"] / trend["spread"]
    Z = np.clip(Z, trend["low"], trend["high"])
    T = Z @ trend["coef"] + trend["intercept"]
    with np.errstate(over="ignore"):
        out = unstandardise(T, (trend["first"], trend["second"], trend["mean"]))
    limit = np.finfo(np.float64).max
    return np.clip(out, -limit, limit)


def trend_coefficients(trend):
    """``coef_`` (n_outputs, n_features) and ``intercept_`` (n_outputs,) of the
    trend in the units of ``X`` and ``y``: ``t(x) = coef_ @ x + intercept_`` within
    the training range of every feature."""
    unit = np.ldexp(1.0, trend["first"] + trend["second"])
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        coef = (trend["coef"] / trend["spread"][:, None]).T * unit
        intercept = (
            trend["intercept"] - (trend["center"] / trend["spread"]) @ trend["coef"]
        ) * unit + np.ldexp(trend["mean"], trend["first"])
    return coef, intercept
