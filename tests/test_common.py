"""scikit-learn's estimator checks over every estimator and parameter set."""

# SPDX-License-Identifier: BSD-3-Clause

import pytest
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_param_validation,
    parametrize_with_checks,
)

from skattn.utils.discovery import all_estimators
from tests._instances import INIT_PARAMS, instances


def test_registry_covers_every_estimator():
    assert {cls for _, cls in all_estimators()} == set(INIT_PARAMS)


@parametrize_with_checks(instances())
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", instances(), ids=repr)
def test_param_validation(estimator):
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.parametrize("estimator", instances(), ids=repr)
def test_dataframe_column_names_consistency(estimator):
    check_dataframe_column_names_consistency(type(estimator).__name__, estimator)
