"""RL evaluation measures the policy in eval mode: KL against an identical reference is 0."""

import numpy as np
import torch

from rewardherd.models.tiny import build_backbone, build_tokenizer
from rewardherd.policy.rl import Evaluator, RLConfig


class _OneMember:
    """The smallest ensemble the evaluator needs: one member scoring by length."""

    names = ["m0"]

    def score(self, prompts, responses):
        return np.array([[float(len(r)) for r in responses]])

    def standardize(self, raw):
        return raw


def test_kl_is_exactly_zero_for_a_dropout_policy_in_train_mode():
    tok = build_tokenizer()
    tok.padding_side = "left"
    policy = build_backbone(tok, seed=0)
    assert policy.config.resid_pdrop > 0  # dropout is on: train mode would perturb log-probs
    ref = build_backbone(tok, seed=0).eval()
    policy.train()
    torch.manual_seed(0)
    ev = Evaluator(_OneMember(), ref, tok, [f"item {i}: " for i in range(6)],
                   RLConfig(eval_prompts=6, eval_samples=2, max_new_tokens=6, method="mean"))
    row = ev(policy, 0)
    assert row["kl"] == 0.0
    assert policy.training  # restored afterwards
