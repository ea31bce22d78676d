"""Benchmark AttentionRegressor against the tools users would otherwise pick. Prints
one table from one run.

    pip install ".[bench]"
    python benchmarks/bench_attention_regressor.py          # everything (~1 hour)
    python benchmarks/bench_attention_regressor.py --quick  # small, no statsmodels/GP

1. Panel: 5-fold CV R^2 (mean and standard deviation over folds) and mean fit time per
   fold on load_diabetes and make_friedman1/2/3 (n=1000; noise 1, 125 and 0.1, a
   signal-to-noise ratio of about 3 for friedman2/3) of

   - AttentionRegressor, metric "isotropic" (on raw and on standardised features),
     "diagonal" and "full" with the defaults, and with the penalty alpha 1e-2
     ("diagonal") and 1e-3 and 1e-2 ("full"), which shows why alpha defaults to 0
     and when to tune it;
   - NadarayaWatsonRegressor(bandwidth="cv");
   - KNeighborsRegressor on standardised features, tuned by an inner 5-fold
     GridSearchCV over n_neighbors and weights;
   - statsmodels KernelReg(reg_type="lc", bw="cv_ls"): Nadaraya-Watson with one
     Gaussian bandwidth per feature chosen by leave-one-out least squares (Nelder-Mead);
     its Python loops use one core, so its folds run two at a time (each fit's time
     is still its own, on a core of its own);
   - GaussianProcessRegressor with an ARD RBF kernel (one length scale per feature) plus
     a white-noise kernel, on standardised features, normalize_y=True;
   - metric-learn MLKR (the projection of Metric Learning for Kernel Regression) on
     standardised features, followed by MLKR's own Gaussian Nadaraya-Watson predictor
     (``exp(-|A(x - x')|^2)``, i.e. NadarayaWatsonRegressor(bandwidth=sqrt(1/2)) in the
     projected space).

2. Leave-one-out loss at the optimum, metric="diagonal" vs KernelReg cv_ls, on the
   same training rows: AttentionRegressor's objective (leave-one-out squared error over
   the total sum of squares) evaluated at its own bandwidths and at KernelReg's. Also
   on friedman1 with n=1000, together with the fit-time ratio.

3. Scale: a full-batch diagonal fit at n=5000, d=10; a mini-batch diagonal fit
   (batch_size=256) at n=100,000 next to NadarayaWatsonRegressor(bandwidth="cv"),
   both scored on 10,000 held-out rows of make_friedman1.
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import time
import warnings

import numpy as np
from _report import metric_learn_mlkr, print_report, report
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import (
    load_diabetes,
    make_friedman1,
    make_friedman2,
    make_friedman3,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skattn import AttentionRegressor, NadarayaWatsonRegressor
from skattn._learning import LeaveOneOutObjective

# -- competitors -----------------------------------------------------------------------


class KernelRegCV(RegressorMixin, BaseEstimator):
    """statsmodels KernelReg(reg_type="lc", bw="cv_ls") as a scikit-learn regressor."""

    def fit(self, X, y):
        from statsmodels.nonparametric.kernel_regression import KernelReg

        X = np.asarray(X, dtype=float)
        self.model_ = KernelReg(
            endog=np.asarray(y, dtype=float),
            exog=X,
            var_type="c" * X.shape[1],
            reg_type="lc",
            bw="cv_ls",
        )
        # Nelder-Mead may return a negative bandwidth; the kernel only sees its square.
        self.bandwidth_ = np.abs(np.asarray(self.model_.bw, dtype=float))
        return self

    def predict(self, X):
        return self.model_.fit(np.asarray(X, dtype=float))[0]


class MLKRRegressor(RegressorMixin, BaseEstimator):
    """Standardise, learn MLKR's projection, predict with MLKR's own Gaussian kernel."""

    def __init__(self, random_state=0):
        self.random_state = random_state

    def fit(self, X, y):
        MLKR = metric_learn_mlkr()
        self.scaler_ = StandardScaler().fit(X)
        Xs = self.scaler_.transform(X)
        self.mlkr_ = MLKR(random_state=self.random_state).fit(Xs, y)
        # MLKR's kernel exp(-|A(x - x')|^2) is a Gaussian of bandwidth sqrt(1/2).
        self.nw_ = NadarayaWatsonRegressor(bandwidth=np.sqrt(0.5))
        self.nw_.fit(self.mlkr_.transform(Xs), y)
        return self

    def predict(self, X):
        return self.nw_.predict(self.mlkr_.transform(self.scaler_.transform(X)))


def tuned_knn():
    return GridSearchCV(
        make_pipeline(StandardScaler(), KNeighborsRegressor()),
        {
            "kneighborsregressor__n_neighbors": [1, 2, 3, 5, 7, 10, 15, 20, 30, 50],
            "kneighborsregressor__weights": ["uniform", "distance"],
        },
        cv=5,
    )


def ard_gp(n_features):
    kernel = ConstantKernel() * RBF(length_scale=np.ones(n_features)) + WhiteKernel()
    return make_pipeline(
        StandardScaler(),
        GaussianProcessRegressor(kernel, normalize_y=True, random_state=0),
    )


def has_module(name):
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def models(n_features, quick):
    out = {
        "AttentionRegressor(isotropic)": AttentionRegressor(metric="isotropic"),
        "StandardScaler + AttentionRegressor(isotropic)": make_pipeline(
            StandardScaler(), AttentionRegressor(metric="isotropic")
        ),
        "AttentionRegressor(diagonal)": AttentionRegressor(metric="diagonal"),
        "AttentionRegressor(diagonal, alpha=1e-2)": AttentionRegressor(alpha=1e-2),
        "AttentionRegressor(full)": AttentionRegressor(metric="full"),
        "AttentionRegressor(full, alpha=1e-3)": AttentionRegressor(
            metric="full", alpha=1e-3
        ),
        "AttentionRegressor(full, alpha=1e-2)": AttentionRegressor(
            metric="full", alpha=1e-2
        ),
        "NadarayaWatsonRegressor(cv)": NadarayaWatsonRegressor(bandwidth="cv"),
        "KNeighborsRegressor tuned": tuned_knn(),
    }
    if has_module("metric_learn"):
        out["MLKR + Gaussian NW"] = MLKRRegressor()
    if not quick:
        if has_module("statsmodels"):
            out["statsmodels KernelReg(lc, cv_ls)"] = KernelRegCV()
        out["GaussianProcessRegressor(ARD RBF)"] = ard_gp(n_features)
    return out


# -- data ------------------------------------------------------------------------------


def datasets(n):
    X, y = load_diabetes(return_X_y=True)
    yield "diabetes", X, y
    yield "friedman1", *make_friedman1(n_samples=n, noise=1.0, random_state=0)
    yield "friedman2", *make_friedman2(n_samples=n, noise=125.0, random_state=0)
    yield "friedman3", *make_friedman3(n_samples=n, noise=0.1, random_state=0)


def loo_loss(X, y, bandwidth):
    """AttentionRegressor's objective (without penalty) at the given bandwidths."""
    objective = LeaveOneOutObjective(
        X,
        y[:, None],
        np.ones(len(y)),
        kernel="gaussian",
        metric="diagonal",
        n_components=X.shape[1],
        alpha=0.0,
        n_jobs=None,
    )
    params = objective.metric.params_from_bandwidth(
        np.broadcast_to(bandwidth, X.shape[1])
    )
    return objective(params)[0]


