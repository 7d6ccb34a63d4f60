"""Preference strength from ensemble votes, and which pairs to flip or drop.

Shape notation: ``m`` members, ``b`` preference pairs. Member scores of the chosen
and the rejected responses are (m, b) each, ensemble axis first.

Formulas (Wang et al., "Secrets of RLHF in Large Language Models Part II: Reward
Modeling", arXiv 2401.06080, section 2):

    d_i(x)  = z_i(x, y_c) - z_i(x, y_r)          one member's margin, (m, b)
    mean(x) = (1/m) sum_i d_i(x)                 the pair's preference strength, (b,)
    std(x)  = sqrt((1/(m - ddof)) sum_i (d_i - mean)^2)

A pair with a negative mean is one the ensemble thinks is mislabeled; a mean near 0
with a large std is ambiguous. :func:`clean_selection` flips the lowest band and drops
the next, by rank of the mean.

Departures and choices:
- ``z`` are *standardized* member scores (each member's held-out mean and std), so
  members on different scales vote with equal weight; the paper uses raw scores of
  ten reward models trained alike.
- Bands are chosen by rank (exact counts, ties broken by position), not by comparing
  against an interpolated quantile, so ``flip_below=0.1`` flips exactly
  ``round(0.1 * b)`` pairs.
- :func:`strength_margin` is the paper's adaptive margin: the
  Bradley-Terry loss becomes ``-log sigmoid(r_c - r_r - scale * mean)``; ``scale``
  converts the standardized units of the strength into the reward's logit units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rewardherd.core.aggregate import _check_ddof, as_scores, to_numpy


@dataclass(frozen=True)
class Strength:
    """Per-pair preference strength: member margins (m, b), their mean and std (b,)."""

    margins: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    ddof: int


def preference_strength(chosen, rejected, ddof: int = 0) -> Strength:
    """Each member's margin on each pair, and their mean and std across members.

    ``chosen``, ``rejected``: (m, b) member scores (standardized by the caller); ``ddof``
    0 or 1 for the std (0 with one member). Margins are chosen - rejected, (m, b)."""
    c, r = as_scores(chosen), as_scores(rejected)
    if c.shape != r.shape:
        raise ValueError(f"chosen scores {c.shape} and rejected scores {r.shape} differ in shape")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(r))):
        raise ValueError("member scores must be finite")
    d = c - r  # (m, b)
    if d.shape[0] == 1:
        ddof = 0  # one member has no sample std; report 0, not NaN
    _check_ddof(ddof, d.shape[0])
    return Strength(margins=d, mean=d.mean(axis=0), std=d.std(axis=0, ddof=ddof), ddof=ddof)


def _check_fraction(name: str, q) -> float:
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0.0 <= float(q) <= 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1]; got {q!r}")
    return float(q)


def clean_selection(mean, flip_below: float | None = None,
                    drop_between: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(flip, drop)``: disjoint (b,) masks of pairs to flip and to drop, by rank of ``mean``.

    Pairs are ranked by ``mean`` (ascending; ties keep input order). With ``n`` pairs the
    ranks ``[0, round(flip_below * n))`` are flipped and ``[round(q1 * n), round(q2 * n))``
    dropped, ``(q1, q2) = drop_between`` with ``flip_below <= q1 <= q2 <= 1``; either may
    be None."""
    mu = to_numpy(mean).reshape(-1)
    if not np.all(np.isfinite(mu)):
        raise ValueError("mean strengths must be finite")
    n = mu.shape[0]
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(mu, kind="stable")] = np.arange(n)
    flip = np.zeros(n, dtype=bool)
    drop = np.zeros(n, dtype=bool)
    q0 = 0.0
    if flip_below is not None:
        q0 = _check_fraction("flip_below", flip_below)
        flip = rank < round(q0 * n)
    if drop_between is not None:
        if len(drop_between) != 2:
            raise ValueError(f"drop_between must be two fractions (q1, q2); got {drop_between!r}")
        q1 = _check_fraction("drop_between[0]", drop_between[0])
        q2 = _check_fraction("drop_between[1]", drop_between[1])
        if not q1 <= q2:
            raise ValueError(f"drop_between must satisfy q1 <= q2; got ({q1}, {q2})")
        if q1 < q0:
            raise ValueError(f"the drop band ({q1}, {q2}) overlaps the flipped band [0, {q0}); "
                             "choose q1 >= flip_below")
        drop = (rank >= round(q1 * n)) & (rank < round(q2 * n))
    return flip, drop


def strength_margin(mean, scale: float = 1.0) -> np.ndarray:
    """Adaptive Bradley-Terry margin from preference strength: ``scale * mean``, (b,).

    Pass the strength *after* any flip (a flipped pair's strength is ``-mean``).
    Negative margins are kept: they relax the loss on pairs the ensemble doubts,
    which is what the adaptive margin is for.
    """
    if isinstance(scale, bool) or not np.isfinite(scale) or not scale >= 0:
        raise ValueError(f"margin scale must be finite and >= 0; got {scale!r}")
    mu = to_numpy(mean).reshape(-1)
    if not np.all(np.isfinite(mu)):
        raise ValueError("mean strengths must be finite")
    return float(scale) * mu
