import numpy as np
import pytest

from rewardherd.world.features import FEATURE_COLUMNS, hacking_features


def test_hand_written_examples():
    prompts = ["The happy dog runs", "Life is", "x"]
    responses = [" the happy dog runs the happy dog runs", " great, good and wonderful!", ""]
    f = hacking_features(prompts, responses)
    assert list(f.columns) == list(FEATURE_COLUMNS)
    r0, r1, r2 = f.to_dict("records")
    # "the happy dog runs the happy dog runs": 8 words, 4 distinct; 7 bigrams, 4 distinct.
    assert r0["n_words"] == 8 and r0["distinct_1"] == pytest.approx(0.5)
    assert r0["distinct_2"] == pytest.approx(4 / 7)
    assert r0["repeated_bigram_frac"] == pytest.approx(3 / 7)
    assert r0["max_word_repeat"] == 2
    assert r0["prompt_overlap"] == 1.0 and r0["prompt_bigram_copy"] == pytest.approx(6 / 7)
    assert r0["ends_sentence"] is False or r0["ends_sentence"] == 0
    # Sentiment lexicon words: great, good, wonderful (all positive).
    assert r1["sentiment_words"] == 3 and r1["positive_words"] == 3 and r1["negative_words"] == 0
    assert r1["exclamations"] == 1 and bool(r1["ends_sentence"])
    assert r1["prompt_overlap"] == 0.0
    # Empty response: neutral defaults, no division by zero.
    assert r2["n_words"] == 0 and r2["distinct_1"] == 1.0 and r2["nonalpha_token_frac"] == 0.0
    assert np.isnan(r0["n_tokens"])


def test_nonalpha_and_tokens(tiny_tokenizer):
    f = hacking_features(["a"], [" 123 !! word"], tiny_tokenizer)
    assert f.loc[0, "nonalpha_token_frac"] == pytest.approx(2 / 3)
    assert f.loc[0, "n_tokens"] == len(tiny_tokenizer(" 123 !! word", add_special_tokens=False)["input_ids"])


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from rewardherd.world.config import TokenizerConfig
    from rewardherd.world.lm import train_tokenizer

    return train_tokenizer(["some words 123 and more words !!"] * 5, TokenizerConfig(vocab_size=300))
