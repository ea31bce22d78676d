"""Benchmark LocalLinearRegressor: boundary bias against Nadaraya-Watson, and the
"cv" search against statsmodels. Prints one table from one run.

    pip install ".[bench]"
    python benchmarks/bench_local_linear.py          # everything (~2 minutes)
    python benchmarks/bench_local_linear.py --quick  # fewer replications, n=200 only

1. Boundary bias: 500 replications of X ~ U(0, 1), m(x) = sin(2 pi x) + x / 2,
   sigma = 0.2, n = 200, h = 0.08 for both estimators (Gaussian kernel): bias and
   RMSE of the fit at x = 0, 0.25 and 1.
2. ``bandwidth="cv"`` (the default, no thread limits) next to statsmodels
   ``KernelReg(reg_type="ll", bw="cv_ls")`` at n = 200 and 500, d = 3, on a smooth
   function (y = sin(2 x0) + x1^2 + x2 / 2 + N(0, 0.2^2), X ~ U(-1.5, 1.5)^3): fit
   seconds (skattn: the fastest of three fits; statsmodels: one), held-out R^2 on
   2,000 rows, and statsmodels' own cv_ls objective (the mean squared leave-one-out
   error) at each tool's bandwidths; skattn's default searches under its prior
   toward the linear fit, so ``bandwidth="cv_ls"`` (the same search on the
   leave-one-out error alone, statsmodels' criterion) has a row of its own.
The development panel (``bench_panel.py``) has the LocalLinear(cv) column.
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import time
import warnings

import numpy as np
from _report import best_time, print_report, print_table, report
from sklearn.metrics import r2_score

from skattn import LocalLinearRegressor, NadarayaWatsonRegressor


def truth(x):
    return np.sin(2 * np.pi * x) + x / 2


def bench_boundary(n_replications, n=200, h=0.08, sigma=0.2):
    points = np.array([0.0, 0.25, 1.0])
    rng = np.random.default_rng(0)
    fits = {"NadarayaWatsonRegressor": [], "LocalLinearRegressor": []}
    for _ in range(n_replications):
        X = rng.uniform(0, 1, size=(n, 1))
        y = truth(X[:, 0]) + sigma * rng.normal(size=n)
        fits["NadarayaWatsonRegressor"].append(
            NadarayaWatsonRegressor(bandwidth=h).fit(X, y).predict(points[:, None])
        )
        fits["LocalLinearRegressor"].append(
            LocalLinearRegressor(bandwidth=h).fit(X, y).predict(points[:, None])
        )
    rows = []
    rmse = {}
    for name, values in fits.items():
        error = np.array(values) - truth(points)
        bias = error.mean(axis=0)
        rmse[name] = np.sqrt((error**2).mean(axis=0))
        rows.append(
            [name]
            + [f"{b:+.3f} / {r:.3f}" for b, r in zip(bias, rmse[name], strict=True)]
        )
    print(
        f"\nboundary bias: {n_replications} replications, n={n}, h={h}, "
        f"sigma={sigma}; bias / RMSE at x"
    )
    print_table(["estimator"] + [f"x = {p:g}" for p in points], rows)
    ratio = rmse["NadarayaWatsonRegressor"][0] / rmse["LocalLinearRegressor"][0]
    report(
        "boundary",
        "RMSE at x=0, NW / local-linear",
        ratio=f"{ratio:.1f}x lower",
        target="local-linear well below NW (5.3x with a plain implementation)",
    )
    print()


def smooth(n, rng):
    X = rng.uniform(-1.5, 1.5, size=(n, 3))
    f = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + X[:, 2] / 2
    return X, f + 0.2 * rng.normal(size=n)


def bench_cv(n):
    from statsmodels.nonparametric.kernel_regression import KernelReg

    rng = np.random.default_rng(1)
    X, y = smooth(n, rng)
    X_test, y_test = smooth(2000, rng)
    section = f"cv n={n} d=3"

    model = LocalLinearRegressor()
    t_sk = best_time(lambda: model.fit(X, y))  # fastest of 3 (statsmodels: one fit)
    r2_sk = r2_score(y_test, model.predict(X_test))
    # the same search on statsmodels' objective alone (no prior toward linear)
    plain = LocalLinearRegressor(bandwidth="cv_ls")
    t_plain = best_time(lambda: plain.fit(X, y))
    r2_plain = r2_score(y_test, plain.predict(X_test))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # statsmodels' RNG notice
        start = time.perf_counter()
        kr = KernelReg(y, X, var_type="ccc", reg_type="ll", bw="cv_ls")
        t_sm = time.perf_counter() - start
        r2_sm = r2_score(y_test, kr.fit(X_test)[0])
        # statsmodels' cv_ls objective at both bandwidths
        loo_sm = float(np.squeeze(kr.cv_loo(kr.bw, kr._est_loc_linear)))
        loo_sk = float(np.squeeze(kr.cv_loo(model.bandwidth_, kr._est_loc_linear)))
        loo_plain = float(np.squeeze(kr.cv_loo(plain.bandwidth_, kr._est_loc_linear)))
    report(
        section,
        "statsmodels KernelReg(ll, cv_ls)",
        t_sm,
        value=f"R2 {r2_sm:.3f}, cv_ls {loo_sm:.5f}",
    )
    report(
        section,
        "skattn LocalLinearRegressor() (default: 'cv')",
        t_sk,
        f"{t_sm / t_sk:.0f}x faster",
        value=f"R2 {r2_sk:.3f}, cv_ls {loo_sk:.5f} ({loo_sk - loo_sm:+.5f})",
        target=">= 300x at n=500",
    )
    report(
        section,
        "skattn LocalLinearRegressor(bandwidth='cv_ls')",
        t_plain,
        f"{t_sm / t_plain:.0f}x faster",
        value=f"R2 {r2_plain:.3f}, cv_ls {loo_plain:.5f} ({loo_plain - loo_sm:+.5f})",
        target=">= 300x at n=500, cv_ls no higher",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    bench_boundary(100 if args.quick else 500)
    for n in (200,) if args.quick else (200, 500):
        bench_cv(n)
    print_report()


if __name__ == "__main__":
    main()
