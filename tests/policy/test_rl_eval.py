"""RL evaluation measures the policy in eval mode: KL against an identical reference is 0."""

import numpy as np
import torch

from rewardherd.models.tiny import build_backbone, build_tokenizer
from rewardherd.policy.rl import Evaluator, RLConfig, response_logprobs

from .conftest import OneMember


def test_kl_is_exactly_zero_for_a_dropout_policy_in_train_mode():
    tok = build_tokenizer()
    tok.padding_side = "left"
    policy = build_backbone(tok, seed=0)
    assert policy.config.resid_pdrop > 0  # dropout is on: train mode would perturb log-probs
    ref = build_backbone(tok, seed=0).eval()
    policy.train()
    torch.manual_seed(0)
    ev = Evaluator(OneMember(), ref, tok, [f"item {i}: " for i in range(6)],
                   RLConfig(eval_prompts=6, eval_samples=2, max_new_tokens=6, method="mean"))
    row = ev(policy, 0)
    assert row["kl"] == 0.0
    assert policy.training  # restored afterwards


def test_response_logprobs_of_a_padded_batch_match_one_sequence_at_a_time():
    # Right padding (models.scoring.pad_right) must not change a response's log-probs.
    tok = build_tokenizer()
    model = build_backbone(tok, seed=0).eval()
    prompts = ["item 1: ", "a longer prompt about things: ", "x"]
    responses = [[5, 6, 7, 8], [9], [10, 11, 12, 13, 14, 15, 16]]
    batched = response_logprobs(model, tok, prompts, responses, batch_size=3)
    alone = response_logprobs(model, tok, prompts, responses, batch_size=1)
    assert [len(x) for x in batched] == [4, 1, 7]
    for a, b in zip(batched, alone, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
