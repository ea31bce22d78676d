"""Plots of attention weights and learned bandwidths, as scikit-learn Display objects.

matplotlib is imported only when a plot is drawn (``pip install "skattn[plot]"``).
"""

# SPDX-License-Identifier: BSD-3-Clause

import numbers

import numpy as np
from scipy import sparse
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = ["AttentionWeightsDisplay", "FeatureRelevanceDisplay"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Plotting needs matplotlib: pip install 'skattn[plot]'."
        ) from error
    return plt


def _final_step(estimator, X):
    """The estimator holding the attention, and ``X`` as it reaches it."""
    if isinstance(estimator, Pipeline):
        check_is_fitted(estimator)
        head, last = estimator[:-1], estimator[-1]
        if X is not None and len(head):
            X = head.transform(X)
        return last, X
    return estimator, X


def _feature_index(sort_by, X, feature_names):
    """Column index of ``sort_by`` (an int or a feature name)."""
    if isinstance(sort_by, numbers.Integral) and not isinstance(sort_by, bool):
        if not -X.shape[1] <= sort_by < X.shape[1]:
            raise ValueError(
                f"sort_by={sort_by} is not a column of X, which has {X.shape[1]} "
                "features."
            )
        return int(sort_by)
    if isinstance(sort_by, str):
        if feature_names is None:
            raise ValueError(
                f"sort_by={sort_by!r} names a feature, but the estimator saw no "
                "feature names: it was fitted on an array, or after a step that "
                "outputs arrays (a ColumnTransformer, a scaler). Call "
                'set_output(transform="pandas") on the pipeline before fitting it '
                "(the names become, e.g., 'num__age'), or pass sort_by as a column "
                "index."
            )
        if sort_by not in list(feature_names):
            raise ValueError(
                f"sort_by={sort_by!r} is not a feature name of the estimator "
                f"(known: {list(feature_names)})."
            )
        return list(feature_names).index(sort_by)
    raise TypeError(
        f"sort_by must be a column index or a feature name; got {sort_by!r}."
    )


