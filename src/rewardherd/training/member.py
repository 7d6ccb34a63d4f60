"""Train one reward member with TRL's RewardTrainer.

rewardherd tokenizes the pairs itself (:mod:`rewardherd.models.formatting`) and hands
TRL pre-tokenized ``chosen_ids``/``rejected_ids``, so training and scoring see the
same ids and nothing is dropped silently (TRL filters over-long pairs; we truncate
and count instead). TRL computes the Bradley-Terry loss with the centring term
(``center_rewards_coefficient``) and the optional per-pair margin; label smoothing is
not available through TRL and is only offered by rewardherd's own multi-head loop.

CPU defaults: bf16 and gradient checkpointing off (TRL's defaults are on), so
scores are exact and runs are deterministic.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rewardherd import core
from rewardherd.data.noise import member_flips, swap_labels
from rewardherd.data.resample import member_counts, repeat_pairs
from rewardherd.io import atomic_dir, write_table_atomic
from rewardherd.models.common import default_device, fused_gelu
from rewardherd.models.ensemble import tokenizer_fingerprint
from rewardherd.models.formatting import encode, pad_token_id
from rewardherd.models.manifest import MemberInfo
from rewardherd.models.scoring import score_ids
from rewardherd.training.config import MemberSpec, TrainConfig

log = logging.getLogger(__name__)

#: Seed of the reward head of every member when ``TrainConfig.shared_head_init`` is on.
SHARED_HEAD_SEED = 0


def is_main_process() -> bool:
    """True outside distributed launches and on rank 0 of `accelerate launch` / torchrun."""
    return int(os.environ.get("RANK", "0")) == 0


def _pairs_columns(pairs) -> tuple[list, list, list, list]:
    return tuple([getattr(p, f) for p in pairs] for f in ("prompt", "chosen", "rejected", "margin"))


#: Token ids this process has computed, per (tokenizer fingerprint, max_length): a study or a
#: `train` run fits many members on the same pairs, and tokenizing them again is ~10% of a
#: tiny member's training time. Chat-format pairs (lists of messages) are not cached.
_ENCODED: dict[tuple[str, int], dict[tuple[str, str], tuple[list[int], bool]]] = {}


def _encode_batch(tokenizer, prompts, responses, max_length: int) -> tuple[list[list[int]], int]:
    """:func:`~rewardherd.models.formatting.encode` of each pair, memoized in :data:`_ENCODED`."""
    if not all(isinstance(x, str) for x in (*prompts, *responses)):
        encoded = [encode(tokenizer, p, r, max_length) for p, r in zip(prompts, responses, strict=True)]
    else:
        key = (tokenizer_fingerprint(tokenizer), max_length)
        if key not in _ENCODED and len(_ENCODED) >= 2:
            _ENCODED.pop(next(iter(_ENCODED)))
        memo = _ENCODED.setdefault(key, {})
        for pr in zip(prompts, responses, strict=True):
            if pr not in memo:
                memo[pr] = encode(tokenizer, *pr, max_length)
        encoded = [memo[pr] for pr in zip(prompts, responses, strict=True)]
    return [list(ids) for ids, _ in encoded], sum(t for _, t in encoded)


def tokenize_pairs(tokenizer, pairs, max_length: int) -> tuple[list[dict], int]:
    """Pre-tokenized rows for TRL (chosen_ids, rejected_ids[, margin]) and the number
    of sequences that were truncated."""
    prompts, chosen, rejected, margins = _pairs_columns(pairs)
    c_ids, tc = _encode_batch(tokenizer, prompts, chosen, max_length)
    r_ids, tr = _encode_batch(tokenizer, prompts, rejected, max_length)
    has_margin = any(m is not None for m in margins)
    rows = []
    for c, r, m in zip(c_ids, r_ids, margins, strict=True):
        row = {"chosen_ids": c, "rejected_ids": r}
        if has_margin:
            row["margin"] = float(m if m is not None else 0.0)
        rows.append(row)
    return rows, tc + tr


def evaluate_pairs(model, tokenizer, pairs, max_length: int, batch_size: int = 64) -> dict:
    """Held-out accuracy and the member's score statistics on held-out responses."""
    prompts, chosen, rejected, _ = _pairs_columns(pairs)
    pad = pad_token_id(tokenizer)
    c_ids, _ = _encode_batch(tokenizer, prompts, chosen, max_length)
    r_ids, _ = _encode_batch(tokenizer, prompts, rejected, max_length)
    sc = score_ids(model, c_ids, pad, batch_size)
    sr = score_ids(model, r_ids, pad, batch_size)
    mean, std = core.member_statistics(np.concatenate([sc, sr]))
    return {
        "accuracy": core.preference_accuracy(sc, sr),
        "mean": float(mean[0]),
        "std": float(std[0]),
        "n": int(2 * len(pairs)),
        "chosen_scores": sc,
        "rejected_scores": sr,
    }


