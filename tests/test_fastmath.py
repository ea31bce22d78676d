# SPDX-License-Identifier: BSD-3-Clause
"""The compiled helpers (src/_skattn_speedups.c) against NumPy, on every code path
the machine has, and the engine with and without them."""

import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import skattn._fastmath as fastmath
from skattn import NadarayaWatsonClassifier, NadarayaWatsonRegressor

if fastmath.BUILT:
    import _skattn_speedups as speedups

TINY = np.finfo(np.float64).tiny


def test_compiled_helpers_are_built_in_ci():
    # CI builds the extension (the machine has a C compiler): a silent fallback to
    # NumPy there would leave the compiled code untested.
    if os.environ.get("CI") and not os.environ.get("SKATTN_DISABLE_COMPILED"):
        assert fastmath.BUILT, "the C extension _skattn_speedups was not built"
    if fastmath.COMPILED:
        assert fastmath.exp_code_path() == "compiled (avx2+fma)"
    else:
        assert fastmath.exp_code_path() == "numpy"


def _instruction_sets():
    if not fastmath.BUILT:
        return []
    found = ["generic"]
    current = speedups.instruction_set()
    if current != "generic":
        found.append(current)
    return found


NOT_BUILT = pytest.mark.skip(reason="the C extension is not built")


@pytest.fixture(params=_instruction_sets() or [pytest.param(None, marks=NOT_BUILT)])
def instruction_set(request):
    before = speedups.instruction_set()
    speedups.use_instruction_set(request.param)
    yield request.param
    speedups.use_instruction_set(before)


def _ulps(got, expected):
    return np.abs(got - expected) / np.spacing(np.abs(expected))


def _libm_exp(x):
    """The C library's ``exp`` (through :func:`math.exp`), the reference the
    compiled code promises to stay within 1 ulp of. NumPy's own ``exp`` is not
    one: its SIMD versions differ between machines and releases by an ulp."""

    def one(v):
        try:
            return math.exp(v)
        except OverflowError:
            return math.inf

    return np.array([one(v) for v in np.asarray(x, dtype=float).ravel()]).reshape(
        np.shape(x)
    )


EXTENDED = np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant


def _exp_points(rng):
    return np.concatenate(
        [
            np.linspace(-708.5, 709.0, 200_001),
            rng.uniform(-40.0, 0.0, 100_000),
            rng.uniform(-1e-8, 1e-8, 1_000),
        ]
    )


def test_exp_within_one_ulp_of_libm(instruction_set, rng):
    x = _exp_points(rng)
    got = fastmath.exp_inplace(x.copy(), compiled=True)
    assert _ulps(got, _libm_exp(x)).max() <= 1.0


@pytest.mark.skipif(not EXTENDED, reason="long double is no wider than double here")
def test_exp_within_one_ulp_of_the_exact_value(instruction_set, rng):
    # exp in extended precision: the exact value to far below an ulp. The code path
    # skattn uses (AVX2 and FMA) measured 0.84 ulp at most; the generic one, without
    # fused multiply-adds and used only where it is tested, 1.13
    x = _exp_points(rng)
    got = fastmath.exp_inplace(x.copy(), compiled=True)
    exact = np.exp(x.astype(np.longdouble))
    ulps = np.abs(got - exact) / np.spacing(np.abs(exact.astype(np.float64)))
    assert ulps.astype(np.float64).max() < (
        1.25 if instruction_set == "generic" else 1.0
    )


def test_exp_edges_are_libms(instruction_set):
    x = np.array(
        [
            -np.inf,
            np.inf,
            np.nan,
            -0.0,
            0.0,
            5e-324,
            -745.2,
            -745.0,
            -740.0,
            -708.6,
            -708.5,
            -708.4,
            709.0,
            709.7,
            709.8,
            710.0,
            -1e308,
            1e308,
        ]
    )
    expected = _libm_exp(x)
    got = fastmath.exp_inplace(x.copy(), compiled=True)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    finite = np.isfinite(expected) & (expected > 0)
    assert _ulps(got[finite], expected[finite]).max() <= 1.0
    np.testing.assert_array_equal(
        got[~finite & ~np.isnan(x)], expected[~finite & ~np.isnan(x)]
    )


