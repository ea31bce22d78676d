"""Losses of pooled values against targets, for bandwidth selection and learning.

Each loss takes, for a chunk of rows, the pooled values ``P`` (n_rows, n_outputs), the
targets ``Y`` (same shape; one-hot classes for the log loss) and the row weights ``w``,
and gives the weighted sum of the rows' losses and its gradient with respect to ``P``.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np

__all__ = ["LOSSES", "get_loss", "standardise_with", "unstandardise"]


def standardise_with(Y, target_map):
    """``Y`` in the units of a :meth:`SquaredLoss.target_map` ``(first, second,
    mean)``: ``ldexp(ldexp(Y, -first) - mean, -second)``."""
    first, second, mean = target_map
    return np.ldexp(np.ldexp(Y, -first) - mean, -second)


def unstandardise(T, target_map):
    """The inverse of :func:`standardise_with`: ``ldexp(ldexp(T, second) + mean,
    first)``."""
    first, second, mean = target_map
    return np.ldexp(np.ldexp(T, second) + mean, first)


class SquaredLoss:
    """``sum_i w_i ||P_i - Y_i||^2``; normalised by the weighted total sum of squares,
    so that the objective is ``1 - R^2`` of the pooled values."""

    name = "squared"

    def rows(self, P, Y):
        """Each row's loss, unweighted: ``value`` is ``w @ rows``."""
        residual = P - Y
        return np.einsum("ij,ij->i", residual, residual)

    def value(self, P, Y, w):
        return float(w @ self.rows(P, Y))

    def value_and_gradient(self, P, Y, w):
        residual = P - Y
        value = float(w @ np.einsum("ij,ij->i", residual, residual))
        return value, 2.0 * w[:, None] * residual

    def standardise(self, Y, w):
        """``Y`` centred on its weighted mean and divided by powers of two near its
        largest magnitudes (exact): pooling commutes with affine maps of the
        values, so the minimiser of the loss (and the loss divided by the total sum
        of squares) is unchanged, and neither can overflow nor underflow, whatever
        the scale of ``y``. Returns the standardised ``Y`` and its unit ``u`` (a
        power of two): ``Y = u * standardised + mean``, the loss scales by ``u**2``.
        """
        apply, unit = self.standardiser(Y, w)
        return apply(Y), unit

    def standardiser(self, Y, w):
        """The map of :meth:`standardise` fitted on ``(Y, w)``, to put other rows
        (held-out targets) in the same units, and the unit."""
        first, second, mean = target = self.target_map(Y, w)

        def apply(Z):
            return standardise_with(Z, target)

        return apply, float(np.ldexp(1.0, first + second))

    def target_map(self, Y, w):
        """The exponents and mean ``(first, second, mean)`` of
        :meth:`standardise`, for :func:`standardise_with` and
        :func:`unstandardise`."""
        first = int(np.frexp(np.max(np.abs(Y), initial=0.0))[1])
        scaled = np.ldexp(Y, -first)
        mean = w @ scaled / w.sum()
        second = int(np.frexp(np.max(np.abs(scaled - mean), initial=0.0))[1])
        return first, second, mean

    def normaliser(self, Y, w):
        mean = w @ Y / w.sum()
        tss = float(w @ ((Y - mean) ** 2).sum(axis=1))
        return tss if tss > 0 else 1.0


class LogLoss:
    """``-sum_i w_i log max(P_i[c_i], eps)`` with ``Y`` one-hot and ``eps`` the
    machine epsilon of float64 (as :func:`sklearn.metrics.log_loss` clips);
    normalised by the total weight, so that the objective is the mean log loss."""

    name = "log"
    eps = np.finfo(np.float64).eps

    def standardise(self, Y, w):
        """One-hot classes are kept as they are (unit 1)."""
        return Y, 1.0

    def standardiser(self, Y, w):
        """The identity, and the unit 1."""
        return (lambda Z: Z), 1.0

    def _true_class_probability(self, P, Y):
        return np.einsum("ij,ij->i", P, Y)

    def rows(self, P, Y):
        """Each row's loss, unweighted: ``value`` is ``w @ rows``."""
        return -np.log(np.maximum(self._true_class_probability(P, Y), self.eps))

    def value(self, P, Y, w):
        return float(w @ self.rows(P, Y))

    def value_and_gradient(self, P, Y, w):
        p = self._true_class_probability(P, Y)
        clipped = p <= self.eps
        p_safe = np.where(clipped, self.eps, p)
        value = float(-(w @ np.log(p_safe)))
        factor = np.where(clipped, 0.0, -w / p_safe)
        return value, factor[:, None] * Y

    def normaliser(self, Y, w):
        return float(w.sum())


LOSSES = {"squared": SquaredLoss(), "log": LogLoss()}


def get_loss(loss):
    """The loss object for a name in ``LOSSES`` (or a loss object itself)."""
    if isinstance(loss, str):
        try:
            return LOSSES[loss]
        except KeyError:
            raise ValueError(
                f"Unknown loss {loss!r}; expected one of {sorted(LOSSES)}."
            ) from None
    return loss