# -- sections --------------------------------------------------------------------------


def bench_panel(n, quick):
    kernelreg = "statsmodels KernelReg(lc, cv_ls)"
    scores = {}
    for name, X, y in datasets(n):
        section = f"panel {name} n={len(y)} d={X.shape[1]}"
        splits = list(KFold(5, shuffle=True, random_state=0).split(X))
        fitted = {}
        for label, model in models(X.shape[1], quick).items():
            result = cross_validate(
                model,
                X,
                y,
                cv=splits,
                scoring="r2",
                return_estimator=True,
                # KernelReg runs Python loops on one core: two folds at a time
                n_jobs=2 if label == kernelreg else None,
            )
            r2 = result["test_score"]
            scores.setdefault(label, {})[name] = r2.mean()
            fitted[label] = result["estimator"]
            report(
                section,
                label,
                seconds=result["fit_time"].mean(),
                value=f"R2 {r2.mean():.3f} +- {r2.std():.3f}",
            )
        if kernelreg in fitted:
            pairs = zip(
                fitted["AttentionRegressor(diagonal)"],
                fitted[kernelreg],
                splits,
                strict=True,
            )
            losses = np.array(
                [
                    [
                        loo_loss(X[train], y[train], ours.bandwidth_),
                        loo_loss(X[train], y[train], theirs.bandwidth_),
                    ]
                    for ours, theirs, (train, _) in pairs
                ]
            )
            wins = np.sum(losses[:, 0] <= losses[:, 1])
            excess = np.max((losses[:, 0] - losses[:, 1]) / losses[:, 1])
            report(
                f"loo loss {name}",
                "diagonal vs KernelReg cv_ls, per fold",
                value=(
                    f"mean {losses[:, 0].mean():.6f} vs {losses[:, 1].mean():.6f}; "
                    f"ours <= theirs in {wins}/5 folds; largest relative excess "
                    f"{excess:+.1e}"
                ),
                target="<= KernelReg",
            )
    return scores


