"""docs/check_offline.py, the check CI runs on the built documentation, can fail."""

# SPDX-License-Identifier: BSD-3-Clause

import importlib.util
from pathlib import Path

CHECK = Path(__file__).resolve().parents[1] / "docs" / "check_offline.py"


def _check():
    spec = importlib.util.spec_from_file_location("check_offline", CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_remote_resources_are_found(tmp_path):
    check = _check()
    (tmp_path / "_static" / "mathjax").mkdir(parents=True)
    (tmp_path / "_static" / "mathjax" / "tex-chtml.js").write_text("")
    page = tmp_path / "index.html"
    page.write_text(
        '<a href="https://example.org">a link is fine</a>'
        '<script src="_static/mathjax/tex-chtml.js"></script>'
    )
    assert check.problems(tmp_path) == []
    page.write_text(
        '<script defer src="https://cdn.example.org/mathjax/tex.js"></script>'
        '<link rel="stylesheet" href="//cdn.example.org/a.css">'
    )
    found = check.problems(tmp_path)
    assert len(found) == 3  # two remote resources, and the MathJax is not there
    (tmp_path / "_static" / "x.css").write_text("@import url(https://fonts.x/y);")
    assert any("x.css" in line for line in check.problems(tmp_path))
    assert check.main(["check", str(tmp_path)]) == 1


def test_no_pages_or_no_mathjax_fail(tmp_path):
    check = _check()
    assert check.problems(tmp_path)  # nothing built
    (tmp_path / "index.html").write_text("<p>no formulas</p>")
    assert check.problems(tmp_path)
