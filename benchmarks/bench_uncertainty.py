"""Benchmark prediction intervals: skattn's exact jackknife+ against MAPIE's
leave-one-out jackknife+ wrapping the same estimator, a Gaussian process's normal
intervals and gradient boosting's quantiles. Prints one table from one run.

    pip install ".[bench]"
    python benchmarks/bench_uncertainty.py            # panel data sets up to 1,500 rows
    python benchmarks/bench_uncertainty.py --quick    # diabetes and airquality only
    python benchmarks/bench_uncertainty.py --datasets mpg Prestige
    python benchmarks/bench_uncertainty.py --repeats 1  # the first table only

On the regression data sets of the development panel (``bench_panel.py``'s data
and preprocessing), 5-fold (KFold shuffle, random_state=0), 90 % intervals:
empirical coverage of the test folds, mean width divided by the targets' standard
deviation, and seconds per fold (fit and intervals) for

- ``NadarayaWatsonRegressor(bandwidth="cv").predict_interval`` with each
  ``method``: "jackknife+" (the default: exact, bandwidth held fixed), "cv+" (10
  folds) and "quantile" (the attention-weighted quantiles of the targets); each
  time includes the fit and its bandwidth search, and "jackknife+ at the chosen
  bandwidth" is the same interval without the search (what MAPIE is given),
- ``AttentionRegressor().predict_interval`` (jackknife+ of the learned metric and
  trend, held fixed; its time includes the fit), and ``LocalLinearRegressor()``'s
  (leave-one-out local moments, each local line solved again),
- MAPIE ``CrossConformalRegressor(method="plus", cv=LeaveOneOut())`` wrapping
  ``NadarayaWatsonRegressor`` at the bandwidth skattn chose (so both compute the
  same jackknife+: the bounds must agree), on data sets of at most 1,000 rows,
- MAPIE's leave-one-out jackknife+ refitting ``AttentionRegressor()`` without each
  row (metric and trend relearned), on data sets of at most 250 rows: how far the
  fixed-metric interval is from the refitted one,
- ``GaussianProcessRegressor`` (ARD RBF + white noise) ``return_std``, mean +- 1.645
  std, on data sets of at most 600 rows,
- two ``HistGradientBoostingRegressor(loss="quantile")`` models (0.05 and 0.95),
- MAPIE ``CrossConformalRegressor(method="plus", cv=10)`` refitting
  ``AttentionRegressor()`` on each tenth's complement (CV+ with the metric and trend
  relearned), on data sets of at most 600 rows.

One split's coverage of a few hundred test rows has a binomial standard error of 1-3
points, so a second table repeats the 5-fold cross-validation ``--repeats`` times
(KFold shuffle, random_state 0, 1, ...; 10 by default) for the skattn methods and the
CV+ refits: the mean of the repeats' coverages (each over every row of the data set),
their spread and range. Over random splits of a fixed data set the rows are
exchangeable, so this mean is what the methods' coverage statement is about.
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import time
import warnings

import numpy as np
from bench_panel import REGRESSION, _preprocessor, load
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.model_selection import KFold, LeaveOneOut

from skattn import AttentionRegressor, LocalLinearRegressor, NadarayaWatsonRegressor

COVERAGE = 0.9
MAX_ROWS = 1500
MAPIE_ROWS = 1000
MAPIE_LEARNED_ROWS = 250
GP_ROWS = 600
CV_PLUS_ROWS = 600
REFITTED = "MAPIE CV+ (10 folds) refitting AttentionRegressor()"


METHODS = ("jackknife+", "cv+", "quantile")


def timed(function, *args):
    """``function(*args)`` and the seconds it took."""
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def skattn_intervals(A, y, B):
    """Bounds and seconds (fit included) of each method, and the fitted model."""
    model, fit = timed(NadarayaWatsonRegressor(bandwidth="cv").fit, A, y)
    runs = {}
    for method in METHODS:
        bounds, seconds = timed(model.predict_interval, B, COVERAGE, method)
        runs[method] = (bounds, fit + seconds)
    return runs, model


def fixed_intervals(A, y, B, bandwidth):
    model = NadarayaWatsonRegressor(bandwidth=bandwidth).fit(A, y)
    return model.predict_interval(B, coverage=COVERAGE)


def learned_intervals(A, y, B):
    model = AttentionRegressor().fit(A, y)
    return model.predict_interval(B, coverage=COVERAGE)


def local_linear_intervals(A, y, B):
    model = LocalLinearRegressor().fit(A, y)
    return model.predict_interval(B, coverage=COVERAGE)


def mapie_intervals(A, y, B, estimator):
    from mapie.regression import CrossConformalRegressor

    wrapped = CrossConformalRegressor(
        estimator,
        confidence_level=COVERAGE,
        method="plus",
        cv=LeaveOneOut(),
    )
    wrapped.fit_conformalize(A, y)
    return wrapped.predict_interval(B)[1][:, :, 0]


def refitted_cv_plus(A, y, B):
    """MAPIE's CV+ refitting ``AttentionRegressor()`` on 10 folds' complements."""
    from mapie.regression import CrossConformalRegressor

    wrapped = CrossConformalRegressor(
        AttentionRegressor(),
        confidence_level=COVERAGE,
        method="plus",
        cv=10,
        random_state=0,  # MAPIE shuffles the ten folds
    )
    wrapped.fit_conformalize(A, y)
    return wrapped.predict_interval(B)[1][:, :, 0]


def gp_intervals(A, y, B):
    kernel = ConstantKernel() * RBF(np.ones(A.shape[1])) + WhiteKernel()
    model = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0).fit(A, y)
    mean, std = model.predict(B, return_std=True)
    return np.column_stack([mean - 1.645 * std, mean + 1.645 * std])


def hgb_intervals(A, y, B):
    low = HistGradientBoostingRegressor(loss="quantile", quantile=0.05, random_state=0)
    high = HistGradientBoostingRegressor(loss="quantile", quantile=0.95, random_state=0)
    return np.column_stack([low.fit(A, y).predict(B), high.fit(A, y).predict(B)])


def other_intervals(A, y, B, bandwidth, n):
    """The other libraries' intervals, each with its seconds (which of them: by
    the data set's size ``n``)."""
    runs = {}
    if n <= MAPIE_ROWS:
        estimator = NadarayaWatsonRegressor(bandwidth=bandwidth)
        runs["MAPIE jackknife+ LOO (same NW)"] = timed(
            mapie_intervals, A, y, B, estimator
        )
    if n <= MAPIE_LEARNED_ROWS:
        runs["MAPIE jackknife+ LOO refitting AttentionRegressor()"] = timed(
            mapie_intervals, A, y, B, AttentionRegressor()
        )
    if n <= GP_ROWS:
        runs["GPR-ARD mean +- 1.645 std"] = timed(gp_intervals, A, y, B)
    runs["HGB quantiles 0.05 / 0.95"] = timed(hgb_intervals, A, y, B)
    return runs


