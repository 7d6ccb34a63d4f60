"""The ensemble directory format: ``ensemble.json`` plus one HF directory per member.

```
my_ensemble/
  ensemble.json          # this manifest
  member_0/              # AutoModelForSequenceClassification(num_labels=1), safetensors + tokenizer
  member_1/
  ...
```

``ensemble.json`` (format_version 1)::

    {
      "format_version": 1,
      "kind": "finetune_seeds" | "pretrain_seeds" | "explicit" | "multi_head",
      "complete": true,                    # false while training is in progress
      "created": "2026-11-26T20:00:00+00:00",
      "max_length": 512,                   # tokens; truncation keeps the response end
      "text_format": "plain-v1",           # see rewardherd.models.formatting
      "members": [
        {"name": "member_0", "path": "member_0", "format": "hf",
         "backbone": "/path/or/hub-id", "pretrain_seed": 0, "finetune_seed": 0,
         "heldout_accuracy": 0.71, "n_heldout_pairs": 200,
         "standardization": {"mean": 0.03, "std": 1.2, "n": 400},
         "train_config": {...}}
      ],
      "package_versions": {"torch": "2.13.0", ...},
      "config_hash": "..."                 # of the training plan, for resume
    }

Standardization statistics are each member's mean and std over the held-out
responses (chosen and rejected) of its training data.

Member formats (``"format"``; an ensemble may mix ``hf`` with one of the others):

- ``"hf"`` (default): ``path`` is a standalone HF directory, as above.
- ``"multi_head"`` (kind ``"multi_head"``): K heads over one shared backbone; see
  :mod:`rewardherd.models.multihead`. ``path`` is the shared body directory and
  ``"head"`` the member's row in ``heads.safetensors``, which lies next to it::

      my_multihead/
        ensemble.json      # members: {"name": "head_0", "path": "backbone", "format": "multi_head", "head": 0, ...}
        backbone/          # AutoModel body (safetensors) + tokenizer
        heads.safetensors  # score-layer tensors stacked over heads (label axis first)

- ``"lora"``: unmerged LoRA adapters over one shared backbone; see
  :mod:`rewardherd.models.lora`. ``path`` is the member's peft adapter directory
  (its score head saved through ``modules_to_save``); the backbone is ``backbone/``
  at the top of the ensemble directory::

      my_lora/
        ensemble.json      # members: {"name": "member_0", "path": "member_0", "format": "lora", ...}
        backbone/          # AutoModelForSequenceClassification(num_labels=1) + tokenizer
        member_0/          # adapter_config.json + adapter_model.safetensors
        member_1/

  Every shared-backbone member can be exported as a standalone ``"hf"`` member
  (:meth:`rewardherd.models.Ensemble.export_member`).

The ``"head"`` field is written only for multi-head members.

A WARM member (:mod:`rewardherd.training.warm`, the weight average of a fine-tune-seed
ensemble) is a one-member ensemble whose ``path`` is ``"."``: the ensemble directory
is itself the HF model directory. Its ``finetune_seed`` is -1 (no single seed) and
``extra["warm"]`` lists the averaged members.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rewardherd.io import write_json_atomic

FORMAT_VERSION = 1
MANIFEST = "ensemble.json"
TEXT_FORMAT = "plain-v1"
KINDS = ("finetune_seeds", "pretrain_seeds", "explicit", "multi_head")
MEMBER_FORMATS = ("hf", "multi_head", "lora")


class ManifestError(ValueError):
    """An ensemble directory or its manifest is invalid."""


@dataclass
class MemberInfo:
    name: str
    path: str
    backbone: str
    finetune_seed: int
    pretrain_seed: int | None = None
    format: str = "hf"
    heldout_accuracy: float | None = None
    n_heldout_pairs: int | None = None
    standardization: dict[str, float] | None = None
    train_config: dict[str, Any] = field(default_factory=dict)
    head: int | None = None
    """Row of this member in ``heads.safetensors`` (multi_head members only)."""

    @classmethod
    def from_dict(cls, d: dict, where: str) -> MemberInfo:
        missing = [k for k in ("name", "path", "backbone", "finetune_seed") if k not in d]
        if missing:
            raise ManifestError(f"{where}: member is missing field(s) {missing}")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ManifestError(f"{where}: member has unknown field(s) {sorted(unknown)}")
        types = {"name": str, "path": str, "backbone": str, "finetune_seed": int, "format": str,
                 "pretrain_seed": (int, type(None)), "heldout_accuracy": (int, float, type(None)),
                 "n_heldout_pairs": (int, type(None)), "train_config": dict}
        for key, tp in types.items():
            if key in d and (not isinstance(d[key], tp) or isinstance(d[key], bool)):
                raise ManifestError(f"{where}: field '{key}' has type {type(d[key]).__name__}")
        st = d.get("standardization")
        if st is not None and not (isinstance(st, dict) and {"mean", "std"} <= set(st)):
            raise ManifestError(f"{where}: field 'standardization' must be an object with 'mean' and 'std'")
        return cls(**d)


@dataclass
class Manifest:
    kind: str
    members: list[MemberInfo]
    max_length: int | None = 512
    complete: bool = True
    text_format: str = TEXT_FORMAT
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    package_versions: dict[str, str] = field(default_factory=lambda: package_versions())
    config_hash: str | None = None
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["members"] = [_member_dict(m) for m in self.members]
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Manifest:
        if not isinstance(d, dict):
            raise ManifestError(f"{where}: expected a JSON object")
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise ManifestError(f"{where}: field 'format_version' is {version!r}; this rewardherd reads {FORMAT_VERSION}")
        if "members" not in d or not isinstance(d["members"], list):
            raise ManifestError(f"{where}: field 'members' must be a list")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ManifestError(f"{where}: unknown field(s) {sorted(unknown)}")
        members = [MemberInfo.from_dict(m, f"{where}: members[{i}]") for i, m in enumerate(d["members"])]
        return cls(**{**d, "members": members})

    @classmethod
    def read(cls, directory: str | Path) -> Manifest:
        path = Path(directory) / MANIFEST
        if not path.is_file():
            raise ManifestError(f"{path}: not found; is {directory} an ensemble directory?")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from e
        return cls.from_dict(d, str(path))

    def write(self, directory: str | Path) -> Path:
        """Write ``ensemble.json`` atomically (temp file, then rename)."""
        return write_json_atomic(Path(directory) / MANIFEST, self.to_dict())


def _member_dict(m: MemberInfo) -> dict:
    d = asdict(m)
    if d["head"] is None:  # only multi-head members carry it; other manifests stay as before
        del d["head"]
    return d


def package_versions() -> dict[str, str]:
    out = {}
    for name in ("rewardherd", "torch", "transformers", "trl", "peft", "tokenizers", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
