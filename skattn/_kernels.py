"""Kernels as log-kernels of the squared scaled distance.

Every kernel is normalised so that ``K(0) = 1`` (normalising constants cancel in
attention pooling) and is written as a function of the *squared* scaled distance
``sq = ||(q - k) / h||**2``: this is what the engine gets from its distance GEMM.
Compact kernels return ``-inf`` outside their support ``u < 1`` (open ball), so that
``exp`` gives an exact zero weight.  The shapes are those of
:class:`sklearn.neighbors.KernelDensity`.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

__all__ = ["KERNELS", "get_kernel"]


class Kernel:
    """A log-kernel of the squared scaled distance.

    Parameters
    ----------
    name : str
        The kernel's name, as :class:`sklearn.neighbors.KernelDensity` spells it.
    log_kernel : callable
        ``log_kernel(sq, out)`` writes ``log K(sqrt(sq))`` into ``out`` (which may be
        ``sq`` itself) and returns it.
    radius : float
        Support radius in scaled distance (``inf`` for full support).
    uses_distance : bool
        Whether the kernel depends on ``sqrt(sq)`` with a non-zero slope at 0; such
        kernels need squared distances free of cancellation near 0.
    dlog_dsq : callable or None
        ``d log K / d sq`` for kernels differentiable almost everywhere with full
        support, else None.
    gemm_logits : bool, default=False
        Whether ``log K = -sq / 2`` (the Gaussian): linear in the squared distance,
        so that the logits come straight out of the distance GEMM (the engine's fast
        path).
    """

    def __init__(
        self, name, log_kernel, radius, uses_distance, dlog_dsq=None, gemm_logits=False
    ):
        self.name = name
        self.log_kernel = log_kernel
        self.radius = radius
        self.uses_distance = uses_distance
        self.dlog_dsq = dlog_dsq
        self.gemm_logits = gemm_logits
        self.reach = self._reach()

    def _reach(self):
        """The scaled distance beyond which a key weighs nothing next to one whose
        weight passes the engine's underflow check: ``log K`` below about -1100
        (the check's ``log sqrt(tiny)``, -354, less the 745 of ``exp``'s range), or
        the support radius."""
        if self.compact:
            return float(self.radius)
        return self._doubled_past(-1100.0)[1]

    def _log_weight(self, u):
        """``log K(u)`` at one scaled distance ``u``."""
        return self.log_kernel(np.array([u * u]), np.empty(1))[0]

    def _doubled_past(self, log_weight):
        """``(lo, hi)``: ``hi`` the first of 1, 2, 4, ... where ``log K`` is at most
        ``log_weight``, ``lo`` the one before (0 when ``hi`` is 1)."""
        lo, hi = 0.0, 1.0
        while self._log_weight(hi) > log_weight:
            lo, hi = hi, 2.0 * hi
        return lo, hi

    def distance_at(self, log_weight):
        """The scaled distance where ``log K`` falls to ``log_weight`` (finite; a
        compact kernel's reaches -inf at its radius), by bisection to the float
        spacing."""
        lo, hi = self._doubled_past(log_weight)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if self._log_weight(mid) > log_weight else (lo, mid)
        return hi

    @property
    def compact(self):
        """Whether the kernel is zero outside a finite radius."""
        return np.isfinite(self.radius)

    def __repr__(self):
        return f"Kernel({self.name!r})"


def _gaussian(sq, out):
    return np.multiply(sq, -0.5, out=out)


def _dgaussian(sq):
    return np.full_like(sq, -0.5)


def _exponential(sq, out):
    np.sqrt(sq, out=out)
    return np.negative(out, out=out)


def _dexponential(sq):
    # d(-sqrt(sq))/dsq = -1 / (2 sqrt(sq)); infinite at 0, where the kernel has a kink.
    with np.errstate(divide="ignore"):
        return -0.5 / np.sqrt(sq)


def _outside(sq):
    return sq >= 1.0


def _tophat(sq, out):
    outside = _outside(sq)
    out[...] = 0.0
    out[outside] = -np.inf
    return out


def _log_one_minus(out, outside):
    """``log(1 - out)`` in place, ``-inf`` where ``outside``."""
    np.negative(out, out=out)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.log1p(out, out=out)
    out[outside] = -np.inf
    return out


def _epanechnikov(sq, out):
    outside = _outside(sq)
    np.copyto(out, sq)
    return _log_one_minus(out, outside)


def _linear(sq, out):
    outside = _outside(sq)
    np.sqrt(sq, out=out)
    return _log_one_minus(out, outside)


def _cosine(sq, out):
    outside = _outside(sq)
    np.minimum(sq, 1.0, out=out)
    np.sqrt(out, out=out)
    np.multiply(out, np.pi / 2, out=out)
    np.cos(out, out=out)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.log(out, out=out)
    out[outside] = -np.inf
    return out


KERNELS = {
    "gaussian": Kernel(
        "gaussian", _gaussian, np.inf, False, _dgaussian, gemm_logits=True
    ),
    "tophat": Kernel("tophat", _tophat, 1.0, False),
    "epanechnikov": Kernel("epanechnikov", _epanechnikov, 1.0, False),
    "exponential": Kernel("exponential", _exponential, np.inf, True, _dexponential),
    "linear": Kernel("linear", _linear, 1.0, True),
    "cosine": Kernel("cosine", _cosine, 1.0, False),
}


def get_kernel(kernel):
    """Return the :class:`Kernel` named ``kernel``.

    Raises
    ------
    ValueError
        If ``kernel`` names no kernel.
    """
    if isinstance(kernel, Kernel):
        return kernel
    try:
        return KERNELS[kernel]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown kernel {kernel!r}; expected one of {sorted(KERNELS)}."
        ) from None
