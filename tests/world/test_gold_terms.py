"""Gold's word-level terms, its formula and its cache keys, worked by hand (no encoder:
every gold here has relevance weight 0, so MiniLM is never loaded)."""

import numpy as np
import pytest

from rewardherd.world.config import GoldConfig
from rewardherd.world.gold import (
    TERMS,
    GoldReward,
    gold_formula,
    lexicon_valence,
    norm_words,
    prompt_overlap,
    repeated_bigram_fraction,
    words,
)

LEXICAL = GoldConfig(design="lexical")


def _neutral(k: int) -> str:
    """k distinct words that are in no lexicon and in no prompt: every term 0 but the length hinges."""
    return " " + " ".join(f"w{i}" for i in range(k))


# ------------------------------------------------------------------ word-level terms
def test_words_keep_tokens_with_a_letter_or_digit():
    assert words("") == [] and words("  -- ... !! ") == []
    assert words("it's 3 o'clock -- really?!") == ["it's", "3", "o'clock", "really?!"]


def test_norm_words_lower_case_and_strip_outer_punctuation_but_not_apostrophes():
    assert norm_words("Hello, WORLD!! -- (42)") == ["hello", "world", "42"]
    assert norm_words("Don't STOP.") == ["don't", "stop"]
    assert norm_words("...") == []


def test_prompt_overlap_is_the_share_of_response_words_in_the_prompt():
    # response words: the, sun, the, moon; the prompt has the, sun, rises: 3 of 4
    assert prompt_overlap("The Sun rises", " the sun, the MOON.") == pytest.approx(3 / 4)
    assert prompt_overlap("The sun", "") == 0.0 and prompt_overlap("The sun", " -- !!") == 0.0
    assert prompt_overlap("", " the sun") == 0.0


def test_lexicon_valence_sums_valences_over_four():
    assert lexicon_valence("Happy happy SAD!") == pytest.approx((2.7 + 2.7 - 2.1) / 4)
    assert lexicon_valence("the table") == 0.0 and lexicon_valence("") == 0.0


def test_repeated_bigram_fraction_by_hand():
    # a b a b: bigrams (a, b), (b, a), (a, b): 2 distinct of 3
    assert repeated_bigram_fraction("A b. a B") == pytest.approx(1 / 3)
    assert repeated_bigram_fraction("one two three") == 0.0  # 2 distinct bigrams of 2
    assert repeated_bigram_fraction("x x") == 0.0  # one bigram: too few to repeat
    assert repeated_bigram_fraction("x x x") == pytest.approx(1 / 2)  # (x, x) twice


# ------------------------------------------------------------------ the formula
def test_gold_formula_by_hand():
    terms = {"n_words": np.array([12.0, 20.0, 3.0]), "valence": np.array([0.5, -1.0, 0.0]),
             "overlap": np.array([0.25, 0.0, 1.0]), "repetition": np.array([0.1, 0.5, 0.0])}
    # lexical: valence + overlap - 2 repetition - 0.1 * words short of 10 - 0.05 * words over 15
    np.testing.assert_allclose(gold_formula(LEXICAL, terms), [0.5 + 0.25 - 0.2, -1.0 - 1.0 - 0.25, 1.0 - 0.7])
    half = GoldConfig(design="lexical", shared_error=0.4)  # the long tail at 40%: 0.4 * 0.05 * 5 = 0.1
    np.testing.assert_allclose(gold_formula(half, terms)[1], -2.1)
    heavy = GoldConfig(design="lexical", overlap_weight=3.0, short_weight=0.0)
    np.testing.assert_allclose(gold_formula(heavy, terms), [0.5 + 0.75 - 0.2, -2.25, 3.0])
    with pytest.raises(KeyError):  # a term of nonzero weight must be given
        gold_formula(LEXICAL, {"n_words": terms["n_words"], "valence": terms["valence"]})


@pytest.mark.parametrize(("k", "penalty"), [
    (0, -1.0),  # empty: ten words short
    (9, -0.1), (10, 0.0),  # min_words = 10 is not short
    (15, 0.0), (16, -0.05), (25, -0.5),  # max_words = 15 is not long; each word beyond costs 0.05
])
def test_length_hinges_at_their_limits(k, penalty):
    c = GoldReward(LEXICAL).components(["x"], [_neutral(k)])
    assert c.loc[0, "n_words"] == k
    assert (c.loc[0, "valence"], c.loc[0, "overlap"], c.loc[0, "repetition"]) == (0.0, 0.0, 0.0)
    assert c.loc[0, "gold"] == pytest.approx(penalty)


