"""Convert pairs to the records TRL's ``RewardTrainer`` expects.

TRL reads ``prompt``/``chosen``/``rejected`` columns (strings, or message lists for
conversational data) and an optional ``margin`` column; build a dataset with
``datasets.Dataset.from_list(to_trl_records(pairs))``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rewardherd.data.schema import PreferencePair, Text


def _copy(text: Text) -> Text:
    return text if isinstance(text, str) else [dict(m) for m in text]


def to_trl_records(pairs: Iterable[PreferencePair]) -> list[dict[str, Any]]:
    """Return one TRL explicit-prompt record per pair.

    Message lists are copied, so the records can be changed without touching the
    pairs. ``id`` is not included (TRL does not use it).

    Args:
        pairs: Pairs to convert.

    Returns:
        Dicts with ``prompt``, ``chosen``, ``rejected`` and, when every pair has one,
        ``margin``.

    Raises:
        ValueError: Some pairs have a margin and others do not (a column with nulls
            would break TRL's margin loss).
    """
    pairs = list(pairs)
    n_margin = sum(p.margin is not None for p in pairs)
    if 0 < n_margin < len(pairs):
        raise ValueError(
            f"{n_margin} of {len(pairs)} pairs have a margin; give all pairs a margin or none"
        )
    records = []
    for p in pairs:
        record: dict[str, Any] = {
            "prompt": _copy(p.prompt),
            "chosen": _copy(p.chosen),
            "rejected": _copy(p.rejected),
        }
        if p.margin is not None:
            record["margin"] = p.margin
        records.append(record)
    return records
