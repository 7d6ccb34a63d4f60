"""Train a LoRA ensemble: K unmerged adapters over one shared backbone.

Each member is trained by the TRL member path (:func:`rewardherd.training.member.train_member`
with ``config.lora_r`` set and ``merge_lora=False``): the backbone is frozen, the LoRA
matrices and the score head (``modules_to_save``) are trained, and the member is saved
as a peft adapter. The backbone is saved once as ``backbone/``
(``AutoModelForSequenceClassification``, num_labels=1), so the finished directory is a
LoRA ensemble (format: :mod:`rewardherd.models.manifest`, ``"format": "lora"``) that
:meth:`rewardherd.models.Ensemble.load` scores in one mixed-adapter pass.

Members differ by fine-tune seed (LoRA and score-head initialization, data order,
dropout), as in a fine-tune-seed ensemble; they share the frozen backbone, so they are
less diverse than full fine-tunes. Resuming works as in
:func:`rewardherd.training.train_ensemble`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from rewardherd.io import atomic_dir
from rewardherd.models.common import quiet_transformers
from rewardherd.models.formatting import pad_token_id
from rewardherd.models.lora import BACKBONE_DIR
from rewardherd.models.manifest import Manifest
from rewardherd.training.config import MemberSpec, TrainConfig
from rewardherd.training.ensemble import (
    _open_or_start,
    check_inputs,
    data_fingerprint,
    plan_hash,
    remove_scratch,
)
from rewardherd.training.member import train_member

log = logging.getLogger(__name__)


def save_scoring_backbone(backbone: str | Path, out_dir: Path) -> Path:
    """Save ``backbone`` as an ``AutoModelForSequenceClassification`` (num_labels=1)
    with its tokenizer, atomically. Its score head is never used: every adapter
    carries its own."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbone)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with quiet_transformers():
        model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1, dtype=torch.float32,
                                                                   use_safetensors=True)
    model.config.pad_token_id = pad_token_id(tokenizer)
    with atomic_dir(out_dir) as staged:
        model.save_pretrained(staged, safe_serialization=True)
        tokenizer.save_pretrained(staged)
    return out_dir


def train_lora_ensemble(
    train_pairs: Sequence,
    heldout_pairs: Sequence,
    out_dir: str | Path,
    backbone: str | Path,
    config: TrainConfig,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    overwrite: bool = False,
    progress: bool = True,
) -> Manifest:
    """Train one LoRA adapter per seed over ``backbone`` into ``out_dir`` (resumable;
    ``config.lora_r`` must be set). Returns the complete manifest (kind "finetune",
    members with format "lora")."""
    if config.lora_r is None:
        raise ValueError("a LoRA ensemble needs config.lora_r")
    out_dir = Path(out_dir)
    specs = [MemberSpec(str(backbone), int(s)) for s in seeds]
    if not specs:
        raise ValueError("need at least one seed")
    check_inputs(train_pairs, heldout_pairs, out_dir, [str(backbone)])
    fp = data_fingerprint(list(train_pairs) + list(heldout_pairs))
    phash = plan_hash(specs, config, fp, "finetune") + "-lora"
    manifest = _open_or_start(out_dir, phash, "finetune", config, overwrite)
    remove_scratch(out_dir)
    if not (out_dir / BACKBONE_DIR).is_dir():
        save_scoring_backbone(backbone, out_dir / BACKBONE_DIR)
    done = {m.name for m in manifest.members}
    for i, spec in enumerate(specs):
        name = f"member_{i}"
        if name in done:
            continue
        target = out_dir / name
        if target.exists():  # killed after the rename, before the manifest write
            shutil.rmtree(target)
        info = train_member(spec, train_pairs, heldout_pairs, target, name=name, config=config, progress=progress,
                            merge_lora=False)
        manifest.members.append(info)
        manifest.write(out_dir)
    manifest.complete = True
    manifest.write(out_dir)
    return manifest
