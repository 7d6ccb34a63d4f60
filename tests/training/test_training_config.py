"""TrainConfig / EnsembleConfig validation and member plans (no training)."""

import pytest

from rewardherd.training import EnsembleConfig, MemberSpec, TrainConfig


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
    specs = EnsembleConfig(kind="finetune_seeds", backbones=("b",), n_members=3).member_specs()
    assert specs == [MemberSpec("b", 0), MemberSpec("b", 1), MemberSpec("b", 2)]
    specs = EnsembleConfig(backbones=("b",), n_members=2, seeds=(7, 9)).member_specs()
    assert [s.finetune_seed for s in specs] == [7, 9]
    with pytest.raises(ValueError, match="seeds"):
        EnsembleConfig(backbones=("b",), n_members=3, seeds=(1,)).member_specs()


def test_pretrain_seeds_plan():
    cfg = EnsembleConfig(kind="pretrain_seeds", backbones=("b0", "b1"), pretrain_seeds=(0, 1))
    assert cfg.member_specs() == [MemberSpec("b0", 0, 0), MemberSpec("b1", 0, 1)]
    cfg = EnsembleConfig(kind="pretrain_seeds", backbones=("b0", "b1"), seeds=(3,))
    assert cfg.member_specs() == [MemberSpec("b0", 3), MemberSpec("b1", 3)]
    with pytest.raises(ValueError, match="pretrain_seeds"):
        EnsembleConfig(kind="pretrain_seeds", backbones=("b0", "b1"), pretrain_seeds=(0,)).member_specs()
    with pytest.raises(ValueError, match="seeds"):
        EnsembleConfig(kind="pretrain_seeds", backbones=("b0", "b1", "b2"), seeds=(1, 2)).member_specs()


def test_explicit_plan():
    members = (MemberSpec("a", 1), MemberSpec("b", 2, 5))
    assert EnsembleConfig(kind="explicit", members=members).member_specs() == list(members)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "finetune_seeds", "backbones": ()}, "exactly one backbone"),
        ({"kind": "finetune_seeds", "backbones": ("a", "b")}, "exactly one backbone"),
        ({"kind": "pretrain_seeds", "backbones": ()}, "one backbone per member"),
        ({"kind": "explicit"}, "members list"),
        ({"backbones": ("a",), "n_members": 0}, "n_members"),
    ],
)
def test_ensemble_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EnsembleConfig(**kwargs)