def evaluate(name, seed=0, compare=True):
    """Coverage, width and seconds of each method over the test folds of one
    5-fold split (``seed``), and the largest skattn - MAPIE bound difference;
    ``compare=False`` leaves out the other libraries' intervals but the CV+
    refits."""
    X, y = load("regression", name)
    n = len(y)
    spread = float(np.std(y))
    rows = {}
    agreement = 0.0
    for train, test in KFold(5, shuffle=True, random_state=seed).split(X):
        pre = _preprocessor().fit(X.iloc[train])
        A = np.asarray(pre.transform(X.iloc[train]), dtype=float)
        B = np.asarray(pre.transform(X.iloc[test]), dtype=float)
        y_train, y_test = y[train], y[test]
        runs = {}
        ours, model = skattn_intervals(A, y_train, B)
        for method, run in ours.items():
            runs[f"skattn {method} (NW cv)"] = run
        bounds = ours["jackknife+"][0]
        if compare:
            runs["skattn jackknife+ at the chosen bandwidth"] = timed(
                fixed_intervals, A, y_train, B, model.bandwidth_
            )
        runs["skattn jackknife+ (AttentionRegressor())"] = timed(
            learned_intervals, A, y_train, B
        )
        runs["skattn jackknife+ (LocalLinearRegressor())"] = timed(
            local_linear_intervals, A, y_train, B
        )
        if n <= CV_PLUS_ROWS:
            runs[REFITTED] = timed(refitted_cv_plus, A, y_train, B)
        if compare:
            runs.update(other_intervals(A, y_train, B, model.bandwidth_, n))
            if "MAPIE jackknife+ LOO (same NW)" in runs:
                theirs = runs["MAPIE jackknife+ LOO (same NW)"][0]
                agreement = max(agreement, float(np.max(np.abs(theirs - bounds))))
        for label, (b, seconds) in runs.items():
            inside = np.mean((y_test >= b[:, 0]) & (y_test <= b[:, 1]))
            width = np.mean(b[:, 1] - b[:, 0]) / spread
            rows.setdefault(label, []).append((inside, width, seconds))
    return n, rows, agreement


