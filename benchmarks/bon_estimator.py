"""Speed of the exact best-of-n estimator (issue target: 64 x 10,000 pool, 14 n values, <= 0.2 s).

Also times the exact big-integer reference (math.comb, as in earlier reference code) on a
subset and extrapolates it, and checks the two agree. Prints the figures.

    python benchmarks/bon_estimator.py
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np

from rewardherd.core import bon_estimate, n_grid


def reference_row(proxy: np.ndarray, gold: np.ndarray, n: int) -> float:
    """Exact rational weights with Python integers (slow reference)."""
    order = np.argsort(proxy, kind="stable")
    g = gold[order]
    N = len(g)
    denom = math.comb(N, n)
    total = sum(math.comb(i - 1, n - 1) * Fraction(float(g[i - 1])) for i in range(n, N + 1))
    return float(total / denom)


def main() -> None:
    rng = np.random.default_rng(0)
    p, N = 64, 10_000
    proxy = rng.normal(size=(p, N))
    gold = proxy + rng.normal(size=(p, N))
    ns = n_grid(N)
    bon_estimate(proxy[:2], gold[:2], ns)  # warm-up
    times = []
    for _ in range(5):
        t = time.perf_counter()
        est = bon_estimate(proxy, gold, ns)
        times.append(time.perf_counter() - t)
    print(f"vectorized log-space estimator: {p} prompts x {N} pool x {len(ns)} n values: "
          f"median {np.median(times) * 1000:.1f} ms (min {min(times) * 1000:.1f} ms)")
    t = time.perf_counter()
    rows = 2
    ref = np.array([[reference_row(proxy[i], gold[i], n) for n in ns] for i in range(rows)])
    t_ref = time.perf_counter() - t
    print(f"big-integer reference: {rows} prompts in {t_ref:.2f} s -> ~{t_ref / rows * p:.0f} s for {p} prompts "
          f"(ratio ~{t_ref / rows * p / np.median(times):.0f}x)")
    print(f"max |vectorized - reference| on {rows} prompts: {np.abs(est[:rows] - ref).max():.2e}")


if __name__ == "__main__":
    main()
