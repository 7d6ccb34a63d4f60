"""Configs of the two optimizers, best-of-n and RL; the string under each field is its only help text.

Light to import (no torch): the study config and the CLI read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