def test_exp_block_edges(instruction_set):
    # lengths around the C code's block of 512 and its vector width, with an
    # out-of-range value in the last block only
    for n in (0, 1, 3, 4, 5, 511, 512, 513, 1025):
        x = np.linspace(-30.0, 1.0, n)
        if n:
            x[-1] = -800.0
        got = fastmath.exp_inplace(x.copy(), compiled=True)
        assert _ulps(got[:-1], _libm_exp(x[:-1])).max(initial=0.0) <= 1.0
        if n:
            assert got[-1] == 0.0


def test_exp_inplace_falls_back_to_numpy():
    x = np.linspace(-5, 0, 12)
    for a in (x.astype(np.float32), x[::2].copy(), x.reshape(3, 4)[:, :2]):
        expected = np.exp(a)
        got = fastmath.exp_inplace(a)
        assert got is a
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    a = x.copy()
    np.testing.assert_array_equal(fastmath.exp_inplace(a, compiled=False), np.exp(x))


def test_compiled_exp_rejects_what_it_cannot_take():
    if not fastmath.BUILT:
        pytest.skip("the C extension is not built")
    with pytest.raises(TypeError, match="float64"):
        speedups.exp(np.zeros(3, np.float32))
    with pytest.raises((BufferError, ValueError)):
        speedups.exp(np.zeros(6)[::2])
    read_only = np.zeros(3)
    read_only.flags.writeable = False
    with pytest.raises((BufferError, ValueError)):
        speedups.exp(read_only)


def _reference_pool(logits, values_t):
    with np.errstate(over="ignore"):
        e = np.exp(logits)
    e[logits < fastmath.EXP_POOL_LOW] = 0.0
    return e @ values_t.T


@pytest.mark.parametrize("n_keys", [1, 3, 4, 7, 512, 513, 2050])
@pytest.mark.parametrize("n_columns", [1, 2, 8])
def test_exp_pool_matches_numpy(instruction_set, rng, n_keys, n_columns):
    logits = -rng.exponential(20.0, size=(9, n_keys))
    logits[0, 0] = 0.0
    logits[1, : n_keys // 2] = -np.inf
    logits[2, -1] = -708.0
    values_t = rng.normal(size=(n_columns, n_keys))
    values_t[-1] = 1.0
    got = fastmath.exp_pool(logits, values_t)
    expected = _reference_pool(logits, values_t)
    # sums of non-negative weights times values in [-|v|, |v|]: relative to the
    # pooled magnitudes
    scale = np.exp(logits).clip(0) @ np.abs(values_t.T)
    np.testing.assert_array_less(np.abs(got - expected), 1e-14 * scale + 1e-300)


def test_exp_pool_without_the_extension_is_the_same(rng, monkeypatch):
    logits = -rng.exponential(20.0, size=(6, 37))
    logits[1, :5] = -np.inf
    logits[2, 3] = -800.0
    logits[3, 0] = np.nan
    logits[4, 1] = 710.0
    values_t = rng.normal(size=(3, 37))
    values_t[-1] = 1.0
    compiled = fastmath.exp_pool(logits, values_t) if fastmath.BUILT else None
    monkeypatch.setattr(fastmath, "BUILT", False)
    plain = fastmath.exp_pool(logits, values_t)
    expected = _reference_pool(np.where(np.isnan(logits), -np.inf, logits), values_t)
    ok = [0, 1, 2, 5]
    np.testing.assert_allclose(plain[ok], expected[ok], rtol=1e-13)
    assert np.isnan(plain[3, -1]) and np.isnan(plain[4, -1])
    if compiled is not None:
        np.testing.assert_allclose(compiled[ok], plain[ok], rtol=1e-13)
        np.testing.assert_array_equal(np.isnan(compiled), np.isnan(plain))


def test_exp_pool_flags_nan_and_overflow(instruction_set):
    values_t = np.ones((2, 6))
    logits = np.full((4, 6), -1.0)
    logits[1, 5] = np.nan
    logits[2, 0] = 710.0
    logits[3] = -800.0  # every weight below tiny: a zero normaliser, not NaN
    got = fastmath.exp_pool(logits, values_t)
    np.testing.assert_allclose(got[0], 6 * np.exp(-1.0), rtol=1e-15)
    assert np.isnan(got[1, -1]) and np.isnan(got[2, -1])
    np.testing.assert_array_equal(got[3], 0.0)


def test_exp_pool_checks_its_arrays():
    if not fastmath.BUILT:
        pytest.skip("the C extension is not built")
    out = np.empty((2, 2))
    with pytest.raises(TypeError, match="logits"):
        speedups.exp_pool(np.zeros((2, 3), np.float32), np.zeros((2, 3)), out)
    with pytest.raises(TypeError, match="values"):
        speedups.exp_pool(np.zeros((2, 3)), np.zeros(3), out)
    with pytest.raises(ValueError, match="shapes"):
        speedups.exp_pool(np.zeros((2, 3)), np.zeros((2, 4)), out)
    with pytest.raises(ValueError, match="shapes"):
        speedups.exp_pool(np.zeros((2, 3)), np.zeros((9, 3)), np.empty((2, 9)))
    with pytest.raises((BufferError, ValueError)):
        speedups.exp_pool(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 4))[:, :2])
    np.testing.assert_array_equal(
        fastmath.exp_pool(np.zeros((0, 3)), np.zeros((2, 3))), np.zeros((0, 2))
    )
    np.testing.assert_array_equal(
        fastmath.exp_pool(np.zeros((2, 0)), np.zeros((2, 0))), np.zeros((2, 2))
    )


