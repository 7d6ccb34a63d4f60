import numpy as np
import pytest

from rewardherd.world.config import GoldConfig
from rewardherd.world.gold import GoldReward, repeated_bigram_fraction, words

PROMPTS = ["The sun rises over", "My cat likes to", "Never trust a", "The sun rises over"]
RESPONSES = [" the happy green hills and we love it.", " sleep.", "",
             " the the the the the the the the the the the the the the the the the the"]


@pytest.fixture(scope="module")
def gold():
    return GoldReward(GoldConfig())


def test_words_and_repetition():
    assert words(" Hello, world -- 42 !") == ["Hello,", "world", "42"]
    assert repeated_bigram_fraction("a b a b a b") == pytest.approx(1 - 2 / 5)
    assert repeated_bigram_fraction("one two") == 0.0


def test_formula_terms(gold):
    c = gold.components(PROMPTS, RESPONSES)
    cfg = gold.config
    assert list(c["n_words"]) == [8, 1, 0, 18]
    # Empty response: no sentiment, no relevance, only the short penalty.
    assert c.loc[2, "sentiment"] == 0 and c.loc[2, "relevance"] == 0
    assert c.loc[2, "gold"] == pytest.approx(-cfg.short_weight * cfg.min_words)
    # Degenerate repetition is penalized, and so are words beyond max_words.
    rebuilt = (cfg.sentiment_weight * c["sentiment"] + cfg.relevance_weight * c["relevance"]
               - cfg.repetition_weight * c["repetition"]
               - cfg.short_weight * np.maximum(0, cfg.min_words - c["n_words"])
               - cfg.long_weight * np.maximum(0, c["n_words"] - cfg.max_words))
    np.testing.assert_allclose(c["gold"], rebuilt, rtol=0, atol=1e-12)
    assert c.loc[3, "repetition"] > 0.8
    assert c.loc[0, "sentiment"] > 0.5 and c.loc[0, "gold"] > c.loc[1, "gold"]


def test_deterministic_and_batch_independent(gold):
    """The promise in gold.py's docstring, exactly: a sample's gold is bit-identical
    whatever its batch mates, the batch size and the caller's torch thread count."""
    import torch

    def fresh(prompts, responses):
        gold._memory.clear()  # score again rather than hit the in-memory cache
        return gold(prompts, responses)

    a = fresh(PROMPTS, RESPONSES)
    b = fresh(PROMPTS[::-1], RESPONSES[::-1])[::-1]
    c = np.concatenate([fresh([p], [r]) for p, r in zip(PROMPTS, RESPONSES, strict=True)])
    # More texts than one encoder pass holds, with the probes in the middle of them.
    filler = [f" filler text number {i} that is fine." for i in range(gold.config.encoder_rows + 5)]
    d = fresh(["Some prompt"] * len(filler) + PROMPTS, filler + RESPONSES)[-len(PROMPTS):]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if before != 1 else 2)
        e = fresh(PROMPTS, RESPONSES)
    finally:
        torch.set_num_threads(before)
    assert a.dtype == np.float64
    for other in (b, c, d, e):
        np.testing.assert_array_equal(a, other)


def test_memory_and_disk_cache(tmp_path):
    g1 = GoldReward(GoldConfig(), cache_dir=tmp_path)
    a = g1(PROMPTS, RESPONSES)
    assert g1.stats == {"hits": 0, "misses": 4}
    g1(PROMPTS, RESPONSES)
    assert g1.stats["hits"] == 4
    # A new instance reads the disk cache without loading the encoder.
    g2 = GoldReward(GoldConfig(), cache_dir=tmp_path)
    np.testing.assert_array_equal(g2(PROMPTS, RESPONSES), a)
    assert g2.stats == {"hits": 4, "misses": 0} and g2._encoder is None
    # Reweighting reuses the cached terms; another encoder setting has its own file.
    g3 = GoldReward(GoldConfig(long_weight=1.0), cache_dir=tmp_path)
    assert g3.db_path == g1.db_path and g3.key != g1.key
    assert g3(PROMPTS, RESPONSES)[3] < a[3] and g3._encoder is None
    g4 = GoldReward(GoldConfig(encoder_dtype="float32"), cache_dir=tmp_path)
    assert g4.db_path != g1.db_path


def test_length_mismatch(gold):
    with pytest.raises(ValueError):
        gold(["a"], [])
