"""Planted redundant features: marker strings that agree with the preference label.

A candidate dial for error sharing (issue 13, part 2; docs/sharing_dial.md). On
exactly ``round(fraction * n)`` pairs, ``chosen_marker`` is appended to the chosen
response and ``rejected_marker`` to the rejected one. The markers have the same
length, so they add no length signal; on the marked pairs they predict the label
perfectly, so a member can fit those pairs through the marker instead of the
response's content (the classic underspecification set-up). The best-of-n pool is
never transformed: there the markers are absent, so whatever a member learned
instead of content does not carry over, and what it does on the pool is left to its
seed and backbone.

The transform is a pure function of the pairs, the fraction and the seed: gold, the
pool and the labels are untouched, and a marked pair keeps its ``id`` and ``margin``
(the same conventions as :func:`rewardherd.data.inject_label_noise`). Apply it to the
training pairs and, for an in-distribution held-out set, to the held-out pairs with
another seed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from rewardherd.data.schema import PreferencePair

#: Default markers: two-character strings of one length that the built-in world's
#: policy does not write at the end of a response (the benchmark checks the pool).
CHOSEN_MARKER = " ~~"
REJECTED_MARKER = " ^^"


def plant_markers(
    pairs: Sequence[PreferencePair],
    fraction: float,
    seed: int,
    *,
    chosen_marker: str = CHOSEN_MARKER,
    rejected_marker: str = REJECTED_MARKER,
) -> tuple[list[PreferencePair], list[str]]:
    """Append ``chosen_marker`` / ``rejected_marker`` on exactly ``round(fraction * n)`` pairs.

    The rows are drawn without replacement with ``numpy.random.default_rng(seed)``
    (Python's ``round``: halves go to the even number), so the same pairs, fraction
    and seed always mark the same rows.

    Args:
        pairs: String pairs; not modified.
        fraction: Fraction of pairs to mark, in ``[0, 1]``.
        seed: Seed for ``numpy.random.default_rng``.
        chosen_marker, rejected_marker: Non-empty, different strings of equal length.

    Returns:
        ``(marked_pairs, marked_ids)``: a new list in input order (unmarked pairs are
        the same objects) and the ids of the marked pairs, in input order.

    Raises:
        ValueError: ``fraction`` outside ``[0, 1]``, bad markers, or a conversational pair.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not math.isfinite(fraction):
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    if not (isinstance(chosen_marker, str) and isinstance(rejected_marker, str)) or not chosen_marker \
            or not rejected_marker:
        raise ValueError("markers must be non-empty strings")
    if chosen_marker == rejected_marker or len(chosen_marker) != len(rejected_marker):
        raise ValueError(f"markers must differ and have equal length (no length signal); got "
                         f"{chosen_marker!r} and {rejected_marker!r}")
    pairs = list(pairs)
    for p in pairs:
        if p.is_conversational:
            raise ValueError(f"pair {p.id}: plant_markers takes string pairs, not conversations")
    k = round(fraction * len(pairs))
    if k == 0:
        return pairs, []
    mark = set(np.random.default_rng(seed).choice(len(pairs), size=k, replace=False).tolist())
    out = [
        dataclasses.replace(p, chosen=p.chosen + chosen_marker, rejected=p.rejected + rejected_marker)
        if i in mark else p
        for i, p in enumerate(pairs)
    ]
    return out, [p.id for i, p in enumerate(pairs) if i in mark]