def _gauss_problem(rng, n_queries, n_keys, n_columns, K):
    """Augmented queries and keys whose products are logits <= 0, as the engine's."""
    queries = rng.normal(size=(n_queries, K))
    keys_t = rng.normal(size=(K, n_keys))
    queries[:, -1] = 1.0
    bound = np.abs(queries[:, :-1]) @ np.abs(keys_t[:-1])
    keys_t[-1] = -bound.max(axis=0) - rng.exponential(5.0, size=n_keys)
    values_t = rng.normal(size=(n_columns, n_keys))
    values_t[-1] = 1.0
    return queries, keys_t, values_t


@pytest.mark.parametrize("n_keys", [1, 3, 4, 15, 16, 17, 512, 513, 2050])
@pytest.mark.parametrize("n_columns", [1, 2, 8])
@pytest.mark.parametrize("K", [1, 3, 10])
def test_gauss_pool_is_exp_pool_of_the_products(
    instruction_set, rng, n_keys, n_columns, K
):
    queries, keys_t, values_t = _gauss_problem(rng, 7, n_keys, n_columns, K)
    got = fastmath.gauss_pool(queries, keys_t, values_t)
    logits = queries @ keys_t
    expected = _reference_pool(logits, values_t)
    # the dot products summed in another order than BLAS's: an error of about
    # K eps |q| |k| in each logit, a relative one in its weight
    tolerance = 4 * K * np.finfo(float).eps * (np.abs(queries) @ np.abs(keys_t))
    scale = (np.exp(logits) * (1 + tolerance)) @ np.abs(values_t.T)
    np.testing.assert_array_less(np.abs(got - expected), scale * 1e-13 + 1e-300)
    # each row's result does not depend on the rows around it
    for r in range(queries.shape[0]):
        alone = fastmath.gauss_pool(queries[r : r + 1], keys_t, values_t)
        np.testing.assert_array_equal(alone[0], got[r])