def test_a_limit_moved_by_config_moves_the_hinge():
    cfg = GoldConfig(design="lexical", min_words=2, max_words=3, short_weight=1.0, long_weight=2.0)
    g = GoldReward(cfg)(["x"] * 4, [_neutral(k) for k in (0, 2, 3, 5)])
    np.testing.assert_allclose(g, [-2.0, 0.0, 0.0, -4.0])  # 2 short x 1; 2 long x 2


def test_the_valence_tail_charges_valence_beyond_its_limit_instead_of_length():
    # ' happy' has valence 2.7 / 4 = 0.675; twice: 1.35; the limit 1.0 and weight 2.0 (defaults)
    cfg = GoldConfig(design="herding", sentiment_weight=0.0, relevance_weight=0.0, tail="valence")
    gold = GoldReward(cfg)
    assert gold.terms == ("n_words", "repetition", "valence")  # valence is computed for the tail only
    c = gold.components(["x"] * 3, [" happy", " happy happy", _neutral(25)])
    short = -0.1 * (10 - np.array([1, 2, 25]).clip(max=10))
    np.testing.assert_allclose(c["gold"], short + [0.0, -2.0 * (1.35 - 1.0), 0.0])  # no length tail
    lexical = GoldReward(GoldConfig(design="lexical", tail="valence", shared_error=0.5))
    assert lexical.terms == ("n_words", "valence", "overlap", "repetition")
    g = lexical(["x"], [" happy happy"])
    assert g[0] == pytest.approx(-0.8 + 1.35 - 0.5 * 2.0 * 0.35)
    with pytest.raises(Exception, match="gold.tail"):
        GoldConfig(tail="sentiment")


def test_duplicates_in_a_batch_are_computed_once_and_kept_in_order():
    gold = GoldReward(LEXICAL)
    c = gold.components(["p", "x", "p"], [" happy", _neutral(16), " happy"])
    assert c["valence"].tolist() == pytest.approx([2.7 / 4, 0.0, 2.7 / 4])
    assert c.loc[1, "gold"] == pytest.approx(-0.05)
    assert gold.stats == {"hits": 4, "misses": 8}  # 4 terms: 2 distinct samples missing, 1 repeat found


# ------------------------------------------------------------------ cache keys
def test_gold_key_follows_every_setting_term_keys_only_their_own():
    base = GoldReward(LEXICAL)
    assert GoldReward(GoldConfig(design="lexical")).key == base.key
    reweighted = GoldReward(GoldConfig(design="lexical", long_weight=0.2, shared_error=0.5))
    assert reweighted.key != base.key and reweighted.term_keys == base.term_keys  # reuses every cached term
    # the valence tail's settings are in the key only when the tail is valence
    assert GoldReward(GoldConfig(design="lexical", max_valence=3.0)).key == base.key
    tailed = GoldReward(GoldConfig(design="lexical", tail="valence"))
    assert tailed.key != base.key and tailed.term_keys == base.term_keys
    assert GoldReward(GoldConfig(design="lexical", tail="valence", max_valence=3.0)).key != tailed.key
    herding = GoldReward(GoldConfig(), encoder_path="/models/minilm")
    assert herding.terms == ("n_words", "sentiment", "relevance", "repetition")
    assert herding.term_keys["repetition"] == base.term_keys["repetition"]  # one table across designs
    assert herding.term_keys["n_words"] == base.term_keys["n_words"]
    other_path = GoldReward(GoldConfig(), encoder_path="/elsewhere")
    assert other_path.term_keys["relevance"] != herding.term_keys["relevance"]
    assert other_path.term_keys["sentiment"] == herding.term_keys["sentiment"]
    rows = GoldReward(GoldConfig(encoder_rows=16), encoder_path="/models/minilm")
    assert {t for t in rows.terms if rows.term_keys[t] != herding.term_keys[t]} == {"relevance"}


def test_every_weighted_term_has_a_sign_and_zero_weight_terms_are_not_computed():
    assert {n: t.sign for n, t in TERMS.items()} == {"sentiment": 1.0, "relevance": 1.0, "valence": 1.0,
                                                     "overlap": 1.0, "repetition": -1.0, "teacher": 1.0,
                                                     "n_words": 0.0}
    only = GoldReward(GoldConfig(design="lexical", overlap_weight=0.0, repetition_weight=0.0))
    assert only.terms == ("n_words", "valence")
    assert list(only.components(["p"], [" good"]).columns) == ["n_words", "valence", "gold"]
