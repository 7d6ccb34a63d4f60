"""The world configuration's own rules (world/config.py): the length shift the shared error
rests on, world replicates, gold designs, and each section's validation."""

import dataclasses

import pytest

from rewardherd.world.config import (
    GOLD_DESIGNS,
    REPLICATE_SEED_STRIDE,
    WEIGHTED_TERMS,
    CorpusConfig,
    GoldConfig,
    LMConfig,
    PreferenceConfig,
    PromptConfig,
    SamplingConfig,
    TokenizerConfig,
    WorldConfig,
    world_config,
    world_replicate,
)


# ------------------------------------------------------------------ the length shift
def test_length_shift_gathers_the_numbers_of_the_shared_error():
    assert world_config("quick").length_shift() == {"preference_tokens": 16, "pool_tokens": 48, "min_words": 10,
                                                    "max_words": 15}
    assert world_config("smoke").length_shift() == {"preference_tokens": 8, "pool_tokens": 16, "min_words": 10,
                                                    "max_words": 15}


def _world(pref_tokens=16, pool_tokens=48, max_words=15, min_words=10):
    base = WorldConfig()
    return dataclasses.replace(
        base, preferences=dataclasses.replace(base.preferences, sampling=SamplingConfig(max_new_tokens=pref_tokens)),
        pool=SamplingConfig(max_new_tokens=pool_tokens),
        gold=dataclasses.replace(base.gold, max_words=max_words, min_words=min_words))


@pytest.mark.parametrize(("kw", "ok"), [
    ({}, True),
    ({"pref_tokens": 47}, True),  # still below the pool
    ({"pref_tokens": 48}, False),  # the preference data reaches as far as the pool: no unseen tail
    ({"max_words": 47}, True),
    ({"max_words": 48}, False),  # gold's tail starts beyond anything the pool can reach
    ({"pool_tokens": 15}, False),  # below max_words
])
def test_the_pool_must_reach_a_tail_the_preference_data_does_not(kw, ok):
    if ok:
        assert _world(**kw).length_shift()["pool_tokens"] == kw.get("pool_tokens", 48)
    else:
        with pytest.raises(ValueError, match="the length shift needs"):
            _world(**kw)


def test_the_pool_and_the_preference_setting_must_fit_the_policy_context():
    # block_size 128: 48 pool tokens + 8 prompt words x 4 tokens = 80 fits; 100 + 32 does not
    with pytest.raises(ValueError, match="pool.max_new_tokens plus a prompt must fit"):
        _world(pool_tokens=100)
    with pytest.raises(ValueError, match="preferences.sampling.max_new_tokens must fit"):
        dataclasses.replace(_world(), preferences=PreferenceConfig(sampling=SamplingConfig(max_new_tokens=129)))


# ------------------------------------------------------------------ replicates
def test_world_replicate_redraws_policy_backbones_and_preferences_only():
    cfg = world_config("smoke")
    assert world_replicate(cfg, 0) is cfg
    r2 = world_replicate(cfg, 2)
    assert r2.policy.seed == cfg.policy.seed + 2 == 1002
    assert r2.backbones.seeds == (2 * REPLICATE_SEED_STRIDE, 2 * REPLICATE_SEED_STRIDE + 1) == (200, 201)
    assert r2.preferences.seed == cfg.preferences.seed + 2 == 2002
    # the design stays: corpus, prompts, gold, sampling, models' shapes
    for section in ("corpus", "tokenizer", "prompts", "pool", "gold"):
        assert getattr(r2, section) == getattr(cfg, section), section
    assert r2.policy.lm == cfg.policy.lm and r2.backbones.lm == cfg.backbones.lm
    assert r2.preferences.sampling == cfg.preferences.sampling
    assert set(world_replicate(cfg, 1).backbones.seeds).isdisjoint(r2.backbones.seeds)


@pytest.mark.parametrize("bad", [-1, 1.5, "1"])
def test_a_replicate_is_an_integer_at_least_zero(bad):
    with pytest.raises(ValueError, match="world replicate must be an integer >= 0"):
        world_replicate(world_config("smoke"), bad)


# ------------------------------------------------------------------ gold designs
@pytest.mark.parametrize("design", sorted(GOLD_DESIGNS))
def test_a_design_sets_every_weighted_term(design):
    cfg = GoldConfig(design=design)
    assert set(GOLD_DESIGNS[design]) == {f"{t}_weight" for t in WEIGHTED_TERMS}
    assert [cfg.weight(t) for t in WEIGHTED_TERMS] == [GOLD_DESIGNS[design][f"{t}_weight"] for t in WEIGHTED_TERMS]
    assert cfg.active_terms() == tuple(t for t in WEIGHTED_TERMS if GOLD_DESIGNS[design][f"{t}_weight"] > 0)


def test_the_designs_active_terms():
    assert GoldConfig().active_terms() == ("sentiment", "relevance", "repetition")
    assert GoldConfig(design="lexical").active_terms() == ("valence", "overlap", "repetition")
    # an explicit weight wins over the design, also to switch a term on
    assert GoldConfig(design="lexical", relevance_weight=0.5).active_terms() == (
        "relevance", "valence", "overlap", "repetition")


