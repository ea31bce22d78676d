"""Nadaraya-Watson kernel regression: non-parametric attention pooling."""

# SPDX-License-Identifier: BSD-3-Clause

from numbers import Integral, Real

import numpy as np

from skattn._base import _AttentionPoolingRegressor, _PredictionIntervalMixin
from skattn._engine import owns_threads
from skattn._kernels import KERNELS
from skattn._neighbors import NEIGHBORS_CONSTRAINT
from skattn.utils._docstring import fill_doc
from skattn.utils._sklearn_compat import (
    Interval,
    StrOptions,
    _fit_context,
    check_sample_weight,
    validate_data,
)

__all__ = ["NadarayaWatsonRegressor"]


@fill_doc
class NadarayaWatsonRegressor(_PredictionIntervalMixin, _AttentionPoolingRegressor):
    """Nadaraya-Watson kernel regression: non-parametric attention pooling.

    Each prediction is an attention-weighted average of the training targets: the
    query is compared with every training row (the keys) by a kernel of their scaled
    distance, the scores are normalised by a softmax, and the targets (the values)
    are pooled with those weights.

    Parameters
    ----------
    kernel : {"gaussian", "tophat", "epanechnikov", "exponential", "linear", \
            "cosine"}, default="gaussian"
        The kernel, with the shapes of :class:`sklearn.neighbors.KernelDensity`.
        All but "gaussian" and "exponential" are compact: zero beyond one bandwidth.

    bandwidth : float, array-like of shape (n_features,) or \
            {"scott", "silverman", "cv"}, default="scott"
        The kernel's bandwidth, scalar or one per feature, in the units of ``X``.

        - "scott": ``h_j = s_j * n ** (-1 / (d + 4))`` with ``s_j`` the standard
          deviation of feature ``j`` and ``n`` the sum of the sample weights.
        - "silverman": ``h_j = s_j * (n * (d + 2) / 4) ** (-1 / (d + 4))`` with the
          robust spread ``s_j = min(std, IQR / 1.349)``.
        - "cv": leave-one-out least squares (like statsmodels'
          ``KernelReg(bw="cv_ls")``): a global scale factor on the per-feature Scott
          bandwidths, searched over ``[0.01, 100]`` by a grid and a bounded Brent
          search, minimising the weighted leave-one-out squared error.

        Spreads are weighted by ``sample_weight``; a feature with zero spread gets a
        unit spread.

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
    sklearn.neighbors.KNeighborsRegressor : Average of the k nearest targets.
    sklearn.neighbors.RadiusNeighborsRegressor : Average of the targets within a radius.

    Notes
    -----
    The prediction for a query :math:`q` is

    .. math::

        \\hat f(q) = \\sum_i \\frac{w_i K(\\|(q - x_i) / h\\|)}
                                  {\\sum_j w_j K(\\|(q - x_j) / h\\|)} y_i
                   = \\sum_i \\operatorname{softmax}_i
                       \\big(\\log K(\\|(q - x_i) / h\\|) + \\log w_i\\big) y_i,

    with :math:`w_i` the sample weights, which act as repetition (a weight of 2
    equals the row twice). The computation is chunked (one chunk of the
    query-by-training-row matrix at a time, bounded by scikit-learn's
    ``working_memory``) and numerically stable: a tiny bandwidth or a far query gives
    the target of the nearest training row (the :math:`h \\to 0` limit), and a query
    with no training row inside a compact kernel's support also gets its nearest
    training row's target (several equidistant rows share by weight). Predictions
    are never NaN and lie within the range of the training targets.

    References
    ----------
    .. [1] E. A. Nadaraya, "On estimating regression", Theory of Probability and its
       Applications, 9(1), 1964.
    .. [2] G. S. Watson, "Smooth regression analysis", Sankhya A, 26(4), 1964.
    .. [3] A. Zhang, Z. C. Lipton, M. Li and A. J. Smola, "Dive into Deep Learning",
       chapter "Attention Pooling by Similarity".

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skattn import NadarayaWatsonRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), NadarayaWatsonRegressor(bandwidth="cv"))
    >>> model = model.fit(X, y)
    >>> print(f"{model.score(X, y):.2f}")
    0.69
    """

    _parameter_constraints: dict = {
        "kernel": [StrOptions(set(KERNELS))],
        "bandwidth": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions({"scott", "silverman", "cv"}),
            "array-like",
        ],
        "n_neighbors": NEIGHBORS_CONSTRAINT,
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        kernel="gaussian",
        bandwidth="scott",
        *,
        n_neighbors=None,
        n_jobs=None,
        verbose=0,
    ):
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.n_neighbors = n_neighbors
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    @owns_threads
    def fit(self, X, y, sample_weight=None):
        """Store the training rows as keys and targets as values; set the bandwidth.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (the keys).

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target values (the values pooled).

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
        >>> from skattn import NadarayaWatsonRegressor
        >>> X, y = np.array([[0.0], [1.0], [2.0]]), np.array([0.0, 1.0, 4.0])
        >>> model = NadarayaWatsonRegressor(bandwidth=1.0)
        >>> weighted = model.fit(X, y, sample_weight=[1, 2, 1]).predict(X)
        >>> repeated = model.fit(X[[0, 1, 1, 2]], y[[0, 1, 1, 2]]).predict(X)
        >>> np.allclose(weighted, repeated)
        True
        """
        cv = isinstance(self.bandwidth, str) and self.bandwidth == "cv"
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
        X_kept, Y_kept, w_kept = self._store_training_set(X, y, sample_weight)

        bandwidth = self._select_bandwidth(X_kept, Y_kept, w_kept)
        self.bandwidth_ = bandwidth
        self._fit_head(1.0 / bandwidth)
        return self
