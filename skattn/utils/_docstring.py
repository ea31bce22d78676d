"""Parameter (and return) paragraphs shared by several docstrings, written once.

After imbalanced-learn's ``Substitution``: a docstring holds a line ``{{name}}``
(indented as the paragraph must be), and :func:`fill_doc` puts the paragraph there.
"""

# SPDX-License-Identifier: BSD-3-Clause

import re

__all__ = ["fill_doc", "PARAMETERS"]

PARAMETERS = {
    "verbose_cv": """\
verbose : int, default=0
    When positive, print a line per candidate of the "cv" search (the factor
    tried, its leave-one-out loss and the time since ``fit`` began) and one
    for the choice. Other bandwidths need no search and print nothing.""",
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
    "early_stopping": """\
early_stopping : "auto" or bool, default="auto"
    Hold out ``validation_fraction`` of the rows (of positive weight), learn the
    metric on the others, measure after every L-BFGS-B iteration the loss of
    the held-out rows attending to them, and stop once it has not improved by
    1e-4 for ``n_iter_no_change`` iterations, keeping the iterate of the best
    held-out loss: each data set gets its own stopping point. Every row is
    still a key at prediction. "auto": on for ``metric="full"`` from 100 rows,
    whose many parameters overfit the leave-one-out loss of small or noisy
    data (on load_diabetes its 5-fold R^2 is 0.083 after 100 iterations, 0.436
    with early stopping), and for the projection that ``metric="auto"`` tries;
    off for "diagonal" and "isotropic", whose few bandwidths the leave-one-out
    loss guards itself. False also keeps ``metric="auto"`` to the bandwidths
    (it needs the held-out rows to judge the projection). Mini-batch fits
    (``batch_size``) stop on their own rule (``tol``).""",
    "y_pred_pooled": """\
y_pred : ndarray of shape (n_queries,) or (n_queries, n_outputs)
    Attention-weighted averages of the training targets, within their
    range, in the dtype of ``y`` as fitted (float64, or float32 for a
    float32 ``y``), whatever the dtype of ``X``.""",
    "y_std": """\
y_std : ndarray of shape (n_queries,) or (n_queries, n_outputs)
    The standard errors; only with ``return_std=True``.""",
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