class AttentionWeightsDisplay:
    """Heatmap of attention weights: queries (rows) by training rows (columns).

    Build it with :meth:`from_estimator` or :meth:`from_weights`; the constructor
    only stores what it is given.

    Parameters
    ----------
    weights : ndarray of shape (n_queries, n_keys)
        The weights, rows in display order.
    query_order : ndarray of shape (n_queries,), default=None
        Original index of each displayed query (None: the given order).
    key_order : ndarray of shape (n_keys,), default=None
        Original index of each displayed training row (None: the given order).
    query_label : str, default="queries"
        Label of the vertical axis.
    key_label : str, default="training rows (keys)"
        Label of the horizontal axis.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the heatmap.
    figure_ : matplotlib Figure
        Figure holding the axes.
    image_ : matplotlib AxesImage
        The heatmap.
    colorbar_ : matplotlib Colorbar or None
        The colour bar, if drawn.

    See Also
    --------
    FeatureRelevanceDisplay : Learned bandwidths or feature relevance.

    Examples
    --------
    >>> import numpy as np
    >>> from skattn import AttentionWeightsDisplay, NadarayaWatsonRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 5, size=(50, 1))
    >>> y = 2 * np.sin(X[:, 0]) + X[:, 0] ** 0.8
    >>> model = NadarayaWatsonRegressor(bandwidth=0.5).fit(X, y)
    >>> X_test = np.linspace(0, 5, 40).reshape(-1, 1)
    >>> display = AttentionWeightsDisplay.from_estimator(
    ...     model, X_test, X_train=X, sort_by=0
    ... )
    >>> display.image_.get_array().shape
    (40, 50)
    """

    def __init__(
        self,
        weights,
        *,
        query_order=None,
        key_order=None,
        query_label="queries",
        key_label="training rows (keys)",
    ):
        self.weights = weights
        self.query_order = query_order
        self.key_order = key_order
        self.query_label = query_label
        self.key_label = key_label

    def plot(self, ax=None, *, cmap="Reds", colorbar=True, **imshow_kwargs):
        """Draw the heatmap.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        cmap : str or Colormap, default="Reds"
            Colour map of the weights.
        colorbar : bool, default=True
            Whether to add a colour bar.
        **imshow_kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.imshow`.

        Returns
        -------
        display : AttentionWeightsDisplay
            The display, with ``ax_``, ``figure_``, ``image_`` and ``colorbar_``.

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> import numpy as np
        >>> from skattn import AttentionWeightsDisplay
        >>> weights = np.full((3, 4), 0.25)
        >>> fig, ax = plt.subplots()
        >>> display = AttentionWeightsDisplay(weights).plot(ax=ax, cmap="Blues")
        >>> display.ax_ is ax
        True
        """
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots()
        imshow_kwargs.setdefault("aspect", "auto")
        imshow_kwargs.setdefault("interpolation", "nearest")
        self.image_ = ax.imshow(self.weights, cmap=cmap, **imshow_kwargs)
        ax.set_xlabel(self.key_label)
        ax.set_ylabel(self.query_label)
        self.colorbar_ = (
            ax.figure.colorbar(self.image_, ax=ax, label="attention weight")
            if colorbar
            else None
        )
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_weights(
        cls,
        weights,
        *,
        query_label="queries",
        key_label="training rows (keys)",
        ax=None,
        cmap="Reds",
        colorbar=True,
        **imshow_kwargs,
    ):
        """Plot a given weight matrix, e.g. from ``skattn.functional``.

        Parameters
        ----------
        weights : array-like of shape (n_queries, n_keys)
            Finite weights.
        query_label : str, default="queries"
            Label of the vertical axis.
        key_label : str, default="training rows (keys)"
            Label of the horizontal axis.
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        cmap : str or Colormap, default="Reds"
            Colour map of the weights.
        colorbar : bool, default=True
            Whether to add a colour bar.
        **imshow_kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.imshow`.

        Returns
        -------
        display : AttentionWeightsDisplay
            The drawn display.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import AttentionWeightsDisplay
        >>> from skattn.functional import masked_softmax
        >>> weights = masked_softmax(np.random.default_rng(0).normal(size=(4, 6)))
        >>> AttentionWeightsDisplay.from_weights(weights).image_.get_array().shape
        (4, 6)
        """
        weights = check_array(weights, input_name="weights")
        display = cls(weights, query_label=query_label, key_label=key_label)
        return display.plot(ax=ax, cmap=cmap, colorbar=colorbar, **imshow_kwargs)

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        *,
        X_train=None,
        sort_by=None,
        ax=None,
        cmap="Reds",
        colorbar=True,
        **imshow_kwargs,
    ):
        """Plot the attention weights of a fitted estimator's queries.

        Parameters
        ----------
        estimator : estimator or Pipeline
            A fitted skattn estimator with ``attention_weights``, or a fitted
            Pipeline ending in one (``X`` and ``X_train`` go through the earlier
            steps first).
        X : array-like of shape (n_queries, n_features)
            Query rows. Mind the size: the plot holds n_queries x n_train weights.
        X_train : array-like of shape (n_train, n_features), default=None
            The rows the estimator was fitted on, needed to sort the columns.
        sort_by : int or str, default=None
            A feature (index or name, after any Pipeline steps) by which to sort
            the queries and, given ``X_train``, the training rows. None keeps the
            given order.
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        cmap : str or Colormap, default="Reds"
            Colour map of the weights.
        colorbar : bool, default=True
            Whether to add a colour bar.
        **imshow_kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.imshow`.

        Returns
        -------
        display : AttentionWeightsDisplay
            The drawn display.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.preprocessing import StandardScaler
        >>> from skattn import AttentionWeightsDisplay, NadarayaWatsonRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(0, 5, size=(60, 2))
        >>> y = np.sin(X[:, 0]) + X[:, 1]
        >>> model = make_pipeline(StandardScaler(), NadarayaWatsonRegressor()).fit(X, y)
        >>> display = AttentionWeightsDisplay.from_estimator(
        ...     model, X[:20], X_train=X, sort_by=0
        ... )
        >>> display.ax_.get_xlabel()
        'training rows (keys), sorted by feature 0'
        """
        if not hasattr(estimator, "attention_weights") and not (
            isinstance(estimator, Pipeline)
            and hasattr(estimator[-1], "attention_weights")
        ):
            raise TypeError(
                f"{type(estimator).__name__} has no attention_weights method; pass a "
                "fitted skattn estimator or a Pipeline ending in one."
            )
        final, Xq = _final_step(estimator, X)
        check_is_fitted(final)
        weights = final.attention_weights(Xq)
        if sparse.issparse(weights):  # top-k / radius attention: zeros elsewhere
            weights = weights.toarray()
        query_order = np.arange(weights.shape[0])
        key_order = np.arange(weights.shape[1])
        query_label, key_label = "queries", "training rows (keys)"
        if X_train is not None:
            _, Xt = _final_step(estimator, X_train)
            Xt = check_array(Xt, input_name="X_train")
            if Xt.shape[0] != weights.shape[1]:
                raise ValueError(
                    f"X_train has {Xt.shape[0]} rows, but the estimator was fitted on "
                    f"{weights.shape[1]}."
                )
        if sort_by is not None:
            Xq_arr = check_array(Xq, input_name="X")
            names = getattr(final, "feature_names_in_", None)
            column = _feature_index(sort_by, Xq_arr, names)
            name = names[column] if names is not None else f"feature {column}"
            query_order = np.argsort(Xq_arr[:, column], kind="stable")
            query_label = f"queries, sorted by {name}"
            if X_train is not None:
                key_order = np.argsort(Xt[:, column], kind="stable")
                key_label = f"training rows (keys), sorted by {name}"
        weights = weights[np.ix_(query_order, key_order)]
        display = cls(
            weights,
            query_order=query_order,
            key_order=key_order,
            query_label=query_label,
            key_label=key_label,
        )
        return display.plot(ax=ax, cmap=cmap, colorbar=colorbar, **imshow_kwargs)


