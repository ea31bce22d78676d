"""Benchmark AttentionPooling as a feature for downstream models. Prints one table from
one run.

    pip install ".[bench]"
    python benchmarks/bench_attention_pooling.py          # everything (~2 minutes)
    python benchmarks/bench_attention_pooling.py --quick  # n=300 for friedman1

5-fold CV R^2 (mean and standard deviation over folds; the same folds for every
model) and mean fit time per fold on make_friedman1 (n=1000, 10 features, 5 of them
noise; noise 1.0) and load_diabetes (442 rows, 10 features) of

- Ridge alone and HistGradientBoostingRegressor alone: the baselines with no
  target-derived feature;
- Pipeline(AttentionPooling, model): the model sees only the pooled targets of each
  head (Scott's rule, the leave-one-out "cv" bandwidth, three heads at 0.5, 1 and 2
  times Scott's rule, per-feature bandwidths learned with AttentionRegressor's
  objective);
- Pipeline(FeatureUnion(AttentionPooling, "passthrough"), model): the pooled targets
  added to the original features;
- the same learned pooling without cross-fitting (fit(X, y).transform(X) on the
  training rows, what fit_transform avoids), to show what leakage costs.

For the rows that add pooled features to a baseline, "vs baseline" is the mean
difference of the per-fold R^2 with its standard error over the 5 folds (paired: the
same folds).
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import warnings

import numpy as np
from _report import print_table
from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold, cross_validate
from sklearn.pipeline import make_pipeline, make_union

from skattn import AttentionPooling

ROWS = []


def report(section, what, seconds=None, value=None, versus=None, target=None):
    ROWS.append((section, what, seconds, value, versus, target))
    parts = [f"[{section}] {what}"]
    if seconds is not None:
        parts.append(f"{seconds:.3f} s")
    for extra in (value, versus):
        if extra is not None:
            parts.append(extra)
    print("  ".join(parts), flush=True)


class LeakyPooling(AttentionPooling):
    """AttentionPooling whose fit_transform is fit(X, y).transform(X): each training
    row's own target reaches its feature. For comparison only."""

    def fit_transform(self, X, y=None, sample_weight=None):
        return self.fit(X, y, sample_weight=sample_weight).transform(X)


def poolings():
    return {
        "scott": lambda: AttentionPooling(random_state=0),
        "cv": lambda: AttentionPooling(bandwidth="cv", random_state=0),
        "3 heads 0.5/1/2 x scott": lambda: AttentionPooling(
            bandwidth_scales=[0.5, 1.0, 2.0], random_state=0
        ),
        "learned": lambda: AttentionPooling(learn_bandwidth=True, random_state=0),
    }


def models():
    ridge = Ridge
    hgb = lambda: HistGradientBoostingRegressor(random_state=0)  # noqa: E731
    pool = poolings()
    out = {"Ridge": ("Ridge", ridge())}
    for name, make in pool.items():
        out[f"AttentionPooling({name}) -> Ridge"] = (
            "Ridge",
            make_pipeline(make(), ridge()),
        )
    for name in ("scott", "learned"):
        out[f"[AttentionPooling({name}), X] -> Ridge"] = (
            "Ridge",
            make_pipeline(make_union(pool[name](), "passthrough"), ridge()),
        )
    out["AttentionPooling(learned, leaky: no cross-fitting) -> Ridge"] = (
        "Ridge",
        make_pipeline(LeakyPooling(learn_bandwidth=True), ridge()),
    )
    out["HistGradientBoosting"] = ("HistGradientBoosting", hgb())
    out["AttentionPooling(learned) -> HistGradientBoosting"] = (
        "HistGradientBoosting",
        make_pipeline(pool["learned"](), hgb()),
    )
    for name in ("scott", "cv", "3 heads 0.5/1/2 x scott", "learned"):
        out[f"[AttentionPooling({name}), X] -> HistGradientBoosting"] = (
            "HistGradientBoosting",
            make_pipeline(make_union(pool[name](), "passthrough"), hgb()),
        )
    return out


def datasets(n):
    yield "friedman1", *make_friedman1(n_samples=n, noise=1.0, random_state=0)
    X, y = load_diabetes(return_X_y=True)
    yield "diabetes", X, y


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run for a check")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    for data, X, y in datasets(300 if args.quick else 1000):
        section = f"{data} n={len(y)} d={X.shape[1]}"
        splits = list(KFold(5, shuffle=True, random_state=0).split(X))
        scores = {}
        for label, (baseline, model) in models().items():
            result = cross_validate(model, X, y, cv=splits, scoring="r2")
            r2 = result["test_score"]
            scores[label] = r2
            versus = target = None
            if label != baseline:
                diff = r2 - scores[baseline]
                se = diff.std(ddof=1) / np.sqrt(len(diff))
                versus = f"{diff.mean():+.3f} +- {se:.3f} vs {baseline}"
                if label.startswith("[") and baseline == "HistGradientBoosting":
                    target = "not worse than noise (>= -2 SE)"
                if (
                    label == "AttentionPooling(learned) -> Ridge"
                    and data == "friedman1"
                ):
                    target = "beats Ridge by a wide margin"
            report(
                section,
                label,
                seconds=result["fit_time"].mean(),
                value=f"R2 {r2.mean():.3f} +- {r2.std():.3f}",
                versus=versus,
                target=target,
            )

    print_table(
        [
            "data",
            "model",
            "fit s",
            "5-fold R2",
            "vs baseline (paired, +- SE)",
            "target",
        ],
        [
            [
                section,
                what,
                "" if seconds is None else f"{seconds:.3f}",
                value or "",
                versus or "",
                target or "",
            ]
            for section, what, seconds, value, versus, target in ROWS
        ],
    )


if __name__ == "__main__":
    main()
