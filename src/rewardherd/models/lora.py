"""LoRA members: unmerged adapters over one shared backbone, scored in one pass.

Shape notation: ``k`` adapters, ``b`` sequences, ``t`` tokens; scores are (k, b).

Each member is a peft LoRA adapter (task ``SEQ_CLS``, score head through
``modules_to_save``) over one frozen backbone, kept in memory once.
:meth:`LoraRewardModel.score_views` repeats the (b, t) batch k times, tags each row
with its adapter (peft's mixed-adapter inference, ``adapter_names=``) and runs one
(k*b, t) forward. The Ensemble uses that pass on CUDA; on CPU ``auto`` loops over
adapters, where the one pass measured slower (docs/performance.md). No adapter is ever
merged in place and no global ``set_adapter`` state is used, so views can be called in
any order. Directory format: docs/ensemble_format.md; training: :mod:`rewardherd.training.lora`.
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from rewardherd.models.common import default_device, fused_gelu, quiet_transformers
from rewardherd.models.formatting import pad_token_id
from rewardherd.models.manifest import ManifestError, MemberInfo
from rewardherd.models.vectorized import SharedView

log = logging.getLogger(__name__)

FORMAT = "lora"
BACKBONE_DIR = "backbone"


class LoraRewardModel(torch.nn.Module):
    """A peft model holding K unmerged reward adapters over one backbone."""

    one_pass_on_cpu = False  # measured slower on CPU (docs/performance.md)

    def __init__(self, peft_model: torch.nn.Module, backbone_dir: str | Path):
        super().__init__()
        self.peft = peft_model
        self.backbone_dir = Path(backbone_dir)

    @property
    def adapters(self) -> list[str]:
        return list(self.peft.peft_config)

    def score_views(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, adapters: Sequence[str]) -> torch.Tensor:
        """(k, b) scores of each adapter, one mixed-adapter forward over (k*b, t)."""
        k, b = len(adapters), input_ids.shape[0]
        names = [a for a in adapters for _ in range(b)]
        big_ids = input_ids.repeat(k, 1)  # (k*b, t), adapter-major
        big_mask = attention_mask.repeat(k, 1)
        logits = self.peft(input_ids=big_ids, attention_mask=big_mask, adapter_names=names).logits  # (k*b, 1)
        return logits[:, 0].view(k, b)

    @classmethod
    def load(cls, backbone_dir: str | Path, adapter_dirs: dict[str, Path], *, device=None, dtype=torch.float32,
             trust_remote_code: bool = False) -> tuple[LoraRewardModel, object]:
        """Load the backbone once and every adapter under its key. Returns ``(model, tokenizer)``."""
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        backbone_dir = Path(backbone_dir)  # its files were checked by manifest.check_member_path
        for d in adapter_dirs.values():
            _check_saved_head(d / "adapter_model.safetensors")
        tokenizer = AutoTokenizer.from_pretrained(backbone_dir, trust_remote_code=trust_remote_code)
        with quiet_transformers():
            base, info = AutoModelForSequenceClassification.from_pretrained(
                backbone_dir, num_labels=1, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code,
                output_loading_info=True,
            )
        from rewardherd.models.multihead import head_parameter_names

        # The backbone's own score head is never used (each adapter carries one), but
        # any other tensor missing from its weights would be random.
        missing = sorted(set(info.get("missing_keys") or ()) - set(head_parameter_names(base.config)))
        if missing:
            raise ManifestError(f"{backbone_dir}: backbone weights lack tensor(s) {missing[:5]}: they would be newly "
                                "initialized (random scores)", file=str(backbone_dir))
        if base.config.pad_token_id is None:
            base.config.pad_token_id = pad_token_id(tokenizer)
        items = list(adapter_dirs.items())
        peft_model = PeftModel.from_pretrained(fused_gelu(base), str(items[0][1]), adapter_name=items[0][0], is_trainable=False)
        for key, d in items[1:]:
            peft_model.load_adapter(str(d), adapter_name=key, is_trainable=False)
        out = cls(peft_model, backbone_dir)
        out._check_heads()
        out.eval().to(device or default_device())
        return out, tokenizer

    def _check_heads(self) -> None:
        """Every adapter must carry its own score head (modules_to_save), else its
        scores would come from the backbone's untrained head."""
        from peft.utils import ModulesToSaveWrapper

        have: set[str] = set()
        for module in self.peft.modules():
            if isinstance(module, ModulesToSaveWrapper):
                have |= set(module.modules_to_save)
        lacking = [a for a in self.adapters if a not in have]
        if lacking:
            raise ManifestError(f"LoRA adapter(s) {lacking} have no score head in modules_to_save")

    def views(self) -> list[SharedView]:
        return [SharedView(self, a) for a in self.adapters]

    def save_adapter(self, adapter: str, out_dir: str | Path) -> Path:
        """Write one adapter (config + safetensors, score head included) to ``out_dir``."""
        out_dir = Path(out_dir)
        scratch = Path(tempfile.mkdtemp(prefix=".adapter-", dir=out_dir.parent))
        try:
            self.peft.save_pretrained(str(scratch), selected_adapters=[adapter], safe_serialization=True)
            src = scratch if adapter == "default" else scratch / adapter  # peft's layout
            shutil.move(str(src), str(out_dir))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return out_dir

    def export_merged(self, adapter: str, out_dir: str | Path, tokenizer) -> Path:
        """Save ``adapter`` merged into a copy of the backbone as a standalone
        ``AutoModelForSequenceClassification`` (num_labels=1, safetensors + tokenizer)."""
        if adapter not in self.adapters:
            raise KeyError(f"no adapter {adapter!r}; have {self.adapters}")
        work = copy.deepcopy(self.peft).cpu()  # never merge into the shared model
        work.set_adapter(adapter)  # selects the adapter's score head copy for unloading
        merged = work.merge_and_unload(adapter_names=[adapter])
        merged.eval()
        out_dir = Path(out_dir)
        merged.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
        return out_dir


