"""Configs for reward-member training and ensemble plans."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rewardherd.config import check, key_fields
from rewardherd.schema import KIND_ALIASES, TRAIN_KINDS, TrainKindOrAlias, canonical_kind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """How each reward member is trained (Bradley-Terry; batched members in rewardherd's loop, else TRL's RewardTrainer)."""

    lr: float = 1e-4
    """Peak learning rate of AdamW."""
    epochs: float = 1.0
    """Passes over the training pairs."""
    batch_size: int = 16
    """Preference pairs per optimizer step."""
    max_length: int = 256
    """Maximum tokens of prompt + response; longer sequences keep their end and are counted."""
    center_coef: float = 0.01
    """Centring coefficient eta of eta * E[(r_c + r_r)^2] (Eisenstein et al. eq. 2); 0 turns it off."""
    heldout_fraction: float = 0.1
    """Share of prompts held out (split by prompt hash) for accuracy and standardization statistics."""
    warmup_ratio: float = 0.05
    """Share of steps spent in linear warm-up."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    lr_scheduler: str = "linear"
    """Transformers learning-rate schedule name (linear, cosine, constant...)."""
    eval_batch_size: int = 64
    """Sequences per forward pass when scoring held-out pairs."""
    lora_r: int | None = None
    """LoRA rank; None trains the full model."""
    lora_alpha: int = 16
    """LoRA alpha (only with lora_r)."""
    device: str | None = None
    """Training device; None picks cuda when available, else cpu."""
    bf16: bool = False
    """bf16 mixed precision (GPU only; off on CPU so scores are exact)."""
    bootstrap: bool = False
    """Train each member on its own bootstrap resample of the training pairs, drawn from its fine-tune seed (bagging, Breiman 1996; :func:`rewardherd.data.bootstrap_pairs`), so members' finite-data errors differ and averaging can cancel them; off: every member trains on every pair (the papers' setting)."""
    subsample: int | None = None
    """Train each member on its own random ``subsample`` of the training pairs, drawn without replacement from its fine-tune seed (subagging, Buhlmann & Yu 2002; :func:`rewardherd.data.resample.subsample_counts`): with a pool of pairs several times larger, members see mostly different pairs, so their finite-data errors differ; None: every member trains on every pair. Exclusive with bootstrap; standalone members only (a multi-head ensemble resamples with its own bootstrap)."""
    subsample_shared: float = 0.0
    """Share of each member's ``subsample`` that is one block of pairs every member holds (:func:`rewardherd.data.resample.subsample_counts`; the block is fixed by the training pairs, the rest is the member's own draw): 0, members' subsamples are independent; 1, every member trains on the same pairs (the papers' setting), so their finite-data errors are shared."""
    member_label_noise: float = 0.0
    """Share of each member's training pairs whose labels that member sees swapped, drawn from its own fine-tune seed (:func:`member_flips`): each member its own noisy annotator, so label-noise errors differ between members and averaging can cancel them; 0: every member sees the same labels (the papers' setting). Applied before the bootstrap resample. Label noise shared by all members is the data's own (a study's ``sweep.noise``)."""
    batched: bool = True
    """Train the members of one ensemble together in one loop (:mod:`rewardherd.training.batched`) where they share an architecture and tokenizer: one setup, one optimizer, vmapped on CUDA; each keeps its own seed for head, data order, bootstrap and dropout. Off: each member alone through TRL's RewardTrainer (from the same seed, another member: TRL draws its data order from torch's global RNG)."""
    shared_head_init: bool = False
    """Initialize every member's reward head from one fixed seed (WARM's shared initialization), so members differ only by data order and dropout; off: the fine-tune seed also seeds the head."""

    def __post_init__(self):
        check(self.lr > 0, f"lr must be > 0; got {self.lr}")
        check(self.epochs > 0, f"epochs must be > 0; got {self.epochs}")
        check(self.batch_size >= 1, f"batch_size must be >= 1; got {self.batch_size}")
        check(self.max_length >= 2, f"max_length must be >= 2; got {self.max_length}")
        check(not self.center_coef < 0, f"center_coef must be >= 0; got {self.center_coef}")
        check(0.0 < self.heldout_fraction < 1.0, f"heldout_fraction must be in (0, 1); got {self.heldout_fraction}")
        check(self.lora_r is None or self.lora_r >= 1, f"lora_r must be >= 1 or None; got {self.lora_r}")
        check(self.subsample is None or self.subsample >= 1, f"subsample must be >= 1 or None; got {self.subsample}")
        check(not (self.bootstrap and self.subsample is not None),
              "bootstrap and subsample are exclusive: choose one resample per member")
        check(0.0 <= self.subsample_shared <= 1.0, f"subsample_shared must be in [0, 1]; got {self.subsample_shared}")
        check(self.subsample_shared == 0.0 or self.subsample is not None, "subsample_shared needs subsample")
        check(0.0 <= self.member_label_noise < 0.5,
              f"member_label_noise must be in [0, 0.5); got {self.member_label_noise}")

    def hashed(self) -> dict:
        """The fields a training plan is hashed on: all of them, except those added after plans
        were first written while they hold the value that reproduces the older behaviour
        (:data:`LATER_FIELDS`), so directories trained before them still resume."""
        return key_fields(self, LATER_FIELDS)