class FeatureRelevanceDisplay:
    """Bar chart of learned feature relevance or bandwidths.

    Parameters
    ----------
    values : ndarray of shape (n_features,)
        One value per feature.
    feature_names : ndarray of shape (n_features,)
        Names of the bars.
    kind : {"relevance", "bandwidth"}
        What the values are; bandwidths are drawn on a log axis.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the bars.
    figure_ : matplotlib Figure
        Figure holding the axes.
    bars_ : matplotlib BarContainer
        The bars.

    See Also
    --------
    AttentionWeightsDisplay : Heatmap of attention weights.

    Examples
    --------
    >>> from sklearn.datasets import make_friedman1
    >>> from skattn import AttentionRegressor, FeatureRelevanceDisplay
    >>> X, y = make_friedman1(n_samples=200, random_state=0)
    >>> model = AttentionRegressor().fit(X, y)
    >>> display = FeatureRelevanceDisplay.from_estimator(model)
    >>> len(display.bars_)
    10
    """

    def __init__(self, values, feature_names, kind):
        self.values = values
        self.feature_names = feature_names
        self.kind = kind

    def plot(self, ax=None, **bar_kwargs):
        """Draw the bars.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        **bar_kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.barh`.

        Returns
        -------
        display : FeatureRelevanceDisplay
            The display, with ``ax_``, ``figure_`` and ``bars_``.

        Examples
        --------
        >>> import numpy as np
        >>> from skattn import FeatureRelevanceDisplay
        >>> display = FeatureRelevanceDisplay(
        ...     np.array([0.7, 0.3]), ["age", "dose"], kind="relevance"
        ... ).plot(color="C2")
        >>> len(display.bars_)
        2
        """
        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots()
        positions = np.arange(len(self.values))
        self.bars_ = ax.barh(positions, self.values, **bar_kwargs)
        ax.set_yticks(positions, labels=[str(n) for n in self.feature_names])
        ax.invert_yaxis()  # first feature on top
        if self.kind == "bandwidth":
            ax.set_xscale("log")
            ax.set_xlabel("bandwidth (small: the feature matters)")
        else:
            ax.set_xlabel("relevance (drop-feature importance)")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, kind="relevance", ax=None, **bar_kwargs):
        """Plot a fitted estimator's feature relevance or bandwidths.

        Parameters
        ----------
        estimator : estimator or Pipeline
            A fitted skattn estimator (or a Pipeline ending in one).
            ``kind="relevance"`` needs ``feature_importances_`` (AttentionRegressor,
            AttentionClassifier); ``kind="bandwidth"`` needs ``bandwidth_``.
        kind : {"relevance", "bandwidth"}, default="relevance"
            What to plot.
        ax : matplotlib Axes, default=None
            Axes to draw on; None makes a new figure.
        **bar_kwargs : dict
            Passed to :meth:`matplotlib.axes.Axes.barh`.

        Returns
        -------
        display : FeatureRelevanceDisplay
            The drawn display.

        Examples
        --------
        >>> from sklearn.datasets import make_friedman1
        >>> from skattn import AttentionRegressor
        >>> X, y = make_friedman1(n_samples=200, n_features=6, random_state=0)
        >>> model = AttentionRegressor(metric="diagonal").fit(X, y)
        >>> from skattn import FeatureRelevanceDisplay
        >>> display = FeatureRelevanceDisplay.from_estimator(model, kind="bandwidth")
        >>> [label.get_text() for label in display.ax_.get_yticklabels()]
        ['x0', 'x1', 'x2', 'x3', 'x4', 'x5']
        """
        if kind not in ("relevance", "bandwidth"):
            raise ValueError(f"kind must be 'relevance' or 'bandwidth'; got {kind!r}.")
        final, _ = _final_step(estimator, None)
        check_is_fitted(final)
        attribute = "feature_importances_" if kind == "relevance" else "bandwidth_"
        if not hasattr(final, attribute):
            hint = (
                " (metric='full' learns components_; use kind='relevance')"
                if kind == "bandwidth" and hasattr(final, "components_")
                else ""
            )
            raise ValueError(f"{type(final).__name__} has no {attribute}{hint}.")
        values = np.broadcast_to(
            np.asarray(getattr(final, attribute), dtype=float), (final.n_features_in_,)
        )
        names = getattr(final, "feature_names_in_", None)
        if names is None:
            names = np.array(
                [f"x{i}" for i in range(final.n_features_in_)], dtype=object
            )
        display = cls(values, names, kind)
        return display.plot(ax=ax, **bar_kwargs)
