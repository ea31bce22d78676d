"""Figures of the benchmark results, drawn from the tables of benchmarks/README.md.

The tables are the single record of the last runs; this module only reads them. The
documentation's benchmarks page calls one function per figure through matplotlib's
``plot`` directive (which runs this file as ``__main__``, so it has no main block).
"""

# SPDX-License-Identifier: BSD-3-Clause

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

# matplotlib's plot directive runs this code in this folder without ``__file__``.
HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()
README = HERE / "README.md"


def read_tables(path=README):
    """Rows of the Markdown tables under each ``## `script.py``` heading.

    Returns a dict mapping the script's name to a list of dicts, one per table row,
    keyed by the table's header cells.
    """
    tables, section, header = {}, None, None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## `([^`]+)`", line)
        if heading:
            section, header = heading.group(1), None
            tables[section] = []
            continue
        if section is None or not line.startswith("|"):
            header = None if not line.startswith("|") else header
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
        elif not set("".join(cells)) <= set("-: "):
            tables[section].append(dict(zip(header, cells, strict=True)))
    return tables


def _mean_sd(text):
    """``"R2 0.443 +- 0.084"`` -> (0.443, 0.084)."""
    match = re.search(r"R2 (-?[\d.]+) \+- ([\d.]+)", text)
    if match is None:
        raise ValueError(f"no 'R2 mean +- sd' in {text!r}")
    return float(match.group(1)), float(match.group(2))


def _grouped_bars(ax, groups, series, values, errors=None):
    """Horizontal bars: one block per group, one bar per series."""
    height = 0.8 / len(series)
    for k, name in enumerate(series):
        positions = np.arange(len(groups)) + (k - (len(series) - 1) / 2) * height
        ax.barh(
            positions,
            values[:, k],
            height=height,
            xerr=None if errors is None else errors[:, k],
            label=name,
            color=f"C{k}",
        )
    ax.set_yticks(np.arange(len(groups)), labels=groups)
    ax.invert_yaxis()


DEVELOPMENT_PANEL_MODELS = [
    "AttentionRegressor()",
    "LocalLinear(cv)",
    "NW(cv)",
    "KNN tuned",
    "RidgeCV",
    "HGB",
    "RF(300)",
]


def development_panel():
    """5-fold R² of the development panel (``bench_panel.py``): every model with
    its defaults, per data set."""
    rows = [
        r
        for r in read_tables()["bench_panel.py"]
        if "AttentionRegressor()" in r and r["data set"] != "mean"
    ]
    datasets = [r["data set"] for r in rows]
    values = np.full((len(rows), len(DEVELOPMENT_PANEL_MODELS)), np.nan)
    for i, row in enumerate(rows):
        for k, model in enumerate(DEVELOPMENT_PANEL_MODELS):
            cell = row.get(model, "")
            if cell:
                values[i, k] = float(cell.split()[0])
    fig, ax = plt.subplots(figsize=(9, 8), layout="constrained")
    _grouped_bars(ax, datasets, DEVELOPMENT_PANEL_MODELS, values)
    ax.set(xlabel="5-fold R² (higher is better)", xlim=(0.0, 1.0))
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


REGRESSION_MODELS = {
    "AttentionRegressor(diagonal)": "AttentionRegressor(diagonal)",
    "AttentionRegressor(full, alpha=1e-2)": "AttentionRegressor(full, alpha=1e-2)",
    "NadarayaWatsonRegressor(cv)": "NadarayaWatsonRegressor(cv)",
    "KNeighborsRegressor tuned": "KNeighborsRegressor tuned",
    "MLKR + Gaussian NW": "MLKR + Gaussian NW",
    "statsmodels KernelReg(lc, cv_ls)": "statsmodels KernelReg",
    "GaussianProcessRegressor(ARD RBF)": "GaussianProcessRegressor (ARD)",
}


def regression_panel():
    """5-fold R² of the regression panel, per dataset and model."""
    rows = read_tables()["bench_attention_regressor.py"]
    panel = [r for r in rows if re.match(r"panel (?!summary)", r["section"])]
    datasets = list(dict.fromkeys(r["section"].split()[1] for r in panel))
    values = np.full((len(datasets), len(REGRESSION_MODELS)), np.nan)
    errors = np.full_like(values, np.nan)
    for row in panel:
        if row["what"] in REGRESSION_MODELS:
            i = datasets.index(row["section"].split()[1])
            k = list(REGRESSION_MODELS).index(row["what"])
            values[i, k], errors[i, k] = _mean_sd(row["value"])
    fig, ax = plt.subplots(figsize=(9, 6), layout="constrained")
    _grouped_bars(ax, datasets, list(REGRESSION_MODELS.values()), values, errors)
    ax.set(xlabel="5-fold R² (higher is better)", xlim=(-0.2, 1.0))
    ax.axvline(0, color="k", linewidth=0.5)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


CLASSIFIER_MODELS = [
    "AttentionClassifier tuned for log loss",
    "AttentionClassifier(full)",
    "NadarayaWatsonClassifier(cv)",
    "KNN tuned for log loss",
    "NCA + KNN tuned for log loss",
    "LogisticRegression",
]


def classifier_panel():
    """5-fold log loss per dataset and classifier."""
    rows = read_tables()["bench_classifiers.py"]
    rows = [r for r in rows if r["data"] != "summary"]
    datasets = list(dict.fromkeys(r["data"].split()[0] for r in rows))
    values = np.full((len(datasets), len(CLASSIFIER_MODELS)), np.nan)
    for row in rows:
        if row["model"] in CLASSIFIER_MODELS:
            i = datasets.index(row["data"].split()[0])
            values[i, CLASSIFIER_MODELS.index(row["model"])] = float(row["log loss"])
    fig, ax = plt.subplots(figsize=(9, 5.5), layout="constrained")
    _grouped_bars(ax, datasets, CLASSIFIER_MODELS, values)
    ax.set(xlabel="5-fold log loss (lower is better)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def pooling_panel():
    """Paired change in R² from adding attention-pooled features."""
    rows = read_tables()["bench_attention_pooling.py"]
    labels, values, errors = [], [], []
    for row in rows:
        match = re.match(
            r"([+-][\d.]+) \+- ([\d.]+) vs (.+)", row["vs baseline (paired, +- SE)"]
        )
        if match:
            labels.append(f"{row['data'].split()[0]}: {row['model']}")
            values.append(float(match.group(1)))
            errors.append(float(match.group(2)))
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(labels) + 1.2), layout="constrained")
    positions = np.arange(len(labels))
    colors = ["C2" if v >= 0 else "C3" for v in values]
    ax.barh(positions, values, xerr=errors, color=colors)
    ax.set_yticks(positions, labels=labels, fontsize="x-small")
    ax.invert_yaxis()
    ax.axvline(0, color="k", linewidth=0.5)
    ax.set(xlabel="change in 5-fold R² over the model alone (± paired SE)")
    return fig
