"""What every attention-pooling estimator shares: the stored training set (keys,
values, weights), heads that pool through the engine, the regressor and classifier
bases, and the mixin of the estimators that learn their metric."""

# SPDX-License-Identifier: BSD-3-Clause

import copy
import warnings
from numbers import Real
from typing import NamedTuple

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning, EfficiencyWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from skattn._bandwidth import select_bandwidth
from skattn._engine import map_query_chunks, prepare_keys
from skattn._kernels import get_kernel
from skattn._learning import (
    AUTO_FULL_MAX_FEATURES,
    AUTO_FULL_MIN_ROWS,
    AUTO_FULL_Z,
    EARLY_STOPPING_MIN_ROWS,
    LEARNABLE_KERNELS,
    N_ITER_NO_CHANGE,
    HeldOutLoss,
    LeaveOneOutObjective,
    initial_params,
    make_metric,
    minimize_adam,
    minimize_lbfgs,
)
from skattn._neighbors import CandidateKeys, check_neighbors
from skattn._trend import apply_logistic_trend, apply_trend, corrected_probabilities
from skattn._uncertainty import (
    METHODS,
    interval_rows,
    make_method,
    noise_variances,
    quantile_rows,
    standard_error_rows,
)
from skattn.utils._docstring import fill_doc
from skattn.utils._progress import Progress
from skattn.utils._sklearn_compat import validate_data

# Dense searches and full-batch fits compare every pair of rows: from this many rows
# on they warn once, with a rough time and what to do instead.
QUADRATIC_WARNING_ROWS = 20_000
# Rough seconds per pair of rows of a whole search or fit on two cores (d = 8,
# measured with benchmarks' data): the NW "cv" search, a learned metric's
# L-BFGS-B fit (~30 iterations), a local-linear "cv" fit.
_SECONDS_PER_PAIR = {"cv": 1.5e-7, "learn": 5e-7, "local_linear": 1e-6}
SUBSAMPLE_ADVICE = (
    "For large data, choose the bandwidth on a subsample of a few thousand rows and "
    "carry it to the full data at the rule-of-thumb rate, h * (n_subsample / n) ** "
    "(1 / (n_features + 4)) (the user guide's 'Scaling to large data'), then fit "
    "with that bandwidth; n_neighbors=k also makes prediction O(n k)."
)


def warn_quadratic(estimator, task, n_rows, cost, advice):
    """Warn once (EfficiencyWarning) when ``task`` of ``estimator`` (a name)
    compares every pair of ``n_rows`` rows and ``n_rows`` is large: a rough time
    on two cores (``cost`` a key of ``_SECONDS_PER_PAIR``) and ``advice``."""
    if n_rows < QUADRATIC_WARNING_ROWS:
        return
    seconds = _SECONDS_PER_PAIR[cost] * float(n_rows) ** 2
    rough = f"{seconds / 60:.0f} minutes" if seconds >= 90 else f"{seconds:.0f} s"
    warnings.warn(
        f"{estimator}: {task} on {n_rows:,} rows compares every pair of rows "
        f"(O(n^2) time; roughly {rough} on two cores). {advice}",
        EfficiencyWarning,
        stacklevel=3,
    )


def _lbfgs_stop_reason(n_iter, message, held_losses, best, n_iter_no_change):
    """Why a full-batch fit stopped, for the verbose output."""
    if message is not None:
        return f"stopped after {n_iter} iterations without converging: {message}"
    if held_losses is not None and len(held_losses) - 1 - best >= n_iter_no_change:
        return (
            f"early stopping after {n_iter} iterations: the held-out loss did not "
            f"improve for {n_iter_no_change} iterations; kept iteration {best}"
        )
    kept = "" if held_losses is None else f"; kept iteration {best}"
    return f"L-BFGS-B converged after {n_iter} iterations{kept}"


class AttentionHead:
    """One attention head over stored keys: how rows map into the space where
    distances are taken (as given, or through a learned projection), the inverse
    bandwidths there, the kernel, the keys' weights, and the neighbour index of
    top-k / radius attention (None: dense attention). Every estimator pools
    through heads: the regressors and classifiers have one, AttentionPooling one
    per bandwidth.

    Parameters
    ----------
    keys : ndarray of shape (n_keys, n_features)
        The keys, in the estimator's input space.
    key_weights : ndarray of shape (n_keys,)
        Their positive weights (sample weights, acting as repetition).
    kernel : Kernel
        The kernel.
    scale : ndarray of shape (n_features,) or (n_components,)
        Inverse bandwidths in the head's space.
    components : ndarray of shape (n_components, n_features), default=None
        A linear map of rows into the head's space; None: the identity.
    n_neighbors : int, "radius", transformer or None, default=None
        Candidate keys of each query (:class:`~skattn._neighbors.CandidateKeys`);
        None: every key.
    unit_weights : ndarray of shape (n_keys,), default=None
        The weight of one copy of each key, which leave-one-out takes out (1 by
        default; a classifier's class weights).
    """

    def __init__(
        self,
        keys,
        key_weights,
        kernel,
        scale,
        *,
        components=None,
        n_neighbors=None,
        unit_weights=None,
    ):
        self.components = components
        self.kernel = kernel
        self.n_neighbors = n_neighbors
        self.scale = np.asarray(scale, dtype=np.float64)
        self.key_weights = key_weights
        self.unit_weights = unit_weights
        self.keys = self.features(keys)
        self.index = None
        if n_neighbors is not None:
            self.index = CandidateKeys(
                self.keys, self.scale, n_neighbors, kernel.radius, key_weights
            )

    @property
    def dense(self):
        return self.index is None

    def as_dense(self):
        """This head with dense attention over every key (itself when dense)."""
        if self.dense:
            return self
        dense = copy.copy(self)
        dense.index = None
        return dense

    def features(self, X):
        """Rows in the head's space (before the ``1 / h`` scaling)."""
        return X if self.components is None else X @ self.components.T

    def prepare(self, values, dtype):
        """A dense head's keys prepared once to pool ``values`` in ``dtype``, to be
        shared by the threads that pool chunks of queries; None for top-k / radius
        attention."""
        if not self.dense:
            return None
        return prepare_keys(
            self.keys,
            values,
            kernel=self.kernel,
            scale=self.scale,
            key_weights=self.key_weights,
            dtype=dtype,
            unit_weights=self.unit_weights,
        )

    def pool(self, X, values, *, prepared=None, loo=False, n_jobs=None, **returns):
        """Pool ``values`` (one row per key) for the query rows ``X`` (None in
        leave-one-out mode, where the keys are the queries): the engine's result
        with the ``return_*`` flags asked for. ``prepared``: this head's
        :meth:`prepare` of ``values``, when the caller has it."""
        queries = None if loo else self.features(X)
        if self.dense:
            if prepared is None:
                dtype = self.keys.dtype
                if X is not None:
                    dtype = np.result_type(dtype, X.dtype)
                prepared = self.prepare(values, dtype)
            return prepared.pool(queries, loo=loo, n_jobs=n_jobs, **returns)
        return self.index.pool(
            queries,
            values,
            kernel=self.kernel,
            key_weights=self.key_weights,
            loo=loo,
            unit_weights=self.unit_weights,
            **returns,
        )


