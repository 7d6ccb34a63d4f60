"""Fixtures for the reliability regressions (issue 11): a tiny saved ensemble, data,
and a CliRunner helper. Members are untrained (seeded score heads over one tiny
backbone): every case here is about refusing bad input, not about scores."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from rewardherd.data import write_preferences
from rewardherd.models import Ensemble, Manifest, Member, MemberInfo
from rewardherd.models.tiny import build_saved_backbones, rule_labelled_pairs

STATS = [{"mean": 0.25, "std": 0.5, "n": 40}, {"mean": -0.5, "std": 2.0, "n": 40}, {"mean": 1.0, "std": 0.75, "n": 40}]


def _member(backbone: Path, i: int) -> Member:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rewardherd.models.multihead import quiet_transformers

    tok = AutoTokenizer.from_pretrained(backbone)
    torch.manual_seed(100 + i)  # the score head is what differs between members
    with quiet_transformers():  # "score.weight newly initialized" is expected here
        model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tok.pad_token_id
    info = MemberInfo(name=f"member_{i}", path=f"member_{i}", backbone=str(backbone), finetune_seed=i,
                      pretrain_seed=0, heldout_accuracy=0.5, n_heldout_pairs=20, standardization=dict(STATS[i]))
    return Member(info, model.eval(), tok)


@pytest.fixture(scope="session")
def work(tmp_path_factory) -> dict:
    """A tiny backbone, a saved 3-member ensemble, preference data and score items."""
    root = tmp_path_factory.mktemp("reliability")
    (backbone,) = build_saved_backbones(root, [0])
    members = [_member(backbone, i) for i in range(3)]
    manifest = Manifest(kind="finetune", members=[m.info for m in members], max_length=64)
    ens_dir = Ensemble(members, manifest).save(root / "X")
    data = write_preferences(rule_labelled_pairs(60, seed=0), root / "prefs.jsonl")
    items = root / "items.jsonl"
    items.write_text(json.dumps({"id": "a", "prompt": "item 1: ", "response": "good kind"}) + "\n"
                     + json.dumps({"id": "b", "prompt": "item 2: ", "response": "bad sad"}) + "\n")
    return {"root": root, "backbone": backbone, "ens": ens_dir, "data": data, "items": items}


@pytest.fixture
def ens_copy(work, tmp_path):
    """A private copy of the saved ensemble that a test may damage."""
    return Path(shutil.copytree(work["ens"], tmp_path / "X"))
