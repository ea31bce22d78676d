"""What the benchmark scripts share: a progress line per result as it comes, and the
final Markdown table that benchmarks/README.md records.

The scripts run as ``python benchmarks/bench_*.py``, so this folder is on their path.
"""

# SPDX-License-Identifier: BSD-3-Clause

import time

ROWS = []


def metric_learn_mlkr():
    """metric-learn's MLKR, with its validation calls adapted to scikit-learn >= 1.8.

    metric-learn 0.7.0 (its latest release) passes ``force_all_finite``, which
    scikit-learn 1.8 renamed to ``ensure_all_finite``; the shim renames the argument.
    """
    import metric_learn._util as util
    from metric_learn import MLKR

    def renamed(func):
        def call(*args, **kwargs):
            if "force_all_finite" in kwargs:
                kwargs["ensure_all_finite"] = kwargs.pop("force_all_finite")
            return func(*args, **kwargs)

        return call

    if not getattr(util, "_skattn_shim", False):
        util.check_X_y = renamed(util.check_X_y)
        util.check_array = renamed(util.check_array)
        util._skattn_shim = True
    return MLKR


def best_time(func, repeat=3):
    """The fastest of ``repeat`` calls of ``func``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def report(section, what, seconds=None, ratio=None, value=None, target=None):
    """Record a row of the standard table and print it at once."""
    ROWS.append((section, what, seconds, ratio, value, target))
    parts = [f"[{section}] {what}"]
    if seconds is not None:
        parts.append(f"{seconds:.3f} s")
    for extra in (ratio, value):
        if extra is not None:
            parts.append(extra)
    print("  ".join(parts), flush=True)


def print_table(header, rows):
    """Print a Markdown table (after a blank line); cells are strings."""
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


def print_report():
    """The standard table of every :func:`report`-ed row."""
    print_table(
        ["section", "what", "seconds", "ratio", "value", "target"],
        [
            [
                section,
                what,
                "" if seconds is None else f"{seconds:.3f}",
                ratio or "",
                value or "",
                target or "",
            ]
            for section, what, seconds, ratio, value, target in ROWS
        ],
    )
