"""Pairing and labelling the world's preference data (world/preferences.py) on samples
written by hand."""

import numpy as np
import pandas as pd
import pytest

from rewardherd.world.config import PreferenceConfig
from rewardherd.world.preferences import make_pairs, pair_summary, write_pairs


def _samples(rows):
    """rows: (prompt_id, sample_id, response, gold, n_words)"""
    return pd.DataFrame([{"prompt_id": p, "prompt": f"prompt {p}", "sample_id": s, "response": r, "gold": g,
                          "n_words": w} for p, s, r, g, w in rows])


ROWS = [
    # prompt a: (0, 1) a clear pair, (2, 3) an exact tie (dropped)
    ("a", 1, " worse", 0.1, 1), ("a", 0, " better one", 0.9, 2), ("a", 2, " x", 0.5, 1), ("a", 3, " y", 0.5, 1),
    # prompt b: (0, 1) an empty response, (2, 3) identical responses, (4, 5) a pair, (6) left over
    ("b", 0, "  ", 0.0, 0), ("b", 1, " fine", 0.3, 1), ("b", 2, " same", 0.2, 1), ("b", 3, " same", 0.4, 1),
    ("b", 4, " long answer here", 0.2, 3), ("b", 5, " short", 0.6, 1), ("b", 6, " odd one out", 1.0, 3),
    # prompt c: the same two responses twice (in either order): the second pair is a repeat
    ("c", 0, " up", 1.0, 1), ("c", 1, " down", -1.0, 1), ("c", 2, " down", -1.0, 1), ("c", 3, " up", 1.0, 1),
]


def test_pairs_are_consecutive_samples_and_argmax_labels_by_hand():
    pairs = make_pairs(_samples(ROWS), PreferenceConfig())
    assert pairs["id"].tolist() == ["a-0", "b-2", "c-0"]  # pair index k // 2 within its prompt
    assert pairs.to_dict("records")[0] == {
        "id": "a-0", "prompt_id": "a", "prompt": "prompt a", "chosen": " better one", "rejected": " worse",
        "gold_chosen": 0.9, "gold_rejected": 0.1, "words_chosen": 2, "words_rejected": 1}
    b = pairs.iloc[1]
    assert (b["chosen"], b["rejected"], b["gold_chosen"], b["gold_rejected"]) == (" short", " long answer here",
                                                                                  0.6, 0.2)
    assert (pairs.iloc[2]["chosen"], pairs.iloc[2]["rejected"]) == (" up", " down")


def test_equal_length_pairing_pairs_only_samples_of_one_word_count_by_hand():
    pairs = make_pairs(_samples(ROWS), PreferenceConfig(pairing="equal_length"))
    # a: 1 word [s1, s2, s3] -> (s1, s2); b: 1 word [s1, s2, s3, s5] -> (s1, s2), (s3, s5);
    # 3 words [s4, s6]; c: (up, down) and its repeat (dropped)
    got = [(r.id, r.chosen, r.rejected) for r in pairs.itertuples()]
    assert got == [("a-0", " x", " worse"), ("b-0", " fine", " same"), ("b-1", " short", " same"),
                   ("b-2", " odd one out", " long answer here"), ("c-0", " up", " down")]
    assert (pairs["words_chosen"] == pairs["words_rejected"]).all()
    capped = make_pairs(_samples(ROWS), PreferenceConfig(pairing="equal_length", max_pairs_per_prompt=1))
    assert capped["id"].tolist() == ["a-0", "b-0", "c-0"]
    # the cap counts kept pairs: in prompt b under order pairing the first two are dropped
    assert make_pairs(_samples(ROWS), PreferenceConfig(max_pairs_per_prompt=1))["id"].tolist() == ["a-0", "b-2", "c-0"]
    with pytest.raises(Exception, match="pairing"):
        PreferenceConfig(pairing="by_gold")
    with pytest.raises(ValueError, match="n_words"):
        make_pairs(_samples(ROWS).drop(columns=["n_words"]), PreferenceConfig(pairing="equal_length"))


