"""Learning the attention metric: the leave-one-out objective and its gradient, one
small class per metric parametrisation, the start values and the optimisers.

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
times the squared distance of the parameters from a reference (the start: more
penalty, closer to that Nadaraya-Watson smoother, never to the mean).

Gradient: with ``g_i = dL/dy_hat_i`` (``2 w_i (y_hat_i - y_i)`` for the squared
error, ``-w_i e_{c_i} / y_hat_i[c_i]`` for the log loss),
``dL/ds_ij = p_ij g_i . (y_j - y_hat_i)`` and
``A_ij = dL/d(u_ij^2) = dL/ds_ij * d log K / d(u^2)`` (zero on the diagonal), so for the
diagonal metric ``dL/dtheta_k = -2 sum_ij A_ij (zs_ik - zs_jk)^2``, which expands into
row sums, column sums and one GEMM ``A @ Zs``, and for the full metric
``dL/dL = 2 L sum_ij A_ij (z_i - z_j)(z_i - z_j)^T``. Everything is chunked over query
rows: O(n^2 d) time, O(chunk * n) memory, no n x n x d tensor.

What differs between metrics (the parameter vector, the map of the standardised
features, the chain rule of the gradient, bounds, start values and the fitted
attributes) is owned by one class per parametrisation: :class:`IsotropicMetric`,
:class:`DiagonalMetric`, :class:`FullMetric`. The layer knows nothing of
estimators: :func:`initial_params`, :func:`minimize_lbfgs` and
:func:`minimize_adam` take the objective and plain options, and report through a
callback.
"""

# SPDX-License-Identifier: BSD-3-Clause

import threading

import numpy as np
from scipy.optimize import minimize
from sklearn.utils import check_random_state

from skattn._bandwidth import (
    MAX_BANDWIDTH,
    MIN_BANDWIDTH,
    cv_bandwidth,
    scott_factor,
    weighted_spread,
)
from skattn._engine import chunk_rows, map_slices, prepare_keys, weighted_mean
from skattn._kernels import get_kernel
from skattn._local import LocalConstant
from skattn._losses import get_loss
from skattn._trend import corrected_probabilities

__all__ = [
    "AUTO_FULL_MAX_FEATURES",
    "AUTO_FULL_MIN_ROWS",
    "AUTO_FULL_Z",
    "EARLY_STOPPING_MIN_ROWS",
    "LEARNABLE_KERNELS",
    "METRICS",
    "LastValue",
    "DiagonalMetric",
    "FullMetric",
    "HeldOutLoss",
    "IsotropicMetric",
    "LeaveOneOutObjective",
    "candidate_count",
    "initial_params",
    "make_metric",
    "minimize_adam",
    "minimize_lbfgs",
]

LEARNABLE_KERNELS = ("gaussian", "exponential")
PARAM_BOUND = 25.0
# The most parameters a full metric may have (n_components * n_features): L-BFGS-B
# keeps about 20 vectors of them, 160 MiB at this size.
MAX_FULL_PARAMS = 2**20
# Adam's moment decays and the number of mini-batch steps without improvement of the
# smoothed loss after which the mini-batch mode stops.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
N_ITER_NO_CHANGE = 10
# The improvement of the held-out loss (1 - R^2, or the mean log loss) that counts
# for early stopping.
EARLY_STOPPING_TOL = 1e-4
# Rows whose leave-one-out loss the drop-feature importance measures (a sample
# above): d + 1 passes of O(rows^2 d).
IMPORTANCE_MAX_ROWS = 2000
# metric="auto": after the bandwidths, a full projection started from them is tried
# on data of AUTO_FULL_MIN_ROWS rows or more and at most AUTO_FULL_MAX_FEATURES
# features, and kept where its held-out loss is lower than the bandwidths' by more
# than AUTO_FULL_Z standard errors of the held-out rows' paired losses.
AUTO_FULL_MIN_ROWS = 100
AUTO_FULL_MAX_FEATURES = 64
AUTO_FULL_Z = 2.0
# early_stopping="auto" holds rows out (for the metrics that stop early by default)
# from this many rows on: fewer leave a held-out set of a handful of rows.
EARLY_STOPPING_MIN_ROWS = 100


# The per-feature bandwidths' floor (DiagonalMetric.saturated): where a row one of
# the feature's smallest gaps between distinct values away weighs this log-weight
# of a row level with the query (-32: an eighth of the gap for the Gaussian, a
# 32nd for the exponential kernel).
SATURATION_LOG_WEIGHT = -32.0


def saturation_distance(kernel):
    """The scaled distance at which ``kernel``'s log-weight is
    ``SATURATION_LOG_WEIGHT`` (inf when that is -inf: no floor)."""
    if not np.isfinite(SATURATION_LOG_WEIGHT):
        return np.inf
    return kernel.distance_at(SATURATION_LOG_WEIGHT)


def smallest_gaps(X):
    """Each column's smallest positive difference between two of its values (0
    for a constant column)."""
    if len(X) < 2:
        return np.zeros(X.shape[1])
    steps = np.diff(np.sort(X, axis=0), axis=0)
    steps[steps <= 0] = np.inf
    gaps = steps.min(axis=0)
    gaps[~np.isfinite(gaps)] = 0.0
    return gaps


# -- parametrisations ----------------------------------------------------------------


