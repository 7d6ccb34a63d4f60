"""Tests for rewardherd.core.bradley_terry: loss, probability, accuracy."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardherd.core.bradley_terry import (
    bradley_terry_loss,
    preference_accuracy,
    preference_probability,
)

LOG2 = math.log(2.0)
scores = st.lists(st.floats(-100, 100), min_size=1, max_size=8)


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


def _reference_loss(chosen, rejected, margin=0.0, center_coef=0.0, alpha=0.0):
    """Loop over pairs with math.log / math.exp (fine for moderate values)."""
    total = 0.0
    centre = 0.0
    for c, r in zip(chosen, rejected, strict=True):
        d = c - r - margin
        sig = 1.0 / (1.0 + math.exp(-d))
        total += -(1 - alpha) * math.log(sig) - alpha * math.log(1 - sig)
        centre += (c + r) ** 2
    n = len(chosen)
    return total / n + center_coef * centre / n


# ---------------------------------------------------------------- hand-worked


def test_equal_scores_give_log2():
    # d = 0: -logsigmoid(0) = log 2 for every pair
    loss = bradley_terry_loss(_t([0.3, -2.0]), _t([0.3, -2.0]), center_coef=0.0)
    assert loss.item() == pytest.approx(LOG2, abs=1e-12)


def test_centring_term_hand():
    # chosen = rejected = 1: BT part log 2; centring 0.01 * (1 + 1)^2 = 0.04
    loss = bradley_terry_loss(_t([1.0]), _t([1.0]))  # default center_coef = 0.01
    assert loss.item() == pytest.approx(LOG2 + 0.04, abs=1e-12)
    # chosen [1, 0], rejected [0, 0], eta = 0.5:
    #   BT part: mean(-logsigmoid(1), -logsigmoid(0)) = (log(1 + e^-1) + log 2) / 2
    #   centring: 0.5 * mean((1+0)^2, (0+0)^2) = 0.5 * 0.5 = 0.25
    loss = bradley_terry_loss(_t([1.0, 0.0]), _t([0.0, 0.0]), center_coef=0.5)
    expected = (math.log1p(math.exp(-1.0)) + LOG2) / 2 + 0.25
    assert loss.item() == pytest.approx(expected, abs=1e-12)


def test_centre_coef_zero_means_zero():
    c, r = _t([3.0, 5.0]), _t([1.0, 2.0])
    bt_only = (-torch.nn.functional.logsigmoid(c - r)).mean()
    assert bradley_terry_loss(c, r, center_coef=0.0).item() == bt_only.item()
    assert bradley_terry_loss(c, r, center_coef=0).item() == bt_only.item()


def test_margin_hand():
    # chosen 2, rejected 1, margin 1: d = 2 - 1 - 1 = 0 -> log 2
    loss = bradley_terry_loss(_t([2.0]), _t([1.0]), margin=1.0, center_coef=0.0)
    assert loss.item() == pytest.approx(LOG2, abs=1e-12)
    # per-pair margins [1, -log 3] with chosen - rejected = [1, 0]:
    #   pair 0: d = 1 - 1 = 0 -> log 2
    #   pair 1: d = 0 - (-log 3) = log 3 -> -log(3/4) = log(4/3)
    loss = bradley_terry_loss(_t([1.0, 0.0]), _t([0.0, 0.0]), margin=_t([1.0, -math.log(3)]), center_coef=0.0)
    assert loss.item() == pytest.approx((LOG2 + math.log(4 / 3)) / 2, abs=1e-12)


def test_label_smoothing_hand():
    # d = log 3: sigmoid(d) = 3/4, sigmoid(-d) = 1/4
    # alpha = 0.1: -(0.9) log(3/4) - 0.1 log(1/4) = 0.9 log(4/3) + 0.1 log 4
    loss = bradley_terry_loss(_t([math.log(3)]), _t([0.0]), center_coef=0.0, label_smoothing=0.1)
    assert loss.item() == pytest.approx(0.9 * math.log(4 / 3) + 0.1 * math.log(4), abs=1e-12)
    # at d = 0 the smoothing does not matter: log 2
    loss0 = bradley_terry_loss(_t([1.0]), _t([1.0]), center_coef=0.0, label_smoothing=0.3)
    assert loss0.item() == pytest.approx(LOG2, abs=1e-12)


def test_matches_loop_reference():
    chosen = [0.5, -1.0, 2.0, 0.0, 3.0]
    rejected = [0.0, 1.0, -1.5, 0.0, 2.5]
    for margin, eta, alpha in [(0.0, 0.0, 0.0), (0.5, 0.01, 0.0), (0.0, 0.2, 0.25), (-1.0, 0.0, 0.1)]:
        got = bradley_terry_loss(_t(chosen), _t(rejected), margin=margin, center_coef=eta, label_smoothing=alpha)
        ref = _reference_loss(chosen, rejected, margin, eta, alpha)
        assert got.item() == pytest.approx(ref, rel=1e-12, abs=1e-12)


def test_multi_head_reduces_over_all():
    # (k=2, b=2): mean over all four pairs equals the flat loss
    c = _t([[1.0, 2.0], [0.0, -1.0]])
    r = _t([[0.0, 2.5], [1.0, -1.0]])
    got = bradley_terry_loss(c, r, center_coef=0.01)
    flat = bradley_terry_loss(c.reshape(-1), r.reshape(-1), center_coef=0.01)
    assert got.shape == ()
    assert got.item() == pytest.approx(flat.item(), abs=1e-14)


def test_loss_is_differentiable():
    c = _t([1.0, -0.5]).requires_grad_()
    r = _t([0.0, 0.5]).requires_grad_()
    bradley_terry_loss(c, r).backward()
    # d loss / d chosen_j = -(1 - sigmoid(d_j)) / b + eta * 2 (c_j + r_j) / b
    d = torch.tensor([1.0, -1.0], dtype=torch.float64)
    expected = -(1 - torch.sigmoid(d)) / 2 + 0.01 * 2 * torch.tensor([1.0, 0.0], dtype=torch.float64) / 2
    torch.testing.assert_close(c.grad, expected)


# ---------------------------------------------------------------- errors


def test_errors():
    with pytest.raises(ValueError):
        bradley_terry_loss(_t([1.0, 2.0]), _t([1.0]))
    for alpha in (-0.1, 0.5, 0.7):
        with pytest.raises(ValueError):
            bradley_terry_loss(_t([1.0]), _t([0.0]), label_smoothing=alpha)
    with pytest.raises(ValueError):
        bradley_terry_loss(_t([1.0]), _t([0.0]), center_coef=-0.01)


# ---------------------------------------------------------------- probability and accuracy


def test_preference_probability_hand():
    # sigmoid(log 3) = 3/4; with margin log 3 -> sigmoid(0) = 1/2
    p = preference_probability([math.log(3)], [0.0])
    assert p.item() == pytest.approx(0.75, abs=1e-15)
    p = preference_probability([math.log(3)], [0.0], margin=math.log(3))
    assert p.item() == pytest.approx(0.5, abs=1e-15)


def test_preference_accuracy_with_ties():
    # pairs: 2>1 right, 1=1 tie, 1<3 wrong, 0=0 tie
    chosen, rejected = [2.0, 1.0, 1.0, 0.0], [1.0, 1.0, 3.0, 0.0]
    assert preference_accuracy(chosen, rejected) == pytest.approx(0.5)  # (1 + .5 + 0 + .5) / 4
    assert preference_accuracy(chosen, rejected, ties="half") == pytest.approx(0.5)
    assert preference_accuracy(chosen, rejected, ties="wrong") == pytest.approx(0.25)  # 1/4
    assert preference_accuracy(chosen, rejected, ties="right") == pytest.approx(0.75)  # 3/4
    assert preference_accuracy(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == 0.5


def test_preference_accuracy_errors():
    with pytest.raises(ValueError):
        preference_accuracy([], [])
    with pytest.raises((ValueError, KeyError)):
        preference_accuracy([1.0], [0.0], ties="coin")


# ---------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(data=st.data(), shift=st.floats(-100, 100), alpha=st.floats(0, 0.49), margin=st.floats(-5, 5))
def test_loss_unchanged_by_shared_shift_without_centring(data, shift, alpha, margin):
    c = data.draw(scores)
    r = data.draw(st.lists(st.floats(-100, 100), min_size=len(c), max_size=len(c)))
    base = bradley_terry_loss(_t(c), _t(r), center_coef=0.0, label_smoothing=alpha, margin=margin)
    shifted = bradley_terry_loss(_t(c) + shift, _t(r) + shift, center_coef=0.0, label_smoothing=alpha,
                                 margin=margin)
    # (c + s) - (r + s) rounds differently from c - r by ~1 ulp of |s| + |c|
    assert shifted.item() == pytest.approx(base.item(), rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(x=scores, alpha=st.floats(0, 0.49))
def test_equal_scores_give_log2_property(x, alpha):
    loss = bradley_terry_loss(_t(x), _t(x), center_coef=0.0, label_smoothing=alpha)
    assert loss.item() == pytest.approx(LOG2, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(a=st.floats(-1e4, 1e4), b=st.floats(-1e4, 1e4))
def test_probabilities_of_both_orders_sum_to_one(a, b):
    p_ab = preference_probability([a], [b]).item()
    p_ba = preference_probability([b], [a]).item()
    assert 0.0 <= p_ab <= 1.0
    assert p_ab + p_ba == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(c=st.lists(st.sampled_from([1e4, -1e4, 0.0, 9999.5]), min_size=1, max_size=6),
       alpha=st.floats(0, 0.49), eta=st.sampled_from([0.0, 0.01]))
def test_loss_finite_at_1e4(c, alpha, eta):
    for dtype in (torch.float32, torch.float64):
        chosen = torch.tensor(c, dtype=dtype, requires_grad=True)
        rejected = torch.tensor(list(reversed(c)), dtype=dtype, requires_grad=True)
        loss = bradley_terry_loss(chosen, rejected, center_coef=eta, label_smoothing=alpha)
        assert torch.isfinite(loss)
        assert loss.item() >= 0.0
        loss.backward()
        assert torch.all(torch.isfinite(chosen.grad)) and torch.all(torch.isfinite(rejected.grad))


def test_loss_at_1e4_hand():
    # d = 2e4 -> -logsigmoid(2e4) ~ e^-20000 = 0; d = -2e4 -> -logsigmoid(-2e4) = 2e4 (not inf)
    loss_right = bradley_terry_loss(_t([1e4]), _t([-1e4]), center_coef=0.0)
    loss_wrong = bradley_terry_loss(_t([-1e4]), _t([1e4]), center_coef=0.0)
    assert loss_right.item() == pytest.approx(0.0, abs=1e-300)
    assert loss_wrong.item() == pytest.approx(2e4, rel=1e-12)
