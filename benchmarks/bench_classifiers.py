"""Benchmark the attention classifiers against the neighbour methods and a linear
model. Prints one table from one run.

    pip install ".[bench]"
    python benchmarks/bench_classifiers.py          # everything (~25 minutes)
    python benchmarks/bench_classifiers.py --quick  # iris and wine only

5-fold stratified CV accuracy and log loss (mean over folds; the same folds for every
model) and mean fit time per fold, every model after a StandardScaler, on load_iris,
load_wine, load_breast_cancer, load_digits and make_classification(n_samples=2000,
n_features=20, n_informative=5, random_state=0), of

- NadarayaWatsonClassifier(bandwidth="cv") (leave-one-out log loss);
- AttentionClassifier, metric "diagonal" and "full" (default alpha=1e-2), and "full"
  with alpha=1e-3; and AttentionClassifier tuned for log loss by an inner 3-fold
  GridSearchCV over metric ("diagonal", "full") and alpha (1e-3, 1e-2);
- KNeighborsClassifier tuned by an inner 5-fold GridSearchCV over n_neighbors and
  weights, once for accuracy and once for log loss;
- NeighborhoodComponentsAnalysis + KNeighborsClassifier, tuned the same two ways
  (the NCA fit cached across the grid);
- LogisticRegression (default, C=1).

Targets: AttentionClassifier's log loss the best of the attention/neighbour family
on every dataset; its accuracy at least that of NCA + KNN on average. The summary
judges the tuned row, which is tuned as the neighbour methods are; the fixed settings
show what the defaults give.
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import tempfile
import warnings

import numpy as np
from _report import print_table
from joblib import Memory
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from skattn import AttentionClassifier, NadarayaWatsonClassifier

ROWS = []
FAMILY = "attention/neighbour"
TUNED = "AttentionClassifier tuned for log loss"


def report(section, what, seconds, accuracy, logloss, note=""):
    ROWS.append((section, what, seconds, accuracy, logloss, note))
    print(
        f"[{section}] {what}  {seconds:.3f} s  accuracy {accuracy:.4f}  "
        f"log loss {logloss:.4f}  {note}",
        flush=True,
    )


def tuned_neighbours(nca, scoring, memory):
    steps = [("scale", StandardScaler())]
    if nca:
        steps.append(("nca", NeighborhoodComponentsAnalysis(random_state=0)))
    steps.append(("knn", KNeighborsClassifier()))
    return GridSearchCV(
        Pipeline(steps, memory=memory),
        {
            "knn__n_neighbors": [1, 3, 5, 10, 20, 40],
            "knn__weights": ["uniform", "distance"],
        },
        scoring=scoring,
        cv=5,
    )


def models(memory):
    scaled = lambda model: make_pipeline(StandardScaler(), model)  # noqa: E731
    return {
        "NadarayaWatsonClassifier(cv)": scaled(
            NadarayaWatsonClassifier(bandwidth="cv")
        ),
        "AttentionClassifier(diagonal)": scaled(AttentionClassifier()),
        "AttentionClassifier(full)": scaled(AttentionClassifier(metric="full")),
        "AttentionClassifier(full, alpha=1e-3)": scaled(
            AttentionClassifier(metric="full", alpha=1e-3)
        ),
        TUNED: GridSearchCV(
            scaled(AttentionClassifier()),
            {
                "attentionclassifier__metric": ["diagonal", "full"],
                "attentionclassifier__alpha": [1e-3, 1e-2],
            },
            scoring="neg_log_loss",
            cv=3,
        ),
        "KNN tuned for accuracy": tuned_neighbours(False, "accuracy", memory),
        "KNN tuned for log loss": tuned_neighbours(False, "neg_log_loss", memory),
        "NCA + KNN tuned for accuracy": tuned_neighbours(True, "accuracy", memory),
        "NCA + KNN tuned for log loss": tuned_neighbours(True, "neg_log_loss", memory),
        "LogisticRegression": scaled(LogisticRegression(max_iter=1000)),
    }


def datasets(quick):
    yield "iris", *load_iris(return_X_y=True)
    yield "wine", *load_wine(return_X_y=True)
    if quick:
        return
    yield "breast_cancer", *load_breast_cancer(return_X_y=True)
    yield "digits", *load_digits(return_X_y=True)
    yield (
        "make_classification",
        *make_classification(
            n_samples=2000, n_features=20, n_informative=5, random_state=0
        ),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run for a check")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        memory = Memory(cache, verbose=0)
        for data, X, y in datasets(args.quick):
            section = f"{data} n={len(y)} d={X.shape[1]} classes={len(np.unique(y))}"
            splits = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
            for label, model in models(memory).items():
                out = cross_validate(
                    model, X, y, cv=splits, scoring=["accuracy", "neg_log_loss"]
                )
                accuracy = out["test_accuracy"].mean()
                logloss = -out["test_neg_log_loss"].mean()
                results.setdefault(data, {})[label] = (accuracy, logloss)
                report(section, label, out["fit_time"].mean(), accuracy, logloss)
            memory.clear(warn=False)

    ours = [k for k in next(iter(results.values())) if k.startswith("AttentionCl")]
    family = [k for k in next(iter(results.values())) if k != "LogisticRegression"]
    for data, per in results.items():
        tuned = per[TUNED][1]
        best_fixed = min(per[k][1] for k in ours if k != TUNED)
        best_other = min(per[k][1] for k in family if k not in ours)
        report(
            "summary",
            f"{data}: log loss of {TUNED} (best fixed setting) vs best other {FAMILY}",
            0.0,
            np.nan,
            tuned,
            note=f"({best_fixed:.4f}) vs {best_other:.4f}: "
            f"{'ours' if tuned <= best_other else 'theirs'} lower",
        )
    for label in family:
        report(
            "summary",
            f"mean over datasets: {label}",
            0.0,
            np.mean([per[label][0] for per in results.values()]),
            np.mean([per[label][1] for per in results.values()]),
        )

    print_table(
        ["data", "model", "fit s", "accuracy", "log loss", "note"],
        [
            [
                section,
                what,
                "" if section == "summary" else f"{seconds:.3f}",
                "" if np.isnan(accuracy) else f"{accuracy:.4f}",
                f"{logloss:.4f}",
                note,
            ]
            for section, what, seconds, accuracy, logloss, note in ROWS
        ],
    )


if __name__ == "__main__":
    main()
