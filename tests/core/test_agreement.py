"""Tests for rewardherd.core.agreement: Kendall, top-1, Spearman, AUROC."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardherd.core.agreement import auroc, pairwise_kendall, spearman, top1_agreement


def brute_force_auroc(score, label) -> float:
    """P(score of a random positive > score of a random negative), ties count 1/2."""
    pos = [s for s, y in zip(score, label, strict=True) if y]
    neg = [s for s, y in zip(score, label, strict=True) if not y]
    total = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return total / (len(pos) * len(neg))


# ---------------------------------------------------------------- pairwise_kendall


def test_pairwise_kendall_identical_and_reversed():
    x = np.array([0.3, -1.0, 2.0, 5.0, 0.0])
    assert pairwise_kendall(np.stack([x, x, x])) == pytest.approx(1.0)
    assert pairwise_kendall(np.stack([x, -x])) == pytest.approx(-1.0)
    # monotone transforms keep rank agreement
    assert pairwise_kendall(np.stack([x, np.exp(x), 3 * x - 1])) == pytest.approx(1.0)
    # [x, x, -x]: pairs (0,1) = 1, (0,2) = -1, (1,2) = -1 -> mean -1/3
    assert pairwise_kendall(np.stack([x, x, -x])) == pytest.approx(-1 / 3)


def test_pairwise_kendall_hand():
    # x = [1, 2, 3, 4], y = [1, 3, 2, 4]: of 6 pairs only (2, 3) is discordant
    # tau = (5 - 1) / 6 = 2/3
    assert pairwise_kendall([[1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]]) == pytest.approx(2 / 3)


def test_pairwise_kendall_single_member_is_nan():
    assert math.isnan(pairwise_kendall([[1.0, 2.0, 3.0]]))


# ---------------------------------------------------------------- top1_agreement


def test_top1_agreement_hand():
    # (m=3, p=2, n=3). Picks: member 0 -> [2, 0], member 1 -> [2, 1], member 2 -> [0, 0]
    # pairs: (0,1): [same, diff] = 1/2; (0,2): [diff, same] = 1/2; (1,2): [diff, diff] = 0
    # mean = (1/2 + 1/2 + 0) / 3 = 1/3
    s = np.array(
        [
            [[0.0, 1.0, 2.0], [5.0, 1.0, 0.0]],
            [[0.0, 1.0, 3.0], [0.0, 4.0, 1.0]],
            [[9.0, 1.0, 2.0], [7.0, 1.0, 0.0]],
        ]
    )
    assert top1_agreement(s) == pytest.approx(1 / 3)
    assert top1_agreement(np.stack([s[0], s[0]])) == 1.0


def test_top1_agreement_errors_and_single_member():
    with pytest.raises(ValueError):
        top1_agreement(np.zeros((2, 3)))
    assert math.isnan(top1_agreement(np.zeros((1, 2, 3))))


# ---------------------------------------------------------------- spearman


def test_spearman_hand():
    # x = [1..5], y = [2, 1, 4, 3, 5]: rank differences [-1, 1, -1, 1, 0], sum d^2 = 4
    # rho = 1 - 6 * 4 / (5 * (25 - 1)) = 1 - 24/120 = 0.8
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    x = np.array([0.1, 0.5, 2.0, 3.0])
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -np.exp(x)) == pytest.approx(-1.0)


# ---------------------------------------------------------------- auroc


def test_auroc_hand():
    # perfect separation -> 1, reversed -> 0, all tied -> 1/2
    assert auroc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert auroc([0.5, 0.5, 0.5], [1, 0, 1]) == 0.5
    # pos {3, 1}, neg {2, 1}: pairs (3,2)=1, (3,1)=1, (1,2)=0, (1,1)=1/2 -> 2.5/4
    assert auroc([3.0, 1.0, 2.0, 1.0], [True, True, False, False]) == pytest.approx(0.625)


def test_auroc_one_class_is_nan():
    assert math.isnan(auroc([1.0, 2.0], [1, 1]))
    assert math.isnan(auroc([1.0, 2.0], [0, 0]))


@settings(max_examples=80, deadline=None)
@given(data=st.data(), n=st.integers(2, 30))
def test_auroc_matches_brute_force_pair_count(data, n):
    score = data.draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))  # many ties
    label = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    if all(label) or not any(label):
        return
    assert auroc(np.array(score, dtype=float), label) == pytest.approx(brute_force_auroc(score, label), abs=1e-12)


def test_gaussian_copula_correlation_recovers_rho():
    import numpy as np

    from rewardherd.core import gaussian_copula_correlation

    rng = np.random.default_rng(0)
    c = rng.standard_normal(20000)
    x = np.stack([c, 0.6 * c + 0.8 * rng.standard_normal(20000)])  # rho = 0.6
    R = gaussian_copula_correlation(np.stack([x, np.exp(x)]))  # monotone rescaling changes nothing
    assert R.shape == (2, 2, 2)
    np.testing.assert_allclose(R[0], R[1])
    assert abs(R[0, 0, 1] - 0.6) < 0.02 and abs(R[0, 0, 0] - 1.0) < 1e-12
