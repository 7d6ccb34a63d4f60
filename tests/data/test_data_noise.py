"""inject_label_noise: exact count, reproducible, never mutates its input."""

import copy
import logging

import pytest

from rewardherd.data import inject_label_noise


@pytest.mark.parametrize(
    ("n", "rate", "expected"),
    [(10, 0.0, 0), (10, 0.25, 2), (10, 0.35, 4), (10, 1.0, 10), (3, 0.5, 2), (100, 0.25, 25)],
)
def test_flips_exactly_round_rate_times_n(make_pairs, n, rate, expected):
    # round() is half-to-even: 10 * 0.25 = 2.5 -> 2; 3 * 0.5 = 1.5 -> 2
    pairs = make_pairs(n)
    noisy, flipped = inject_label_noise(pairs, rate, seed=0)
    assert len(flipped) == expected == round(rate * n)
    assert len(noisy) == n
    flipped_set = set(flipped)
    for before, after in zip(pairs, noisy, strict=True):
        assert after.id == before.id and after.prompt == before.prompt
        if before.id in flipped_set:
            assert (after.chosen, after.rejected) == (before.rejected, before.chosen)
        else:
            assert after == before
    assert flipped == [p.id for p in pairs if p.id in flipped_set]  # input order


def test_reproducible_and_seed_dependent(make_pairs):
    pairs = make_pairs(50)
    a = inject_label_noise(pairs, 0.3, seed=7)
    assert a == inject_label_noise(pairs, 0.3, seed=7)
    assert a[1] != inject_label_noise(pairs, 0.3, seed=8)[1]


def test_does_not_mutate_input(make_pairs):
    pairs = make_pairs(8, conversational=True, margin=1.0)
    snapshot = copy.deepcopy(pairs)
    noisy, flipped = inject_label_noise(pairs, 0.5, seed=1)
    assert pairs == snapshot
    assert noisy is not pairs and len(flipped) == 4
    assert all(p.margin == 1.0 for p in noisy)  # flipped pairs keep their margin


def test_rate_zero_and_empty(make_pairs):
    pairs = make_pairs(5)
    assert inject_label_noise(pairs, 0, seed=0) == (pairs, [])
    assert inject_label_noise([], 0.25, seed=0) == ([], [])


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan"), True, None])
def test_invalid_rate(make_pairs, bad):
    with pytest.raises(ValueError, match="rate"):
        inject_label_noise(make_pairs(3), bad, seed=0)


def test_rate_above_half_warns(make_pairs, caplog):
    with caplog.at_level(logging.WARNING, logger="rewardherd.data.noise"):
        _, flipped = inject_label_noise(make_pairs(4), 0.75, seed=0)
    assert len(flipped) == 3
    assert "> 0.5" in caplog.text
