# SPDX-License-Identifier: BSD-3-Clause

import os

import numpy as np
import pytest


@pytest.fixture
def global_random_seed():
    """A seed read from ``SKATTN_TESTS_GLOBAL_RANDOM_SEED`` (default 42)."""
    return int(os.environ.get("SKATTN_TESTS_GLOBAL_RANDOM_SEED", "42"))


@pytest.fixture
def rng(global_random_seed):
    return np.random.default_rng(global_random_seed)
