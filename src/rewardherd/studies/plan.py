"""Study design: the units a study trains (members, LoRA members, group kinds, RL and DAA
runs), their directory names, and which units each ensemble of a kind is made of.

Names here are the directory names of finished studies, so a change to them breaks resuming
(tests/studies/test_kind_registry.py pins them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rewardherd.studies import kinds
from rewardherd.studies.config import StudyConfig


@dataclass(frozen=True)
class MemberUnit:
    backbone: int
    finetune_seed: int
    noise: float
    seed: int

    @property
    def name(self) -> str:
        return f"bb{self.backbone}__ft{self.finetune_seed}__noise{self.noise:g}__seed{self.seed}"


@dataclass(frozen=True)
class LoraUnit(MemberUnit):
    """A member of the lora kind: a LoRA adapter (rank ``StudyConfig.lora_r``) on the
    backbone, merged into a standalone member."""

    @property
    def name(self) -> str:
        return f"lora__{super().name}"


@dataclass(frozen=True)
class MemberBatch:
    """Member units trained together in one loop (:func:`rewardherd.training.member.train_members`):
    those of one (noise, seed) and one training config (full or LoRA), which share the noisy
    training pairs. Each unit keeps its own directory, seed and results; only the cost is shared."""

    units: tuple[MemberUnit, ...]

    @property
    def name(self) -> str:
        return f"batch__{self.units[0].name}__x{len(self.units)}"


def member_batches(units: Sequence[MemberUnit]) -> list[MemberBatch]:
    """``units`` grouped into :class:`MemberBatch` groups, in first-seen order."""
    groups: dict[tuple, list[MemberUnit]] = {}
    for u in units:
        groups.setdefault((type(u), u.noise, u.seed), []).append(u)
    return [MemberBatch(tuple(g)) for g in groups.values()]


@dataclass(frozen=True)
class GroupUnit:
    """A unit that makes a whole ensemble of its kind at once: ``multi_head`` (K heads
    trained jointly on the seed's first backbone), ``warm`` (the weight average of the
    seed's finetune members) or ``cleaned`` (cross-fitted strength, cleaning, then K
    members on the cleaned data). It writes one score unit per member (``units``)."""

    kind: str
    backbone: int
    noise: float
    seed: int

    @property
    def name(self) -> str:
        return f"{kinds.spec(self.kind).unit_tag}__bb{self.backbone}__noise{self.noise:g}__seed{self.seed}"

    def units(self, k: int) -> list[str]:
        tag = kinds.spec(self.kind).slot_tag
        return [self.name] if tag is None else [f"{self.name}__{tag}{i}" for i in range(k)]


@dataclass(frozen=True)
class RLUnit:
    kind: str
    method: str
    noise: float
    seed: int
    kl_coef: float

    @property
    def name(self) -> str:
        m = self.method.replace("(", "[").replace(")", "]").replace("=", "").replace(",", "_")
        return f"rl__{self.kind}__{m}__noise{self.noise:g}__seed{self.seed}__kl{self.kl_coef:g}"


@dataclass(frozen=True)
class DAAUnit:
    """One direct-alignment run: an objective (``daa_sweep.objectives``) at one beta, on one
    training data variant (``daa_sweep.data``) of one seed's noisy pairs."""

    objective: str
    beta: float
    data: str
    noise: float
    seed: int

    @property
    def name(self) -> str:
        return f"daa__{self.objective}__beta{self.beta:g}__{self.data}__noise{self.noise:g}__seed{self.seed}"


def draw_backbones(seed: int, k: int, n_backbones: int) -> list[int]:
    """The K backbones of one seed, drawn without replacement from the pool.

    Backbones are a random unit of the study: each seed draws its pretrain ensemble's
    K backbones, and the fine-tune ensemble uses the first of them. With a pool of
    exactly K every seed uses every backbone, in another order.
    """
    if n_backbones < k:
        raise ValueError(f"the backbone pool has {n_backbones} backbones; an ensemble of K={k} needs at least K")
    rng = np.random.default_rng([seed, n_backbones, k])
    return [int(b) for b in rng.choice(n_backbones, size=k, replace=False)]


