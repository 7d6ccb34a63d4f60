"""Intervals over crossed seeds x prompts, and the claims' decision rule.

- :func:`crossed_interval`: t interval of a grand mean over seeds x prompts (crossed
  random effects), the default for every claim that is a mean.
- :func:`pigeonhole_bootstrap`: resample seeds and prompts independently (Owen 2007),
  for statistics that are not means (curve fits).
- :func:`paired_bootstrap`: prompts only (seeds held fixed); kept for per-curve bands.

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
    method: str = "paired_bootstrap"
    """How the interval was made: paired_bootstrap, crossed_t or pigeonhole_bootstrap."""
    df: float | None = None
    """Degrees of freedom of a t interval (None for a bootstrap)."""

    def as_dict(self) -> dict:
        return asdict(self)


def paired_bootstrap(values, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """Percentile bootstrap CI of the mean of a per-prompt quantity, (p,) or (s, p), finite."""
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


def _as_grid(values) -> np.ndarray:
    v = to_numpy(values)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] < 2:
        raise ValueError(f"values must have shape (seeds, prompts) with >= 2 prompts; got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values contain NaN or inf")
    return v


def crossed_interval(values, level: float = 0.95) -> Interval:
    """t interval of the grand mean of a seeds x prompts table (crossed random effects).

    Model: v[s, p] = mu + a_s + b_p + e_sp, with seed effects a (each seed redraws
    backbones, fine-tune seeds, label flips), prompt effects b (prompts are shared by
    every seed), and residual e. Var(grand mean) = s2_a/S + s2_b/P + s2_e/(S P). From
    the two-way ANOVA mean squares (E[MS_seed] = s2_e + P s2_a, E[MS_prompt] = s2_e +
    S s2_b) we use the conservative estimate (MS_seed + MS_prompt) / (S P), which
    overstates the variance by s2_e / (S P) but is never negative, with Satterthwaite
    degrees of freedom. With one seed it is the t interval over prompts alone, and it
    then covers no seed variance (say so where it is reported).

    Args:
        values: (S, P) or (P,) per-(seed, prompt) quantities; finite.
        level: two-sided coverage.
    """
    from scipy.stats import t as student_t

    v = _as_grid(values)
    S, P = v.shape
    grand = float(v.mean())
    prompt_means = v.mean(axis=0)
    ms_prompt = S * float(np.sum((prompt_means - grand) ** 2)) / (P - 1)
    if S == 1:
        var, df = ms_prompt / P, float(P - 1)
    else:
        seed_means = v.mean(axis=1)
        ms_seed = P * float(np.sum((seed_means - grand) ** 2)) / (S - 1)
        var = (ms_seed + ms_prompt) / (S * P)
        denom = ms_seed ** 2 / (S - 1) + ms_prompt ** 2 / (P - 1)
        df = float((ms_seed + ms_prompt) ** 2 / denom) if denom > 0 else float(S - 1)
    half = float(student_t.ppf(0.5 + level / 2.0, df)) * float(np.sqrt(var))
    return Interval(grand, grand - half, grand + half, level, 0, "crossed_t", df)


def pigeonhole_bootstrap(values, statistic, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """(n_boot, ...) replicates of ``statistic`` resampling seeds and prompts independently.

    Owen (2007), "The pigeonhole bootstrap": rows (seeds) and columns (prompts) of the
    (S, P, ...) ``values`` are drawn with replacement, independently (trailing axes, e.g.
    the n grid, travel along), and ``statistic`` is recomputed on each resampled table.
    Its variance is slightly conservative for crossed designs."""
    v = to_numpy(values)
    if v.ndim < 2:
        raise ValueError(f"values must have shape (seeds, prompts, ...); got {v.shape}")
    rng = np.random.default_rng(seed)
    S, P = v.shape[:2]
    out = []
    for _ in range(n_boot):
        rows = rng.integers(0, S, S) if S > 1 else np.zeros(1, dtype=np.int64)
        cols = rng.integers(0, P, P)
        out.append(statistic(v[rows][:, cols]))
    return np.asarray(out, dtype=np.float64)


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
