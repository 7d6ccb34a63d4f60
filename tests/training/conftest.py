"""Fixtures for training tests: tiny backbones, rule-labelled data, trained ensembles.

The trained ensembles are session-scoped (each takes a few seconds on CPU); tests
must treat their directories as read-only and copy them before changing anything.
"""

import pytest

from rewardherd.data import split_by_prompt
from rewardherd.models.tiny import build_saved_backbones, rule_labelled_pairs
from rewardherd.training import EnsembleConfig, TrainConfig, train_ensemble

#: Reaches held-out accuracy 1.0 on the rule data in a few seconds per member.
FAST = TrainConfig(lr=2e-3, epochs=3, batch_size=16, max_length=64)


@pytest.fixture(scope="session")
def fast():
    """The fast TrainConfig the trained fixtures use."""
    return FAST


@pytest.fixture(scope="session")
def backbones(tmp_path_factory):
    """Two tiny GPT-2 backbones (init seeds 0 and 1) sharing one tokenizer."""
    return build_saved_backbones(tmp_path_factory.mktemp("training_backbones"), [0, 1])


@pytest.fixture(scope="session")
def rule_split():
    """(train, heldout) rule-labelled pairs, split by prompt hash."""
    pairs = rule_labelled_pairs(200, seed=0)
    train, heldout = split_by_prompt(pairs, heldout_fraction=0.2)
    assert len(heldout) >= 25
    return train, heldout


@pytest.fixture(scope="session")
def finetune_ensemble(tmp_path_factory, backbones, rule_split):
    """A trained 3-member finetune-seed ensemble: (directory, manifest, EnsembleConfig)."""
    out = tmp_path_factory.mktemp("finetune") / "ens"
    cfg = EnsembleConfig(kind="finetune", backbones=(str(backbones[0]),), n_members=3)
    manifest = train_ensemble(*rule_split, out, cfg, FAST, progress=False)
    return out, manifest, cfg


@pytest.fixture(scope="session")
def pretrain_ensemble(tmp_path_factory, backbones, rule_split):
    """A trained 2-member pretrain-seed ensemble (two backbones, init seeds 0 and 1)."""
    out = tmp_path_factory.mktemp("pretrain") / "ens"
    cfg = EnsembleConfig(kind="pretrain", backbones=tuple(str(b) for b in backbones), pretrain_seeds=(0, 1))
    manifest = train_ensemble(*rule_split, out, cfg, FAST, progress=False)
    return out, manifest, cfg
