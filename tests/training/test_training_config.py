"""TrainConfig / EnsembleConfig validation and member plans (no training)."""

import logging

import pytest

from rewardherd.config import ConfigError, from_dict
from rewardherd.schema import TRAIN_KINDS, hashed_kind
from rewardherd.training import EnsembleConfig, MemberSpec, TrainConfig
from rewardherd.training.ensemble import plan_hash


def test_train_config_defaults_follow_the_issue():
    c = TrainConfig()
    assert c.center_coef == 0.01
    assert c.bf16 is False
    assert c.lora_r is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": 0.0}, "lr"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_length": 1}, "max_length"),
        ({"center_coef": -0.1}, "center_coef"),
        ({"heldout_fraction": 0.0}, "heldout_fraction"),
        ({"heldout_fraction": 1.0}, "heldout_fraction"),
        ({"lora_r": 0}, "lora_r"),
    ],
)
def test_train_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_finetune_seeds_plan():
    specs = EnsembleConfig(kind="finetune", backbones=("b",), n_members=3).member_specs()
    assert specs == [MemberSpec("b", 0), MemberSpec("b", 1), MemberSpec("b", 2)]
    specs = EnsembleConfig(backbones=("b",), n_members=2, seeds=(7, 9)).member_specs()
    assert [s.finetune_seed for s in specs] == [7, 9]
    with pytest.raises(ValueError, match="seeds"):
        EnsembleConfig(backbones=("b",), n_members=3, seeds=(1,)).member_specs()


def test_pretrain_seeds_plan():
    cfg = EnsembleConfig(kind="pretrain", backbones=("b0", "b1"), pretrain_seeds=(0, 1))
    assert cfg.member_specs() == [MemberSpec("b0", 0, 0), MemberSpec("b1", 0, 1)]
    cfg = EnsembleConfig(kind="pretrain", backbones=("b0", "b1"), seeds=(3,))
    assert cfg.member_specs() == [MemberSpec("b0", 3), MemberSpec("b1", 3)]
    with pytest.raises(ValueError, match="pretrain_seeds"):
        EnsembleConfig(kind="pretrain", backbones=("b0", "b1"), pretrain_seeds=(0,)).member_specs()
    with pytest.raises(ValueError, match="seeds"):
        EnsembleConfig(kind="pretrain", backbones=("b0", "b1", "b2"), seeds=(1, 2)).member_specs()


def test_explicit_plan():
    members = (MemberSpec("a", 1), MemberSpec("b", 2, 5))
    assert EnsembleConfig(kind="explicit", members=members).member_specs() == list(members)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "finetune", "backbones": ()}, "exactly one backbone"),
        ({"kind": "finetune", "backbones": ("a", "b")}, "exactly one backbone"),
        ({"kind": "pretrain", "backbones": ()}, "one backbone per member"),
        ({"kind": "explicit"}, "members list"),
        ({"backbones": ("a",), "n_members": 0}, "n_members"),
    ],
)
def test_ensemble_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EnsembleConfig(**kwargs)


@pytest.mark.parametrize("old, new", [("finetune_seeds", "finetune"), ("pretrain_seeds", "pretrain")])
def test_old_kind_names_are_aliases_that_say_so(old, new, caplog):
    with caplog.at_level(logging.WARNING, logger="rewardherd"):
        cfg = from_dict(EnsembleConfig, {"kind": old, "backbones": ["b"]}, "ensemble")
    assert cfg.kind == new
    assert f"{old!r} is an old name" in caplog.text and repr(new) in caplog.text
    assert cfg.member_specs() == EnsembleConfig(kind=new, backbones=("b",)).member_specs()


def test_unknown_kind_names_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"ensemble: kind: .single_seed. is not one of \[.finetune., .pretrain., .explicit."):
        from_dict(EnsembleConfig, {"kind": "single_seed", "backbones": ["b"]}, "ensemble")
    assert TRAIN_KINDS == ("finetune", "pretrain", "explicit")


def test_plan_hash_keeps_the_pre_rename_kind_so_old_ensembles_resume():
    specs, tc = [MemberSpec("b", 0)], TrainConfig()
    assert hashed_kind("finetune") == "finetune_seeds" and hashed_kind("explicit") == "explicit"
    assert plan_hash(specs, tc, "fp", "finetune") == plan_hash(specs, tc, "fp", "finetune_seeds")
    assert plan_hash(specs, tc, "fp", "finetune") != plan_hash(specs, tc, "fp", "pretrain")
