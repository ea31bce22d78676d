"""Local-linear regression: attention pooling of a weighted least-squares fit."""

# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.utils.validation import check_is_fitted

from skattn._bandwidth import (
    MIN_BANDWIDTH,
    check_bandwidth_spec,
    select_bandwidth,
    weighted_spread,
)
from skattn._base import (
    SUBSAMPLE_ADVICE,
    AttentionHead,
    _AttentionPoolingRegressor,
    _IntervalMixin,
    _warn_low_support,
    warn_quadratic,
)
from skattn._engine import chunk_rows, map_query_chunks, owns_threads, weighted_mean
from skattn._kernels import KERNELS
from skattn._learning import (
    LEARNABLE_KERNELS,
    LastValue,
    LeaveOneOutObjective,
    LinearPrior,
    minimize_lbfgs,
)
from skattn._local import LocalLinear
from skattn._neighbors import NEIGHBORS_CONSTRAINT
from skattn._uncertainty import (
    CVPlus,
    JackknifePlus,
    LocalLinearQuantiles,
    noise_variances,
    standard_error_rows,
)
from skattn.utils._docstring import fill_doc
from skattn.utils._progress import Progress
from skattn.utils._sklearn_compat import (
    Interval,
    StrOptions,
    _fit_context,
    check_sample_weight,
    validate_data,
)

__all__ = ["LocalLinearRegressor"]

# The largest bandwidth "cv" tries, in units of each feature's range: there the
# Gaussian weights vary by less than 5e-9 across the data (the fit is linear in
# that feature to rounding).
LINEAR_BANDWIDTH = 1e4
# A feature counts as linear (``linear_features_``) when the kernel's weight at its
# whole range is within 1 % of the peak.
LINEAR_WEIGHT = 0.99
# L-BFGS-B of "cv": its iterations and tolerance (the objective is log(1 - R^2)
# of the leave-one-out fits plus the prior toward linear, so the tolerance on its
# change per iteration is one on the relative change of the leave-one-out error:
# 1e-6 stops where the digits that tell fits apart no longer move; 1e-9 took a
# third more iterations at n = 500, d = 3 for a loss lower by 2e-6).
CV_MAX_ITER = 100
CV_TOL = 1e-6
# "cv"'s prior toward the linear fit (skattn._learning.LinearPrior): a Gaussian
# prior of scale 1/2 on each inverse bandwidth in units of the feature's spread
# (bandwidths of two spreads and more cost little), weighed against the log of
# the leave-one-out loss as a likelihood of n rows would be. On the development
# panel (5-fold R^2, against no prior): Housing 0.662 (0.609), Salaries 0.456
# (0.439), Prestige 0.804 (0.788), airquality 0.596 (0.578), diabetes 0.489
# (0.488; LinearRegression 0.489), friedman3 0.974 (0.981), mpg 0.816 (0.820),
# friedman1, friedman2 and Bwages within 0.002; scale 1 (strength 1) left
# Housing at 0.621, scale 1/sqrt(10) took friedman3 to 0.965.
LINEAR_PRIOR = 4.0
# After the search, features whose range is at most this many bandwidths are tried
# at the cap (the linear limit; _cv_bandwidth).
_SNAP_RATIO = 1.0
# The global factors on the Nadaraya-Watson choice that "cv" tries for a compact
# kernel (no gradient: its support moves), before a bounded Brent search.
_COMPACT_FACTORS = np.geomspace(0.25, 64.0, 9)
# Design coordinates (standard deviations from the training mean) are clipped here.
_DESIGN_LIMIT = 1e150


