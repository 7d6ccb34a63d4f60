"""Fixtures for the world tests: a synthetic corpus, so nothing depends on Debian's fortunes."""

from __future__ import annotations

import itertools
import random

import pytest

from rewardherd.world.config import (
    BackbonesConfig,
    CorpusConfig,
    LMConfig,
    PolicyConfig,
    WorldConfig,
    world_config,
)

_SUBJECTS = ["The old dog", "A happy child", "My neighbour", "The little bird", "Every teacher",
             "The lonely king", "Our best friend", "A tired farmer", "The young poet", "Her sister"]
_VERBS = ["loves", "hates", "finds", "remembers", "paints", "sings about", "dreams of", "fears",
          "builds", "forgets"]
_OBJECTS = ["a bright morning", "the dark forest", "a wonderful song", "the broken bridge",
            "a good book", "the terrible storm", "a kind word", "the quiet river",
            "a beautiful garden", "the sad story"]
_TAILS = ["and smiles.", "but never tells anyone.", "because life is good.", "while the rain falls.",
          "with great joy and hope.", "and then goes home to sleep."]


def synthetic_items(n: int = 400, seed: int = 0) -> list[str]:
    """Distinct template sentences, two or three to an item."""
    rng = random.Random(seed)
    sentences = [f"{s} {v} {o} {t}" for s, v, o, t in
                 itertools.product(_SUBJECTS, _VERBS, _OBJECTS, _TAILS)]
    rng.shuffle(sentences)
    return [" ".join(sentences[3 * i:3 * i + rng.choice((2, 3))]) for i in range(n)]


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n%\n".join(synthetic_items()) + "\n")
    return path


def tiny_config(corpus_path, **policy_lm) -> WorldConfig:
    """The smoke profile on the synthetic corpus, with even fewer steps."""
    base = world_config("smoke")
    lm = LMConfig(n_layer=1, n_embd=32, n_head=2, block_size=96, steps=8, batch_size=4,
                  warmup_steps=1, eval_batches=1)
    return WorldConfig(
        name="test",
        corpus=CorpusConfig(path=str(corpus_path), val_fraction=0.05, pref_train_fraction=0.15,
                            pref_heldout_fraction=0.08, eval_fraction=0.08),
        tokenizer=base.tokenizer,
        backbones=BackbonesConfig(lm=lm, seeds=(0, 1)),
        policy=PolicyConfig(lm=LMConfig(**{**lm.__dict__, **policy_lm})),
        prompts=base.prompts,
        preferences=base.preferences,
        pool=base.pool,
        gold=base.gold,
        summary_prompts=6,
        summary_samples_per_prompt=2,
        sample_batch_size=64,
    )