def check_backbone(backbone: str | Path) -> None:
    """Raise ValueError naming ``backbone`` unless its config and tokenizer load and it
    has safetensors weights (cheap: no weights are read). Run before any output is
    created, so a typo never leaves a half-made ensemble directory behind."""
    from transformers import AutoConfig, AutoTokenizer

    from rewardherd.models.multihead import quiet_transformers

    path = Path(backbone)
    if path.is_dir() and not any(path.glob("*.safetensors")):
        raise ValueError(f"backbone {backbone}: no .safetensors weights (rewardherd never loads pickled weights)")
    try:
        with quiet_transformers():
            AutoConfig.from_pretrained(backbone)
            tok = AutoTokenizer.from_pretrained(backbone)
    except Exception as e:  # OSError, ValueError, json and tokenizers errors, offline hub misses
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if not path.exists():
            raise ValueError(f"backbone {backbone}: not found (no such directory, and no hub model of that name "
                             "could be loaded)") from None
        raise ValueError(f"backbone {backbone}: cannot load its config and tokenizer ({type(e).__name__}: "
                         f"{first})"[:500]) from None
    if tok.pad_token is None and tok.eos_token is None:
        raise ValueError(f"backbone {backbone}: tokenizer has neither pad nor eos token")


def _load_for_training(spec: MemberSpec, cfg: TrainConfig, seed: int):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec.backbone)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"{spec.backbone}: tokenizer has neither pad nor eos token")
        tokenizer.pad_token = tokenizer.eos_token
    # The score head is initialized from torch's global RNG: seed it (the fine-tune seed,
    # or one seed shared by all members so their weights can be averaged, as WARM needs).
    torch.manual_seed(SHARED_HEAD_SEED if cfg.shared_head_init else seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        spec.backbone, num_labels=1, dtype=torch.float32, use_safetensors=True
    )
    model.config.pad_token_id = pad_token_id(tokenizer)
    return fused_gelu(model), tokenizer


def _check_member_args(out_dir: Path, train_pairs, heldout_pairs, name: str, config: TrainConfig,
                       merge_lora: bool) -> None:
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists; refusing to overwrite a trained member")
    if len(train_pairs) == 0 or len(heldout_pairs) == 0:
        raise ValueError(f"member {name}: need training and held-out pairs (got {len(train_pairs)}, {len(heldout_pairs)})")
    if not merge_lora and config.lora_r is None:
        raise ValueError("merge_lora=False needs a LoRA member (config.lora_r)")


def _peft_config(config: TrainConfig):
    if config.lora_r is None:
        return None
    from peft import LoraConfig, TaskType

    return LoraConfig(task_type=TaskType.SEQ_CLS, r=config.lora_r, lora_alpha=config.lora_alpha,
                      modules_to_save=["score"])


def _reward_config(config: TrainConfig, work: Path, seed: int, device: torch.device, n_rows: int, progress: bool):
    from trl import RewardConfig

    return RewardConfig(
        output_dir=str(work / "trainer"),
        learning_rate=config.lr,
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        seed=seed,
        data_seed=seed,
        bf16=config.bf16 and device.type == "cuda",
        gradient_checkpointing=False,
        center_rewards_coefficient=config.center_coef if config.center_coef != 0 else None,
        max_length=None,
        report_to="none",
        save_strategy="no",
        logging_strategy="steps",
        logging_steps=max(1, n_rows // config.batch_size // 10),
        disable_tqdm=not progress,
        use_cpu=device.type == "cpu",
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )


def _run_trl(model, tokenizer, rows: list[dict], args, peft_config, progress: bool):
    """Fit ``model`` with TRL's RewardTrainer; returns the trainer (its model is the trained one)."""
    from datasets import Dataset
    from transformers.utils import logging as hf_logging
    from trl import RewardTrainer

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                processing_class=tokenizer, peft_config=peft_config)
        if not progress:
            from transformers.trainer_callback import PrinterCallback

            trainer.remove_callback(PrinterCallback)  # it prints every log dict when tqdm is off
        trainer.train()
    finally:
        hf_logging.set_verbosity(verbosity)
    return trainer


