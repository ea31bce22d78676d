"""Parameter sets with which every estimator is checked."""

# SPDX-License-Identifier: BSD-3-Clause

from skattn import NadarayaWatsonRegressor

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
    ],
}


def instances():
    """One estimator per parameter set."""
    return [cls(**params) for cls, sets in INIT_PARAMS.items() for params in sets]
