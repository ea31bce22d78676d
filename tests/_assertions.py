"""Assertions shared by the test modules."""

# SPDX-License-Identifier: BSD-3-Clause

from numpy.testing import assert_allclose

from skattn._uncertainty import METHODS


def assert_same_regressor(a, b, queries, rtol=1e-6, std_rtol=1e-6):
    """Two fitted regressors agree at ``queries``: predictions, the intervals of
    every method and the standard errors (weights act as repetition, say)."""
    assert_allclose(a.predict(queries), b.predict(queries), rtol=rtol)
    for method in METHODS:
        assert_allclose(
            a.predict_interval(queries, method=method),
            b.predict_interval(queries, method=method),
            rtol=rtol,
            err_msg=method,
        )
    assert_allclose(
        a.predict(queries, return_std=True)[1],
        b.predict(queries, return_std=True)[1],
        rtol=std_rtol,
    )
