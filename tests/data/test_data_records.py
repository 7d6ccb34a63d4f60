"""to_trl_records and the PreferencePair record type."""

import pytest

from rewardherd.data import PreferencePair, to_trl_records


def test_plain_records(make_pairs):
    records = to_trl_records(make_pairs(2))
    assert records[0] == {
        "prompt": "prompt 0",
        "chosen": "good answer 0",
        "rejected": "bad answer 0",
    }


def test_conversational_records_are_copies(make_pairs):
    pairs = make_pairs(2, conversational=True, margin=0.5)
    records = to_trl_records(pairs)
    assert records[0]["chosen"] == pairs[0].chosen and records[0]["margin"] == 0.5
    records[0]["chosen"][0]["content"] = "changed"
    assert pairs[0].chosen[0]["content"] == "good answer 0"


def test_records_build_a_dataset(make_pairs):
    import datasets

    ds = datasets.Dataset.from_list(to_trl_records(make_pairs(3, conversational=True, margin=1.0)))
    assert set(ds.column_names) == {"prompt", "chosen", "rejected", "margin"}


def test_mixed_margins_rejected(make_pairs):
    pairs = make_pairs(2)
    pairs[0] = PreferencePair("x", "p", "a", "b", margin=1.0)
    with pytest.raises(ValueError, match="1 of 2 pairs have a margin"):
        to_trl_records(pairs)


def test_pair_validates_its_fields():
    assert PreferencePair("a", [], [{"role": "assistant", "content": "x"}], []).is_conversational
    assert not PreferencePair("a", "", "x", "y").is_conversational
    with pytest.raises(TypeError, match="id"):
        PreferencePair(1, "p", "a", "b")
    with pytest.raises(TypeError, match="all be strings"):
        PreferencePair("a", "p", [{"role": "assistant", "content": "x"}], "b")
    with pytest.raises(TypeError, match="margin"):
        PreferencePair("a", "p", "a", "b", margin=float("inf"))
