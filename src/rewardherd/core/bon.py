"""Best-of-n: selection, analytic KL, and the unbiased estimator from a pool.

Shape notation: ``p`` prompts, ``N`` pool size per prompt, ``n`` best-of-n size,
``g`` number of n values on a grid.

- KL of best-of-n against its sampling policy (Stiennon et al.; Gao et al. 2022):
  ``KL_bon(n) = log n - (n - 1) / n``. An upper bound on the true KL, exact for
  continuous tie-free rewards.
- Unbiased estimator (Gao et al. 2022, appendix; Coste et al.'s ``unbiased_sampler``):
  sort the pool of N >= n samples ascending by the proxy score, y_(1)..y_(N); then
  ``E[value of best-of-n] = sum_{i=n..N} C(i-1, n-1) / C(N, n) * value(y_(i))``.
  The weights are computed in log space with lgamma, so N = 10,000 is exact to
  float64 precision and vectorized over prompts and n.
- The value (gold, proxy, a feature) always travels with its sample: the function
  takes the proxy scores and the values of the *same* samples in the same order and
  permutes both together (the pitfall in Coste et al.'s released code was re-sorting
  by the ensemble score while gold stayed in another order).
- Ties in the proxy score: the estimator replaces each tied group's values by the
  group mean, which is exactly the expectation under uniformly random
  tie-breaking, and is deterministic. :func:`select_best_of_n` (an actual choice)
  picks the lowest index among tied maxima.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from rewardherd.core.aggregate import to_numpy


def bon_kl(n) -> np.ndarray:
    """Analytic best-of-n KL: log n - (n - 1) / n, for n >= 1 (0 at n = 1)."""
    n_arr = np.asarray(n, dtype=np.float64)
    if not np.all(n_arr >= 1):
        raise ValueError(f"n must be >= 1; got {n}")
    return np.log(n_arr) - (n_arr - 1.0) / n_arr


def n_grid(pool_size: int, max_fraction: float = 1.0) -> list[int]:
    """Powers of two 1, 2, 4, ... up to ``max_fraction * pool_size``. The world prototype's
    notes recommend reporting n only up to about N/4 for low variance: pass
    ``max_fraction=0.25``."""
    if pool_size < 1:
        raise ValueError(f"pool_size must be >= 1; got {pool_size}")
    if not 0 < max_fraction <= 1:
        raise ValueError(f"max_fraction must be in (0, 1]; got {max_fraction}")
    top = max(1, int(math.floor(pool_size * max_fraction)))
    grid = [1]
    while grid[-1] * 2 <= top:
        grid.append(grid[-1] * 2)
    return grid


def bon_weights(pool_size: int, ns) -> np.ndarray:
    """(g, N) weights of the unbiased best-of-n estimator for pool size N and each n in ``ns``.

    Row j weighs the i-th smallest sample (0-based column i-1) by C(i-1, n-1) / C(N, n)
    for i >= n, else 0. Rows sum to 1."""
    N = int(pool_size)
    raw = np.atleast_1d(np.asarray(ns))
    if raw.dtype.kind not in "iu" and not np.all(np.mod(raw, 1) == 0):
        raise ValueError(f"n must be whole numbers; got {raw.tolist()}")
    ns = raw.astype(np.int64)
    if np.any(ns < 1) or np.any(ns > N):
        raise ValueError(f"every n must be in [1, pool size {N}]; got {ns.tolist()}")
    i = np.arange(1, N + 1, dtype=np.float64)[None, :]  # (1, N) 1-based ranks
    n = ns.astype(np.float64)[:, None]  # (g, 1)
    valid = i >= n
    k = np.where(valid, i - n, 0.0)
    log_w = (
        gammaln(i) - gammaln(n) - gammaln(k + 1.0)  # log C(i-1, n-1)
        - (gammaln(N + 1.0) - gammaln(n + 1.0) - gammaln(N - n + 1.0))  # log C(N, n)
    )
    return np.where(valid, np.exp(np.where(valid, log_w, 0.0)), 0.0)


def _tie_averaged(sorted_proxy: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Replace values of tied proxy scores by their group mean, row by row."""
    out = sorted_values.copy()
    for row in range(sorted_proxy.shape[0]):
        x = sorted_proxy[row]
        if x.shape[0] < 2 or not np.any(x[1:] == x[:-1]):
            continue
        _, start, counts = np.unique(x, return_index=True, return_counts=True)
        for s, c in zip(start, counts, strict=True):
            if c > 1:
                out[row, s : s + c] = sorted_values[row, s : s + c].mean(axis=0)
    return out


def bon_estimate(proxy, values, ns) -> np.ndarray:
    """Unbiased estimate of E[value of the best-of-n sample] for each prompt and n.

    ``proxy`` (p, N) is what best-of-n maximizes; ``values`` (p, N) or (p, N, f) are the
    quantities to report for the same samples in the same order (gold, the proxy,
    features); ``ns`` each in [1, N]. Returns (p, g) or (p, g, f) per-prompt estimates."""
    px = to_numpy(proxy)
    vals = to_numpy(values)
    if px.ndim != 2:
        raise ValueError(f"proxy must have shape (prompts, pool); got {px.shape}")
    squeeze = vals.ndim == 2
    if squeeze:
        vals = vals[:, :, None]
    if vals.shape[:2] != px.shape:
        raise ValueError(f"values {vals.shape[:2]} and proxy {px.shape} must share (prompts, pool)")
    if not np.all(np.isfinite(px)):
        raise ValueError("proxy scores contain NaN or inf")
    order = np.argsort(px, axis=1, kind="stable")  # ascending; values move with samples
    sp = np.take_along_axis(px, order, axis=1)
    sv = np.take_along_axis(vals, order[:, :, None], axis=1)
    sv = _tie_averaged(sp, sv)
    w = bon_weights(px.shape[1], ns)  # (g, N)
    est = np.einsum("gn,pnf->pgf", w, sv)
    return est[:, :, 0] if squeeze else est


def select_best_of_n(scores) -> np.ndarray:
    """(p,) index of the highest of each prompt's (p, n) aggregated scores; ties go to the
    lowest index."""
    s = to_numpy(scores)
    if s.ndim != 2 or s.shape[1] == 0:
        raise ValueError(f"scores must have shape (prompts, candidates>=1); got {s.shape}")
    if np.any(np.isnan(s)):
        raise ValueError("scores contain NaN")
    return np.argmax(s, axis=1)
