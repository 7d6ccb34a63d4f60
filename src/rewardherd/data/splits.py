"""Deterministic train / held-out splits grouped by prompt.

A pair goes to the held-out set when a SHA-256 hash of ``salt`` and its prompt's
canonical JSON falls below ``heldout_fraction``. All pairs with the same prompt land
on the same side, the assignment does not depend on row order or on the other pairs,
and it is the same on every machine (unlike Python's salted ``hash()``). The held-out
share is therefore only approximately ``heldout_fraction``, more so with few prompts.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterable

from rewardherd.data.schema import PreferencePair, Text, canonical_json

logger = logging.getLogger(__name__)


def prompt_unit_hash(prompt: Text, salt: str = "rewardherd") -> float:
    """A prompt's stable number in ``[0, 1)``: the first 64 bits of
    ``sha256(salt + "\\0" + canonical_json(prompt))`` / 2**64 (canonical JSON, so ``"x"`` and
    a conversation never collide). Another ``salt`` gives an independent assignment."""
    payload = f"{salt}\0{canonical_json(prompt)}".encode()
    return int.from_bytes(hashlib.sha256(payload).digest()[:8], "big") / 2.0**64


def split_by_prompt(
    pairs: Iterable[PreferencePair],
    heldout_fraction: float = 0.1,
    salt: str = "rewardherd",
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """``(train, heldout)`` with no prompt on both sides, order kept within each side;
    ``heldout_fraction`` in ``[0, 1]`` is the expected share of prompts held out."""
    if (
        isinstance(heldout_fraction, bool)
        or not isinstance(heldout_fraction, int | float)
        or not math.isfinite(heldout_fraction)
        or not 0 <= heldout_fraction <= 1
    ):
        raise ValueError(f"heldout_fraction must be in [0, 1], got {heldout_fraction!r}")
    train: list[PreferencePair] = []
    heldout: list[PreferencePair] = []
    n_empty_prompt = 0
    for pair in pairs:
        n_empty_prompt += len(pair.prompt) == 0
        if prompt_unit_hash(pair.prompt, salt) < heldout_fraction:
            heldout.append(pair)
        else:
            train.append(pair)
    if n_empty_prompt > 1:
        # Implicit-prompt data with no shared prefix has prompt "": one group, one side.
        logger.warning(
            "%d pairs have an empty prompt; they all fall on the same side of the split",
            n_empty_prompt,
        )
    logger.info(
        "split %d pairs: %d train, %d held out", len(train) + len(heldout), len(train), len(heldout)
    )
    return train, heldout
