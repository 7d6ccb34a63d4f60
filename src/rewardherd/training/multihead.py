"""Train a multi-head ensemble: one backbone, K scalar heads, one loop.

Shape notation: ``K`` heads, ``b`` preference pairs per step, ``n`` training pairs;
scores of a step are (K, b) for the chosen and the rejected responses.

TRL's RewardTrainer trains one head, so the multi-head ensemble has its own small
loop (written out, torchtune style). Each step runs the backbone once on the
chosen and rejected sequences of b pairs, which gives every head's scores, and the
loss is :func:`rewardherd.core.bradley_terry_loss` (centring term, per-pair margin,
label smoothing) averaged over heads. Heads differ by

- their initialization seed (``seeds[k]``), and
- with ``bootstrap=True``, a bootstrap resample of the training pairs per head:
  head k sees pair i ``c[k, i] ~ Multinomial(n, 1/n)`` times, which the loop realises
  by repeating pair i ``c[k, i]`` times in head k's loss term of every batch that
  holds pair i. Pairs are visited in one shared order, so the backbone still runs
  once per step for all heads.

Departure from the papers: this is *not* a pretrain-seed ensemble, nor a
fine-tune-seed one; the heads share the whole fine-tuned backbone, so they are
less diverse (see :mod:`rewardherd.models.multihead`).

Optimizer and schedule match the TRL member path: AdamW, ``config.lr_scheduler``
with linear warm-up over ``config.warmup_ratio`` of the steps, gradient norm
clipped at 1.0 (TRL's default), fp32 on CPU.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from rewardherd import core
from rewardherd.config import config_hash
from rewardherd.data.resample import bootstrap_counts
from rewardherd.io import atomic_dir
from rewardherd.models.common import default_device
from rewardherd.models.formatting import encode_batch, pad_token_id
from rewardherd.models.manifest import Manifest, ManifestError, MemberInfo
from rewardherd.models.multihead import BACKBONE_DIR, FORMAT, MultiHeadRewardModel
from rewardherd.models.scoring import pad_right
from rewardherd.models.vectorized import GroupScorer
from rewardherd.training.batched import MAX_GRAD_NORM, adamw, schedule, total_steps
from rewardherd.training.config import TrainConfig
from rewardherd.training.ensemble import PlanMismatchError, data_fingerprint

log = logging.getLogger(__name__)

KIND = "multi_head"


def multihead_loss(chosen: torch.Tensor, rejected: torch.Tensor, *, counts: torch.Tensor | None = None,
                   margin: torch.Tensor | None = None, center_coef: float = 0.01,
                   label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean over heads of each head's Bradley-Terry loss on its (resampled) pairs.

    ``chosen``, ``rejected``: (K, b); ``counts``: (K, b) bootstrap multiplicities per
    head (None: all 1); ``margin``: (b,). Heads whose resample holds none of the b pairs
    are left out.
    """
    kw = {"center_coef": center_coef, "label_smoothing": label_smoothing}
    if counts is None:
        m = None if margin is None else margin[None, :].expand_as(chosen)
        return core.bradley_terry_loss(chosen, rejected, margin=m, **kw)
    terms = []
    for k in range(chosen.shape[0]):
        if int(counts[k].sum()) == 0:
            continue
        rep = counts[k]
        m = None if margin is None else margin.repeat_interleave(rep)
        terms.append(core.bradley_terry_loss(chosen[k].repeat_interleave(rep), rejected[k].repeat_interleave(rep),
                                             margin=m, **kw))
    if not terms:
        return chosen.sum() * 0.0  # keeps the graph; no head drew any of these pairs
    return torch.stack(terms).mean()


def evaluate_heads(model: MultiHeadRewardModel, tokenizer, pairs, max_length: int, batch_size: int = 64) -> list[dict]:
    """Per-head held-out accuracy and score statistics (one backbone pass per bucket)."""
    prompts = [p.prompt for p in pairs]
    c_ids, _ = encode_batch(tokenizer, prompts, [p.chosen for p in pairs], max_length)
    r_ids, _ = encode_batch(tokenizer, prompts, [p.rejected for p in pairs], max_length)
    views = model.views()
    scores = GroupScorer("auto").score(views, c_ids + r_ids, pad_token_id(tokenizer), batch_size)  # (K, 2n)
    sc, sr = scores[:, : len(pairs)], scores[:, len(pairs):]
    mean, std = core.member_statistics(scores)
    return [{"accuracy": core.preference_accuracy(sc[k], sr[k]), "mean": float(mean[k]), "std": float(std[k]),
             "n": int(scores.shape[1])} for k in range(model.n_heads)]


