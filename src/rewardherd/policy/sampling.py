"""Batched, seeded sampling of continuations from a Hugging Face causal LM.

Used for the world's preference data, best-of-n pools and evaluation samples.

Reproducibility. Each row (prompt, sample_id) draws its tokens by inverse-CDF sampling
with its own counter-based uniform stream ``u(seed, sha256(prompt), sample_id, step)``
(a SplitMix64 hash, computed in numpy), instead of one global torch RNG. Hence, up to
floating-point ties:

- the same (model, prompt, sample_id, seed, settings) gives the same response whatever
  the batch size, the batch composition, the other prompts in the call, or ``n``
  (the first 128 samples of a pool of 512 are a pool of 128);
- identical prompts with the same sample_id give identical responses (ask for ``n``
  samples rather than repeating a prompt).

"Up to floating-point ties": logits of one row can differ in the last bits between
batch compositions (padding changes the matmul shapes), which flips a token only when
the row's uniform falls within ~1e-6 of a CDF boundary.

Implementation: a KV-cached loop over ``model(...)`` with left padding and explicit
``position_ids`` rather than ``generate``, whose per-step overhead is comparable to a
tiny model itself (measured in docs/performance.md). Rows that have finished are
dropped from the batch (and from the cache) as they end.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

logger = logging.getLogger(__name__)

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    # SplitMix64 finalizer (Steele et al. 2014); uint64 arithmetic wraps in numpy.
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def row_keys(prompts: Sequence[str], sample_ids: Sequence[int], seed: int) -> np.ndarray:
    """Per-row 64-bit stream keys from (seed, prompt text, sample id): uint64, (rows,)."""
    ph = np.array([int.from_bytes(hashlib.sha256(p.encode()).digest()[:8], "little")
                   for p in prompts], dtype=np.uint64)
    sid = np.asarray(sample_ids, dtype=np.uint64)
    with np.errstate(over="ignore"):
        k = _splitmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) ^ ph)
        return _splitmix64(k ^ (sid * np.uint64(0xD1B54A32D192ED03)))


def row_uniforms(keys: np.ndarray, step: int) -> np.ndarray:
    """Uniforms in [0, 1) for each row at one decoding step. Shape (rows,), float64."""
    with np.errstate(over="ignore"):
        z = _splitmix64(keys ^ _splitmix64(np.full_like(keys, step + 1)))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def _pick(logits: torch.Tensor, u: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Inverse-CDF draw per row. logits (b, V) float; u (b,) float64 -> (b,) long."""
    if temperature == 0.0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.double() / temperature, dim=-1)  # (b, V)
    order = None
    if top_p < 1.0:
        probs, order = probs.sort(dim=-1, descending=True, stable=True)
        probs = probs * ((probs.cumsum(-1) - probs) < top_p)  # always keeps the top token
    cdf = probs.cumsum(-1)
    idx = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1)).clamp_max(cdf.shape[1] - 1)
    return (idx if order is None else order.gather(-1, idx)).squeeze(-1)


@torch.inference_mode()
def _generate_batch(
    model: Any,
    prompt_ids: list[list[int]],
    keys: np.ndarray,
    *,
    max_new_tokens: int,
    min_new_tokens: int,
    temperature: float,
    top_p: float,
    eos_id: int | None,
    pad_id: int,
) -> list[list[int]]:
    from transformers import DynamicCache

    b = len(prompt_ids)
    width = max(len(p) for p in prompt_ids)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    for i, p in enumerate(prompt_ids):  # left padding
        ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p):] = 1
    positions = (mask.cumsum(-1) - 1).clamp_min(0)
    cache = DynamicCache()
    # The DynamicCache is updated in place (transformers >= 5 names the kwarg `cache`).
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                cache=cache, use_cache=True)
    logits = out.logits[:, -1, :].float()
    next_pos = positions[:, -1] + 1  # (b,)
    alive = torch.arange(b)  # original row index of each live row
    results: list[list[int]] = [[] for _ in range(b)]
    for step in range(max_new_tokens):
        if pad_id != eos_id:
            logits[:, pad_id] = float("-inf")  # padding is not text
        if eos_id is not None and step < min_new_tokens:
            logits[:, eos_id] = float("-inf")
        u = torch.from_numpy(row_uniforms(keys[alive.numpy()], step))
        tok = _pick(logits, u, temperature, top_p)
        for row, t in zip(alive.tolist(), tok.tolist(), strict=True):
            results[row].append(t)
        done = tok == eos_id if eos_id is not None else torch.zeros(len(alive), dtype=torch.bool)
        if step == max_new_tokens - 1:
            break
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(-1)
            if keep.numel() == 0:
                break
            alive, tok, next_pos, mask = alive[keep], tok[keep], next_pos[keep], mask[keep]
            cache.batch_select_indices(keep)
        mask = torch.cat([mask, torch.ones((len(alive), 1), dtype=torch.long)], dim=1)
        out = model(input_ids=tok[:, None], attention_mask=mask, position_ids=next_pos[:, None],
                    cache=cache, use_cache=True)
        logits = out.logits[:, -1, :].float()
        next_pos = next_pos + 1
    return results


