"""skattn quickstart: attention pooling (Nadaraya-Watson kernel regression) on the
diabetes data that ships with scikit-learn, beside familiar baselines.

Run with ``python examples/quickstart.py``. Prints 5-fold cross-validated R^2 and
the mean fit and predict times of each model, all in a Pipeline with StandardScaler.
"""

# SPDX-License-Identifier: BSD-3-Clause

from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_validate
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skattn import AttentionRegressor, LocalLinearRegressor, NadarayaWatsonRegressor


def main():
    X, y = load_diabetes(return_X_y=True)
    models = {
        'NadarayaWatsonRegressor(bandwidth="cv")': NadarayaWatsonRegressor(
            bandwidth="cv"
        ),
        "NadarayaWatsonRegressor()  # Scott": NadarayaWatsonRegressor(),
        "LocalLinearRegressor()  # cv": LocalLinearRegressor(),
        "AttentionRegressor()  # trend + metric=auto": AttentionRegressor(),
        "KNeighborsRegressor()": KNeighborsRegressor(),
        "LinearRegression()": LinearRegression(),
    }
    cv = KFold(n_splits=5, shuffle=True, random_state=0)
    print(f"diabetes: {X.shape[0]} samples, {X.shape[1]} features; 5-fold CV\n")
    print(
        f"{'model':<42} {'R^2 mean':>9} {'± std':>7} {'fit ms':>8} {'predict ms':>11}"
    )
    for name, model in models.items():
        result = cross_validate(make_pipeline(StandardScaler(), model), X, y, cv=cv)
        r2 = result["test_score"]
        print(
            f"{name:<42} {r2.mean():>9.3f} {r2.std():>7.3f} "
            f"{1e3 * result['fit_time'].mean():>8.1f} "
            f"{1e3 * result['score_time'].mean():>11.1f}"
        )


if __name__ == "__main__":
    main()
