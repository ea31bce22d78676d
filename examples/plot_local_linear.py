"""
==========================================
Local-linear attention and boundary bias
==========================================

:class:`~skattn.NadarayaWatsonRegressor` fits a weighted *mean* of the nearby
targets; :class:`~skattn.LocalLinearRegressor` fits a weighted *line* with the same
attention weights and predicts its value at the query. Near the edges of the data
the rows all lie on one side of the query, so a mean is pulled inward while a line
is not: the boundary bias falls from :math:`O(h)` to :math:`O(h^2)`.
"""

# SPDX-License-Identifier: BSD-3-Clause

# %%
# One sample, two fits at the same bandwidth
# -------------------------------------------
# 200 rows of :math:`\sin(2 \pi x) + x / 2` with noise on :math:`[0, 1]`, and a
# Gaussian kernel of bandwidth 0.08 for both estimators.
import matplotlib.pyplot as plt
import numpy as np

from skattn import LocalLinearRegressor, NadarayaWatsonRegressor


def truth(x):
    return np.sin(2 * np.pi * x) + x / 2


rng = np.random.default_rng(0)
X = rng.uniform(0, 1, size=(200, 1))
y = truth(X[:, 0]) + 0.2 * rng.normal(size=200)
grid = np.linspace(0, 1, 201)[:, None]

nw = NadarayaWatsonRegressor(bandwidth=0.08).fit(X, y)
ll = LocalLinearRegressor(bandwidth=0.08).fit(X, y)

fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.scatter(X[:, 0], y, s=8, color="0.7", label="training rows")
ax.plot(grid, truth(grid[:, 0]), "k--", lw=1, label="m(x)")
ax.plot(grid, nw.predict(grid), label="Nadaraya-Watson")
ax.plot(grid, ll.predict(grid), label="local-linear")
ax.set_xlabel("x")
ax.legend(loc="lower left", fontsize=8)
ax.set_title("Same attention weights, a mean or a line")
plt.tight_layout()

# %%
# Bias and RMSE over repeated samples
# -----------------------------------
# 100 samples (``benchmarks/bench_local_linear.py`` runs 500): at the edges
# Nadaraya-Watson's error is mostly bias; local-linear's is several times smaller.
# In the interior, at the peak, both share the same curvature bias.
points = np.array([0.0, 0.25, 1.0])
errors = {"Nadaraya-Watson": [], "local-linear": []}
for _ in range(100):
    Xr = rng.uniform(0, 1, size=(200, 1))
    yr = truth(Xr[:, 0]) + 0.2 * rng.normal(size=200)
    q = points[:, None]
    errors["Nadaraya-Watson"].append(
        NadarayaWatsonRegressor(bandwidth=0.08).fit(Xr, yr).predict(q) - truth(points)
    )
    errors["local-linear"].append(
        LocalLinearRegressor(bandwidth=0.08).fit(Xr, yr).predict(q) - truth(points)
    )
for name, e in errors.items():
    e = np.array(e)
    bias, rmse = e.mean(axis=0), np.sqrt((e**2).mean(axis=0))
    cells = "  ".join(
        f"x={p:g}: bias {b:+.3f} RMSE {r:.3f}"
        for p, b, r in zip(points, bias, rmse, strict=True)
    )
    print(f"{name:16s} {cells}")

# %%
# The equivalent kernel
# ---------------------
# The local-linear prediction is still a weighted sum of the training targets,
# ``attention_weights(X) @ y``. At the edge its weights turn negative on the far
# side: the line through the rows is extended to the query.
order = np.argsort(X[:, 0])
fig, ax = plt.subplots(figsize=(6.5, 3.2))
for q in (0.0, 0.5):
    ax.plot(
        X[order, 0],
        nw.attention_weights([[q]])[0, order],
        label=f"Nadaraya-Watson, q={q:g}",
    )
    ax.plot(
        X[order, 0],
        ll.attention_weights([[q]])[0, order],
        "--",
        label=f"local-linear, q={q:g}",
    )
ax.axhline(0, color="0.5", lw=0.5)
ax.set_xlabel("training x")
ax.set_ylabel("weight")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
