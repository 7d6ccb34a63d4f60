"""rewardherd.config: field docs, dict/YAML loading, dotted overrides, hashing."""

from dataclasses import dataclass, field

import pytest

from rewardherd.config import (
    ConfigError,
    apply_overrides,
    config_hash,
    field_docs,
    from_dict,
    load_yaml,
    resolve_profile,
    to_dict,
)
from rewardherd.studies.config import CleanConfig
from rewardherd.training import EnsembleConfig, MemberSpec, TrainConfig


@dataclass(frozen=True)
class Base:
    """A test dataclass."""

    alpha: float = 1.0
    """First line of alpha,
    continued on a second line."""
    beta: int | None = None
    undocumented: str = "x"


@dataclass(frozen=True)
class Child(Base):
    gamma: bool = False
    """Gamma flag."""
    tags: tuple[str, ...] = field(default_factory=tuple)
    """Some tags."""


# -------------------------------------------------------------- field_docs
def test_field_docs_extracts_train_config_docs():
    docs = field_docs(TrainConfig)
    assert set(docs) == {f for f in TrainConfig.__dataclass_fields__}
    assert docs["lr"] == "Peak learning rate of AdamW."
    assert docs["epochs"] == "Passes over the training pairs."
    assert docs["center_coef"].startswith("Centring coefficient eta")
    assert docs["lora_r"] == "LoRA rank; None trains the full model."
    assert all(docs.values())


def test_field_docs_extracts_ensemble_config_docs():
    docs = field_docs(EnsembleConfig)
    assert set(docs) == set(EnsembleConfig.__dataclass_fields__)
    assert docs["n_members"] == "K, the number of members (finetune)."


def test_field_docs_joins_lines_skips_undocumented_and_inherits():
    docs = field_docs(Child)
    assert docs["alpha"] == "First line of alpha, continued on a second line."
    assert "beta" not in docs and "undocumented" not in docs
    assert docs["gamma"] == "Gamma flag."
    assert docs["tags"] == "Some tags."


# --------------------------------------------------------------- from_dict
def test_from_dict_builds_and_coerces():
    c = from_dict(TrainConfig, {"lr": 1, "epochs": 2, "lora_r": None, "device": "cpu"})
    assert c == TrainConfig(lr=1.0, epochs=2.0, device="cpu")
    assert isinstance(c.lr, float)
    e = from_dict(EnsembleConfig, {"backbones": ["a"], "seeds": [3, 4, 5]})
    assert e.backbones == ("a",) and e.seeds == (3, 4, 5)
    assert from_dict(EnsembleConfig, {"backbones": "a"}).backbones == ("a",)  # scalar -> 1-tuple


def test_from_dict_nested_dataclasses():
    e = from_dict(EnsembleConfig, {"kind": "explicit", "members": [{"backbone": "a", "finetune_seed": 1},
                                                                   {"backbone": "b", "finetune_seed": 2,
                                                                    "pretrain_seed": 7}]})
    assert e.members == (MemberSpec("a", 1), MemberSpec("b", 2, 7))
    with pytest.raises(ConfigError, match=r"^run\.yaml: ensemble\.members\[1\]\.finetune_seed: expected an integer"):
        from_dict(EnsembleConfig, {"kind": "explicit", "members": [{"backbone": "a", "finetune_seed": 1},
                                                                   {"backbone": "b", "finetune_seed": "two"}]},
                  "run.yaml", "ensemble")


def test_from_dict_unknown_keys_are_errors():
    with pytest.raises(ConfigError) as e:
        from_dict(TrainConfig, {"lr": 1e-3, "learning_rate": 1e-3, "epoch": 1}, "run.yaml", "train")
    msg = str(e.value)
    assert msg.startswith("run.yaml: unknown key 'train.epoch', 'train.learning_rate'; allowed in train: ")
    assert "epochs" in msg and "batch_size" in msg


@pytest.mark.parametrize(
    "cls, data, key, what",
    [
        (TrainConfig, {"lr": "fast"}, "train.lr", "number"),
        (TrainConfig, {"lr": True}, "train.lr", "number"),
        (TrainConfig, {"batch_size": 1.5}, "train.batch_size", "integer"),
        (TrainConfig, {"batch_size": True}, "train.batch_size", "integer"),
        (TrainConfig, {"bf16": "yes"}, "train.bf16", "true/false"),
        (TrainConfig, {"lr_scheduler": 3}, "train.lr_scheduler", "string"),
        (TrainConfig, {"lora_r": "eight"}, "train.lora_r", "integer"),
        (EnsembleConfig, {"kind": "bagging", "backbones": ["a"]}, "train.kind", "not one of"),
        (EnsembleConfig, {"backbones": ["a"], "seeds": [1, "x"]}, "train.seeds[1]", "integer"),
        (CleanConfig, {"drop_between": [0.1]}, "train.drop_between", "expected 2 values, got 1"),
        (CleanConfig, {"drop_between": [0.1, "x"]}, "train.drop_between[1]", "number"),
    ],
)
def test_from_dict_type_errors_name_the_key(cls, data, key, what):
    with pytest.raises(ConfigError) as e:
        from_dict(cls, data, "run.yaml", "train")
    assert str(e.value).startswith("run.yaml: ")
    assert key in str(e.value)
    assert what in str(e.value)