def train_multihead_ensemble(
    train_pairs: Sequence,
    heldout_pairs: Sequence,
    out_dir: str | Path,
    backbone: str | Path,
    n_heads: int,
    config: TrainConfig = TrainConfig(),
    *,
    seeds: Sequence[int] | None = None,
    bootstrap: bool = False,
    label_smoothing: float = 0.0,
    overwrite: bool = False,
    progress: bool = True,
) -> Manifest:
    """Train K heads on one backbone and write a multi-head ensemble directory
    (format: :mod:`rewardherd.models.multihead`); returns its manifest.

    The held-out pairs give each head's accuracy and standardization statistics.
    ``config.lora_r`` must be None (the backbone is trained in full). ``seeds[k]`` is
    head k's initialization and bootstrap seed (default 0..K-1); ``seeds[0]`` also
    seeds the data order and dropout. ``bootstrap`` resamples the training pairs per
    head; ``label_smoothing`` is alpha of :func:`rewardherd.core.bradley_terry_loss`.
    ``overwrite`` replaces a directory trained with a different plan; the same plan
    finds the finished directory and returns its manifest.
    """
    from transformers import AutoTokenizer

    out_dir = Path(out_dir)
    seeds = tuple(range(n_heads)) if seeds is None else tuple(int(s) for s in seeds)
    _check_args(seeds, n_heads, config, train_pairs, heldout_pairs)
    plan = config_hash({"kind": KIND, "backbone": str(backbone), "n_heads": n_heads, "seeds": list(seeds),
                        "bootstrap": bootstrap, "label_smoothing": label_smoothing, "train": config.hashed(),
                        "data": data_fingerprint(list(train_pairs) + list(heldout_pairs))})
    if out_dir.exists():
        existing = _existing(out_dir, plan, overwrite)
        if existing is not None:
            return existing
    t0 = time.time()
    device = torch.device(config.device) if config.device else default_device()
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"{backbone}: tokenizer has neither pad nor eos token")
        tokenizer.pad_token = tokenizer.eos_token
    model = MultiHeadRewardModel.from_backbone(backbone, n_heads, seeds, pad_id=pad_token_id(tokenizer))
    model.to(device).train()
    data = _encode(tokenizer, train_pairs, config)
    counts = torch.from_numpy(bootstrap_counts(len(train_pairs), seeds)) if bootstrap else None
    losses = _fit(model, data, counts, config, seeds[0], label_smoothing, device, progress)

    model.eval()
    stats = evaluate_heads(model, tokenizer, heldout_pairs, config.max_length, config.eval_batch_size)
    seconds = round(time.time() - t0, 2)
    shared_cfg = {**asdict(config), "n_heads": n_heads, "bootstrap": bootstrap, "label_smoothing": label_smoothing,
                  "n_train_pairs": len(train_pairs), "n_truncated": data["n_truncated"], "steps": len(losses),
                  "first_loss": losses[0], "last_loss": losses[-1], "seconds": seconds}
    members = []
    for k, st in enumerate(stats):
        cfg = dict(shared_cfg)
        if counts is not None:
            cfg["bootstrap_unique_pairs"] = int((counts[k] > 0).sum())
        members.append(MemberInfo(
            name=f"head_{k}", path=BACKBONE_DIR, backbone=str(backbone), finetune_seed=seeds[k], format=FORMAT,
            head=k, heldout_accuracy=st["accuracy"], n_heldout_pairs=len(heldout_pairs),
            standardization={"mean": st["mean"], "std": st["std"], "n": st["n"]}, train_config=cfg,
        ))
    manifest = Manifest(kind=KIND, members=members, max_length=config.max_length, complete=True, config_hash=plan)
    with atomic_dir(out_dir, replace=True) as staged:
        model.save(staged / BACKBONE_DIR, tokenizer)
        manifest.write(staged)
    log.info("multi-head ensemble: %d heads, held-out accuracy %s in %.1fs", n_heads,
             [round(s["accuracy"], 3) for s in stats], seconds)
    return manifest


