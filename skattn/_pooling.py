"""Attention-pooled values as features for any downstream model."""

# SPDX-License-Identifier: BSD-3-Clause

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.exceptions import ConvergenceWarning, EfficiencyWarning
from sklearn.model_selection import KFold, StratifiedKFold, check_cv
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from skattn._attention import AttentionRegressor
from skattn._bandwidth import (
    BANDWIDTH_RULES,
    check_bandwidth_spec,
    select_bandwidth,
)
from skattn._base import _AttentionPoolingBase, warn_quadratic
from skattn._engine import map_query_chunks, owns_threads
from skattn._kernels import KERNELS
from skattn._learning import LEARNABLE_KERNELS
from skattn._neighbors import NEIGHBORS_CONSTRAINT
from skattn.utils._docstring import fill_doc
from skattn.utils._progress import Progress
from skattn.utils._sklearn_compat import (
    Interval,
    StrOptions,
    _fit_context,
    check_feature_names_in,
    check_sample_weight,
    validate_data,
)

__all__ = ["AttentionPooling"]

# learn_bandwidth="auto" learns the heads' bandwidths up to this many training rows
AUTO_LEARN_MAX_ROWS = 2000


def _head_specs(bandwidth):
    """The bandwidth of each head: a list of rules, numbers or per-feature arrays."""
    if isinstance(bandwidth, (list, tuple)):
        if len(bandwidth) == 0:
            raise ValueError("bandwidth is an empty list; give at least one head.")
        return list(bandwidth)
    return [bandwidth]


