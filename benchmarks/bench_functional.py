"""Benchmark skattn.functional's scaled dot-product attention. Prints one table from one
run.

    python benchmarks/bench_functional.py          # everything (~1 minute)
    python benchmarks/bench_functional.py --quick  # smaller sizes, for a check

1. Dense speed: scaled_dot_product_attention at batch 8, heads 8, n = 1024 queries and
   keys, d = 64 (float64), next to bare NumPy in the same run: the three lines

       s = np.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(d)
       w = np.exp(s - s.max(-1, keepdims=True)); w /= w.sum(-1, keepdims=True)
       out = np.einsum("bhqk,bhkd->bhqd", w, v)

   and the same three lines with ``@`` (BLAS) in place of ``einsum``. Best of 5 runs
   each, interleaved; ratio = skattn / bare (below 1 means skattn is faster). Also the
   peak memory of each (tracemalloc, which sees NumPy's buffers).
2. Blocked memory: one head, n = 32,768 queries and keys, d = 64, block_size = 512:
   the peak memory next to what the dense path's weight matrix alone would take
   (n^2 * 8 bytes), and the largest difference from the dense result on the first
   2,048 queries.
"""

# SPDX-License-Identifier: BSD-3-Clause

import argparse
import time
import tracemalloc

import numpy as np
from _report import print_report, report

from skattn.functional import scaled_dot_product_attention

MiB = 2**20


def bare_einsum(q, k, v):
    s = np.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(q.shape[-1])
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return np.einsum("bhqk,bhkd->bhqd", w, v)


def bare_matmul(q, k, v):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return w @ v


def peak_memory(func, *args, **kwargs):
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        result = func(*args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, peak


def bench_dense(batch, heads, n, d, repeats=5):
    section = f"dense b={batch} h={heads} n={n} d={d}"
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(batch, heads, n, d)) for _ in range(3))
    candidates = {
        "skattn scaled_dot_product_attention": scaled_dot_product_attention,
        "bare NumPy, einsum": bare_einsum,
        "bare NumPy, @": bare_matmul,
    }
    times = {name: [] for name in candidates}
    outputs = {}
    for _ in range(repeats):
        for name, func in candidates.items():
            start = time.perf_counter()
            outputs[name] = func(q, k, v)
            times[name].append(time.perf_counter() - start)
    best = {name: min(t) for name, t in times.items()}
    ours = best["skattn scaled_dot_product_attention"]
    for name, func in candidates.items():
        _, peak = peak_memory(func, q, k, v)
        error = np.max(np.abs(outputs[name] - outputs["bare NumPy, @"]))
        if name.startswith("skattn"):
            ratios = "; ".join(
                f"{ours / best[other]:.2f}x {other.split(', ')[1]}"
                for other in candidates
                if other.startswith("bare")
            )
            report(
                section,
                name,
                seconds=ours,
                ratio=ratios,
                value=f"peak {peak / MiB:.0f} MiB",
                target="<= 1.2x bare",
            )
        else:
            report(
                section,
                name,
                seconds=best[name],
                value=f"peak {peak / MiB:.0f} MiB; max abs diff {error:.1e}",
            )


def bench_blocked(n, d, block_size, n_check=2048):
    section = f"blocked h=1 n={n:,} d={d}"
    rng = np.random.default_rng(1)
    q, k, v = (rng.normal(size=(n, d)) for _ in range(3))
    start = time.perf_counter()
    out, peak = peak_memory(
        scaled_dot_product_attention, q, k, v, block_size=block_size
    )
    seconds = time.perf_counter() - start
    dense_weights = n * n * 8
    dense = scaled_dot_product_attention(q[:n_check], k, v)
    error = np.max(np.abs(out[:n_check] - dense))
    report(
        section,
        f"skattn block_size={block_size}",
        seconds=seconds,
        value=(
            f"peak {peak / MiB:.0f} MiB (dense weights alone "
            f"{dense_weights / 2**30:.1f} GiB); max abs(blocked - dense) {error:.1e}"
        ),
        target="peak < 1 GiB",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run for a check")
    args = parser.parse_args()
    if args.quick:
        bench_dense(2, 4, 256, 64)
        bench_blocked(4096, 64, 512)
    else:
        bench_dense(8, 8, 1024, 64)
        bench_blocked(32_768, 64, 512)

    print_report()


if __name__ == "__main__":
    main()
