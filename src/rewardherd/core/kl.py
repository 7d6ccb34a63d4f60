"""KL estimators between a policy and its reference, and the KL-shaped reward.

Shape notation: ``b`` sequences, ``t`` tokens. ``logp``/``logp_ref`` are the
per-token log-probabilities of the sampled tokens under the policy and the
reference, shape (b, t); ``mask`` (b, t) marks response tokens.

With the per-token log-ratio ``l = logp - logp_ref`` of a token sampled from the policy
(Schulman, "Approximating KL divergence", 2020):

- k1 = l                         unbiased, can be negative per sample
- k2 = l^2 / 2                   biased, low variance
- k3 = (exp(-l) - 1) + l         unbiased, always >= 0  (ratio - 1 - log ratio, ratio = p_ref/p)

rewardherd's reported KL(pi || pi_ref) is the **sequence-level k1**: the mean over
sampled sequences of the sum of per-token log-ratios, the same estimator for every
RL evaluation. Best-of-n uses the analytic :func:`rewardherd.core.bon.bon_kl` instead.
"""

from __future__ import annotations

from typing import Literal

import torch

Estimator = Literal["k1", "k2", "k3"]


def kl_per_token(logp: torch.Tensor, logp_ref: torch.Tensor, estimator: Estimator = "k1") -> torch.Tensor:
    """Per-token KL estimate, same shape as the inputs."""
    if logp.shape != logp_ref.shape:
        raise ValueError(f"logp {tuple(logp.shape)} and logp_ref {tuple(logp_ref.shape)} differ")
    log_ratio = logp - logp_ref
    if estimator == "k1":
        return log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {estimator!r}; choose k1, k2 or k3")


def sequence_kl(
    logp: torch.Tensor,
    logp_ref: torch.Tensor,
    mask: torch.Tensor | None = None,
    estimator: Estimator = "k1",
) -> torch.Tensor:
    """Sequence-level KL estimate per sample: sum over response tokens, shape (b,)."""
    per_token = kl_per_token(logp, logp_ref, estimator)
    if mask is not None:
        # where, not multiply: a masked position may hold inf (inf * 0 = NaN)
        per_token = torch.where(mask.bool(), per_token, torch.zeros_like(per_token))
    return per_token.sum(dim=-1)


def kl_penalized_reward(reward: torch.Tensor, seq_kl: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """r - kl_coef * KL: the reward-side KL penalty of the papers' PPO setups (b,)."""
    if kl_coef < 0:
        raise ValueError(f"kl_coef must be >= 0; got {kl_coef}")
    return reward - kl_coef * seq_kl
