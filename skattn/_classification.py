"""Attention pooling of one-hot classes: Nadaraya-Watson and learned-metric
classifiers."""

# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral, Real

import numpy as np

from skattn._attention import AttentionRegressor
from skattn._base import (
    _AttentionPoolingClassifier,
    _MetricLearner,
)
from skattn._engine import owns_threads
from skattn._kernels import KERNELS
from skattn._neighbors import NEIGHBORS_CONSTRAINT
from skattn._trend import apply_logistic_trend, fit_logistic_trend
from skattn.utils._docstring import fill_doc
from skattn.utils._sklearn_compat import (
    Interval,
    StrOptions,
    _fit_context,
    check_sample_weight,
    validate_data,
)

__all__ = ["AttentionClassifier", "NadarayaWatsonClassifier"]

_CLASS_WEIGHT = [StrOptions({"balanced"}), dict, None]


@fill_doc
class NadarayaWatsonClassifier(_AttentionPoolingClassifier):
    """Nadaraya-Watson classification: attention pooling of one-hot classes.

    The class probabilities of a query are the attention-weighted average of the
    training rows' one-hot classes: the query is compared with every training row
    by a kernel of their scaled distance, the scores are normalised by a softmax,
    and the classes are pooled with those weights.

    Parameters
    ----------
    kernel : {"gaussian", "tophat", "epanechnikov", "exponential", "linear", \
            "cosine"}, default="gaussian"
        The kernel, as in :class:`NadarayaWatsonRegressor`.

    bandwidth : float, array-like of shape (n_features,) or \
            {"scott", "silverman", "cv"}, default="scott"
        The kernel's bandwidth, scalar or one per feature, in the units of ``X``.
        "scott" and "silverman" are the rules of
        :class:`NadarayaWatsonRegressor`; "cv" is the global scale factor on the
        per-feature Scott bandwidths that minimises the weighted leave-one-out log
        loss (probabilities clipped away from 0 at the float64 machine epsilon).

    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplying the sample weights (in the attention and
        in the "cv" loss): "balanced" uses ``n_samples / (n_classes *
        np.bincount(y))``. They re-balance the classes without changing the amount
        of data: "scott" and "silverman" take ``n`` and the spreads from the sample
        weights alone (a class weight of 1000 does not make the bandwidth that of
        1000 times as many rows).

    n_neighbors : int, "radius", neighbours transformer or None, default=None
        Which training rows each query attends to. None: all of them (dense
        attention, O(n_queries x n_samples) time). An int ``k``: only its ``k``
        nearest training rows in the bandwidth-scaled space (top-k attention; exact
        neighbours from :class:`~sklearn.neighbors.NearestNeighbors`, which picks a
        tree or brute force), O(n_queries x k) after the search; values above the
        number of training rows mean all of them. With a kernel of full support the
        result differs from dense attention by at most ``E / (S + E)`` times the
        range of the targets, where ``S`` is the kernel mass of the ``k`` neighbours
        and ``E`` the weight of the other rows times the kernel at the ``k``-th
        neighbour's distance. "radius" (compact kernels only): every training row
        within the kernel's support, which gives exactly the dense result. A
        transformer in the convention of
        :class:`~sklearn.neighbors.KNeighborsTransformer` (one wrapping an
        approximate nearest-neighbour library, say) is cloned and fitted on the
        bandwidth-scaled training rows, and the stored entries of the sparse graph
        it returns for the scaled queries are their candidates. The neighbour
        index is built in ``fit``; ``bandwidth="cv"`` still searches with all rows.

    {{n_jobs}}

    {{verbose_cv}}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.

    bandwidth_ : ndarray of shape (n_features,)
        The bandwidth of each feature used for prediction.

    n_samples_fit_ : int
        Number of training rows; the columns of :meth:`attention_weights`.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X` has feature
        names that are all strings.

    See Also
    --------
    AttentionClassifier : The same model with a learned metric.
    sklearn.neighbors.KNeighborsClassifier : Vote of the k nearest neighbours.
    sklearn.neighbors.RadiusNeighborsClassifier : Vote within a radius.

    Notes
    -----
    The probability of class :math:`c` for a query :math:`q` is

    .. math::

        P(c \\mid q) = \\sum_i \\operatorname{softmax}_i
            \\big(\\log K(\\|(q - x_i) / h\\|) + \\log w_i\\big) \\, [y_i = c],

    with :math:`w_i` the sample weights (times the class weights), which act as
    repetition. The computation is the chunked, numerically stable engine of
    :class:`NadarayaWatsonRegressor`: a query with no training row inside a compact
    kernel's support (or so far that every weight underflows) gets the class of its
    nearest training row (several equidistant rows share by weight). ``predict``
    takes the most probable class; ties go to the class that comes first in
    ``classes_``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.model_selection import cross_val_score
    >>> from skattn import NadarayaWatsonClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> model = NadarayaWatsonClassifier(bandwidth="cv")
    >>> print(f"{cross_val_score(model, X, y).mean():.2f}")
    0.95
    >>> model.fit(X, y).predict_proba(X[:1]).round(3)
    array([[1., 0., 0.]])
    """

    _parameter_constraints: dict = {
        "kernel": [StrOptions(set(KERNELS))],
        "bandwidth": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions({"scott", "silverman", "cv"}),
            "array-like",
        ],
        "class_weight": _CLASS_WEIGHT,
        "n_neighbors": NEIGHBORS_CONSTRAINT,
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        kernel="gaussian",
        bandwidth="scott",
        *,
        class_weight=None,
        n_neighbors=None,
        n_jobs=None,
        verbose=0,
    ):
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.class_weight = class_weight
        self.n_neighbors = n_neighbors
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    @owns_threads
    def fit(self, X, y, sample_weight=None):
        """Store the training rows as keys and their one-hot classes as values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (the keys).

        y : array-like of shape (n_samples,)
            Class labels: strings, integers or booleans.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights acting as repetition. Rows of zero weight get no
            attention.

        Returns
        -------
        self : object
            Fitted estimator.

        Examples
        --------
        Sample weights act as repetition: a weight of 2 is the row twice.

        >>> import numpy as np
        >>> from skattn import NadarayaWatsonClassifier
        >>> X, y = np.array([[0.0], [1.0], [2.0]]), np.array(["a", "b", "a"])
        >>> clf = NadarayaWatsonClassifier(bandwidth=1.0)
        >>> weighted = clf.fit(X, y, sample_weight=[1, 2, 1]).predict_proba(X)
        >>> repeated = clf.fit(X[[0, 1, 1, 2]], y[[0, 1, 1, 2]]).predict_proba(X)
        >>> np.allclose(weighted, repeated)
        True
        """
        cv = isinstance(self.bandwidth, str) and self.bandwidth == "cv"
        X, y = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            ensure_min_samples=2 if cv else 1,
        )
        sample_weight = check_sample_weight(sample_weight, X)
        Y, sample_weight, unit = self._encode_classes(y, sample_weight, X.dtype)
        X_kept, Y_kept, w_kept = self._store_training_set(X, Y, sample_weight)
        unit_kept = None if unit is None else unit[sample_weight > 0]
        self.bandwidth_ = self._select_bandwidth(
            X_kept,
            Y_kept,
            w_kept,
            loss="log",
            unit_weights=unit_kept,
            rule_weights=None if unit is None else w_kept / unit_kept,
        )
        self._fit_head(1.0 / self.bandwidth_)
        return self


