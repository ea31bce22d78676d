"""Utilities for skattn."""

# SPDX-License-Identifier: BSD-3-Clause
