"""Check that the built documentation renders with no network: no page loads a
script, a style sheet or a font from another host, and the vendored MathJax that
the pages load is in the build.

    python docs/check_offline.py docs/_build/html

Exits with status 1 and lists the offending pages otherwise. CI runs it after the
documentation build (.ci/run).
"""

# SPDX-License-Identifier: BSD-3-Clause

import re
import sys
from pathlib import Path

# src/href of <script>, <link> and <img>, and CSS url(...) and @import
REMOTE = re.compile(
    r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["'](?:https?:)?//[^"']+["']"""
    r"""|url\(\s*["']?(?:https?:)?//|@import\s+["']?(?:https?:)?//""",
    re.IGNORECASE,
)
MATHJAX = re.compile(r"""<script\b[^>]*\bsrc=["']([^"']*mathjax[^"']*)["']""", re.I)


def problems(root):
    """Lines naming each page or file that needs the network."""
    root = Path(root)
    found = []
    pages = sorted(root.rglob("*.html"))
    if not pages:
        return [f"{root}: no HTML pages (build the documentation first)"]
    math_pages = 0
    for page in pages:
        text = page.read_text(encoding="utf-8", errors="replace")
        # <a href="https://..."> links are fine: only loaded resources count
        for match in REMOTE.finditer(text):
            found.append(f"{page.relative_to(root)}: {match.group(0)[:100]}")
        for src in MATHJAX.findall(text):
            math_pages += 1
            target = (page.parent / src.split("?")[0]).resolve()
            if not target.is_file():
                found.append(f"{page.relative_to(root)}: MathJax {src} is missing")
    for sheet in sorted(root.rglob("*.css")):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        for match in REMOTE.finditer(text):
            found.append(f"{sheet.relative_to(root)}: {match.group(0)[:100]}")
    if math_pages == 0:
        found.append(f"{root}: no page loads MathJax (are the formulas rendered?)")
    return found


def main(argv):
    root = argv[1] if len(argv) > 1 else "docs/_build/html"
    found = problems(root)
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} resource(s) need the network.")
        return 1
    print(f"{root}: every page renders offline.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