def pool_rows(X, head, values, prepared, returns):
    """:meth:`AttentionHead.pool` of some query rows on one thread (the task of
    :func:`~skattn._engine.map_query_chunks`)."""
    return head.pool(X, values, prepared=prepared, n_jobs=1, **returns)


class _AttentionPoolingBase(BaseEstimator):
    """Base class: outputs are attention pooling of values stored with the keys.

    ``fit`` stores the keys through ``_store_keys`` (and the values pooled,
    ``_values``), then builds the heads with ``_fit_head`` once the bandwidths
    are known.
    """

    def _store_keys(self, X, sample_weight):
        """Keep the rows of positive weight as keys; validate ``n_neighbors``
        against the kernel (before any O(n^2) search of the bandwidth). Returns
        the kept rows' indices."""
        keep = np.flatnonzero(sample_weight > 0)
        self.n_samples_fit_ = X.shape[0]
        # predict uses fitted state only: set_params(kernel=...) needs a refit
        self._kernel = get_kernel(self.kernel)
        check_neighbors(getattr(self, "n_neighbors", None), self._kernel)
        self._keys = X[keep]
        self._key_weights = sample_weight[keep]
        self._key_index = None if len(keep) == X.shape[0] else keep
        return keep

    def _store_training_set(self, X, y, sample_weight):
        """Keep the rows of positive weight as keys and their targets as values.

        Returns the kept rows, their targets as a 2-D array and their weights.
        """
        # The targets keep their own precision (float32 only when given as
        # float32): predictions lie within the range of the y that was given.
        y = np.asarray(y)
        y = y.astype(y.dtype if y.dtype == np.float32 else np.float64, copy=False)
        self._y_1d = y.ndim == 1
        Y = y.reshape(-1, 1) if self._y_1d else y
        keep = self._store_keys(X, sample_weight)
        self._values = Y[keep]
        return self._keys, self._values, self._key_weights

    def _pooled_values(self, dtype):
        """The values pooled for queries of the working ``dtype``."""
        return self._values

    def _select_bandwidth(self, X, Y, w, **options):
        """:func:`~skattn._bandwidth.select_bandwidth` of this estimator's
        ``bandwidth`` on the stored rows: "cv" warns once at large n and prints
        its progress with ``verbose``. ``options``: the loss, unit and rule
        weights."""
        if isinstance(self.bandwidth, str) and self.bandwidth == "cv":
            warn_quadratic(
                type(self).__name__, "bandwidth='cv'", len(X), "cv", SUBSAMPLE_ADVICE
            )
        return select_bandwidth(
            self.bandwidth,
            X,
            Y,
            w,
            self._kernel,
            n_jobs=self.n_jobs,
            progress=Progress(type(self).__name__, self.verbose),
            **options,
        )

    # -- persistence: the fitted state is arrays, scalars and strings ------------

    def __getstate__(self):
        """The state without the objects built from it: the kernel is kept by
        name, each head by its inverse bandwidths and projection, the neighbour
        index by its ``n_neighbors`` (rebuilt on loading), so pickle, joblib and
        ``skops.io`` store no trees, kernels or functions."""
        state = dict(super().__getstate__())
        heads = state.pop("_heads", None)
        if heads is None:
            return state
        state["_kernel_name"] = state.pop("_kernel").name
        state["_head_scales"] = [head.scale for head in heads]
        state["_head_components"] = [head.components for head in heads]
        state["_head_neighbors"] = heads[0].n_neighbors
        return state

    def __setstate__(self, state):
        state = dict(state)
        kernel_name = state.pop("_kernel_name", None)
        scales = state.pop("_head_scales", None)
        components = state.pop("_head_components", None)
        neighbors = state.pop("_head_neighbors", None)
        super().__setstate__(state)
        if kernel_name is None:
            return
        self._kernel = get_kernel(kernel_name)
        self._heads = [
            AttentionHead(
                self._keys,
                self._key_weights,
                self._kernel,
                scale,
                components=projection,
                n_neighbors=neighbors,
            )
            for scale, projection in zip(scales, components, strict=True)
        ]

    def _make_head(self, keys, key_weights, scale, components=None):
        return AttentionHead(
            keys,
            key_weights,
            self._kernel,
            scale,
            components=components,
            n_neighbors=getattr(self, "n_neighbors", None),
        )

    def _fit_head(self, scale, components=None):
        """The estimator's head over the stored keys (its neighbour index built
        here when ``n_neighbors`` is set), once the bandwidths are known."""
        self._heads = [
            self._make_head(self._keys, self._key_weights, scale, components)
        ]

    def _pool(self, X, head=0, **returns):
        """Validate the queries and pool the stored values through one head, by
        chunks of rows over the engine's threads (or through joblib, a Dask
        cluster inside ``parallel_config(backend="dask")``). Returns the validated
        queries and the pooled result."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        dtype = np.result_type(X.dtype, self._keys.dtype)
        head = self._heads[head]
        values = self._pooled_values(dtype)
        # Dense keys are prepared once, and shared by the threads of this process.
        prepared = head.prepare(values, dtype)
        pooled = map_query_chunks(
            pool_rows, X, self.n_jobs, head, values, prepared, returns
        )
        return X, pooled

    def attention_weights(self, X):
        """Attention weights of each query over the training rows.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        Returns
        -------
        weights : ndarray or scipy.sparse.csr_matrix of shape \
                (n_queries, n_samples_fit)
            Non-negative weights; each row sums to 1. Column ``j`` is training row
            ``j`` (zero for rows fitted with zero sample weight). Dense (mind the
            memory for many queries and training rows), or a CSR matrix holding
            each query's candidate keys when ``n_neighbors`` is set.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import NadarayaWatsonRegressor
        >>> X = np.array([[0.0], [1.0], [3.0]])
        >>> model = NadarayaWatsonRegressor(bandwidth=1.0).fit(X, [0.0, 1.0, 3.0])
        >>> weights = model.attention_weights([[0.5], [3.0]])
        >>> weights.round(3)
        array([[0.488, 0.488, 0.024],
               [0.01 , 0.118, 0.872]])
        >>> (weights @ np.array([0.0, 1.0, 3.0])).round(3)  # the predictions
        array([0.561, 2.735])
        """
        return self._attention_weights(X)

    def _attention_weights(self, X, head=0):
        X, (_, weights) = self._pool(X, head, return_weights=True)
        dtype = X.dtype
        return self._expand_weights(weights, dtype)

    def _expand_weights(self, weights, dtype):
        """Weights over the keys (dense or CSR) as weights over every training
        row, in ``dtype``: zero columns for the rows of zero sample weight."""
        weights = weights.astype(dtype, copy=False)
        if sparse.issparse(weights):
            weights.sort_indices()
            if self._key_index is not None:
                weights = sparse.csr_matrix(
                    (weights.data, self._key_index[weights.indices], weights.indptr),
                    shape=(weights.shape[0], self.n_samples_fit_),
                )
            return weights
        if self._key_index is None:
            return weights
        full = np.zeros((weights.shape[0], self.n_samples_fit_), dtype=dtype)
        full[:, self._key_index] = weights
        return full


class _AttentionPoolingRegressor(RegressorMixin, _AttentionPoolingBase):
    """Base class of the regressors: predictions pool the training targets."""

    @fill_doc
    def predict(self, X):
        """Predict by attention pooling of the training targets.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        Returns
        -------
        {{y_pred_pooled}}

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import NadarayaWatsonRegressor
        >>> X = np.array([[0.0], [1.0], [3.0]])
        >>> model = NadarayaWatsonRegressor(bandwidth=1.0).fit(X, [0.0, 1.0, 3.0])
        >>> model.predict([[0.5], [3.0]]).round(3)
        array([0.561, 2.735])
        """
        X, pooled = self._pool(X)
        pooled = self._add_trend(X, pooled)
        return pooled[:, 0] if self._y_1d else pooled

    def _add_trend(self, X, pooled):
        """Pooled residuals plus the fitted trend at the queries ``X`` (validated),
        in the dtype of ``y`` as fitted (float64 queries of a float32 fit too),
        finite (a regressor without a trend: ``pooled`` in that dtype)."""
        dtype = self._values.dtype
        trend = getattr(self, "_trend", None)
        if trend is None:
            return pooled.astype(dtype, copy=False)
        limit = np.finfo(dtype).max
        with np.errstate(over="ignore"):
            total = np.asarray(pooled, dtype=np.float64) + apply_trend(trend, X)
        return np.clip(total, -limit, limit).astype(dtype, copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _interval_task(X, head, method, coverage):
    """Interval bounds and the effective number of keys of some query rows on
    one thread (the task of :func:`~skattn._engine.map_query_chunks`)."""
    queries = np.asarray(head.features(X), dtype=np.float64)
    return interval_rows(queries, method, coverage)


def _quantile_task(X, head, method, quantiles):
    """Quantiles and the effective number of keys of some query rows on one
    thread."""
    queries = np.asarray(head.features(X), dtype=np.float64)
    return quantile_rows(queries, method, quantiles)


def _std_task(X, head, keys, variances, smoother=None):
    """Predictions, standard errors and the effective number of keys of some
    query rows on one thread (``smoother``: as :func:`standard_error_rows`)."""
    queries = np.asarray(head.features(X), dtype=np.float64)
    return standard_error_rows(queries, keys, variances, smoother)


# Below this effective number of training rows a query's prediction, interval and
# standard error rest on about one row: predict_interval and return_std warn.
LOW_SUPPORT = 2.0


class LowSupportWarning(UserWarning):
    """Warning of queries whose attention rests on about one training row.

    Raised by ``predict_interval`` and ``predict(return_std=True)`` when a query's
    effective number of training rows (``n_effective(X)``) is below 2: far from
    the data or in a thin region, its prediction, interval and standard error
    are then those of about one row.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from skattn import LowSupportWarning, NadarayaWatsonRegressor
    >>> X = np.array([[0.0], [1.0], [3.0]])
    >>> model = NadarayaWatsonRegressor(bandwidth=1.0).fit(X, [0.0, 1.0, 3.0])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = model.predict_interval([[100.0]])
    >>> caught[0].category is LowSupportWarning
    True
    """


def _warn_low_support(estimator, n_effective, what):
    low = int(np.sum(n_effective < LOW_SUPPORT))
    if low:
        warnings.warn(
            f"{type(estimator).__name__}.{what}: {low} of {len(n_effective)} queries "
            f"attend to fewer than {LOW_SUPPORT:g} training rows in effect "
            "(n_effective(X)): far from the data or in a thin region, their "
            "prediction and its uncertainty are those of about one row. A wider "
            "bandwidth, or more data there, gives them support.",
            LowSupportWarning,
            stacklevel=3,
        )


class _IntervalMixin:
    """``predict_interval``, ``predict_quantiles`` and ``n_effective`` of the
    regressors whose pooling knows its leave-one-out predictions at any query
    (:mod:`skattn._uncertainty`); ``_interval_method(method)`` gives the dense head
    and the method's object."""

    def n_effective(self, X):
        """The effective number of training rows each query attends to.

        Kish's effective sample size of the query's attention weights,
        ``1 / sum_i p_i^2 / w_i`` (``(sum a)^2 / sum a^2`` over the repeated
        rows: a row of sample weight ``w`` counts as ``w`` rows): 1 when the
        query attends to one row, ``n`` when it attends to all alike. Below 2,
        ``predict_interval`` and ``predict(return_std=True)`` warn
        (:class:`~skattn.LowSupportWarning`): the query's prediction, interval and
        standard error then rest on about one row.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        Returns
        -------
        n_effective : ndarray of shape (n_queries,)
            Between 1 and the total sample weight of the training rows (with
            ``n_neighbors``, of the candidate keys).

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import NadarayaWatsonRegressor
        >>> X = np.array([[0.0], [1.0], [3.0]])
        >>> model = NadarayaWatsonRegressor(bandwidth=1.0).fit(X, [0.0, 1.0, 3.0])
        >>> model.n_effective([[0.5], [3.0], [100.0]]).round(2)
        array([2.1 , 1.29, 1.  ])
        """
        _, (_, stats) = self._pool(X, return_stats=True)
        return np.asarray(stats[:, 1], dtype=np.float64)

    def _dense_interval_keys(self, values):
        """The head as dense attention over every training row and its keys
        prepared with ``values`` (float64); a total weight of one row or less
        leaves nothing when a row is left out, and is refused."""
        dense = self._heads[0].as_dense()
        keys = dense.prepare(values, np.float64)
        if float((keys.w / keys.unit).sum()) <= 1.0:
            raise ValueError(
                "Intervals and standard errors need a total sample weight above 1: "
                f"leaving a row out must leave another; got {float(keys.w.sum())!r}."
            )
        return dense, keys

    def _checked_method(self, method):
        """``_interval_method(method)`` of a valid ``method`` name."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got method={method!r}.")
        return self._interval_method(method)

    def _with_trend(self, X, bounds):
        """Bounds or quantiles of the pooled values (n_queries, k, n_outputs) in the
        targets' units: shifted by the fixed trend, finite ones clipped to the
        dtype's range, infinite ones kept; 1-D targets give (n_queries, k)."""
        finite = np.isfinite(bounds)
        exponent = getattr(self, "_target_exponent", None)
        if exponent is not None:  # local-linear's scaled targets (see its fit)
            with np.errstate(over="ignore"):
                bounds = np.ldexp(bounds, exponent)
        if getattr(self, "_trend", None) is not None:
            # the trend is held fixed, as the metric is: it shifts every bound
            with np.errstate(over="ignore", invalid="ignore"):
                bounds = bounds + apply_trend(self._trend, X)[:, None, :]
        limit = np.finfo(self._values.dtype).max
        bounds = np.where(finite, np.clip(bounds, -limit, limit), bounds)
        bounds = bounds.astype(self._values.dtype, copy=False)
        return bounds[:, :, 0] if self._y_1d else bounds

    def predict_interval(self, X, coverage=0.9, method="jackknife+"):
        """Prediction intervals, exact, at the cost of one prediction.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        coverage : float, default=0.9
            The target probability that the interval holds the query's target,
            in (0, 1). For "jackknife+" and "cv+", above ``n / (n + 1)`` (``n``
            the training rows, counted by weight) the bounds are infinite, as the
            methods require.

        method : {"jackknife+", "cv+", "quantile"}, default="jackknife+"
            - "jackknife+": Barber et al. (2021). Each training row's
              leave-one-out prediction at every query is exact (removing a row
              from attention pooling removes one term from the weighted sum and
              its normaliser), with the bandwidths (or learned metric, and the
              trend) held fixed: the interval is the jackknife+ of the fitted
              smoother, which covers a new ``(x, y)`` drawn like the training rows
              with probability at least ``1 - 2 (1 - coverage)``, and about
              ``coverage`` in practice (for a metric learned on a few hundred
              rows or fewer, up to a few points less: see the user guide).
            - "cv+": the same with 10 folds left out instead of single rows
              (order-free folds of the distinct training rows): residuals of
              out-of-fold predictions, somewhat wider intervals; the same
              guarantee up to the folds' size.
            - "quantile": the ``(1 - coverage) / 2`` and ``(1 + coverage) / 2``
              quantiles of the attention-weighted empirical distribution of the
              training targets at the query (R np's ``npqreg`` idea): adapts to
              noise that varies with ``x`` (heteroscedastic), without a
              finite-sample guarantee; it undercovers where a query attends to
              few rows (see :meth:`n_effective`).

        Returns
        -------
        bounds : ndarray of shape (n_queries, 2) or (n_queries, 2, n_outputs)
            Lower and upper bounds, in the dtype of the predictions. Computed with
            dense attention over every training row (whatever ``n_neighbors``):
            O(n_queries x n_samples) time, memory one chunk of queries.

        See Also
        --------
        predict_quantiles : Quantiles of the same methods' predictive
            distributions.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import NadarayaWatsonRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-3, 3, size=(300, 1))
        >>> y = np.sin(X[:, 0]) + 0.2 * rng.normal(size=300)
        >>> model = NadarayaWatsonRegressor(bandwidth="cv").fit(X, y)
        >>> bounds = model.predict_interval([[0.0], [1.5]], coverage=0.9)
        >>> bounds.shape
        (2, 2)
        >>> bool(np.all(bounds[:, 0] < bounds[:, 1]))
        True
        """
        if not (isinstance(coverage, Real) and not isinstance(coverage, bool)) or not (
            0.0 < float(coverage) < 1.0
        ):
            raise ValueError(
                f"coverage must be a number in (0, 1); got coverage={coverage!r}."
            )
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        dense, interval_method = self._checked_method(method)
        bounds, n_effective = map_query_chunks(
            _interval_task, X, self.n_jobs, dense, interval_method, float(coverage)
        )
        _warn_low_support(self, n_effective, "predict_interval")
        return self._with_trend(X, bounds)

    def predict_quantiles(self, X, quantiles=(0.05, 0.5, 0.95), method="jackknife+"):
        """Predict quantiles of the predictive distribution at each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        quantiles : float or sequence of float, default=(0.05, 0.5, 0.95)
            Probabilities in (0, 1).

        method : {"jackknife+", "cv+", "quantile"}, default="jackknife+"
            - "jackknife+": the quantiles of ``y_hat_{-i}(x) + r_i`` over the
              training rows, ``r_i = y_i - y_hat_{-i}(x_i)`` the signed
              leave-one-out residuals (exact, the metric and trend held fixed):
              each is a one-sided jackknife+ bound, the ``ceil(q (n + 1))``-th
              smallest for ``q >= 0.5`` and the ``floor(q (n + 1))``-th below
              (infinite beyond the ranks of the ``n`` rows, counted by weight);
              skewed noise gives asymmetric quantiles.
            - "cv+": the same with the predictions and residuals of 10 folds
              left out.
            - "quantile": the quantiles of the attention-weighted empirical
              distribution of the training targets (the smallest target whose
              cumulated attention reaches ``q``, numpy's "inverted_cdf" with the
              attention as weights).

        Returns
        -------
        values : ndarray of shape (n_queries, n_quantiles) or \
                (n_queries, n_quantiles, n_outputs)
            Non-decreasing along the quantiles when those are, in the dtype of the
            predictions. Computed with dense attention over every training row.

        See Also
        --------
        predict_interval : Two-sided intervals of the same methods.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import NadarayaWatsonRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-3, 3, size=(300, 1))
        >>> y = np.sin(X[:, 0]) + 0.2 * rng.normal(size=300)
        >>> model = NadarayaWatsonRegressor(bandwidth="cv").fit(X, y)
        >>> q = model.predict_quantiles([[0.0], [1.5]], quantiles=[0.1, 0.5, 0.9])
        >>> q.shape
        (2, 3)
        >>> bool(np.all(np.diff(q, axis=1) >= 0))
        True
        """
        q = np.atleast_1d(np.asarray(quantiles))
        if (
            q.ndim != 1
            or q.size == 0
            or q.dtype.kind not in "iuf"
            or not np.all((q > 0) & (q < 1))
        ):
            raise ValueError(
                "quantiles must be a number or a non-empty sequence of numbers in "
                f"(0, 1); got quantiles={quantiles!r}."
            )
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        dense, interval_method = self._checked_method(method)
        values, n_effective = map_query_chunks(
            _quantile_task,
            X,
            self.n_jobs,
            dense,
            interval_method,
            [float(t) for t in q],
        )
        _warn_low_support(self, n_effective, "predict_quantiles")
        return self._with_trend(X, values)


