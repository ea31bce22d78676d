"""Discovery of skattn's estimators, after scikit-learn's project template."""

# SPDX-License-Identifier: BSD-3-Clause

import inspect
import pkgutil
from importlib import import_module
from operator import itemgetter
from pathlib import Path

from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    TransformerMixin,
)

_FILTERS = {
    "classifier": ClassifierMixin,
    "regressor": RegressorMixin,
    "transformer": TransformerMixin,
}


def all_estimators(type_filter=None):
    """Return every public estimator class of skattn.

    Parameters
    ----------
    type_filter : {"classifier", "regressor", "transformer"} or list of those, \
            default=None
        Keep only the estimators of these kinds; None keeps all.

    Returns
    -------
    estimators : list of (name, class) tuples
        Sorted by name.

    Examples
    --------
    >>> from skattn.utils.discovery import all_estimators
    >>> [name for name, _ in all_estimators(type_filter="regressor")]
    ['AttentionRegressor', 'LocalLinearRegressor', 'NadarayaWatsonRegressor']
    """
    root = str(Path(__file__).parent.parent)
    found = set()
    for _, module_name, _ in pkgutil.walk_packages(path=[root], prefix="skattn."):
        parts = module_name.split(".")
        if any(part in ("tests", "tests_") for part in parts):
            continue
        module = import_module(module_name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, BaseEstimator)
                and cls.__module__.startswith("skattn")
                and not name.startswith("_")
                and not inspect.isabstract(cls)
            ):
                found.add((name, cls))
    estimators = sorted(found, key=itemgetter(0))
    if type_filter is not None:
        kinds = [type_filter] if isinstance(type_filter, str) else list(type_filter)
        unknown = set(kinds) - set(_FILTERS)
        if unknown:
            raise ValueError(
                f"type_filter must be among {sorted(_FILTERS)} or None; "
                f"got {sorted(unknown)}."
            )
        estimators = [
            (name, cls)
            for name, cls in estimators
            if any(issubclass(cls, _FILTERS[kind]) for kind in kinds)
        ]
    return estimators
