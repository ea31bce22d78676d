"""Shared pytest set-up for the doctests in skattn/ and the tests in tests/."""

# SPDX-License-Identifier: BSD-3-Clause

import pytest

try:
    import matplotlib
except ImportError:  # plotting is optional
    matplotlib = None
else:
    matplotlib.use("Agg")  # no screen needed


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    if matplotlib is not None:
        import matplotlib.pyplot as plt

        plt.close("all")
