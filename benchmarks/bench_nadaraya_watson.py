"""Benchmark NadarayaWatsonRegressor against the machine's floor and the tools users
would otherwise pick. Prints one table from one run.

    pip install ".[bench]"
    python benchmarks/bench_nadaraya_watson.py          # everything (~3 minutes)
    python benchmarks/bench_nadaraya_watson.py --quick  # smaller, no statsmodels

1. predict, m = n = 20,000 queries/keys, d = 8: skattn (float64 with n_jobs=1 and
   n_jobs=-1, float32) next to the floor, the same computation without numerical
   safety (per chunk of queries ``D = |q|^2 + |k|^2 - 2 q.k``, ``E = exp(-D / 2)``,
   ``E @ y``), single thread, at its fastest chunk size, and next to
   ``KNeighborsRegressor(algorithm="brute")``. Single-thread rows run under
   ``threadpool_limits(1)``.
2. ``bandwidth="cv"`` fit time and held-out R^2 next to statsmodels
   ``KernelReg(reg_type="lc", bw="cv_ls")`` on make_friedman1(n_features=5, noise=1).
3. Peak memory (tracemalloc) of predict at m = n = 100,000, d = 8, against
   ``working_memory`` plus the O(n) arrays the engine keeps.
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import time
import tracemalloc

import numpy as np
from _report import best_time, print_report, report
from sklearn import get_config
from sklearn.datasets import make_friedman1
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsRegressor
from threadpoolctl import threadpool_limits

from skattn import NadarayaWatsonRegressor


def floor(Q, X, y, rows):
    """The computation with no numerical safety: distances, exp, GEMM, per chunk."""
    kk = np.einsum("ij,ij->i", X, X)
    out = np.empty((Q.shape[0], y.shape[1]), dtype=Q.dtype)
    for start in range(0, Q.shape[0], rows):
        q = Q[start : start + rows]
        D = np.einsum("ij,ij->i", q, q)[:, None] + kk[None, :] - 2 * q @ X.T
        E = np.exp(-D / 2)
        out[start : start + rows] = E @ y
    return out


def bench_predict(n, d, repeat):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n)
    Q = rng.normal(size=(n, d))
    section = f"predict m=n={n:,} d={d}"
    with threadpool_limits(limits=1):
        floors = {
            rows: best_time(lambda r=rows: floor(Q, X, y[:, None], r), repeat)
            for rows in (16, 64, 256)
        }
        rows = min(floors, key=floors.get)
        t_floor = floors[rows]
        report(
            section,
            f"floor, 1 thread, best chunk ({rows} rows)",
            t_floor,
            "1.00x floor",
        )
        model = NadarayaWatsonRegressor(bandwidth=1.0, n_jobs=1).fit(X, y)
        t1 = best_time(lambda: model.predict(Q), repeat)
        report(
            section,
            "skattn float64 n_jobs=1, threadpool_limits(1)",
            t1,
            f"{t1 / t_floor:.2f}x floor",
            target="<= 1.3x floor",
        )
        m32 = NadarayaWatsonRegressor(bandwidth=1.0, n_jobs=1).fit(
            X.astype(np.float32), y
        )
        Q32 = Q.astype(np.float32)
        t32 = best_time(lambda: m32.predict(Q32), repeat)
        report(
            section,
            "skattn float32 n_jobs=1, threadpool_limits(1)",
            t32,
            f"{t32 / t_floor:.2f}x floor; {t32 / t1:.2f}x float64",
            target="< float64",
        )
        knn = KNeighborsRegressor(algorithm="brute", n_jobs=1).fit(X, y)
        t_knn = best_time(lambda: knn.predict(Q), repeat)
        report(
            section,
            "KNeighborsRegressor(brute) n_jobs=1, threadpool_limits(1)",
            t_knn,
            f"{t_knn / t_floor:.2f}x floor",
        )
    model_all = NadarayaWatsonRegressor(bandwidth=1.0, n_jobs=-1).fit(X, y)
    t_all = best_time(lambda: model_all.predict(Q), repeat)
    report(
        section,
        "skattn float64 n_jobs=-1",
        t_all,
        f"{t_all / t_floor:.2f}x floor",
        target="< 1.0x floor",
    )
    knn_all = KNeighborsRegressor(algorithm="brute", n_jobs=-1).fit(X, y)
    t_knn_all = best_time(lambda: knn_all.predict(Q), repeat)
    report(
        section,
        "KNeighborsRegressor(brute) n_jobs=-1",
        t_knn_all,
        f"{t_knn_all / t_floor:.2f}x floor",
    )
    np.testing.assert_allclose(
        model.predict(Q[:500]),
        floor(Q[:500], X, y[:, None], 64)[:, 0]
        / floor(Q[:500], X, np.ones((n, 1)), 64)[:, 0],
        rtol=1e-8,
    )


def bench_cv(sizes, with_statsmodels):
    X_test, y_test = make_friedman1(
        n_samples=2000, n_features=5, noise=1.0, random_state=1
    )
    for n in sizes:
        X, y = make_friedman1(n_samples=n, n_features=5, noise=1.0, random_state=0)
        section = f"cv fit n={n}"
        model = NadarayaWatsonRegressor(bandwidth="cv")
        t_sk = best_time(lambda m=model, X=X, y=y: m.fit(X, y), repeat=3)
        r2_sk = r2_score(y_test, model.predict(X_test))
        if not with_statsmodels:
            report(
                section,
                "skattn NadarayaWatsonRegressor(bandwidth='cv')",
                t_sk,
                value=f"R2 {r2_sk:.3f}",
            )
            continue
        from statsmodels.nonparametric.kernel_regression import KernelReg

        start = time.perf_counter()
        kr = KernelReg(y, X, var_type="c" * 5, reg_type="lc", bw="cv_ls")
        t_sm = time.perf_counter() - start
        r2_sm = r2_score(y_test, kr.fit(X_test)[0])
        report(
            section, "statsmodels KernelReg(lc, cv_ls)", t_sm, value=f"R2 {r2_sm:.3f}"
        )
        report(
            section,
            "skattn NadarayaWatsonRegressor(bandwidth='cv')",
            t_sk,
            f"{t_sm / t_sk:.0f}x faster",
            value=f"R2 {r2_sk:.3f} ({r2_sk - r2_sm:+.3f})",
            target=">= 300x at n=1000, R2 >= statsmodels - 0.02",
        )


def bench_memory(n, d):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n)
    Q = rng.normal(size=(n, d))
    model = NadarayaWatsonRegressor(bandwidth=1.0, n_jobs=-1).fit(X, y)
    tracemalloc.start()
    start = time.perf_counter()
    model.predict(Q)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    working = get_config()["working_memory"]
    linear = (
        n * (2 * d + 8) * 8 / 2**20
    )  # keys, scaled and augmented copies, norms, values
    report(
        f"memory m=n={n:,} d={d}",
        "skattn predict peak (tracemalloc)",
        seconds,
        value=f"{peak / 2**20:.1f} MiB (working_memory {working} MiB"
        f" + O(n) {linear:.1f} MiB)",
        target="<= working_memory + O(n)",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes, no statsmodels"
    )
    args = parser.parse_args()
    if args.quick:
        bench_predict(4000, 8, repeat=2)
        bench_cv([200, 500], with_statsmodels=False)
        bench_memory(20_000, 8)
    else:
        bench_predict(20_000, 8, repeat=3)
        bench_cv([200, 500, 1000], with_statsmodels=True)
        bench_memory(100_000, 8)

    print_report()


if __name__ == "__main__":
    main()
