"""Tests for rewardherd.core.kl: k1/k2/k3 estimators, sequence KL, KL-shaped reward."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardherd.core.kl import kl_penalized_reward, kl_per_token, sequence_kl

LOG2 = math.log(2.0)


def _t(x, dtype=torch.float64):
    return torch.tensor(x, dtype=dtype)


def test_estimators_hand():
    # p = 1/2, p_ref = 1/4 -> l = log p - log p_ref = log 2; ratio p_ref/p = 1/2
    #   k1 = log 2; k2 = (log 2)^2 / 2; k3 = (1/2 - 1) - log(1/2) = log 2 - 1/2
    # p = 1/4, p_ref = 1/2 -> l = -log 2; ratio = 2
    #   k1 = -log 2; k2 = (log 2)^2 / 2; k3 = (2 - 1) - log 2 = 1 - log 2
    logp = _t([math.log(0.5), math.log(0.25)])
    logp_ref = _t([math.log(0.25), math.log(0.5)])
    torch.testing.assert_close(kl_per_token(logp, logp_ref, "k1"), _t([LOG2, -LOG2]))
    torch.testing.assert_close(kl_per_token(logp, logp_ref, "k2"), _t([LOG2**2 / 2, LOG2**2 / 2]))
    torch.testing.assert_close(kl_per_token(logp, logp_ref, "k3"), _t([LOG2 - 0.5, 1 - LOG2]))
    # default estimator is k1
    torch.testing.assert_close(kl_per_token(logp, logp_ref), _t([LOG2, -LOG2]))


def test_identical_policies_give_zero():
    logp = _t([[-0.1, -3.0, -7.5]])
    for est in ("k1", "k2", "k3"):
        assert torch.all(kl_per_token(logp, logp.clone(), est) == 0.0)


def test_k1_and_k3_are_unbiased_for_exact_kl():
    # Discrete p, q over 4 outcomes; weighting each outcome's per-token estimate by p(x)
    # gives the exact expectation under sampling from p. Both k1 and k3 equal KL(p||q):
    #   E_p[k3] = sum p (q/p - 1) + sum p log(p/q) = (1 - 1) + KL.
    p = _t([0.1, 0.2, 0.3, 0.4])
    q = _t([0.25, 0.25, 0.4, 0.1])
    kl = float((p * (p.log() - q.log())).sum())
    for est in ("k1", "k3"):
        got = float((p * kl_per_token(p.log(), q.log(), est)).sum())
        assert got == pytest.approx(kl, abs=1e-14)
    # k2 is biased: E_p[l^2/2] != KL here
    k2 = float((p * kl_per_token(p.log(), q.log(), "k2")).sum())
    assert abs(k2 - kl) > 1e-3


@settings(max_examples=100, deadline=None)
@given(log_ratio=st.lists(st.floats(-30, 30), min_size=1, max_size=10))
def test_k3_non_negative(log_ratio):
    logp = _t(log_ratio)
    k3 = kl_per_token(logp, torch.zeros_like(logp), "k3")
    assert torch.all(k3 >= 0.0)
    assert torch.all(kl_per_token(logp, torch.zeros_like(logp), "k2") >= 0.0)


def test_sequence_kl_with_mask_hand():
    # l = logp - logp_ref = [[0.5, 0, -1], [0.5, -0.25, -9]]
    logp = _t([[-1.0, -2.0, -3.0], [-0.5, -0.5, -9.0]])
    logp_ref = _t([[-1.5, -2.0, -2.0], [-1.0, -0.25, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    # k1 summed over response tokens only: [0.5 + 0, 0.5 - 0.25] = [0.5, 0.25]
    torch.testing.assert_close(sequence_kl(logp, logp_ref, mask), _t([0.5, 0.25]))
    torch.testing.assert_close(sequence_kl(logp, logp_ref, mask.bool()), _t([0.5, 0.25]))
    # no mask: every token counts: [0.5 + 0 - 1, 0.5 - 0.25 - 9] = [-0.5, -8.75]
    torch.testing.assert_close(sequence_kl(logp, logp_ref), _t([-0.5, -8.75]))
    # k3, masked: row 0 = k3(0.5) + k3(0) = (e^-0.5 - 1 + 0.5) + 0
    k3 = sequence_kl(logp, logp_ref, mask, estimator="k3")
    assert k3[0].item() == pytest.approx(math.exp(-0.5) - 0.5, abs=1e-14)
    # row 1 = k3(0.5) + k3(-0.25) = (e^-0.5 - 0.5) + (e^0.25 - 1 - 0.25)
    assert k3[1].item() == pytest.approx(math.exp(-0.5) - 0.5 + math.exp(0.25) - 1.25, abs=1e-14)


def test_sequence_kl_masked_tokens_do_not_leak():
    # Masked-out (padding) positions must not affect the result, whatever finite
    # log-probs they hold. Here a padding token has l = -100 in float32, where
    # k3's exp(-l) overflows to inf; inf * 0 must not turn the sequence KL into NaN.
    logp = _t([[-1.0, -100.0]], dtype=torch.float32)
    logp_ref = _t([[-2.0, 0.0]], dtype=torch.float32)
    mask = torch.tensor([[1, 0]])
    expected = math.exp(-1.0) - 1.0 + 1.0  # k3 of l = 1 on the one response token
    for est, want in (("k1", 1.0), ("k3", expected)):
        got = sequence_kl(logp, logp_ref, mask, estimator=est)
        assert torch.isfinite(got).all(), (est, got)
        assert got.item() == pytest.approx(want, rel=1e-6)


def test_kl_errors():
    with pytest.raises(ValueError):
        kl_per_token(_t([0.0, 1.0]), _t([0.0]))
    with pytest.raises(ValueError):
        kl_per_token(_t([0.0]), _t([0.0]), "k4")


def test_kl_penalized_reward_hand():
    # r - 0.1 * KL: [1 - 0.05, 2 - 0.4] = [0.95, 1.6]
    r, kl = _t([1.0, 2.0]), _t([0.5, 4.0])
    torch.testing.assert_close(kl_penalized_reward(r, kl, 0.1), _t([0.95, 1.6]))
    # kl_coef = 0 means 0: the reward unchanged, even for negative k1 estimates
    assert torch.equal(kl_penalized_reward(r, _t([-3.0, 7.0]), 0.0), r)
    with pytest.raises(ValueError):
        kl_penalized_reward(r, kl, -0.01)


def test_kl_penalized_reward_composes_with_sequence_kl():
    logp = _t([[-1.0, -2.0], [-0.5, -0.5]])
    logp_ref = _t([[-1.5, -2.0], [-1.0, -0.25]])
    reward = _t([1.0, 0.0])
    seq = sequence_kl(logp, logp_ref)  # [0.5, 0.25]
    torch.testing.assert_close(kl_penalized_reward(reward, seq, 0.2), _t([1.0 - 0.1, 0.0 - 0.05]))