class _Metric:
    """What every parametrisation shares: the spreads that standardise the
    features."""

    def spread(self, spread):
        """The spread that standardises each feature, from the weighted spreads."""
        return spread

    def setup(self, spread):
        """Fix the spread of the standardised features (bounds and units)."""
        self.spreads = spread
        self.max_bandwidth = None

    def saturated(self, params, floor):
        """The learned parameters raised to where nothing changes below them,
        ``floor`` (one bandwidth per feature, in units of its spread; 0: none),
        once the optimiser has stopped. Only the per-feature bandwidths have
        one."""
        return params

    def cap(self, max_bandwidth):
        """Bound the bandwidths by ``max_bandwidth`` (data units, one per feature)."""
        raise ValueError(f"metric={self.name!r} has no bandwidths to cap.")


class DiagonalMetric(_Metric):
    """One bandwidth per feature: ``theta`` the log-bandwidths in units of each
    feature's spread; distances are Euclidean on ``Z * exp(-theta)``."""

    name = "diagonal"
    attribute = "bandwidth_"
    # A few bandwidths: the leave-one-out loss guards them itself (held-out early
    # stopping was mixed on the development panel: +0.02 to +0.07 R^2 on diabetes
    # and Housing, -0.055 on mpg, -0.009 on Wages).
    stops_early = False

    def __init__(self, n_features, n_components=None):
        self.n_features = n_features

    @property
    def n_params(self):
        return self.n_features

    @property
    def bounds(self):
        """(lower, upper) arrays: log-bandwidths within ``PARAM_BOUND`` of a
        feature's spread and below ``MAX_BANDWIDTH``, a sixteenth of the float64
        range. Beyond them nothing changes but overflow: a feature whose bandwidth
        is 1e-11 of its spread already separates every distinct value, and one at
        1e11 is already ignored."""
        upper = np.minimum(PARAM_BOUND, np.log(MAX_BANDWIDTH) - np.log(self.spreads))
        if self.max_bandwidth is not None:
            cap = np.log(self.max_bandwidth) - np.log(self.spreads)
            upper = np.maximum(np.minimum(upper, cap), -PARAM_BOUND)
        lower = np.full(self.n_features, -PARAM_BOUND)
        return lower[: self.n_params], upper[: self.n_params]

    def saturated(self, params, floor):
        """Each log-bandwidth raised to ``floor`` (LeaveOneOutObjective.saturated:
        a row one of the feature's smallest gaps away weighs exp(-32) of a row
        level with the query along it there), so that ``bandwidth_`` of a binary
        feature says where it saturates rather than how far the optimiser
        drifted for nothing. One bandwidth for all (isotropic) has no floor."""
        # A bound in the optimiser instead cost 1.7x the iterations on one-hot
        # columns (Computers' first fold: 39 against 23, 15.8 s against 8.9 s)
        # for the same test R^2 (0.9390 against 0.9384).
        if self.n_params != self.n_features:
            return params
        with np.errstate(divide="ignore"):
            floor = np.log(floor)
        return np.maximum(params, np.minimum(floor, self.bounds[1]))

    def cap(self, max_bandwidth):
        self.max_bandwidth = np.broadcast_to(
            np.asarray(max_bandwidth, dtype=float), (self.n_features,)
        )

    def log_bandwidths(self, params):
        return np.broadcast_to(params, (self.n_features,))

    def project(self, Z, params):
        """The features on which distances are plain Euclidean."""
        return Z * np.exp(-self.log_bandwidths(params))

    def reduce(self, grad):
        """The gradient of the parameters from that of every log-bandwidth."""
        return grad

    # chain rule: per-chunk terms, then the gradient
    def key_matrix(self, Z_keys, keys_z):
        """The key-side matrix ``M`` of the chunk terms (they need ``A @ M``)."""
        return keys_z

    def chunk_terms(self, row_sums, AM, Zq, qz):
        """A chunk's terms of the gradient from the row sums of ``A`` and ``A @
        M``."""
        return row_sums @ (qz * qz), np.einsum("ij,ij->j", qz, AM)

    def zero_terms(self):
        return np.zeros(self.n_features), np.zeros(self.n_features)

    def gradient(self, params, row_part, col_sums, cross, Z_keys, keys_z):
        D = row_part + col_sums @ (keys_z * keys_z) - 2.0 * cross
        return self.reduce(-2.0 * D)

    # units
    def params_from_bandwidth(self, bandwidth):
        """Log-bandwidths in standardised units from bandwidths in data units."""
        theta = np.log(np.asarray(bandwidth, dtype=float) / self.spreads)
        return theta[: self.n_params].copy()

    def bandwidth_from_params(self, params):
        """Bandwidths in data units, one per feature."""
        return self.spreads * np.exp(self.log_bandwidths(params))

    def fitted(self, params):
        """The estimator's fitted attribute, and its head's inverse bandwidths and
        projection (None: the features as they are)."""
        bandwidth = self.bandwidth_from_params(params)
        return bandwidth, 1.0 / bandwidth, None

    # start values
    def identity(self):
        return self.params_from_bandwidth(np.ones(self.n_features))

    def from_start_bandwidth(self, bandwidth):
        """Parameters from a start bandwidth per feature (Scott, cv)."""
        return self.params_from_bandwidth(bandwidth)

    def from_array(self, init):
        """Parameters from a user's ``init`` array, validated."""
        init = np.asarray(init, dtype=np.float64)
        if init.ndim == 0 or init.shape == (1,):
            init = np.full(self.n_features, float(init.ravel()[0]))
        if init.shape != (self.n_features,):
            raise ValueError(
                f"init has shape {init.shape}; metric={self.name!r} expects one "
                f"bandwidth or one per feature, shape ({self.n_features},)."
            )
        if not (np.isfinite(init).all() and np.all(init > 0)):
            raise ValueError(
                f"init bandwidths must be positive and finite; got {init}."
            )
        return self.params_from_bandwidth(init)

    def from_fitted(self, value):
        """Parameters from a previous fit's attribute, or None if it does not fit."""
        if value is None or np.shape(value) != (self.n_features,):
            return None
        return self.params_from_bandwidth(value)

    def check_start_bandwidth(self, init):
        """Whether a start bandwidth per feature ("scott", "cv") can start this
        metric; raises if not (before any search)."""

    def pca(self, Z, w):
        raise ValueError(f"init='pca' needs metric='full'; got metric={self.name!r}.")


