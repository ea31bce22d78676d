# SPDX-License-Identifier: BSD-3-Clause

import re

import numpy as np
import pytest

from skattn._kernels import KERNELS, get_kernel
from tests._reference import kernel_value


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_log_kernel_matches_formula(name):
    u = np.concatenate([np.linspace(0, 3, 301), [0.999999, 1.0, 1.000001, 50.0]])
    sq = u**2
    kernel = get_kernel(name)
    got = kernel.log_kernel(sq.copy(), np.empty_like(sq))
    expected = np.array([kernel_value(name, v) for v in u])
    np.testing.assert_allclose(np.exp(got), expected, rtol=1e-12, atol=1e-300)
    if not kernel.compact:  # the log domain stays finite where K underflows
        assert np.isfinite(got).all()
    assert np.all(got <= 0.0)  # K <= K(0) = 1: the engine's softmax shift relies on it
    assert got[0] == 0.0


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_log_kernel_in_place(name):
    sq = np.linspace(0, 2, 11)
    expected = get_kernel(name).log_kernel(sq.copy(), np.empty_like(sq))
    out = sq.copy()
    assert get_kernel(name).log_kernel(out, out) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("name", ["gaussian", "exponential"])
def test_log_kernel_derivative_matches_finite_differences(name):
    kernel = get_kernel(name)
    sq = np.linspace(0.05, 4, 40)
    step = 1e-6
    numeric = (
        kernel.log_kernel(sq + step, np.empty_like(sq))
        - kernel.log_kernel(sq - step, np.empty_like(sq))
    ) / (2 * step)
    np.testing.assert_allclose(kernel.dlog_dsq(sq), numeric, rtol=1e-6)


def test_support():
    compact = {name for name, k in KERNELS.items() if k.compact}
    assert compact == {"tophat", "epanechnikov", "linear", "cosine"}
    assert all(KERNELS[name].radius == 1.0 for name in compact)


def test_unknown_kernel():
    with pytest.raises(ValueError, match=re.escape("Unknown kernel 'boxcar'")):
        get_kernel("boxcar")


def test_gemm_logits_only_where_log_k_is_minus_half_the_squared_distance():
    sq = np.array([0.0, 0.5, 3.0, 40.0])
    for name, kernel in KERNELS.items():
        linear = np.allclose(kernel.log_kernel(sq.copy(), np.empty(4)), -0.5 * sq)
        assert kernel.gemm_logits == linear, name
