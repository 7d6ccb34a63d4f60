"""The study's ensemble kinds, one spec each.

A kind says how its score units are planned and trained, where its best-of-n rows live,
which trained models are its own members (the C3 baseline it is compared with), how many
forward passes it costs per scored response, and its colour and text. The runner, analysis,
plots and report read these specs instead of testing kind names, so adding a kind is one
entry here (plus, for a kind that trains a whole ensemble at once, its trainer in
``runner.GROUP_TRAINERS``).

"single" is not a kind: it is the role of one member optimized alone (``kind == "single"``
rows of the best-of-n curves; see docs/schema.md). :data:`SINGLE_COLOR` is its colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Colour of the single-member role (the average member optimized alone) in every figure.
SINGLE_COLOR = "#7f7f7f"


@dataclass(frozen=True)
class KindSpec:
    name: str
    title: str
    """A few words for legends and tables."""
    description: str
    """One sentence for the report: what an ensemble of this kind is."""
    color: str
    units: Literal["members", "lora", "group"]
    """members: one full fine-tuned member unit per slot (``runner.MemberUnit``); lora: one LoRA
    member unit per slot (``runner.LoraUnit``); group: one ``runner.GroupUnit`` trains the
    whole ensemble at once and writes a score unit per slot."""
    layout: Literal["finetune", "pretrain"] = "finetune"
    """Whose backbone and fine-tune-seed pattern its members follow (``runner.ensemble_members``):
    finetune = K seeds on the seed's first drawn backbone; pretrain = one drawn backbone each."""
    main: bool = False
    """Always in a study, scored in the main best-of-n cells (with the ensemble-size sweep);
    the other kinds are extra (``sweep.kinds``) and are scored in the ``kinds__`` cells."""
    own_members: str | None = None
    """The kind whose member units are this kind's own members (its C3 baseline); None: its own
    units. warm's are the finetune members it averages."""
    one_pass: bool = False
    """The whole ensemble scores a response in one forward pass (the others: one per member)."""
    fixed_method: str | None = None
    """Set when the kind is one model with no aggregation to choose (warm: "weights averaged")."""
    train_includes: tuple[str, ...] = ()
    """Kinds whose training seconds this kind's training cost includes (warm: the members it averages)."""
    unit_tag: str = ""
    """Group kinds: the prefix of the group unit's directory name."""
    slot_tag: str | None = None
    """Group kinds: the suffix letter of each slot's score unit; None for a kind that is one model."""
    heads: bool = False
    """Its slots are heads on one shared trunk, scored together in one float32 pass
    (``models.vectorized.GroupScorer``); the others' members are scored one by one."""

    @property
    def own(self) -> str:
        """The kind whose members are this kind's own members."""
        return self.own_members or self.name

    def forward_passes(self, k: int) -> int:
        return 1 if self.one_pass else k

    def label(self, method: str) -> str:
        """How a comparison names this kind's ensemble with ``method``."""
        return self.title if self.fixed_method else f"{self.name} ensemble ({method})"

    def method_name(self, method: str) -> str:
        return self.fixed_method or method


KINDS: dict[str, KindSpec] = {s.name: s for s in (
    KindSpec("finetune", "finetune", "K members fine-tuned with different seeds on one pretrained backbone.",
             "#1f77b4", "members", layout="finetune", main=True),
    KindSpec("pretrain", "pretrain", "K members, each fine-tuned on its own pretrained backbone (a different "
             "pretraining seed).", "#d62728", "members", layout="pretrain", main=True),
    KindSpec("multi_head", "multi-head", "K reward heads trained jointly on one shared backbone: one forward pass.",
             "#9467bd", "group", one_pass=True, unit_tag="mh", slot_tag="h", heads=True),
    KindSpec("lora", "LoRA", "K LoRA adapters (different seeds) on one backbone, each merged into a standalone "
             "member.", "#2ca02c", "lora", layout="finetune"),
    KindSpec("warm", "WARM (weights averaged)", "The weight average of the finetune members (WARM): one model, "
             "one forward pass.", "#ff7f0e", "group", own_members="finetune", one_pass=True,
             fixed_method="weights averaged", train_includes=("finetune",), unit_tag="warm"),
    KindSpec("cleaned", "cleaned", "K finetune-style members trained on pairs cleaned by a cross-fitted ensemble's "
             "vote.", "#8c564b", "group", unit_tag="cleaned", slot_tag="m"),
)}

MAIN_KINDS: tuple[str, ...] = tuple(k for k, s in KINDS.items() if s.main)


def spec(kind: str) -> KindSpec:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown ensemble kind {kind!r}; the study's kinds are {list(KINDS)}") from None


def color(kind: str) -> str:
    """A kind's colour, or the single-member role's."""
    return SINGLE_COLOR if kind == "single" else spec(kind).color


def extra(kinds) -> list[str]:
    """Of ``kinds``, those that are not main kinds, in the given order."""
    return [k for k in kinds if not spec(k).main]
