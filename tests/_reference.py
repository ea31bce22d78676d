"""Plain-loop references, written from the published formulas, independent of skattn."""

# SPDX-License-Identifier: BSD-3-Clause

import math

import numpy as np


def kernel_value(kernel, u):
    """K(u) for a scaled distance u >= 0, with K(0) = 1 (KernelDensity's shapes)."""
    if kernel == "gaussian":
        return math.exp(-0.5 * u * u)
    if kernel == "exponential":
        return math.exp(-u)
    if u >= 1.0:
        return 0.0
    if kernel == "tophat":
        return 1.0
    if kernel == "epanechnikov":
        return 1.0 - u * u
    if kernel == "linear":
        return 1.0 - u
    if kernel == "cosine":
        return math.cos(math.pi * u / 2.0)
    raise ValueError(kernel)


def nadaraya_watson(X_train, y_train, X_query, kernel, bandwidth, sample_weight=None):
    """f(q) = sum_i w_i K(|(q - x_i) / h|) y_i / sum_j w_j K(|(q - x_j) / h|), by loops."""
    n, d = X_train.shape
    h = np.broadcast_to(np.asarray(bandwidth, dtype=float), (d,))
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    Y = np.asarray(y_train, dtype=float).reshape(n, -1)
    out = np.zeros((len(X_query), Y.shape[1]))
    weights = np.zeros((len(X_query), n))
    for a in range(len(X_query)):
        for i in range(n):
            u = math.sqrt(
                sum(((X_query[a, k] - X_train[i, k]) / h[k]) ** 2 for k in range(d))
            )
            weights[a, i] = w[i] * kernel_value(kernel, u)
        total = weights[a].sum()
        weights[a] /= total
        for i in range(n):
            out[a] += weights[a, i] * Y[i]
    return out, weights


def leave_one_out(X_train, y_train, kernel, bandwidth, sample_weight):
    """Leave-one-out predictions by loops: row i keeps w_i - 1 copies of itself."""
    w = np.asarray(sample_weight, dtype=float)
    Y = np.asarray(y_train, dtype=float).reshape(len(X_train), -1)
    out = np.zeros_like(Y)
    for i in range(len(X_train)):
        w_i = w.copy()
        w_i[i] -= 1.0
        keep = w_i > 0
        pred, _ = nadaraya_watson(
            X_train[keep], Y[keep], X_train[i : i + 1], kernel, bandwidth, w_i[keep]
        )
        out[i] = pred[0]
    return out


def local_linear(
    X_train,
    y_train,
    X_query,
    kernel,
    bandwidth,
    sample_weight=None,
    ridge=0.0,
    variance=None,
):
    """The local-linear fit by loops: at each query, weighted least squares of y on
    [1, x - q] with the kernel weights, the slopes penalised by ridge * sum_k
    (s_k b_k)^2 (s^2 the weighted variances, ddof=1, or ``variance`` given);
    returns the intercepts and slopes. The system is solved as it stands (no
    pseudo-inverse): use it where every local design is well determined."""
    n, d = X_train.shape
    h = np.broadcast_to(np.asarray(bandwidth, dtype=float), (d,))
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
    Y = np.asarray(y_train, dtype=float).reshape(n, -1)
    mean = (w[:, None] * X_train).sum(axis=0) / w.sum()
    var = (w[:, None] * (X_train - mean) ** 2).sum(axis=0) / (w.sum() - 1.0)
    if variance is not None:
        var = np.asarray(variance, dtype=float)
    intercepts = np.zeros((len(X_query), Y.shape[1]))
    slopes = np.zeros((len(X_query), d, Y.shape[1]))
    for a in range(len(X_query)):
        q = X_query[a]
        k = np.zeros(n)
        for i in range(n):
            u = math.sqrt(sum(((q[j] - X_train[i, j]) / h[j]) ** 2 for j in range(d)))
            k[i] = w[i] * kernel_value(kernel, u)
        k /= k.sum()
        design = np.hstack([np.ones((n, 1)), X_train - q])
        M = np.zeros((d + 1, d + 1))
        V = np.zeros((d + 1, Y.shape[1]))
        for i in range(n):
            M += k[i] * np.outer(design[i], design[i])
            V += k[i] * np.outer(design[i], Y[i])
        M[1:, 1:] += ridge * np.diag(var)
        beta = np.linalg.solve(M, V)
        intercepts[a] = beta[0]
        slopes[a] = beta[1:]
    return intercepts, slopes


def jackknife_plus_bounds(left_out, residuals, w, coverage):
    """Jackknife+ bounds (Barber et al., 2021) from left-out predictions
    (n_queries, n_rows) and absolute residuals, each row counted ``w_j`` times,
    by sorting lists; infinite beyond the ranks."""
    alpha = 1 - coverage
    n = int(w.sum())
    bounds = np.empty((left_out.shape[0], 2))
    for q in range(left_out.shape[0]):
        low = sorted(
            v
            for j in range(len(w))
            for v in [left_out[q, j] - residuals[j]] * int(w[j])
        )
        high = sorted(
            v
            for j in range(len(w))
            for v in [left_out[q, j] + residuals[j]] * int(w[j])
        )
        k_low = math.floor(alpha * (n + 1))
        k_high = math.ceil((1 - alpha) * (n + 1))
        bounds[q, 0] = -np.inf if k_low < 1 else low[k_low - 1]
        bounds[q, 1] = np.inf if k_high > n else high[k_high - 1]
    return bounds