@fill_doc
class LocalLinearRegressor(_IntervalMixin, _AttentionPoolingRegressor):
    """Local-linear kernel regression: attention pooling of local least squares.

    At each query ``q`` the training rows get attention weights ``p_i(q)`` from a
    kernel of their scaled distance (as in
    :class:`~skattn.NadarayaWatsonRegressor`), and the prediction is the intercept
    of the weighted least-squares line through the targets around ``q``. This
    removes Nadaraya-Watson's bias at the edges of the data and on slopes, and
    nests linear regression: a feature whose bandwidth is very large enters
    linearly everywhere, and all of them together give ordinary least squares.

    Read more in the :ref:`User Guide <local_linear>`.

    Parameters
    ----------
    kernel : {"gaussian", "tophat", "epanechnikov", "exponential", "linear", \
            "cosine"}, default="gaussian"
        The kernel, with the shapes of :class:`sklearn.neighbors.KernelDensity`.

    bandwidth : float, array-like of shape (n_features,) or \
            {"scott", "silverman", "cv", "cv_ls"}, default="cv"
        The kernel's bandwidth, scalar or one per feature, in the units of ``X``.

        - "cv": one bandwidth per feature minimising the (weighted) leave-one-out
          squared error of the local-linear fit, like statsmodels'
          ``KernelReg(reg_type="ll", bw="cv_ls")``, under a prior toward the
          linear fit: the log of the error plus ``4 / n * sum_j (s_j / h_j)^2``
          (``s_j`` the feature's spread), a Gaussian prior of scale 1/2 on each
          inverse bandwidth, weighed as against a likelihood of ``n`` rows (with
          few rows and many features the error alone tunes bandwidths too
          narrow). L-BFGS-B on the log-bandwidths with the analytic gradient
          (at most 100 iterations), started from a smooth, nearly linear fit
          (every bandwidth the feature's range): of the objective's local
          minima it finds the smoothest one. Bandwidths are capped at ``1e4``
          times each feature's range, where the fit is linear in it to
          rounding. For a compact kernel (no
          gradient: its support moves) one global factor on the choice of
          ``NadarayaWatsonRegressor(bandwidth="cv")`` is searched instead.
        - "cv_ls": the same search on the leave-one-out squared error alone,
          without the prior: statsmodels' ``bw="cv_ls"`` criterion, for
          comparisons with it and for data with many rows per feature, where
          the prior weighs little anyway. For a compact kernel, as "cv".
        - "scott", "silverman": the rules of thumb of
          :class:`~skattn.NadarayaWatsonRegressor`.

    ridge : float, default=1e-6
        Penalty on the local slopes, ``ridge * ||b * s||^2`` with ``s`` the
        features' (weighted) standard deviations, which shrinks the fit toward the
        local constant (Nadaraya-Watson) where the local design is poorly
        determined. Directions in which the local design has no spread (a single
        training row with weight, collinear features) get a zero slope whatever
        the ridge, so predictions are always finite. 0 gives the plain
        (pseudo-inverse) local-linear fit of statsmodels.

    n_neighbors : int, "radius", neighbours transformer or None, default=None
        Which training rows each local fit uses, as in
        :class:`~skattn.NadarayaWatsonRegressor`: None all of them; an int
        ``k`` the ``k`` nearest in the bandwidth-scaled space (top-k); "radius"
        (compact kernels) those within the kernel's support; or the sparse graph
        of a neighbours transformer. ``bandwidth="cv"`` (and "cv_ls") still
        searches with all rows.

    {{n_jobs}}

    verbose : int, default=0
        When positive, print the progress of the "cv" search: a line per
        L-BFGS-B iteration (the iteration out of at most 100, the leave-one-out
        loss as ``1 - R^2``, the time since ``fit`` began and a bound on the time
        left), or per candidate factor for a compact kernel, and why it stopped.

    Attributes
    ----------
    bandwidth_ : ndarray of shape (n_features,)
        The bandwidth of each feature used for prediction.

    linear_features_ : ndarray of shape (n_features,), dtype=bool
        Features whose bandwidth is so large that the kernel's weight across
        their whole training range stays within 1 % of its peak: the fit is
        (nearly) globally linear in them.

    n_iter_ : int
        Iterations of the "cv" search (L-BFGS-B, or the evaluations of the
        global factor for a compact kernel); 0 for other bandwidths.

    n_samples_fit_ : int
        Number of training rows; the columns of :meth:`attention_weights`.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X` has feature
        names that are all strings.

    See Also
    --------
    NadarayaWatsonRegressor : The local-constant fit (attention-pooled targets).
    AttentionRegressor : Learned metric, Nadaraya-Watson pooling.
    sklearn.linear_model.LinearRegression : The limit of infinite bandwidths.

    Notes
    -----
    With the attention weights :math:`p_i(q)` (non-negative, summing to 1, sample
    weights acting as repetition) the fit at a query :math:`q` solves

    .. math::

        \\min_{b_0, b} \\sum_i p_i(q) \\big(y_i - b_0 - b^\\top (x_i - q)\\big)^2
            + \\lambda \\|S b\\|^2,

    :math:`S` the features' standard deviations, and predicts :math:`b_0`. The
    local moments are pooled by the engine like targets (one GEMM over
    :math:`[y, x, x x^\\top, x y]` per chunk of queries), then each query solves a
    small system: O(n_queries x n_samples x d^2) time, memory one chunk. The
    prediction is linear in the targets, :math:`\\hat y(q) = \\sum_i l_i(q) y_i`,
    with the equivalent kernel
    :math:`l_i(q) = p_i(q) (1 + g^\\top (x_i - \\bar x))`,
    :math:`g = (C + \\lambda S^2)^{+} (q - \\bar x)`, :math:`\\bar x` and
    :math:`C` the local mean and covariance (:meth:`attention_weights`).

    At the edge: a query far from the data, or in a compact kernel's empty
    support, attends to its nearest training row (as Nadaraya-Watson does), and
    with one row of weight the local design has no spread: the prediction is
    that row's target. Between a few rows the fit extrapolates their line, so
    predictions, unlike Nadaraya-Watson's, can leave the range of the targets.

    References
    ----------
    .. [1] J. Fan and I. Gijbels, "Local Polynomial Modelling and Its
       Applications", Chapman & Hall, 1996.
    .. [2] M.-Y. Cheng, P. Hall and D. M. Titterington, "On the shrinkage of
       local linear curve estimators", Statistics and Computing, 7, 1997.
    .. [3] Q. Li and J. S. Racine, "Nonparametric Econometrics", Princeton
       University Press, 2007 (R package np, ``regtype="ll"``).

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.model_selection import KFold, cross_val_score
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skattn import LocalLinearRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), LocalLinearRegressor())
    >>> folds = KFold(5, shuffle=True, random_state=0)
    >>> print(f"{cross_val_score(model, X, y, cv=folds).mean():.2f}")
    0.49
    """

    _parameter_constraints: dict = {
        "kernel": [StrOptions(set(KERNELS))],
        "bandwidth": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions({"scott", "silverman", "cv", "cv_ls"}),
            "array-like",
        ],
        "ridge": [Interval(Real, 0, None, closed="left")],
        "n_neighbors": NEIGHBORS_CONSTRAINT,
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        kernel="gaussian",
        bandwidth="cv",
        *,
        ridge=1e-6,
        n_neighbors=None,
        n_jobs=None,
        verbose=0,
    ):
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.ridge = ridge
        self.n_neighbors = n_neighbors
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    @owns_threads
    def fit(self, X, y, sample_weight=None):
        """Store the training rows and their local moments; set the bandwidth.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (the keys).

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights acting as repetition. Rows of zero weight take no
            part in the fits.

        Returns
        -------
        self : object
            Fitted estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import LocalLinearRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-2, 2, size=(200, 2))
        >>> y = 2 * X[:, 0] + np.sin(2 * X[:, 1]) + 0.1 * rng.normal(size=200)
        >>> model = LocalLinearRegressor().fit(X, y)  # bandwidth="cv"
        >>> model.linear_features_  # x0 enters linearly
        array([ True, False])
        >>> round(float(model.bandwidth_[1] / np.ptp(X[:, 1])), 2)  # x1 locally
        0.06
        """
        progress = Progress(type(self).__name__, self.verbose)
        cv = isinstance(self.bandwidth, str) and self.bandwidth in ("cv", "cv_ls")
        X, y = validate_data(
            self,
            X,
            y,
            y_numeric=True,
            multi_output=True,
            dtype=[np.float64, np.float32],
            ensure_min_samples=2 if cv else 1,
        )
        sample_weight = check_sample_weight(sample_weight, X)
        bandwidth = (
            self.bandwidth if cv else check_bandwidth_spec(self.bandwidth, X.shape[1])
        )
        # by name: the persisted state holds strings, not types
        self._y_dtype = "float32" if np.asarray(y).dtype == np.float32 else "float64"
        # The local moments are differences of pooled second moments: float64.
        X = X.astype(np.float64, copy=False)
        X_kept, Y_kept, w_kept = self._store_training_set(X, y, sample_weight)
        # The local fits work on each output divided by the power of two of its
        # largest magnitude (exact in binary floating point; the x * y moments of
        # targets near the float64 limit would overflow): predictions, standard
        # errors, slopes and intervals are multiplied back (_to_target_units).
        self._target_exponent = np.frexp(np.max(np.abs(Y_kept), axis=0, initial=0.0))[1]
        Y_kept = self._values = np.ldexp(Y_kept, -self._target_exponent)
        self._center = weighted_mean(X_kept, w_kept)
        self._spread = weighted_spread(X_kept, w_kept)
        self._local = LocalLinear(self.ridge, X.shape[1])
        self._moments = self._local.values(Y_kept, self._design(X_kept))
        self.n_iter_ = 0
        if cv:
            warn_quadratic(
                type(self).__name__,
                f"bandwidth={self.bandwidth!r}",
                X_kept.shape[0],
                "local_linear",
                SUBSAMPLE_ADVICE,
            )
            bandwidth = self._cv_bandwidth(X_kept, Y_kept, w_kept, progress)
        else:
            bandwidth = select_bandwidth(
                bandwidth, X_kept, Y_kept, w_kept, self._kernel
            )
        self.bandwidth_ = bandwidth
        self.linear_features_ = self._linear_features(X_kept, bandwidth)
        self._fit_head(1.0 / bandwidth)
        return self

    def __getstate__(self):
        state = super().__getstate__()
        local = state.pop("_local", None)
        if local is not None:
            state["_local_ridge"] = local.ridge
        return state

    def __setstate__(self, state):
        state = dict(state)
        ridge = state.pop("_local_ridge", None)
        super().__setstate__(state)
        if ridge is not None:
            self._local = LocalLinear(ridge, self.n_features_in_)

    def _design(self, X):
        """Rows in the units of the local fits: centred on the training mean and
        divided by each feature's spread (before centring: no overflow)."""
        with np.errstate(over="ignore"):
            D = X / self._spread - self._center / self._spread
        # far beyond the data nothing changes but overflow (squares stay finite)
        return np.clip(D, -_DESIGN_LIMIT, _DESIGN_LIMIT, out=D)

    def _pooled_values(self, dtype):
        return self._moments

    def _linear_features(self, X, bandwidth):
        with np.errstate(over="ignore"):  # a tiny bandwidth: not linear
            span = np.ptp(X, axis=0) / bandwidth
            log_k = self._kernel.log_kernel(span * span, np.empty_like(span))
        return log_k >= np.log(LINEAR_WEIGHT)

    def _cv_bandwidth(self, X, Y, w, progress):
        """One bandwidth per feature by the leave-one-out squared error of the
        local-linear fit, from a smooth, nearly linear start (a compact kernel:
        one factor on the Nadaraya-Watson choice)."""
        span = np.ptp(X, axis=0)
        cap = np.maximum(
            LINEAR_BANDWIDTH * np.where(span > 0, span, self._spread), MIN_BANDWIDTH
        )
        # The start: a smooth, nearly linear fit (every bandwidth the feature's
        # range). The loss has local minima; descending from the smooth end finds
        # the smoothest one, which held out better on the development panel than
        # the lower of two runs, from here and from the Nadaraya-Watson choice
        # (airquality R^2 0.578 against 0.463, elsewhere within 0.006), in half
        # the time; the Nadaraya-Watson start alone gave Salaries 0.250 (0.437).
        start = np.clip(np.where(span > 0, span, self._spread), MIN_BANDWIDTH, cap)
        if self._kernel.name not in LEARNABLE_KERNELS:
            progress.message("cv: the Nadaraya-Watson choice, to start from")
            nw = select_bandwidth("cv", X, Y, w, self._kernel, n_jobs=self.n_jobs)
            return self._cv_global_factor(X, Y, w, np.minimum(nw, cap), cap, progress)
        objective = LinearPrior(
            LeaveOneOutObjective(
                X,
                Y,
                w,
                kernel=self._kernel,
                metric="diagonal",
                n_components=None,
                alpha=0.0,
                n_jobs=self.n_jobs,
                local=self._local,
                max_bandwidth=cap,
            ),
            LINEAR_PRIOR if self.bandwidth == "cv" else 0.0,
        )
        metric = objective.metric
        x0 = np.clip(metric.params_from_bandwidth(start), *objective.bounds)

        def report(params, n_iter, loss, held_out_loss):
            progress.step("cv iter", n_iter, CV_MAX_ITER, objective=float(loss))

        objective = LastValue(objective)  # _snap_to_linear looks again
        params, self.n_iter_, message, _, _ = minimize_lbfgs(
            objective, x0, max_iter=CV_MAX_ITER, tol=CV_TOL, report=report
        )
        progress.message(
            f"cv stopped after {self.n_iter_} iterations: "
            + ("converged" if message is None else message)
        )
        ratio = span / metric.bandwidth_from_params(params)
        params = _snap_to_linear(objective, params, ratio <= _SNAP_RATIO)
        return metric.bandwidth_from_params(params)

    def _cv_global_factor(self, X, Y, w, start, cap, progress):
        """A compact kernel's "cv": one factor on ``start``, by a grid and a bounded
        Brent search of the leave-one-out squared error (in log factor)."""
        evaluations = []

        def loss(log_factor):
            h = np.minimum(start * np.exp(log_factor), cap)
            evaluations.append(log_factor)
            error = self._leave_one_out_error(X, Y, w, h)
            progress.step(
                "cv candidate",
                len(evaluations),
                factor=float(np.exp(log_factor)),
                loss=error,
            )
            return error

        grid = np.log(_COMPACT_FACTORS)
        losses = [loss(t) for t in grid]
        best = int(np.argmin(losses))
        lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
        result = minimize_scalar(
            loss, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3}
        )
        t = result.x if result.fun < losses[best] else grid[best]
        self.n_iter_ = len(evaluations)
        progress.message(
            f"cv chose the factor {np.exp(t):.6g} on the Nadaraya-Watson choice"
        )
        return np.minimum(start * np.exp(t), cap)

    def _leave_one_out_error(self, X, Y, w, bandwidth):
        """The weighted mean squared leave-one-out error of the fits with
        ``bandwidth`` over the stored rows ``X, Y, w`` (dense attention)."""
        head = AttentionHead(X, w, self._kernel, 1.0 / bandwidth)  # every row
        residual = self._leave_one_out_predict(head) - Y
        return float(w @ np.einsum("ij,ij->i", residual, residual) / w.sum())

    def _local_fits(self, X, what):
        """Validate the queries and compute ``what`` ("predict", "slopes" or
        "weights") of their local fits by chunks of rows over the engine's
        threads."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        head = self._heads[0]
        prepared = head.prepare(self._moments, np.float64)
        return map_query_chunks(_fit_rows, X, self.n_jobs, self, head, prepared, what)

    @fill_doc
    def predict(self, X, return_std=False):
        """Predict by the local-linear fit at each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        return_std : bool, default=False
            Also return the standard error of each prediction (of the fitted
            mean, not of a new observation), as
            :class:`~sklearn.gaussian_process.GaussianProcessRegressor` does:
            ``sqrt(sum_i l_i(x)^2 sigma^2(x_i))`` with the equivalent kernel
            ``l`` (:meth:`attention_weights`) and the noise variance at each
            training row estimated by pooling the other rows' squared
            leave-one-out residuals, each deflated by its own variance factor
            ``1 + sum_k l_{-i,k}^2``, with the (non-negative) attention weights.
            Computed with dense attention over every training row (whatever
            ``n_neighbors``; the predictions are always those of ``predict(X)``),
            the bandwidths held fixed.

        Returns
        -------
        y_pred : ndarray of shape (n_queries,) or (n_queries, n_outputs)
            The local fits' intercepts, in the dtype of ``y`` as fitted (float64,
            or float32 for a float32 ``y``), whatever the dtype of ``X``.

        {{y_std}}

        Examples
        --------
        A line is fitted exactly, at the edges too:

        >>> import numpy as np
        >>> from skattn import LocalLinearRegressor
        >>> X = np.arange(5.0).reshape(-1, 1)
        >>> model = LocalLinearRegressor(bandwidth=1.0).fit(X, 2 * X.ravel() + 1)
        >>> model.predict([[0.0], [4.0]]).round(3)
        array([1., 9.])

        With noise, the standard error of the fit is larger at the edge:

        >>> rng = np.random.default_rng(0)
        >>> X = np.linspace(0, 4, 41).reshape(-1, 1)
        >>> y = 2 * X.ravel() + 1 + 0.1 * rng.normal(size=41)
        >>> model = LocalLinearRegressor(bandwidth=1.0).fit(X, y)
        >>> _, std = model.predict([[0.0], [2.0]], return_std=True)
        >>> bool(std[0] > std[1] > 0)
        True
        """
        predictions = self._to_target_units(self._local_fits(X, "predict"))
        predictions = predictions.astype(self._y_dtype, copy=False)
        if not return_std:
            return predictions[:, 0] if self._y_1d else predictions
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        dense, keys = self._dense_interval_keys(self._moments)
        Y = np.asarray(self._values, dtype=np.float64)
        loo, inflation = self._deflation(keys)
        variances, exponent = noise_variances(dense, Y, loo, inflation, self.n_jobs)
        std, n_effective = map_query_chunks(
            _std_rows, X, self.n_jobs, self, dense, keys, variances
        )
        std = self._to_target_units(np.ldexp(std, exponent))
        _warn_low_support(self, n_effective, "predict")
        std = std.astype(self._y_dtype, copy=False)
        if self._y_1d:
            return predictions[:, 0], std[:, 0]
        return predictions, std

    def _exponents(self):
        # (models persisted before the targets were scaled: exponent 0)
        exponent = getattr(self, "_target_exponent", None)
        return np.zeros(self._values.shape[1], int) if exponent is None else exponent

    def _to_target_units(self, values):
        """Values of shape (n_queries, ..., n_outputs) in the scaled targets' units
        multiplied back into the targets' units, finite ones kept finite (clipped
        to the range of the targets' dtype: a local line may extrapolate beyond
        it)."""
        finite = np.isfinite(values)
        with np.errstate(over="ignore"):
            values = np.ldexp(values, self._exponents())
        limit = np.finfo(self._y_dtype).max
        return np.where(finite, np.clip(values, -limit, limit), values)

    def _deflation(self, keys, combine=None):
        """The leave-one-out predictions of the training rows and each residual's
        variance factor over the noise's
        (:func:`~skattn._uncertainty.noise_variances`). ``combine(rows,
        weights)``: the leave-one-out weights of a smoother built on the
        equivalent kernel's (of the stored ``rows``, a slice), whose residuals'
        factors are wanted instead."""
        n = keys.n_keys
        loo = np.empty((n, self._values.shape[1]))
        inflation = np.empty(n)
        D_keys = self._key_design
        rows = chunk_rows(n, 8, n_temporaries=4)
        for start in range(0, n, rows):
            s = slice(start, min(start + rows, n))
            own = np.arange(s.start, s.stop)
            pooled, weights = keys.pool(
                None, loo=True, loo_rows=s, n_jobs=self.n_jobs, return_weights=True
            )
            loo[s], _ = self._local.solve(pooled, D_keys[s])
            ell = _equivalent_kernel_rows(self, pooled, weights, D_keys[s])
            if combine is not None:
                ell = combine(s, ell)
            # r_i = y_i - sum_k l_{-i,k} y_k; a row of weight w is w copies, and
            # row i keeps w_i - u_i of its own: Var r_i = sigma_i^2 (1 + sum_k
            # l_{-i,k}^2 / w'_k)
            copies = np.broadcast_to(keys.w, ell.shape).copy()
            copies[np.arange(len(own)), own] = keys.w[own] - keys.unit[own]
            ell *= ell
            with np.errstate(divide="ignore", invalid="ignore"):
                share = np.where(ell > 0, ell / copies, 0.0)
            inflation[s] = 1.0 + share.sum(axis=1)
        return loo, inflation

    def marginal_effects(self, X):
        """The local slopes at each query: the marginal effects of the fit.

        The partial derivatives of the local fit, statsmodels' ``KernelReg``
        marginal effects (``mfx``).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        Returns
        -------
        slopes : ndarray of shape (n_queries, n_features) or \
                (n_queries, n_outputs, n_features)
            The slope ``b`` of the local fit in each feature, in units of ``y``
            per unit of that feature.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import LocalLinearRegressor
        >>> X = np.linspace(0, 3, 31).reshape(-1, 1)
        >>> model = LocalLinearRegressor(bandwidth=0.3).fit(X, X.ravel() ** 2)
        >>> model.marginal_effects([[1.0], [2.0]]).round(2)  # 2 x
        array([[2.],
               [4.]])
        """
        slopes = self._local_fits(X, "slopes")
        with np.errstate(over="ignore"):  # y per unit x beyond the float range
            slopes = np.ldexp(slopes, self._exponents()[:, None])
        slopes = slopes.astype(self._y_dtype, copy=False)
        return slopes[:, 0, :] if self._y_1d else slopes

    def attention_weights(self, X):
        """The equivalent kernel: each training target's weight in each prediction.

        The local-linear prediction is linear in the training targets,
        ``predict(X) = attention_weights(X) @ y``: the weights are the attention
        weights times a linear correction (class notes). Each row sums to 1, but,
        unlike Nadaraya-Watson's attention, entries may be negative (rows on the
        far side of a query pull the line through it).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        Returns
        -------
        weights : ndarray or scipy.sparse.csr_matrix of shape \
                (n_queries, n_samples_fit)
            Column ``j`` is training row ``j`` (zero for rows fitted with zero
            sample weight). Dense (mind the memory), or a CSR matrix of each
            query's candidate rows when ``n_neighbors`` is set.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import LocalLinearRegressor
        >>> X, y = np.array([[0.0], [1.0], [3.0]]), np.array([0.0, 1.0, 3.0])
        >>> model = LocalLinearRegressor(bandwidth=1.0).fit(X, y)
        >>> weights = model.attention_weights([[0.5], [4.0]])
        >>> weights.sum(axis=1).round(6)
        array([1., 1.])
        >>> (weights @ y).round(3)  # y = x is fitted exactly, beyond the data too
        array([0.5, 4. ])
        """
        weights = self._local_fits(X, "weights")
        return self._expand_weights(weights, self._y_dtype)

    @property
    def _key_design(self):
        """The stored rows in the design's units: the moments' ``x`` columns."""
        o = self._values.shape[1]
        return self._moments[:, o : o + self.n_features_in_]

    def _interval_method(self, method):
        """The dense head and the interval method's object: leave-one-out (or
        fold-out) moments at the queries, each solved for its local fit (the
        bandwidths, the design's units and the ridge held fixed)."""
        dense, keys = self._dense_interval_keys(self._moments)
        Y = np.asarray(self._values, dtype=np.float64)
        if method == "jackknife+":
            loo = self._leave_one_out_predict(dense)
            return dense, JackknifePlus(keys, self._moments, Y - loo, self._solve_at)
        if method == "cv+":
            return dense, CVPlus(keys, self._moments, Y, self._solve_at)
        return dense, LocalLinearQuantiles(keys, self._moments, self._moved_targets)

    def _solve_at(self, pooled, queries):
        """The local fits' predictions from pooled moments of shape (n_queries, k,
        n_moments) at the query rows (data units): (n_queries, k, n_outputs)."""
        m, k, n_moments = pooled.shape
        Dq = np.repeat(self._design(np.asarray(queries, dtype=np.float64)), k, axis=0)
        predictions, _ = self._local.solve(pooled.reshape(m * k, n_moments), Dq)
        return predictions.reshape(m, k, -1)

    def _moved_targets(self, pooled, queries):
        """The training targets moved along each query's local line to the query,
        ``y_j - b(q).(x_j - q)`` in design units: (n_queries, n_keys, n_outputs)."""
        Y = np.asarray(self._values, dtype=np.float64)
        fit = self._local.fit(pooled, Y.shape[1])
        Dq = self._design(np.asarray(queries, dtype=np.float64))
        with np.errstate(over="ignore", invalid="ignore"):
            along = np.einsum("nd,mdo->mno", self._key_design, fit.slopes)
            along -= np.einsum("md,mdo->mo", Dq, fit.slopes)[:, None, :]
        along[~np.isfinite(along)] = 0.0  # as predict: the local constant
        return Y[None] - along

    def _leave_one_out_predict(self, head=None):
        """Leave-one-out predictions of the stored rows (every row as keys),
        through ``head`` (the fitted head by default)."""
        head = self._heads[0] if head is None else head
        pooled = head.pool(None, self._moments, loo=True, n_jobs=self.n_jobs)
        predictions, _ = self._local.solve(pooled, self._key_design)
        return predictions


def _snap_to_linear(objective, params, candidates):
    """``params`` with the ``candidates`` (a mask of features) at their upper
    bound, together or else one at a time, wherever that does not raise the
    objective.

    A feature that enters (nearly) linearly has a loss that flattens as its
    bandwidth grows (like 1 / h^2; not at all where the targets are linear in it):
    L-BFGS-B walks toward the cap by about a constant step in log h per iteration,
    each improving the loss by less than the tolerance, or stops on the plateau.
    The cap is the linear limit itself."""
    upper = objective.bounds[1]
    candidates = np.flatnonzero(candidates & (params < upper))
    if not candidates.size:
        return params
    loss = objective(params)[0]
    trials = [candidates]
    if candidates.size > 1:
        trials += [[j] for j in candidates]
    for features in trials:
        snapped = params.copy()
        snapped[features] = upper[features]
        snapped_loss = objective(snapped)[0]
        if snapped_loss <= loss:
            params, loss = snapped, snapped_loss
            if len(features) == candidates.size:
                break
    return params


def _fit_rows(X, estimator, head, prepared, what):
    """The local fits of some query rows on one thread (the task of
    :func:`~skattn._engine.map_query_chunks`): predictions, slopes (data units,
    (m, n_outputs, n_features)) or equivalent-kernel weights over the keys."""
    local = estimator._local
    Dq = estimator._design(X.astype(np.float64, copy=False))
    returns = {"return_weights": True} if what == "weights" else {}
    pooled = head.pool(X, estimator._moments, prepared=prepared, n_jobs=1, **returns)
    if what == "predict":
        predictions, _ = local.solve(pooled, Dq)
        return predictions
    if what == "slopes":
        fit = local.fit(pooled, estimator._values.shape[1])
        with np.errstate(over="ignore"):  # y per unit x beyond the float range
            return np.swapaxes(fit.slopes, 1, 2) / estimator._spread
    pooled, weights = pooled
    g, offset = _equivalent_factor(estimator, pooled, Dq)
    D_keys = estimator._key_design
    with np.errstate(over="ignore", invalid="ignore"):
        if hasattr(weights, "tocsr"):
            weights = weights.tocsr().astype(np.float64)
            rows = np.repeat(np.arange(weights.shape[0]), np.diff(weights.indptr))
            factor = offset[rows] + np.einsum(
                "ij,ij->i", g[rows], D_keys[weights.indices]
            )
            # as predict: a non-finite extrapolation gives the local constant
            factor[~np.isfinite(factor)] = 1.0
            weights.data *= factor
            return weights
        return _dense_equivalent_kernel(weights, g, offset, D_keys)


def _dense_equivalent_kernel(weights, g, offset, D_keys):
    """The equivalent-kernel weights ``p_j (offset + g.x_j)`` of dense attention
    ``weights`` (rows whose factor is not finite: the local constant's ``p_j``)."""
    weights = np.asarray(weights, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        factor = g @ D_keys.T + offset[:, None]
    bad = ~np.isfinite(factor).all(axis=1)
    factor[bad] = 1.0
    return weights * factor


def _equivalent_factor(estimator, pooled, Dq):
    """``g`` and ``offset`` of the equivalent kernel ``p_j (offset + g.x_j)`` of
    the local fits from their pooled moments at the query rows ``Dq`` (design
    units)."""
    local = estimator._local
    fit = local.fit(pooled, estimator._values.shape[1])
    g = local.equivalent_factor(fit, Dq)
    return g, 1.0 - np.einsum("md,md->m", g, fit.x_bar)


def _equivalent_kernel_rows(estimator, pooled, weights, Dq):
    """The dense equivalent kernel of local fits from their pooled moments and
    attention ``weights`` at the query rows ``Dq`` (design units)."""
    g, offset = _equivalent_factor(estimator, pooled, Dq)
    return _dense_equivalent_kernel(weights, g, offset, estimator._key_design)


def _std_rows(X, estimator, head, prepared, variances):
    """The standard errors of the local fits at some query rows and their
    effective number of keys on one thread (the task of
    :func:`~skattn._engine.map_query_chunks`): :func:`standard_error_rows` with
    the equivalent kernel as the smoother's weights."""
    Dq = estimator._design(X.astype(np.float64, copy=False))

    def equivalent_kernel(rows, pooled, weights):
        return _equivalent_kernel_rows(estimator, pooled, weights, Dq[rows])

    queries = np.asarray(head.features(X), dtype=np.float64)
    _, std, n_effective = standard_error_rows(
        queries, prepared, variances, equivalent_kernel
    )
    return std, n_effective
