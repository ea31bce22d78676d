# SPDX-License-Identifier: BSD-3-Clause
"""The engine's threading policy: every core by default, BLAS on one thread inside,
n_jobs, joblib contexts and threadpoolctl limits obeyed, and the pools' limits
restored afterwards."""

import threading

import numpy as np
import pytest
from joblib import cpu_count, parallel_config
from threadpoolctl import ThreadpoolController, threadpool_limits

import skattn._engine as engine
from skattn import AttentionRegressor, NadarayaWatsonRegressor


def _pool_threads():
    return [info["num_threads"] for info in ThreadpoolController().info()]


def test_default_uses_every_core_within_the_thread_limits():
    assert engine.engine_threads(None) == min(cpu_count(), min(_pool_threads()))
    with threadpool_limits(limits=1):
        assert engine.engine_threads(None) == 1
    with parallel_config(n_jobs=3):
        assert engine.engine_threads(None) == 3
    with parallel_config(backend="sequential"):
        assert engine.engine_threads(4) == 1
    assert engine.engine_threads(1) == 1
    assert engine.engine_threads(3) == 3
    assert engine.engine_threads(-1) == cpu_count()


def test_blas_runs_on_one_thread_inside_and_is_restored():
    before = _pool_threads()
    seen = []

    def record(s):
        seen.append(ThreadpoolController().select(user_api="blas").info())
        return s.stop - s.start

    for n_jobs in (1, 2, None):
        seen.clear()
        assert sum(engine.map_slices(record, 1000, 10, n_jobs)) == 1000
        assert all(info["num_threads"] == 1 for part in seen for info in part)
        assert _pool_threads() == before
    # nested and concurrent uses share one limit and restore it at the end
    with engine._one_thread(("blas", "openmp")):
        with engine._one_thread(("blas",)):
            pass
        assert set(_pool_threads()) == {1}
    assert _pool_threads() == before
    errors = []

    def predict():
        try:
            X = np.arange(600.0).reshape(-1, 2)
            NadarayaWatsonRegressor(bandwidth=5.0).fit(X, X[:, 0]).predict(X)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=predict) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _pool_threads() == before


def test_sums_over_slices_do_not_depend_on_the_threads():
    tasks = {n: engine._task_slices(5000, 37) for n in (1, 2, 8)}
    assert tasks[1] == tasks[2] == tasks[8]
    slices = tasks[1]
    assert len(slices) <= engine._MAX_TASKS
    assert slices[0].start == 0 and slices[-1].stop == 5000
    assert all(s.stop == t.start for s, t in zip(slices, slices[1:], strict=False))
    assert all((s.stop - s.start) % 37 == 0 for s in slices[:-1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_default_fit_and_predict_equal_explicit_threads(rng, n_jobs):
    X = rng.normal(size=(300, 3))
    y = X[:, 0] ** 2 + rng.normal(scale=0.1, size=300)
    default = AttentionRegressor(max_iter=5).fit(X, y)
    other = AttentionRegressor(max_iter=5, n_jobs=n_jobs).fit(X, y)
    np.testing.assert_array_equal(default.bandwidth_, other.bandwidth_)
    np.testing.assert_array_equal(default.predict(X), other.predict(X))
    with threadpool_limits(limits=1):
        limited = AttentionRegressor(max_iter=5).fit(X, y)
    np.testing.assert_array_equal(default.bandwidth_, limited.bandwidth_)


def test_fit_runs_blas_on_one_thread_and_counts_the_users_limits(monkeypatch):
    before = _pool_threads()
    seen = {}
    original = engine.engine_threads

    def spy(n_jobs):
        seen["blas"] = [
            info["num_threads"]
            for info in ThreadpoolController().select(user_api="blas").info()
        ]
        seen["threads"] = original(n_jobs)
        return seen["threads"]

    monkeypatch.setattr(engine, "engine_threads", spy)
    X = np.arange(400.0).reshape(-1, 2)
    NadarayaWatsonRegressor(bandwidth="cv").fit(X, X[:, 0])
    # between the engine's maps BLAS is held at one thread, yet the engine still
    # takes every core: the limit is its own, not the user's
    assert set(seen["blas"]) <= {1}
    assert seen["threads"] == min(cpu_count(), min(before))
    assert _pool_threads() == before
    with threadpool_limits(limits=1):
        NadarayaWatsonRegressor(bandwidth="cv").fit(X, X[:, 0])
    assert seen["threads"] == 1
    assert _pool_threads() == before


def test_no_nested_threads_inside_a_task():
    inner = engine.map_slices(lambda s: engine.engine_threads(4), 100, 10, 2)
    assert set(inner) == {1}
    assert engine.engine_threads(4) == 4


@pytest.mark.skipif(cpu_count() < 2, reason="needs two cores")
def test_a_site_whose_threads_do_not_pay_runs_on_one_thread(monkeypatch):
    import time

    monkeypatch.setattr(engine, "_sites", {})
    idents = []

    def idle(s):  # no CPU time: the threads cannot have paid
        idents.append(threading.get_ident())
        time.sleep(0.002)
        return s.stop - s.start

    def call():
        idents.clear()
        return sum(engine.map_slices(idle, 400, 10, None))

    assert call() == 400  # first call on the threads, measured
    assert any(i != threading.get_ident() for i in idents)
    for _ in range(engine._SINGLE_CALLS):
        assert call() == 400
        assert set(idents) == {threading.get_ident()}
    call()  # tried on the threads again
    assert any(i != threading.get_ident() for i in idents)
    # an explicit n_jobs is obeyed whatever the site's record
    idents.clear()
    engine.map_slices(idle, 400, 10, 2)
    assert any(i != threading.get_ident() for i in idents)
