"""Paired bootstrap over prompts and the claims' decision rule.

The statistical unit is the prompt. A per-prompt quantity (e.g. the gold of the
ensemble minus that of the single RM at the largest n) is given as (s, p): s seeds
(or runs) by p prompts, where the same prompt index means the same prompt in every
seed. Resampling draws prompt indices with replacement and reuses them in every
seed (paired), then averages over seeds and prompts (pooled).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from rewardherd.core.aggregate import to_numpy

Verdict = Literal["reproduced", "not reproduced", "inconclusive"]


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    level: float
    n_boot: int

    def as_dict(self) -> dict:
        return asdict(self)


def paired_bootstrap(values, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """Percentile bootstrap CI of the mean of a per-prompt quantity.

    Args:
        values: (p,) or (s, p); NaNs are not allowed.
        n_boot: bootstrap resamples.
        level: two-sided coverage.
        seed: resampling seed.
    """
    v = to_numpy(values)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] == 0:
        raise ValueError(f"values must have shape (seeds, prompts); got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values contain NaN or inf")
    rng = np.random.default_rng(seed)
    p = v.shape[1]
    per_prompt = v.mean(axis=0)  # pooled over seeds; paired: same prompt index resampled in every seed
    idx = rng.integers(0, p, size=(n_boot, p))
    boots = per_prompt[idx].mean(axis=1)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(boots, [a, 1.0 - a])
    return Interval(float(per_prompt.mean()), float(lo), float(hi), level, n_boot)


def decide(interval: Interval, direction: Literal["positive", "negative"]) -> Verdict:
    """The claims' rule: reproduced when the interval excludes 0 in the claimed
    direction, not reproduced when it excludes 0 the other way, else inconclusive."""
    if direction not in ("positive", "negative"):
        raise ValueError(f"direction must be 'positive' or 'negative'; got {direction!r}")
    sign = 1.0 if direction == "positive" else -1.0
    lo, hi = sorted((sign * interval.low, sign * interval.high))
    if lo > 0:
        return "reproduced"
    if hi < 0:
        return "not reproduced"
    return "inconclusive"
