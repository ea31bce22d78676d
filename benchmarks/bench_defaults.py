"""The defaults as users run them: no threadpool limits, no n_jobs, no tuning, next to
the same fits tuned (n_jobs, or under ``threadpool_limits(1)``) and next to
scikit-learn's defaults, in one run, as ratios. Prints one table.

    pip install ".[bench]"
    python benchmarks/bench_defaults.py           # quiet machine (~2 minutes)
    python benchmarks/bench_defaults.py --loaded  # one core busy with another process

1. predict, m = n = 20,000, d = 8: ``NadarayaWatsonRegressor(bandwidth=0.5)`` with its
   defaults (float64 and float32 X), with ``n_jobs=1``, and under
   ``threadpool_limits(1)``; ``KNeighborsRegressor(algorithm="brute")`` with its
   defaults. Target: the default no slower than KNN brute's default.
2. ``AttentionRegressor().fit`` on make_friedman1 (n = 3,000, 10 features), default
   and under ``threadpool_limits(1)``. Target: within 1.2x of the limited fit.
3. ``NadarayaWatsonRegressor(bandwidth="cv").fit`` at n = 5,000, the same two ways.
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import multiprocessing

import numpy as np
from _report import best_time, print_report, report
from sklearn.datasets import make_friedman1
from sklearn.neighbors import KNeighborsRegressor
from threadpoolctl import threadpool_limits

from skattn import AttentionRegressor, NadarayaWatsonRegressor


def _spin(stop):
    while not stop.is_set():
        pass


def bench_predict(n, repeat):
    rng = np.random.default_rng(0)
    X, Q = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    y = rng.normal(size=n)
    section = f"predict m=n={n:,} d=8"
    knn = KNeighborsRegressor(algorithm="brute").fit(X, y)
    t_knn = best_time(lambda: knn.predict(Q), repeat)
    model = NadarayaWatsonRegressor(bandwidth=0.5).fit(X, y)
    t_default = best_time(lambda: model.predict(Q), repeat)
    report(
        section,
        "skattn default",
        t_default,
        f"{t_default / t_knn:.2f}x KNN default",
        target="<= 1.0x KNN default",
    )
    m32 = NadarayaWatsonRegressor(bandwidth=0.5).fit(X.astype(np.float32), y)
    Q32 = Q.astype(np.float32)
    t32 = best_time(lambda: m32.predict(Q32), repeat)
    report(section, "skattn default, float32 X", t32, f"{t32 / t_knn:.2f}x KNN default")
    report(section, "KNeighborsRegressor(brute) default", t_knn, "1.00x KNN default")
    one = NadarayaWatsonRegressor(bandwidth=0.5, n_jobs=1).fit(X, y)
    t_one = best_time(lambda: one.predict(Q), repeat)
    report(section, "skattn n_jobs=1", t_one, f"{t_one / t_default:.2f}x default")
    with threadpool_limits(limits=1):
        t_lim = best_time(lambda: model.predict(Q), repeat)
        t_knn_lim = best_time(lambda: knn.predict(Q), repeat)
    report(
        section,
        "skattn under threadpool_limits(1)",
        t_lim,
        f"{t_lim / t_default:.2f}x default",
    )
    report(
        section,
        "KNeighborsRegressor(brute) under threadpool_limits(1)",
        t_knn_lim,
        f"{t_knn_lim / t_knn:.2f}x KNN default",
    )


def bench_fit(section, make, repeat):
    # alternated, the fastest of each: a load that drifts during the run weighs
    # on both alike
    t_default = t_lim = np.inf
    for _ in range(repeat):
        t_default = min(t_default, best_time(make, 1))
        with threadpool_limits(limits=1):
            t_lim = min(t_lim, best_time(make, 1))
    report(
        section,
        "default",
        t_default,
        f"{t_default / t_lim:.2f}x limited",
        target="<= 1.2x limited",
    )
    report(section, "under threadpool_limits(1)", t_lim, "1.00x limited")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--loaded", action="store_true", help="keep one core busy meanwhile"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    stop = multiprocessing.Event()
    spinner = None
    if args.loaded:
        spinner = multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
        spinner.start()
    try:
        n_predict, n_fit, n_cv, repeat = (
            (5000, 1000, 2000, 2) if args.quick else (20000, 3000, 5000, 3)
        )
        bench_predict(n_predict, repeat)
        X, y = make_friedman1(n_samples=n_fit, n_features=10, random_state=0)
        bench_fit(
            f"AttentionRegressor().fit friedman1 n={n_fit:,}",
            lambda: AttentionRegressor().fit(X, y),
            repeat,
        )
        X, y = make_friedman1(n_samples=n_cv, n_features=10, random_state=0)
        bench_fit(
            f"NadarayaWatsonRegressor(bandwidth='cv').fit n={n_cv:,}",
            lambda: NadarayaWatsonRegressor(bandwidth="cv").fit(X, y),
            repeat,
        )
    finally:
        stop.set()
        if spinner is not None:
            spinner.join()
    print(
        "\nMachine state:",
        "one core busy with another process" if args.loaded else "quiet",
    )
    print_report()


if __name__ == "__main__":
    main()
