"""Fixtures for rewardherd.models tests: untrained tiny ensembles built locally.

Scoring, aggregation and manifest behaviour do not need trained members, so these
fixtures seed a fresh score head per member over one tiny GPT-2 backbone (fast);
training is covered in tests/training.
"""

import pytest
import torch

from rewardherd.models import Ensemble, Manifest, Member, MemberInfo
from rewardherd.models.tiny import build_saved_backbones

# Deliberately different per-member statistics so standardization is visible.
STATS = [
    {"mean": 0.25, "std": 0.5, "n": 40},
    {"mean": -0.5, "std": 2.0, "n": 40},
    {"mean": 1.0, "std": 0.75, "n": 40},
]


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory):
    """Path of one tiny GPT-2 backbone + byte-level BPE tokenizer, saved locally."""
    (path,) = build_saved_backbones(tmp_path_factory.mktemp("models_backbone"), [0])
    return path


def _member(backbone, i: int) -> Member:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    tok = AutoTokenizer.from_pretrained(backbone)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "score.weight newly initialized" is expected here
    try:
        torch.manual_seed(100 + i)  # the score head is what differs between members
        model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tok.pad_token_id
    model.eval()
    info = MemberInfo(
        name=f"member_{i}",
        path=f"member_{i}",
        backbone=str(backbone),
        finetune_seed=i,
        pretrain_seed=0,
        heldout_accuracy=0.5,
        n_heldout_pairs=20,
        standardization=dict(STATS[i]),
        train_config={"lr": 1e-3},
    )
    return Member(info, model, tok)


@pytest.fixture(scope="session")
def make_ensemble(tiny_backbone):
    """Factory: an in-memory m-member Ensemble (m <= 3) over the tiny backbone."""

    def _make(m: int = 3, max_length: int | None = 64) -> Ensemble:
        members = [_member(tiny_backbone, i) for i in range(m)]
        manifest = Manifest(kind="finetune", members=[x.info for x in members], max_length=max_length)
        return Ensemble(members, manifest)

    return _make


@pytest.fixture(scope="session")
def ensemble(make_ensemble):
    """A shared 3-member ensemble; tests must not mutate it."""
    return make_ensemble(3)


@pytest.fixture
def saved_ensemble(tmp_path, make_ensemble):
    """A fresh 2-member ensemble saved under tmp_path (tests may corrupt it)."""
    return make_ensemble(2).save(tmp_path / "ens")


@pytest.fixture(scope="session")
def texts():
    """Prompts and responses of varied lengths (so length bucketing reorders them)."""
    prompts = [f"item {i}: " for i in range(9)]
    responses = [
        "good",
        "bad awful sad terrible cruel dark cold bad awful sad",
        "happy kind",
        "the quick brown fox jumps over the lazy dog again and again",
        "warm",
        "cold dark",
        "a b c d e f g h i j k l m n o p",
        "wonderful bright warm kind",
        "0 1 2 3",
    ]
    return prompts, responses
