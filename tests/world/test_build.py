"""End-to-end build of a miniature world (synthetic corpus, tiny models)."""

import dataclasses
import json
import pickle

import pandas as pd
import pytest

from rewardherd.world.cache import MARKER
from rewardherd.world.world import World, build_world

from .conftest import tiny_config


def _entries(cache):
    return {p.parent.name + "/" + p.name for p in cache.glob("*/*") if (p / MARKER).exists()}


@pytest.fixture(scope="module")
def built(corpus_file, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return build_world(tiny_config(corpus_file), cache, progress=False), cache


def test_world_has_every_artifact(built):
    world, cache = built
    from transformers import AutoModelForSequenceClassification

    assert len(world.backbone_dirs) == 2 and len(set(world.backbone_dirs)) == 2
    for p in (world.train_preferences, world.heldout_preferences, world.train_prompts,
              world.eval_prompts, world.base_samples, world.preference_samples):
        assert p.is_file(), p
    rm = AutoModelForSequenceClassification.from_pretrained(str(world.backbone_dirs[0]), num_labels=1)
    assert rm.config.pad_token_id == world.tokenizer.pad_token_id != world.tokenizer.eos_token_id
    # Preference files are user-format data.
    pairs = world.load_preferences("train")
    assert pairs and all(p.chosen != p.rejected for p in pairs)
    rows = [json.loads(line) for line in world.train_preferences.read_text().splitlines()]
    assert set(rows[0]) >= {"id", "prompt", "chosen", "rejected"}
    # Prompt sets are disjoint.
    ids = {s: set(world.load_prompts(s)["id"]) for s in ("train", "heldout", "eval")}
    assert not (ids["train"] & ids["eval"]) and not (ids["train"] & ids["heldout"])
    s = world.summary
    assert s["policy"]["val_perplexity"] > 1 and len(s["backbones"]) == 2
    assert s["preferences"]["train"]["pairs"] == len(pairs)
    assert "gold_mean" in s["base_samples"]
    # The preference setting is shorter than the pool setting.
    pref = world.sample(["The old dog"], 2, setting="preference")
    assert pref["n_tokens"].max() <= world.config.preferences.sampling.max_new_tokens


def test_warm_build_rebuilds_nothing(built, corpus_file):
    world, cache = built
    before = _entries(cache)
    again = build_world(tiny_config(corpus_file), cache, progress=False)
    assert _entries(cache) == before
    assert again.policy_dir == world.policy_dir and again.summary["policy"] == world.summary["policy"]


def test_changed_policy_config_rebuilds_only_downstream(built, corpus_file):
    world, cache = built
    before = _entries(cache)
    changed = build_world(tiny_config(corpus_file, steps=9), cache, progress=False)
    new = _entries(cache) - before
    assert {e.split("/")[0] for e in new} == {"policy", "preferences", "base_samples"}
    assert changed.tokenizer_dir == world.tokenizer_dir
    assert changed.backbone_dirs == world.backbone_dirs
    assert changed.policy_dir != world.policy_dir


def test_corrupt_artifact_is_rebuilt(built, corpus_file):
    world, cache = built
    weights = world.backbone_dirs[1] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])  # truncated: a partial write
    (world.tokenizer_dir / MARKER).unlink()  # a build that died before its marker
    again = build_world(tiny_config(corpus_file), cache, progress=False)
    assert again.backbone_dirs == world.backbone_dirs and again.tokenizer_dir == world.tokenizer_dir
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(str(again.backbone_dirs[1]))
    assert (again.tokenizer_dir / MARKER).exists()


def test_config_is_not_mutated(corpus_file):
    cfg = tiny_config(corpus_file)
    assert dataclasses.replace(cfg) == cfg


def test_a_handle_builds_only_what_it_needs(corpus_file, tmp_path):
    world = World(tiny_config(corpus_file), tmp_path)
    assert not _entries(tmp_path)  # nothing is built before first use
    assert len(world.load_prompts("eval")) > 0
    assert {e.split("/")[0] for e in _entries(tmp_path)} == {"corpus", "prompts"}


def test_pickled_world_drops_loaded_models_and_keeps_its_artifacts(built):
    world, _ = built
    assert world.tokenizer is not None and world.gold is not None  # loaded
    clone = pickle.loads(pickle.dumps(world))
    assert "tokenizer" not in vars(clone) and "gold" not in vars(clone)
    assert "backbone_dirs" in vars(clone)  # handles travel: a worker neither builds nor verifies
    assert clone.backbone_dirs == world.backbone_dirs and clone.summary == world.summary
    assert clone.tokenizer.pad_token_id == world.tokenizer.pad_token_id