#: Fields added to TrainConfig after plans were hashed, with the value that behaves as before.
#: (batched=True, the default since it was added, is hashed: it trains differently from TRL.)
LATER_FIELDS = {"batched": False, "member_label_noise": 0.0, "subsample": None, "subsample_shared": 0.0}


@dataclass(frozen=True)
class MemberSpec:
    """One member to train: which backbone, which seeds."""

    backbone: str
    """Path (or hub id) of the backbone the member starts from."""
    finetune_seed: int
    """Seed of the reward head initialization, data order and dropout."""
    pretrain_seed: int | None = None
    """Seed the backbone was pretrained with, when known (documentation only)."""


@dataclass(frozen=True)
class EnsembleConfig:
    """Which members make up the ensemble."""

    kind: TrainKindOrAlias = "finetune"
    """finetune: one backbone, K seeds; pretrain: K backbones, one seed each; explicit: members list (the old names finetune_seeds and pretrain_seeds are accepted as aliases)."""
    backbones: tuple[str, ...] = ()
    """Backbone paths: one for finetune, K for pretrain."""
    n_members: int = 3
    """K, the number of members (finetune)."""
    seeds: tuple[int, ...] = ()
    """Fine-tune seeds; default 0..K-1."""
    pretrain_seeds: tuple[int, ...] = ()
    """Pretraining seeds of the backbones, when known (pretrain kind)."""
    members: tuple[MemberSpec, ...] = field(default_factory=tuple)
    """Explicit (backbone, seed) members, for kind=explicit."""

    def __post_init__(self):
        if self.kind in KIND_ALIASES:
            log.warning("ensemble kind %r is an old name, accepted as an alias of %r; write %r instead",
                        self.kind, KIND_ALIASES[self.kind], KIND_ALIASES[self.kind])
            object.__setattr__(self, "kind", canonical_kind(self.kind))
        check(self.kind in TRAIN_KINDS, f"kind {self.kind!r} is not one of {list(TRAIN_KINDS)}")
        check(self.kind != "finetune" or len(self.backbones) == 1,
              f"finetune needs exactly one backbone; got {len(self.backbones)}")
        check(self.kind != "pretrain" or len(self.backbones) >= 1, "pretrain needs one backbone per member")
        check(self.kind != "explicit" or len(self.members) >= 1, "explicit ensembles need a members list")
        check(self.n_members >= 1, f"n_members must be >= 1; got {self.n_members}")

    def member_specs(self) -> list[MemberSpec]:
        """The members this config describes, in order."""
        if self.kind == "explicit":
            return list(self.members)
        if self.kind == "finetune":
            seeds = list(self.seeds) or list(range(self.n_members))
            if len(seeds) != self.n_members:
                raise ValueError(f"{len(seeds)} seeds for {self.n_members} members")
            return [MemberSpec(self.backbones[0], s) for s in seeds]
        seeds = list(self.seeds) or [0] * len(self.backbones)
        if len(seeds) == 1:
            seeds = seeds * len(self.backbones)
        if len(seeds) != len(self.backbones):
            raise ValueError(f"{len(seeds)} seeds for {len(self.backbones)} backbones")
        ps = list(self.pretrain_seeds) or [None] * len(self.backbones)
        if len(ps) != len(self.backbones):
            raise ValueError(f"{len(ps)} pretrain_seeds for {len(self.backbones)} backbones")
        return [MemberSpec(b, s, p) for b, s, p in zip(self.backbones, seeds, ps, strict=True)]
