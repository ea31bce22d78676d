"""Progress lines of long work (``verbose``), in scikit-learn's plain style.

One line per step: ``[Estimator] what  field value ...  time 1.23s``, the time
counted from the start of ``fit`` (start-up searches included), and, for
iterative work of at most ``total`` steps, the step out of ``total`` and a bound
on the time left (the work may stop before ``total``).
"""

# SPDX-License-Identifier: BSD-3-Clause

import time

__all__ = ["Progress"]


class Progress:
    """Print progress lines for ``name`` when ``verbose`` is positive.

    Parameters
    ----------
    name : str
        The estimator the user called.
    verbose : int
        0 prints nothing.
    start : float, default=None
        ``time.perf_counter()`` at the start of the work (now by default).
    """

    def __init__(self, name, verbose, start=None):
        self.name = name
        self.verbose = int(verbose or 0)
        self.start = time.perf_counter() if start is None else start

    def __bool__(self):
        return self.verbose > 0

    @property
    def elapsed(self):
        return time.perf_counter() - self.start

    def step(self, what, step=None, total=None, **fields):
        """A line for ``what`` (e.g. "iter"), optionally step ``step`` of
        ``total``, with ``fields`` (floats printed to 6 digits)."""
        if not self:
            return
        parts = [what]
        if step is not None:
            parts[0] += f" {step:4d}" + ("" if total is None else f"/{total}")
        for key, value in fields.items():
            if value is None:
                continue
            label = "held-out loss" if key == "held_out_loss" else key.replace("_", " ")
            text = f"{value:.6g}" if isinstance(value, float) else str(value)
            parts.append(f"{label} {text}")
        elapsed = self.elapsed
        parts.append(f"time {elapsed:.2f}s")
        if step and total and step < total:
            parts.append(f"at most {elapsed / step * (total - step):.1f}s left")
        print(f"[{self.name}] " + "  ".join(parts), flush=True)

    def message(self, text):
        """A free line (the result of a search, why the work stopped)."""
        if self:
            print(f"[{self.name}] {text}  time {self.elapsed:.2f}s", flush=True)
