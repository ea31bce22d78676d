"""
==========================================================
Prediction intervals on noise that grows with x
==========================================================

A Nadaraya-Watson smoother knows its leave-one-out predictions at every query for
free (leaving a training row out removes one term from a weighted sum and its
normaliser), so :meth:`~skattn.NadarayaWatsonRegressor.predict_interval` gives the
exact jackknife+ interval at the cost of one prediction, where wrapping the model
in a conformal library refits it once per row. Two other methods share the call:
``method="cv+"`` leaves 10 folds out instead of single rows, and
``method="quantile"`` takes the quantiles of the attention-weighted training
targets at each query, which follow noise whose spread varies with :math:`x`.
"""

# SPDX-License-Identifier: BSD-3-Clause

# %%
# Data: a sine with noise that grows with x
# -----------------------------------------
# :math:`y = \sin x + (0.1 + 0.5 |x|)\,\varepsilon` on :math:`[-3, 3]`, 500
# training rows and 5,000 new ones to measure coverage.
import matplotlib.pyplot as plt
import numpy as np

from skattn import NadarayaWatsonRegressor

rng = np.random.default_rng(0)


def sample(n):
    X = rng.uniform(-3, 3, size=(n, 1))
    y = np.sin(X[:, 0]) + (0.1 + 0.5 * np.abs(X[:, 0])) * rng.normal(size=n)
    return X, y


X, y = sample(500)
X_test, y_test = sample(5000)
grid = np.linspace(-3, 3, 301)[:, None]
model = NadarayaWatsonRegressor(bandwidth="cv").fit(X, y)

# %%
# Three methods, 90 % intervals
# -----------------------------
# jackknife+ and cv+ add the same residual quantile everywhere (about, since each
# row's leave-one-out prediction at the query moves the bounds a little); the
# quantile method widens where the noise is large and narrows where it is small.
methods = ["jackknife+", "cv+", "quantile"]
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), sharey=True)
for ax, method in zip(axes, methods, strict=True):
    bounds = model.predict_interval(grid, coverage=0.9, method=method)
    test_bounds = model.predict_interval(X_test, coverage=0.9, method=method)
    inside = (y_test >= test_bounds[:, 0]) & (y_test <= test_bounds[:, 1])
    ax.scatter(X[:, 0], y, s=4, color="0.7")
    ax.fill_between(grid[:, 0], bounds[:, 0], bounds[:, 1], alpha=0.3)
    ax.plot(grid[:, 0], model.predict(grid), lw=1)
    ax.set_title(f"{method}: coverage {inside.mean():.3f}", fontsize=9)
    ax.set_xlabel("x")
axes[0].set_ylabel("y")
plt.tight_layout()

# %%
# Coverage along x
# ----------------
# All three cover about 90 % of new points overall. Jackknife+ guarantees that
# marginal coverage, not coverage at each x: with one width everywhere it
# over-covers the quiet centre and under-covers the noisy edges. The quantile
# method has no finite-sample guarantee, but its coverage varies much less with x.
bins = np.linspace(-3, 3, 13)
centres = (bins[1:] + bins[:-1]) / 2
where = np.digitize(X_test[:, 0], bins[1:-1])
fig, ax = plt.subplots(figsize=(6, 3.2))
for method in methods:
    test_bounds = model.predict_interval(X_test, coverage=0.9, method=method)
    inside = (y_test >= test_bounds[:, 0]) & (y_test <= test_bounds[:, 1])
    per_bin = np.bincount(where, weights=inside) / np.bincount(where)
    ax.plot(centres, per_bin, marker="o", ms=3, label=method)
ax.axhline(0.9, color="k", lw=0.8, ls="--")
ax.set_xlabel("x")
ax.set_ylabel("coverage in the bin")
ax.legend(fontsize=8)
plt.tight_layout()

# %%
# Quantiles
# ---------
# :meth:`~skattn.NadarayaWatsonRegressor.predict_quantiles` returns any quantiles
# of the same methods' predictive distributions (for jackknife+, those of the
# leave-one-out predictions plus the signed leave-one-out residuals).
quantiles = model.predict_quantiles(grid, quantiles=[0.1, 0.5, 0.9], method="quantile")
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.scatter(X[:, 0], y, s=4, color="0.7")
for k, label in enumerate(["10 %", "50 %", "90 %"]):
    ax.plot(grid[:, 0], quantiles[:, k], label=label)
ax.set_xlabel("x")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
