"""The benchmarks page of the docs draws its figures from benchmarks/README.md."""

# SPDX-License-Identifier: BSD-3-Clause

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

PLOT_TABLES = Path(__file__).resolve().parents[1] / "benchmarks" / "plot_tables.py"


@pytest.fixture(scope="module")
def plot_tables():
    spec = importlib.util.spec_from_file_location("plot_tables", PLOT_TABLES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_read_tables(plot_tables, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Benchmarks\n\n## `bench_a.py`\n\ntext | not a table\n\n"
        "| a | b |\n|---|---|\n| 1 | x y |\n| 2 |  |\n\n"
        "## `bench_b.py`\n\n| c |\n|:-:|\n| 3 |\n"
    )
    tables = plot_tables.read_tables(readme)
    assert tables == {
        "bench_a.py": [{"a": "1", "b": "x y"}, {"a": "2", "b": ""}],
        "bench_b.py": [{"c": "3"}],
    }


@pytest.mark.parametrize(
    "figure", ["regression_panel", "classifier_panel", "pooling_panel"]
)
def test_figures_from_the_readme(plot_tables, figure):
    import numpy as np

    fig = getattr(plot_tables, figure)()
    bars = [patch for ax in fig.axes for patch in ax.patches]
    widths = np.array([bar.get_width() for bar in bars])
    # Every bar comes from a number of the README: none is missing (NaN).
    assert len(bars) >= 10 and np.all(np.isfinite(widths))
