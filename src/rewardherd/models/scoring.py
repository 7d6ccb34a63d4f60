"""Batched forward passes of sequence-classification reward models.

Shape notation: ``b`` sequences; ids are ragged lists; scores are (b,) float64.

Batches are bucketed by length (sequences sorted by length, so each batch pads to
a similar length) and right-padded; GPT-2-style models pool the last non-pad token,
BERT-style models the first token. Results are returned in the input order.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

import numpy as np
import torch

from rewardherd.core.agreement import spearman
from rewardherd.models.common import run_concurrently

log = logging.getLogger(__name__)


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


def score_ids(model, ids: Sequence[Sequence[int]], pad_id: int, batch_size: int = 64, *,
              workers: int = 1) -> np.ndarray:
    """Scalar reward of each id sequence under one model, (b,) float64, input order.

    ``workers`` > 1 (CPU only; :func:`~rewardherd.models.common.cpu_batch_workers`) runs
    that many length buckets at once (:func:`~rewardherd.models.common.run_concurrently`).
    Each sequence is still scored in the same bucket; only the kernels' thread split differs.
    """
    if len(ids) == 0:
        return np.zeros(0, dtype=np.float64)
    if any(len(x) == 0 for x in ids):
        raise ValueError("cannot score an empty token sequence")
    device = next(model.parameters()).device
    out = np.empty(len(ids), dtype=np.float64)
    buckets = length_buckets([len(x) for x in ids], batch_size)

    @torch.inference_mode()  # grad mode is per thread: each worker sets its own
    def run(part: list[np.ndarray]) -> None:
        for batch in part:
            input_ids, mask = pad_right([ids[i] for i in batch], pad_id)
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits  # (b, 1)
            out[batch] = logits[:, 0].float().cpu().numpy()

    run_concurrently(run, buckets, workers if device.type == "cpu" else 1)
    return out


# ------------------------------------------------------------ reduced precision
#: Names a ``score_dtype`` setting may take.
SCORE_DTYPES = ("float32", "bfloat16", "auto")
#: bfloat16 scores are accepted only if their Spearman correlation with float32 scores
#: on a probe of the same sequences is at least this; otherwise everything is rescored
#: in float32 (measured on the quick world: 0.99999; ``benchmarks/score_dtype.py``).
BF16_RANK_TOLERANCE = 0.999
BF16_PROBE = 1024


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether bfloat16 matmuls run natively: CUDA with bf16, or a CPU with AVX512-BF16 or AMX.
    Elsewhere bfloat16 is emulated and slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_score_dtype(name: str, device: torch.device | str = "cpu") -> str:
    """``auto`` is bfloat16 where it runs natively (:func:`native_bf16`), else float32."""
    if name not in SCORE_DTYPES:
        raise ValueError(f"score_dtype must be one of {SCORE_DTYPES}; got {name!r}")
    if name == "auto":
        return "bfloat16" if native_bf16(device) else "float32"
    return name


def score_ids_checked(model, ids: Sequence[Sequence[int]], pad_id: int, dtype: str = "float32",
                      batch_size: int = 128, probe: int = BF16_PROBE, *,
                      workers: int = 1) -> tuple[np.ndarray, dict]:
    """Score like :func:`score_ids`, in ``dtype`` (float32 | bfloat16 | auto), with a rank check.

    In bfloat16 the first ``probe`` sequences are also scored in float32; if the Spearman
    correlation of the two is below :data:`BF16_RANK_TOLERANCE` the whole set is scored
    in float32 instead. Returns ``(scores, record)``; the record says which dtype the
    scores are in and the check's outcome. ``model`` itself is not changed.
    """
    device = next(model.parameters()).device
    dtype = resolve_score_dtype(dtype, device)
    if dtype == "float32" or len(ids) < 3:
        return score_ids(model, ids, pad_id, batch_size, workers=workers), {"dtype": "float32"}
    head = list(ids[:probe])
    ref = score_ids(model, head, pad_id, batch_size, workers=workers)
    # A bfloat16 copy: casting the model itself back to float32 would leave its weights
    # rounded, and a fallback would then score with them.
    scores = score_ids(copy.deepcopy(model).to(torch.bfloat16), ids, pad_id, batch_size, workers=workers)
    rho = float(spearman(ref, scores[: len(head)]))
    record = {"dtype": "bfloat16", "probe": len(head), "spearman_vs_float32": round(rho, 6),
              "tolerance": BF16_RANK_TOLERANCE}
    if not rho >= BF16_RANK_TOLERANCE:
        log.warning("bfloat16 scores disagree with float32 on the probe (Spearman %.5f < %.3f): "
                    "scoring in float32", rho, BF16_RANK_TOLERANCE)
        return score_ids(model, ids, pad_id, batch_size, workers=workers), {**record, "dtype": "float32", "fallback": True}
    return scores, record
