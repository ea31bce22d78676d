"""Parametric attention pooling: a regressor that learns its bandwidths or metric."""

# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral, Real

import numpy as np

from skattn._base import (
    _AttentionPoolingRegressor,
    _MetricLearner,
    _PredictionIntervalMixin,
    _warn_low_support,
)
from skattn._boosting import (
    BOOST_MAX_ROWS,
    BOOST_MIN_ROWS,
    BOOST_WIDENINGS,
    BoostedCVPlus,
    BoostedJackknifePlus,
    BoostedQuantiles,
    BoostedSmoother,
    SmootherWeights,
    select_boosting,
)
from skattn._engine import map_query_chunks, owns_threads
from skattn._kernels import KERNELS
from skattn._learning import AUTO_FULL_Z
from skattn._local_average import (
    LOCAL_LINEAR_MAX_ROWS,
    LOCAL_LINEAR_MIN_ROWS,
    AveragedParts,
    averaged_method,
    averaged_noise_state,
    averaged_std_rows,
    fit_local_linear,
)
from skattn._neighbors import NEIGHBORS_CONSTRAINT
from skattn._trend import apply_trend, fit_trend, trend_coefficients, trend_without
from skattn._uncertainty import noise_variances
from skattn.utils._docstring import fill_doc
from skattn.utils._progress import Progress
from skattn.utils._sklearn_compat import (
    Interval,
    RealNotInt,
    StrOptions,
    _fit_context,
    check_sample_weight,
    validate_data,
)

__all__ = ["AttentionRegressor"]


