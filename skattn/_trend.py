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

``AttentionClassifier(trend="logistic")`` has the classifiers' counterpart: a
multinomial logistic regression ``pi`` on the standardised (and clipped) features,
whose probability residuals ``y_j - pi(x_j)`` the attention pools;
:func:`corrected_probabilities` adds them back, scaled down where a class would
fall below ``TREND_KEEP`` of its logistic probability.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

from skattn._bandwidth import weighted_spread
from skattn._engine import softmax, weighted_mean
from skattn._losses import get_loss, standardise_with, unstandardise

__all__ = [
    "TREND_C",
    "TREND_KEEP",
    "TREND_RIDGE",
    "apply_logistic_trend",
    "apply_trend",
    "corrected_probabilities",
    "fit_logistic_trend",
    "fit_trend",
    "trend_coefficients",
    "trend_without",
]

# The ridge penalty of the trend, per unit of total sample weight, on standardised
# features: light shrinkage (measured on the development panel: 1e-3, 1e-2 and 1e-1
# give the same scores to 0.004), and a solvable system for collinear columns.
TREND_RIDGE = 1e-2


def _standardised_features(X, w):
    """The weighted standardisation of ``X`` (divided before centring: no overflow
    near the float64 limit) and the trends' feature entries: ``center``,
    ``spread`` and the standardised training range ``low``, ``high``."""
    X = np.asarray(X, dtype=np.float64)
    center = weighted_mean(X, w)
    spread = weighted_spread(X, w)
    Z = X / spread - center / spread
    features = {
        "center": center,
        "spread": spread,
        "low": Z.min(axis=0),
        "high": Z.max(axis=0),
    }
    return Z, features


def _clipped_features(trend, X):
    """Rows standardised as the trend's training rows, clipped to their range."""
    X = np.asarray(X, dtype=np.float64)
    Z = X / trend["spread"] - trend["center"] / trend["spread"]
    return np.clip(Z, trend["low"], trend["high"])


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
    Y = np.asarray(Y, dtype=np.float64)
    w = np.asarray(sample_weight, dtype=np.float64)
    Z, features = _standardised_features(X, w)
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
        **features,
        "coef": coef,
        "intercept": t_mean - z_mean @ coef,
        "first": first,
        "second": second,
        "mean": mean,
        "z_mean": z_mean,
    }
    return (trend, inverse) if return_inverse else trend


# The inverse penalty of the classifiers' logistic trend: LogisticRegression's C on
# the standardised features, the sample (and class) weights as given.
TREND_C = 1.0


def fit_logistic_trend(X, Y, sample_weight):
    """The weighted multinomial logistic regression of the one-hot classes ``Y`` on
    the standardised features ``X`` (the classifiers' trend).

    Returns a dict: ``center``, ``spread``, ``low`` and ``high`` as
    :func:`fit_trend`, ``coef`` of shape (n_features, n_classes) and ``intercept``
    of shape (n_classes,) of the logits (classes absent from ``Y``'s rows of
    positive weight get a logit of -inf: probability 0). The weights act as
    repetition (LogisticRegression's ``sample_weight``, with its penalty).
    """
    from sklearn.linear_model import LogisticRegression

    w = np.asarray(sample_weight, dtype=np.float64)
    Z, features = _standardised_features(X, w)
    codes = np.argmax(Y, axis=1)
    present = np.unique(codes)
    n_features, n_classes = X.shape[1], Y.shape[1]
    coef = np.zeros((n_features, n_classes))
    intercept = np.full(n_classes, -np.inf)
    if len(present) == 1:
        intercept[present] = 0.0
    else:
        model = LogisticRegression(C=TREND_C, max_iter=1000)
        model.fit(Z, codes, sample_weight=w)
        if len(present) == 2:  # one logit: the second class against the first
            coef[:, present[1]] = model.coef_[0]
            intercept[present] = [0.0, model.intercept_[0]]
        else:
            coef[:, present] = model.coef_.T
            intercept[present] = model.intercept_
    return {**features, "coef": coef, "intercept": intercept}


def apply_logistic_trend(trend, X, without=None):
    """The logistic trend's class probabilities at the rows ``X`` (float64, shape
    (n_rows, n_classes), rows summing to 1), the features clipped to their
    training range; ``without``: a feature whose coefficients are zeroed."""
    Z = _clipped_features(trend, X)
    coef = trend["coef"]
    if without is not None:
        coef = coef.copy()
        coef[without] = 0.0
    with np.errstate(invalid="ignore"):
        logits = Z @ coef + trend["intercept"]
    logits[:, ~np.isfinite(trend["intercept"])] = -np.inf
    return softmax(logits, axis=1)


# Where the pooled residuals would take a class below this share of its logistic
# probability, the whole correction of that row is scaled back until it does not.
TREND_KEEP = 0.1


def corrected_probabilities(pooled, prior, keep=TREND_KEEP):
    """The logistic trend's probabilities ``prior`` corrected by the pooled
    residuals ``pooled`` (rows summing to 0): ``prior + t * pooled`` with the
    largest ``t`` in [0, 1] that keeps every class at or above ``keep`` times its
    prior. Rows then sum to 1 and lie in [0, 1].

    Returns the probabilities and ``backward(G)``, which maps the gradient ``G``
    of a loss with respect to the probabilities to the one with respect to
    ``pooled`` (``t`` depends on ``pooled`` through the class that binds it).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(pooled < 0, (1.0 - keep) * prior / -pooled, np.inf)
    binding = np.argmin(room, axis=1)
    rows = np.arange(len(pooled))
    t = np.minimum(1.0, room[rows, binding])
    scaled = t < 1.0
    probabilities = prior + t[:, None] * pooled

    def backward(G):
        out = t[:, None] * G
        # t = (1 - keep) prior_k / -pooled_k for the binding class k:
        # dt/dpooled_k = t / -pooled_k
        if scaled.any():
            r = rows[scaled]
            k = binding[scaled]
            along = np.einsum("ij,ij->i", G[scaled], pooled[scaled])
            out[r, k] += along * t[scaled] / -pooled[r, k]
        return out

    return probabilities, backward


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
    Z = _clipped_features(trend, X)
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
