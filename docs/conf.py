"""Sphinx configuration for skattn's documentation.

Build offline with ``python -m sphinx -b html docs docs/_build/html``.
"""

# SPDX-License-Identifier: BSD-3-Clause

import skattn

project = "skattn"
author = "The skattn developers"
copyright = "2026, The skattn developers"
version = release = skattn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "generated/*.examples"]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
html_theme = "pydata_sphinx_theme"
html_title = "skattn"
