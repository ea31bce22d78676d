"""verbose: the progress lines of every long fit, captured."""

# SPDX-License-Identifier: BSD-3-Clause

import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skattn import (
    AttentionClassifier,
    AttentionRegressor,
    LocalLinearRegressor,
    NadarayaWatsonClassifier,
    NadarayaWatsonRegressor,
)

TIME = re.compile(r"time (\d+\.\d\d)s")


def _times(lines):
    return [float(TIME.search(line).group(1)) for line in lines]


@pytest.fixture
def data(rng):
    X = rng.normal(size=(200, 3))
    return X, np.sin(X[:, 0]) + 0.1 * rng.normal(size=200)


def _fit(model, X, y, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return capsys.readouterr().out.strip().splitlines()


@pytest.mark.parametrize("cls", [NadarayaWatsonRegressor, NadarayaWatsonClassifier])
def test_nadaraya_watson_cv_search(data, capsys, cls):
    X, y = data
    target = y > 0 if cls is NadarayaWatsonClassifier else y
    lines = _fit(cls(bandwidth="cv", verbose=1), X, target, capsys)
    name = cls.__name__
    assert all(line.startswith(f"[{name}] ") for line in lines)
    candidates = [line for line in lines if "cv candidate" in line]
    assert len(candidates) >= 13  # the grid, then the Brent refinement
    assert all("factor" in line and "loss" in line for line in candidates)
    assert "cv chose the factor" in lines[-1]
    assert _times(lines) == sorted(_times(lines))
    # other bandwidths need no search: silent; verbose=0: silent
    assert _fit(cls(verbose=1), X, target, capsys) == []
    assert _fit(cls(bandwidth="cv"), X, target, capsys) == []


def test_local_linear_cv(data, capsys):
    X, y = data
    lines = _fit(LocalLinearRegressor(verbose=1), X, y, capsys)
    iterations = [line for line in lines if "cv iter" in line]
    assert iterations[0].startswith("[LocalLinearRegressor] cv iter    0/100")
    assert "left" in iterations[1]
    assert re.search(r"cv stopped after \d+ iterations: converged", lines[-1])
    lines = _fit(LocalLinearRegressor("epanechnikov", verbose=1), X, y, capsys)
    assert sum("cv candidate" in line for line in lines) >= 9
    assert "cv chose the factor" in lines[-1]


def test_learner_lines_count_the_start_up_search(data, capsys):
    X, y = data
    model = AttentionRegressor(
        metric="diagonal", verbose=1, max_iter=4, boosting=False, local_linear=False
    )
    lines = _fit(model, X, y, capsys)
    first_iter = next(i for i, line in enumerate(lines) if " iter " in line)
    assert first_iter > 0 and "cv candidate" in lines[0]  # init="cv" first
    assert _times(lines)[first_iter] >= _times(lines)[first_iter - 1]
    assert "iter    0/4" in lines[first_iter] and "iter    4/4" in lines[-2]
    assert "at most" in lines[first_iter + 1]
    assert "without converging" in lines[-1] and "ITERATIONS" in lines[-1]


def test_learner_early_stopping_and_minibatch_reasons(data, capsys):
    X, y = data
    model = AttentionRegressor(verbose=1, metric="full", boosting=False)
    lines = _fit(model, X, y, capsys)
    assert any("held-out loss" in line for line in lines)
    assert re.search(
        r"(early stopping after \d+ iterations.*kept iteration \d+|converged)",
        lines[-1],
    )
    model = AttentionClassifier(verbose=1, batch_size=32, max_iter=15, random_state=0)
    lines = _fit(model, X, y > 0, capsys)
    n_steps = int(re.search(r"stopped after (\d+) mini-batch steps", lines[-1])[1])
    assert f"step {n_steps:4d}/15" in lines[-2]
    assert ("max_iter=15 reached" in lines[-1]) == (n_steps == 15)
    model = AttentionRegressor(
        verbose=1, batch_size=32, max_iter=2000, tol=0.5, random_state=0
    )
    lines = _fit(model, X, y, capsys)
    assert "smoothed loss improved by less than tol=0.5" in lines[-1]


def test_pooling_lines_name_the_transformer_and_the_head(data, capsys):
    from skattn import AttentionPooling

    X, y = data
    model = AttentionPooling(
        passthrough=False,
        bandwidth="cv",
        bandwidth_scales=[1.0, 2.0],
        learn_bandwidth=True,
        verbose=1,
    )
    lines = _fit(model, X, y, capsys)
    assert lines and all(line.startswith("[AttentionPooling head ") for line in lines)
    assert any("cv candidate" in line for line in lines)
    assert any(line.startswith("[AttentionPooling head 1] iter") for line in lines)
    assert not any("AttentionRegressor" in line for line in lines)
    assert (
        _fit(
            AttentionPooling(passthrough=False, learn_bandwidth=False, verbose=1),
            X,
            y,
            capsys,
        )
        == []
    )  # Scott: no search
