"""The only module that imports scikit-learn's private helpers.

They are stable and widely used (imbalanced-learn reaches the same ones), but private:
a rename in scikit-learn then costs a change here only.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    RealNotInt,
    StrOptions,
)
from sklearn.utils.validation import _check_feature_names_in as check_feature_names_in
from sklearn.utils.validation import _check_sample_weight as _sk_check_sample_weight
from sklearn.utils.validation import validate_data

__all__ = [
    "HasMethods",
    "Interval",
    "RealNotInt",
    "StrOptions",
    "_fit_context",
    "check_feature_names_in",
    "check_sample_weight",
    "validate_data",
]


def check_sample_weight(sample_weight, X):
    """Validate ``sample_weight`` as float64 non-negative weights, not all zero.

    scikit-learn 1.6 has no all-zero check of its own, so it is done here.
    """
    sample_weight = _sk_check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True
    )
    if not np.isfinite(sample_weight).all():
        raise ValueError("sample_weight contains NaN or infinity.")
    if not np.any(sample_weight > 0):
        raise ValueError(
            "sample_weight is zero for every sample; at least one must be positive."
        )
    return sample_weight