def ensemble_members(kind: str, seed: int, k: int, n_backbones: int) -> list[tuple[int, int]]:
    """(backbone index, fine-tune seed) of each member of an ensemble kind.

    finetune: K members on the seed's first drawn backbone, fine-tune seeds 1000*seed + i;
    pretrain: member i on the seed's i-th drawn backbone, fine-tune seed 1000*seed + i.
    Member 0 is the same model in both kinds and is trained once.
    """
    drawn = draw_backbones(seed, k, n_backbones)
    if kind == "finetune":
        return [(drawn[0], 1000 * seed + i) for i in range(k)]
    if kind == "pretrain":
        return [(b, 1000 * seed + i) for i, b in enumerate(drawn)]
    raise ValueError(f"unknown ensemble kind {kind!r}")


UNIT_CLASSES = {"members": MemberUnit, "lora": LoraUnit}


def kind_member_units(kind: str, noise: float, seed: int, k: int, n_backbones: int) -> list[MemberUnit]:
    """The member units of one ensemble of a kind that trains members one by one (its spec's
    ``units`` is members or lora), in slot order."""
    sp = kinds.spec(kind)
    return [UNIT_CLASSES[sp.units](b, ft, noise, seed) for b, ft in ensemble_members(sp.layout, seed, k, n_backbones)]


def kind_units(kind: str, noise: float, seed: int, k: int, n_backbones: int) -> list[str]:
    """Names of the score units of one ensemble of a study kind, in slot order (each unit
    directory under ``members/`` holds ``scores.parquet`` and ``info.json``)."""
    if kinds.spec(kind).units == "group":
        return GroupUnit(kind, draw_backbones(seed, k, n_backbones)[0], noise, seed).units(k)
    return [u.name for u in kind_member_units(kind, noise, seed, k, n_backbones)]


def plan_groups(config: StudyConfig, n_backbones: int) -> list[GroupUnit]:
    """The study's GroupUnits: one per (kind, noise, seed) of each kind in ``sweep.kinds`` that
    trains a whole ensemble at once, in the registry's order (warm after the members it averages)."""
    k = config.ensemble_size
    return [GroupUnit(kind, draw_backbones(seed, k, n_backbones)[0], noise, seed)
            for kind, sp in kinds.KINDS.items() if sp.units == "group" and kind in config.sweep.kinds
            for noise in config.sweep.noise for seed in config.sweep.seeds]


def plan_members(config: StudyConfig, n_backbones: int) -> list[MemberUnit]:
    """Every member unit to train: those of the kinds in ``sweep.kinds`` that train members one
    by one (finetune and pretrain share member 0; lora's adapters) and those the RL cells need."""
    units: dict[str, MemberUnit] = {}
    for noise in config.sweep.noise:
        for seed in config.sweep.seeds:
            for kind, sp in kinds.KINDS.items():
                if kind in config.sweep.kinds and sp.units != "group":
                    for u in kind_member_units(kind, noise, seed, config.ensemble_size, n_backbones):
                        units[u.name] = u
    for noise in config.rl_sweep.noise if config.rl_sweep.enabled else ():
        for seed in config.rl_sweep.seeds:
            for kind in config.rl_sweep.kinds:
                for b, ft in ensemble_members("finetune" if kind == "finetune" else "pretrain", seed,
                                              config.ensemble_size, n_backbones):
                    u = MemberUnit(b, ft, noise, seed)
                    units.setdefault(u.name, u)
    return list(units.values())


def plan_rl(config: StudyConfig) -> list[RLUnit]:
    sweep = config.rl_sweep
    if not sweep.enabled:
        return []
    out = []
    for noise in sweep.noise:
        for seed in sweep.seeds:
            for kl in sweep.kl_coefs:
                for kind in sweep.kinds:
                    methods = ["mean"] if kind == "single" else list(sweep.methods)
                    out += [RLUnit(kind, m, noise, seed, kl) for m in methods]
    return out


def plan_daa(config: StudyConfig) -> list[DAAUnit]:
    """Every DAA unit: objective x beta x data x seed at ``daa_sweep.noise`` (none unless enabled)."""
    sweep = config.daa_sweep
    if not sweep.enabled:
        return []
    return [DAAUnit(o, b, d, sweep.noise, s) for s in sweep.seeds for d in sweep.data for b in sweep.betas
            for o in sweep.objectives]
