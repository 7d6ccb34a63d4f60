"""WARM (rewardherd.training.warm): averaging members into one HF member, and refusing
members that do not share an initialization. Untrained tiny members keep this fast:
the checks and the arithmetic do not need training."""

import json
import shutil

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rewardherd.cli import app
from rewardherd.data import write_preferences
from rewardherd.models import Ensemble, Manifest, Member, MemberInfo
from rewardherd.models.tiny import (
    build_backbone,
    build_tokenizer,
    rule_labelled_pairs,
    save_backbone,
)
from rewardherd.training.warm import WarmError, warm_average

PROMPTS = [f"item {i}: " for i in range(6)]
RESPONSES = ["good kind", "bad cruel cold", "happy", "sad dark awful terrible", "warm bright", "a b c"]


def _member(backbone, i: int, head_seed: int, pretrain_seed=0, train_config=None) -> Member:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    tok = AutoTokenizer.from_pretrained(backbone)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        torch.manual_seed(head_seed)  # the score head is what differs between members
        model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tok.pad_token_id
    model.eval()
    info = MemberInfo(name=f"member_{i}", path=f"member_{i}", backbone=str(backbone), finetune_seed=i,
                      pretrain_seed=pretrain_seed, standardization={"mean": 0.0, "std": 1.0, "n": 10},
                      train_config=train_config if train_config is not None else {"shared_head_init": True})
    return Member(info, model, tok)


def _save(members, path, kind="finetune"):
    manifest = Manifest(kind=kind, members=[m.info for m in members], max_length=64)
    return Ensemble(members, manifest).save(path)


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    tok = build_tokenizer()
    return save_backbone(build_backbone(tok, 0), tok, tmp_path_factory.mktemp("warm") / "bb")


def test_warm_of_identical_members_is_the_member(backbone, tmp_path):
    src = _save([_member(backbone, i, head_seed=7) for i in range(3)], tmp_path / "ens")
    heldout = rule_labelled_pairs(12, seed=3)
    manifest = warm_average(src, tmp_path / "warm", heldout_pairs=heldout)
    member = Ensemble.load(src)
    warm = Ensemble.load(tmp_path / "warm")
    assert warm.names == ["warm"] and len(warm) == 1
    np.testing.assert_array_equal(warm.score(PROMPTS, RESPONSES)[0], member.score(PROMPTS, RESPONSES)[0])
    info = manifest.members[0]
    assert info.path == "." and info.finetune_seed == -1 and info.standardization["n"] == 24
    assert info.heldout_accuracy is not None
    assert manifest.extra["warm"]["members"] == ["member_0", "member_1", "member_2"]
    # the directory is also a plain HF model that TRL / OpenRLHF / RewardBench can load
    from transformers import AutoModelForSequenceClassification

    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "warm", use_safetensors=True)
    assert hf.config.num_labels == 1
    assert (tmp_path / "warm" / "tokenizer.json").exists()


def test_warm_of_members_differing_in_the_head_is_the_mean_prediction(backbone, tmp_path):
    # Same backbone weights, heads from seeds 1 and 2: the score is linear in the head,
    # so the averaged model's raw score equals the members' mean raw score.
    src = _save([_member(backbone, 0, head_seed=1), _member(backbone, 1, head_seed=2)], tmp_path / "ens")
    warm_average(src, tmp_path / "warm")
    raw = Ensemble.load(src).score(PROMPTS, RESPONSES)
    got = Ensemble.load(tmp_path / "warm").score(PROMPTS, RESPONSES)[0]
    assert not np.allclose(raw[0], raw[1])
    np.testing.assert_allclose(got, raw.mean(axis=0), rtol=1e-5, atol=1e-6)


def test_warm_refuses_pretrain_seed_ensembles(backbone, tmp_path):
    src = _save([_member(backbone, 0, 1, pretrain_seed=0), _member(backbone, 1, 1, pretrain_seed=1)],
                tmp_path / "ens", kind="pretrain")
    with pytest.raises(WarmError, match="kind .pretrain."):
        warm_average(src, tmp_path / "warm")
    assert not (tmp_path / "warm").exists()


def test_warm_refuses_members_from_other_initializations(backbone, tmp_path):
    a, b = _member(backbone, 0, 1), _member(backbone, 1, 1, pretrain_seed=5)
    src = _save([a, b], tmp_path / "ens", kind="explicit")
    with pytest.raises(WarmError, match=r"member 'member_1' field 'pretrain_seed' is 5"):
        warm_average(src, tmp_path / "warm")
    b.info.pretrain_seed, b.info.backbone = 0, "/elsewhere/backbone"
    src = _save([a, b], tmp_path / "ens2", kind="explicit")
    with pytest.raises(WarmError, match=r"member 'member_1' field 'backbone'"):
        warm_average(src, tmp_path / "warm")


def test_warm_refuses_members_of_another_architecture(backbone, tmp_path):
    tok = build_tokenizer()
    narrow = save_backbone(build_backbone(tok, 0, n_embd=16), tok, tmp_path / "narrow")
    a, b = _member(backbone, 0, 1), _member(narrow, 1, 1)
    b.info.backbone = a.info.backbone  # the manifest claims one backbone; the weights disagree
    src = _save([a, b], tmp_path / "ens")
    with pytest.raises(WarmError, match=r"member 'member_1' field 'n_embd'"):
        warm_average(src, tmp_path / "warm")
    # same config, different tensors: caught by the parameter check, naming the tensor
    cfg = json.loads((src / "member_0" / "config.json").read_text())
    (src / "member_1" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WarmError, match=r"do not share an architecture.*shape"):
        warm_average(src, tmp_path / "warm")


def test_warm_never_overwrites(backbone, tmp_path):
    src = _save([_member(backbone, i, 3) for i in range(2)], tmp_path / "ens")
    (tmp_path / "warm").mkdir()
    (tmp_path / "warm" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        warm_average(src, tmp_path / "warm")
    assert (tmp_path / "warm" / "keep.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="outside"):
        warm_average(src, src / "warm", overwrite=True)


def test_warm_cli(backbone, tmp_path):
    src = _save([_member(backbone, i, 3) for i in range(2)], tmp_path / "ens")
    data = write_preferences(rule_labelled_pairs(10, seed=1), tmp_path / "held.jsonl")
    runner = CliRunner()
    r = runner.invoke(app, ["warm", str(src), "-o", str(tmp_path / "w"), "--data", str(data)])
    assert r.exit_code == 0, r.output
    assert "averaged 2 members" in r.output and "held-out accuracy" in r.output
    r = runner.invoke(app, ["warm", str(src), "-o", str(tmp_path / "w")])
    assert r.exit_code == 2 and "exists" in r.output and "Traceback" not in r.output
    shutil.rmtree(src / "member_1")
    r = runner.invoke(app, ["warm", str(src), "-o", str(tmp_path / "w2")])
    assert r.exit_code == 2 and "member_1" in r.output and "Traceback" not in r.output


def test_shared_head_init_gives_every_member_the_same_head(backbone):
    from rewardherd.training import MemberSpec, TrainConfig
    from rewardherd.training.member import _load_for_training

    def head(seed, shared):
        model, _ = _load_for_training(MemberSpec(str(backbone), seed), TrainConfig(shared_head_init=shared), seed)
        return model.score.weight.detach().clone()

    assert torch.equal(head(0, True), head(1, True))
    assert not torch.equal(head(0, False), head(1, False))
