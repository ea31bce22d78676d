"""Benchmark top-k attention at scale. Prints one table from one run.

    python benchmarks/bench_scale.py          # 1,000,000 training rows (~5 minutes)
    python benchmarks/bench_scale.py --quick  # 100,000 training rows, for a check

NadarayaWatsonRegressor(n_neighbors=64) on 1,000,000 training rows and 100,000
queries with d = 8 (uniform features, a smooth target plus noise): fit + predict time
and peak memory, next to KNeighborsRegressor(n_neighbors=64) on the same data, both
with n_jobs=-1 (all cores). Each model runs in its own child process, so the peak
resident memory (``ru_maxrss``, which also sees the C allocations of the neighbour
trees) is its own, the data included. The dense path's predict time is measured on
the first 1,000 queries against all training rows and extrapolated linearly to all
queries (dense attention is linear in the number of queries); on those queries the
table also gives the largest difference between top-k and dense predictions and the
held-out R^2 of every model.
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
from _report import print_table

K = 64
D = 8
N_DENSE_QUERIES = 1_000


def make_data(n_train, n_queries, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n_train + n_queries, D))
    y = (
        10 * np.sin(np.pi * X[:, 0] * X[:, 1])
        + 20 * (X[:, 2] - 0.5) ** 2
        + 10 * X[:, 3]
        + 5 * X[:, 4]
        + rng.normal(size=len(X))
    )
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def r2(y, pred):
    return 1 - np.mean((y - pred) ** 2) / np.var(y)


def run_one(name, n_train, n_queries):
    """Fit and predict one model in this process; print a JSON line of results."""
    from sklearn.neighbors import KNeighborsRegressor

    from skattn import NadarayaWatsonRegressor

    X, y, Q, y_q = make_data(n_train, n_queries)
    if name == "knn":
        model = KNeighborsRegressor(n_neighbors=K, n_jobs=-1)
    elif name == "top_k":
        model = NadarayaWatsonRegressor(n_neighbors=K, n_jobs=-1)
    else:  # dense, on the first queries only
        model = NadarayaWatsonRegressor(n_jobs=-1)
        Q, y_q = Q[:N_DENSE_QUERIES], y_q[:N_DENSE_QUERIES]
    start = time.perf_counter()
    model.fit(X, y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = model.predict(Q)
    predict_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(
        json.dumps(
            {
                "fit_s": fit_s,
                "predict_s": predict_s,
                "peak_bytes": peak,
                "r2_first": r2(y_q[:N_DENSE_QUERIES], pred[:N_DENSE_QUERIES]),
                "r2": r2(y_q, pred),
                "pred_first": pred[:N_DENSE_QUERIES].tolist(),
            }
        )
    )


def child(name, n_train, n_queries):
    out = subprocess.run(
        [sys.executable, __file__, "--one", name, str(n_train), str(n_queries)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--one", nargs=3)
    args = parser.parse_args()
    if args.one:
        run_one(args.one[0], int(args.one[1]), int(args.one[2]))
        return
    n_train, n_queries = (100_000, 10_000) if args.quick else (1_000_000, 100_000)
    section = f"n={n_train:,} queries={n_queries:,} d={D} k={K}"
    results = {name: child(name, n_train, n_queries) for name in ("top_k", "knn")}
    results["dense"] = child("dense", n_train, n_queries)

    GiB = 2**30
    rows = []
    top, knn, dense = results["top_k"], results["knn"], results["dense"]
    total = {name: r["fit_s"] + r["predict_s"] for name, r in results.items()}
    dense_total = dense["fit_s"] + dense["predict_s"] * n_queries / N_DENSE_QUERIES
    error = np.max(np.abs(np.subtract(top["pred_first"], dense["pred_first"])))
    rows.append(
        (
            "NadarayaWatsonRegressor(n_neighbors=64)",
            f"{top['fit_s']:.1f} + {top['predict_s']:.1f} = {total['top_k']:.1f}",
            f"{total['top_k'] / total['knn']:.2f}x KNN",
            f"{top['peak_bytes'] / GiB:.2f} GiB",
            f"R2 {top['r2']:.4f}; first {N_DENSE_QUERIES}: R2 {top['r2_first']:.4f}, "
            f"max abs(top-k - dense) {error:.2e}",
        )
    )
    rows.append(
        (
            "KNeighborsRegressor(n_neighbors=64)",
            f"{knn['fit_s']:.1f} + {knn['predict_s']:.1f} = {total['knn']:.1f}",
            "1.00x KNN",
            f"{knn['peak_bytes'] / GiB:.2f} GiB",
            f"R2 {knn['r2']:.4f}; first {N_DENSE_QUERIES}: R2 {knn['r2_first']:.4f}",
        )
    )
    rows.append(
        (
            "NadarayaWatsonRegressor() dense, extrapolated",
            f"{dense['fit_s']:.1f} + {dense['predict_s']:.1f} x "
            f"{n_queries // N_DENSE_QUERIES} = {dense_total:.0f}",
            f"{dense_total / total['knn']:.0f}x KNN",
            f"{dense['peak_bytes'] / GiB:.2f} GiB (first {N_DENSE_QUERIES} queries)",
            f"first {N_DENSE_QUERIES}: R2 {dense['r2_first']:.4f}",
        )
    )
    print_table(
        ["section", "what", "fit + predict s", "ratio", "peak memory", "value"],
        [[section, *row] for row in rows],
    )
    print(
        f"\ntargets: top-k under 60 s ({total['top_k']:.1f} s), under 4 GiB "
        f"({top['peak_bytes'] / GiB:.2f} GiB), within 1.5x of KNN "
        f"({total['top_k'] / total['knn']:.2f}x)"
    )


if __name__ == "__main__":
    main()
