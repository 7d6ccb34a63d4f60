"""Batched forward passes of sequence-classification reward models.

Shape notation: ``b`` sequences; ids are ragged lists; scores are (b,) float64.

Batches are bucketed by length (sequences sorted by length, so each batch pads to
a similar length) and right-padded; GPT-2-style models pool the last non-pad token,
BERT-style models the first token. Results are returned in the input order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (sorted by length, stable)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def pad_right(ids: Sequence[Sequence[int]], pad_id: int, *, length: int | None = None,
              rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to (rows, length) on the CPU. Returns ``(input_ids, attention_mask)``.

    ``length``/``rows`` default to the batch's own; filler rows (``rows`` > len(ids))
    hold one unmasked pad token so no row is fully masked.
    """
    t = max(len(x) for x in ids) if length is None else length
    n = len(ids) if rows is None else rows
    if t < max(len(x) for x in ids) or n < len(ids):
        raise ValueError(f"static shape ({n}, {t}) is smaller than the batch")
    input_ids = np.full((n, t), pad_id, dtype=np.int64)
    mask = np.zeros((n, t), dtype=np.int64)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = x
        mask[i, : len(x)] = 1
    mask[len(ids):, 0] = 1
    return torch.from_numpy(input_ids), torch.from_numpy(mask)


@torch.inference_mode()
def score_ids(model, ids: Sequence[Sequence[int]], pad_id: int, batch_size: int = 64) -> np.ndarray:
    """Scalar reward of each id sequence under one model, (b,) float64, input order."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.float64)
    if any(len(x) == 0 for x in ids):
        raise ValueError("cannot score an empty token sequence")
    device = next(model.parameters()).device
    out = np.empty(len(ids), dtype=np.float64)
    for batch in length_buckets([len(x) for x in ids], batch_size):
        input_ids, mask = pad_right([ids[i] for i in batch], pad_id)
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits  # (b, 1)
        out[batch] = logits[:, 0].float().cpu().numpy()
    return out
