"""Planted redundant features: marker strings that agree with the preference label.

A candidate dial for error sharing (docs/sharing_dial.md). On exactly
``round(fraction * n)`` pairs, ``chosen_marker`` is appended to the chosen response and
``rejected_marker`` to the rejected one. The markers have equal length (no length
signal) and predict the label perfectly on the marked pairs, so a member can fit them
instead of the content (underspecification). The best-of-n pool is never marked, so
what a member learned instead of content does not carry over there. Like
:func:`rewardherd.data.inject_label_noise`, a marked pair keeps its ``id`` and ``margin``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from rewardherd.data.noise import pick_rows
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
    """Append ``chosen_marker`` / ``rejected_marker`` on exactly ``round(fraction * n)``
    string pairs, drawn as :func:`rewardherd.data.noise.pick_rows` draws them.

    Args:
        pairs: String pairs; not modified.
        fraction: Fraction of pairs to mark, in ``[0, 1]``.
        seed: Seed for ``numpy.random.default_rng``.
        chosen_marker, rejected_marker: Non-empty, different strings of equal length.

    Returns:
        ``(marked_pairs, marked_ids)``: a new list in input order (unmarked pairs are
        the same objects) and the ids of the marked pairs, in input order.
    """
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
    mark = pick_rows(len(pairs), fraction, seed)
    if not mark:
        return pairs, []
    out = [
        dataclasses.replace(p, chosen=p.chosen + chosen_marker, rejected=p.rejected + rejected_marker)
        if i in mark else p
        for i, p in enumerate(pairs)
    ]
    return out, [p.id for i, p in enumerate(pairs) if i in mark]
