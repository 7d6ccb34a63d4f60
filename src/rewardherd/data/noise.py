"""Synthetic label noise: flip chosen/rejected on an exact number of pairs.

Follows the noisy-preference setting of Coste et al. (2023, arXiv:2310.02743), where
a fraction of labels (0.25 in the paper) is flipped. Departure: the paper flips each
label independently with that probability; here exactly ``round(rate * n)`` pairs are
flipped (Python's ``round``: halves go to the even number), so a run's noise level is
exact and reproducible. A flipped pair keeps its ``id`` and its ``margin``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence

import numpy as np

from rewardherd.data.schema import PreferencePair

logger = logging.getLogger(__name__)


def pick_rows(n: int, fraction: float, seed: int, name: str = "fraction") -> set[int]:
    """Exactly ``round(fraction * n)`` distinct rows of ``n`` (Python's ``round``: halves
    go to the even number), drawn with ``numpy.random.default_rng(seed)``, so the same
    ``n``, fraction and seed always give the same rows."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not math.isfinite(fraction):
        raise ValueError(f"{name} must be a number in [0, 1], got {fraction!r}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {fraction}")
    k = round(fraction * n)
    return set(np.random.default_rng(seed).choice(n, size=k, replace=False).tolist()) if k else set()


#: Second word of a member's label-noise seed, so its flips are a stream apart from its data order
#: (``default_rng(seed)``) and its bootstrap resample.
MEMBER_NOISE_STREAM = 0x6E6F6973


def member_flips(n: int, rate: float, seed: int) -> set[int]:
    """The rows of ``n`` training pairs whose labels the member with fine-tune seed ``seed``
    sees swapped (``TrainConfig.member_label_noise``): exactly ``round(rate * n)`` rows, drawn
    with ``default_rng([seed, MEMBER_NOISE_STREAM])``, so every member has its own."""
    return pick_rows(n, rate, [int(seed), MEMBER_NOISE_STREAM], "member_label_noise")


def swap_labels(pairs: Sequence[PreferencePair], rows: set[int]) -> list[PreferencePair]:
    """``pairs`` with ``chosen`` and ``rejected`` swapped on ``rows`` (the others are the same objects)."""
    return [dataclasses.replace(p, chosen=p.rejected, rejected=p.chosen) if i in rows else p
            for i, p in enumerate(pairs)]


def inject_label_noise(
    pairs: Sequence[PreferencePair],
    rate: float,
    seed: int,
) -> tuple[list[PreferencePair], list[str]]:
    """Swap ``chosen`` and ``rejected`` on exactly ``round(rate * len(pairs))`` pairs
    (:func:`pick_rows`).

    Args:
        pairs: Input pairs (same pairs in the same order flip the same rows); not modified.
        rate: Fraction to flip, in ``[0, 1]``. Above 0.5 the labels are mostly
            inverted; allowed, with a logged warning.
        seed: Seed for ``numpy.random.default_rng``.

    Returns:
        ``(noisy_pairs, flipped_ids)``: a new list in input order (unflipped pairs are
        the same immutable objects) and the ids of the flipped pairs, in input order.
    """
    pairs = list(pairs)
    flip = pick_rows(len(pairs), rate, seed, "rate")
    if rate > 0.5:
        logger.warning("label noise rate %s > 0.5: most labels will be inverted", rate)
    if rate == 0:
        return pairs, []
    noisy = swap_labels(pairs, flip)
    flipped_ids = [p.id for i, p in enumerate(pairs) if i in flip]
    logger.info("flipped %d of %d pairs (rate=%s, seed=%s)", len(flip), len(pairs), rate, seed)
    return noisy, flipped_ids
