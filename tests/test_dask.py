"""Predictions, transforms and grid searches on a Dask cluster equal the local ones.

A ``distributed.LocalCluster`` of two worker processes listens on the loopback
interface only; inside ``joblib.parallel_config(backend="dask")`` the estimators
send their chunks of queries to it. Skipped when distributed is not installed (the
``tests`` and ``dask`` extras install it).
"""

# SPDX-License-Identifier: BSD-3-Clause

import warnings

import joblib
import numpy as np
import pytest
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from skattn import (
    AttentionClassifier,
    AttentionPooling,
    AttentionRegressor,
    NadarayaWatsonClassifier,
    NadarayaWatsonRegressor,
)

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cluster's own start-up notices
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _data(rng, n=300):
    X = rng.normal(size=(n, 4))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.normal(size=n)
    Q = rng.normal(size=(500, 4))
    return X, y, Q


def _on_cluster(client, func):
    """``func()`` inside the Dask backend, and the number of tasks the workers ran."""
    with distributed.get_task_stream(client) as stream:
        with joblib.parallel_config(backend="dask"):
            result = func()
    return result, len(stream.data)


ESTIMATORS = [
    (NadarayaWatsonRegressor(bandwidth="cv"), "predict"),
    (NadarayaWatsonRegressor(n_neighbors=20, n_jobs=2), "predict"),
    (
        NadarayaWatsonClassifier(kernel="epanechnikov", n_neighbors="radius"),
        "predict_proba",
    ),
    (AttentionRegressor(max_iter=15), "predict"),
    (AttentionClassifier(metric="full", max_iter=15, n_neighbors=30), "predict_proba"),
    (
        AttentionPooling(
            passthrough=False,
            learn_bandwidth=False,
            values="both",
            bandwidth=[0.5, 1.0],
        ),
        "transform",
    ),
    (
        AttentionPooling(
            passthrough=False,
            learn_bandwidth=False,
            return_n_effective=True,
            n_neighbors=25,
        ),
        "transform",
    ),
    (NadarayaWatsonRegressor(n_neighbors=10), "attention_weights"),
]


@pytest.mark.parametrize(
    "estimator, method", ESTIMATORS, ids=lambda p: getattr(p, "__name__", p)
)
def test_cluster_results_equal_local_results(rng, client, estimator, method):
    X, y, Q = _data(rng)
    if "Classifier" in type(estimator).__name__:
        y = np.digitize(y, [0.5, 1.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    local = getattr(estimator, method)(Q)
    remote, n_tasks = _on_cluster(client, lambda: getattr(estimator, method)(Q))
    assert n_tasks >= 2  # the queries went to both workers, by chunks
    if sparse.issparse(local):
        assert sparse.issparse(remote)
        np.testing.assert_array_equal(remote.indptr, local.indptr)
        np.testing.assert_array_equal(remote.indices, local.indices)
        local, remote = local.data, remote.data
    np.testing.assert_allclose(remote, local, rtol=1e-12, atol=1e-14)
    assert remote.dtype == local.dtype


def test_grid_search_on_the_cluster_equals_local(rng, client):
    X, y, _ = _data(rng, n=200)
    grid = {"bandwidth": [0.3, 0.6, 1.2], "n_neighbors": [None, 15]}
    local = GridSearchCV(NadarayaWatsonRegressor(), grid, cv=3).fit(X, y)
    remote, n_tasks = _on_cluster(
        client,
        lambda: GridSearchCV(NadarayaWatsonRegressor(), grid, cv=3, n_jobs=-1).fit(
            X, y
        ),
    )
    assert n_tasks >= 6
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"],
        local.cv_results_["mean_test_score"],
        rtol=1e-12,
    )
    assert remote.best_params_ == local.best_params_
