"""exp in place, and exp fused with pooling: compiled where built, NumPy otherwise.

The query-by-key logits go through ``exp`` once per entry; on processors without
AVX-512, NumPy's float64 ``exp`` is a scalar libm call per element and takes most of a
predict's time. The optional extension ``_skattn_speedups`` (src/_skattn_speedups.c,
built at install where a C compiler is present, used on processors with AVX2 and FMA)
is a vectorised version within 1 ulp of the exact value and of libm's, with libm's
own results for underflow, overflow and NaN. Everything else (float32, which NumPy
vectorises itself, and strided or read-only arrays) goes to ``numpy.exp``.
The same extension fuses ``exp`` with the pooled sums (:func:`exp_pool`): the weights
are never written, which saves two passes over the query-by-key matrix of a predict;
and, for the Gaussian kernel, the logits' dot products with both
(:func:`gauss_pool`): the query-by-key matrix is never written at all.
"""

# SPDX-License-Identifier: BSD-3-Clause

import os

import numpy as np

try:  # pragma: no cover - which branch runs depends on the build
    from _skattn_speedups import exp as _compiled_exp
    from _skattn_speedups import exp_pool as _compiled_exp_pool
    from _skattn_speedups import gauss_pool as _compiled_gauss_pool
    from _skattn_speedups import instruction_set as _instruction_set
except ImportError:  # pragma: no cover
    _compiled_exp = _compiled_exp_pool = _compiled_gauss_pool = None
    _instruction_set = None

#: Most columns (outputs and the normaliser) the fused exp-and-pool takes.
EXP_POOL_MAX_COLUMNS = 8
#: Logits below this weigh 0 in :func:`exp_pool` (weights below ``finfo.tiny``).
EXP_POOL_LOW = -708.39

#: Whether the extension was built (and imports).
BUILT = _compiled_exp is not None

#: Whether the compiled helpers are in use: built, on a processor with AVX2 and FMA
#: (their generic SSE2 code measured no faster than NumPy's: it stays for tests),
#: and not switched off by the environment variable ``SKATTN_DISABLE_COMPILED`` (set
#: to any non-empty value).
COMPILED = (
    BUILT
    and _instruction_set() != "generic"
    and not os.environ.get("SKATTN_DISABLE_COMPILED")
)


def exp_code_path():
    """Name the code path of skattn's float64 ``exp``.

    skattn builds a small C extension at install where a C compiler is present: a
    vectorised float64 ``exp`` (within 1 ulp of libm) and ``exp`` fused with the
    pooled sums of a prediction. Without it, or with the environment variable
    ``SKATTN_DISABLE_COMPILED`` set, skattn uses ``numpy.exp``.

    Returns
    -------
    path : str
        ``"compiled (avx2+fma)"`` (the extension, on a processor with AVX2 and
        FMA) or ``"numpy"``.

    Examples
    --------
    >>> from skattn.utils import exp_code_path
    >>> exp_code_path() in ("compiled (avx2+fma)", "numpy")
    True
    """
    if not COMPILED:
        return "numpy"
    return "compiled (avx2+fma)"


def exp_inplace(a, compiled=None):
    """Write ``exp(a)`` into ``a`` and return it.

    Parameters
    ----------
    a : ndarray
        A writable floating point array.
    compiled : bool, default=None
        Use the compiled exp where it applies (None: when :data:`COMPILED`); True
        forces it wherever it was built, False forces ``numpy.exp`` (for tests).

    Returns
    -------
    a : ndarray
        The same array, now holding ``exp`` of its former values.
    """
    if compiled is None:
        compiled = COMPILED
    if (
        compiled
        and a.dtype == np.float64
        and a.dtype.isnative
        and a.flags.c_contiguous
        and a.flags.writeable
    ):
        _compiled_exp(a)
        return a
    return np.exp(a, out=a)


def exp_pool_applies(dtype, n_columns):
    """Whether :func:`exp_pool` runs compiled for this working dtype and number of
    pooled columns (the values and the normaliser)."""
    return COMPILED and dtype == np.float64 and n_columns <= EXP_POOL_MAX_COLUMNS


def exp_pool(logits, values_t, out=None):
    """Pool ``exp(logits)`` over the keys, by the compiled, fused kernel.

    Parameters
    ----------
    logits : ndarray of shape (n_queries, n_keys)
        float64 logits, at most 0 (``-inf`` allowed), C-contiguous.
    values_t : ndarray of shape (n_columns, n_keys)
        The values by column, C-contiguous float64, ``n_columns`` at most
        ``EXP_POOL_MAX_COLUMNS`` (see :func:`exp_pool_applies`).

    Returns
    -------
    pooled : ndarray of shape (n_queries, n_columns)
        ``exp(logits) @ values_t.T``, with weights below ``numpy.finfo(float).tiny``
        (logits below -708.39) counted as 0, and NaN in the last column of a row
        whose logits hold a NaN or a value above 709 (the engine's exact path takes
        such rows).
    """
    if out is None:
        out = np.empty((logits.shape[0], values_t.shape[0]))
    if BUILT:
        _compiled_exp_pool(logits, values_t, out)
        return out
    # The same in NumPy (keys prepared where the extension was built may be shipped
    # to a process where it is not, a Dask worker say).
    with np.errstate(over="ignore", invalid="ignore"):
        weights = np.exp(logits)
        weights[~(logits >= EXP_POOL_LOW)] = 0.0
        np.matmul(weights, values_t.T, out=out)
    out[~np.all(logits <= 709.0, axis=1), -1] = np.nan
    return out


def gauss_pool(queries, keys_t, values_t, out=None):
    """:func:`exp_pool` of the logits ``queries @ keys_t``, computed in the cache
    by the compiled kernel and never written (each logit a dot product summed in
    the order of the columns).

    Parameters
    ----------
    queries : ndarray of shape (n_queries, n_columns_q)
        C-contiguous float64 rows (the engine's augmented queries).
    keys_t : ndarray of shape (n_columns_q, n_keys)
        C-contiguous float64, the keys by column (the engine's ``aug_t``); the
        logits must be at most 0, as there.
    values_t : ndarray of shape (n_columns, n_keys)
        As for :func:`exp_pool`.

    Returns
    -------
    pooled : ndarray of shape (n_queries, n_columns)
        As :func:`exp_pool` returns for ``queries @ keys_t``.
    """
    if out is None:
        out = np.empty((queries.shape[0], values_t.shape[0]))
    if BUILT:
        _compiled_gauss_pool(queries, keys_t, values_t, out)
        return out
    with np.errstate(over="ignore", invalid="ignore"):
        return exp_pool(queries @ keys_t, values_t, out=out)