def repeated_rows(name, first, repeats):
    """Per method: each split's coverage (the mean over its test folds) and
    width, ``first`` the rows of the split of seed 0."""
    splits = [first] + [
        evaluate(name, seed, compare=False)[1] for seed in range(1, repeats)
    ]
    table = {}
    for label in splits[-1]:
        values = [np.mean(rows[label], axis=0)[:2] for rows in splits]
        table[label] = np.array(values)
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--datasets", nargs="*")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    names = ["diabetes", "airquality"] if args.quick else list(REGRESSION)
    names = args.datasets or names
    names = [name for name in names if len(load("regression", name)[1]) <= MAX_ROWS]
    print(f"{COVERAGE:.0%} intervals, 5-fold: coverage, width (std of y), s per fold")
    print()
    print("| data set | n | method | coverage | width | seconds |")
    print("|---|---|---|---|---|---|")
    first = {}
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            n, rows, agreement = evaluate(name)
        first[name] = (n, rows)
        base = np.mean([r[2] for r in rows["skattn jackknife+ (NW cv)"]])
        at_bandwidth = rows["skattn jackknife+ at the chosen bandwidth"]
        fixed = np.mean([r[2] for r in at_bandwidth])
        learned = rows["skattn jackknife+ (AttentionRegressor())"]
        learned = np.mean([r[2] for r in learned])
        for label, values in rows.items():
            inside, width, seconds = np.mean(values, axis=0)
            ratio = "" if label.startswith("skattn") else f" ({seconds / base:.0f}x)"
            if label.startswith("MAPIE") and "NW" in label:
                ratio = (
                    f" ({seconds / base:.0f}x NW cv, "
                    f"{seconds / fixed:.0f}x at the same bandwidth)"
                )
            elif label.startswith("MAPIE"):
                ratio = f" ({seconds / learned:.0f}x skattn's AttentionRegressor())"
            print(
                f"| {name} | {n} | {label} | {inside:.3f} | {width:.3f} | "
                f"{seconds:.3f}{ratio} |",
                flush=True,
            )
        if agreement:
            label = "largest skattn - MAPIE bound difference"
            print(f"| {name} | {n} | {label} | {agreement:.1e} | | |")
    if args.repeats < 2:
        return
    print()
    print(
        f"{args.repeats} repeats of the 5-fold split (random_state 0-"
        f"{args.repeats - 1}): mean, standard deviation, lowest and highest of "
        "the splits' coverage; mean width"
    )
    print()
    print("| data set | n | method | coverage | sd | lowest | highest | width |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        n, rows = first[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = repeated_rows(name, rows, args.repeats)
        for label, values in table.items():
            inside = values[:, 0]
            print(
                f"| {name} | {n} | {label} | {inside.mean():.3f} | "
                f"{inside.std(ddof=1):.3f} | {inside.min():.3f} | "
                f"{inside.max():.3f} | {values[:, 1].mean():.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