def generate_ids(model: Any, prompt_ids: list[list[int]], keys: np.ndarray, *, max_new_tokens: int,
                 temperature: float, top_p: float, eos_id: int | None, pad_id: int, min_new_tokens: int = 0,
                 batch_size: int | None = None) -> list[list[int]]:
    """Sampled continuation ids of each prompt (its ids ``prompt_ids[r]``, its stream key ``keys[r]``),
    each ending at its first EOS (kept) or after ``max_new_tokens``; the model's train/eval mode is
    left as it is. ``batch_size`` rows per KV-cached pass (None: all at once)."""
    step = len(prompt_ids) if batch_size is None else batch_size
    out: list[list[int]] = []
    for start in range(0, len(prompt_ids), max(1, step)):
        out += _generate_batch(model, prompt_ids[start:start + step], keys[start:start + step],
                               max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                               temperature=temperature, top_p=top_p, eos_id=eos_id, pad_id=pad_id)
    return out


def _sample_rows(
    model: Any,
    row_ids: list[list[int]],
    keys: np.ndarray,
    order: np.ndarray,
    *,
    batch_size: int,
    progress: bool,
    **generate: Any,
) -> list[list[int]]:
    """Sampled token ids of every row (its prompt ids ``row_ids[r]``, its stream key
    ``keys[r]``), in batches of ``batch_size`` rows taken in ``order``; ``generate`` are
    :func:`_generate_batch`'s settings. The model is in eval mode meanwhile."""
    from tqdm.auto import tqdm

    tokens_out: list[list[int]] = [[] for _ in range(len(row_ids))]
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(order), desc="sampling", disable=not progress, leave=False)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        res = _generate_batch(model, [row_ids[r] for r in chunk], keys[chunk], **generate)
        for r, toks in zip(chunk, res, strict=True):
            tokens_out[r] = toks
        bar.update(len(chunk))
    bar.close()
    model.train(was_training)
    return tokens_out


def sample_continuations(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    n: int = 1,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    min_new_tokens: int = 1,
    batch_size: int = 256,
    seed: int = 0,
    prompt_ids: Sequence[Any] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Sample ``n`` continuations of every prompt.

    ``tokenizer(prompt)`` must add any BOS the model needs (the world tokenizer prepends
    ``<|endoftext|>``). ``temperature`` 0 is greedy (then all samples are equal); ``top_p``
    1 disables the nucleus; EOS is masked before ``min_new_tokens`` new tokens, and the
    pad token, when distinct from EOS, is never sampled. ``batch_size`` counts rows
    (prompt x sample) per forward pass; ``seed`` is the stream seed (the module docstring
    says what it reproduces); ``prompt_ids`` default to the prompts' indices.

    Returns p * n rows ordered by (prompt, sample) with columns ``prompt_id``, ``prompt``,
    ``sample_id``, ``response`` (decoded new tokens, EOS excluded; it usually starts with a
    space so ``prompt + response`` is the full text), ``response_ids`` (every sampled id,
    the EOS included when emitted, for exact sequence log-probs), ``n_tokens`` (response
    tokens, EOS excluded) and ``stopped`` (True if the model emitted EOS).
    """
    if n < 1 or max_new_tokens < 1 or batch_size < 1:
        raise ValueError("n, max_new_tokens and batch_size must be >= 1")
    if temperature < 0.0 or not 0.0 < top_p <= 1.0:
        raise ValueError("temperature must be >= 0 and top_p in (0, 1]")
    if prompt_ids is not None and len(prompt_ids) != len(prompts):
        raise ValueError("prompt_ids must have one id per prompt")
    ids = list(prompt_ids) if prompt_ids is not None else list(range(len(prompts)))
    encoded = tokenizer(list(prompts), add_special_tokens=True)["input_ids"]
    max_pos = getattr(model.config, "n_positions", None) or getattr(
        model.config, "max_position_embeddings", None)
    if max_pos is not None and max(len(e) for e in encoded) + max_new_tokens > max_pos:
        raise ValueError(f"prompt + max_new_tokens exceeds the model's {max_pos} positions")
    eos_id = tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos_id or 0)

    rows_p = np.repeat(np.arange(len(prompts)), n)
    rows_s = np.tile(np.arange(n), len(prompts))
    keys = row_keys([prompts[i] for i in rows_p], rows_s, seed)
    # Group rows of similar prompt length to limit padding; stable, so deterministic.
    order = np.argsort(np.array([len(encoded[i]) for i in rows_p]), kind="stable")
    tokens_out = _sample_rows(
        model, [encoded[i] for i in rows_p], keys, order, batch_size=batch_size, progress=progress,
        max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
        temperature=temperature, top_p=top_p, eos_id=eos_id, pad_id=pad_id,
    )
    stopped = np.array([eos_id is not None and len(t) > 0 and t[-1] == eos_id
                        for t in tokens_out], dtype=bool)
    texts = tokenizer.batch_decode([t[:-1] if s else t for t, s in zip(tokens_out, stopped,
                                                                       strict=True)],
                                   skip_special_tokens=True)
    return pd.DataFrame({
        "prompt_id": [ids[i] for i in rows_p],
        "prompt": [prompts[i] for i in rows_p],
        "sample_id": rows_s,
        "response": texts,
        "response_ids": tokens_out,
        "n_tokens": np.array([len(t) for t in tokens_out]) - stopped,
        "stopped": stopped,
    })
