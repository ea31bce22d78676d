"""Parameter sets with which every estimator is checked."""

# SPDX-License-Identifier: BSD-3-Clause

from skattn import (
    AttentionClassifier,
    AttentionPooling,
    AttentionRegressor,
    LocalLinearRegressor,
    NadarayaWatsonClassifier,
    NadarayaWatsonRegressor,
)

INIT_PARAMS = {
    NadarayaWatsonRegressor: [
        {},
        {"bandwidth": "silverman"},
        {"bandwidth": "cv"},
        {"bandwidth": 1.5},
        {"kernel": "tophat", "bandwidth": "cv"},
        {"kernel": "epanechnikov"},
        {"kernel": "exponential", "bandwidth": "cv"},
        {"kernel": "linear", "bandwidth": 2.0},
        {"kernel": "cosine", "n_jobs": 2},
        {"n_neighbors": 5},
        {"kernel": "epanechnikov", "n_neighbors": "radius", "n_jobs": 2},
    ],
    LocalLinearRegressor: [
        {},
        {"bandwidth": "scott", "ridge": 0.0},
        {"kernel": "exponential", "bandwidth": 1.5, "ridge": 1e-3},
        {"kernel": "epanechnikov", "bandwidth": "cv"},
        {"kernel": "tophat", "bandwidth": 2.0, "n_neighbors": "radius"},
        {"n_neighbors": 5, "n_jobs": 2},
    ],
    AttentionRegressor: [
        {"max_iter": 20, "tol": 1e-8},
        {"metric": "isotropic", "init": "scott", "max_iter": 20, "tol": 1e-8},
        {"metric": "full", "max_iter": 20, "tol": 1e-8},
        {"kernel": "exponential", "alpha": 0.01, "max_iter": 20, "tol": 1e-8},
        {"batch_size": 16, "max_iter": 30, "random_state": 0},
        {"max_iter": 20, "n_neighbors": 5},
        {"batch_size": 16, "n_candidates": 0.5, "max_iter": 30, "random_state": 0},
        {"boosting": True, "max_iter": 20},
        {"local_linear": True, "max_iter": 20},
    ],
    NadarayaWatsonClassifier: [
        {},
        {"bandwidth": "cv"},
        {"kernel": "tophat", "bandwidth": "cv"},
        {"kernel": "epanechnikov", "bandwidth": 1.5, "class_weight": "balanced"},
        {"bandwidth": "silverman", "n_jobs": 2},
        {"n_neighbors": 5, "bandwidth": "cv"},
        {"kernel": "tophat", "n_neighbors": "radius", "class_weight": "balanced"},
    ],
    AttentionClassifier: [
        {"max_iter": 20, "tol": 1e-8},
        {"metric": "isotropic", "init": "scott", "max_iter": 20, "tol": 1e-8},
        {"metric": "full", "alpha": 1e-3, "max_iter": 20, "tol": 1e-8},
        {"kernel": "exponential", "class_weight": "balanced", "max_iter": 20},
        {"batch_size": 16, "max_iter": 30, "random_state": 0},
        {"metric": "full", "alpha": 1e-3, "max_iter": 20, "n_neighbors": 5},
    ],
    AttentionPooling: [
        {},
        {"values": "features"},
        {
            "values": "both",
            "bandwidth": ["scott", 1.0],
            "return_entropy": True,
            "return_n_effective": True,
            "learn_bandwidth": False,
            "passthrough": False,
        },
        {"kernel": "epanechnikov", "bandwidth": "cv", "cv": 3},
        {"learn_bandwidth": True, "bandwidth_scales": [0.5, 2.0]},
        {"target_type": "continuous", "n_jobs": 2, "learn_bandwidth": False},
        {
            "values": "both",
            "return_n_effective": True,
            "n_neighbors": 5,
            "learn_bandwidth": False,
        },
        {"kernel": "tophat", "bandwidth": 1.0, "n_neighbors": "radius"},
    ],
}


def instances():
    """One estimator per parameter set."""
    return [cls(**params) for cls, sets in INIT_PARAMS.items() for params in sets]
