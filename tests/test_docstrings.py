"""Every public parameter and fitted attribute is documented (numpydoc)."""

# SPDX-License-Identifier: BSD-3-Clause

import inspect

import numpy as np
import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc
from sklearn.base import is_classifier
from sklearn.datasets import make_regression

import skattn
from skattn.utils.discovery import all_estimators
from tests._instances import instances

# The instances learn with a small max_iter, so their fits may warn by design.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize("estimator", instances(), ids=repr)
def test_parameters_and_attributes_documented(estimator):
    doc = ClassDoc(type(estimator))
    documented_params = {p.name.split(" : ")[0] for p in doc["Parameters"]}
    params = set(inspect.signature(type(estimator)).parameters)
    assert params == documented_params

    X, y = make_regression(n_samples=30, n_features=3, random_state=0)
    X = X.astype(np.float64)
    if is_classifier(estimator):
        y = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    estimator.fit(X, y)
    documented_attrs = {a.name.split(" : ")[0] for a in doc["Attributes"]}
    fitted = {
        name
        for name in vars(estimator)
        if name.endswith("_") and not name.startswith("_")
    }
    fitted.discard("feature_names_in_")  # documented, set only for named features
    assert fitted <= documented_attrs
    assert "feature_names_in_" in documented_attrs


@pytest.mark.parametrize("name, cls", all_estimators())
def test_public_methods_documented(name, cls):
    for method_name, method in inspect.getmembers(cls, inspect.isfunction):
        if method_name.startswith("_") or not method.__module__.startswith("skattn"):
            continue
        doc = FunctionDoc(method)
        params = [
            p
            for p in inspect.signature(method).parameters
            if p not in ("self", "kwargs")
        ]
        documented = [p.name.split(" : ")[0] for p in doc["Parameters"]]
        assert params == documented, f"{name}.{method_name}"
        assert doc["Returns"], f"{name}.{method_name} documents no return value"


def _public_docstrings():
    """(name, docstring) of every public class, function and method of skattn."""
    for module in (skattn, skattn.functional):
        for name in module.__all__:
            obj = getattr(module, name)
            if not callable(obj):
                continue
            yield f"{module.__name__}.{name}", obj.__doc__
            if not inspect.isclass(obj):
                continue
            for method_name, method in inspect.getmembers(obj, callable):
                function = getattr(method, "__func__", method)
                if method_name.startswith("_") or not getattr(
                    function, "__module__", ""
                ).startswith("skattn"):
                    continue  # private, or inherited from scikit-learn
                yield f"{module.__name__}.{name}.{method_name}", function.__doc__


def test_public_docstrings_have_examples():
    # The doctests themselves run with --doctest-modules (setup.cfg).
    checked = dict(_public_docstrings())
    assert "skattn.AttentionPooling.fit_transform" in checked
    assert "skattn.functional.masked_softmax" in checked
    for name, doc in checked.items():
        assert doc and "Examples\n" in doc and ">>>" in doc, name
