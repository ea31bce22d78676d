"""
==========================================================
Attention classifiers: decision boundaries and calibration
==========================================================

:class:`~skattn.NadarayaWatsonClassifier` pools the one-hot classes of the training
rows: its ``predict_proba`` is the attention-weighted class frequency around the
query. :class:`~skattn.AttentionClassifier` learns the bandwidths (or a
projection) that minimise the leave-one-out log loss of those probabilities.
This example draws their decision boundaries on three toy problems beside
:math:`k`-nearest neighbours and logistic regression, and checks how well their
probabilities are calibrated.
"""

# SPDX-License-Identifier: BSD-3-Clause

# %%
# Decision boundaries
# -------------------
# Shading is the probability of the second class. The attention classifiers'
# probabilities change smoothly with the query, where :math:`k`-NN's jump in steps
# of :math:`1/k`; logistic regression can only draw a line.
import matplotlib.pyplot as plt
from sklearn.calibration import CalibrationDisplay
from sklearn.datasets import (
    load_breast_cancer,
    make_circles,
    make_classification,
    make_moons,
)
from sklearn.inspection import DecisionBoundaryDisplay
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import (
    StratifiedKFold,
    cross_val_predict,
    train_test_split,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skattn import AttentionClassifier, NadarayaWatsonClassifier

datasets = {
    "moons": make_moons(n_samples=200, noise=0.3, random_state=0),
    "circles": make_circles(n_samples=200, noise=0.2, factor=0.5, random_state=1),
    "make_classification": make_classification(
        n_samples=200,
        n_features=2,
        n_redundant=0,
        n_informative=2,
        n_clusters_per_class=1,
        random_state=1,
    ),
}
classifiers = {
    "NadarayaWatson(cv)": NadarayaWatsonClassifier(bandwidth="cv"),
    "Attention(diagonal)": AttentionClassifier(metric="diagonal"),
    "KNN (k=5)": KNeighborsClassifier(),
    "LogisticRegression": LogisticRegression(),
}

fig, axes = plt.subplots(
    len(datasets), len(classifiers), figsize=(12, 8.5), sharex="row", sharey="row"
)
for row, (data_name, (X, y)) in zip(axes, datasets.items(), strict=True):
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.4, random_state=0
    )
    for ax, (name, classifier) in zip(row, classifiers.items(), strict=True):
        model = make_pipeline(StandardScaler(), classifier).fit(X_train, y_train)
        DecisionBoundaryDisplay.from_estimator(
            model,
            X,
            response_method="predict_proba",
            plot_method="pcolormesh",
            cmap="RdBu",
            alpha=0.8,
            ax=ax,
        )
        ax.scatter(*X_train.T, c=y_train, cmap="RdBu", edgecolors="k", s=15)
        ax.scatter(*X_test.T, c=y_test, cmap="RdBu", edgecolors="k", s=15, alpha=0.5)
        accuracy = model.score(X_test, y_test)
        loss = log_loss(y_test, model.predict_proba(X_test))
        ax.set_title(f"{name}\nacc {accuracy:.2f}, log loss {loss:.2f}", fontsize=9)
        ax.set(xlabel="", ylabel="")
    row[0].set_ylabel(data_name)
fig.tight_layout()

# %%
# Calibration
# -----------
# On the breast cancer data (569 tumours, 30 features), the reliability diagram
# compares the predicted probability that a tumour is benign (class 1) with the
# observed frequency of benign tumours, in bins of rows. Every row's probability
# comes from a model that did not see it (5-fold
# :func:`~sklearn.model_selection.cross_val_predict`). The attention classifiers'
# probabilities are pooled class frequencies, fitted for log loss; :math:`k`-NN's
# are vote shares of 5 neighbours and take only 6 values. Its bins look about as
# reliable, but its log loss is several times higher: a unanimous vote is a
# probability of exactly 0 or 1, and each confident mistake costs a great deal
# (the log loss clips it at :math:`\log 10^{-15}`).
X, y = load_breast_cancer(return_X_y=True)
cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
fig, ax = plt.subplots(figsize=(6, 5))
for name, classifier in classifiers.items():
    model = make_pipeline(StandardScaler(), classifier)
    proba = cross_val_predict(model, X, y, cv=cv, method="predict_proba")[:, 1]
    loss = log_loss(y, proba)
    CalibrationDisplay.from_predictions(
        y, proba, n_bins=6, name=f"{name} (log loss {loss:.3f})", ax=ax
    )
ax.set_title("reliability on breast cancer (5-fold out-of-fold)")
fig.tight_layout()
plt.show()