# ------------------------------------------------------------------ validation of each section
@pytest.mark.parametrize(("make", "msg"), [
    (lambda: CorpusConfig(min_words=1), "corpus.min_words must be >= 2"),
    (lambda: CorpusConfig(min_words=5, max_words=4), "corpus.max_words must be >= corpus.min_words"),
    (lambda: CorpusConfig(max_items=0), "corpus.max_items must be > 0"),
    (lambda: CorpusConfig(val_fraction=0.0), r"corpus fractions must be in \(0, 1\)"),
    (lambda: CorpusConfig(eval_fraction=1.0), r"corpus fractions must be in \(0, 1\)"),
    (lambda: CorpusConfig(val_fraction=0.3, pref_train_fraction=0.3, pref_heldout_fraction=0.2,
                          eval_fraction=0.1), "must leave >= 10% of items for pretraining"),
    (lambda: TokenizerConfig(vocab_size=299), "tokenizer.vocab_size must be >= 300"),
    (lambda: TokenizerConfig(min_frequency=0), "tokenizer.min_frequency must be >= 1"),
    (lambda: LMConfig(n_layer=0), "n_layer >= 1 and n_embd >= 8"),
    (lambda: LMConfig(n_embd=4, n_head=1), "n_layer >= 1 and n_embd >= 8"),
    (lambda: LMConfig(block_size=15), "lm.block_size must be >= 16"),
    (lambda: LMConfig(steps=0), "lm.steps and lm.batch_size must be >= 1"),
    (lambda: LMConfig(lr=0.0), "lm.lr must be > 0"),
    (lambda: LMConfig(min_lr_ratio=1.5), r"lm.min_lr_ratio must be in \[0, 1\]"),
    (lambda: LMConfig(steps=10, warmup_steps=11), r"lm.warmup_steps must be in \[0, steps\]"),
    (lambda: LMConfig(grad_clip=0.0), "grad_clip > 0"),
    (lambda: LMConfig(eval_batches=0), "lm.eval_batches must be >= 1"),
    (lambda: PromptConfig(min_words=5, max_words=4), "prompts: 1 <= min_words <= max_words"),
    (lambda: PromptConfig(min_continuation_words=0), "prompts.min_continuation_words must be >= 1"),
    (lambda: SamplingConfig(max_new_tokens=0), "sampling.max_new_tokens must be >= 1"),
    (lambda: SamplingConfig(max_new_tokens=4, min_new_tokens=5), r"min_new_tokens must be in \[0, max_new_tokens\]"),
    (lambda: SamplingConfig(temperature=-0.1), "sampling.temperature must be >= 0"),
    (lambda: SamplingConfig(top_p=0.0), r"sampling.top_p must be in \(0, 1\]"),
    (lambda: PreferenceConfig(samples_per_prompt=3), "preferences.samples_per_prompt must be even and >= 2"),
    (lambda: PreferenceConfig(label="coin"), "preferences.label: argmax|bradley_terry"),
    (lambda: PreferenceConfig(label_temperature=0.0), "preferences.label_temperature must be > 0"),
    (lambda: PreferenceConfig(min_gold_gap=-1.0), "preferences.min_gold_gap must be >= 0"),
    (lambda: PreferenceConfig(markers=1.5), r"preferences.markers must be in \[0, 1\]; got 1.5"),
    (lambda: PreferenceConfig(max_train_pairs=0), "max_train_pairs > 0"),
    (lambda: GoldConfig(valence_weight=-1.0), "gold.valence_weight must be >= 0"),
    (lambda: GoldConfig(long_weight=-0.1), "gold.long_weight must be >= 0"),
    (lambda: GoldConfig(encoder_max_tokens=7), r"gold.encoder_max_tokens must be in \[8, 256\]"),
    (lambda: GoldConfig(encoder_dtype="float16"), "gold.encoder_dtype: float32|bfloat16"),
    (lambda: GoldConfig(encoder_rows=0), r"gold.encoder_rows must be in \[1, 1024\]"),
    (lambda: GoldConfig(encoder_threads=0), r"gold.encoder_threads must be in \[1, 256\]"),
    (lambda: dataclasses.replace(WorldConfig(), summary_prompts=0), "summary_prompts and summary_samples_per_prompt"),
    (lambda: dataclasses.replace(WorldConfig(), num_threads=0), "num_threads must be >= 1"),
])
def test_each_rule_refuses_what_it_names(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_the_stated_boundaries_are_accepted():
    assert LMConfig(steps=5, warmup_steps=5, min_lr_ratio=1.0).warmup_steps == 5
    assert SamplingConfig(max_new_tokens=4, min_new_tokens=4, temperature=0.0, top_p=1.0).temperature == 0.0
    assert PreferenceConfig(samples_per_prompt=2, markers=1.0).markers == 1.0
    assert GoldConfig(min_words=0, max_words=0, shared_error=0.0).max_words == 0
    assert TokenizerConfig(vocab_size=300).vocab_size == 300
