"""Bradley-Terry reward-model loss, preference probability and accuracy.

Shape notation: ``b`` preference pairs; ``r_c``/``r_r`` are the rewards of the
chosen/rejected responses, shape (b,) (or (k, b) for k heads, reduced over all).

    p(chosen > rejected) = sigmoid(r_c - r_r - margin)
    loss = -(1 - alpha) * logsigmoid(d) - alpha * logsigmoid(-d) + eta * mean((r_c + r_r)^2)
    with d = r_c - r_r - margin

- The centring term eta * E[(r_c + r_r)^2] (Eisenstein et al. eq. 2; TRL's
  ``center_rewards_coefficient``) pins the per-prompt offset that BT leaves free,
  which min/median aggregation across members needs. Default eta = 0.01.
- ``alpha`` is label smoothing (conservative BT); ``margin`` as in Llama-2's RM.
- Always logsigmoid / softplus, never log(1 + exp(.)).

TRL's RewardTrainer computes the same loss for single-head members; rewardherd's
own loops (multi-head ensembles) call this function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    *,
    margin: torch.Tensor | float | None = None,
    center_coef: float = 0.01,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Mean Bradley-Terry loss over pairs (and heads), a scalar tensor.

    ``chosen``/``rejected`` are (b,) or (k, b); ``margin`` broadcasts to them;
    ``center_coef`` is eta (0 disables the centring term); ``label_smoothing`` is alpha
    in [0, 0.5)."""
    if chosen.shape != rejected.shape:
        raise ValueError(f"chosen {tuple(chosen.shape)} and rejected {tuple(rejected.shape)} differ in shape")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5); got {label_smoothing}")
    if center_coef < 0:
        raise ValueError(f"center_coef must be >= 0; got {center_coef}")
    d = chosen - rejected
    if margin is not None:
        d = d - margin
    loss = -(1.0 - label_smoothing) * F.logsigmoid(d) - label_smoothing * F.logsigmoid(-d)
    loss = loss.mean()
    if center_coef != 0.0:
        loss = loss + center_coef * ((chosen + rejected) ** 2).mean()
    return loss


def preference_probability(chosen, rejected, margin=None) -> torch.Tensor:
    """p(chosen > rejected) = sigmoid(r_c - r_r - margin), elementwise."""
    c = torch.as_tensor(chosen, dtype=torch.float64)
    r = torch.as_tensor(rejected, dtype=torch.float64)
    d = c - r if margin is None else c - r - torch.as_tensor(margin, dtype=torch.float64)
    return torch.sigmoid(d)


def preference_accuracy(chosen, rejected, ties: str = "half") -> float:
    """Share of pairs where the chosen response scores higher.

    Args:
        chosen, rejected: (b,) rewards.
        ties: how exact ties count: "half" (0.5 each, the expectation under a coin
            flip), "wrong" or "right".
    """
    c = torch.as_tensor(chosen, dtype=torch.float64).reshape(-1)
    r = torch.as_tensor(rejected, dtype=torch.float64).reshape(-1)
    if c.numel() == 0:
        raise ValueError("no pairs to score")
    tie_values = {"half": 0.5, "wrong": 0.0, "right": 1.0}
    if ties not in tie_values:
        raise ValueError(f"ties must be one of {sorted(tie_values)}; got {ties!r}")
    tie_value = tie_values[ties]
    right = (c > r).double() + tie_value * (c == r).double()
    return float(right.mean())