@fill_doc
class AttentionClassifier(_MetricLearner, _AttentionPoolingClassifier):
    """Parametric attention pooling of classes: a classifier with a learned metric.

    Class probabilities are attention-weighted averages of the training rows'
    one-hot classes, as in :class:`NadarayaWatsonClassifier`, but the bandwidths
    (one for all features, one per feature) or a linear projection of the features
    are learned by minimising the leave-one-out log loss of the model's own
    probabilities on the training set, with analytic gradients. Neighbourhood
    Components Analysis maximises the expected leave-one-out accuracy of the same
    pooling; the log loss is its smooth, calibrated variant. The learning is that of
    :class:`AttentionRegressor`, with the log loss in place of the squared error.

    Parameters
    ----------
    metric : {"auto", "isotropic", "diagonal", "full"}, default="auto"
        What is learned: one bandwidth, one bandwidth per feature, or a projection
        ``components_`` of shape (n_components, n_features). "auto": the
        bandwidths, then a full projection kept only where the held-out log loss
        says so, as in :class:`AttentionRegressor` (``metric_`` says which was
        kept). On two classes split along ``x0 + x1`` and ``x2 - x3`` (600 rows)
        it keeps the projection: log loss 0.29 on new rows against the
        bandwidths' 0.33.

    n_components : int, default=None
        Dimension of the learned projection for ``metric="full"``; None means
        n_features. Ignored by the other metrics ("auto" tries n_features).

    kernel : {"gaussian", "exponential"}, default="gaussian"
        The kernel. Only kernels with full support, differentiable almost
        everywhere, can be learned.

    init : {"auto", "scott", "cv", "identity", "pca"} or array-like, default="auto"
        Starting point of the optimisation, as in :class:`AttentionRegressor`
        ("cv" is the leave-one-out log-loss choice of
        :class:`NadarayaWatsonClassifier`).

    alpha : float or "auto", default=1e-2
        Penalty on the squared distance of the learned parameters (log-bandwidths
        in units of each feature's standard deviation, or the projection of the
        standardised features) from those of the start (``init``; with "auto",
        the leave-one-out choice of :class:`NadarayaWatsonClassifier`): more
        penalty means closer to that smoother, never to the mean. Unlike the
        squared error of regression, the leave-one-out log
        loss of classes that the training rows separate goes to 0 as the kernel
        sharpens without bound, and the model becomes overconfident on new data:
        at alpha=0 the 5-fold log loss on load_wine is 0.77 ("diagonal"), at 1e-2
        0.12. Tune it (1e-3 to 1e-1) by cross-validation with
        ``scoring="neg_log_loss"``. "auto" is ``1 / n_samples``, as in
        :class:`AttentionRegressor`.

    max_iter : int, default=100
        Maximum number of L-BFGS-B iterations, or of mini-batch steps when
        ``batch_size`` is set.

    tol : float, default=1e-8
        Convergence tolerance of L-BFGS-B (its ``ftol`` and ``gtol``); in
        mini-batch mode, the relative improvement of the smoothed loss below which
        a step counts as no change.

    batch_size : int, default=None
        None: the full leave-one-out objective, O(n^2 d) per iteration. An int:
        Adam on mini-batches of that many query rows against all training rows,
        for large data (roughly n above 10,000).

    learning_rate_init : float, default=0.05
        Adam's step size in mini-batch mode.

    n_candidates : int, float or None, default=None
        In mini-batch mode, the number of training rows (a float in (0, 1]: the
        fraction of them) drawn at random at every step as the keys of that
        step's queries (ModernNCA's stochastic sampling of neighbours), as in
        :class:`AttentionRegressor`. None: every training row.

    {{early_stopping}}

    validation_fraction : float, default=0.1
        The share of the rows held out by ``early_stopping`` (drawn with
        ``random_state``, stratified by class).

    n_iter_no_change : int, default=10
        Iterations without improvement of the held-out loss before the fit stops.

    warm_start : bool, default=False
        Start from the previous fit's bandwidths or projection when they fit the
        data's shape and the metric, instead of ``init``.

    callback : callable, default=None
        Called after every iteration as ``callback(params, n_iter)``, with
        ``params`` the current bandwidths or projection in the units of ``X``.

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

    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, multiplying the sample weights (in the attention and
        in the loss).

    trend : {"logistic"} or None, default="logistic"
        "logistic": a multinomial logistic regression on the standardised features
        (``C=1``, the sample and class weights) is fitted first, and the attention
        pools the residuals of its probabilities, learned by the same
        leave-one-out log loss: ``P(x) = pi(x) + t(x) sum_j p_j(x) (y_j -
        pi(x_j))`` with ``t(x)`` the largest factor in [0, 1] that keeps every
        class at or above a tenth of its logistic probability ``pi(x)`` (so the
        probabilities stay in [0, 1] and the log loss finite). The classifier
        counterpart of :class:`AttentionRegressor`'s linear trend: every bandwidth
        infinite gives the logistic regression up to the classes' mean residuals,
        and attention corrects it where its residuals vary. The trend's features
        are clipped to their training range. On the development panel it lowers
        the mean log loss from 0.318 to 0.260 (logistic regression alone 0.300).
        None: the one-hot classes are pooled.

    n_neighbors : int, neighbours transformer or None, default=None
        Which training rows each query attends to in ``predict`` (learning uses
        them all, or the mini-batches of ``batch_size``), as in
        :class:`NadarayaWatsonRegressor`: None for all of them; an int ``k`` for
        the ``k`` nearest in the learned metric's space (top-k attention, within
        the documented bound of the dense result); or a transformer in the
        convention of :class:`~sklearn.neighbors.KNeighborsTransformer`, fitted on
        the training rows in that space. "radius" is refused: the kernels that can
        be learned have full support.

    {{n_jobs}}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.

    metric_ : str
        The metric learned: ``metric``, or for ``metric="auto"`` the one kept
        ("diagonal" or "full").

    bandwidth_ : ndarray of shape (n_features,)
        Learned bandwidths in the units of ``X`` (metric "isotropic" or
        "diagonal"), per-feature ones floored, once learned, where a row one of
        the feature's smallest gaps away weighs exp(-32) of a level one (an
        eighth of the gap for the Gaussian kernel), as in
        :class:`AttentionRegressor`.

    components_ : ndarray of shape (n_components, n_features)
        Learned projection of the features (metric "full").

    feature_importances_ : ndarray of shape (n_features,)
        Drop-feature importance of the learned model (the growth of the
        leave-one-out log loss when the feature is left out of the distances and,
        with the logistic trend, its coefficients are zeroed in the trend),
        normalised to sum to 1, as in :class:`AttentionRegressor`.

    n_iter_ : int
        Number of iterations run (for ``metric="auto"``, of both metrics tried).

    validation_scores_ : list of float or None
        With ``early_stopping``: minus the held-out rows' mean log loss at the start
        and after each iteration (None without; for ``metric="auto"``, the
        projection's).

    best_iteration_ : int or None
        With ``early_stopping``: the iteration whose parameters were kept (for
        ``metric="auto"``, the projection's).

    loss_curve_ : list of float
        The objective (mean leave-one-out log loss plus the penalty) at the start
        and after each iteration (for ``metric="auto"``, each metric's curve in
        turn); in mini-batch mode, each step's estimate.

    n_samples_fit_ : int
        Number of training rows; the columns of :meth:`attention_weights`.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X` has feature
        names that are all strings.

    See Also
    --------
    NadarayaWatsonClassifier : Bandwidths from rules or a 1-D leave-one-out search.
    sklearn.neighbors.NeighborhoodComponentsAnalysis : Learns a projection for
        nearest-neighbour classification.

    Notes
    -----
    With :math:`p_{ij}` the attention of training row :math:`i` on row :math:`j`
    (row :math:`i` keeping :math:`w_i - 1` copies of itself) and
    :math:`P_i = \\sum_j p_{ij} [y_j = y_i]` its leave-one-out probability of its
    own class, the objective is
    :math:`-\\sum_i w_i \\log \\max(P_i, \\epsilon) / \\sum_i w_i` plus the penalty.
    A query with no training row in reach gets its nearest training row's class,
    and ties in ``predict`` go to the class that comes first in ``classes_``.

    References
    ----------
    .. [1] J. Goldberger, S. Roweis, G. Hinton and R. Salakhutdinov,
       "Neighbourhood Components Analysis", NIPS 2004.
    .. [2] K. Q. Weinberger and G. Tesauro, "Metric Learning for Kernel
       Regression", AISTATS 2007.

    Examples
    --------
    >>> from sklearn.datasets import load_wine
    >>> from sklearn.model_selection import cross_val_score
    >>> from skattn import AttentionClassifier
    >>> X, y = load_wine(return_X_y=True)
    >>> model = AttentionClassifier(metric="diagonal")
    >>> print(f"{cross_val_score(model, X, y).mean():.2f}")
    0.98
    """

    _nonparametric = "NadarayaWatsonClassifier"

    _parameter_constraints: dict = {
        **{
            name: constraint
            for name, constraint in AttentionRegressor._parameter_constraints.items()
            if name not in ("trend", "boosting", "local_linear")
        },
        "trend": [StrOptions({"logistic"}), None],
        "class_weight": _CLASS_WEIGHT,
    }

    def __init__(
        self,
        metric="auto",
        *,
        n_components=None,
        kernel="gaussian",
        init="auto",
        alpha=1e-2,
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
        class_weight=None,
        trend="logistic",
        n_neighbors=None,
        n_jobs=None,
    ):
        self.metric = metric
        self.n_components = n_components
        self.kernel = kernel
        self.init = init
        self.alpha = alpha
        self.trend = trend
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
        self.class_weight = class_weight
        self.n_neighbors = n_neighbors
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    @owns_threads
    def fit(self, X, y, sample_weight=None):
        """Learn the metric by minimising the leave-one-out log loss.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (the keys).

        y : array-like of shape (n_samples,)
            Class labels: strings, integers or booleans.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights acting as repetition. Rows of zero weight get no
            attention and no loss.

        Returns
        -------
        self : object
            Fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from skattn import AttentionClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = AttentionClassifier(metric="diagonal").fit(X, y)
        >>> clf.feature_importances_.round(2)  # the petal features matter most
        array([0.03, 0.08, 0.33, 0.57])
        """
        X, y = validate_data(
            self, X, y, dtype=[np.float64, np.float32], ensure_min_samples=2
        )
        sample_weight = check_sample_weight(sample_weight, X)
        self._check_learnable(X)
        Y, sample_weight, unit = self._encode_classes(y, sample_weight, X.dtype)
        X_kept, Y_kept, w_kept = self._store_training_set(X, Y, sample_weight)
        unit_kept = None if unit is None else unit[sample_weight > 0]
        self._trend = offset = offset_without = None
        if self.trend == "logistic":
            self._trend = fit_logistic_trend(X_kept, Y_kept, w_kept)
            offset = apply_logistic_trend(self._trend, X_kept)
            self._values = (Y_kept - offset).astype(self._values.dtype, copy=False)

            def offset_without(j):
                return apply_logistic_trend(self._trend, X_kept, without=j)

        return self._learn(
            X_kept,
            Y_kept,
            w_kept,
            loss="log",
            unit_weights=unit_kept,
            offset=offset,
            offset_without=offset_without,
        )
