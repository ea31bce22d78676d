"""skattn quickstart: attention pooling (Nadaraya-Watson kernel regression) on two
data sets that ship with scikit-learn, beside familiar baselines.

Run with ``python examples/quickstart.py``. Prints 5-fold cross-validated R^2 and
the mean fit and predict times of each model, all in a Pipeline with StandardScaler:
on the diabetes data, nearly linear, and on make_friedman1 (1,000 rows, 10
features, five of them in a smooth nonlinear target, plus noise).
"""

# SPDX-License-Identifier: BSD-3-Clause

from sklearn.datasets import load_diabetes, make_friedman1
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_validate
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skattn import AttentionRegressor, LocalLinearRegressor, NadarayaWatsonRegressor


def main():
    datasets = {
        "diabetes": load_diabetes(return_X_y=True),
        "make_friedman1": make_friedman1(n_samples=1000, noise=1.0, random_state=0),
    }
    models = {
        'NadarayaWatsonRegressor(bandwidth="cv")': NadarayaWatsonRegressor(
            bandwidth="cv"
        ),
        "NadarayaWatsonRegressor()  # Scott": NadarayaWatsonRegressor(),
        "LocalLinearRegressor()  # cv": LocalLinearRegressor(),
        "AttentionRegressor()  # metric + boost + LL avg": AttentionRegressor(),
        "KNeighborsRegressor()": KNeighborsRegressor(),
        "LinearRegression()": LinearRegression(),
    }
    cv = KFold(n_splits=5, shuffle=True, random_state=0)
    for name, (X, y) in datasets.items():
        print(f"{name}: {X.shape[0]} samples, {X.shape[1]} features; 5-fold CV\n")
        print(
            f"{'model':<50} {'R^2 mean':>9} {'± std':>7} {'fit ms':>8} "
            f"{'predict ms':>11}"
        )
        for label, model in models.items():
            pipeline = make_pipeline(StandardScaler(), model)
            result = cross_validate(pipeline, X, y, cv=cv)
            r2 = result["test_score"]
            print(
                f"{label:<50} {r2.mean():>9.3f} {r2.std():>7.3f} "
                f"{1e3 * result['fit_time'].mean():>8.1f} "
                f"{1e3 * result['score_time'].mean():>11.1f}"
            )
        print()


if __name__ == "__main__":
    main()