def _finish_member(model, tokenizer, spec: MemberSpec, heldout_pairs, out_dir: Path, *, name: str,
                   config: TrainConfig, merge_lora: bool, heldout_scores, write: bool, train_record: dict) -> MemberInfo:
    """Evaluate a trained member on the held-out pairs, save it (atomically, where ``write``) and
    return its manifest entry; ``train_record`` joins the config in the entry's ``train_config``."""
    model.eval()
    ev = evaluate_pairs(model, tokenizer, heldout_pairs, config.max_length, config.eval_batch_size)
    if write:
        with atomic_dir(out_dir) as staged:
            model.save_pretrained(staged, safe_serialization=True)
            tokenizer.save_pretrained(staged)
        if heldout_scores is not None:
            write_table_atomic(pd.DataFrame({"id": [p.id for p in heldout_pairs], "chosen": ev["chosen_scores"],
                                             "rejected": ev["rejected_scores"]}), Path(heldout_scores))
    info = MemberInfo(
        name=name,
        path=out_dir.name,
        backbone=str(spec.backbone),
        finetune_seed=spec.finetune_seed,
        pretrain_seed=spec.pretrain_seed,
        format="hf" if merge_lora else "lora",
        heldout_accuracy=ev["accuracy"],
        n_heldout_pairs=len(heldout_pairs),
        standardization={"mean": ev["mean"], "std": ev["std"], "n": ev["n"]},
        train_config={**asdict(config), **train_record},
    )
    log.info("member %s: held-out accuracy %.3f (%d pairs)", name, ev["accuracy"], len(heldout_pairs))
    return info


def train_member(
    spec: MemberSpec,
    train_pairs: Sequence,
    heldout_pairs: Sequence,
    out_dir: str | Path,
    *,
    name: str,
    config: TrainConfig = TrainConfig(),
    progress: bool = True,
    merge_lora: bool = True,
    heldout_scores: str | Path | None = None,
) -> MemberInfo:
    """Train one member with TRL's RewardTrainer and save it as a standalone HF directory at ``out_dir``.

    The directory is written to a temporary sibling and renamed into place, so a
    killed run never leaves a half-written member behind.

    With ``config.lora_r`` set, the adapter is merged into the backbone by default
    (a standalone member). ``merge_lora=False`` keeps it unmerged: ``out_dir`` then
    holds the peft adapter (``adapter_config.json`` + ``adapter_model.safetensors``,
    score head included via ``modules_to_save``) and the tokenizer, and the entry's
    format is ``"lora"`` (see :mod:`rewardherd.models.lora`). Returns the member's
    manifest entry (held-out accuracy, standardization statistics). ``heldout_scores``: also
    write the member's score of each held-out pair's responses there (Parquet: ``id``,
    ``chosen``, ``rejected``), from the same pass that measures its accuracy.
    """
    out_dir = Path(out_dir)
    _check_member_args(out_dir, train_pairs, heldout_pairs, name, config, merge_lora)
    t0 = time.time()
    seed = spec.finetune_seed
    n_given = len(train_pairs)
    if config.member_label_noise:
        train_pairs = swap_labels(train_pairs, member_flips(n_given, config.member_label_noise, seed))
    counts = member_counts(n_given, seed, bootstrap=config.bootstrap, subsample=config.subsample,
                           subsample_shared=config.subsample_shared)
    if counts is not None:
        train_pairs = repeat_pairs(train_pairs, counts)
        log.info("member %s: its resample holds %d distinct of %d pairs", name, int((counts > 0).sum()), n_given)
    device = torch.device(config.device) if config.device else default_device()
    model, tokenizer = _load_for_training(spec, config, seed)
    rows, n_trunc = tokenize_pairs(tokenizer, train_pairs, config.max_length)
    if n_trunc:
        log.warning("member %s: %d of %d training sequences exceed max_length=%d and were truncated",
                    name, n_trunc, 2 * len(rows), config.max_length)
    peft_config = _peft_config(config)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent if out_dir.parent.exists() else None))
    try:
        trainer = _run_trl(model, tokenizer, rows, _reward_config(config, work, seed, device, len(rows), progress),
                           peft_config, progress)
        model = trainer.model
        if peft_config is not None and merge_lora:
            model = model.merge_and_unload()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        # Under `accelerate launch` every process trains (DDP); only the main one writes.
        info = _finish_member(
            model, tokenizer, spec, heldout_pairs, out_dir, name=name, config=config, merge_lora=merge_lora,
            heldout_scores=heldout_scores, write=trainer.accelerator.is_main_process,
            train_record={"n_train_pairs": n_given, "n_distinct_train_pairs": len({id(p) for p in train_pairs}),
                          "n_truncated": n_trunc, "first_loss": losses[0] if losses else None,
                          "last_loss": losses[-1] if losses else None, "seconds": round(time.time() - t0, 2),
                          "num_processes": trainer.accelerator.num_processes})
        trainer.accelerator.wait_for_everyone()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return info


