"""Tests for rewardherd.core.stats: paired bootstrap and the claims' decision rule."""

import numpy as np
import pytest

from rewardherd.core.stats import Interval, decide, paired_bootstrap


def test_ci_contains_true_mean_of_shifted_normal():
    rng = np.random.default_rng(1)
    values = rng.normal(loc=0.3, scale=1.0, size=400)
    ci = paired_bootstrap(values, n_boot=2000, level=0.95, seed=0)
    assert ci.estimate == pytest.approx(values.mean())
    assert ci.low < 0.3 < ci.high
    assert ci.low < ci.estimate < ci.high
    # half-width ~ 1.96 / sqrt(400) ~ 0.1
    assert 0.07 < (ci.high - ci.low) / 2 < 0.13
    assert ci.level == 0.95 and ci.n_boot == 2000
    assert set(ci.as_dict()) == {"estimate", "low", "high", "level", "n_boot", "method", "df"}
    assert ci.method == "paired_bootstrap" and ci.df is None


def test_ci_coverage_is_near_nominal():
    # over 200 independent samples, the 90% interval should contain the true mean ~90% of the time
    rng = np.random.default_rng(2)
    hits = 0
    reps = 200
    for r in range(reps):
        values = rng.normal(loc=-0.2, scale=2.0, size=100)
        ci = paired_bootstrap(values, n_boot=500, level=0.9, seed=r)
        hits += ci.low <= -0.2 <= ci.high
    assert 0.8 <= hits / reps <= 0.97


def test_large_shift_excludes_zero_and_decides():
    rng = np.random.default_rng(3)
    values = rng.normal(loc=2.0, scale=1.0, size=100)
    ci = paired_bootstrap(values)
    assert ci.low > 0
    assert decide(ci, "positive") == "reproduced"
    assert decide(ci, "negative") == "not reproduced"
    neg = paired_bootstrap(-values)
    assert neg.high < 0
    assert decide(neg, "negative") == "reproduced"
    assert decide(neg, "positive") == "not reproduced"


def test_paired_resamples_prompts_jointly_across_seeds():
    # (s, p): the same prompt index is drawn in every seed, so the interval equals the
    # one for the per-prompt means (same resampling seed)
    rng = np.random.default_rng(4)
    values = rng.normal(size=(3, 50)) + rng.normal(size=50)[None, :]
    paired = paired_bootstrap(values, n_boot=1000, seed=5)
    pooled = paired_bootstrap(values.mean(axis=0), n_boot=1000, seed=5)
    assert paired == pooled
    assert paired.estimate == pytest.approx(values.mean())


def test_bootstrap_is_deterministic_given_seed():
    values = np.arange(20, dtype=float)
    assert paired_bootstrap(values, seed=9) == paired_bootstrap(values, seed=9)
    assert paired_bootstrap(values, seed=9) != paired_bootstrap(values, seed=10)


def test_constant_values_give_degenerate_interval():
    ci = paired_bootstrap(np.full(10, 1.5))
    assert ci.estimate == ci.low == ci.high == pytest.approx(1.5)


def test_nan_or_inf_input_raises():
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError):
            paired_bootstrap([1.0, bad, 2.0])
        with pytest.raises(ValueError):
            paired_bootstrap([[1.0, 2.0], [bad, 2.0]])


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        paired_bootstrap(np.zeros((2, 0)))
    with pytest.raises(ValueError):
        paired_bootstrap(np.zeros((2, 2, 2)))


@pytest.mark.parametrize(
    ("low", "high", "positive", "negative"),
    [
        (0.1, 0.5, "reproduced", "not reproduced"),
        (-0.5, -0.1, "not reproduced", "reproduced"),
        (-0.1, 0.1, "inconclusive", "inconclusive"),
        (0.0, 0.5, "inconclusive", "inconclusive"),  # touching 0 does not exclude it
        (-0.5, 0.0, "inconclusive", "inconclusive"),
    ],
)
def test_decide_all_verdicts_both_directions(low, high, positive, negative):
    ci = Interval(estimate=(low + high) / 2, low=low, high=high, level=0.95, n_boot=100)
    assert decide(ci, "positive") == positive
    assert decide(ci, "negative") == negative


def test_decide_rejects_unknown_direction():
    ci = Interval(0.0, -1.0, 1.0, 0.95, 100)
    with pytest.raises(ValueError):
        decide(ci, "up")