class _PredictionIntervalMixin(_IntervalMixin):
    """The intervals, quantiles and ``predict(return_std=True)`` of the regressors
    that pool their training targets (Nadaraya-Watson, learned metrics), from the
    same dense pooling (:mod:`skattn._uncertainty`)."""

    def _dense_keys(self, loo=True):
        """The head as dense attention over every training row, its keys
        prepared with the targets (float64), the leave-one-out predictions and
        the residuals' variance inflation over the noise's, ``1 + 1 / n_effective``
        (None without ``loo``)."""
        values = np.asarray(self._values, dtype=np.float64)
        dense, keys = self._dense_interval_keys(values)
        if not loo:
            return dense, keys, values, None, None
        loo, stats = keys.pool(None, loo=True, n_jobs=self.n_jobs, return_stats=True)
        # Var(y_j - y_hat_{-j}) = sigma_j^2 (1 + 1 / n_effective_j)
        inflation = 1.0 + 1.0 / stats[:, 1]
        return dense, keys, values, loo, inflation

    @fill_doc
    def predict(self, X, return_std=False):
        """Predict by attention pooling of the training targets.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        return_std : bool, default=False
            Also return the standard error of each prediction (of the fitted
            mean, not of a new observation), as
            :class:`~sklearn.gaussian_process.GaussianProcessRegressor` does:
            ``sqrt(sum_i p_i(x)^2 sigma^2(x_i))`` with the noise variance at each
            training row estimated by pooling the other rows' squared
            leave-one-out residuals with the same attention. Computed with dense
            attention over every training row (whatever ``n_neighbors``; the
            predictions are always those of ``predict(X)``).

        Returns
        -------
        {{y_pred_pooled}}

        {{y_std}}

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import NadarayaWatsonRegressor
        >>> X = np.array([[0.0], [1.0], [3.0]])
        >>> model = NadarayaWatsonRegressor(bandwidth=1.0).fit(X, [0.0, 1.0, 3.0])
        >>> model.predict([[0.5], [3.0]]).round(3)
        array([0.561, 2.735])
        >>> _, std = model.predict([[0.5], [3.0]], return_std=True)
        >>> bool(np.all(std > 0))
        True
        """
        if not return_std:
            return super().predict(X)
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        dense, keys, values, loo, inflation, smoother = self._standard_error_state()
        # the noise variance at each row: the other rows' squared residuals, each
        # deflated by its own leave-one-out prediction's share (1 + 1 / n_eff),
        # pooled
        variances, exponent = noise_variances(
            dense, values, loo, inflation, self.n_jobs
        )
        predictions, std, n_effective = map_query_chunks(
            _std_task, X, self.n_jobs, dense, keys, variances, smoother
        )
        std = np.ldexp(std, exponent)
        _warn_low_support(self, n_effective, "predict")
        dtype = self._values.dtype
        if self._heads[0].dense:
            predictions = self._add_trend(X, predictions).astype(dtype, copy=False)
        else:  # top-k or radius: the predictions are predict's, the errors dense
            predictions = super().predict(X).reshape(len(X), -1)
        std = std.astype(dtype, copy=False)
        if self._y_1d:
            return predictions[:, 0], std[:, 0]
        return predictions, std

    def _standard_error_state(self):
        """What ``predict(return_std=True)`` needs: the dense head, its keys
        prepared with the pooled values, the targets, their leave-one-out
        predictions, the residuals' variance inflation and the smoother's
        weights at the queries from their attention (None: the attention)."""
        return (*self._dense_keys(), None)

    def _interval_method(self, method):
        """The fitted state an interval ``method`` needs (:mod:`skattn._uncertainty`)
        and the dense head."""
        # only jackknife+ needs the leave-one-out residuals
        dense, keys, values, loo, _ = self._dense_keys(loo=method == "jackknife+")
        residuals = None if loo is None else values - loo
        return dense, make_method(method, keys, values, residuals)


