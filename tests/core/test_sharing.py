"""Tests for rewardherd.core.sharing: shared vs idiosyncratic member error."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rewardherd import core
from rewardherd.core import (
    ErrorSharing,
    decompose_errors,
    error_sharing,
    label_error_sharing,
    margin_error_sharing,
    member_errors,
)

# ------------------------------------------------------------ hand-worked


def test_decompose_hand():
    # e1 = [2, 0, -2, 0], e2 = [1, 1, -1, -1]; both have mean 0.
    # var1 = (4 + 0 + 4 + 0)/4 = 2, var2 = 1, cov = (2 + 0 + 2 + 0)/4 = 1
    # V = 1.5, C = 1, V - C = 0.5, C/V = 2/3, rho = 1/sqrt(2*1)
    # e_bar = [1.5, 0.5, -1.5, -0.5], var = (2.25 + .25 + 2.25 + .25)/4 = 1.25 = C + (V-C)/2
    r = decompose_errors([[2.0, 0.0, -2.0, 0.0], [1.0, 1.0, -1.0, -1.0]])
    assert r.k == 2 and r.n_samples == 4 and r.n_groups is None and r.n_dropped == 0
    assert r.member_variance == pytest.approx((2.0, 1.0))
    assert r.mean_member_variance == pytest.approx(1.5)
    assert r.shared_variance == pytest.approx(1.0)
    assert r.idiosyncratic_variance == pytest.approx(0.5)
    assert r.shared_covariance_fraction == pytest.approx(2 / 3)
    assert r.rho_bar == pytest.approx(1 / math.sqrt(2))
    assert r.mean_error_variance == pytest.approx(1.25)
    assert r.shared_fraction == pytest.approx(1.25 / 1.5)
    assert r.predicted_variance(1) == pytest.approx(1.5)
    assert r.predicted_variance(2) == pytest.approx(1.25)
    assert r.predicted_variance(4) == pytest.approx(1.0 + 0.5 / 4)
    assert r.predicted_shared_fraction(4) == pytest.approx(1.125 / 1.5)


def test_error_sharing_hand_and_scale_invariance():
    # gold [-1, 1, -1, 1] has mean 0 and population std 1, so z_gold = gold.
    # m1 = [1, -1, -1, 1] -> z = m1; m2 = 5 + 2*[-1, 1, 1, -1] -> z = [-1, 1, 1, -1].
    # e1 = [2, -2, 0, 0], e2 = [0, 0, 2, -2]: var 2 each, cov 0, rho 0
    # e_bar = [1, -1, 1, -1]: var 1, shared_fraction = 1/2 = 0 + (1 - 0)/2.
    gold = np.array([-1.0, 1.0, -1.0, 1.0])
    scores = np.array([[1.0, -1.0, -1.0, 1.0], [3.0, 7.0, 7.0, 3.0]])
    r = error_sharing(scores, gold)
    assert r.member_variance == pytest.approx((2.0, 2.0))
    assert r.shared_variance == pytest.approx(0.0, abs=1e-12)
    assert r.rho_bar == pytest.approx(0.0, abs=1e-12)
    assert r.mean_error_variance == pytest.approx(1.0)
    assert r.shared_fraction == pytest.approx(0.5)
    e, _, _ = member_errors(scores, gold)
    np.testing.assert_allclose(e, [[2, -2, 0, 0], [0, 0, 2, -2]], atol=1e-12)
    np.testing.assert_array_equal(scores, [[1.0, -1.0, -1.0, 1.0], [3.0, 7.0, 7.0, 3.0]])  # input untouched


def test_groups_remove_per_group_offsets():
    # Same members as above plus a +10 offset on member 1 in group "a" only. Within-group
    # z-scoring removes it: group a: gold [-1, 1] -> [-1, 1], m1 [11, 9] -> [1, -1],
    # m2 [3, 7] -> [-1, 1]; group b likewise, so e1 = [2, -2, 0, 0], e2 = [0, 0, 2, -2].
    gold = np.array([-1.0, 1.0, -1.0, 1.0])
    scores = np.array([[11.0, 9.0, -1.0, 1.0], [3.0, 7.0, 7.0, 3.0]])
    groups = np.array(["a", "a", "b", "b"])
    r = error_sharing(scores, gold, groups=groups)
    assert r.n_groups == 2 and r.n_samples == 4 and r.n_dropped == 0
    assert r.shared_fraction == pytest.approx(0.5)
    assert r.rho_bar == pytest.approx(0.0, abs=1e-12)
    assert error_sharing(scores, gold).shared_fraction != pytest.approx(0.5)  # offset counts without groups


def test_group_order_does_not_matter():
    rng = np.random.default_rng(1)
    scores, gold = rng.normal(size=(3, 60)), rng.normal(size=60)
    groups = np.repeat(np.arange(6), 10)
    perm = rng.permutation(60)
    a = error_sharing(scores, gold, groups=groups)
    b = error_sharing(scores[:, perm], gold[perm], groups=groups[perm])
    assert a.shared_fraction == pytest.approx(b.shared_fraction)
    assert a.rho_bar == pytest.approx(b.rho_bar)


# -------------------------------------------------------- synthetic recovery


@pytest.mark.parametrize(("a", "b", "k"), [(1.0, 1.0, 5), (3.0, 0.5, 3), (0.2, 2.0, 4)])
def test_recovers_shared_and_idiosyncratic_variance(a, b, k):
    # e_i = s + u_i, var(s) = a, var(u_i) = b independent: C = a, V = a + b,
    # rho = a / (a + b), shared_fraction = (a + b/K) / (a + b).
    rng = np.random.default_rng(0)
    n = 200_000
    s = rng.normal(scale=math.sqrt(a), size=n)
    e = s + rng.normal(scale=math.sqrt(b), size=(k, n))
    r = decompose_errors(e)
    rho = a / (a + b)
    assert r.shared_variance == pytest.approx(a, rel=0.03, abs=0.01)
    assert r.idiosyncratic_variance == pytest.approx(b, rel=0.03)
    assert r.rho_bar == pytest.approx(rho, abs=0.01)
    assert r.shared_covariance_fraction == pytest.approx(rho, abs=0.01)
    assert r.shared_fraction == pytest.approx(rho + (1 - rho) / k, abs=0.01)
    assert r.predicted_variance(10 * k) == pytest.approx(a + b / (10 * k), rel=0.03)


def test_error_sharing_matches_the_z_scored_model():
    # member_i = gold + s + u_i with var(gold)=G, var(s)=a, var(u)=b. After z-scoring
    # (sd_m = sqrt(G+a+b), q = sqrt(G)/sd_m): var(e_i) = 2 - 2q and
    # cov(e_i, e_j) = (G + a)/(G + a + b) - 2q + 1.
    rng = np.random.default_rng(2)
    n, k, big_g, a, b = 200_000, 4, 1.0, 0.5, 1.5
    gold = rng.normal(scale=math.sqrt(big_g), size=n)
    s = rng.normal(scale=math.sqrt(a), size=n)
    scores = gold + s + rng.normal(scale=math.sqrt(b), size=(k, n))
    scores = scores * np.array([[1.0], [3.0], [0.5], [2.0]]) + np.array([[0.0], [1.0], [-4.0], [2.0]])
    r = error_sharing(scores, gold)
    q = math.sqrt(big_g / (big_g + a + b))
    var = 2 - 2 * q
    cov = (big_g + a) / (big_g + a + b) - 2 * q + 1
    assert r.mean_member_variance == pytest.approx(var, rel=0.02)
    assert r.shared_variance == pytest.approx(cov, rel=0.03)
    assert r.rho_bar == pytest.approx(cov / var, abs=0.01)


def test_identical_members_share_everything():
    rng = np.random.default_rng(3)
    gold = rng.normal(size=50)
    m = gold + rng.normal(size=50)
    r = error_sharing(np.vstack([m, 2 * m + 1, m - 3]), gold)
    assert r.rho_bar == pytest.approx(1.0)
    assert r.shared_fraction == pytest.approx(1.0)
    assert r.idiosyncratic_variance == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------- properties

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(2, 5), st.integers(3, 12)), elements=finite), st.data())
def test_permutation_invariance_and_identities(e, data):
    e = e + np.linspace(0, 1, e.shape[1]) * np.arange(1, e.shape[0] + 1)[:, None]  # no constant member
    if np.any(e.std(axis=1) < 1e-6):
        return
    r = decompose_errors(e)
    perm = data.draw(st.permutations(range(e.shape[0])))
    p = decompose_errors(e[list(perm)])
    for f in ("mean_member_variance", "shared_variance", "rho_bar", "shared_fraction", "mean_error_variance"):
        assert getattr(p, f) == pytest.approx(getattr(r, f), rel=1e-9, abs=1e-9)
    assert sorted(p.member_variance) == pytest.approx(sorted(r.member_variance))
    # exact identities
    k, v, c = r.k, r.mean_member_variance, r.shared_variance
    assert r.mean_error_variance == pytest.approx(c + (v - c) / k, rel=1e-9, abs=1e-9 * v)
    assert r.predicted_variance(k) == pytest.approx(r.mean_error_variance, rel=1e-9, abs=1e-9 * v)
    cv = r.shared_covariance_fraction
    assert r.shared_fraction == pytest.approx(cv + (1 - cv) / k, rel=1e-9, abs=1e-9)
    assert -1 - 1e-9 <= r.rho_bar <= 1 + 1e-9
    assert c <= v * (1 + 1e-12)


def test_member_permutation_through_error_sharing():
    rng = np.random.default_rng(4)
    scores, gold = rng.normal(size=(4, 30)), rng.normal(size=30)
    a = error_sharing(scores, gold)
    b = error_sharing(scores[[2, 0, 3, 1]], gold)
    assert a.shared_fraction == pytest.approx(b.shared_fraction)
    assert a.rho_bar == pytest.approx(b.rho_bar)
    assert b.member_variance == pytest.approx(tuple(a.member_variance[i] for i in (2, 0, 3, 1)))


def test_result_is_frozen_and_serializable():
    r = decompose_errors([[2.0, 0.0, -2.0, 0.0], [1.0, 1.0, -1.0, -1.0]])
    assert isinstance(r, ErrorSharing)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.k = 3
    d = r.as_dict()
    assert d["member_variance"] == [pytest.approx(2.0), pytest.approx(1.0)] and d["k"] == 2


# ------------------------------------------------------------ preference pairs


def test_margin_version_is_error_sharing_of_margins_and_ignores_pair_offsets():
    rng = np.random.default_rng(5)
    k, b = 3, 40
    gc, gr = rng.normal(size=b), rng.normal(size=b)
    c = gc + rng.normal(size=(k, b))
    r = gr + rng.normal(size=(k, b))
    got = margin_error_sharing(c, r, gc, gr)
    want = error_sharing(c - r, gc - gr)
    assert got == want
    # a per-pair (per-prompt) offset of each member cancels in its margins
    offset = rng.normal(scale=10, size=(k, b))
    assert margin_error_sharing(c + offset, r + offset, gc, gr).rho_bar == pytest.approx(got.rho_bar)


def test_label_version_hand():
    # margins (chosen - rejected): m1 = [1, -1, 0, 1], m2 = [-1, -1, 1, 1]
    # errors (1 wrong, 1/2 tie): e1 = [0, 1, .5, 0], e2 = [1, 1, 0, 0]
    # means .375 / .5; var1 = (.140625 + .390625 + .015625 + .140625)/4 = .171875, var2 = .25
    # cov = mean(e1*e2) - .375*.5 = (0 + 1 + 0 + 0)/4 - .1875 = .0625
    c = np.array([[1.0, 0.0, 2.0, 1.0], [0.0, 0.0, 3.0, 1.0]])
    r_ = np.array([[0.0, 1.0, 2.0, 0.0], [1.0, 1.0, 2.0, 0.0]])
    r = label_error_sharing(c, r_)
    assert r.member_variance == pytest.approx((0.171875, 0.25))
    assert r.shared_variance == pytest.approx(0.0625)
    assert r.rho_bar == pytest.approx(0.0625 / math.sqrt(0.171875 * 0.25))


# --------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("scores", "gold", "match"),
    [
        (np.ones((2, 3)), np.arange(4.0), "3 samples but gold has 4"),
        (np.arange(4.0)[None, :], np.arange(4.0), "at least 2 members"),
        (np.arange(4.0), np.arange(4.0), "at least 2 members"),
        (np.zeros((2, 3, 1)), np.arange(3.0), "shape"),
        (np.array([[0.0, 1.0, np.nan], [0.0, 1.0, 2.0]]), np.arange(3.0), "NaN"),
        (np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]), np.array([0.0, np.inf, 2.0]), "NaN"),
        (np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]), np.ones((3, 1)), "1-D"),
        (np.array([[0.0, 1.0], [1.0, 0.0]])[:, :1], np.array([1.0]), "at least 2 samples"),
        (np.array([[0.0, 1.0, 2.0], [3.0, 3.0, 3.0]]), np.arange(3.0), "member 1 constant"),
        (np.array([[0.0, 1.0, 2.0], [0.0, 2.0, 1.0]]), np.full(3, 0.1), "gold constant"),
        (np.array([[0.0, 1.0, 2.0], [0.0, 2.0, 1.0]]), np.arange(3.0), "member\\(s\\) \\[0\\] have constant errors"),
    ],
)
def test_bad_inputs_raise(scores, gold, match):
    with pytest.raises(ValueError, match=match):
        error_sharing(scores, gold)


def test_degenerate_groups_error_or_drop():
    rng = np.random.default_rng(6)
    scores, gold = rng.normal(size=(2, 8)), rng.normal(size=8)
    gold[5:7] = 2.0  # group 2 has constant gold
    groups = np.array([0, 0, 0, 1, 1, 2, 2, 3])  # group 3 has one sample
    with pytest.raises(ValueError, match="group 2 has constant gold"):
        error_sharing(scores, gold, groups=groups)
    r = error_sharing(scores, gold, groups=groups, degenerate="drop")
    assert (r.n_groups, r.n_samples, r.n_dropped) == (2, 5, 3)
    with pytest.raises(ValueError, match="group 3 has a single sample"):
        error_sharing(scores[:, [0, 1, 7]], gold[[0, 1, 7]], groups=groups[[0, 1, 7]])
    with pytest.raises(ValueError, match="no group could be z-scored"):
        error_sharing(scores[:, 5:], gold[5:], groups=groups[5:], degenerate="drop")
    with pytest.raises(ValueError, match="group 'x' has a single sample"):
        error_sharing(scores[:, :3], gold[:3], groups=np.array(["y", "y", "x"]))
    with pytest.raises(ValueError, match="one id per sample"):
        error_sharing(scores, gold, groups=groups[:-1])
    with pytest.raises(ValueError, match="degenerate must be"):
        error_sharing(scores, gold, groups=groups, degenerate="clamp")


def test_bad_pairs_and_k_prime():
    r = decompose_errors([[2.0, 0.0, -2.0, 0.0], [1.0, 1.0, -1.0, -1.0]])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            r.predicted_variance(bad)
    with pytest.raises(ValueError, match="shape"):
        margin_error_sharing(np.ones((2, 3)), np.ones((3, 3)), np.arange(3.0), np.arange(3.0))
    with pytest.raises(ValueError, match="shape"):
        label_error_sharing(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        label_error_sharing(np.array([[1.0, np.nan], [1.0, 0.0]]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        decompose_errors([[1.0, np.nan], [0.0, 1.0]])


# ------------------------------------------------------------- residual error sharing
def _synthetic_members(r: float, q: float, k: int = 5, b: int = 200_000, seed: int = 0):
    """z_i = r g + sqrt(1 - r^2) (sqrt(q) s + sqrt(1 - q) u_i): gold correlation r, and
    residual correlation q once gold is regressed out (s shared, u_i private noise)."""
    rng = np.random.default_rng(seed)
    g, s = rng.standard_normal(b), rng.standard_normal(b)
    u = rng.standard_normal((k, b))
    return r * g + np.sqrt(1 - r * r) * (np.sqrt(q) * s + np.sqrt(1 - q) * u), g


@pytest.mark.parametrize("r,q", [(0.2, 0.1), (0.2, 0.8), (0.7, 0.3), (0.9, 0.0)])
def test_residual_sharing_recovers_the_planted_residual_correlation(r, q):
    scores, gold = _synthetic_members(r, q)
    res = core.residual_error_sharing(scores, gold)
    assert res.rho_bar == pytest.approx(q, abs=0.01)
    # the plain rho_bar mixes in "misses gold": (c - 2r + 1) / (2 - 2r), c = r^2 + (1 - r^2) q
    c = r * r + (1 - r * r) * q
    assert core.error_sharing(scores, gold).rho_bar == pytest.approx((c - 2 * r + 1) / (2 - 2 * r), abs=0.01)


def test_residual_sharing_is_low_where_plain_sharing_is_high_for_weak_members():
    scores, gold = _synthetic_members(0.2, 0.1)
    # plain: c = 0.04 + 0.96 * 0.1 = 0.136, rho_bar = (0.136 - 0.4 + 1) / 1.6 = 0.46; residual: 0.1
    assert core.error_sharing(scores, gold).rho_bar > 0.4 > 0.15 > core.residual_error_sharing(scores, gold).rho_bar


def test_residual_sharing_within_groups_matches_per_group_construction():
    # Two prompts with gold on different scales: z-scoring within prompts removes the scale.
    a, ga = _synthetic_members(0.5, 0.4, b=50_000, seed=1)
    b, gb = _synthetic_members(0.5, 0.4, b=50_000, seed=2)
    scores = np.hstack([a, 10 * b + 3])
    gold = np.concatenate([ga, 5 * gb - 1])
    groups = np.repeat([0, 1], 50_000)
    res = core.residual_error_sharing(scores, gold, groups=groups)
    assert res.n_groups == 2 and res.rho_bar == pytest.approx(0.4, abs=0.015)


def test_residual_sharing_rejects_a_member_that_is_gold():
    gold = np.random.default_rng(0).standard_normal(100)
    with pytest.raises(ValueError, match="constant errors"):
        core.residual_error_sharing(np.stack([gold, 2 * gold + 1]), gold)