def _check_saved_head(path: Path) -> None:
    """The adapter file must hold its trained score head (tensors saved through
    ``modules_to_save``, i.e. not LoRA matrices). peft would otherwise silently copy
    the backbone's untrained head for a SEQ_CLS adapter."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        names = list(f.keys())
    if not any("lora_" not in n for n in names):
        raise ManifestError(f"{path}: LoRA adapter has no score head in modules_to_save (only LoRA matrices)")


# ------------------------------------------------------- Ensemble integration
def load_members(directory: Path, infos: Sequence[MemberInfo], *, device=None, dtype=torch.float32,
                 trust_remote_code: bool = False) -> dict[str, tuple[SharedView, object]]:
    """Views for the manifest's LoRA members over ``directory/backbone`` (paths checked
    by :func:`rewardherd.models.manifest.check_member_path`)."""
    lora = [i for i in infos if i.format == FORMAT]
    if not lora:
        return {}
    # peft adapter names must be identifiers; member names need not be
    adapter_dirs = {f"m{j}": directory / info.path for j, info in enumerate(lora)}
    parent, tok = LoraRewardModel.load(directory / BACKBONE_DIR, adapter_dirs, device=device, dtype=dtype,
                                       trust_remote_code=trust_remote_code)
    return {info.name: (SharedView(parent, f"m{j}"), tok) for j, info in enumerate(lora)}


def save_members(members: Sequence, infos: list[MemberInfo], directory: Path) -> list[MemberInfo]:
    """Write the LoRA members of an Ensemble (backbone once, one adapter dir each)."""
    rows = [i for i, m in enumerate(members) if m.info.format == FORMAT]
    if not rows:
        return infos
    parents = {id(members[i].model.parent) for i in rows}
    if len(parents) != 1:
        raise ValueError("LoRA members over different backbones cannot share one directory's backbone/")
    parent = members[rows[0]].model.parent
    if not isinstance(parent, LoraRewardModel):
        raise TypeError(f"member {members[rows[0]].name!r} has format 'lora' but is not a LoRA view")
    shutil.copytree(parent.backbone_dir, directory / BACKBONE_DIR)
    for i in rows:
        parent.save_adapter(members[i].model.key, directory / members[i].info.path)
    return infos


def export_member(member, out_dir: str | Path) -> Path:
    """Merged standalone HF member for one LoRA Ensemble member."""
    return member.model.parent.export_merged(member.model.key, out_dir, member.tokenizer)