@fill_doc
class AttentionPooling(TransformerMixin, _AttentionPoolingBase):
    """Attention-pooled training targets and features, as features.

    ``fit`` stores the training rows as keys, with their targets and/or features as
    values; ``transform`` returns, for every query row, the kernel attention pooling
    of those values over the stored rows (the Nadaraya-Watson average), for one or
    more heads of different bandwidths. It is the retrieval feature of recent
    tabular deep-learning models (TabR, ModernNCA), ready for any scikit-learn
    model in a :class:`~sklearn.pipeline.Pipeline`.

    Parameters
    ----------
    values : {"target", "features", "both"}, default="target"
        What is pooled.

        - "target": the training targets (``y`` is required). A continuous target
          gives one column per output; a classification target (binary or
          multiclass) gives one column per class, the pooled class distribution.
        - "features": the training rows' features (kernel smoothing of ``X``), one
          column per feature.
        - "both": the target columns, then the feature columns.

    kernel : {"gaussian", "tophat", "epanechnikov", "exponential", "linear", \
            "cosine"}, default="gaussian"
        The kernel, as in :class:`NadarayaWatsonRegressor`.

    bandwidth : float, ndarray of shape (n_features,), {"scott", "silverman", \
            "cv"} or list of them, default="scott"
        Each head's bandwidth, as :class:`NadarayaWatsonRegressor` takes it. A list
        makes one head per element (multi-scale pooling, like the heads of
        multi-head attention): ``[0.5, 1.0, 2.0]`` is three heads of scalar
        bandwidths. A per-feature bandwidth is a NumPy array, or a list inside the
        list. "cv" needs ``y``.

    bandwidth_scales : float or list of float, default=None
        Multipliers of every head's bandwidth: the heads are every pair of
        ``bandwidth`` and scale, bandwidth first. ``bandwidth="scott",
        bandwidth_scales=[0.5, 1, 2]`` gives three heads at half, once and twice
        Scott's rule. None means ``[1.0]``.

    learn_bandwidth : bool or "auto", default="auto"
        Learn one bandwidth per feature for each head with the objective of
        :class:`AttentionRegressor` (``metric="diagonal"``, ``trend=None``: the
        leave-one-out squared error of the pooled targets, the one-hot classes for
        a classification target), starting from the head's bandwidth. Needs ``y``
        and a kernel that can be learned ("gaussian" or "exponential"). Heads
        started apart can end at the same optimum. "auto": learn the heads whose
        bandwidth is a rule ("scott", "silverman", "cv"; a number or array is
        kept as given) when the target is pooled, the kernel can be learned and
        there are at most 2,000 training rows (``fit_transform`` learns once per
        cross-fitting fold too: O(n^2 d) per iteration, about 6 s for
        ``fit_transform`` on 800 rows and 10 features on two cores); keep the
        head's bandwidth otherwise.

    passthrough : bool, default=True
        Append the input features, as given, after the pooled columns (as
        :class:`~sklearn.ensemble.StackingRegressor` does with
        ``passthrough=True``): the downstream model sees the table and the
        attention features, so it loses nothing the table alone would give it.
        False: the pooled columns only.

    target_type : {"auto", "continuous", "binary", "multiclass"}, default="auto"
        How ``y`` is read. "auto": a float ``y`` is continuous, even when its values
        are whole numbers (like :func:`~sklearn.datasets.load_diabetes`' target);
        an integer, boolean or string ``y`` goes through
        :func:`~sklearn.utils.multiclass.type_of_target`: labels are classes (one
        column per class), a 2-D indicator matrix is several continuous outputs (the
        frequency of each label). Set "continuous" to pool integer targets as
        numbers, "binary" or "multiclass" to pool float labels as classes.

    cv : int, cross-validation generator or iterable, default=5
        The cross-fitting of :meth:`fit_transform` for target values. An int is the
        number of folds of a :class:`~sklearn.model_selection.KFold`
        (:class:`~sklearn.model_selection.StratifiedKFold` for classes); a splitter
        or an iterable of (train, test) index pairs must put every row in exactly
        one test fold.

    shuffle : bool, default=True
        Whether an int ``cv`` shuffles the rows before splitting.

    random_state : int, RandomState instance or None, default=None
        The shuffling of an int ``cv`` with ``shuffle=True``. Pass an int for
        reproducible output of :meth:`fit_transform`.

    return_entropy : bool, default=False
        Add, for each head, the entropy of the query's attention weights (in nats):
        0 when it attends to one training row, ``log n`` when it attends uniformly.

    return_n_effective : bool, default=False
        Add, for each head, the effective number of training rows the query attends
        to, ``1 / sum_i p_i^2`` (a row of sample weight ``w`` counting as ``w``
        rows): a measure of how much data supports the pooled values, useful for
        uncertainty-aware downstream models.

    n_neighbors : int, "radius", neighbours transformer or None, default=None
        Which training rows each query attends to, in every head, as in
        :class:`NadarayaWatsonRegressor`: None for all of them (dense); an int
        ``k`` for its ``k`` nearest in the head's bandwidth-scaled space (top-k
        attention, within the documented bound of the dense result); "radius"
        (compact kernels only) for every row within the kernel's support (exact);
        or a transformer in the convention of
        :class:`~sklearn.neighbors.KNeighborsTransformer`, fitted on the scaled
        training rows. Each head gets its own neighbour index in ``fit`` (the
        folds of :meth:`fit_transform` get theirs); leave-one-out rows take one
        neighbour more, themselves, so that ``k`` others remain. Bandwidths chosen
        by "cv" or ``learn_bandwidth`` still use every row.

    {{n_jobs}}

    verbose : int, default=0
        When positive, print the progress of each head's "cv" search (candidate,
        leave-one-out loss, time) and of its learned bandwidths
        (``learn_bandwidth=True``: iteration out of 100, loss, time, why it
        stopped), named after this transformer and the head; in
        ``fit_transform``, for every cross-fitting fold too.

    Attributes
    ----------
    bandwidths_ : ndarray of shape (n_heads, n_features)
        Each head's bandwidth per feature, from the data ``fit`` saw.

    target_type_ : str or None
        "continuous", "binary" or "multiclass"; None when ``y`` was not used.

    n_samples_fit_ : int
        Number of training rows; the columns of :meth:`attention_weights`.

    classes_ : ndarray of shape (n_classes,)
        The classes of a binary or multiclass target.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X` has feature
        names that are all strings.

    See Also
    --------
    NadarayaWatsonRegressor : The same pooling of the targets, as a regressor.
    sklearn.preprocessing.TargetEncoder : Cross-fitted target statistics of
        categories.

    Notes
    -----
    For a query :math:`q`, head :math:`h` outputs

    .. math::

        \\sum_i \\operatorname{softmax}_i\\big(\\log K(\\|(q - x_i) / h\\|)
            + \\log w_i\\big) \\, v_i,

    with :math:`v_i` the target (one-hot classes) and/or the features of training
    row :math:`i` and :math:`w_i` its sample weight. The computation is the chunked,
    numerically stable engine of :class:`NadarayaWatsonRegressor`.

    **fit_transform differs from fit(X, y).transform(X).** On its own training
    rows, ``transform`` would pool each row's own target into its feature: a
    downstream model would learn to trust a feature that is partly the answer.
    So, like :class:`~sklearn.preprocessing.TargetEncoder`, ``fit_transform``
    cross-fits the target values: each row is encoded by a model fitted on the
    other folds (its bandwidths chosen there too), which never saw its target.
    Feature values need no cross-fitting, but ``fit_transform`` leaves each row out
    of its own keys (a row of sample weight ``w`` keeps ``w - 1`` copies), as do
    the entropy and effective number of rows. A
    :class:`~sklearn.pipeline.Pipeline` calls ``fit_transform`` on the training
    data and ``transform`` on new data, which is what these are for.

    Examples
    --------
    >>> from sklearn.datasets import make_friedman1
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.model_selection import cross_val_score
    >>> from sklearn.pipeline import make_pipeline
    >>> from skattn import AttentionPooling
    >>> X, y = make_friedman1(n_samples=500, random_state=0)
    >>> pooling = AttentionPooling(random_state=0)  # learned bandwidths, X appended
    >>> pooling.fit(X, y).get_feature_names_out().tolist()[:3]
    ['head0_target', 'x0', 'x1']
    >>> ridge = cross_val_score(Ridge(), X, y).mean()
    >>> pooled = cross_val_score(make_pipeline(pooling, Ridge()), X, y).mean()
    >>> print(f"Ridge {ridge:.2f}, on attention-pooled targets {pooled:.2f}")
    Ridge 0.75, on attention-pooled targets 0.92
    """

    _parameter_constraints: dict = {
        "values": [StrOptions({"target", "features", "both"})],
        "kernel": [StrOptions(set(KERNELS))],
        "bandwidth": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions(set(BANDWIDTH_RULES)),
            "array-like",
            list,
            tuple,
        ],
        "bandwidth_scales": [
            Interval(Real, 0, None, closed="neither"),
            "array-like",
            None,
        ],
        "learn_bandwidth": ["boolean", StrOptions({"auto"})],
        "passthrough": ["boolean"],
        "target_type": [StrOptions({"auto", "continuous", "binary", "multiclass"})],
        "cv": ["cv_object"],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "return_entropy": ["boolean"],
        "return_n_effective": ["boolean"],
        "n_neighbors": NEIGHBORS_CONSTRAINT,
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        values="target",
        kernel="gaussian",
        bandwidth="scott",
        *,
        bandwidth_scales=None,
        learn_bandwidth="auto",
        passthrough=True,
        target_type="auto",
        cv=5,
        shuffle=True,
        random_state=None,
        return_entropy=False,
        return_n_effective=False,
        n_neighbors=None,
        n_jobs=None,
        verbose=0,
    ):
        self.values = values
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.bandwidth_scales = bandwidth_scales
        self.learn_bandwidth = learn_bandwidth
        self.passthrough = passthrough
        self.target_type = target_type
        self.cv = cv
        self.shuffle = shuffle
        self.random_state = random_state
        self.return_entropy = return_entropy
        self.return_n_effective = return_n_effective
        self.n_neighbors = n_neighbors
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- fitting -------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    @owns_threads
    def fit(self, X, y=None, sample_weight=None):
        """Store the training rows as keys and their targets and/or features as values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (the keys).

        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Target values. Needed for target values, "cv" bandwidths and
            ``learn_bandwidth``; otherwise ignored.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights acting as repetition. Rows of zero weight get no
            attention.

        Returns
        -------
        self : object
            Fitted transformer.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import AttentionPooling
        >>> X = np.array([[0.0], [1.0], [3.0], [4.0]])
        >>> y = np.array([0.0, 1.0, 3.0, 4.0])
        >>> pooling = AttentionPooling(bandwidth=1.0).fit(X, y)
        >>> pooling.bandwidths_
        array([[1.]])
        """
        self._fit(X, y, sample_weight)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @owns_threads
    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit, and transform the training rows without leaking their own targets.

        Target values are cross-fitted (every row is encoded by a model fitted on
        the other folds of ``cv``), and every row is left out of its own keys for
        feature values and the weight statistics. This differs from
        ``fit(X, y).transform(X)``; see the Notes of the class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (the keys).

        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Target values. Needed for target values, "cv" bandwidths and
            ``learn_bandwidth``; otherwise ignored.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights acting as repetition.

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_features_out)
            The pooled values of every head, in the dtype of ``X``.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import AttentionPooling
        >>> X = np.array([[0.0], [1.0], [3.0], [4.0]])
        >>> y = np.array([0.0, 1.0, 3.0, 4.0])
        >>> pooling = AttentionPooling(
        ...     values="features", bandwidth=1.0, passthrough=False
        ... )
        >>> pooling.fit_transform(X, y).round(3)  # each row left out of its own keys
        array([[1.038],
               [0.598],
               [3.402],
               [2.962]])
        >>> pooling.fit(X, y).transform(X).round(3)  # with its own row among the keys
        array([[0.396],
               [0.827],
               [3.173],
               [3.604]])
        """
        X, y, T, w = self._fit(X, y, sample_weight)
        blocks = []
        if self._pool_target:
            blocks.append(self._cross_fitted_targets(X, y, T, w))
        if self._pool_features or self._n_stats:
            blocks.append(self._left_out_features(X, w))
        return self._with_passthrough(self._assemble(blocks), X)

    def _with_passthrough(self, pooled, X):
        """The pooled columns, then the input features with ``passthrough``."""
        pooled = pooled.astype(X.dtype, copy=False)
        if not self._output_param("passthrough"):
            return pooled
        return np.hstack([pooled, X])

    def _fit(self, X, y, sample_weight):
        self._snapshot_output()
        needs_y = self._pool_target or self._uses_y_for_bandwidth()
        if needs_y and y is None:
            what = (
                f"values={self.values!r}"
                if self._pool_target
                else "a 'cv' bandwidth or learn_bandwidth=True"
            )
            raise ValueError(
                f"{type(self).__name__} with {what} requires y to be passed, but the "
                "target y is None."
            )
        if needs_y:
            X, y = validate_data(
                self,
                X,
                y,
                multi_output=True,
                dtype=[np.float64, np.float32],
                ensure_min_samples=2,
            )
        else:
            X = validate_data(
                self, X, dtype=[np.float64, np.float32], ensure_min_samples=2
            )
        if self.learn_bandwidth is True and self.kernel not in LEARNABLE_KERNELS:
            raise ValueError(
                "learn_bandwidth=True needs a kernel with full support, differentiable "
                f"almost everywhere {LEARNABLE_KERNELS}; got kernel={self.kernel!r}."
            )
        sample_weight = check_sample_weight(sample_weight, X)
        if needs_y:
            T = self._encode_target(y, X.dtype)
        else:
            T = None
            self.target_type_ = None
            if hasattr(self, "classes_"):
                del self.classes_
        self._specs = [
            check_bandwidth_spec(spec, X.shape[1])
            for spec in _head_specs(self.bandwidth)
        ]
        self._scales = self._check_scales()

        keep = self._store_keys(X, sample_weight)  # checks n_neighbors first
        self._learns = self._learns_bandwidth(len(keep))
        if self._uses_y_for_bandwidth():
            warn_quadratic(
                type(self).__name__,
                "a 'cv' bandwidth or learn_bandwidth=True (once per head, and per "
                "cross-fitting fold in fit_transform)",
                len(keep),
                "learn" if self._learns else "cv",
                "Give fixed bandwidths (numbers, 'scott' or bandwidth_scales) or "
                "carry a subsample's 'cv' bandwidth to the full data at the "
                "rule-of-thumb rate, h * (n_subsample / n) ** (1 / (n_features + 4)) "
                "(the user guide's 'Scaling to large data'); n_neighbors=k makes "
                "transform O(n k).",
            )
        self._targets = None if T is None else T[keep]
        self.bandwidths_ = self._bandwidths(
            self._keys, self._targets, self._key_weights
        )
        self._heads = [
            self._make_head(self._keys, self._key_weights, 1.0 / bandwidth)
            for bandwidth in self.bandwidths_
        ]
        return X, y, T, sample_weight

    def _check_scales(self):
        scales = self.bandwidth_scales
        if scales is None:
            return [1.0]
        scales = [scales] if isinstance(scales, Real) else list(scales)
        if not scales or not all(
            isinstance(s, Real) and np.isfinite(s) and s > 0 for s in scales
        ):
            raise ValueError(
                "bandwidth_scales must be a positive float or a non-empty list of "
                f"positive floats; got {self.bandwidth_scales!r}."
            )
        return [float(s) for s in scales]

    def _learns_bandwidth(self, n_rows):
        """Whether the heads' bandwidths are learned (``learn_bandwidth``, "auto"
        resolved for ``n_rows`` training rows)."""
        if self.learn_bandwidth == "auto":
            return (
                self._pool_target
                and self.kernel in LEARNABLE_KERNELS
                and n_rows <= AUTO_LEARN_MAX_ROWS
            )
        return bool(self.learn_bandwidth)

    def _uses_y_for_bandwidth(self):
        specs = _head_specs(self.bandwidth)
        # ("auto" learns only when the target is pooled: y is needed anyway)
        return self.learn_bandwidth is True or any(
            isinstance(spec, str) and spec == "cv" for spec in specs
        )

    # What the output holds: set from the parameters at the start of fit, so that
    # transform uses fitted state only (set_params then needs a refit).

    def _snapshot_output(self):
        self._output = {
            "values": self.values,
            "return_entropy": bool(self.return_entropy),
            "return_n_effective": bool(self.return_n_effective),
            "passthrough": bool(self.passthrough),
        }

    def _output_param(self, name):
        output = getattr(self, "_output", None)
        return getattr(self, name) if output is None else output[name]

    @property
    def _pool_target(self):
        return self._output_param("values") in ("target", "both")

    @property
    def _pool_features(self):
        return self._output_param("values") in ("features", "both")

    @property
    def _stats_kept(self):
        return [
            self._output_param("return_entropy"),
            self._output_param("return_n_effective"),
        ]

    @property
    def _n_stats(self):
        return sum(self._stats_kept)

    def _encode_target(self, y, dtype):
        """The target as a float matrix: the outputs, or one-hot classes."""
        target_type = self.target_type
        if target_type == "auto" and np.asarray(y).dtype.kind == "f":
            target_type = "continuous"
        elif target_type == "auto":
            inferred = type_of_target(y, input_name="y")
            if inferred == "unknown":
                raise ValueError(
                    f"Unknown label type: y holds values such as "
                    f"{np.asarray(y).ravel()[:3].tolist()}, neither numbers nor class "
                    "labels."
                )
            if inferred in ("binary", "multiclass"):
                target_type = inferred
            elif inferred in (
                "continuous",
                "continuous-multioutput",
                "multilabel-indicator",
            ):
                target_type = "continuous"
            else:
                raise ValueError(
                    f"y is of type {inferred!r}, which AttentionPooling cannot pool; "
                    "set target_type='continuous' to pool its columns as numbers."
                )
        self.target_type_ = target_type
        if target_type == "continuous":
            try:
                Y = np.asarray(y, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    "target_type='continuous' needs a numeric y; got values such as "
                    f"{np.asarray(y).ravel()[:3].tolist()}."
                ) from exc
            if not np.isfinite(Y).all():
                raise ValueError("y contains NaN or infinity.")
            largest = float(np.max(np.abs(Y), initial=0.0))
            if largest > float(np.finfo(dtype).max):
                raise ValueError(
                    f"y holds values up to {largest:.3g} in magnitude, beyond the "
                    f"range of {np.dtype(dtype).name} (the dtype of X, which the "
                    "pooled targets keep); pass X as float64."
                )
            self._y_columns = None if Y.ndim == 1 else Y.shape[1]
            if hasattr(self, "classes_"):
                del self.classes_
            return Y.reshape(len(Y), -1)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(
                f"target_type={target_type!r} needs a 1-D y of class labels; got shape "
                f"{y.shape}."
            )
        self.classes_, codes = np.unique(y, return_inverse=True)
        if target_type == "binary" and len(self.classes_) > 2:
            raise ValueError(
                f"target_type='binary' but y has {len(self.classes_)} classes."
            )
        self._y_columns = None
        return np.eye(len(self.classes_), dtype=dtype)[codes]

    def _bandwidths(self, X, T, w):
        """Each head's per-feature bandwidth on the training rows ``X``."""
        heads = []
        for spec in self._specs:
            progress = Progress(
                f"{type(self).__name__} head {len(heads)}", self.verbose
            )
            base = select_bandwidth(
                spec, X, T, w, self.kernel, n_jobs=self.n_jobs, progress=progress
            )
            # "auto" learns from a rule's bandwidth, keeps a number or array given
            learns = self._learns and (
                self.learn_bandwidth is True or isinstance(spec, str)
            )
            for scale in self._scales:
                h = np.asarray(base, dtype=np.float64) * scale
                if learns:
                    h = self._learned_bandwidth(X, T, w, h, len(heads))
                heads.append(h)
        return np.asarray(heads, dtype=np.float64)

    def _learned_bandwidth(self, X, T, w, start, head):
        """A head's per-feature bandwidths learned from ``start`` with the objective
        of AttentionRegressor; a convergence warning names this transformer and
        what its user can do."""
        # the pooled targets themselves (no trend), as Nadaraya-Watson pools them
        learner = AttentionRegressor(
            metric="diagonal",
            kernel=self.kernel,
            init=start,
            trend=None,
            alpha=0.0,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        learner._progress_name = f"{type(self).__name__} head {head}"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            learner.fit(X, T, sample_weight=w)
        for record in caught:
            if issubclass(record.category, EfficiencyWarning):
                continue  # said once by fit, in this transformer's words
            if not issubclass(record.category, ConvergenceWarning):
                warnings.warn(record.message, record.category, stacklevel=2)
                continue
            warnings.warn(
                f"AttentionPooling(learn_bandwidth=True): learning head {head}'s "
                f"bandwidths stopped before converging (after {learner.max_iter} "
                "L-BFGS-B iterations); the bandwidths reached are used. Standardise "
                "the features, or learn them with AttentionRegressor(init=..., "
                "max_iter=...) and pass its bandwidth_ as this head's bandwidth.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return learner.bandwidth_

    # -- pooling -------------------------------------------------------------------

    def _pooled_values(self, dtype):
        """What every head pools, in ``dtype``: the stored targets (if pooled),
        then the keys' features (if pooled)."""
        columns = []
        if self._pool_target:
            columns.append(self._targets.astype(dtype, copy=False))
        if self._pool_features:
            columns.append(self._keys.astype(dtype, copy=False))
        if not columns:
            return np.empty((len(self._keys), 0), dtype)
        return np.hstack(columns)

    def _head_output(self, head, X, values, *, loo=False, prepared=None, n_jobs=None):
        """One head's output columns for the queries ``X`` (None: leave-one-out
        over its keys): ``values`` pooled, then the weight statistics asked for.
        ``prepared``: the head's keys prepared for ``values``, when at hand."""
        stats = self._n_stats > 0
        result = head.pool(
            X,
            values,
            prepared=prepared,
            loo=loo,
            n_jobs=self.n_jobs if n_jobs is None else n_jobs,
            return_stats=stats,
        )
        if not stats:
            return result
        pooled, weight_stats = result
        return np.hstack([pooled, weight_stats[:, self._stats_kept]])

    def _left_out_features(self, X, w):
        """Each head's pooled features and weight statistics for the training rows,
        each row left out of its own keys (a row of weight ``w`` keeps ``w - 1``
        copies); rows of zero weight, not among the keys, are plain queries."""
        kept = np.flatnonzero(w > 0)
        dropped = np.flatnonzero(w == 0)
        dtype = self._keys.dtype
        values = self._keys if self._pool_features else np.empty((len(kept), 0), dtype)
        parts = []
        for head in self._heads:
            part = np.empty((X.shape[0], values.shape[1] + self._n_stats), dtype)
            part[kept] = self._head_output(head, None, values, loo=True)
            if dropped.size:
                part[dropped] = self._head_output(head, X[dropped], values)
            parts.append(part)
        return parts

    def _cross_fitted_targets(self, X, y, T, w):
        """Every row's pooled targets from a model fitted on the other folds."""
        n = X.shape[0]
        classes = self.target_type_ in ("binary", "multiclass")
        cv = self.cv
        if isinstance(cv, Integral):
            splitter_cls = StratifiedKFold if classes else KFold
            cv = splitter_cls(
                n_splits=cv,
                shuffle=self.shuffle,
                random_state=self.random_state if self.shuffle else None,
            )
        cv = check_cv(cv, y, classifier=classes)
        if classes and isinstance(cv, StratifiedKFold):
            smallest = int(T.sum(axis=0).min())
            if smallest < cv.n_splits:
                hint = (
                    " target_type='auto' reads an integer y as class labels; set "
                    "target_type='continuous' to pool its values as numbers, or"
                    if self.target_type == "auto"
                    else ""
                )
                raise ValueError(
                    f"y has {T.shape[1]} classes, the smallest with {smallest} "
                    f"row(s): too few for cv's {cv.n_splits} stratified folds.{hint} "
                    "use fewer folds (cv)."
                )
        out = [np.empty((n, T.shape[1]), dtype=X.dtype) for _ in self.bandwidths_]
        covered = np.zeros(n, dtype=np.intp)
        for train, test in cv.split(X, y):
            covered[test] += 1
            train = train[w[train] > 0]
            if len(train) == 0:
                raise ValueError(
                    "A cross-fitting fold has no training row of positive sample "
                    "weight; use fewer folds or fewer zero weights."
                )
            bandwidths = self._bandwidths(X[train], T[train], w[train])
            for h, bandwidth in enumerate(bandwidths):
                head = self._make_head(X[train], w[train], 1.0 / bandwidth)
                out[h][test] = head.pool(X[test], T[train], n_jobs=self.n_jobs)
        if not np.all(covered == 1):
            raise ValueError(
                "cv must put every row in exactly one test fold (a partition, like "
                f"KFold); {np.sum(covered == 0)} rows are in no test fold and "
                f"{np.sum(covered > 1)} in several."
            )
        return out

    def _assemble(self, blocks):
        """Concatenate per-head blocks head by head: head 0's columns first."""
        n_heads = len(self.bandwidths_)
        return np.hstack([block[h] for h in range(n_heads) for block in blocks])

    def transform(self, X):
        """Attention-pool the stored values for every query row.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        Returns
        -------
        X_out : ndarray of shape (n_queries, n_features_out)
            The pooled values of every head (see :meth:`get_feature_names_out`),
            in the dtype of ``X``.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import AttentionPooling
        >>> X = np.array([[0.0], [1.0], [3.0], [4.0]])
        >>> y = np.array([0.0, 1.0, 3.0, 4.0])
        >>> pooling = AttentionPooling(bandwidth=1.0).fit(X, y)
        >>> pooling.transform([[0.5], [2.0]]).round(3)  # pooled target, then X
        array([[0.565, 0.5  ],
               [2.   , 2.   ]])
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        dtype = np.result_type(X.dtype, self._keys.dtype)
        values = self._pooled_values(dtype)
        # Dense heads prepare their keys once, shared by the threads of this process.
        prepared = [head.prepare(values, dtype) for head in self._heads]
        # By chunks of rows over the engine's threads, or through joblib on a Dask
        # cluster inside parallel_config(backend="dask").
        pooled = map_query_chunks(
            self._transform_rows, X, self.n_jobs, values, prepared
        )
        return self._with_passthrough(pooled, X)

    def _transform_rows(self, X, values, prepared):
        """:meth:`transform` of validated rows on one thread."""
        heads = [
            self._head_output(head, X, values, prepared=head_keys, n_jobs=1)
            for head, head_keys in zip(self._heads, prepared, strict=True)
        ]
        return np.hstack(heads).astype(X.dtype, copy=False)

    def attention_weights(self, X, head=0):
        """Attention weights of each query over the training rows, for one head.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        head : int, default=0
            Which head (row of ``bandwidths_``).

        Returns
        -------
        weights : ndarray or scipy.sparse.csr_matrix of shape \
                (n_queries, n_samples_fit)
            Non-negative weights; each row sums to 1. Column ``j`` is training row
            ``j`` (zero for rows fitted with zero sample weight). Dense, or a CSR
            matrix of each query's candidate keys when ``n_neighbors`` is set.
            These are the weights of :meth:`transform` (not of
            :meth:`fit_transform`, which cross-fits).

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import AttentionPooling
        >>> X = np.array([[0.0], [1.0], [3.0]])
        >>> pooling = AttentionPooling(bandwidth=[1.0, 0.5]).fit(X, [0.0, 1.0, 3.0])
        >>> pooling.attention_weights([[0.5]], head=1).round(3)
        array([[0.5, 0.5, 0. ]])
        """
        check_is_fitted(self)
        n_heads = len(self._heads)
        if not (isinstance(head, Integral) and -n_heads <= head < n_heads):
            raise ValueError(
                f"head={head!r} is not a head of this AttentionPooling; it has "
                f"{n_heads} (0 to {n_heads - 1})."
            )
        return self._attention_weights(X, int(head))

    def get_feature_names_out(self, input_features=None):
        """Get the names of the output columns.

        Each head ``i`` gives, in order: ``head{i}_target`` (``head{i}_target{k}``
        for output ``k`` of a multi-output target, ``head{i}_proba_{class}`` for
        classes), ``head{i}_mean_{feature}`` for pooled features, then
        ``head{i}_entropy`` and ``head{i}_n_effective``; after every head, the
        input features' names with ``passthrough``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; None means ``feature_names_in_`` if defined, else
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per column of :meth:`transform`.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import AttentionPooling
        >>> X = np.array([[0.0], [1.0], [3.0], [4.0]])
        >>> y = np.array([0.0, 1.0, 3.0, 4.0])
        >>> pooling = AttentionPooling(
        ...     values="both", bandwidth_scales=[1.0, 2.0], return_entropy=True
        ... ).fit(X, y)
        >>> pooling.get_feature_names_out().tolist()
        ['head0_target', 'head0_mean_x0', 'head0_entropy',
         'head1_target', 'head1_mean_x0', 'head1_entropy', 'x0']
        """
        check_is_fitted(self)
        input_features = check_feature_names_in(self, input_features)
        names = []
        for head in range(len(self.bandwidths_)):
            prefix = f"head{head}_"
            if self._pool_target:
                if getattr(self, "classes_", None) is not None:
                    names += [f"{prefix}proba_{c}" for c in self.classes_]
                elif self._y_columns is None:
                    names.append(f"{prefix}target")
                else:
                    names += [f"{prefix}target{k}" for k in range(self._y_columns)]
            if self._pool_features:
                names += [f"{prefix}mean_{f}" for f in input_features]
            entropy, n_effective = self._stats_kept
            if entropy:
                names.append(f"{prefix}entropy")
            if n_effective:
                names.append(f"{prefix}n_effective")
        if self._output_param("passthrough"):
            names += list(input_features)
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = self.values in ("target", "both")
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