class IsotropicMetric(DiagonalMetric):
    """One bandwidth for every feature, on the root mean square spread."""

    name = "isotropic"

    def spread(self, spread):
        # the root mean square spread, free of overflow and underflow
        top = spread.max()
        return np.full(len(spread), top * np.sqrt(np.mean((spread / top) ** 2)))

    @property
    def n_params(self):
        return 1

    def reduce(self, grad):
        return np.array([grad.sum()])

    def from_array(self, init):
        init = np.asarray(init, dtype=np.float64)
        if init.ndim == 1 and init.shape[0] > 1 and not np.allclose(init, init[0]):
            raise ValueError("metric='isotropic' takes a single bandwidth as init.")
        return super().from_array(init)


class FullMetric(_Metric):
    """A projection ``L`` of shape (n_components, n_features) of the standardised
    features: distances are Euclidean on ``Z @ L.T``."""

    name = "full"
    attribute = "components_"
    # n_components * n_features parameters overfit the leave-one-out loss of small
    # or noisy data (diabetes: 5-fold R^2 0.083 after 100 iterations, 0.436 with
    # held-out early stopping; Housing 0.432 and 0.617).
    stops_early = True

    def __init__(self, n_features, n_components=None):
        self.n_features = n_features
        self.n_components = n_features if n_components is None else n_components
        if self.n_components > n_features:
            raise ValueError(
                f"n_components={self.n_components} must not exceed the number of "
                f"features ({n_features})."
            )
        if self.n_components * n_features > MAX_FULL_PARAMS:
            raise ValueError(
                f"metric='full' would learn n_components * n_features = "
                f"{self.n_components} * {n_features} = "
                f"{self.n_components * n_features:,} parameters, above the "
                f"{MAX_FULL_PARAMS:,} that L-BFGS-B can hold in memory and the data "
                "can inform; set n_components (say 10) or use metric='diagonal'."
            )

    @property
    def n_params(self):
        return self.n_components * self.n_features

    @property
    def bounds(self):
        """Projection entries below ``exp(PARAM_BOUND)`` in magnitude."""
        bound = float(np.exp(PARAM_BOUND))
        return np.full(self.n_params, -bound), np.full(self.n_params, bound)

    def matrix(self, params):
        return params.reshape(self.n_components, self.n_features)

    def project(self, Z, params):
        return Z @ self.matrix(params).T

    def key_matrix(self, Z_keys, keys_z):
        return Z_keys

    def chunk_terms(self, row_sums, AM, Zq, qz):
        return (Zq.T * row_sums) @ Zq, Zq.T @ AM

    def zero_terms(self):
        d = self.n_features
        return np.zeros((d, d)), np.zeros((d, d))

    def gradient(self, params, row_part, col_sums, cross, Z_keys, keys_z):
        M = row_part + (Z_keys.T * col_sums) @ Z_keys - cross - cross.T
        return (2.0 * self.matrix(params) @ M).ravel()

    def params_from_components(self, components):
        """``L`` (flattened) from a projection of the raw features."""
        return (np.asarray(components, dtype=float) * self.spreads).ravel()

    def components_from_params(self, params):
        """The projection of the (centred) raw features, (n_components, n_features)."""
        return self.matrix(params) / self.spreads

    def fitted(self, params):
        components = self.components_from_params(params)
        return components, np.ones(self.n_components), components

    def identity(self):
        return self.params_from_components(np.eye(self.n_components, self.n_features))

    def check_start_bandwidth(self, init):
        if self.n_components != self.n_features:
            raise ValueError(
                f"init={init!r} with metric='full' needs n_components equal to "
                f"n_features ({self.n_features}); use init='pca' or 'auto'."
            )

    def from_start_bandwidth(self, bandwidth):
        """The diagonal projection ``diag(1 / h)``."""
        return self.params_from_components(np.diag(1.0 / bandwidth))

    def from_array(self, init):
        init = np.asarray(init, dtype=np.float64)
        shape = (self.n_components, self.n_features)
        if init.shape != shape:
            raise ValueError(
                f"init has shape {init.shape}; metric='full' expects a projection "
                f"of shape {shape}."
            )
        if not np.isfinite(init).all():
            raise ValueError("init must be finite.")
        return self.params_from_components(init)

    def from_fitted(self, value):
        if value is None or np.shape(value) != (self.n_components, self.n_features):
            return None
        return self.params_from_components(value)

    def pca(self, Z, w):
        """The leading principal directions of the standardised features, each
        scaled by its Scott bandwidth."""
        cov = (Z.T * w) @ Z / w.sum()
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        order = np.argsort(eigenvalues)[::-1][: self.n_components]
        spread = np.sqrt(np.clip(eigenvalues[order], 0.0, None))
        spread[~(spread > 1e-12)] = 1.0
        h = spread * scott_factor(w.sum(), self.n_components)
        return (eigenvectors[:, order].T / h[:, None]).ravel()