def summarise(scores):
    names = sorted(next(iter(scores.values())))
    gp = scores.get("GaussianProcessRegressor(ARD RBF)")
    for label, per in scores.items():
        mean = np.mean([per[name] for name in names])
        value = f"mean R2 {mean:.3f}"
        if gp is not None and label != "GaussianProcessRegressor(ARD RBF)":
            gaps = ", ".join(f"{name} {per[name] - gp[name]:+.3f}" for name in names)
            value += f"; vs GP: {gaps}"
        report("panel summary", label, value=value)


def bench_loo_n1000():
    X, y = make_friedman1(n_samples=1000, noise=1.0, random_state=0)
    section = "loo fit friedman1 n=1000"
    start = time.perf_counter()
    kr = KernelRegCV().fit(X, y)
    t_kr = time.perf_counter() - start
    start = time.perf_counter()
    ours = AttentionRegressor().fit(X, y)
    t_ours = time.perf_counter() - start
    report(
        section,
        "statsmodels KernelReg(lc, cv_ls)",
        seconds=t_kr,
        value=f"loo loss {loo_loss(X, y, kr.bandwidth_):.6f}",
    )
    report(
        section,
        "AttentionRegressor(diagonal)",
        seconds=t_ours,
        ratio=f"{t_kr / t_ours:.0f}x faster",
        value=f"loo loss {loo_loss(X, y, ours.bandwidth_):.6f}",
        target=">= 20x faster, loss <= KernelReg",
    )


def bench_scale(quick):
    n_test = 10_000
    sizes = [(5_000, None)] + ([] if quick else [(100_000, 256)])
    for n, batch_size in sizes:
        X, y = make_friedman1(n_samples=n + n_test, noise=1.0, random_state=1)
        X, Xt, y, yt = X[:n], X[n:], y[:n], y[n:]
        section = f"scale friedman1 n={n:,} d=10"
        model = AttentionRegressor(batch_size=batch_size, random_state=0)
        start = time.perf_counter()
        model.fit(X, y)
        t_ours = time.perf_counter() - start
        label = "full batch" if batch_size is None else f"batch_size={batch_size}"
        ours = model.score(Xt, yt)
        report(
            section,
            f"AttentionRegressor(diagonal, {label}), n_iter_={model.n_iter_}",
            seconds=t_ours,
            value=f"held-out R2 {ours:.3f}",
            target="< 60 s" if batch_size is None else "finishes; R2 > NW(cv)",
        )
        start = time.perf_counter()
        nw = NadarayaWatsonRegressor(bandwidth="cv").fit(X, y)
        t_nw = time.perf_counter() - start
        theirs = nw.score(Xt, yt)
        report(
            section,
            "NadarayaWatsonRegressor(cv)",
            seconds=t_nw,
            value=f"held-out R2 {theirs:.3f} ({ours - theirs:+.3f} for attention)",
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run for a check")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    scores = bench_panel(300 if args.quick else 1000, args.quick)
    summarise(scores)
    if not args.quick and has_module("statsmodels"):
        bench_loo_n1000()
    bench_scale(args.quick)

    print_report()


if __name__ == "__main__":
    main()
