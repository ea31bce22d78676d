"""Sphinx configuration for skattn's documentation.

Build offline with ``python -m sphinx -b html -W --keep-going docs docs/_build/html``
(``pip install ".[docs]"``). Nothing is fetched: there is no intersphinx.
"""

# SPDX-License-Identifier: BSD-3-Clause

import os

import matplotlib

import skattn

matplotlib.use("Agg")

project = "skattn"
author = "The skattn developers"
copyright = "2026, The skattn developers"
version = release = skattn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # MathJax copied into _static: formulas render with no network
    # (docs/check_offline.py checks that the pages load nothing remote)
    "sphinx-mathjax-offline",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
# benchmarks.rst includes benchmarks/README.md, whose sections start at "##" below
# the page's own title.
suppress_warnings = ["myst.header"]
exclude_patterns = ["_build", "generated/*.examples", "auto_examples/*.ipynb"]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

html_theme = "pydata_sphinx_theme"
html_title = "skattn"
html_theme_options = {"navigation_with_keys": False}

# The benchmark plots read the tables of benchmarks/README.md: one source for both.
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Only plot_*.py run; quickstart.py is the README's command and is shown on the
    # getting-started page instead.
    "filename_pattern": "/plot_",
    "ignore_pattern": r"quickstart\.py",
    "doc_module": ("skattn",),
    "backreferences_dir": os.path.join("generated", "backreferences"),
    "reference_url": {"skattn": None},
    "download_all_examples": False,
    "show_memory": False,
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
    # the timing pages load jQuery and DataTables from CDNs
    "write_computation_times": False,
}
