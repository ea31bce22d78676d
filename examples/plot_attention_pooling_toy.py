"""
========================================================
Attention pooling on the Dive into Deep Learning problem
========================================================

The "Attention Pooling" chapter of *Dive into Deep Learning* fits

.. math:: y = 2 \\sin x + x^{0.8} + \\epsilon, \\qquad \\epsilon \\sim N(0, 0.5^2),

from 50 noisy samples with three kinds of attention pooling. Every query
(a test point :math:`x`) attends to the training inputs (the keys) and returns a
weighted average of the training targets (the values):

* **average pooling** gives every key the same weight, and predicts the mean of
  the targets everywhere;
* **non-parametric attention pooling** weighs keys by a Gaussian kernel of the
  distance, :math:`\\operatorname{softmax}_i(-(x - x_i)^2 / 2h^2)`: the
  Nadaraya--Watson estimator;
* **parametric attention pooling** learns the bandwidth :math:`h` from the data by
  minimising the leave-one-out error.
"""

# SPDX-License-Identifier: BSD-3-Clause

# %%
# The data
# --------
# 50 training inputs drawn uniformly on [0, 5] and sorted (so that the heatmaps
# below read like the chapter's), and a grid of test queries.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.dummy import DummyRegressor

from skattn import AttentionRegressor, AttentionWeightsDisplay, NadarayaWatsonRegressor
from skattn.functional import kernel_attention


def truth(x):
    return 2 * np.sin(x) + x**0.8


rng = np.random.default_rng(0)
n_train = 50
x_train = np.sort(rng.uniform(0, 5, n_train))
y_train = truth(x_train) + rng.normal(0.0, 0.5, n_train)
x_test = np.arange(0, 5, 0.1)
X_train, X_test = x_train.reshape(-1, 1), x_test.reshape(-1, 1)

# %%
# Three poolings
# --------------
# Average pooling is :class:`~sklearn.dummy.DummyRegressor`. The chapter's
# non-parametric pooling is a Gaussian kernel with :math:`h = 1`;
# :class:`~skattn.NadarayaWatsonRegressor` also offers rules of thumb and a
# leave-one-out search for :math:`h`. :class:`~skattn.AttentionRegressor` with
# ``metric="isotropic"`` learns the single bandwidth, the learnable :math:`w` of the
# chapter (:math:`w = 1/h`).
models = {
    "average pooling": DummyRegressor(),
    "non-parametric (h = 1)": NadarayaWatsonRegressor(bandwidth=1.0),
    "parametric (h learned)": AttentionRegressor(metric="isotropic"),
}
for model in models.values():
    model.fit(X_train, y_train)

learned_h = models["parametric (h learned)"].bandwidth_[0]
print(f"learned bandwidth h = {learned_h:.3f}")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
for ax, (name, model) in zip(axes, models.items(), strict=True):
    ax.plot(x_test, truth(x_test), label="truth")
    ax.plot(x_test, model.predict(X_test), label="prediction")
    ax.plot(x_train, y_train, "o", alpha=0.5, markersize=4, label="training data")
    mse = np.mean((model.predict(X_test) - truth(x_test)) ** 2)
    ax.set(title=f"{name}\nMSE vs truth {mse:.3f}", xlabel="x")
axes[0].set_ylabel("y")
axes[0].legend(loc="lower center")
fig.tight_layout()

# %%
# Attention weights
# -----------------
# Row :math:`q` of a heatmap holds the weights that test query :math:`q` gives to
# the 50 training inputs. With sorted inputs and queries, the weights of a kernel
# concentrate near the diagonal: each query looks at its neighbours. Average
# pooling spreads them evenly (the heatmap is flat); the learned bandwidth is
# narrower than :math:`h = 1`, so its band is sharper and the fit follows the
# curve more closely.
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
for ax, name in zip(axes, list(models)[1:], strict=True):
    AttentionWeightsDisplay.from_estimator(
        models[name], X_test, X_train=X_train, sort_by=0, ax=ax
    )
    ax.set_title(name)
fig.tight_layout()

# %%
# Why the row must be left out
# ----------------------------
# Learning :math:`h` by the training error would shrink it to zero: every training
# row would attend only to itself and reproduce its own noisy target. The
# leave-one-out error leaves each row out of its own keys, so a tiny bandwidth is
# punished. Here is that error against the bandwidth, with the learned minimum.
bandwidths = np.geomspace(0.05, 3, 60)
train_error, loo_error = [], []
for h in bandwidths:
    _, weights = kernel_attention(
        X_train, X_train, y_train, bandwidth=h, return_weights=True
    )
    train_error.append(np.mean((weights @ y_train - y_train) ** 2))
    np.fill_diagonal(weights, 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    loo_error.append(np.mean((weights @ y_train - y_train) ** 2))

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.loglog(bandwidths, train_error, label="training error (row kept)")
ax.loglog(bandwidths, loo_error, label="leave-one-out error")
ax.axvline(learned_h, color="k", linestyle="--", label=f"learned h = {learned_h:.2f}")
ax.set(xlabel="bandwidth h", ylabel="mean squared error")
ax.legend()
fig.tight_layout()
plt.show()
