"""
==============================
From one core to a cluster
==============================

Dense attention compares every query with every training row. For large data,
skattn's estimators attend only to each query's nearest training rows
(``n_neighbors``), learn their metric against a sample of the rows at each step
(``n_candidates``), and spread ``predict``, ``transform`` and grid searches over a
Dask cluster through joblib, the way scikit-learn's own estimators do.
"""

# SPDX-License-Identifier: BSD-3-Clause

# %%
# Data
# ----
# A smooth function of four features, 60,000 training rows and 3,000 queries.
import time
import warnings

import joblib
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import NearestNeighbors

from skattn import AttentionRegressor, NadarayaWatsonRegressor


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 4))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 - X[:, 2] * X[:, 3]
    return X, y + 0.2 * rng.normal(size=n)


X, y = make_data(60_000, seed=0)
X_test, y_test = make_data(3_000, seed=1)

# %%
# Top-k attention
# ---------------
# ``n_neighbors=k`` finds each query's ``k`` nearest training rows in the
# bandwidth-scaled space with :class:`~sklearn.neighbors.NearestNeighbors` (a k-d
# tree here) and pools over them only. Far rows get a negligible weight from the
# Gaussian kernel anyway, so the predictions barely move, and the documented bound
# on how far they can move is computed per query.
dense = NadarayaWatsonRegressor(bandwidth=0.15).fit(X, y)
start = time.perf_counter()
y_dense = dense.predict(X_test)
dense_time = time.perf_counter() - start
print(f"dense: {dense_time:.2f} s, R² {r2_score(y_test, y_dense):.4f}")

times, deviations = {}, {}
for k in (16, 64, 256):
    top_k = NadarayaWatsonRegressor(bandwidth=0.15, n_neighbors=k).fit(X, y)
    start = time.perf_counter()
    y_top_k = top_k.predict(X_test)
    times[k] = time.perf_counter() - start
    deviations[k] = np.abs(y_top_k - y_dense)
    print(
        f"top-{k}: {times[k]:.2f} s, R² {r2_score(y_test, y_top_k):.4f}, "
        f"largest change from dense {deviations[k].max():.1e}"
    )

# %%
# The bound says how much a query's prediction can move when the rows beyond its
# ``k`` nearest are dropped: ``E / (S + E)`` times the range of the targets, with
# ``S`` the kernel mass of the ``k`` neighbours and ``E`` the weight of the other
# rows times the kernel at the ``k``-th neighbour's distance, computed here from
# the 256 nearest scaled distances. Every point lies below the diagonal.
distances, _ = NearestNeighbors(n_neighbors=256).fit(X / 0.15).kneighbors(X_test / 0.15)
kernel = np.exp(-(distances**2) / 2)
S = kernel.sum(axis=1)
E = (len(X) - 256) * kernel[:, -1]
bound = E / (S + E) * np.ptp(y)

fig, (ax_time, ax_bound) = plt.subplots(1, 2, figsize=(10, 4))
labels = ["dense"] + [f"top-{k}" for k in times]
ax_time.bar(labels, [dense_time, *times.values()], color=["grey"] + ["C0"] * 3)
ax_time.set_ylabel("predict time (s)")
ax_time.set_title("3,000 queries, 60,000 training rows")
floor = 1e-18
ax_bound.loglog(
    np.maximum(bound, floor), np.maximum(deviations[256], floor), ".", alpha=0.4
)
ax_bound.plot([floor, 1], [floor, 1], "k--", lw=1, label="bound")
ax_bound.set_xlim(1e-10, 1)
ax_bound.set_ylim(1e-14, 1)
ax_bound.set_xlabel("documented bound")
ax_bound.set_ylabel("|top-256 - dense|")
ax_bound.legend()
fig.tight_layout()

# %%
# Learning at scale
# -----------------
# :class:`~skattn.AttentionRegressor` learns one bandwidth per feature. In
# mini-batch mode (``batch_size``) every Adam step pools a batch of queries; with
# ``n_candidates`` they attend to a fresh random sample of the training rows, as
# in ModernNCA, so a step costs ``batch_size x n_candidates`` kernel evaluations
# instead of ``batch_size x n``. Predictions then attend to the 64 nearest rows in
# the learned metric. Bandwidths learned against a fifth of the rows come out a
# little wider than all the rows need (a kernel's best bandwidth shrinks as the
# data grow), at a small cost in accuracy.
for n_candidates in (None, 0.2):
    learner = AttentionRegressor(
        batch_size=256,
        n_candidates=n_candidates,
        n_neighbors=64,
        max_iter=40,
        random_state=0,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        # 40 steps are the budget here, not convergence: Adam would go on
        warnings.simplefilter("ignore", ConvergenceWarning)
        learner.fit(X, y)
    fit_time = time.perf_counter() - start
    score = r2_score(y_test, learner.predict(X_test))
    print(
        f"n_candidates={n_candidates}: fit {fit_time:.1f} s, R² {score:.4f}, "
        f"bandwidths {np.round(learner.bandwidth_, 2)}"
    )

# %%
# On a Dask cluster
# -----------------
# ``predict``, ``predict_proba``, ``attention_weights`` and ``transform`` split
# their queries into chunks and hand them to joblib's active backend: threads of
# this process by default (``n_jobs``), the workers of a Dask cluster inside
# ``joblib.parallel_config(backend="dask")``. Every query's result depends on
# that query alone, so the cluster's answer equals the local one.
# :class:`~sklearn.model_selection.GridSearchCV` sends its fits there the same
# way. Here the cluster runs in this process (``pip install "skattn[dask]"``); on a
# real one, pass the scheduler's address to ``Client``.
cluster = LocalCluster(
    n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
)
client = Client(cluster)

model = NadarayaWatsonRegressor(bandwidth=0.15, n_neighbors=64).fit(X, y)
X_search, y_search = X[:20_000], y[:20_000]
local = model.predict(X_test)
with joblib.parallel_config(backend="dask"):
    on_cluster = model.predict(X_test)
    search = GridSearchCV(
        NadarayaWatsonRegressor(n_neighbors=64),
        {"bandwidth": [0.08, 0.15, 0.3]},
        cv=3,
        n_jobs=-1,
    ).fit(X_search, y_search)
print(f"cluster equals local: {np.allclose(on_cluster, local, rtol=1e-12)}")
print(f"best bandwidth on the cluster: {search.best_params_['bandwidth']}")
client.close()
cluster.close()
