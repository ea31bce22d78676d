"""skattn: attention mechanisms as scikit-learn estimators."""

# SPDX-License-Identifier: BSD-3-Clause

from skattn._attention import AttentionRegressor
from skattn._base import LowSupportWarning
from skattn._classification import AttentionClassifier, NadarayaWatsonClassifier
from skattn._display import AttentionWeightsDisplay, FeatureRelevanceDisplay
from skattn._local_linear import LocalLinearRegressor
from skattn._nadaraya_watson import NadarayaWatsonRegressor
from skattn._pooling import AttentionPooling
from skattn._version import __version__

__all__ = [
    "AttentionClassifier",
    "AttentionPooling",
    "AttentionRegressor",
    "AttentionWeightsDisplay",
    "FeatureRelevanceDisplay",
    "LocalLinearRegressor",
    "LowSupportWarning",
    "NadarayaWatsonClassifier",
    "NadarayaWatsonRegressor",
    "__version__",
]
