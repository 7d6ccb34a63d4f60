"""Configs of the optimizers, best-of-n, RL and DPO; the string under each field is its only help text.

Light to import (no torch): the study config and the CLI read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from rewardherd.config import check


@dataclass(frozen=True)
class PoolSampling:
    """How a best-of-n pool is sampled and how far n goes; shared by `bon` and the study's pool."""

    max_n_fraction: float = 0.25
    """Largest n as a fraction of the pool size N (the estimator's variance grows near N)."""
    temperature: float = 1.0
    """Sampling temperature."""
    seed: int = 0
    """Sampling seed of the pool."""


@dataclass(frozen=True)
class BonConfig(PoolSampling):
    """Best-of-n: one pool of samples per prompt, scored once, unbiased curves over n."""

    pool_size: int = 64
    """Samples per prompt (N); n runs over powers of two up to max_n_fraction * N."""
    max_new_tokens: int = 48
    """Most tokens per sampled response."""
    top_p: float = 1.0
    """Nucleus sampling mass; 1 disables it."""
    methods: tuple[str, ...] = ("mean", "min", "uncertainty_weighted(lam=0.5)")
    """Aggregations the curves are drawn for, each written name or 'name(k=v,...)'."""


@dataclass(frozen=True)
class RLConfig:
    """RL with a KL penalty (TRL RLOOTrainer)."""

    method: str = "mean"
    """Ensemble aggregation the policy maximizes."""
    params: dict = field(default_factory=dict)
    """Parameters of the aggregation (e.g. {lam: 0.1})."""
    kl_coef: float = 0.05
    """KL penalty coefficient (TRL's beta), subtracted from the reward as kl_coef * sequence KL."""
    steps: int = 50
    """Optimizer steps."""
    lr: float = 1e-5
    """Learning rate."""
    num_generations: int = 8
    """Samples per prompt (the RLOO group)."""
    prompts_per_step: int = 4
    """Prompts per optimizer step (batch = prompts_per_step * num_generations completions)."""
    max_new_tokens: int = 32
    """Most tokens per completion."""
    temperature: float = 1.0
    """Sampling temperature during training and evaluation."""
    eval_every: int = 10
    """Evaluate (and checkpoint) every this many steps."""
    eval_prompts: int = 64
    """Held-out prompts per evaluation."""
    eval_samples: int = 2
    """Samples per held-out prompt per evaluation."""
    seed: int = 0
    """Seed of TRL's sampling and data order, and of evaluation sampling."""
    save_checkpoints: bool = True
    """Save the policy at every evaluation."""
    bf16: bool = False
    """bf16 on GPU; always off on CPU."""
    kv_sampler: bool = True
    """Sample RL rollouts with rewardherd's KV-cached loop (:mod:`rewardherd.policy.sampling`; the same temperature and top-p, ~2.7x faster than ``generate`` on CPU) instead of TRL's ``model.generate``; its draws come from torch's seeded RNG, so runs stay reproducible but differ from ``generate``'s. Off, or with top-k, min-p, a repetition penalty, several EOS ids, images or vLLM: TRL's own generation."""

    def __post_init__(self):
        _ = self.aggregation  # validates method and params
        check(not self.kl_coef < 0, f"kl_coef must be >= 0; got {self.kl_coef}")
        check(self.steps >= 1 and self.eval_every >= 1, "steps and eval_every must be >= 1")
        check(self.num_generations >= 2, "RLOO needs num_generations >= 2")

    @property
    def aggregation(self):
        """``method`` and ``params`` as one :class:`~rewardherd.core.Aggregation`."""
        from rewardherd.core import Aggregation  # core loads numpy/torch; keep this module light

        return Aggregation(self.method, dict(self.params))


#: DPO-family loss terms rewardherd offers (TRL ``DPOConfig.loss_type`` names): one
#: preference term, optionally followed by ``sft`` (RPO is ``("sigmoid", "sft")``).
PREFERENCE_LOSSES = ("sigmoid", "ipo", "hinge")
DPOLoss = Literal["sigmoid", "ipo", "hinge", "sft"]