def test_gauss_pool_flags_nan_and_overflow_and_ignores_underflow(instruction_set):
    keys_t = np.array([[1.0] * 21, [-1.0] * 21])
    queries = np.array(
        [[0.0, 1.0], [np.nan, 1.0], [712.0, 1.0], [0.0, 800.0], [np.inf, 0.0]]
    )
    keys_t[1, 20] = -np.inf
    values_t = np.ones((2, 21))
    got = fastmath.gauss_pool(queries, keys_t, values_t)
    np.testing.assert_allclose(got[0], 20 * np.exp(-1.0), rtol=1e-14)
    assert np.isnan(got[1, -1]) and np.isnan(got[2, -1]) and np.isnan(got[4, -1])
    np.testing.assert_array_equal(got[3], 0.0)  # every weight below tiny: zero


def test_gauss_pool_without_the_extension_is_the_same(rng, monkeypatch):
    queries, keys_t, values_t = _gauss_problem(rng, 5, 37, 3, 4)
    compiled = (
        fastmath.gauss_pool(queries, keys_t, values_t) if fastmath.BUILT else None
    )
    monkeypatch.setattr(fastmath, "BUILT", False)
    plain = fastmath.gauss_pool(queries, keys_t, values_t)
    expected = _reference_pool(queries @ keys_t, values_t)
    np.testing.assert_allclose(plain, expected, rtol=1e-13)
    if compiled is not None:
        np.testing.assert_allclose(compiled, plain, rtol=1e-12)


def test_gauss_pool_checks_its_arrays():
    if not fastmath.BUILT:
        pytest.skip("the C extension is not built")
    out = np.empty((2, 2))
    with pytest.raises(TypeError, match="queries"):
        speedups.gauss_pool(
            np.zeros((2, 3), np.float32), np.zeros((3, 4)), np.zeros((2, 4)), out
        )
    with pytest.raises(ValueError, match="shapes"):
        speedups.gauss_pool(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 4)), out)
    with pytest.raises(ValueError, match="shapes"):
        speedups.gauss_pool(np.zeros((2, 3)), np.zeros((3, 4)), np.zeros((2, 5)), out)
    with pytest.raises(ValueError, match="shapes"):
        speedups.gauss_pool(np.zeros((2, 0)), np.zeros((0, 4)), np.zeros((2, 4)), out)
    with pytest.raises((BufferError, ValueError)):
        speedups.gauss_pool(
            np.zeros((2, 3)),
            np.zeros((3, 4)),
            np.zeros((2, 4)),
            np.zeros((2, 4))[:, :2],
        )
    np.testing.assert_array_equal(
        fastmath.gauss_pool(np.zeros((2, 3)), np.zeros((3, 0)), np.zeros((2, 0))),
        np.zeros((2, 2)),
    )


@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.integers(1, 40)),
        elements=st.floats(-1e308, 0.0, allow_nan=False) | st.just(-np.inf),
    )
)
def test_exp_pool_is_finite_non_negative_and_right(logits):
    if not fastmath.BUILT:
        return
    values_t = np.ones((1, logits.shape[1]))
    got = fastmath.exp_pool(logits, values_t)
    expected = _reference_pool(logits, values_t)
    assert np.all(np.isfinite(got)) and np.all(got >= 0)
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)


@pytest.mark.parametrize("kernel", ["gaussian", "exponential", "epanechnikov"])
def test_estimators_agree_with_and_without_the_compiled_helpers(
    rng, monkeypatch, kernel
):
    X = rng.normal(size=(300, 3))
    y = np.sin(X[:, 0]) + rng.normal(scale=0.1, size=300)
    Q = np.vstack([rng.normal(size=(200, 3)), [[40.0, 0, 0], [1e6, -1e6, 3]]])
    classes = (X[:, 1] > 0).astype(int) + (X[:, 2] > 0)
    w = rng.integers(1, 4, size=300)

    def fitted():
        regressor = NadarayaWatsonRegressor(kernel=kernel, bandwidth=0.4)
        classifier = NadarayaWatsonClassifier(kernel=kernel, bandwidth=0.4)
        regressor.fit(X, y, sample_weight=w)
        classifier.fit(X, classes, sample_weight=w)
        return regressor.predict(Q), classifier.predict_proba(Q)

    with_compiled = fitted()
    monkeypatch.setattr(fastmath, "COMPILED", False)
    without = fitted()
    for a, b in zip(with_compiled, without, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
