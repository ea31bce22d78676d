"""What every attention-pooling regressor shares: the stored training set (keys,
values, weights) and prediction through the engine."""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from skattn._engine import attention_pool
from skattn.utils._sklearn_compat import validate_data


class _AttentionPoolingRegressor(RegressorMixin, BaseEstimator):
    """Base class: predictions are attention pooling of the training targets.

    Subclasses set, in ``fit``, the training set through ``_store_training_set`` and
    define ``_features(X)`` (the space in which distances are taken) and
    ``_feature_scale()`` (inverse bandwidths in that space).
    """

    def _store_training_set(self, X, y, sample_weight):
        """Keep the rows of positive weight as keys and their targets as values.

        Returns the kept rows, their targets as a 2-D array and their weights.
        """
        y = np.asarray(y, dtype=X.dtype)
        self._y_1d = y.ndim == 1
        Y = y.reshape(-1, 1) if self._y_1d else y
        keep = np.flatnonzero(sample_weight > 0)
        self.n_samples_fit_ = X.shape[0]
        self._keys = X[keep]
        self._values = Y[keep]
        self._key_weights = sample_weight[keep]
        self._key_index = None if len(keep) == X.shape[0] else keep
        return self._keys, self._values, self._key_weights

    def _features(self, X):
        return X

    def _feature_scale(self):
        return 1.0 / self.bandwidth_

    def _pool(self, X, return_weights):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        dtype = np.result_type(X.dtype, self._keys.dtype)
        return X.dtype, attention_pool(
            self._features(X),
            self._features(self._keys),
            self._values,
            kernel=self.kernel,
            scale=self._feature_scale(),
            key_weights=self._key_weights,
            n_jobs=self.n_jobs,
            return_weights=return_weights,
            dtype=dtype,
        )

    def predict(self, X):
        """Predict by attention pooling of the training targets.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        Returns
        -------
        y_pred : ndarray of shape (n_queries,) or (n_queries, n_outputs)
            Attention-weighted averages of the training targets, in the dtype of
            ``X``.
        """
        dtype, pooled = self._pool(X, return_weights=False)
        pooled = pooled.astype(dtype, copy=False)
        return pooled[:, 0] if self._y_1d else pooled

    def attention_weights(self, X):
        """Attention weights of each query over the training rows.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query rows.

        Returns
        -------
        weights : ndarray of shape (n_queries, n_samples_fit)
            Non-negative weights; each row sums to 1. Column ``j`` is training row
            ``j`` (zero for rows fitted with zero sample weight). Dense: mind the
            memory for many queries and training rows.
        """
        dtype, (_, weights) = self._pool(X, return_weights=True)
        weights = weights.astype(dtype, copy=False)
        if self._key_index is None:
            return weights
        full = np.zeros((weights.shape[0], self.n_samples_fit_), dtype=dtype)
        full[:, self._key_index] = weights
        return full

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
