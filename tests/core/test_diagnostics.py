"""Single-member diagnostics on synthetic members whose gold correlation r and residual
correlation q are planted: z_i = r g + sqrt(1 - r^2) (sqrt(q) s + sqrt(1 - q) u_i)."""

import numpy as np
import pytest

from rewardherd.core import (
    member_diagnostics,
    pool_pair_accuracy,
    prompt_residual_covariances,
    residual_correlation_difference,
    residual_error_sharing,
    shared_residual_features,
    within_prompt_spearman,
)
from rewardherd.core.diagnostics import curve_shape
from rewardherd.core.sharing import mean_pairwise_correlation

NS = [1, 2, 4, 8, 16, 32, 64]


def members(rng, k=5, p=200, n=64, r=0.6, q=0.3, hack=0.0):
    """(K, p, n) member scores and (p, n) gold. With ``hack`` > 0 gold also charges
    hack * max(0, s - 1)^2 on the shared error s, which every member likes: a tail that
    only strong selection reaches (Gao's shape)."""
    g = rng.standard_normal((p, n))
    s = rng.standard_normal((p, n))
    u = rng.standard_normal((k, p, n))
    z = r * g + np.sqrt(1 - r * r) * (np.sqrt(q) * s + np.sqrt(1 - q) * u)
    gold = g - hack * np.maximum(0.0, s - 1.0) ** 2
    return z, gold


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_residual_correlation_recovers_planted_q(q):
    z, gold = members(np.random.default_rng(0), q=q)
    d = member_diagnostics(z, gold, NS)
    assert d.residual.rho_bar == pytest.approx(q, abs=0.03)
    # today's rho_bar mixes in the shared "misses gold" part: higher than q for r < 1
    c = 0.36 + 0.64 * q
    assert d.sharing.rho_bar == pytest.approx((c - 2 * 0.6 + 1) / (2 - 2 * 0.6), abs=0.03)


def test_spearman_and_pool_accuracy_match_gaussian_formulas():
    r = 0.6
    z, gold = members(np.random.default_rng(1), r=r)
    rho_s = within_prompt_spearman(z, gold)
    assert rho_s == pytest.approx(np.full(5, 6 / np.pi * np.arcsin(r / 2)), abs=0.02)
    acc = pool_pair_accuracy(z, gold)
    assert acc == pytest.approx(np.full(5, 0.5 + np.arcsin(r) / np.pi), abs=0.02)


def test_pool_accuracy_counts_ties_as_half_and_skips_gold_ties():
    gold = np.array([[1.0, 0.0, 2.0, 2.0]])
    scores = np.array([[[5.0, 5.0, 0.0, 1.0]], [[1.0, 0.0, 9.0, 0.0]]])
    assert pool_pair_accuracy(scores, gold).tolist() == [0.5, 1.0]


def test_curve_rises_without_hack_and_peaks_inside_the_grid_with_one():
    rng = np.random.default_rng(2)
    clean = curve_shape(*members(rng, q=0.3), NS)
    assert clean.peak_n == 64 and clean.gain.low > 0
    hacked = curve_shape(*members(rng, q=0.6, hack=2.0), NS)
    assert 1 < hacked.peak_n < 64 and hacked.drop.low > 0


def test_prompt_covariances_sum_to_the_residual_decomposition():
    z, gold = members(np.random.default_rng(3), p=30)
    gold[4] = 1.0  # a constant-gold prompt is dropped by both
    cov, kept = prompt_residual_covariances(z, gold)
    assert kept.sum() == 29 and not kept[4]
    direct = residual_error_sharing(z.reshape(5, -1), gold.reshape(-1), groups=np.repeat(np.arange(30), 64),
                                    degenerate="drop")
    assert float(mean_pairwise_correlation(cov.sum(axis=0))) == pytest.approx(direct.rho_bar, abs=1e-12)
    assert np.trace(cov.sum(axis=0)) / 5 == pytest.approx(direct.mean_member_variance, abs=1e-12)


def test_difference_interval_finds_a_planted_gap_and_covers_zero_without_one():
    rng = np.random.default_rng(4)

    def group(q):
        return [prompt_residual_covariances(*members(rng, p=60, n=32, q=q))[0] for _ in range(3)]

    gap = residual_correlation_difference(group(0.2), group(0.6), n_boot=300)
    assert gap.estimate == pytest.approx(-0.4, abs=0.06) and gap.high < 0
    same = residual_correlation_difference(group(0.4), group(0.4), n_boot=300)
    assert same.low < 0 < same.high


def test_shared_residual_features_find_the_planted_shared_error():
    """The members' mean residual is sqrt(1-r^2) (sqrt(q) s + sqrt(1-q) mean_i u_i), so its
    correlation with s is sqrt(q / (q + (1-q)/K)), with one member's private noise u_0
    (sqrt(1-q)/K) / sqrt(q + (1-q)/K), and 0 with gold (regressed out) and with noise."""
    rng = np.random.default_rng(3)
    k, q = 5, 0.5
    g = rng.standard_normal((200, 64))
    s, v = rng.standard_normal((2, 200, 64))
    u = rng.standard_normal((k, 200, 64))
    z = 0.6 * g + 0.8 * (np.sqrt(q) * s + np.sqrt(1 - q) * u)
    out = shared_residual_features(z, g, {"s": s, "u0": u[0], "gold": g, "other": v})
    den = np.sqrt(q + (1 - q) / k)
    assert out["s"]["shared_residual"] == pytest.approx(np.sqrt(q) / den, abs=0.02)
    assert out["u0"]["shared_residual"] == pytest.approx(np.sqrt(1 - q) / k / den, abs=0.02)
    assert abs(out["gold"]["shared_residual"]) < 0.02 and out["gold"]["gold"] == pytest.approx(1.0)
    assert abs(out["other"]["shared_residual"]) < 0.03 and abs(out["s"]["gold"]) < 0.03
    with pytest.raises(ValueError, match="feature 'bad' must have shape"):
        shared_residual_features(z, g, {"bad": s[:10]})


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="members, prompts, pool"):
        member_diagnostics(np.zeros((3, 4)), np.zeros((3, 4)), NS)
    with pytest.raises(ValueError, match="gold must have shape"):
        member_diagnostics(np.zeros((2, 3, 4)), np.zeros((3, 5)), NS)
    with pytest.raises(ValueError, match="start at 1"):
        curve_shape(*members(np.random.default_rng(0), p=4, n=8), [2, 4])