class _AttentionPoolingClassifier(ClassifierMixin, _AttentionPoolingBase):
    """Base class of the classifiers: probabilities pool the one-hot training
    classes."""

    def _encode_classes(self, y, sample_weight, dtype):
        """``classes_``; the one-hot classes, the sample weights times the class
        weights, and each row's class weight (None without class weights): the
        weight of one copy of the row, which leave-one-out takes out."""
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        Y = np.eye(n_classes, dtype=dtype)[codes]
        if self.class_weight is None:
            return Y, sample_weight, None
        if isinstance(self.class_weight, str):  # "balanced", on weighted counts
            totals = np.bincount(codes, weights=sample_weight, minlength=n_classes)
            with np.errstate(divide="ignore"):
                weights = np.where(
                    totals > 0, sample_weight.sum() / (n_classes * totals), 0.0
                )
        else:
            unknown = set(self.class_weight) - set(self.classes_.tolist())
            if unknown:
                raise ValueError(
                    f"class_weight names classes {sorted(map(str, unknown))} that are "
                    f"not in y (classes: {self.classes_.tolist()})."
                )
            weights = np.array(
                [self.class_weight.get(c, 1.0) for c in self.classes_.tolist()],
                dtype=np.float64,
            )
            if not (np.all(np.isfinite(weights)) and np.all(weights >= 0)):
                raise ValueError(
                    f"class_weight must be finite and non-negative; got "
                    f"{self.class_weight!r}."
                )
        sample_weight = sample_weight * weights[codes]
        if not np.any(sample_weight > 0):
            raise ValueError(
                "Every sample has zero weight once multiplied by class_weight."
            )
        return Y, sample_weight, weights[codes]

    def predict_proba(self, X):
        """Class probabilities: the attention-pooled one-hot training classes.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        Returns
        -------
        proba : ndarray of shape (n_queries, n_classes)
            Non-negative, each row sums to 1; columns in the order of ``classes_``.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import NadarayaWatsonClassifier
        >>> X = np.array([[0.0], [1.0], [3.0], [4.0]])
        >>> clf = NadarayaWatsonClassifier(bandwidth=1.0).fit(X, ["a", "a", "b", "b"])
        >>> clf.predict_proba([[0.5], [2.0]]).round(3)
        array([[0.975, 0.025],
               [0.5  , 0.5  ]])
        """
        X, pooled = self._pool(X)
        dtype = X.dtype
        trend = getattr(self, "_trend", None)
        if trend is not None:
            pooled, _ = corrected_probabilities(
                np.asarray(pooled, dtype=np.float64), apply_logistic_trend(trend, X)
            )
        proba = np.clip(pooled, 0.0, 1.0)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba.astype(dtype, copy=False)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba` (``-inf`` for a probability of 0).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        Returns
        -------
        log_proba : ndarray of shape (n_queries, n_classes)
            Natural logarithms of the class probabilities, columns in the order of
            ``classes_``.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import NadarayaWatsonClassifier
        >>> X = np.array([[0.0], [1.0], [3.0], [4.0]])
        >>> clf = NadarayaWatsonClassifier(bandwidth=1.0).fit(X, ["a", "a", "b", "b"])
        >>> clf.predict_log_proba([[0.5], [2.0]]).round(3)
        array([[-0.026, -3.67 ],
               [-0.693, -0.693]])
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predict the most probable class of each query.

        Ties go to the class that comes first in ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        Returns
        -------
        y_pred : ndarray of shape (n_queries,)
            The predicted class labels, from ``classes_``.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import NadarayaWatsonClassifier
        >>> X = np.array([[0.0], [1.0], [3.0], [4.0]])
        >>> clf = NadarayaWatsonClassifier(bandwidth=1.0).fit(X, ["a", "a", "b", "b"])
        >>> clf.predict([[0.5], [2.0], [3.5]])  # 2.0 is a tie: the first class wins
        array(['a', 'a', 'b'], dtype='<U1')
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class _Stage(NamedTuple):
    """One learned metric of :class:`_MetricLearner`: its objective, the
    parameters reached, the rows learned from (None: every row), the start and
    the held-out loss of early stopping (None without)."""

    objective: LeaveOneOutObjective
    params: np.ndarray
    train: np.ndarray | None
    x0: np.ndarray
    held_out: HeldOutLoss | None


class _MetricLearner:
    """Learning of the bandwidths or projection, shared by AttentionRegressor and
    AttentionClassifier (they differ only in the loss on the pooled values): it
    validates the parameters, runs the learning layer's start values and
    optimiser, reports progress and sets the fitted attributes and head."""

    def _check_learnable(self, X):
        """Refuse parameters that cannot be learned, before any O(n^2) work."""
        if self.kernel not in LEARNABLE_KERNELS:
            raise ValueError(
                f"{type(self).__name__} learns only kernels with full support that "
                f"are differentiable almost everywhere {LEARNABLE_KERNELS}; got "
                f"kernel={self.kernel!r}. Use {self._nonparametric} for it."
            )
        if self.n_candidates is not None and self.batch_size is None:
            raise ValueError(
                f"n_candidates={self.n_candidates!r} samples the keys of each "
                "mini-batch step and needs batch_size; set batch_size (say 256) or "
                "leave n_candidates=None."
            )
        if isinstance(self.n_neighbors, str):
            raise ValueError(
                f"n_neighbors={self.n_neighbors!r} needs a compact kernel, and "
                f"{type(self).__name__} learns only kernels of full support; use an "
                "int n_neighbors for top-k attention."
            )
        # the parametrisation checks its own shape (n_components, ...) up front
        if self.metric != "auto":
            make_metric(self.metric, X.shape[1], self.n_components)

    def _learn(
        self, X, Y, w, loss, unit_weights=None, offset=None, offset_without=None
    ):
        """Minimise the leave-one-out ``loss`` over the metric; set the fitted
        attributes. ``X, Y, w``: the stored rows of positive weight; ``unit_weights``
        the weight of one copy of each row (class weights), 1 by default;
        ``offset`` a trend the pooled residuals correct (targets' units, every
        row) and ``offset_without(j)`` that trend refitted without feature ``j``
        (for the drop-feature importance)."""
        unit = 1.0 if unit_weights is None else float(np.max(unit_weights))
        if w.sum() <= unit:
            raise ValueError(
                f"{type(self).__name__} needs a total sample weight above 1 (leave-"
                f"one-out must leave at least one row); got {w.sum()!r}."
            )
        if self.batch_size is None:
            warn_quadratic(
                type(self).__name__,
                "learning the metric by full-batch L-BFGS-B",
                X.shape[0],
                "learn",
                "Set batch_size (mini-batch Adam, O(n * batch_size) per step) and "
                "n_candidates (keys sampled per step), or fit on a subsample; "
                "n_neighbors=k also makes prediction O(n k).",
            )
        # the time of the progress lines counts from here: start-up search included
        # (a composite estimator fitting this one names itself)
        name = getattr(self, "_progress_name", type(self).__name__)
        progress = Progress(name, self.verbose)
        self.loss_curve_ = []
        self.validation_scores_ = None
        self.best_iteration_ = None
        self.n_iter_ = 0
        data = (X, Y, w, loss, unit_weights, offset)
        first = "diagonal" if self.metric == "auto" else self.metric
        train, held = (None, None)
        if self._early_stopping(first, X.shape[0], X.shape[1]):
            train, held = self._split_rows(Y, w, unit, loss)
        stage = self._learn_stage(first, train, held, data, progress)
        if self.metric == "auto":
            stage = self._try_full(stage, data, unit, progress)
        self.metric_ = stage.objective.metric.name

        for attribute in ("bandwidth_", "components_"):
            if hasattr(self, attribute):
                delattr(self, attribute)
        metric = stage.objective.metric
        fitted, scale, components = metric.fitted(stage.params)
        setattr(self, metric.attribute, fitted)

        def of_train(a):
            return a if stage.train is None else a[stage.train]

        self.feature_importances_ = stage.objective.importance(
            stage.params,
            offset_without=None
            if offset_without is None
            else (lambda j: of_train(offset_without(j))),
        )
        self._fit_head(scale, components)
        return self

    def _learn_stage(self, metric, train, held, data, progress, start=None):
        """Learn one ``metric`` on the rows ``train`` (None: every row), stopping
        early on the rows ``held`` (None: no early stopping). ``start(objective)``
        gives the start, which is also the penalty's reference (None: ``init``,
        or the previous fit with ``warm_start``). Appends to ``loss_curve_`` and
        ``n_iter_``; sets the early-stopping attributes. Returns the
        :class:`_Stage`."""
        X, Y, w, loss, unit_weights, offset = data

        def of_train(a):
            return a if train is None or a is None else a[train]

        # alpha="auto": a penalty whose weight against the loss (a mean over the
        # rows) shrinks as 1 / n, as a prior's against a likelihood
        alpha = 1.0 / of_train(w).sum() if self.alpha == "auto" else self.alpha
        objective = LeaveOneOutObjective(
            of_train(X),
            of_train(Y),
            of_train(w),
            kernel=self.kernel,
            metric=metric,
            n_components=self.n_components if metric == "full" else None,
            alpha=alpha,
            n_jobs=self.n_jobs,
            loss=loss,
            unit_weights=of_train(unit_weights),
            offset=of_train(offset),
        )
        metric = objective.metric
        reference = None
        if start is None:
            previous = None
            if self.warm_start:
                previous = getattr(self, metric.attribute, None)
            x0 = initial_params(
                objective,
                self.init,
                of_train(X),
                of_train(Y),
                minibatch=self.batch_size is not None,
                previous=previous,
                progress=progress,
            )
            # the penalty pulls toward the start: more of it, closer to that
            # smoother (a warm start continues the previous fit's objective: its
            # reference)
            if previous is not None:
                reference = metric.from_fitted(getattr(self, "_reference", None))
            objective.reference = x0.copy() if reference is None else reference
            self._reference = metric.fitted(objective.reference)[0]
        else:
            x0 = np.clip(start(objective), *objective.bounds)
            objective.reference = x0.copy()
        held_out = None
        if held is not None:
            held_out = objective.held_out(
                X[held], Y[held], w[held], None if offset is None else offset[held]
            )
        report = self._reporter(metric, progress)
        if self.batch_size is None:
            params, n_iter, message, held_losses, best = minimize_lbfgs(
                objective,
                x0,
                max_iter=self.max_iter,
                tol=self.tol,
                report=report,
                held_out=held_out,
                n_iter_no_change=self.n_iter_no_change,
            )
            if held_losses is not None:
                # higher is better: R^2 for regression, -log loss for classes
                self.validation_scores_ = [
                    -value if loss == "log" else 1.0 - value for value in held_losses
                ]
                self.best_iteration_ = best
            progress.message(
                _lbfgs_stop_reason(
                    n_iter, message, held_losses, best, self.n_iter_no_change
                )
            )
            if message is not None:
                warnings.warn(
                    f"{type(self).__name__}: L-BFGS-B stopped without converging "
                    f"after {n_iter} iterations ({message}). Increase "
                    "max_iter or tol, or scale the data.",
                    ConvergenceWarning,
                    stacklevel=4,
                )
        else:
            params, n_iter, converged = minimize_adam(
                objective,
                x0,
                batch_size=self.batch_size,
                max_iter=self.max_iter,
                tol=self.tol,
                learning_rate=self.learning_rate_init,
                n_candidates=self.n_candidates,
                random_state=self.random_state,
                report=report,
            )
            progress.message(
                f"stopped after {n_iter} mini-batch steps: "
                + (
                    f"the smoothed loss improved by less than tol={self.tol} for "
                    f"{N_ITER_NO_CHANGE} steps"
                    if converged
                    else f"max_iter={self.max_iter} reached"
                )
            )
            if not converged:
                warnings.warn(
                    f"{type(self).__name__}: mini-batch Adam reached "
                    f"max_iter={self.max_iter} steps before its smoothed loss "
                    "stopped improving. Increase max_iter.",
                    ConvergenceWarning,
                    stacklevel=4,
                )
        self.n_iter_ += n_iter
        params = objective.saturated(params)
        return _Stage(objective, params, train, x0, held_out)

    def _try_full(self, diagonal, data, unit, progress):
        """``metric="auto"``: a full projection started from the learned
        bandwidths ``diagonal`` (a :class:`_Stage`), on the rows not held out,
        stopping early on those held out. Returns it where it beats the
        bandwidths on the held-out rows by ``AUTO_FULL_Z`` standard errors of
        their paired losses, else ``diagonal``."""
        X, Y, w, loss, _, _ = data
        n, d = X.shape
        if (
            self.batch_size is not None
            or self.early_stopping is False
            or d < 2
            or d > AUTO_FULL_MAX_FEATURES
            or n < AUTO_FULL_MIN_ROWS
        ):
            return diagonal
        train, held = self._split_rows(Y, w, unit, loss)
        if held is None or len(held) < 2:
            return diagonal
        metric = diagonal.objective.metric
        start = metric.fitted(diagonal.objective.reference)[0]
        learned = metric.fitted(diagonal.params)[0]
        progress.message(
            "metric='auto': a full projection from the bandwidths' start, "
            f"stopped early on {len(held)} held-out rows"
        )
        stage = self._learn_stage(
            "full",
            train,
            held,
            data,
            progress,
            start=lambda objective: objective.metric.from_start_bandwidth(start),
        )
        # the learned bandwidths' held-out loss, attending to the same keys (the
        # held-out rows took part in learning them: a margin in their favour)
        diagonal_params = stage.objective.metric.from_start_bandwidth(learned)
        gain = stage.held_out.row_losses(diagonal_params) - stage.held_out.row_losses(
            stage.params
        )
        error = np.sqrt(len(gain)) * np.std(gain, ddof=1)
        z = gain.sum() / error if error > 0 else 0.0
        keep = z > AUTO_FULL_Z
        diagonal_loss = float(stage.held_out(diagonal_params))
        full_loss = float(stage.held_out(stage.params))
        progress.message(
            "metric='auto': kept the "
            + ("full projection" if keep else "bandwidths")
            + f" (held-out loss {full_loss:.6g} against the bandwidths' "
            f"{diagonal_loss:.6g}: {z:.2f} standard errors lower; the rule needs "
            f"{AUTO_FULL_Z})"
        )
        return stage if keep else diagonal

    def _early_stopping(self, metric, n_rows, n_features):
        """Whether a fit of ``metric`` holds rows out to stop early (full-batch
        fits only)."""
        if self.batch_size is not None or self.early_stopping is False:
            return False
        if self.early_stopping == "auto":
            metric = make_metric(metric, n_features, self.n_components)
            return metric.stops_early and n_rows >= EARLY_STOPPING_MIN_ROWS
        return True

    def _split_rows(self, Y, w, unit, loss):
        """The rows the metric is learned on and those held out for early stopping
        ((None, None) where too few rows are left): ``validation_fraction`` of the
        rows, drawn with ``random_state`` (None: the draw of 0, so that a default
        fit is reproducible), stratified by class for classifiers."""
        n = len(w)
        seed = 0 if self.random_state is None else self.random_state
        n_held = int(np.ceil(self.validation_fraction * n))
        if n_held < 1 or n - n_held < 2:
            return None, None
        split = {
            "test_size": n_held,
            "random_state": check_random_state(seed),
        }
        strata = np.argmax(Y, axis=1) if loss == "log" else None
        try:
            train, held = train_test_split(np.arange(n), stratify=strata, **split)
        except ValueError:  # too few rows of a class to stratify
            split["random_state"] = check_random_state(seed)
            train, held = train_test_split(np.arange(n), **split)
        train, held = np.sort(train), np.sort(held)
        if w[train].sum() <= unit:
            return None, None
        return train, held

    def _reporter(self, metric, progress):
        """The optimiser's report: the loss curve, verbose lines (the iteration
        or mini-batch step out of ``max_iter``), the callback."""
        what = "iter" if self.batch_size is None else "step"

        def report(params, n_iter, loss, held_out_loss=None):
            self.loss_curve_.append(float(loss))
            progress.step(
                what,
                n_iter,
                self.max_iter,
                loss=float(loss),
                held_out_loss=None if held_out_loss is None else float(held_out_loss),
            )
            if self.callback is not None:
                self.callback(metric.fitted(params)[0], n_iter)

        return report
