"""Parameter paragraphs shared by several docstrings, written once.

After imbalanced-learn's ``Substitution``: a docstring holds a line ``{{name}}``
(indented as the paragraph must be), and :func:`fill_doc` puts the paragraph there.
"""

# SPDX-License-Identifier: BSD-3-Clause

import re

__all__ = ["fill_doc", "PARAMETERS"]

PARAMETERS = {
    "n_jobs": """\
n_jobs : int, default=None
    Threads of this process over chunks of rows, for fitting and predicting.
    ``None`` uses every core the process may use, as scikit-learn's
    pairwise-distance computations do, but no more than a thread limit allows
    (``threadpoolctl.threadpool_limits``, ``OMP_NUM_THREADS``, a joblib worker's
    share of the cores), and follows an enclosing
    ``joblib.parallel_config(n_jobs=...)``. ``-1`` means every core. BLAS runs
    on one thread inside, whatever ``n_jobs`` is. Under a joblib backend that is
    not local (``parallel_config(backend="dask")``), predictions are spread over
    its workers by chunks of queries.""",
}

_PLACEHOLDER = re.compile(r"^([ \t]*)\{\{(\w+)\}\}$", re.MULTILINE)


def fill_doc(obj):
    """Replace each ``{{name}}`` line of ``obj``'s docstring by ``PARAMETERS[name]``,
    indented as the line. Returns ``obj``."""

    def paragraph(match):
        indent, name = match.groups()
        return "\n".join(
            indent + line if line else line for line in PARAMETERS[name].splitlines()
        )

    obj.__doc__ = _PLACEHOLDER.sub(paragraph, obj.__doc__)
    return obj