def _check_args(seeds, n_heads: int, config: TrainConfig, train_pairs, heldout_pairs) -> None:
    if len(seeds) != n_heads:
        raise ValueError(f"{len(seeds)} seeds for {n_heads} heads")
    if config.lora_r is not None:
        raise ValueError("multi-head ensembles train the backbone in full; set lora_r=None")
    if config.shared_head_init:
        raise ValueError("multi-head ensembles need distinct head initializations; set shared_head_init=False")
    if config.member_label_noise:
        raise ValueError("multi-head ensembles draw one batch for every head, so heads cannot see different "
                         "labels; set member_label_noise=0")
    if config.subsample is not None:
        raise ValueError("multi-head ensembles draw one batch for every head; resample heads with bootstrap, "
                         "and set subsample=None")
    if len(train_pairs) == 0 or len(heldout_pairs) == 0:
        raise ValueError(f"need training and held-out pairs (got {len(train_pairs)}, {len(heldout_pairs)})")


def _encode(tokenizer, train_pairs, config: TrainConfig) -> dict:
    """Token ids of every pair's chosen and rejected response, margins (or None), truncation count."""
    prompts = [p.prompt for p in train_pairs]
    c_ids, tc = encode_batch(tokenizer, prompts, [p.chosen for p in train_pairs], config.max_length)
    r_ids, tr = encode_batch(tokenizer, prompts, [p.rejected for p in train_pairs], config.max_length)
    if tc + tr:
        log.warning("%d of %d training sequences exceed max_length=%d and were truncated", tc + tr,
                    2 * len(train_pairs), config.max_length)
    margins = [p.margin for p in train_pairs]
    margin_all = None
    if any(m is not None for m in margins):
        margin_all = torch.tensor([0.0 if m is None else float(m) for m in margins])
    return {"chosen": c_ids, "rejected": r_ids, "margin": margin_all, "n_truncated": tc + tr,
            "pad": pad_token_id(tokenizer)}


def _fit(model, data: dict, counts, config: TrainConfig, seed: int, label_smoothing: float, device,
         progress: bool) -> list[float]:
    """The joint training loop: seed ``seed`` orders the data and seeds dropout. Returns the loss per step."""
    from tqdm.auto import tqdm

    c_ids, r_ids, margin_all = data["chosen"], data["rejected"], data["margin"]
    n = len(c_ids)
    total = total_steps(n, config)
    optimizer = adamw([{"params": list(model.parameters()), "weight_decay": config.weight_decay}], lr=config.lr)
    scheduler = schedule(optimizer, config, total)
    torch.manual_seed(seed)  # dropout
    order_rng = np.random.default_rng(seed)
    losses: list[float] = []
    bar = tqdm(total=total, desc="multi-head", unit="step", disable=not progress)
    order = np.empty(0, dtype=np.int64)
    while len(losses) < total:
        if len(order) == 0:
            order = order_rng.permutation(n)
        idx, order = order[: config.batch_size], order[config.batch_size:]
        input_ids, mask = pad_right([c_ids[i] for i in idx] + [r_ids[i] for i in idx], data["pad"])
        scores = model(input_ids.to(device), mask.to(device)).float().T  # (K, 2b)
        loss = multihead_loss(
            scores[:, : len(idx)], scores[:, len(idx):],
            counts=None if counts is None else counts[:, torch.from_numpy(idx)].to(device),
            margin=None if margin_all is None else margin_all[torch.from_numpy(idx)].to(device),
            center_coef=config.center_coef, label_smoothing=label_smoothing,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    bar.close()
    return losses


def _existing(out_dir: Path, plan: str, overwrite: bool) -> Manifest | None:
    """The finished manifest for this plan, or None after clearing the way."""
    try:
        existing = Manifest.read(out_dir)
    except ManifestError:
        existing = None
    if existing is not None and existing.config_hash == plan and existing.complete:
        log.info("%s already holds this multi-head ensemble; keeping it", out_dir)
        return existing
    if not overwrite:
        if existing is not None:
            raise PlanMismatchError(f"{out_dir} holds an ensemble trained with a different configuration; "
                                    "choose another out_dir or pass overwrite=True")
        raise FileExistsError(f"{out_dir} exists and is not an ensemble directory; choose another out_dir")
    log.warning("overwrite: replacing %s", out_dir)
    return None