_METRICS = {m.name: m for m in (IsotropicMetric, DiagonalMetric, FullMetric)}
METRICS = tuple(_METRICS)


def make_metric(metric, n_features, n_components=None):
    """The parametrisation object of a ``metric`` name."""
    if metric not in _METRICS:
        raise ValueError(f"Unknown metric {metric!r}; expected one of {METRICS}.")
    return _METRICS[metric](n_features, n_components)


# -- the objective -------------------------------------------------------------------


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
        The parametrisation (:func:`make_metric`).
    n_components : int or None
        Rows of ``L`` for the full metric (None: n_features).
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
    reference : ndarray of shape (n_params,), default=None
        The parameters the penalty pulls toward, ``alpha * ||params -
        reference||^2`` (a well-smoothed start: more penalty means closer to that
        Nadaraya-Watson, not to the mean); None means zeros.

    Attributes
    ----------
    metric : DiagonalMetric, IsotropicMetric or FullMetric
        The parametrisation: parameters <-> bandwidths or projection.
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
        reference=None,
        local=None,
        max_bandwidth=None,
        offset=None,
    ):
        self.kernel = get_kernel(kernel)
        self.loss = get_loss(loss)
        self.reference = None if reference is None else np.asarray(reference, float)
        if self.kernel.dlog_dsq is None:
            raise ValueError(f"kernel {self.kernel.name!r} cannot be learned.")
        X = np.asarray(X, dtype=np.float64)
        self.n_samples, self.n_features = X.shape
        self.metric = make_metric(metric, self.n_features, n_components)
        self.alpha = float(alpha)
        self.n_jobs = n_jobs
        self.unit_weights = unit_weights
        self.w = np.asarray(sample_weight, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        self.standardise_targets, _ = self.loss.standardiser(Y, self.w)
        # the loss is normalised by the targets' total sum of squares; with an
        # offset the keys carry the residuals and the loss is that of offset +
        # pooled residuals
        self.targets = self.standardise_targets(Y)
        self.normaliser = self.loss.normaliser(self.targets, self.w)
        self.Y = self.residuals(self.targets, offset)
        # the log loss scores the probabilities offset + pooled residuals (the
        # squared error of pooled residuals is already that of offset + pooled)
        self.offset_in_loss = self.loss.name == "log" and offset is not None
        self.center = weighted_mean(X, self.w)
        self.spread = self.metric.spread(weighted_spread(X, self.w))
        self.metric.setup(self.spread)
        # divided before centring: no overflow for data near the float64 limit
        self.Z = X / self.spread - self.center / self.spread
        self.local = local if local is not None else LocalConstant()
        if not isinstance(self.local, LocalConstant) and self.loss.name != "squared":
            raise ValueError("A local-linear fit is learned with the squared loss.")
        # what the keys carry: the targets, or a local fit's moments (on Z)
        self.values = self.local.values(self.Y, self.Z)
        if max_bandwidth is not None:
            self.metric.cap(max_bandwidth)
        # (Two chunks for small data, to use two threads, were measured and not
        # kept: n = 200 took twice as long, n = 500 no less.)
        self.rows = chunk_rows(
            self.n_samples, 8, n_temporaries=3 + self.local.n_temporaries
        )

    def residuals(self, targets, offset):
        """Standardised targets less an offset given in the targets' units (None:
        the targets)."""
        if offset is None:
            return targets
        offset = np.asarray(offset, dtype=np.float64).reshape(targets.shape)
        # the standardisation is affine: its linear part maps the offset
        zero = self.standardise_targets(np.zeros_like(offset))
        return targets - (self.standardise_targets(offset) - zero)

    @property
    def n_params(self):
        return self.metric.n_params

    @property
    def bounds(self):
        """Box bounds of the parameters, (lower, upper), one array each."""
        return self.metric.bounds

    def saturated(self, params):
        """Learned parameters raised to the per-feature bandwidths' floor: each
        feature's smallest gap between distinct values (rows of positive weight)
        over the kernel's :func:`saturation_distance`."""
        gaps = smallest_gaps(self.Z[self.w > 0])
        return self.metric.saturated(params, gaps / saturation_distance(self.kernel))

    def leave_one_out_loss(self, Z, rows=None, offset=None):
        """The leave-one-out loss (without penalty) of the pooling in which the
        standardised features ``Z`` are Euclidean; over the rows ``rows`` alone
        (keys and queries) when given; with ``offset`` (targets' units, every
        row) in place of the objective's."""
        Y, w, values, design = self.Y, self.w, self.values, self.Z
        targets = self.targets
        if offset is not None:
            Y = self.residuals(self.targets, offset)
            values = self.local.values(Y, self.Z)
        normaliser = self.loss.normaliser(self.targets, w)
        unit = self.unit_weights
        if rows is not None:
            Z, Y, w, values, design, targets = (
                Z[rows],
                Y[rows],
                w[rows],
                values[rows],
                design[rows],
                targets[rows],
            )
            unit = None if unit is None else unit[rows]
            normaliser = self.loss.normaliser(self.targets[rows], w)
        keys = prepare_keys(
            Z,
            values,
            kernel=self.kernel,
            key_weights=w,
            dtype=np.float64,
            unit_weights=unit,
        )
        pooled = keys.pool(None, loo=True, n_jobs=self.n_jobs)
        predictions, _ = self.local.solve(pooled, design)
        return self.loss.value(*self.scored(predictions, Y, targets), w) / normaliser

    def scored(self, predictions, Y, targets):
        """What the loss compares: the pooled residuals and the residuals ``Y``,
        or, for the log loss with an offset (the logistic trend), the trend's
        probabilities corrected by the pooled residuals
        (:func:`~skattn._trend.corrected_probabilities`) and the classes
        ``targets``."""
        if self.offset_in_loss:
            return corrected_probabilities(predictions, targets - Y)[0], targets
        return predictions, Y

    def value_and_gradient(self, predictions, Y, targets, w):
        """The loss of a chunk and its gradient with respect to the pooled values
        (:meth:`scored`'s comparison)."""
        if self.offset_in_loss:
            probabilities, backward = corrected_probabilities(predictions, targets - Y)
            value, G = self.loss.value_and_gradient(probabilities, targets, w)
            return value, backward(G)
        return self.loss.value_and_gradient(predictions, Y, w)

    def importance(self, params, max_rows=IMPORTANCE_MAX_ROWS, offset_without=None):
        """Drop-feature importance: how much the leave-one-out loss grows when a
        feature is left out of the learned distances (its standardised column
        zeroed), and of the offset (``offset_without(j)``: the offset refitted
        without feature ``j``, in the targets' units), normalised to sum to 1
        (uniform if no feature matters).

        It saturates where the metric's own scale does not: once a discrete
        feature's bandwidth is far below the gaps between its values, shrinking it
        further changes no distance that matters and no loss. Above ``max_rows``
        rows, a uniform sample of them (seed 0) serves as keys and queries.
        """
        rows = None
        if self.n_samples > max_rows:
            rng = np.random.default_rng(0)
            rows = np.sort(rng.choice(self.n_samples, max_rows, replace=False))
        base = self.leave_one_out_loss(self.metric.project(self.Z, params), rows)
        score = np.empty(self.n_features)
        for j in range(self.n_features):
            Z = self.Z.copy()
            Z[:, j] = 0.0
            offset = None if offset_without is None else offset_without(j)
            dropped = self.leave_one_out_loss(
                self.metric.project(Z, params), rows, offset
            )
            score[j] = max(dropped - base, 0.0)
        total = score.sum()
        if not np.isfinite(total) or total <= 0:
            return np.full(self.n_features, 1.0 / self.n_features)
        return score / total

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
        projected = self.metric.project(self.Z, params)
        key_rows = np.arange(self.n_samples) if candidates is None else candidates

        def of_keys(a):  # the rows that are keys (no copy when they all are)
            return a if candidates is None or a is None else a[candidates]

        template = getattr(self, "_all_keys", None)
        if candidates is None and template is not None:
            # every row a key: only their positions change from one call to the next
            keys = template.moved(projected)
        else:
            keys = prepare_keys(
                of_keys(projected),
                of_keys(self.values),
                kernel=self.kernel,
                key_weights=of_keys(self.w),
                dtype=np.float64,
                unit_weights=of_keys(self.unit_weights),
            )
            if candidates is None:
                self._all_keys = keys
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
        grad = self.metric.gradient(params, row_part, col_sums, cross, Z_keys, keys.z)
        factor = 1.0 / self.normaliser
        if rows is not None:
            factor *= self.w.sum() / self.w[queries].sum()
        deviation = params if self.reference is None else params - self.reference
        loss = loss * factor + self.alpha * float(deviation @ deviation)
        grad = grad * factor + 2.0 * self.alpha * deviation
        return loss, grad

    def held_out(self, X, Y, sample_weight, offset=None):
        """A :class:`HeldOutLoss` of rows that are not keys, in this objective's
        units (standardised as its training rows), with their ``offset``."""
        return HeldOutLoss(self, X, Y, sample_weight, offset)

    def _scratch(self, name, shape):
        """A float64 buffer of ``shape`` for the calling thread, kept for this
        objective's later evaluations: a fresh array of chunk size costs a page
        fault per 4 KiB on first touch (half the time of a local-linear evaluation
        at n = 500, 7 % of AttentionRegressor's at n = 3,000)."""
        store = self.__dict__.setdefault("_scratch_store", {})
        buffers = store.setdefault(threading.get_ident(), {})
        size = int(np.prod(shape))
        buffer = buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = buffers[name] = np.empty(size)
        return buffer[:size].reshape(shape)

    def _partial(self, keys, Y_keys, Z_keys, projected, queries, own):
        """Loss and gradient pieces of some query rows (sums over their chunks):
        ``Y_keys`` and ``Z_keys`` the targets and standardised features of the
        keys, ``own`` each query's position among them (-1 if none)."""
        n = keys.n_keys
        loss = 0.0
        row_part, cross = self.metric.zero_terms()
        col_sums = np.zeros(n)
        rows = min(self.rows, max(len(queries), 1))
        e_buf = self._scratch("e", (rows, n))
        gaussian = self.kernel.gemm_logits
        # other kernels' gradients need the squared distances: kept, not recomputed
        sq_buf = None if gaussian else self._scratch("sq", (rows, n))
        M = self.metric.key_matrix(Z_keys, keys.z)
        products = None
        if (
            gaussian
            and isinstance(self.local, LocalConstant)
            and _sums_by_gemm_pay(Y_keys.shape[1], M.shape[1])
        ):
            # A never formed: its sums and A @ M come from the attention by GEMMs
            # (_constant_gaussian_terms), one pass over each chunk
            products = _key_products(Y_keys, M)
        else:
            b_buf = self._scratch("b", (rows, n))
            w_buf = self._scratch("work", (rows, n))
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
                Zq = self.Z[chunk]
                predictions, state = self.local.solve(pooled, Zq)
                value, G = self.value_and_gradient(
                    predictions, self.Y[chunk], self.targets[chunk], self.w[chunk]
                )
                loss += value

                # A_ij = p_ij T_ij * dlogK/d(u^2) with T_ij = dL/ds_ij / p_ij, which
                # is g_i.(y_j - y_hat_i) (g_i = dL/dy_hat_i) for Nadaraya-Watson
                # (skattn._local)
                if products is not None:
                    row_sums, AM, col = _constant_gaussian_terms(
                        e, G, predictions, Y_keys, M, products, chunk_own
                    )
                    col_sums += col
                else:
                    A = self.local.score_terms(
                        G,
                        predictions,
                        state,
                        Zq,
                        Z_keys,
                        Y_keys,
                        out=b_buf[:m],
                        work=w_buf[:m],
                    )
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
                    AM = A @ M
                terms = self.metric.chunk_terms(row_sums, AM, Zq, qz)
                row_part += terms[0]
                cross += terms[1]
        return loss, row_part, col_sums, cross


# The widest key-side matrix of _constant_gaussian_terms worth its GEMM, and the
# most outputs: beyond them forming A (about seven passes over each chunk, and GEMMs
# of widths n_outputs and n_columns) is cheaper. Measured at n = 2,000 on 2 cores:
# 0.5-0.7x the time of forming A for one or two outputs up to width 66, 1.1-4.7x
# from three outputs or width 99 on.
GEMM_SUMS_MAX_WIDTH = 70
GEMM_SUMS_MAX_OUTPUTS = 2


def _sums_by_gemm_pay(n_outputs, n_columns):
    """Whether the sums of ``A`` are cheaper by GEMMs of the attention (a key-side
    matrix of width ``(n_outputs + 1)(n_columns + 1)``) than by forming ``A``."""
    return (
        n_outputs <= GEMM_SUMS_MAX_OUTPUTS
        and (n_outputs + 1) * (n_columns + 1) <= GEMM_SUMS_MAX_WIDTH
    )


def _key_products(Y_keys, M):
    """``[M, y_1 M, ..., y_o M, 1, Y]``, the keys' side of
    :func:`_constant_gaussian_terms` (n_keys rows)."""
    n, o = Y_keys.shape
    return np.hstack(
        [M] + [Y_keys[:, k : k + 1] * M for k in range(o)] + [np.ones((n, 1)), Y_keys]
    )


def _constant_gaussian_terms(P, G, predictions, Y_keys, M, products, own):
    """Row sums, column sums and ``A @ M`` of a chunk's ``A`` for the Gaussian
    kernel and Nadaraya-Watson, without forming ``A``.

    There ``A_ij = p_ij sum_o c_io (y_jo - y_hat_io)`` with ``c = -G / 2`` (module
    notes of :mod:`skattn._local`), so with ``u_i = sum_o c_io y_hat_io`` every sum
    of ``A`` is one of ``P`` times a key-side matrix (``products``,
    :func:`_key_products`) or a query-side one: ``A @ M = sum_o c_o (P (y_o M)) - u
    (P M)``, row sums ``sum_o c_o (P y_o) - u (P 1)``, column sums ``y_jo (c_o^T
    P)_j - (u^T P)_j``. A query's own key (``own``, -1 if none) takes no part: its
    entry, at distance 0, is taken back out.
    """
    m, o = G.shape
    d = M.shape[1]
    C = -0.5 * G
    u = np.einsum("io,io->i", C, predictions)
    PK = P @ products
    AM = np.einsum("io,iod->id", C, PK[:, d : (o + 1) * d].reshape(m, o, d))
    AM -= u[:, None] * PK[:, :d]
    row_sums = np.einsum("io,io->i", C, PK[:, (o + 1) * d + 1 :])
    row_sums -= u * PK[:, (o + 1) * d]
    CP = np.vstack([C.T, u[None]]) @ P
    col = np.einsum("oj,jo->j", CP[:o], Y_keys) - CP[o]
    has = np.flatnonzero(own >= 0)
    if has.size:
        j = own[has]
        a = P[has, j] * (np.einsum("io,io->i", C[has], Y_keys[j]) - u[has])
        row_sums[has] -= a
        AM[has] -= a[:, None] * M[j]
        np.subtract.at(col, j, a)  # (a key may be the own of two queries)
    return row_sums, AM, col


class LinearPrior:
    """A diagonal metric's leave-one-out objective with a prior toward the linear
    fit: ``log(objective) + (strength / n) * sum_j (s_j / h_j)^2``.

    For local-linear pooling an infinite bandwidth is a feature entering linearly,
    so a Gaussian prior on the inverse bandwidths (in units of each feature's
    spread ``s_j``) of scale ``1 / sqrt(strength)`` shrinks toward ordinary least
    squares, never toward the mean. The loss enters by its log (as a likelihood
    does, up to ``n / 2``): the prior weighs the same against a noisy and an
    almost noise-free target, and its weight shrinks as ``1 / n``.

    Parameters
    ----------
    objective : LeaveOneOutObjective
        A diagonal metric's objective (its parameters the log-bandwidths in spread
        units) without a penalty of its own.
    strength : float
        ``1 / scale^2`` of the prior on ``s_j / h_j``.
    """

    def __init__(self, objective, strength):
        if objective.metric.name != "diagonal" or objective.alpha != 0.0:
            raise ValueError("LinearPrior needs a diagonal metric and alpha=0.")
        self.objective = objective
        self.metric = objective.metric
        self.bounds = objective.bounds
        self.weight = float(strength) / float(objective.w.sum())

    def __call__(self, params):
        loss, grad = self.objective(params)
        loss = max(loss, np.finfo(np.float64).tiny)  # an exact fit: log stays finite
        precision = np.exp(-2.0 * np.asarray(params, dtype=np.float64))
        value = np.log(loss) + self.weight * precision.sum()
        return value, grad / loss - 2.0 * self.weight * precision


class HeldOutLoss:
    """The loss of held-out rows that attend to the objective's training rows (the
    keys), at the objective's parameters: the early-stopping score. Normalised as the
    objective is (``1 - R^2`` of the held-out rows for the squared error, their mean
    log loss for classes), without the penalty."""

    def __init__(self, objective, X, Y, sample_weight, offset=None):
        self.objective = objective
        X = np.asarray(X, dtype=np.float64)
        self.Z = X / objective.spread - objective.center / objective.spread
        # in the units of the training targets
        targets = objective.standardise_targets(np.asarray(Y, dtype=np.float64))
        self.w = np.asarray(sample_weight, dtype=np.float64)
        self.normaliser = objective.loss.normaliser(targets, self.w)
        self.Y = objective.residuals(targets, offset)
        self.targets = targets

    def __call__(self, params):
        return float(self.row_losses(params).sum())

    def row_losses(self, params):
        """Each held-out row's share of the loss (its weight times its loss,
        normalised): they sum to the held-out loss."""
        objective = self.objective
        keys = prepare_keys(
            objective.metric.project(objective.Z, params),
            objective.values,
            kernel=objective.kernel,
            key_weights=objective.w,
            dtype=np.float64,
        )
        pooled = keys.pool(
            objective.metric.project(self.Z, params), n_jobs=objective.n_jobs
        )
        predictions, _ = objective.local.solve(pooled, self.Z)
        scored = objective.scored(predictions, self.Y, self.targets)
        return self.w * objective.loss.rows(*scored) / self.normaliser


# -- start values ----------------------------------------------------------------


def initial_params(
    objective, init, X, Y, *, minibatch=False, previous=None, progress=None
):
    """The parameters the optimisation starts from.

    Parameters
    ----------
    objective : LeaveOneOutObjective
        The objective (its metric, weights and standardised features).
    init : {"auto", "scott", "cv", "identity", "pca"} or array-like
        The estimators' ``init`` parameter: "scott" is Scott's rule on the
        metric's spreads, "cv" the leave-one-out choice of a global scale on it
        (:func:`~skattn._bandwidth.cv_bandwidth`), "identity" bandwidths of 1 or
        the identity projection, "pca" (full metric) the leading principal
        directions, each scaled by its Scott bandwidth; "auto" is "pca" for a
        full metric of fewer components than features, else "cv", or "scott" in
        mini-batch mode (where the O(n^2) search costs more than the fit).
    X, Y : ndarray
        The rows and targets the objective was built on ("cv" only).
    minibatch : bool, default=False
        Whether the fit is by mini-batches ("auto" only).
    previous : ndarray, default=None
        A previous fit's bandwidths or projection (warm start): used when its
        shape fits the metric.
    progress : Progress, default=None
        Lines of the "cv" start-up search.

    Returns
    -------
    params : ndarray of shape (n_params,)
        Within the objective's bounds.
    """
    metric = objective.metric
    params = metric.from_fitted(previous)
    if params is None:
        params = _start(objective, init, X, Y, minibatch, progress)
    return np.clip(params, *objective.bounds)


def _start(objective, init, X, Y, minibatch, progress=None):
    metric = objective.metric
    if not isinstance(init, str):
        return metric.from_array(init)
    if init == "auto":
        if isinstance(metric, FullMetric) and metric.n_components < metric.n_features:
            init = "pca"
        else:
            init = "scott" if minibatch else "cv"
    if init == "pca":
        return metric.pca(objective.Z, objective.w)
    if init == "identity":
        return metric.identity()
    # "scott" or "cv": Scott's factor on the metric's spreads (for "isotropic" the
    # common root mean square spread)
    metric.check_start_bandwidth(init)
    factor = scott_factor(objective.w.sum(), objective.n_features)
    base = np.maximum(objective.spread * factor, MIN_BANDWIDTH)
    if init == "cv":
        base, _ = cv_bandwidth(
            X,
            Y,
            objective.w,
            objective.kernel,
            n_jobs=objective.n_jobs,
            base=base,
            loss=objective.loss.name,
            unit_weights=objective.unit_weights,
            progress=progress,
        )
    return metric.from_start_bandwidth(base)


# -- optimisers ------------------------------------------------------------------


class LastValue:
    """An objective ``params -> (loss, grad)`` that remembers its last evaluation:
    called again at the same parameters, it returns them without computing."""

    def __init__(self, objective):
        self.objective = objective
        self.bounds = objective.bounds
        self._last = None

    def __call__(self, params):
        params = np.asarray(params, dtype=np.float64)
        if self._last is None or not np.array_equal(params, self._last[0]):
            loss, grad = self.objective(params)
            self._last = (params.copy(), loss, np.array(grad, copy=True))
        return self._last[1], self._last[2].copy()


class _EarlyStop(Exception):
    """Raised from the optimiser's callback once the held-out loss stopped
    improving."""


def minimize_lbfgs(
    objective,
    x0,
    *,
    max_iter,
    tol,
    report=None,
    held_out=None,
    n_iter_no_change=10,
):
    """L-BFGS-B on ``objective`` within its bounds, from ``x0``.

    ``report(params, n_iter, loss, held_out_loss)`` is called at the start
    (``n_iter=0``) and after every iteration (``held_out_loss`` None without
    ``held_out``). With ``held_out`` (a :class:`HeldOutLoss`), its loss is measured
    at the start and after every iteration; the fit stops once it has not improved
    by ``EARLY_STOPPING_TOL`` on its best for ``n_iter_no_change`` iterations in a
    row, and the iterate of the best held-out loss is returned.

    Returns
    -------
    params : ndarray
        The last iterate, or the one of the best held-out loss.
    n_iter : int
        Iterations run (at least 1).
    message : str or None
        None when L-BFGS-B converged or the held-out rule stopped it, else the
        optimiser's reason.
    held_out_losses : list of float or None
        The held-out loss at the start and after every iteration.
    best_iter : int
        The iteration of ``params`` (the last one without ``held_out``).
    """
    # the start is evaluated for report first, then again by the optimiser, and
    # the callback looks at the iterate the optimiser evaluated last
    fun = objective if isinstance(objective, LastValue) else LastValue(objective)
    losses = None if held_out is None else []
    best = {"loss": np.inf, "x": x0.copy(), "iter": 0, "since": 0}

    def observe(params, n_iter, loss):
        value = None
        if held_out is not None:
            value = float(held_out(params))
            losses.append(value)
            if value < best["loss"] - EARLY_STOPPING_TOL:
                best.update(loss=value, x=params.copy(), iter=n_iter, since=0)
            else:
                best["since"] += 1
        if report is not None:
            report(params, n_iter, loss, value)
        if held_out is not None and best["since"] >= n_iter_no_change:
            raise _EarlyStop

    n_iter = [0]

    def on_iteration(xk):
        n_iter[0] += 1
        loss = fun(xk)[0]
        observe(xk, n_iter[0], loss)

    message = None
    try:
        observe(x0, 0, fun(x0)[0])
        result = minimize(
            fun,
            x0,
            method="L-BFGS-B",
            jac=True,
            bounds=list(zip(*objective.bounds, strict=True)),
            tol=tol,
            options={"maxiter": max_iter},
            callback=on_iteration,
        )
    except _EarlyStop:
        return best["x"], max(n_iter[0], 1), None, losses, best["iter"]
    # (with every bound pinned, lower == upper, SciPy returns no status)
    if result.get("status", 0) != 0:
        message = str(result.message)
    n_iter = max(int(result.get("nit", 0)), 1)
    if held_out is None:
        return result.x, n_iter, message, None, n_iter
    # the last iterate may not be the best held out
    return best["x"], n_iter, message, losses, best["iter"]


def candidate_count(n_candidates, n):
    """The number of keys sampled per mini-batch step (None: every row); a float
    is a fraction of the ``n`` rows."""
    if n_candidates is None:
        return None
    if isinstance(n_candidates, (int, np.integer)):
        return min(int(n_candidates), n)
    return max(1, min(n, int(np.ceil(n_candidates * n))))


def minimize_adam(
    objective,
    x0,
    *,
    batch_size,
    max_iter,
    tol,
    learning_rate,
    n_candidates=None,
    random_state=None,
    report=None,
):
    """Adam on mini-batches of ``batch_size`` query rows (and, with
    ``n_candidates``, a uniform sample of that many keys per step), within the
    objective's bounds.

    The fit stops when the smoothed loss (an exponential average, weight 0.1) has
    not improved by ``tol`` relative to its best for ``N_ITER_NO_CHANGE`` steps in
    a row, or after ``max_iter`` steps. ``report(params, step, loss)`` is called
    after every step (its fourth argument None). Returns
    ``(params, n_steps, converged)``.
    """
    rng = check_random_state(random_state)
    n = objective.n_samples
    batch = min(batch_size, n)
    n_candidates = candidate_count(n_candidates, n)
    params = x0.copy()
    m = np.zeros_like(params)
    v = np.zeros_like(params)
    beta1, beta2 = ADAM_BETAS
    smoothed = best = np.inf
    no_change = 0
    order = rng.permutation(n)
    position = 0
    converged = False
    step = 0
    for step in range(1, max_iter + 1):
        if position + batch > n:
            order = rng.permutation(n)
            position = 0
        rows = np.sort(order[position : position + batch])
        position += batch
        candidates = None
        if n_candidates is not None:
            candidates = np.sort(rng.choice(n, size=n_candidates, replace=False))
        loss, grad = objective(params, rows, candidates)
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad**2
        m_hat = m / (1 - beta1**step)
        v_hat = v / (1 - beta2**step)
        params = params - learning_rate * m_hat / (np.sqrt(v_hat) + ADAM_EPS)
        params = np.clip(params, *objective.bounds)
        if report is not None:
            report(params, step, loss, None)
        smoothed = loss if step == 1 else 0.9 * smoothed + 0.1 * loss
        if smoothed < best - tol * max(abs(best), 1e-12) or step == 1:
            best = smoothed
            no_change = 0
        else:
            no_change += 1
        if no_change >= N_ITER_NO_CHANGE:
            converged = True
            break
    return params, step, converged