@pytest.mark.parametrize("design", ["lexical"])
def test_another_gold_design_rebuilds_only_the_gold_labelled_artifacts(built, corpus_file, design):
    """The herding design is the module's world; another design reuses every model and
    relabels (and resamples) only the artifacts that carry gold."""
    world, cache = built
    before = _entries(cache)
    cfg = tiny_config(corpus_file)
    other = build_world(dataclasses.replace(cfg, gold=dataclasses.replace(cfg.gold, design=design)),
                        cache, progress=False)
    assert {e.split("/")[0] for e in _entries(cache) - before} == {"preferences", "base_samples"}
    assert other.policy_dir == world.policy_dir and other.backbone_dirs == world.backbone_dirs
    import pandas as pd

    samples = pd.read_parquet(other.preference_samples)
    assert {"valence", "overlap", "repetition", "n_words"} <= set(samples.columns)
    assert "relevance" not in samples.columns  # weight 0: never computed
    s = other.summary
    assert "valence_mean" in s["base_samples"] and "over_max_words_frac" in s["preferences"]["train"]


def test_teacher_design_builds_its_teacher_and_labels_with_it(built, corpus_file):
    """Design teacher: the world builds a teacher backbone (its own seed and steps) and the
    teacher artifact, and relabels only the gold-carrying artifacts; gold is the calibrated
    teacher score (no short hinge) minus the tail, and ignores its batch mates."""
    import numpy as np

    from rewardherd.world.gold import TeacherModel

    world, cache = built
    before = _entries(cache)
    cfg = tiny_config(corpus_file)
    teacher = dataclasses.replace(cfg.gold.teacher, steps=4, samples_per_prompt=3, epochs=1.0)
    tcfg = dataclasses.replace(cfg, gold=dataclasses.replace(cfg.gold, design="teacher", teacher=teacher))
    other = build_world(tcfg, cache, progress=False)
    assert {e.split("/")[0] for e in _entries(cache) - before} == {"backbone", "teacher", "preferences",
                                                                   "base_samples"}
    assert other.backbone_dirs == world.backbone_dirs and other.policy_dir == world.policy_dir
    meta = json.loads((other.teacher_dir / "teacher.json").read_text())
    assert meta["train_pairs"] > 0 and 0.0 <= meta["heldout_accuracy"] <= 1.0 and meta["scale"] > 0
    assert other.summary["teacher"]["train_pairs"] == meta["train_pairs"]
    assert other.gold_key != world.gold_key
    # gold = scale * raw + offset - shared_error * long_weight * words beyond max_words
    prompts, responses = ["The old dog", "A happy child", "My neighbour"], [
        "loves a good book", "", " ".join(["and smiles"] * 12)]
    g = other.gold.components(prompts, responses)
    raw = TeacherModel(other.teacher_dir).raw(prompts[::2], responses[::2])
    n = g["n_words"].to_numpy()
    tail = tcfg.gold.shared_error * tcfg.gold.long_weight * np.maximum(0.0, n - tcfg.gold.max_words)
    np.testing.assert_allclose(g["teacher"].to_numpy()[::2], meta["scale"] * raw + meta["offset"], rtol=1e-12)
    assert g["teacher"][1] == 0.0  # an empty response scores 0
    np.testing.assert_allclose(g["gold"].to_numpy(), g["teacher"].to_numpy() - tail, rtol=1e-12)
    assert tail[2] > 0
    # the same text scores the same alone, among others, and from a fresh model
    alone = TeacherModel(other.teacher_dir).score(prompts[:1], responses[:1])
    assert alone[0] == g["teacher"][0]
    # the preference labels follow the teacher's gold
    pairs = pd.read_parquet(other.preferences_dir / "train_pairs.parquet")
    assert (pairs["gold_chosen"] > pairs["gold_rejected"]).all()
    fresh = other.gold.components(pairs["prompt"].tolist(), pairs["chosen"].str.strip().tolist())
    np.testing.assert_allclose(fresh["gold"].to_numpy(), pairs["gold_chosen"].to_numpy(), rtol=1e-12)


def test_formula_gold_refuses_a_teacher_it_does_not_have():
    from rewardherd.world.config import GoldConfig
    from rewardherd.world.gold import GoldReward

    with pytest.raises(ValueError, match="needs its teacher"):
        GoldReward(GoldConfig(design="teacher"))
    assert GoldReward(GoldConfig()).key == GoldReward(GoldConfig(teacher_weight=None)).key