def test_from_dict_validation_errors_become_config_errors():
    with pytest.raises(ConfigError, match=r"^train: lr must be > 0"):
        from_dict(TrainConfig, {"lr": -1.0}, "train")
    with pytest.raises(ConfigError, match="exactly one backbone"):
        from_dict(EnsembleConfig, {"backbones": []}, "ensemble")
    with pytest.raises(ConfigError, match="expected a mapping"):
        from_dict(TrainConfig, ["lr", 1], "train")


# -------------------------------------------------------------- overrides
def test_apply_overrides_sets_dotted_keys_and_parses_yaml_values():
    base = {"train": {"lr": 0.1, "epochs": 1}, "out": "runs/a"}
    out = apply_overrides(base, ["train.epochs=3", "ensemble.seeds=[1, 2]", "train.bf16=true", "out=runs/b",
                                 "train.lora_r=null", "ensemble.kind=pretrain", "note="])
    assert out == {
        "train": {"lr": 0.1, "epochs": 3, "bf16": True, "lora_r": None},
        "ensemble": {"seeds": [1, 2], "kind": "pretrain"},
        "out": "runs/b",
        "note": "",
    }
    assert base == {"train": {"lr": 0.1, "epochs": 1}, "out": "runs/a"}  # input not mutated
    assert from_dict(TrainConfig, out["train"]).epochs == 3.0


def test_apply_overrides_value_may_contain_equals_and_deep_keys():
    out = apply_overrides({}, ["a.b.c=x=y"])
    assert out == {"a": {"b": {"c": "x=y"}}}


def test_apply_overrides_documented_example_gives_a_float():
    """STYLE.md and rewardherd.config's docstring give `train.lr=1e-5` as the example."""
    out = apply_overrides({}, ["train.lr=1e-5"])
    assert from_dict(TrainConfig, out["train"], "train").lr == 1e-5


def test_apply_overrides_errors():
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_overrides({}, ["train.lr"])
    with pytest.raises(ConfigError, match="'train' is not a section"):
        apply_overrides({"train": 5}, ["train.lr=1"])


# -------------------------------------------------------------------- YAML
def test_load_yaml(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("train:\n  lr: 0.001\n  epochs: 2\nensemble:\n  backbones: [a]\n")
    d = load_yaml(p)
    assert from_dict(TrainConfig, d["train"], "train") == TrainConfig(lr=0.001, epochs=2.0)
    p.write_text("")
    assert load_yaml(p) == {}


def test_yaml_scientific_notation_learning_rate(tmp_path):
    """`lr: 1e-5` is how learning rates are written in experiment YAML files."""
    p = tmp_path / "run.yaml"
    p.write_text("train:\n  lr: 1e-5\n")
    assert from_dict(TrainConfig, load_yaml(p)["train"], "train").lr == 1e-5


def test_load_yaml_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [1, 2\n  epochs: 3\n")
    with pytest.raises(ConfigError) as e:
        load_yaml(bad)
    assert str(bad) in str(e.value) and "invalid YAML" in str(e.value)
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_yaml(lst)


# ----------------------------------------------------------------- hashing
def test_config_hash_is_stable_and_sensitive():
    a = TrainConfig(lr=1e-3)
    assert config_hash(a) == config_hash(TrainConfig(lr=1e-3))
    assert config_hash(a) != config_hash(TrainConfig(lr=2e-3))
    assert config_hash({"x": 1, "y": 2}) == config_hash({"y": 2, "x": 1})
    assert to_dict(EnsembleConfig(backbones=("a",)))["backbones"] == ["a"]


def test_from_dict_partial_section_keeps_the_fields_own_default():
    @dataclass(frozen=True)
    class Outer:
        inner: Base = field(default_factory=lambda: Base(alpha=5.0, beta=2))

    assert from_dict(Outer, {"inner": {"beta": 3}}).inner == Base(alpha=5.0, beta=3)


def test_apply_overrides_takes_a_mapping_too():
    assert apply_overrides({"a": {"b": 1}}, {"a.c": [1, 2]}) == {"a": {"b": 1, "c": [1, 2]}}


def test_resolve_profile_applies_profile_then_layers_then_overrides():
    profiles = {"small": {"lr": 1e-3, "epochs": 2.0}}
    data = resolve_profile(profiles, "small", {"epochs": 3.0}, overrides=["batch_size=4"])
    assert data == {"lr": 1e-3, "epochs": 3.0, "batch_size": 4}
    assert profiles == {"small": {"lr": 1e-3, "epochs": 2.0}}  # the profile itself is not mutated
    with pytest.raises(ConfigError, match=r"^run\.yaml: unknown profile 'big'; choose from \['small'\]"):
        resolve_profile(profiles, "big", where="run.yaml")
