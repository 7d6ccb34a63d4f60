"""What each world artifact's cache key holds (world/world.py), checked without building
anything: World._cached records the key dicts and hands back a folder named by each key's
hash, so upstream keys flow into downstream ones as they do in a real build. Also the
prompt extraction and the summary's gold statistics, by hand."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from rewardherd.world import world as wmod
from rewardherd.world.cache import hash_key
from rewardherd.world.config import PromptConfig
from rewardherd.world.corpus import CorpusItem
from rewardherd.world.gold import GoldReward

from .conftest import tiny_config

KINDS = ("corpus", "tokenizer", "backbone", "policy", "prompts", "preferences", "base_samples")


@pytest.fixture()
def keys_of(monkeypatch, tmp_path):
    def fake_cached(self, kind, key, build):
        d = tmp_path / kind / hash_key({"kind": kind, **key})
        d.mkdir(parents=True, exist_ok=True)
        self._seen.setdefault(kind, []).append(key)
        return d

    monkeypatch.setattr(wmod.World, "_cached", fake_cached)
    monkeypatch.setattr(wmod, "_key", lambda path: path.name)

    def keys(cfg):
        w = wmod.World(cfg, tmp_path)
        w._seen = {}
        for handle in ("corpus_path", "tokenizer_dir", "backbone_dirs", "policy_dir", "prompts_dir",
                       "preferences_dir", "base_samples_dir"):
            getattr(w, handle)
        return {kind: hash_key({"k": w._seen[kind]}) for kind in KINDS}, w._seen

    return keys


def _changed(keys_of, base, other):
    a, _ = keys_of(base)
    b, _ = keys_of(other)
    return {k for k in KINDS if a[k] != b[k]}


def _gold(cfg, **kw):
    return dataclasses.replace(cfg, gold=dataclasses.replace(cfg.gold, **kw))


def test_gold_design_and_parameters_change_only_the_gold_labelled_artifacts(keys_of, corpus_file):
    cfg = tiny_config(corpus_file)
    for other in (_gold(cfg, design="lexical"), _gold(cfg, long_weight=0.2), _gold(cfg, shared_error=0.5),
                  _gold(cfg, tail="valence"),
                  _gold(cfg, max_words=12), _gold(cfg, repetition_weight=1.0)):
        assert _changed(keys_of, cfg, other) == {"preferences", "base_samples"}, other.gold
    assert _changed(keys_of, cfg, _gold(cfg)) == set()  # an equal gold: nothing
    _, seen = keys_of(_gold(cfg, design="lexical"))
    assert seen["preferences"][0]["gold"] == GoldReward(_gold(cfg, design="lexical").gold).key


def test_other_sections_change_their_artifact_and_what_lies_downstream(keys_of, corpus_file):
    cfg = tiny_config(corpus_file)
    policy = dataclasses.replace(cfg.policy, seed=7)
    assert _changed(keys_of, cfg, dataclasses.replace(cfg, policy=policy)) == {"policy", "preferences",
                                                                                "base_samples"}
    prefs = dataclasses.replace(cfg.preferences, seed=9)
    assert _changed(keys_of, cfg, dataclasses.replace(cfg, preferences=prefs)) == {"preferences"}
    for change in ({"pairing": "equal_length"}, {"max_pairs_per_prompt": 1}):
        prefs = dataclasses.replace(cfg.preferences, **change)
        assert _changed(keys_of, cfg, dataclasses.replace(cfg, preferences=prefs)) == {"preferences"}
    pool = dataclasses.replace(cfg.pool, temperature=0.7)
    assert _changed(keys_of, cfg, dataclasses.replace(cfg, pool=pool)) == {"base_samples"}
    assert _changed(keys_of, cfg, dataclasses.replace(cfg, summary_prompts=3)) == {"base_samples"}
    prompts = dataclasses.replace(cfg.prompts, max_words=6)
    assert _changed(keys_of, cfg, dataclasses.replace(cfg, prompts=prompts)) == {"prompts", "preferences",
                                                                                  "base_samples"}
    tok = dataclasses.replace(cfg.tokenizer, vocab_size=400)
    assert _changed(keys_of, cfg, dataclasses.replace(cfg, tokenizer=tok)) == set(KINDS) - {"corpus", "prompts"}


def test_settings_that_leave_every_artifact_alone_are_in_no_key(keys_of, corpus_file):
    cfg = tiny_config(corpus_file)
    # the dial's markers are planted as pairs are loaded; sampling does not depend on the batch size
    # (each row draws its own stream) nor on threads; the name is informational
    prefs = dataclasses.replace(cfg.preferences, markers=0.75)
    for other in (dataclasses.replace(cfg, preferences=prefs), dataclasses.replace(cfg, sample_batch_size=7),
                  dataclasses.replace(cfg, num_threads=1), dataclasses.replace(cfg, name="renamed")):
        assert _changed(keys_of, cfg, other) == set()


def test_each_backbone_has_its_own_key_by_seed(keys_of, corpus_file):
    cfg = tiny_config(corpus_file)
    _, seen = keys_of(cfg)
    assert [k["seed"] for k in seen["backbone"]] == [0, 1]
    more = dataclasses.replace(cfg, backbones=dataclasses.replace(cfg.backbones, seeds=(0, 1, 5)))
    _, seen_more = keys_of(more)
    assert seen_more["backbone"][:2] == seen["backbone"]  # the first two backbones are reused
    assert seen_more["policy"] == seen["policy"]


# ------------------------------------------------------------------ prompt extraction
def _items(*texts):
    return [CorpusItem(id=f"i{n}", text=t, split="eval", source="s") for n, t in enumerate(texts)]


def test_extract_prompts_by_hand():
    cfg = PromptConfig(min_words=3, max_words=3, min_continuation_words=2)
    df = wmod.extract_prompts(_items("a b c d e", "a b c d", "a b c x y", "p q r s t u"), cfg)
    # 'a b c d' leaves 1 word (< 2); 'a b c x y' repeats the opening 'a b c'
    assert df.to_dict("records") == [{"id": "i0", "prompt": "a b c", "reference": " d e"},
                                     {"id": "i3", "prompt": "p q r", "reference": " s t u"}]
    assert list(wmod.extract_prompts([], cfg).columns) == ["id", "prompt", "reference"]


def test_extract_prompts_draws_each_opening_length_in_range():
    cfg = PromptConfig(min_words=2, max_words=4, min_continuation_words=1)
    items = _items(*[f"w{i} x{i} y{i} z{i} v{i} u{i}" for i in range(60)])
    df = wmod.extract_prompts(items, cfg)
    lengths = df["prompt"].str.split().str.len()
    assert set(lengths) == {2, 3, 4} and len(df) == 60
    for it, (_, row) in zip(items, df.iterrows(), strict=True):
        assert row["prompt"] + row["reference"] == it.text  # opening + continuation is the item
    assert wmod.extract_prompts(items, cfg).equals(df)  # a hash of the item, not a random draw


# ------------------------------------------------------------------ the summary's gold statistics
def test_gold_stats_by_hand(corpus_file):
    cfg = _gold(tiny_config(corpus_file), design="lexical")
    df = pd.DataFrame({"gold": [0.0, 1.0, 2.0, 3.0, 4.0], "n_words": [5, 10, 15, 16, 20],
                       "stopped": [True, False, True, True, False], "valence": [0.0, 0.5, 0.0, 1.0, 0.0],
                       "overlap": [0.2, 0.2, 0.2, 0.2, 0.2], "repetition": [0.0] * 5})
    s = wmod._gold_stats(df, cfg)
    assert s["samples"] == 5 and s["gold_mean"] == pytest.approx(2.0)
    assert s["gold_std"] == pytest.approx(np.sqrt(2.5))  # ddof 1: 10 / 4
    assert (s["gold_q10"], s["gold_q50"], s["gold_q90"]) == pytest.approx((0.4, 2.0, 3.6))  # linear quantiles
    assert s["words_mean"] == pytest.approx(13.2) and s["words_q95"] == pytest.approx(16 + 0.8 * 4)
    assert s["over_max_words_frac"] == pytest.approx(0.4)  # 16 and 20 are over max_words = 15
    assert s["stopped_frac"] == pytest.approx(0.6)
    assert (s["valence_mean"], s["valence_zero_frac"]) == pytest.approx((0.3, 0.6))
    assert (s["repetition_mean"], s["repetition_zero_frac"]) == (0.0, 1.0)
    assert "sentiment_mean" not in s  # not an active term of the lexical design
    one = wmod._gold_stats(df.head(1), cfg)
    assert one["gold_std"] == 0.0
