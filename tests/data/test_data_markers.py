"""plant_markers: plants exactly what it says, deterministic, never touches labels or input."""

import copy

import pytest

from rewardherd.data import plant_markers
from rewardherd.data.markers import CHOSEN_MARKER, REJECTED_MARKER


@pytest.mark.parametrize(("n", "fraction", "expected"), [(10, 0.0, 0), (10, 0.25, 2), (10, 1.0, 10), (7, 0.5, 4)])
def test_marks_exactly_round_fraction_times_n(make_pairs, n, fraction, expected):
    pairs = make_pairs(n, margin=0.5)
    marked, ids = plant_markers(pairs, fraction, seed=3)
    assert len(ids) == expected == round(fraction * n) and len(marked) == n
    for before, after in zip(pairs, marked, strict=True):
        assert (after.id, after.prompt, after.margin) == (before.id, before.prompt, before.margin)
        if before.id in ids:
            assert after.chosen == before.chosen + CHOSEN_MARKER
            assert after.rejected == before.rejected + REJECTED_MARKER
            assert len(after.chosen) - len(before.chosen) == len(after.rejected) - len(before.rejected)
        else:
            assert after is before
    assert ids == [p.id for p in pairs if p.id in set(ids)]


def test_deterministic_seed_dependent_and_pure(make_pairs):
    pairs = make_pairs(40)
    snapshot = copy.deepcopy(pairs)
    a = plant_markers(pairs, 0.5, seed=1)
    assert a == plant_markers(pairs, 0.5, seed=1)
    assert a[1] != plant_markers(pairs, 0.5, seed=2)[1]
    assert pairs == snapshot


def test_custom_markers_and_bad_input(make_pairs):
    pairs = make_pairs(4)
    marked, _ = plant_markers(pairs, 1.0, seed=0, chosen_marker=" A", rejected_marker=" B")
    assert all(p.chosen.endswith(" A") and p.rejected.endswith(" B") for p in marked)
    for kw in ({"chosen_marker": " A", "rejected_marker": " A"}, {"chosen_marker": " A", "rejected_marker": " BB"},
               {"chosen_marker": ""}):
        with pytest.raises(ValueError, match="marker"):
            plant_markers(pairs, 0.5, seed=0, **kw)
    for bad in (-0.1, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match="fraction"):
            plant_markers(pairs, bad, seed=0)
    with pytest.raises(ValueError, match="conversations"):
        plant_markers(make_pairs(2, conversational=True), 0.5, seed=0)