@dataclass(frozen=True)
class DPOConfig:
    """Direct alignment on preference pairs (TRL DPOTrainer): DPO, IPO, SLiC-style hinge, RPO."""

    loss_type: tuple[DPOLoss, ...] = ("sigmoid",)
    """Loss terms, summed with loss_weights: sigmoid (DPO), ipo or hinge (SLiC-style), optionally followed by sft (the NLL of the chosen responses: RPO is sigmoid, sft)."""
    loss_weights: tuple[float, ...] | None = None
    """Weight of each loss_type term, in order (TRL's loss_weights); default 1 each. For RPO the second is the SFT term's weight."""
    kl_coef: float = 0.1
    """KL regularization strength (TRL's beta): DPO's beta, IPO's tau, the hinge's scale of the log-ratio margin."""
    epochs: float = 1.0
    """Passes over the training pairs (a fraction is allowed, e.g. 0.5)."""
    batch_size: int = 8
    """Preference pairs per optimizer step."""
    lr: float = 1e-5
    """Learning rate."""
    lr_schedule: Literal["linear", "constant"] = "linear"
    """linear: decays to 0 at the last step; constant: fixed."""
    max_length: int = 256
    """Most tokens of prompt + response per sequence (TRL truncates the rest)."""
    checkpoint_fractions: tuple[float, ...] = (0.25, 0.5, 1.0)
    """Where the policy is saved and kept, in epochs (each in (0, epochs]); rerunning resumes from the latest."""
    eval_every: int = 10
    """Evaluate on the held-out prompts every this many steps (also at step 0, at each checkpoint and at the end)."""
    eval_prompts: int = 64
    """Held-out prompts per evaluation (the first ones of the file)."""
    eval_samples: int = 2
    """Samples per held-out prompt per evaluation."""
    max_new_tokens: int = 32
    """Most tokens per sampled evaluation response."""
    temperature: float = 1.0
    """Sampling temperature of the evaluation (KL is the policy's own only at 1)."""
    methods: tuple[str, ...] = ("mean",)
    """Aggregations the ensemble's proxy reward is recorded under (with an ensemble), each 'name(k=v,...)'."""
    seed: int = 0
    """Seed of the data order (TRL) and of evaluation sampling."""
    disable_dropout: bool = True
    """Turn dropout off in the policy and reference while training (TRL's default); evaluation is in eval mode either way."""
    bf16: bool = False
    """bf16 on GPU; always off on CPU."""

    def __post_init__(self):
        losses = tuple(self.loss_type)
        bad = [x for x in losses if x not in (*PREFERENCE_LOSSES, "sft")]
        check(not bad, f"loss_type: unknown {bad}; choose one of {list(PREFERENCE_LOSSES)}, optionally then sft")
        check(len(losses) in (1, 2) and losses[0] in PREFERENCE_LOSSES and losses[1:] in ((), ("sft",)),
              f"loss_type must be one of {list(PREFERENCE_LOSSES)}, optionally followed by sft "
              f"(RPO: [sigmoid, sft]); got {list(losses)}")
        if self.loss_weights is not None:
            check(len(self.loss_weights) == len(losses),
                  f"loss_weights has {len(self.loss_weights)} values for {len(losses)} loss_type terms")
            check(all(math.isfinite(w) and w >= 0 for w in self.loss_weights),
                  f"loss_weights must be finite and >= 0; got {list(self.loss_weights)}")
        check(math.isfinite(self.kl_coef) and self.kl_coef > 0, f"kl_coef must be > 0; got {self.kl_coef}")
        check(math.isfinite(self.epochs) and self.epochs > 0, f"epochs must be > 0; got {self.epochs}")
        check(self.lr > 0, f"lr must be > 0; got {self.lr}")
        check(self.lr_schedule in ("linear", "constant"), f"lr_schedule must be linear or constant; got {self.lr_schedule!r}")
        for name in ("batch_size", "eval_every", "eval_prompts", "eval_samples", "max_new_tokens"):
            check(getattr(self, name) >= 1, f"{name} must be >= 1; got {getattr(self, name)}")
        check(self.max_length >= 2, f"max_length must be >= 2; got {self.max_length}")
        check(self.temperature > 0, f"temperature must be > 0; got {self.temperature}")
        fr = tuple(self.checkpoint_fractions)
        check(all(0 < f <= self.epochs for f in fr),
              f"checkpoint_fractions must lie in (0, epochs={self.epochs:g}]; got {list(fr)}")
        check(list(fr) == sorted(set(fr)), f"checkpoint_fractions must be increasing, without repeats; got {list(fr)}")
        check(len(self.methods) >= 1, "methods: give at least one aggregation")
        _ = self.aggregations  # validates every method

    @property
    def weights(self) -> tuple[float, ...]:
        """``loss_weights``, or 1 per term."""
        return tuple(self.loss_weights) if self.loss_weights is not None else (1.0,) * len(self.loss_type)

    @property
    def aggregations(self) -> list:
        """``methods`` as :class:`~rewardherd.core.Aggregation` values."""
        from rewardherd.core import Aggregation  # core loads numpy/torch; keep this module light

        return [Aggregation.parse(m) for m in self.methods]

    @property
    def aggregation(self):
        """The first of ``methods`` (what the evaluator logs as the proxy)."""
        return self.aggregations[0]