def train_members(
    specs: Sequence[MemberSpec],
    train_pairs: Sequence,
    heldout_pairs: Sequence,
    out_dirs: Sequence[str | Path],
    *,
    names: Sequence[str],
    config: TrainConfig = TrainConfig(),
    progress: bool = True,
    heldout_scores: Sequence[str | Path | None] | None = None,
    stepping: str = "auto",
    on_member_done: Callable[[MemberInfo], None] | None = None,
) -> list[MemberInfo]:
    """Train same-architecture members together in one loop (:mod:`rewardherd.training.batched`)
    and save each as a standalone HF directory, as :func:`train_member` does one; LoRA members
    (``config.lora_r``) are merged. Every member trains on ``train_pairs`` (its own bootstrap
    resample with ``config.bootstrap``); members are written only once all have trained.
    ``stepping``: auto (loop on CPU, vmap on CUDA), loop or vmap. Returns the manifest entries in
    order."""
    from rewardherd.training import batched

    out_dirs = [Path(d) for d in out_dirs]
    heldout_scores = list(heldout_scores) if heldout_scores is not None else [None] * len(specs)
    if not len(specs) == len(out_dirs) == len(names) == len(heldout_scores) or not specs:
        raise ValueError(f"train_members: {len(specs)} specs, {len(out_dirs)} out_dirs, {len(names)} names and "
                         f"{len(heldout_scores)} heldout_scores paths must be equal and non-zero")
    for d, name in zip(out_dirs, names, strict=True):
        _check_member_args(d, train_pairs, heldout_pairs, name, config, True)
    t0 = time.time()
    device = torch.device(config.device) if config.device else default_device()
    loaded = [_load_for_training(s, config, s.finetune_seed) for s in specs]
    models, tokenizers = [m for m, _ in loaded], [t for _, t in loaded]
    if config.lora_r is not None:
        from peft import get_peft_model

        models = [_seeded(lambda m=m: get_peft_model(m, _peft_config(config)), s.finetune_seed)
                  for m, s in zip(models, specs, strict=True)]
    batched.check_batchable(models, tokenizers, names)
    tok = tokenizers[0]
    prompts, chosen, rejected, margins = _pairs_columns(train_pairs)
    c_ids, tc = _encode_batch(tok, prompts, chosen, config.max_length)
    r_ids, tr = _encode_batch(tok, prompts, rejected, config.max_length)
    if tc + tr:
        log.warning("%d of %d training sequences exceed max_length=%d and were truncated", tc + tr,
                    2 * len(c_ids), config.max_length)
    margin_t = (torch.tensor([0.0 if m is None else float(m) for m in margins])
                if any(m is not None for m in margins) else None)
    orders = [batched.MemberOrder(len(c_ids), s.finetune_seed,
                                  member_counts(len(c_ids), s.finetune_seed, bootstrap=config.bootstrap,
                                                subsample=config.subsample,
                                                subsample_shared=config.subsample_shared),
                                  member_flips(len(c_ids), config.member_label_noise, s.finetune_seed))
              for s in specs]
    losses = batched.run_steps(models, orders, c_ids, r_ids, margin_t, pad_token_id(tok), config, device,
                               seeds=[s.finetune_seed for s in specs], stepping=stepping, progress=progress)
    seconds = round(time.time() - t0, 2)
    infos = []
    for k, (model, spec) in enumerate(zip(models, specs, strict=True)):
        if config.lora_r is not None:
            model = model.merge_and_unload()
        infos.append(_finish_member(
            model.cpu(), tok, spec, heldout_pairs, out_dirs[k], name=names[k], config=config, merge_lora=True,
            heldout_scores=heldout_scores[k], write=True,
            train_record={"n_train_pairs": len(c_ids), "n_distinct_train_pairs": orders[k].n_distinct,
                          "n_truncated": tc + tr, "first_loss": losses[k][0], "last_loss": losses[k][-1],
                          "seconds": seconds, "batched_with": len(specs),
                          "stepping": batched.resolve_scoring(stepping, device), "num_processes": 1}))
        if on_member_done is not None:
            on_member_done(infos[-1])
    return infos


def _seeded(fn, seed: int):
    torch.manual_seed(seed)
    return fn()