@fill_doc
class AttentionRegressor(
    _PredictionIntervalMixin, _MetricLearner, _AttentionPoolingRegressor
):
    """Parametric attention pooling: kernel regression with a learned metric.

    Predictions are attention-weighted averages of the training targets, as in
    :class:`NadarayaWatsonRegressor`, but the bandwidths (one for all features, one
    per feature) or a linear projection of the features (a shared query/key
    projection, as in Metric Learning for Kernel Regression) are learned by minimising
    the leave-one-out squared error of the model's own predictions on the training
    set, with analytic gradients.

    By default the attention corrects a linear trend: a ridge regression is fitted
    first, and the attention pools its residuals, ``y_hat(x) = t(x) + sum_j
    p_j(x) (y_j - t(x_j))``. A feature whose bandwidth grows without bound then
    enters linearly, and all of them give the ridge regression itself: the model
    nests the linear one and corrects it where the data say so.

    Parameters
    ----------
    metric : {"auto", "isotropic", "diagonal", "full"}, default="auto"
        What is learned: one bandwidth (the parametric attention pooling of Dive
        into Deep Learning), one bandwidth per feature, or a projection
        ``components_`` of shape (n_components, n_features). "auto": one
        bandwidth per feature, then a full projection started where the
        bandwidths started, learned on the rows not held out by
        ``validation_fraction`` and stopped early on them; the projection is kept
        only where the held-out rows' loss under it is lower than under the
        learned bandwidths by more than two standard errors of their paired
        differences (``metric_`` says which was kept). The projection is tried
        on full-batch fits with ``early_stopping`` not False, from 100 rows and
        2 to 64 features. A projection of many parameters overfits small or
        noisy data where the bandwidths do not, but only it captures structure
        along directions that mix features: on a target that varies along
        ``x0 + x1`` and ``x2 - x3`` (600 rows), R^2 on new rows is 0.71 with the
        bandwidths and 0.92 with the projection that "auto" keeps; on the
        development panel's regression data sets it keeps the bandwidths
        everywhere, where "full" alone scores lower on most. Trying it costs a
        second fit, stopped early.

    n_components : int, default=None
        Dimension of the learned projection for ``metric="full"``; None means
        n_features. Ignored by the other metrics ("auto" tries n_features).

    kernel : {"gaussian", "exponential"}, default="gaussian"
        The kernel. Only kernels with full support, differentiable almost
        everywhere, can be learned; the compact kernels of
        :class:`NadarayaWatsonRegressor` are rejected.

    init : {"auto", "scott", "cv", "identity", "pca"} or array-like, default="auto"
        Starting point of the optimisation.

        - "scott": Scott's rule (for "isotropic" on the root mean square spread).
        - "cv": the leave-one-out choice of :class:`NadarayaWatsonRegressor`
          (a global scale on Scott's rule).
        - "identity": bandwidths of 1, or the (truncated) identity projection.
        - "pca": for "full" only: the leading principal directions, each scaled by
          its Scott bandwidth.
        - "auto": "pca" for "full" with fewer components than features; else "cv"
          for full-batch fits and "scott" in mini-batch mode (``batch_size`` set),
          where the O(n^2) leave-one-out search of "cv" would cost more than the
          fit itself.
        - an array: bandwidths (one, or one per feature) or a projection of shape
          (n_components, n_features).

        For "full", "scott" and "cv" give the diagonal projection ``diag(1 / h)``
        and need n_components equal to n_features.

    trend : {"linear"} or None, default="linear"
        "linear": the attention pools the residuals of a ridge regression of
        ``y`` on the standardised features (penalty 0.01 times the total sample
        weight), fitted once before the metric; predictions add the trend back
        (``trend_coef_``, ``trend_intercept_``). Predictions may then leave the
        range of the targets; the trend does not extrapolate: it takes each
        feature clipped to its training range (constant beyond it). None: the
        attention pools the targets themselves (parametric Nadaraya-Watson;
        predictions within the range of the targets).

    alpha : float or "auto", default="auto"
        Penalty on the squared distance of the learned parameters (the
        log-bandwidths in units of each feature's standard deviation, or the
        projection of the standardised features) from those of the start
        (``init``; with "auto", the leave-one-out choice of
        :class:`NadarayaWatsonRegressor`): more penalty means closer to that
        smoother, never to the mean (an infinite bandwidth). The leave-one-out
        loss of many bandwidths is itself overfitted on small data: "auto" is
        ``1 / n_samples`` (the total sample weight of the rows learned from), a
        prior whose weight against the mean loss shrinks as the data grow (on
        the development panel, with the trend, it lifts load_diabetes from 0.47
        to 0.48 and Housing from 0.61 to 0.67, and costs friedman1 0.003). "full" has
        n_components * n_features parameters; ``early_stopping`` picks its
        iteration as well.

    max_iter : int, default=100
        Maximum number of L-BFGS-B iterations, or of mini-batch steps when
        ``batch_size`` is set.

    tol : float, default=1e-8
        Convergence tolerance of L-BFGS-B (its ``ftol`` and ``gtol``; the objective
        is below 1, so ``ftol`` acts on absolute changes of it); in mini-batch mode,
        the relative improvement of the smoothed loss below which a step counts as
        no change (the fit stops after 10 such steps in a row). The default reaches
        the optimum that statsmodels' Nelder-Mead finds to about 1e-7 of the loss;
        a looser tolerance (1e-5) stops in a third to half the iterations, with
        predictions that rarely differ.

    batch_size : int, default=None
        None: every iteration uses the full leave-one-out objective, O(n^2 d) time.
        An int: stochastic mini-batches of that many query rows, each against all
        training rows, optimised by Adam: O(batch_size n d) per step. Use it for
        large data (roughly n above 10,000), where a full pass per iteration is too
        slow.

    learning_rate_init : float, default=0.05
        Adam's step size in mini-batch mode (on log-bandwidths or the standardised
        projection).

    n_candidates : int, float or None, default=None
        In mini-batch mode, the number of training rows (a float in (0, 1]: the
        fraction of them) drawn at random at every step as the keys that the
        mini-batch's queries attend to, as in ModernNCA's stochastic sampling of
        neighbours: O(batch_size n_candidates d) per step instead of
        O(batch_size n d). A query drawn among them keeps ``w - 1`` copies of
        itself, as in the full objective; the softmax is unchanged by scaling
        every key's weight alike, so a uniform sample of keys estimates the full
        attention (the loss gets noisier, and a little sharper, as the sample
        shrinks). None: every training row. Needs ``batch_size``. Predictions
        still attend to every training row (or to ``n_neighbors``).

    {{early_stopping}}

    validation_fraction : float, default=0.1
        The share of the rows held out by ``early_stopping`` (drawn with
        ``random_state``).

    n_iter_no_change : int, default=10
        Iterations without improvement of the held-out loss before the fit stops.

    warm_start : bool, default=False
        Start from the previous fit's bandwidths or projection when they fit the
        data's shape and the metric, instead of ``init``.

    callback : callable, default=None
        Called after every iteration as ``callback(params, n_iter)``, with
        ``params`` the current bandwidths (isotropic, diagonal) or projection (full)
        in the units of ``X``.

    random_state : int, RandomState instance or None, default=None
        Draws the mini-batches and the rows held out by ``early_stopping`` (and
        by ``metric="auto"``). None: fresh mini-batches at every fit, but the
        held-out rows of a fixed draw (that of 0), so that a default fit is
        reproducible and every candidate of a search is judged on the same rows.
        Full-batch fits are otherwise deterministic.

    verbose : int, default=0
        When positive, print progress lines: the start-up search (``init="cv"``)
        candidate by candidate, then each L-BFGS-B iteration or mini-batch step
        out of ``max_iter`` with its loss and held-out loss (early stopping), the
        time since the fit began (start-up search included) and a bound on the
        time left, and finally why the fit stopped.

    n_neighbors : int, neighbours transformer or None, default=None
        Which training rows each query attends to in ``predict`` (learning uses
        them all, or the mini-batches of ``batch_size``), as in
        :class:`NadarayaWatsonRegressor`: None for all of them; an int ``k`` for
        the ``k`` nearest in the learned metric's space (top-k attention, within
        the documented bound of the dense result); or a transformer in the
        convention of :class:`~sklearn.neighbors.KNeighborsTransformer`, fitted on
        the training rows in that space. "radius" is refused: the kernels that can
        be learned have full support.

    boosting : "auto" or bool, default="auto"
        Learned values. Once the metric is learned, the attention ``S`` of the
        training rows over themselves, at the learned bandwidths widened 2, 3
        or 4 times, is boosted: each of ``m`` rounds of L2-boosting pools the
        residuals the earlier rounds left, so predictions pool the values ``a =
        sum_{k<m} (I - S)^k r`` in place of the trend's residuals ``r``, ``y_hat(x)
        = t(x) + sum_j p_j(x) a_j``. It removes the local average's bias (the
        slopes it flattens, the curvature it rounds off) on smooth targets: on
        the development panel R^2 0.944 to 0.962 on make_friedman1 and 0.965 to
        0.991 on make_friedman3. The widening and ``m`` (1 to 256) are chosen
        by the boosted smoother's leave-one-out loss (the linear smoother's
        formula, from one O(n^3) eigendecomposition per widening), and "auto"
        keeps them only where that loss is below the learned smoother's by more
        than two standard errors of their paired differences
        (``boosting_widening_``, ``boosting_rounds_``). "auto" tries it with
        ``trend="linear"``, dense full-batch attention and 100 to 2,000 training
        rows (about 0.5 s more a fit at 800 rows on two cores); True: at any
        size from 3 rows (O(n^3) time, O(n^2) memory), kept wherever the loss is
        lower; False: never. The intervals and standard errors of boosted values
        are the boosted linear smoother's, with its leave-one-out formula in
        place of exact refits.

    local_linear : "auto" or bool, default="auto"
        Average with a local-linear attention. Once the metric is learned (and
        where boosting kept nothing), a :class:`LocalLinearRegressor` at the
        learned bandwidths widened 1 to 6 times (``local_linear_widening_``,
        the one with the lowest exact leave-one-out error) is fitted to the
        targets, its slopes penalised as the trend's are, and predictions are
        the equal average of the two: ``y_hat(x) = (t(x) + sum_j p_j(x) r_j +
        l(x)) / 2``. The two smoothers' errors differ (the local line follows
        slopes at the edges and in sparse regions that the residuals' local
        average flattens), and their average has less variance than either: on
        the development panel's small noisy data sets (5-fold CV) R^2 0.765 to
        0.789 on Prestige, 0.634 to 0.657 on airquality, 0.484 to 0.493 on
        load_diabetes, 0.666 to 0.675 on Housing. The weights are equal, not
        fitted: the learned attention's own leave-one-out loss is optimistic
        (its bandwidths minimised it). Beyond the training rows' range the
        local-linear half takes each feature clipped to it, as the trend does:
        predictions are constant beyond the data. "auto" averages with
        ``trend="linear"``, learned bandwidths (not a projection), dense
        full-batch attention and 3 to 2,000 training rows where boosting kept
        nothing (six local-linear fits: about 0.1 s at 1,000 rows); True: from
        3 rows at any size, with boosting not tried (``boosting=True`` is then
        refused) and learned bandwidths (``metric="full"`` and ``n_neighbors``
        are refused; where ``metric="auto"`` keeps a projection,
        ``local_linear_`` is None); False: never. The average is a linear
        smoother of the targets too: its intervals and standard errors are
        exact, from the two halves' leave-one-out predictions.
        ``feature_importances_`` remains the learned attention's (on
        load_diabetes it agrees with the average's permutation importance:
        Spearman 0.72).

    {{n_jobs}}

    Attributes
    ----------
    metric_ : str
        The metric learned: ``metric``, or for ``metric="auto"`` the one kept
        ("diagonal" or "full").

    bandwidth_ : ndarray of shape (n_features,)
        Learned bandwidths in the units of ``X`` (metric "isotropic" or
        "diagonal"; all equal for "isotropic"). Per-feature bandwidths are
        floored, once learned, where a row one of the feature's smallest gaps
        between distinct values away weighs exp(-32) of a level one (an eighth
        of the gap for the Gaussian kernel, a 32nd for the exponential), so a
        discrete feature's bandwidth saturates there instead of reporting how
        far toward zero the optimiser drifted for nothing.

    components_ : ndarray of shape (n_components, n_features)
        Learned projection of the features (metric "full"): distances are
        ``||components_ @ (x - x')||``.

    trend_coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
        The linear trend's coefficients (``trend="linear"``), in the units of
        ``X`` and ``y``, as :class:`~sklearn.linear_model.Ridge` gives them.

    trend_intercept_ : float or ndarray of shape (n_outputs,)
        The linear trend's intercept (``trend="linear"``).

    feature_importances_ : ndarray of shape (n_features,)
        Drop-feature importance of the learned model: how much its
        leave-one-out loss (on the rows it learned from; a sample of 2,000 above
        that) grows when the feature is left out of the distances and of the
        trend (refitted without it), normalised to sum to 1. It saturates for
        discrete features (a bandwidth far below the gaps between a feature's
        values changes nothing more), unlike the metric's own scale
        ``(s_k / h_k)^2``, and counts what a feature gives through the trend
        (a linear feature's bandwidth grows without bound); on load_diabetes
        it ranks the features as permutation importance does. Works with
        :class:`~sklearn.feature_selection.SelectFromModel`. Costs ``n_features +
        1`` leave-one-out passes at the end of ``fit``.

    boosting_widening_ : float
        The factor on the learned bandwidths (``bandwidth_``, or the inverse
        factor on ``components_``) of the attention that predicts: 1 unless
        ``boosting`` kept a widened one.

    boosting_rounds_ : int
        Rounds of boosting of the pooled values (``m - 1``; 0: the trend's
        residuals are pooled, possibly with widened bandwidths).

    local_linear_ : LocalLinearRegressor or None
        The local-linear attention averaged with the learned one (fitted to the
        training rows at the bandwidths ``local_linear_widening_ *
        bandwidth_``), or None where ``local_linear`` kept none.

    local_linear_widening_ : float or None
        The factor on ``bandwidth_`` of ``local_linear_``'s bandwidths (None
        without it).

    n_iter_ : int
        Number of iterations (L-BFGS-B iterations or mini-batch steps) run; for
        ``metric="auto"``, those of the bandwidths and of the projection tried.

    validation_scores_ : list of float or None
        With ``early_stopping``: the held-out rows' R^2 at the start and after each
        iteration (None without); for ``metric="auto"``, those of the projection
        tried, whichever was kept.

    best_iteration_ : int or None
        With ``early_stopping``: the iteration whose parameters were kept (for
        ``metric="auto"``, the projection's).

    loss_curve_ : list of float
        The objective at the start and after each iteration: the leave-one-out
        squared error divided by the total sum of squares (``1 -`` leave-one-out
        R^2), plus the penalty (``n_iter_ + 1`` entries; for ``metric="auto"``
        with the projection tried, the bandwidths' curve then the projection's,
        on the rows not held out: ``n_iter_ + 2``). In mini-batch mode, each
        step's mini-batch estimate of it (``n_iter_`` entries).

    n_samples_fit_ : int
        Number of training rows; the columns of :meth:`attention_weights`.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X` has feature
        names that are all strings.

    See Also
    --------
    NadarayaWatsonRegressor : The same model with bandwidths from rules or a 1-D
        leave-one-out search.
    sklearn.neighbors.NeighborhoodComponentsAnalysis : Learns a projection for
        nearest-neighbour classification.

    Notes
    -----
    The leave-one-out prediction of training row :math:`i` is

    .. math::

        \\hat y_{-i} = t(x_i) + \\sum_j p_{ij} (y_j - t(x_j)), \\qquad
        p_{ij} = \\operatorname{softmax}_j\\big(\\log K(u_{ij}) + \\log w_j\\big),

    where row :math:`i` keeps :math:`w_i - 1` copies of itself (sample weights act as
    repetition) and :math:`t` is the trend (zero for ``trend=None``), and the
    objective is
    :math:`\\sum_i w_i \\|\\hat y_{-i} - y_i\\|^2 / \\sum_i w_i \\|y_i - \\bar y\\|^2`
    plus the penalty. The trend is fitted once, before the metric, as a boosting
    step would be: refitting it at every iteration (the partially linear model
    of Robinson, 1988, with the trend profiled out) was measured on the
    development panel and scored lower (mean R^2 0.672 against 0.680 on seven
    data sets) at twice the cost. The gradient is computed analytically in
    :math:`O(n^2 d)` time and chunked memory; L-BFGS-B minimises it over
    log-bandwidths (or the projection). Leaving each row out is what makes
    learning possible: with the row itself among the keys, the optimum would be
    a bandwidth of zero, which memorises the training set.

    References
    ----------
    .. [1] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, "Dive into Deep Learning",
       chapter "Attention Pooling by Similarity" (parametric attention pooling).
    .. [2] K. Q. Weinberger and G. Tesauro, "Metric Learning for Kernel Regression",
       AISTATS 2007.

    Examples
    --------
    >>> from sklearn.datasets import make_friedman1
    >>> from skattn import AttentionRegressor
    >>> X, y = make_friedman1(n_samples=300, n_features=8, random_state=0)
    >>> model = AttentionRegressor(metric="diagonal").fit(X, y)
    >>> print(sorted(model.feature_importances_.argsort()[-5:].tolist()))
    [0, 1, 2, 3, 4]
    """

    _nonparametric = "NadarayaWatsonRegressor"

    _parameter_constraints: dict = {
        "metric": [StrOptions({"auto", "isotropic", "diagonal", "full"})],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "kernel": [StrOptions(set(KERNELS))],
        "init": [StrOptions({"auto", "scott", "cv", "identity", "pca"}), "array-like"],
        "trend": [StrOptions({"linear"}), None],
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "n_candidates": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="right"),
            None,
        ],
        "early_stopping": [StrOptions({"auto"}), "boolean"],
        "validation_fraction": [Interval(RealNotInt, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "callback": [callable, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "n_neighbors": NEIGHBORS_CONSTRAINT,
        "boosting": [StrOptions({"auto"}), "boolean"],
        "local_linear": [StrOptions({"auto"}), "boolean"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        metric="auto",
        *,
        n_components=None,
        kernel="gaussian",
        init="auto",
        trend="linear",
        alpha="auto",
        max_iter=100,
        tol=1e-8,
        batch_size=None,
        learning_rate_init=0.05,
        n_candidates=None,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change=10,
        warm_start=False,
        callback=None,
        random_state=None,
        verbose=0,
        n_neighbors=None,
        boosting="auto",
        local_linear="auto",
        n_jobs=None,
    ):
        self.metric = metric
        self.n_components = n_components
        self.kernel = kernel
        self.init = init
        self.trend = trend
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.n_candidates = n_candidates
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.callback = callback
        self.random_state = random_state
        self.verbose = verbose
        self.n_neighbors = n_neighbors
        self.boosting = boosting
        self.local_linear = local_linear
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    @owns_threads
    def fit(self, X, y, sample_weight=None):
        """Learn the metric by minimising the leave-one-out squared error.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (the keys).

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values (the values pooled); several outputs sum their losses.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights acting as repetition. Rows of zero weight get no
            attention and no loss.

        Returns
        -------
        self : object
            Fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import make_friedman1
        >>> from skattn import AttentionRegressor
        >>> X, y = make_friedman1(n_samples=200, n_features=6, random_state=0)
        >>> model = AttentionRegressor(metric="isotropic").fit(X, y)
        >>> model.bandwidth_.round(3)  # one learned bandwidth, for every feature
        array([0.168, 0.168, 0.168, 0.168, 0.168, 0.168])
        >>> model.loss_curve_[0] > model.loss_curve_[-1]  # leave-one-out loss went down
        True
        """
        X, y = validate_data(
            self,
            X,
            y,
            y_numeric=True,
            multi_output=True,
            dtype=[np.float64, np.float32],
            ensure_min_samples=2,
        )
        sample_weight = check_sample_weight(sample_weight, X)
        self._check_learnable(X)
        self._check_local_linear()
        X_kept, Y_kept, w_kept = self._store_training_set(X, y, sample_weight)
        offset = offset_without = None
        self._trend = None
        for name in ("trend_coef_", "trend_intercept_"):
            if hasattr(self, name):
                delattr(self, name)
        if self.trend == "linear":
            offset, offset_without = self._fit_trend(X_kept, Y_kept, w_kept)
        self._boosted_values = None
        self.boosting_widening_, self.boosting_rounds_ = 1.0, 0
        self.local_linear_ = self.local_linear_widening_ = None
        self._learn(
            X_kept,
            Y_kept,
            w_kept,
            loss="squared",
            offset=offset,
            offset_without=offset_without,
        )
        if self._boosting_applies():
            self._boost()
        if self._local_linear_applies():
            self._average_local_linear(X_kept, Y_kept, w_kept)
        return self

    def __getstate__(self):
        """As the other estimators' (plain data): ``local_linear_`` is kept as
        its own state and rebuilt on loading."""
        state = dict(super().__getstate__())
        model = state.pop("local_linear_", None)
        if model is not None:
            state["_local_linear_state"] = model.__getstate__()
        elif "local_linear_widening_" in state:
            state["local_linear_"] = None
        return state

    def __setstate__(self, state):
        state = dict(state)
        local = state.pop("_local_linear_state", None)
        super().__setstate__(state)
        if local is not None:
            from skattn._local_linear import LocalLinearRegressor

            model = LocalLinearRegressor.__new__(LocalLinearRegressor)
            model.__setstate__(local)
            self.local_linear_ = model

    def _check_local_linear(self):
        """``local_linear=True`` needs what the local-linear attention needs."""
        if self.local_linear is not True:
            return
        if self.boosting is True:
            raise ValueError(
                "local_linear=True averages the learned attention itself: it "
                "cannot be combined with boosting=True; set one of them to 'auto' "
                "or False."
            )
        if self.metric == "full" or self.n_neighbors is not None:
            raise ValueError(
                "local_linear=True fits a local-linear attention at the learned "
                "bandwidths, over every training row: it needs metric "
                "'isotropic', 'diagonal' or 'auto' and n_neighbors=None; got "
                f"metric={self.metric!r}, n_neighbors={self.n_neighbors!r}."
            )

    def _local_linear_applies(self):
        """Whether ``fit`` averages with a local-linear attention: learned
        bandwidths, dense attention and ``local_linear=True`` (from 3 rows), or
        "auto" with the trend, full-batch learning, up to 2,000 rows and no
        boosted values."""
        if self.local_linear is False or self.n_neighbors is not None:
            return False
        if not hasattr(self, "bandwidth_"):  # metric="auto" kept a projection
            return False
        n = len(self._keys)
        if self.local_linear is True:
            return n >= 3
        return (
            self.trend == "linear"
            and self.batch_size is None
            and LOCAL_LINEAR_MIN_ROWS <= n <= LOCAL_LINEAR_MAX_ROWS
            and self._boosted_values is None
            and self.boosting_widening_ == 1.0
        )

    def _average_local_linear(self, X, Y, w):
        """Fit the local-linear attention averaged with the learned one
        (:mod:`skattn._local_average`)."""
        progress = Progress(type(self).__name__, self.verbose)
        model, widening = fit_local_linear(self, X, Y, w)
        if model is None:
            progress.message(
                "local_linear: kept the learned attention alone (no local-linear "
                "fit had a finite leave-one-out error)"
            )
            return
        self.local_linear_, self.local_linear_widening_ = model, float(widening)
        progress.message(
            "local_linear: averaged with a local-linear attention at the learned "
            f"bandwidths widened {widening:g} times"
        )

    def _boosting_applies(self):
        """Whether ``fit`` tries boosted values: ``boosting=True``, or "auto"
        with the trend, dense full-batch attention and 100 to 2,000 rows (and
        without ``local_linear=True``)."""
        if self.boosting is False or (
            self.boosting == "auto" and self.local_linear is True
        ):
            return False
        if self.n_neighbors is not None:
            if self.boosting is True:
                raise ValueError(
                    "boosting=True needs dense attention: the boosted values are "
                    "fitted with every training row; set n_neighbors=None."
                )
            return False
        n = len(self._keys)
        if self.boosting is True:
            return n >= 3
        return (
            self.trend == "linear"
            and self.batch_size is None
            and BOOST_MIN_ROWS <= n <= BOOST_MAX_ROWS
        )

    def _boost(self):
        """Boost the pooled values (:mod:`skattn._boosting`): the learned head
        widened by each of ``BOOST_WIDENINGS``, each boosted for each of
        ``BOOST_ROUNDS``, the lowest leave-one-out loss kept where it beats the
        learned smoother's by ``AUTO_FULL_Z`` standard errors ("auto") or at all
        (True)."""
        progress = Progress(type(self).__name__, self.verbose)
        head = self._heads[0]
        r = np.asarray(self._values, dtype=np.float64)
        base = r - head.prepare(r, np.float64).pool(None, loo=True, n_jobs=self.n_jobs)
        heads, smoothers = {}, {}
        for widening in BOOST_WIDENINGS:
            heads[widening] = self._make_head(
                self._keys,
                self._key_weights,
                head.scale / widening,
                head.components,
            )
            smoothers[widening] = BoostedSmoother(
                heads[widening].prepare(r, np.float64), self.n_jobs
            )
        auto = self.boosting == "auto"
        choice, z = select_boosting(base, smoothers, r, AUTO_FULL_Z if auto else None)
        if choice is None:
            progress.message(
                "boosting: kept the learned smoother "
                + (
                    "(no boosted values had a leave-one-out residual at every row)"
                    if z == -np.inf
                    else "(the best boosted values' leave-one-out loss was "
                    f"{z:.2f} standard errors lower"
                    + (f"; the rule needs {AUTO_FULL_Z})" if auto else ")")
                )
            )
            return
        widening, m, smoother, z = choice
        values = None
        if m > 1:  # no rounds: the widened smoother pools the residuals themselves
            with np.errstate(over="ignore"):
                values = smoother.values(r, m).astype(self._values.dtype)
            if not np.all(np.isfinite(values)):
                progress.message(
                    "boosting: kept the learned smoother (the boosted values "
                    "overflow the targets' dtype)"
                )
                return
        self._heads = [heads[widening]]
        self._boosted_values = values
        self.boosting_widening_, self.boosting_rounds_ = float(widening), m - 1
        progress.message(
            f"boosting: the bandwidths widened {widening:g} times, boosted for "
            f"{m - 1} rounds (leave-one-out loss {z:.2f} standard errors lower)"
        )

    def _pooled_values(self, dtype):
        """The boosted values where ``fit`` kept them, else the residuals."""
        boosted = getattr(self, "_boosted_values", None)
        return self._values if boosted is None else boosted

    def _boosted_smoother(self):
        """The kept boosted smoother (rebuilt from the head: O(n^3)), the keys
        prepared with the boosted values, the targets and the rounds ``m``."""
        r = np.asarray(self._values, dtype=np.float64)
        values = np.asarray(self._boosted_values, dtype=np.float64)
        dense, keys = self._dense_interval_keys(values)
        smoother = BoostedSmoother(keys, self.n_jobs)
        return dense, keys, smoother, r, values, self.boosting_rounds_ + 1

    @staticmethod
    def _boosted_residuals(smoother, r, m):
        """The kept smoother's leave-one-out residuals (``fit`` checked that
        they exist: the same attention gives the same ones)."""
        residuals = smoother.loo_residuals(r, m)
        if residuals is None:  # pragma: no cover - fit kept only candidates with one
            raise ValueError(
                "The boosted smoother has no leave-one-out residual at some row; "
                "refit with boosting=False."
            )
        return residuals

    def _interval_method(self, method):
        if getattr(self, "local_linear_", None) is not None:
            return _ValidatedQueries(), averaged_method(self, method)
        if getattr(self, "_boosted_values", None) is None:
            return super()._interval_method(method)
        dense, keys, smoother, r, values, m = self._boosted_smoother()
        if method == "cv+":
            return dense, BoostedCVPlus(
                keys, values, smoother.value_matrix(m), smoother.hat_matrix(m), r
            )
        residuals = self._boosted_residuals(smoother, r, m)
        if method == "jackknife+":
            return dense, BoostedJackknifePlus(
                keys, values, smoother.value_matrix(m), residuals
            )
        return dense, BoostedQuantiles(keys, values, residuals)

    @fill_doc
    def predict(self, X, return_std=False):
        """Predict by attention pooling of the learned values.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        return_std : bool, default=False
            Also return the standard error of each prediction (of the fitted
            mean, not of a new observation), as
            :class:`~sklearn.gaussian_process.GaussianProcessRegressor` does:
            ``sqrt(sum_j h_j(x)^2 sigma^2(x_j))`` with the smoother's weights
            ``h`` (the attention; for boosted values ``G_m^T p(x)``; with
            ``local_linear_``, the average of the attention and the local-linear
            equivalent kernel) and the noise variance at each training row
            estimated by pooling the other rows' squared leave-one-out residuals
            with the attention, the metric and the trend held fixed. Computed
            with dense attention over every training row (whatever
            ``n_neighbors``; the predictions are always those of ``predict(X)``).

        Returns
        -------
        y_pred : ndarray of shape (n_queries,) or (n_queries, n_outputs)
            The trend plus the attention-pooled values (with
            ``local_linear_``, averaged with the local-linear fit), in the
            dtype of ``y`` as fitted (float64, or float32 for a float32 ``y``).

        {{y_std}}

        Examples
        --------
        >>> from sklearn.datasets import make_friedman1
        >>> from skattn import AttentionRegressor
        >>> X, y = make_friedman1(n_samples=200, n_features=6, random_state=0)
        >>> model = AttentionRegressor().fit(X[:150], y[:150])
        >>> pred, std = model.predict(X[150:], return_std=True)
        >>> bool(std.min() > 0)
        True
        """
        model = getattr(self, "local_linear_", None)
        if model is None:
            return super().predict(X, return_std=return_std)
        X, pooled = self._pool(X)
        own = np.asarray(self._add_trend(X, pooled), dtype=np.float64)
        other = model._local_fits(AveragedParts(self).clipped(X), "predict")
        other = model._to_target_units(other)
        dtype = self._values.dtype
        limit = np.finfo(dtype).max
        predictions = np.clip(0.5 * own + 0.5 * other, -limit, limit)
        predictions = predictions.astype(dtype, copy=False)
        if not return_std:
            return predictions[:, 0] if self._y_1d else predictions
        dense, keys, values, loo, inflation, parts = averaged_noise_state(self)
        variances, exponent = noise_variances(
            dense, values, loo, inflation, self.n_jobs
        )
        _, other_keys = model._dense_interval_keys(model._moments)
        std, n_effective = map_query_chunks(
            averaged_std_rows, X, self.n_jobs, parts, keys, other_keys, variances
        )
        _warn_low_support(self, n_effective, "predict")
        std = np.ldexp(std, exponent).astype(dtype, copy=False)
        if self._y_1d:
            return predictions[:, 0], std[:, 0]
        return predictions, std

    def _standard_error_state(self):
        if getattr(self, "_boosted_values", None) is None:
            return super()._standard_error_state()
        dense, keys, smoother, r, _, m = self._boosted_smoother()
        residuals = self._boosted_residuals(smoother, r, m)
        G = smoother.value_matrix(m)
        return (
            dense,
            keys,
            r,
            r - residuals,
            smoother.residual_inflation(m),
            SmootherWeights(G),
        )

    def _fit_trend(self, X, Y, w):
        """Fit the linear trend; the keys then carry its residuals. Returns the
        trend at the rows and the map ``j -> the trend refitted without feature
        j`` at the rows."""
        self._trend, inverse = fit_trend(X, Y, w, return_inverse=True)
        offset = apply_trend(self._trend, X)
        limit = np.finfo(np.float64).max
        with np.errstate(over="ignore", invalid="ignore"):
            residuals = np.clip(Y - offset, -limit, limit)
        self._values = residuals.astype(self._values.dtype, copy=False)
        coef, intercept = trend_coefficients(self._trend)
        self.trend_coef_ = coef[0] if self._y_1d else coef
        self.trend_intercept_ = float(intercept[0]) if self._y_1d else intercept

        def offset_without(j):
            return apply_trend(trend_without(self._trend, inverse, j), X)

        return offset, offset_without


class _ValidatedQueries:
    """The "head" of the local-linear average's interval tasks: the queries stay
    the validated rows, each half of the average takes its own features."""

    @staticmethod
    def features(X):
        return X
