"""rewardherd.core.strength: member margins, their mean/std, the flip/drop bands, margins."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rewardherd.core import clean_selection, preference_strength, strength_margin

# Two members (rows), three pairs (columns).
#   chosen   [[1, 2, 0], [3, 0, 0]]
#   rejected [[0, 0, 1], [0, 1, 2]]
#   margins  [[1, 2, -1], [3, -1, -2]]
#   mean     [2, 0.5, -1.5]
#   std (ddof 0): |1 - 3| / 2 = 1, |2 - (-1)| / 2 = 1.5, |-1 - (-2)| / 2 = 0.5
CHOSEN = np.array([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]])
REJECTED = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 2.0]])


def test_strength_hand():
    s = preference_strength(CHOSEN, REJECTED)
    np.testing.assert_array_equal(s.margins, [[1.0, 2.0, -1.0], [3.0, -1.0, -2.0]])
    np.testing.assert_allclose(s.mean, [2.0, 0.5, -1.5])
    np.testing.assert_allclose(s.std, [1.0, 1.5, 0.5])
    # ddof 1 with m = 2: the std grows by sqrt(2)
    np.testing.assert_allclose(preference_strength(CHOSEN, REJECTED, ddof=1).std, np.sqrt(2) * np.array([1, 1.5, 0.5]))


def test_strength_one_member_has_zero_std_and_checks_shapes():
    s = preference_strength([1.0, 2.0], [0.0, 3.0], ddof=1)
    np.testing.assert_array_equal(s.mean, [1.0, -1.0])
    np.testing.assert_array_equal(s.std, [0.0, 0.0])
    with pytest.raises(ValueError, match="shape"):
        preference_strength(CHOSEN, REJECTED[:, :2])
    with pytest.raises(ValueError, match="finite"):
        preference_strength([[np.nan]], [[0.0]])


@settings(max_examples=50, deadline=None)
@given(c=arrays(np.float64, (3, 4), elements=st.floats(-50, 50)), shift=st.floats(-50, 50))
def test_strength_ignores_a_shift_shared_by_both_responses(c, shift):
    r = c[:, ::-1].copy()
    a, b = preference_strength(c, r), preference_strength(c + shift, r + shift)
    np.testing.assert_allclose(b.mean, a.mean, atol=1e-9)
    # swapping chosen and rejected negates the mean and keeps the std
    s = preference_strength(r, c)
    np.testing.assert_allclose(s.mean, -a.mean, atol=1e-12)
    np.testing.assert_allclose(s.std, a.std, atol=1e-12)


def test_clean_selection_hand():
    # ranks of mean [0.3, -2, 1.5, -0.1, 0.0, 2.0, 0.9, -0.5, 0.2, 0.4] (ascending):
    #   -2 (1), -0.5 (7), -0.1 (3), 0.0 (4), 0.2 (8), 0.3 (0), 0.4 (9), 0.9 (6), 1.5 (2), 2.0 (5)
    # flip_below 0.2 -> ranks 0, 1 -> indices 1, 7
    # drop_between (0.2, 0.5) -> ranks 2, 3, 4 -> indices 3, 4, 8
    mean = [0.3, -2.0, 1.5, -0.1, 0.0, 2.0, 0.9, -0.5, 0.2, 0.4]
    flip, drop = clean_selection(mean, 0.2, (0.2, 0.5))
    assert np.flatnonzero(flip).tolist() == [1, 7]
    assert np.flatnonzero(drop).tolist() == [3, 4, 8]
    assert not np.any(flip & drop)
    none_flip, none_drop = clean_selection(mean)
    assert not none_flip.any() and not none_drop.any()


def test_clean_selection_ties_keep_input_order():
    flip, _ = clean_selection([0.0, 0.0, 0.0, 0.0], 0.5)
    assert flip.tolist() == [True, True, False, False]


@pytest.mark.parametrize("kw", [
    {"flip_below": 1.5}, {"flip_below": -0.1}, {"flip_below": float("nan")},
    {"drop_between": (0.5, 0.2)}, {"drop_between": (0.1, 0.3), "flip_below": 0.2}, {"drop_between": (0.1,)},
])
def test_clean_selection_rejects_bad_bands(kw):
    with pytest.raises(ValueError):
        clean_selection(np.arange(10.0), **kw)


@settings(max_examples=50, deadline=None)
@given(mean=arrays(np.float64, st.integers(1, 40), elements=st.floats(-5, 5)),
       q=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)).map(sorted))
def test_clean_selection_counts_and_order(mean, q):
    q0, q1, q2 = q
    n = len(mean)
    flip, drop = clean_selection(mean, q0, (q1, q2))
    assert flip.sum() == round(q0 * n)
    assert drop.sum() == round(q2 * n) - round(q1 * n)
    assert not np.any(flip & drop)
    if flip.any() and (~flip).any():  # every flipped pair is at most as strong as every other
        assert mean[flip].max() <= mean[~flip].min()


def test_strength_margin():
    np.testing.assert_allclose(strength_margin([2.0, -0.5, 0.0], 0.5), [1.0, -0.25, 0.0])
    np.testing.assert_array_equal(strength_margin([2.0, -0.5], 0.0), [0.0, -0.0])
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            strength_margin([1.0], bad)
