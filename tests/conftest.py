# SPDX-License-Identifier: BSD-3-Clause

import os

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("default", max_examples=60)
# CI: the same examples on every run, so that a failure is a change of the code
settings.register_profile("ci", max_examples=60, derandomize=True, deadline=None)
settings.register_profile("thorough", max_examples=1000)
settings.load_profile(
    os.environ.get(
        "SKATTN_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"
    )
)


@pytest.fixture
def global_random_seed():
    """A seed read from ``SKATTN_TESTS_GLOBAL_RANDOM_SEED`` (default 42)."""
    return int(os.environ.get("SKATTN_TESTS_GLOBAL_RANDOM_SEED", "42"))


@pytest.fixture
def rng(global_random_seed):
    return np.random.default_rng(global_random_seed)