def test_min_gold_gap_drops_close_pairs_and_max_pairs_keeps_the_first():
    # gaps: a 0.8, b 0.4, c 2.0
    pairs = make_pairs(_samples(ROWS), PreferenceConfig(min_gold_gap=0.4))
    assert pairs["id"].tolist() == ["a-0", "c-0"]  # a gap equal to the bar is dropped too
    assert make_pairs(_samples(ROWS), PreferenceConfig(), max_pairs=2)["id"].tolist() == ["a-0", "b-2"]


def test_bradley_terry_labels_follow_the_gap_and_the_seed():
    rows = [("p", 2 * i + j, f" r{i}-{j}", g, 1) for i in range(400) for j, g in enumerate((0.25, 0.0))]
    cfg = PreferenceConfig(label="bradley_terry", label_temperature=0.25)
    pairs = make_pairs(_samples(rows), cfg, seed=3)
    # P(first wins) = sigmoid(0.25 / 0.25) = 0.731; 400 pairs: sd 0.022
    share = float((pairs["gold_chosen"] == 0.25).mean())
    assert share == pytest.approx(1 / (1 + np.exp(-1.0)), abs=0.07)
    assert make_pairs(_samples(rows), cfg, seed=3).equals(pairs)  # the seed fixes the draws
    assert not make_pairs(_samples(rows), cfg, seed=4).equals(pairs)
    sharp = make_pairs(_samples(rows), PreferenceConfig(label="bradley_terry", label_temperature=1e-3), seed=0)
    assert (sharp["gold_chosen"] == 0.25).all()  # a tiny temperature is argmax


def test_without_word_counts_there_are_no_word_columns():
    s = _samples(ROWS[:2]).drop(columns=["n_words"])
    assert list(make_pairs(s, PreferenceConfig()).columns) == ["id", "prompt_id", "prompt", "chosen", "rejected",
                                                               "gold_chosen", "gold_rejected"]
    empty = make_pairs(_samples(ROWS[2:4]), PreferenceConfig())  # one tied pair: nothing
    assert empty.empty and pair_summary(empty) == {"pairs": 0}


def test_pair_summary_by_hand():
    pairs = pd.DataFrame({"gold_chosen": [1.0, 0.5, 0.2], "gold_rejected": [0.0, 0.0, 0.1],
                          "words_chosen": [5, 2, 3], "words_rejected": [3, 4, 3]})
    s = pair_summary(pairs)
    assert s["pairs"] == 3 and s["gold_gap_mean"] == pytest.approx((1.0 + 0.5 + 0.1) / 3)
    # pairs of unequal length: 0 (chosen longer) and 1 (shorter); the tie in length is left out
    assert s["chosen_longer_frac"] == pytest.approx(0.5)
    assert s["words_mean"] == pytest.approx((5 + 2 + 3 + 3 + 4 + 3) / 6)
    same = pair_summary(pairs.assign(words_rejected=pairs["words_chosen"]))
    assert same["chosen_longer_frac"] == 0.5  # no pair differs in length: no signal either way
    assert "chosen_longer_frac" not in pair_summary(pairs.drop(columns=["words_chosen", "words_rejected"]))


def test_write_pairs_writes_user_format_preferences(tmp_path):
    from rewardherd.data import load_preferences

    pairs = make_pairs(_samples(ROWS), PreferenceConfig())
    path = write_pairs(pairs, tmp_path / "train.jsonl")
    loaded, _ = load_preferences(path)
    assert [(p.id, p.prompt, p.chosen, p.rejected) for p in loaded] == [
        ("a-0", "prompt a", " better one", " worse"), ("b-2", "prompt b", " short", " long answer here"),
        ("c-0", "prompt c", " up", " down")]
    write_pairs(pairs.head(1), path)  # overwrites
    assert len(load_preferences(path)[0]) == 1


def test_all_pairing_forms_every_pair_of_a_prompt_by_hand():
    """pairing=all (the teacher's): the 6 pairs of prompt a's 4 samples, less the tie (2, 3)."""
    pairs = make_pairs(_samples(ROWS[:4]), PreferenceConfig(pairing="all"))
    assert pairs["id"].tolist() == ["a-0", "a-1", "a-2", "a-3", "a-4"]
    assert list(zip(pairs["chosen"], pairs["rejected"], strict=True)) == [
        (" better one", " worse"), (" better one", " x"), (" better one", " y"), (" x", " worse"), (" y", " worse")]
