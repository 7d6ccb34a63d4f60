"""Tests for rewardherd.core.bon: analytic KL, n grid, unbiased estimator, selection."""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardherd.core.aggregate import aggregate
from rewardherd.core.bon import bon_estimate, bon_kl, bon_weights, n_grid, select_best_of_n


def brute_force_bon(proxy: np.ndarray, values: np.ndarray, n: int) -> float:
    """E[value of best-of-n] by enumerating every n-subset of the pool.

    Within a subset the best sample is the argmax of the proxy; when several of the
    subset's samples tie at the maximum, one is picked uniformly at random, so the
    subset contributes the mean of their values.
    """
    total = 0.0
    count = 0
    for subset in itertools.combinations(range(proxy.shape[0]), n):
        idx = np.array(subset)
        top = proxy[idx].max()
        tied = idx[proxy[idx] == top]
        total += values[tied].mean()
        count += 1
    assert count == math.comb(proxy.shape[0], n)
    return total / count


# ---------------------------------------------------------------- bon_kl


def test_bon_kl_hand():
    # n = 1: log 1 - 0 = 0; n = 2: log 2 - 1/2; n = 64: log 64 - 63/64
    np.testing.assert_allclose(bon_kl([1, 2, 64]), [0.0, math.log(2) - 0.5, math.log(64) - 63 / 64], atol=1e-15)
    assert bon_kl(1) == 0.0
    assert np.asarray(bon_kl(4)).shape == ()


def test_bon_kl_rejects_n_below_one():
    for bad in (0, -3, [1, 0]):
        with pytest.raises(ValueError):
            bon_kl(bad)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 10**7))
def test_bon_kl_in_zero_log_n(n):
    kl = float(bon_kl(n))
    assert kl >= 0.0
    if n == 1:
        assert kl == 0.0  # log 1 = 0, so [0, log n) is empty at n = 1: KL is exactly 0
    else:
        assert kl < math.log(n)


def test_bon_kl_increasing_in_n():
    kl = bon_kl(np.arange(1, 2000))
    assert np.all(np.diff(kl) > 0)


# ---------------------------------------------------------------- n_grid


def test_n_grid_hand():
    assert n_grid(8) == [1, 2, 4, 8]
    assert n_grid(10) == [1, 2, 4, 8]
    assert n_grid(1) == [1]
    # N/4 for low variance: 64 * 0.25 = 16
    assert n_grid(64, max_fraction=0.25) == [1, 2, 4, 8, 16]
    assert n_grid(100, max_fraction=0.25) == [1, 2, 4, 8, 16]  # floor(25) -> 16 is the last power


def test_n_grid_rejects_empty_pool():
    with pytest.raises(ValueError):
        n_grid(0)


