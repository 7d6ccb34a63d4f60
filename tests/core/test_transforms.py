"""Tests for rewardherd.core.transforms: standardize, log-sigmoid centring, clip."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rewardherd.core.transforms import (
    clip_reward,
    log_sigmoid_centre,
    member_statistics,
    standardize,
    zscore,
)

# ---------------------------------------------------------------- standardize


def test_standardize_hand():
    # member 0: (r - 2) / 1 -> [1-2, 3-2] = [-1, 1]
    # member 1: (r - 10) / 5 -> [(10-10)/5, (20-10)/5] = [0, 2]
    s = np.array([[1.0, 3.0], [10.0, 20.0]])
    got = standardize(s, mean=[2.0, 10.0], std=[1.0, 5.0])
    np.testing.assert_allclose(got, [[-1.0, 1.0], [0.0, 2.0]])
    np.testing.assert_array_equal(s, [[1.0, 3.0], [10.0, 20.0]])  # input untouched


def test_standardize_accepts_torch():
    s = torch.tensor([[1.0, 3.0], [10.0, 20.0]])
    got = standardize(s, np.array([2.0, 10.0]), np.array([1.0, 5.0]))
    np.testing.assert_allclose(got, [[-1.0, 1.0], [0.0, 2.0]])


@pytest.mark.parametrize(
    ("mean", "std"),
    [
        ([0.0], [1.0, 1.0]),  # wrong number of means
        ([0.0, 0.0], [1.0]),  # wrong number of stds
        ([0.0, 0.0], [1.0, 0.0]),  # zero std
        ([0.0, 0.0], [1.0, -1.0]),  # negative std
        ([0.0, 0.0], [1.0, float("nan")]),
        ([0.0, 0.0], [1.0, float("inf")]),
    ],
)
def test_standardize_bad_statistics_raise(mean, std):
    with pytest.raises(ValueError):
        standardize(np.ones((2, 3)), mean, std)


def test_member_statistics_hand_and_roundtrip():
    # member 0: [1, 3, 1, 3] -> mean 2, deviations +-1 -> population std 1
    s = np.array([[1.0, 3.0, 1.0, 3.0], [-2.0, 2.0, 6.0, 10.0]])
    mean, std = member_statistics(s)
    # member 1: mean 4, deviations -6,-2,2,6 -> sum sq 80 -> var 20
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(std, [1.0, math.sqrt(20.0)])
    _, std1 = member_statistics(s, ddof=1)
    np.testing.assert_allclose(std1, [math.sqrt(4 / 3), math.sqrt(80 / 3)])
    z = standardize(s, mean, std)
    np.testing.assert_allclose(z.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=1), 1.0, atol=1e-12)


def test_member_statistics_needs_two_samples():
    with pytest.raises(ValueError):
        member_statistics([[1.0], [2.0]])


# ---------------------------------------------------------------- log_sigmoid_centre


def test_log_sigmoid_centre_hand():
    # r - ref = 0       -> log sigmoid(0) = log(1/2)
    # r - ref = log 3   -> sigmoid = 3/(3+1) = 3/4 -> log(3/4)
    # r - ref = -log 3  -> sigmoid = 1/(1+3) = 1/4 -> log(1/4)
    r = np.array([1.0, 1.0 + math.log(3), 1.0 - math.log(3)])
    got = log_sigmoid_centre(r, 1.0)
    np.testing.assert_allclose(got, [math.log(0.5), math.log(0.75), math.log(0.25)], atol=1e-12)


def test_log_sigmoid_centre_broadcasts_per_prompt_reference():
    # (m=2, b=2) scores with a (b,) reference: each column centred on its own reference
    s = np.array([[1.0, 5.0], [3.0, 4.0]])
    ref = np.array([1.0, 4.0])
    got = log_sigmoid_centre(s, ref)
    d = s - ref[None, :]  # [[0, 1], [2, 0]]
    expected = -np.log1p(np.exp(-d))
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert got.shape == (2, 2)
    # an (m, b) reference works too
    np.testing.assert_allclose(log_sigmoid_centre(s, s), np.full((2, 2), math.log(0.5)))


def test_log_sigmoid_centre_finite_at_1e4():
    # large positive gap -> 0 (log of ~1); large negative gap -> gap itself (log sigmoid(x) ~ x)
    got = log_sigmoid_centre(np.array([1e4, -1e4, 0.0]), np.array([-1e4, 1e4, 0.0]))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, [0.0, -2e4, math.log(0.5)], atol=1e-12)
    got_t = log_sigmoid_centre(torch.tensor([1e4, -1e4], dtype=torch.float32), 0.0)
    assert np.all(np.isfinite(got_t))
    np.testing.assert_allclose(got_t, [0.0, -1e4], atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(x=arrays(np.float64, st.integers(1, 8), elements=st.floats(-1e4, 1e4)),
       ref=st.floats(-1e4, 1e4))
def test_log_sigmoid_centre_properties(x, ref):
    u = log_sigmoid_centre(x, ref)
    assert np.all(np.isfinite(u))
    assert np.all(u <= 0.0)
    # matches torch's logsigmoid (an independent stable implementation)
    expected = torch.nn.functional.logsigmoid(torch.tensor(x - ref, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(u, expected, rtol=1e-12, atol=1e-300)
    # monotone non-decreasing in the reward
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(u[order]) >= 0)


# ---------------------------------------------------------------- clip_reward


def test_clip_reward_hand():
    # min(r - 1, 0): [-1-1, 0.5-1, 1-1, 3-1 -> 0] = [-2, -0.5, 0, 0]
    np.testing.assert_allclose(clip_reward([-1.0, 0.5, 1.0, 3.0], eta=1.0), [-2.0, -0.5, 0.0, 0.0])
    # eta = 0 means 0: min(r, 0)
    np.testing.assert_allclose(clip_reward([-1.0, 2.0], eta=0.0), [-1.0, 0.0])
    np.testing.assert_allclose(clip_reward(torch.tensor([[2.0], [-2.0]]), eta=-1.0), [[0.0], [-1.0]])


@settings(max_examples=60, deadline=None)
@given(x=arrays(np.float64, st.integers(1, 8), elements=st.floats(-1e4, 1e4)),
       eta=st.floats(-1e3, 1e3))
def test_clip_reward_properties(x, eta):
    c = clip_reward(x, eta)
    assert np.all(c <= 0.0)
    below = x <= eta
    np.testing.assert_array_equal(c[below], x[below] - eta)
    np.testing.assert_array_equal(c[~below], 0.0)


def test_zscore_standardizes_each_row_on_itself():
    # row [1, 2, 3]: mean 2, population std sqrt(2/3) -> [-1, 0, 1] / sqrt(2/3)
    z = zscore(np.array([[1.0, 2.0, 3.0], [10.0, 10.0, 40.0]]))
    np.testing.assert_allclose(z[0], np.array([-1.0, 0.0, 1.0]) / np.sqrt(2 / 3), rtol=0, atol=1e-15)
    np.testing.assert_allclose(z.mean(axis=1), 0.0, atol=1e-15)
    np.testing.assert_allclose(z.std(axis=1), 1.0, rtol=1e-15)
    x = np.array([3.0, -1.0, 4.0, 1.5])
    assert zscore(x).shape == (4,)
    assert zscore(x).tobytes() == ((x - x.mean()) / x.std()).tobytes()  # the formula it replaces, bit for bit


def test_zscore_refuses_a_constant_row():
    with pytest.raises(ValueError, match="finite and > 0"):
        zscore(np.array([2.0, 2.0, 2.0]))
