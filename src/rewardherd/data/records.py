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
    """One TRL explicit-prompt record per pair: ``prompt``, ``chosen``, ``rejected`` (message
    lists copied) and ``margin`` when every pair has one; no ``id`` (TRL does not use it).
    Some pairs with a margin and others without is a ValueError (a column with nulls
    would break TRL's margin loss)."""
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