@pytest.mark.parametrize("pool_size", [1, 5, 10, 64, 1000])
def test_n_grid_is_usable_with_the_pool(pool_size):
    grid = n_grid(pool_size, max_fraction=0.25)
    assert grid[0] == 1
    assert all(b == 2 * a for a, b in zip(grid[:-1], grid[1:], strict=True))
    assert max(grid) <= max(1, pool_size // 4)
    bon_weights(pool_size, grid)  # every n is valid for the pool


@pytest.mark.parametrize("max_fraction", [1.5, 2.0, 4.0])
def test_n_grid_never_exceeds_pool_size(max_fraction):
    # Every n on the grid must be a valid best-of-n size for the pool (n <= N); a
    # max_fraction above 1 must either be rejected or capped at the pool size.
    try:
        grid = n_grid(10, max_fraction=max_fraction)
    except ValueError:
        return
    assert max(grid) <= 10, grid


# ---------------------------------------------------------------- bon_weights


def test_bon_weights_hand():
    # N = 3, n = 2: weight of rank i is C(i-1, 1) / C(3, 2) for i >= 2 -> [0, 1/3, 2/3]
    np.testing.assert_allclose(bon_weights(3, [2]), [[0.0, 1 / 3, 2 / 3]], atol=1e-15)
    # n = 1 is uniform, n = N puts everything on the top sample
    np.testing.assert_allclose(bon_weights(5, 1), [[0.2] * 5], atol=1e-15)
    np.testing.assert_allclose(bon_weights(5, 5), [[0, 0, 0, 0, 1.0]], atol=1e-15)


@pytest.mark.parametrize("pool_size", [1, 2, 3, 7, 16, 33, 60])
def test_bon_weights_exact_against_math_comb(pool_size):
    ns = np.arange(1, pool_size + 1)
    w = bon_weights(pool_size, ns)
    assert w.shape == (pool_size, pool_size)
    for row, n in enumerate(ns):
        n = int(n)
        expected = [
            float(Fraction(math.comb(i - 1, n - 1), math.comb(pool_size, n))) if i >= n else 0.0
            for i in range(1, pool_size + 1)
        ]
        np.testing.assert_allclose(w[row], expected, rtol=1e-11, atol=0.0)
        assert np.all(w[row, : n - 1] == 0.0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_bon_weights_large_pool_rows_sum_to_one():
    ns = n_grid(10_000)
    w = bon_weights(10_000, ns)
    assert np.all(np.isfinite(w)) and np.all(w >= 0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    # the weights increase with rank (C(i-1, n-1) is non-decreasing in i)
    assert np.all(np.diff(w, axis=1) >= -1e-18)


def test_bon_weights_invalid_n_raise():
    for ns in ([0], [5], [1, 5], [-1]):
        with pytest.raises(ValueError):
            bon_weights(4, ns)


def test_bon_weights_non_integer_n_raises():
    # n = 2.5 has no meaning; it must not be silently truncated to best-of-2.
    with pytest.raises(ValueError):
        bon_weights(4, [2.5])


# ---------------------------------------------------------------- bon_estimate vs brute force


def test_bon_estimate_hand():
    # proxy [0.2, 0.9, 0.5], gold [10, 30, 20]; sorted by proxy: gold [10, 20, 30]
    # n = 2: weights [0, 1/3, 2/3] -> 20/3 + 60/3 = 80/3
    #   brute force: {0,1} -> 30, {0,2} -> 20, {1,2} -> 30 -> 80/3
    # n = 1: mean = 20; n = 3: gold of the top proxy sample = 30
    got = bon_estimate([[0.2, 0.9, 0.5]], [[10.0, 30.0, 20.0]], [1, 2, 3])
    np.testing.assert_allclose(got, [[20.0, 80 / 3, 30.0]], atol=1e-12)


@pytest.mark.parametrize("pool_size", [1, 2, 3, 5, 8])
def test_bon_estimate_matches_brute_force_continuous(pool_size):
    rng = np.random.default_rng(pool_size)
    p = 3
    proxy = rng.normal(size=(p, pool_size))
    gold = rng.normal(size=(p, pool_size)) + 0.5 * proxy
    ns = list(range(1, pool_size + 1))
    got = bon_estimate(proxy, gold, ns)
    assert got.shape == (p, pool_size)
    for row in range(p):
        for j, n in enumerate(ns):
            assert got[row, j] == pytest.approx(brute_force_bon(proxy[row], gold[row], n), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("pool_size", [2, 4, 6, 8])
def test_bon_estimate_matches_brute_force_with_ties(pool_size):
    rng = np.random.default_rng(100 + pool_size)
    p = 4
    proxy = rng.integers(0, 3, size=(p, pool_size)).astype(float)  # heavy ties
    proxy[0] = 1.0  # one prompt with every sample tied
    gold = rng.normal(size=(p, pool_size))
    ns = list(range(1, pool_size + 1))
    got = bon_estimate(proxy, gold, ns)
    for row in range(p):
        for j, n in enumerate(ns):
            assert got[row, j] == pytest.approx(brute_force_bon(proxy[row], gold[row], n), rel=1e-10, abs=1e-12)
    # all tied: every n gives the pool mean
    np.testing.assert_allclose(got[0], gold[0].mean(), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(proxy=st.lists(st.integers(-2, 2), min_size=1, max_size=7), seed=st.integers(0, 2**16))
def test_bon_estimate_matches_brute_force_property(proxy, seed):
    px = np.array(proxy, dtype=float)
    gold = np.random.default_rng(seed).normal(size=px.shape[0])
    ns = list(range(1, px.shape[0] + 1))
    got = bon_estimate(px[None, :], gold[None, :], ns)[0]
    expected = [brute_force_bon(px, gold, n) for n in ns]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_bon_estimate_agrees_with_monte_carlo():
    rng = np.random.default_rng(7)
    pool_size, reps = 1000, 4000
    proxy = rng.normal(size=pool_size)
    gold = proxy - 0.3 * proxy**2 + rng.normal(scale=0.5, size=pool_size)  # over-optimized shape
    ns = [1, 4, 32, 250]
    est = bon_estimate(proxy[None, :], gold[None, :], ns)[0]
    # each row's first n columns are a uniformly random n-subset of the pool
    perms = np.argsort(rng.random((reps, pool_size)), axis=1)
    for j, n in enumerate(ns):
        subsets = perms[:, :n]
        best = subsets[np.arange(reps), np.argmax(proxy[subsets], axis=1)]
        draws = gold[best]
        se = draws.std(ddof=1) / math.sqrt(reps)
        assert abs(draws.mean() - est[j]) < 4 * se + 1e-12, (n, draws.mean(), est[j], se)


def test_bon_estimate_large_pool_finite_and_exact_ends():
    rng = np.random.default_rng(3)
    pool_size = 10_000
    proxy = rng.normal(size=(2, pool_size))
    gold = rng.normal(size=(2, pool_size))
    ns = n_grid(pool_size) + [pool_size]
    est = bon_estimate(proxy, gold, ns)
    assert est.shape == (2, len(ns))
    assert np.all(np.isfinite(est))
    # n = 1: the pool mean; n = N: the gold of the top proxy sample
    np.testing.assert_allclose(est[:, 0], gold.mean(axis=1), atol=1e-12)
    np.testing.assert_allclose(est[:, -1], gold[np.arange(2), proxy.argmax(axis=1)], atol=1e-12)
    # the proxy curve itself is non-decreasing in n
    proxy_curve = bon_estimate(proxy, proxy, ns)
    assert np.all(np.diff(proxy_curve, axis=1) >= -1e-12)


# ---------------------------------------------------------------- gold travels with its sample


def test_gold_follows_the_proxy_order_passed_in():
    # pool of N = 5 samples scored by m = 3 members; the members disagree on the best one
    members = np.array(
        [
            [4.0, 3.0, 0.0, 1.0, 2.0],  # member 0 picks sample 0
            [0.0, 3.0, 4.0, 1.0, 2.0],  # member 1 picks sample 2
            [0.0, 3.0, 0.0, 1.0, 2.0],  # member 2 picks sample 1
        ]
    )
    ensemble = aggregate(members, "mean")  # [4/3, 3, 4/3, 1, 2] -> picks sample 1
    gold = -ensemble  # planted: gold is anti-correlated with the ensemble
    N = members.shape[1]
    est_ens = bon_estimate(ensemble[None, :], gold[None, :], [1, N])[0]
    assert est_ens[1] == pytest.approx(gold[1])  # = -3, the gold of the ensemble's pick
    assert est_ens[0] == pytest.approx(gold.mean())
    # the same gold under a single member's order follows that member's pick
    est_m0 = bon_estimate(members[0][None, :], gold[None, :], [N])[0, 0]
    est_m1 = bon_estimate(members[1][None, :], gold[None, :], [N])[0, 0]
    assert est_m0 == pytest.approx(gold[0])
    assert est_m1 == pytest.approx(gold[2])
    # gold that merely tracks member 0 must not masquerade as the ensemble curve
    assert est_ens[1] != pytest.approx(est_m0)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), pool_size=st.integers(1, 12), ties=st.booleans())
def test_jointly_permuting_the_pool_leaves_estimate_unchanged(seed, pool_size, ties):
    rng = np.random.default_rng(seed)
    proxy = rng.integers(0, 3, size=(2, pool_size)).astype(float) if ties else rng.normal(size=(2, pool_size))
    gold = rng.normal(size=(2, pool_size))
    perm = rng.permutation(pool_size)
    ns = list(range(1, pool_size + 1))
    np.testing.assert_allclose(
        bon_estimate(proxy[:, perm], gold[:, perm], ns), bon_estimate(proxy, gold, ns), rtol=1e-10, atol=1e-12
    )


def test_three_d_values_match_per_feature():
    rng = np.random.default_rng(11)
    p, N, f = 3, 9, 4
    proxy = rng.normal(size=(p, N))
    values = rng.normal(size=(p, N, f))
    values[:, :, 0] = proxy  # one feature is the proxy itself
    ns = [1, 2, 4, 9]
    est = bon_estimate(proxy, values, ns)
    assert est.shape == (p, len(ns), f)
    for k in range(f):
        np.testing.assert_allclose(est[:, :, k], bon_estimate(proxy, values[:, :, k], ns), atol=1e-13)
    for row in range(p):
        for j, n in enumerate(ns):
            for k in range(f):
                assert est[row, j, k] == pytest.approx(brute_force_bon(proxy[row], values[row, :, k], n), abs=1e-12)


def test_bon_estimate_does_not_modify_inputs():
    proxy = np.array([[0.3, 0.1, 0.3, 0.2]])
    gold = np.array([[1.0, 2.0, 3.0, 4.0]])
    p0, g0 = proxy.copy(), gold.copy()
    bon_estimate(proxy, gold, [1, 2, 4])
    np.testing.assert_array_equal(proxy, p0)
    np.testing.assert_array_equal(gold, g0)


def test_bon_estimate_errors():
    with pytest.raises(ValueError):
        bon_estimate(np.zeros(4), np.zeros(4), [1])  # proxy must be 2-D
    with pytest.raises(ValueError):
        bon_estimate(np.zeros((2, 4)), np.zeros((2, 3)), [1])  # shapes differ
    with pytest.raises(ValueError):
        bon_estimate([[0.0, float("nan")]], [[1.0, 2.0]], [1])
    with pytest.raises(ValueError):
        bon_estimate([[0.0, float("inf")]], [[1.0, 2.0]], [1])
    with pytest.raises(ValueError):
        bon_estimate(np.zeros((1, 4)), np.zeros((1, 4)), [5])  # n > N


# ---------------------------------------------------------------- select_best_of_n


def test_select_best_of_n_hand_and_ties():
    scores = np.array([[0.1, 0.7, 0.3], [2.0, 5.0, 5.0], [1.0, 1.0, 1.0]])
    # row 1: tie between 1 and 2 -> lowest index 1; row 2: all tied -> 0
    np.testing.assert_array_equal(select_best_of_n(scores), [1, 1, 0])


def test_select_best_of_n_errors():
    with pytest.raises(ValueError):
        select_best_of_n([[0.0, float("nan")]])
    with pytest.raises(ValueError):
        select_best_of_n(np.zeros((2, 0)))
    with pytest.raises(ValueError):
        select_best_of_n(np.zeros(3))
