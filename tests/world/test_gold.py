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


def test_lexical_gold_by_hand():
    """Worked by hand from VADER's lexicon (happy 2.7, love 3.2) and the module's formula."""
    c = GoldReward(GoldConfig(design="lexical")).components(PROMPTS, RESPONSES)
    assert list(c.columns) == ["n_words", "valence", "overlap", "repetition", "gold"]
    assert list(c["n_words"]) == [8, 1, 0, 18]
    # (2.7 + 3.2) / 4 = 1.475; 'the' of 8 words is in the prompt; 2 words short: -0.2
    assert c.loc[0, "valence"] == pytest.approx(1.475) and c.loc[0, "overlap"] == pytest.approx(1 / 8)
    assert c.loc[0, "gold"] == pytest.approx(1.475 + 0.125 - 0.2)
    assert c.loc[1, "gold"] == pytest.approx(-0.9) and c.loc[2, "gold"] == pytest.approx(-1.0)
    # 18 x 'the': overlap 1, repetition 1 - 1/17, 3 words over the limit at 0.05 each
    assert c.loc[3, "repetition"] == pytest.approx(16 / 17)
    assert c.loc[3, "gold"] == pytest.approx(1 - 2 * 16 / 17 - 0.15)


@pytest.mark.parametrize("level", [0.0, 0.5, 1.0])
def test_shared_error_scales_only_the_length_tail(level):
    c = GoldReward(GoldConfig(design="lexical", shared_error=level)).components(PROMPTS, RESPONSES)
    assert c.loc[3, "gold"] == pytest.approx(1 - 2 * 16 / 17 - level * 0.15)
    assert c.loc[0, "gold"] == pytest.approx(1.475 + 0.125 - 0.2)  # under the limit: unchanged


def test_herding_design_terms(gold):
    c = gold.components(PROMPTS, RESPONSES)
    assert list(c.columns) == ["n_words", "sentiment", "relevance", "repetition", "gold"]
    # Empty response: no sentiment, no relevance, only the short penalty.
    assert c.loc[2, "sentiment"] == 0 and c.loc[2, "relevance"] == 0 and c.loc[2, "gold"] == pytest.approx(-1.0)
    # 'sleep.' (no VADER word): its gold is its relevance less 9 missing words
    assert c.loc[1, "sentiment"] == 0
    assert c.loc[1, "gold"] == pytest.approx(c.loc[1, "relevance"] - 0.9)
    assert c.loc[3, "repetition"] > 0.8
    assert c.loc[0, "sentiment"] > 0.5 and c.loc[0, "gold"] > c.loc[1, "gold"]


def test_design_fills_only_the_weights_left_unset():
    cfg = GoldConfig(design="lexical", overlap_weight=0.0, repetition_weight=3.0)
    assert [cfg.weight(t) for t in ("valence", "overlap", "repetition", "relevance")] == [1.0, 0.0, 3.0, 0.0]
    assert cfg.active_terms() == ("valence", "repetition")
    with pytest.raises(ValueError, match="gold.design"):
        GoldConfig(design="nope")
    with pytest.raises(ValueError, match="shared_error"):
        GoldConfig(shared_error=1.5)


def test_deterministic_and_batch_independent(gold):
    """The promise in gold.py's docstring, exactly: a sample's gold is bit-identical
    whatever its batch mates, the batch size and the caller's torch thread count."""
    import torch

    def fresh(prompts, responses):
        for memory in gold._memory.values():
            memory.clear()  # score again rather than hit the in-memory cache
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
    assert g1.stats == {"hits": 0, "misses": 16}  # term values: 4 terms x 4 samples
    g1(PROMPTS, RESPONSES)
    assert g1.stats["hits"] == 16
    # A new instance reads the disk cache without loading the encoder.
    g2 = GoldReward(GoldConfig(), cache_dir=tmp_path)
    np.testing.assert_array_equal(g2(PROMPTS, RESPONSES), a)
    assert g2.stats == {"hits": 16, "misses": 0} and g2._encoder is None
    # Reweighting reuses the cached terms; another encoder setting keys relevance alone anew.
    g3 = GoldReward(GoldConfig(long_weight=1.0), cache_dir=tmp_path)
    assert g3.term_keys == g1.term_keys and g3.key != g1.key
    assert g3(PROMPTS, RESPONSES)[3] < a[3] and g3._encoder is None
    g4 = GoldReward(GoldConfig(encoder_dtype="float32"), cache_dir=tmp_path)
    changed = {t for t in g1.terms if g4.term_keys[t] != g1.term_keys[t]}
    assert changed == {"relevance"}
    # Another design computes only its new terms and reads the shared ones from disk.
    g5 = GoldReward(GoldConfig(design="lexical"), cache_dir=tmp_path)
    g5(PROMPTS, RESPONSES)
    assert g5.stats == {"hits": 8, "misses": 8}  # n_words, repetition cached; valence, overlap new


def test_length_mismatch(gold):
    with pytest.raises(ValueError):
        gold(["a"], [])


def test_herding_gold_by_hand(gold):
    """VADER's compound score is round(s / sqrt(s^2 + 15), 4) for a summed valence s
    (happy 2.7, sad -2.1); MiniLM's cosine of a text with itself is 1 (unit vectors)."""
    prompts = ["happy", "happy sad", "The sun rises over"]
    responses = [" happy", "happy sad ", " The sun rises over"]
    c = gold.components(prompts, responses)
    assert c.loc[0, "sentiment"] == pytest.approx(round(2.7 / np.sqrt(2.7 ** 2 + 15), 4))  # 0.5719
    assert c.loc[1, "sentiment"] == pytest.approx(round(0.6 / np.sqrt(0.6 ** 2 + 15), 4))  # 0.1531
    assert c.loc[2, "sentiment"] == 0.0  # no lexicon word
    # each response (stripped) is its prompt: relevance 1
    np.testing.assert_allclose(c["relevance"], 1.0, atol=1e-5)
    # gold = sentiment + relevance - 2 repetition - 0.1 per word short of 10
    assert c.loc[0, "gold"] == pytest.approx(0.5719 + 1.0 - 0.9, abs=1e-5)  # 1 word: 9 short
    assert c.loc[1, "gold"] == pytest.approx(0.1531 + 1.0 - 0.8, abs=1e-5)  # 2 words
    assert c.loc[2, "gold"] == pytest.approx(0.0 + 1.0 - 0.6, abs=1e-5)  # 4 words, no repeated bigram


def test_whitespace_only_responses_score_zero_on_every_term(gold):
    c = gold.components(["Some prompt", "Other"], ["   ", "\n"])
    for term in ("n_words", "sentiment", "relevance", "repetition"):
        assert c[term].tolist() == [0.0, 0.0], term
    assert c["gold"].tolist() == pytest.approx([-1.0, -1.0])  # ten words short
