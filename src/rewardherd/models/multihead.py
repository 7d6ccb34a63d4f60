"""Multi-head ensembles: one backbone with K scalar reward heads.

Shape notation: ``K`` heads, ``k`` selected heads, ``b`` sequences; ``(b, K)`` logits,
``(k, b)`` scores (ensemble axis first).

The cheapest ensemble (one backbone forward for K heads), and the least diverse: the
heads share every backbone parameter and differ only in their initialization seed and
optionally a bootstrap of the pairs, so their errors are strongly correlated. It is
neither a pretrain-seed nor a fine-tune-seed ensemble; report it as ``kind:
"multi_head"``. The model is an HF sequence classifier with ``num_labels = K``, so head
k scores exactly as a ``num_labels=1`` model with row k of the score layer
(:meth:`MultiHeadRewardModel.export_head`). Directory format: docs/ensemble_format.md;
training: :mod:`rewardherd.training.multihead`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from rewardherd.models.common import default_device, fused_gelu, quiet_transformers
from rewardherd.models.formatting import pad_token_id
from rewardherd.models.manifest import ManifestError, MemberInfo
from rewardherd.models.vectorized import SharedView

log = logging.getLogger(__name__)

FORMAT = "multi_head"
HEADS_FILE = "heads.safetensors"
BACKBONE_DIR = "backbone"
HEADS_FORMAT = "rewardherd-multi-head-v1"


def head_parameter_names(config) -> list[str]:
    """Names of the sequence-classification parameters that hold the heads.

    Found structurally: the parameters whose shape changes with ``num_labels``
    (instantiated on the meta device, no memory). Each has the label axis first.
    """
    from transformers import AutoModelForSequenceClassification

    shapes = []
    for n in (1, 2):
        cfg = copy.deepcopy(config)
        cfg.num_labels = n
        with torch.device("meta"), quiet_transformers():
            m = AutoModelForSequenceClassification.from_config(cfg)
        shapes.append({k: tuple(v.shape) for k, v in m.named_parameters()})
    names = sorted(k for k in shapes[0] if shapes[0][k] != shapes[1].get(k))
    if not names:
        raise ValueError(f"{type(config).__name__}: found no parameters that depend on num_labels")
    for k in names:
        if shapes[0][k][:1] != (1,) or shapes[1][k][:1] != (2,):
            raise ValueError(f"head parameter {k} does not have the label axis first: {shapes[0][k]}")
    return names


class MultiHeadRewardModel(torch.nn.Module):
    """An HF sequence classifier with ``num_labels = K``: one body, K scalar heads."""

    one_pass_on_cpu = True  # one backbone forward for K heads is never slower than K forwards

    def __init__(self, model: torch.nn.Module, head_names: Sequence[str] | None = None):
        super().__init__()
        self.model = model
        self.head_names = list(head_names) if head_names is not None else head_parameter_names(model.config)

    @property
    def n_heads(self) -> int:
        return int(self.model.config.num_labels)

    @property
    def config(self):
        return self.model.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(b, K) scores of every head."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def score_views(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, heads: Sequence[int]) -> torch.Tensor:
        """(k, b) scores of the selected heads from one backbone pass."""
        logits = self.forward(input_ids, attention_mask)  # (b, K)
        return logits[:, list(heads)].T

    def views(self) -> list[SharedView]:
        """One standalone-callable member per head."""
        return [SharedView(self, k) for k in range(self.n_heads)]

    # ------------------------------------------------------------ construction
    @classmethod
    def from_backbone(cls, backbone: str | Path, n_heads: int, seeds: Sequence[int], *, pad_id: int | None = None,
                      dtype=torch.float32, trust_remote_code: bool = False) -> MultiHeadRewardModel:
        """Body from a pretrained backbone; head k initialized from ``seeds[k]``.

        Heads are drawn as HF initializes a score layer: weights ~ N(0,
        ``config.initializer_range`` (0.02 if absent)), biases 0, each from its own
        ``torch.Generator`` seeded with that head's seed.
        """
        from transformers import AutoModelForSequenceClassification

        if n_heads < 1:
            raise ValueError(f"n_heads must be >= 1; got {n_heads}")
        if len(seeds) != n_heads:
            raise ValueError(f"{len(seeds)} seeds for {n_heads} heads")
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                backbone, num_labels=n_heads, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code
            )
        if pad_id is not None:
            model.config.pad_token_id = pad_id
        out = cls(fused_gelu(model))
        std = float(getattr(model.config, "initializer_range", 0.02) or 0.02)
        with torch.no_grad():
            for k, seed in enumerate(seeds):
                gen = torch.Generator().manual_seed(int(seed))
                for name in out.head_names:
                    p = model.get_parameter(name)
                    if name.endswith("bias"):
                        p[k].zero_()
                    else:
                        row = torch.empty(p.shape[1:], dtype=torch.float32).normal_(0.0, std, generator=gen)
                        p[k].copy_(row.to(p.dtype))
        return out

    # ------------------------------------------------------------------- I/O
    def head_tensors(self, heads: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
        """The heads' tensors (selected heads, in order), label axis first."""
        heads = list(range(self.n_heads)) if heads is None else list(heads)
        return {n: self.model.get_parameter(n).detach()[heads].contiguous().cpu() for n in self.head_names}

    def save(self, backbone_dir: str | Path, tokenizer, heads: Sequence[int] | None = None) -> Path:
        """Write ``backbone_dir`` (body + tokenizer) and ``heads.safetensors`` beside it."""
        from safetensors.torch import save_file

        backbone_dir = Path(backbone_dir)
        tensors = self.head_tensors(heads)
        n = next(iter(tensors.values())).shape[0]
        body = self.model.base_model
        with quiet_transformers():
            body.save_pretrained(backbone_dir, safe_serialization=True)
        tokenizer.save_pretrained(backbone_dir)
        meta = {"format": HEADS_FORMAT, "n_heads": str(n), "architecture": type(self.model).__name__}
        save_file(tensors, str(backbone_dir.parent / HEADS_FILE), metadata=meta)
        return backbone_dir

    @classmethod
    def load(cls, backbone_dir: str | Path, *, device=None, dtype=torch.float32,
             trust_remote_code: bool = False) -> tuple[MultiHeadRewardModel, object]:
        """Read ``backbone_dir`` and ``heads.safetensors`` beside it. Returns ``(model, tokenizer)``."""
        from safetensors import safe_open
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        backbone_dir = Path(backbone_dir)
        heads_path = backbone_dir.parent / HEADS_FILE
        if not heads_path.is_file():
            raise ManifestError(f"{heads_path}: not found (a multi-head ensemble keeps its heads next to {backbone_dir.name}/)")
        with safe_open(str(heads_path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        if meta.get("format") != HEADS_FORMAT:
            raise ManifestError(f"{heads_path}: metadata format is {meta.get('format')!r}; expected {HEADS_FORMAT!r}")
        n_heads = int(meta["n_heads"])
        tokenizer = AutoTokenizer.from_pretrained(backbone_dir, trust_remote_code=trust_remote_code)
        config = AutoConfig.from_pretrained(backbone_dir, trust_remote_code=trust_remote_code)
        config.num_labels = n_heads
        if config.pad_token_id is None:
            config.pad_token_id = pad_token_id(tokenizer)
        with quiet_transformers():
            model, info = AutoModelForSequenceClassification.from_pretrained(
                backbone_dir, config=config, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code,
                output_loading_info=True,
            )
        if type(model).__name__ != meta.get("architecture"):
            raise ManifestError(f"{heads_path}: heads are for {meta.get('architecture')}, backbone loads as "
                                f"{type(model).__name__}")
        out = cls(fused_gelu(model))
        if set(tensors) != set(out.head_names):
            raise ManifestError(f"{heads_path}: tensors {sorted(tensors)}; expected {out.head_names}")
        missing = set(info.get("missing_keys", ())) - set(out.head_names)
        if missing:
            raise ManifestError(f"{backbone_dir}: backbone weights missing for {sorted(missing)[:5]}")
        with torch.no_grad():
            for name in out.head_names:
                p = model.get_parameter(name)
                if tuple(tensors[name].shape) != tuple(p.shape):
                    raise ManifestError(f"{heads_path}: {name} has shape {tuple(tensors[name].shape)}; "
                                        f"expected {tuple(p.shape)}")
                p.copy_(tensors[name].to(p.dtype))
        out.eval().to(device or default_device())
        return out, tokenizer

    def export_head(self, head: int, out_dir: str | Path, tokenizer) -> Path:
        """Save head ``head`` as a standalone ``AutoModelForSequenceClassification``
        (num_labels=1, safetensors, with the tokenizer) whose scores equal the head's."""
        from transformers import AutoModelForSequenceClassification

        if not 0 <= head < self.n_heads:
            raise IndexError(f"head {head} out of range for {self.n_heads} heads")
        config = copy.deepcopy(self.model.config)
        config.num_labels = 1
        config.architectures = None
        with quiet_transformers():
            single = AutoModelForSequenceClassification.from_config(config)
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        for name in self.head_names:
            state[name] = state[name][head : head + 1].clone()  # (1, ...) label axis first
        single.load_state_dict(state, strict=True)
        single.to(next(self.model.parameters()).dtype)
        out_dir = Path(out_dir)
        single.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
        return out_dir


# ------------------------------------------------------- Ensemble integration
def load_members(directory: Path, infos: Sequence[MemberInfo], *, device=None, dtype=torch.float32,
                 trust_remote_code: bool = False) -> dict[str, tuple[SharedView, object]]:
    """Views for the manifest's multi-head members, one backbone load per ``path``."""
    out: dict[str, tuple[SharedView, object]] = {}
    loaded: dict[str, tuple[MultiHeadRewardModel, object]] = {}
    for info in infos:
        if info.format != FORMAT:
            continue
        if info.head is None:
            raise ManifestError(f"{directory}: multi-head member {info.name!r} has no 'head' index")
        if info.path not in loaded:  # the path was checked by manifest.check_member_path
            loaded[info.path] = MultiHeadRewardModel.load(directory / info.path, device=device, dtype=dtype,
                                                          trust_remote_code=trust_remote_code)
        parent, tok = loaded[info.path]
        if not 0 <= info.head < parent.n_heads:
            raise ManifestError(f"{directory}: member {info.name!r} head {info.head} out of range "
                                f"({parent.n_heads} heads in {info.path})")
        out[info.name] = (SharedView(parent, info.head), tok)
    return out


def save_members(members: Sequence, infos: list[MemberInfo], directory: Path) -> list[MemberInfo]:
    """Write the multi-head members of an Ensemble into ``directory``; returns the
    manifest entries with head indices renumbered to the heads actually written."""
    groups: dict[int, list[int]] = {}
    for i, m in enumerate(members):
        if m.info.format == FORMAT:
            if not isinstance(m.model, SharedView) or not isinstance(m.model.parent, MultiHeadRewardModel):
                raise TypeError(f"member {m.name!r} has format 'multi_head' but is not a multi-head view")
            groups.setdefault(id(m.model.parent), []).append(i)
    infos = list(infos)
    written: set[str] = set()
    for rows in groups.values():
        first = members[rows[0]]
        if first.info.path in written:
            raise ValueError(f"two multi-head models would both be written to {first.info.path!r}")
        written.add(first.info.path)
        heads = [members[i].model.key for i in rows]
        first.model.parent.save(directory / first.info.path, first.tokenizer, heads)
        for new, i in enumerate(rows):
            if members[i].info.path != first.info.path:
                raise ValueError(f"heads of one multi-head model have different paths: {members[i].info.path!r}")
            infos[i] = replace(infos[i], head=new)
    return infos


def export_member(member, out_dir: str | Path) -> Path:
    """Standalone HF member for one multi-head Ensemble member (see :meth:`MultiHeadRewardModel.export_head`)."""
    return member.model.parent.export_head(member.model.key, out_dir, member.tokenizer)
