"""Utilities for skattn."""

# SPDX-License-Identifier: BSD-3-Clause

from skattn._fastmath import exp_code_path

__all__ = ["exp_code_path"]
