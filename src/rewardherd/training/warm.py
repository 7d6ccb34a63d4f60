"""WARM: one reward model whose weights are the average of an ensemble's members.

Ramé et al., "WARM: On the Benefits of Weight Averaged Reward Models" (arXiv
2401.12187). Members fine-tuned from one shared initialization stay linearly
connected, so the average of their weights scores about as well as the average of
their predictions, at the cost of a single model, and is more robust to label noise
than any one member.

What the members must share (checked here; anything else is refused with the member
and field named):

- the pretrained backbone: the same ``backbone`` path and ``pretrain_seed`` in the
  manifest (pretrain-seed ensembles are refused outright), the same model config
  (``config.json``), the same parameter names and shapes, the same tokenizer;
- the reward head's initialization: WARM fine-tunes every member from one
  linear-probed head. Train with ``TrainConfig.shared_head_init``
  (``rewardherd train --shared-head-init``) so every head starts from one seed and the
  members differ only by data order and dropout. Members whose heads were seeded by
  their own fine-tune seeds are averaged with a warning: on the tiny rule task (25%
  label noise, 4 members, 5 runs) their average scored about 4 points of held-out
  accuracy below the mean member and 5 below the prediction ensemble, while members
  with a shared head init averaged to within 1 point of the prediction ensemble.

Output: ``out_dir`` is at once a standard Hugging Face
``AutoModelForSequenceClassification`` directory (``config.json``, safetensors,
tokenizer files), loadable by TRL, OpenRLHF or RewardBench, and a one-member
rewardherd ensemble: its ``ensemble.json`` lists one member whose ``path`` is ``.``,
so :meth:`rewardherd.models.Ensemble.load` reads it too. The member's
``finetune_seed`` is -1 (it has no single seed); ``extra.warm`` records the sources.
Standardization statistics and held-out accuracy are measured on held-out pairs when
given; without them the member has none (score it with ``standardize=False``).

Departure from WARM: no linear-probing stage; the shared head is a shared random
initialization.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from rewardherd import core
from rewardherd.io import atomic_dir
from rewardherd.models.manifest import Manifest, ManifestError, MemberInfo

log = logging.getLogger(__name__)

#: config.json keys that may differ between members without changing the architecture.
IGNORED_CONFIG_KEYS = ("_name_or_path", "transformers_version", "torch_dtype", "dtype", "architectures")

WARM_NAME = "warm"


class WarmError(ValueError):
    """The members cannot be weight-averaged; the message names member and field."""


def _member_files(directory: Path, info: MemberInfo) -> Path:
    path = directory / info.path
    if info.format != "hf":
        raise WarmError(f"{directory / 'ensemble.json'}: member {info.name!r} has format {info.format!r}; "
                        "WARM averages standalone 'hf' members (export shared-backbone members first)")
    if not path.is_dir() or not any(path.glob("*.safetensors")):
        raise WarmError(f"{directory / 'ensemble.json'}: member {info.name!r}: no safetensors weights in {path}")
    return path


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for f in sorted(path.glob("*.safetensors")):
        out.update(load_file(f))
    return out


def _config(path: Path) -> dict:
    d = json.loads((path / "config.json").read_text())
    return {k: v for k, v in d.items() if k not in IGNORED_CONFIG_KEYS}


def check_warm_compatible(directory: str | Path, manifest: Manifest) -> list[Path]:
    """Refuse members that do not share an initialization (a :class:`WarmError` names
    the member and field); return their directories."""
    from transformers import AutoTokenizer

    from rewardherd.models.ensemble import tokenizer_fingerprint

    directory = Path(directory)
    where = directory / "ensemble.json"
    members = manifest.members
    if len(members) < 2:
        raise WarmError(f"{where}: {len(members)} member(s); WARM averages two or more")
    if manifest.kind == "pretrain":
        raise WarmError(f"{where}: kind 'pretrain': members start from different pretrained backbones, "
                        "so their weights cannot be averaged; WARM needs a fine-tune-seed ensemble of one backbone")
    ref = members[0]
    for m in members[1:]:
        for field in ("backbone", "pretrain_seed"):
            if getattr(m, field) != getattr(ref, field):
                raise WarmError(f"{where}: member {m.name!r} field '{field}' is {getattr(m, field)!r} but member "
                                f"{ref.name!r} has {getattr(ref, field)!r}; WARM needs one shared initialization")
    paths = [_member_files(directory, m) for m in members]
    ref_cfg = _config(paths[0])
    ref_tok = tokenizer_fingerprint(AutoTokenizer.from_pretrained(paths[0]))
    for m, p in zip(members[1:], paths[1:], strict=True):
        cfg = _config(p)
        diff = sorted(k for k in set(cfg) | set(ref_cfg) if cfg.get(k) != ref_cfg.get(k))
        if diff:
            k = diff[0]
            raise WarmError(f"{p / 'config.json'}: member {m.name!r} field '{k}' is {cfg.get(k)!r} but member "
                            f"{ref.name!r} has {ref_cfg.get(k)!r}; the members do not share an architecture")
        if tokenizer_fingerprint(AutoTokenizer.from_pretrained(p)) != ref_tok:
            raise WarmError(f"{p}: member {m.name!r} has a different tokenizer than member {ref.name!r}")
    not_shared = [m.name for m in members if not m.train_config.get("shared_head_init", False)]
    if not_shared:
        log.warning("member(s) %s were trained without shared_head_init: their reward heads started from different "
                    "seeds, unlike WARM's shared initialization; the average may score worse than the members",
                    not_shared)
    return paths


def warm_average(
    ensemble_dir: str | Path,
    out_dir: str | Path,
    *,
    heldout_pairs: Sequence | None = None,
    overwrite: bool = False,
    batch_size: int = 64,
) -> Manifest:
    """Average the members of ``ensemble_dir`` into one member at ``out_dir`` (an HF
    model directory and a one-member ensemble); return the written manifest.

    ``heldout_pairs`` give the averaged member's held-out accuracy and standardization
    statistics; without ``overwrite`` an existing ``out_dir`` is an error.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rewardherd.training.member import evaluate_pairs

    ensemble_dir, out_dir = Path(ensemble_dir), Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; choose another output or pass overwrite=True to replace it")
    if out_dir.resolve() == ensemble_dir.resolve() or ensemble_dir.resolve() in out_dir.resolve().parents:
        raise ValueError(f"{out_dir}: the output must lie outside the source ensemble {ensemble_dir}")
    manifest = Manifest.read(ensemble_dir)
    if not manifest.complete:
        raise ManifestError(f"{ensemble_dir / 'ensemble.json'}: training is not complete; finish it before WARM")
    paths = check_warm_compatible(ensemble_dir, manifest)
    try:
        avg = core.average_weights([_state_dict(p) for p in paths])
    except ValueError as e:  # names/shapes differ: say which members
        raise WarmError(f"{ensemble_dir}: members do not share an architecture: {e} "
                        f"(models in manifest order: {[m.name for m in manifest.members]})") from None
    model = AutoModelForSequenceClassification.from_pretrained(paths[0], use_safetensors=True, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(paths[0])
    model.load_state_dict(avg, strict=True)
    model.eval()
    ref = manifest.members[0]
    stats, acc, n_held = None, None, None
    if heldout_pairs:
        max_length = manifest.max_length or ref.train_config.get("max_length", 512)
        ev = evaluate_pairs(model, tokenizer, heldout_pairs, max_length, batch_size)
        stats = {"mean": ev["mean"], "std": ev["std"], "n": ev["n"]}
        acc, n_held = ev["accuracy"], len(heldout_pairs)
    else:
        log.warning("no held-out pairs: the WARM member has no standardization statistics "
                    "(score it with standardize=False, or pass held-out data)")
    sources = {"source": str(ensemble_dir), "members": [m.name for m in manifest.members],
               "finetune_seeds": [m.finetune_seed for m in manifest.members],
               "shared_head_init": all(m.train_config.get("shared_head_init", False) for m in manifest.members),
               "source_heldout_accuracy": [m.heldout_accuracy for m in manifest.members]}
    info = MemberInfo(name=WARM_NAME, path=".", backbone=ref.backbone, finetune_seed=-1,
                      pretrain_seed=ref.pretrain_seed, format="hf", heldout_accuracy=acc, n_heldout_pairs=n_held,
                      standardization=stats, train_config=dict(ref.train_config))
    out = Manifest(kind=manifest.kind, members=[info], max_length=manifest.max_length,
                   text_format=manifest.text_format, extra={**manifest.extra, "warm": sources})
    with atomic_dir(out_dir, replace=True) as staged:  # an existing out_dir means overwrite=True
        model.save_pretrained(staged, safe_serialization=True)
        tokenizer.save_pretrained(staged)
        out.write(staged)
    return out
