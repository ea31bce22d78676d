# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest
from sklearn import config_context

import skattn._bandwidth as bw
from skattn._bandwidth import (
    _LeaveOneOutError,
    cv_bandwidth,
    rule_of_thumb,
    weighted_spread,
)
from tests._reference import leave_one_out


def test_weighted_spread_equals_repeated_rows(rng):
    X = rng.normal(size=(40, 3))
    w = rng.integers(0, 4, size=40).astype(float)
    reps = np.repeat(X, w.astype(int), axis=0)
    np.testing.assert_allclose(weighted_spread(X, w), reps.std(axis=0, ddof=1))
    q75, q25 = np.quantile(reps, [0.75, 0.25], axis=0, method="inverted_cdf")
    robust = np.minimum(reps.std(axis=0, ddof=1), (q75 - q25) / 1.349)
    np.testing.assert_allclose(weighted_spread(X, w, robust=True), robust)


def test_zero_spread_feature_gets_unit_spread():
    X = np.column_stack([np.arange(5.0), np.full(5, 3.0)])
    spread = weighted_spread(X, np.ones(5))
    assert spread[1] == 1.0 and spread[0] == pytest.approx(np.arange(5.0).std(ddof=1))


def test_rules_of_thumb_formulas(rng):
    X = rng.normal(size=(50, 2)) * [1.0, 3.0]
    n, d = X.shape
    std = X.std(axis=0, ddof=1)
    np.testing.assert_allclose(
        rule_of_thumb(X, np.ones(n), "scott"), std * n ** (-1 / (d + 4))
    )
    q75, q25 = np.quantile(X, [0.75, 0.25], axis=0, method="inverted_cdf")
    sigma = np.minimum(std, (q75 - q25) / 1.349)
    np.testing.assert_allclose(
        rule_of_thumb(X, np.ones(n), "silverman"),
        sigma * (n * (d + 2) / 4) ** (-1 / (d + 4)),
    )
    with pytest.raises(ValueError, match="Unknown rule of thumb"):
        rule_of_thumb(X, np.ones(n), "normal")


def _plain_loo_error(X, y, w, kernel, h):
    return float(w @ (leave_one_out(X, y, kernel, h, w)[:, 0] - y) ** 2)


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov", "exponential"])
def test_loo_error_matches_plain_loop(rng, kernel):
    X = rng.normal(size=(30, 2))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.normal(size=30)
    w = rng.integers(1, 3, size=30).astype(float)
    base = rule_of_thumb(X, w)
    loo = _LeaveOneOutError(X, y[:, None], w, base, kernel)
    scales = [0.8, 1.5, 3.0]
    if kernel == "epanechnikov":
        # the plain loop has no fallback: keep every row's support non-empty,
        # beyond the scaled distance of the loneliest row to its nearest other row
        d = np.sqrt((((X[:, None, :] - X[None, :, :]) / base) ** 2).sum(axis=-1))
        np.fill_diagonal(d, np.inf)
        scales = [1.1 * d.min(axis=1).max() * c for c in (1.0, 1.5, 2.5)]
    expected = [_plain_loo_error(X, y, w, kernel, c * base) for c in scales]
    np.testing.assert_allclose(loo(scales) * loo.y_scale**2, expected, rtol=1e-10)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_loo_error_without_stored_distances(rng, n_jobs):
    X = rng.normal(size=(80, 3))
    Y = rng.normal(size=(80, 2))
    w = np.ones(80)
    stored = _LeaveOneOutError(X, Y, w, np.ones(3), "gaussian")
    assert stored.sq is not None
    with config_context(working_memory=0.01):
        chunked = _LeaveOneOutError(X, Y, w, np.ones(3), "gaussian", n_jobs=n_jobs)
    assert chunked.sq is None
    np.testing.assert_allclose(
        chunked([0.3, 1.0, 4.0]), stored([0.3, 1.0, 4.0]), rtol=1e-12
    )


def test_cv_finds_the_minimum_of_the_loo_error(rng):
    X = rng.uniform(-2, 2, size=(120, 2))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.2 * rng.normal(size=120)
    w = np.ones(120)
    h, scale = cv_bandwidth(X, y[:, None], w)
    base = rule_of_thumb(X, w)
    np.testing.assert_allclose(h, scale * base)
    loo = _LeaveOneOutError(X, y[:, None], w, base, "gaussian")
    fine = np.exp(np.linspace(np.log(0.01), np.log(100), 2001))
    errors = loo(fine)
    assert loo([scale])[0] <= errors.min() * (1 + 1e-4)


@pytest.mark.parametrize(
    "X, y",
    [
        (np.zeros((5, 2)), np.arange(5.0)),  # every row the same
        (np.arange(10.0)[:, None], np.ones(10)),  # constant target
        (np.array([[0.0], [1e-12], [1e12]]), np.array([0.0, 1.0, 2.0])),  # wild scales
        (np.repeat(np.arange(3.0), 4)[:, None], np.arange(12.0)),  # duplicates
        (np.array([[0.0], [1.0]]), np.array([0.0, 1.0])),  # two rows
    ],
)
@pytest.mark.parametrize("kernel", ["gaussian", "tophat", "linear"])
def test_cv_bandwidth_always_positive_and_finite(X, y, kernel):
    h, scale = cv_bandwidth(X, y[:, None], np.ones(len(y)), kernel)
    assert np.all(np.isfinite(h)) and np.all(h > 0)
    assert bw.CV_SCALE_RANGE[0] <= scale <= bw.CV_SCALE_RANGE[1]
