"""AttentionWeightsDisplay and FeatureRelevanceDisplay on the Agg backend."""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_friedman1
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skattn import (
    AttentionClassifier,
    AttentionRegressor,
    AttentionWeightsDisplay,
    FeatureRelevanceDisplay,
    NadarayaWatsonClassifier,
    NadarayaWatsonRegressor,
)

plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture
def data(rng):
    X = rng.uniform(0, 5, size=(30, 2))
    y = 2 * np.sin(X[:, 0]) + X[:, 0] ** 0.8
    return X, y


def test_weights_display_from_estimator(data):
    X, y = data
    model = NadarayaWatsonRegressor(bandwidth=0.7).fit(X, y)
    Xq = X[:7][::-1] + 0.1
    display = AttentionWeightsDisplay.from_estimator(model, Xq)
    np.testing.assert_allclose(display.image_.get_array(), model.attention_weights(Xq))
    assert display.ax_.get_xlabel() == "training rows (keys)"
    assert display.ax_.get_ylabel() == "queries"
    assert display.figure_ is display.ax_.figure
    assert display.colorbar_ is not None


def test_weights_display_sorted(rng, data):
    X, y = data
    model = NadarayaWatsonRegressor(bandwidth=0.7).fit(X, y)
    Xq = rng.uniform(0, 5, size=(9, 2))
    display = AttentionWeightsDisplay.from_estimator(
        model, Xq, X_train=X, sort_by=1, colorbar=False
    )
    q, k = np.argsort(Xq[:, 1]), np.argsort(X[:, 1])
    np.testing.assert_array_equal(display.query_order, q)
    np.testing.assert_array_equal(display.key_order, k)
    expected = model.attention_weights(Xq)[q][:, k]
    np.testing.assert_allclose(display.image_.get_array(), expected)
    assert display.ax_.get_ylabel() == "queries, sorted by feature 1"
    assert display.ax_.get_xlabel() == "training rows (keys), sorted by feature 1"
    assert display.colorbar_ is None


def test_weights_display_pipeline_and_feature_names(data):
    X, y = data
    frame = pd.DataFrame(X, columns=["age", "dose"])
    pipe = make_pipeline(
        StandardScaler().set_output(transform="pandas"), AttentionRegressor(max_iter=50)
    ).fit(frame, y)
    _, ax = plt.subplots()
    display = AttentionWeightsDisplay.from_estimator(
        pipe, frame.iloc[:5], X_train=frame, sort_by="dose", ax=ax
    )
    assert display.ax_ is ax
    assert display.image_.get_array().shape == (5, 30)
    assert "sorted by dose" in display.ax_.get_ylabel()
    np.testing.assert_array_equal(display.key_order, np.argsort(X[:, 1], kind="stable"))


def test_weights_display_from_weights():
    weights = np.full((3, 4), 0.25)
    display = AttentionWeightsDisplay.from_weights(
        weights, query_label="tokens", key_label="memory", cmap="viridis"
    )
    assert display.ax_.get_ylabel() == "tokens" and display.ax_.get_xlabel() == "memory"
    np.testing.assert_array_equal(display.image_.get_array(), weights)
    with pytest.raises(ValueError, match="NaN|infinity"):
        AttentionWeightsDisplay.from_weights(np.array([[np.nan, 1.0]]))


def test_weights_display_errors(data):
    X, y = data
    with pytest.raises(NotFittedError):
        AttentionWeightsDisplay.from_estimator(NadarayaWatsonRegressor(), X)
    with pytest.raises(NotFittedError):
        AttentionWeightsDisplay.from_estimator(
            make_pipeline(StandardScaler(), NadarayaWatsonRegressor()), X
        )
    with pytest.raises(TypeError, match="no attention_weights"):
        AttentionWeightsDisplay.from_estimator(Ridge().fit(X, y), X)
    model = NadarayaWatsonRegressor().fit(X, y)
    with pytest.raises(ValueError, match="X_train has 5 rows"):
        AttentionWeightsDisplay.from_estimator(model, X, X_train=X[:5])
    with pytest.raises(ValueError, match="not a column"):
        AttentionWeightsDisplay.from_estimator(model, X, sort_by=5)
    with pytest.raises(ValueError, match="saw no feature names.*set_output"):
        AttentionWeightsDisplay.from_estimator(model, X, sort_by="dose")


def test_sort_by_name_after_a_column_transformer(data):
    pd = pytest.importorskip("pandas")
    from sklearn.compose import make_column_transformer

    X, y = data
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    columns = make_column_transformer((StandardScaler(), list(frame.columns)))
    pipe = make_pipeline(columns, NadarayaWatsonRegressor()).fit(frame, y)
    with pytest.raises(ValueError, match='set_output\\(transform="pandas"\\)'):
        AttentionWeightsDisplay.from_estimator(pipe, frame, sort_by="x0")
    pipe.set_output(transform="pandas").fit(frame, y)
    with pytest.raises(ValueError, match="standardscaler__x0"):
        AttentionWeightsDisplay.from_estimator(pipe, frame, sort_by="x0")
    display = AttentionWeightsDisplay.from_estimator(
        pipe, frame, sort_by="standardscaler__x0"
    )
    assert display.weights.shape[0] == len(frame)


def test_weights_display_classifier(data):
    X, y = data
    model = NadarayaWatsonClassifier().fit(X, y > y.mean())
    display = AttentionWeightsDisplay.from_estimator(model, X[:4])
    assert display.image_.get_array().shape == (4, 30)


def test_relevance_display():
    X, y = make_friedman1(n_samples=150, random_state=0)
    model = AttentionRegressor(max_iter=200).fit(X, y)
    display = FeatureRelevanceDisplay.from_estimator(model)
    heights = [bar.get_width() for bar in display.bars_]
    np.testing.assert_allclose(heights, model.feature_importances_)
    labels = [t.get_text() for t in display.ax_.get_yticklabels()]
    assert labels == [f"x{i}" for i in range(10)]
    assert display.ax_.get_xscale() == "linear"
    display = FeatureRelevanceDisplay.from_estimator(model, kind="bandwidth")
    assert display.ax_.get_xscale() == "log"
    np.testing.assert_allclose(
        [bar.get_width() for bar in display.bars_], model.bandwidth_
    )


def test_relevance_display_feature_names_and_scalar_bandwidth(data):
    X, y = data
    frame = pd.DataFrame(X, columns=["age", "dose"])
    model = AttentionRegressor(metric="isotropic").fit(frame, y)
    display = FeatureRelevanceDisplay.from_estimator(model, kind="bandwidth")
    assert [t.get_text() for t in display.ax_.get_yticklabels()] == ["age", "dose"]
    assert len(display.bars_) == 2


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_relevance_display_errors(data):
    X, y = data
    with pytest.raises(NotFittedError):
        FeatureRelevanceDisplay.from_estimator(AttentionRegressor())
    with pytest.raises(ValueError, match="kind must be"):
        FeatureRelevanceDisplay.from_estimator(
            AttentionRegressor(max_iter=5).fit(X, y), kind="weights"
        )
    full = AttentionClassifier(metric="full", max_iter=20).fit(X, y > y.mean())
    with pytest.raises(ValueError, match="use kind='relevance'"):
        FeatureRelevanceDisplay.from_estimator(full, kind="bandwidth")
    with pytest.raises(ValueError, match="no feature_importances_"):
        FeatureRelevanceDisplay.from_estimator(NadarayaWatsonRegressor().fit(X, y))
