"""The kinds registry: every study kind has one spec, and planning, unit names, colours and
costs come from it (a toy kind added to the registry alone is planned and coloured)."""

import pandas as pd
import pytest

from rewardherd.schema import STUDY_KINDS
from rewardherd.studies import kinds as ks
from rewardherd.studies import runner
from rewardherd.studies.analysis import kind_costs
from rewardherd.studies.config import resolve_config


def test_the_registry_holds_exactly_the_kinds_a_config_accepts():
    assert set(ks.KINDS) == set(STUDY_KINDS)
    assert ks.MAIN_KINDS == ("finetune", "pretrain")
    assert {k for k, s in ks.KINDS.items() if s.units == "group"} == set(runner.GROUP_TRAINERS)
    assert len({s.color for s in ks.KINDS.values()} | {ks.SINGLE_COLOR}) == len(ks.KINDS) + 1


def test_unknown_kinds_fail_clearly():
    with pytest.raises(ValueError, match="unknown ensemble kind 'bagged'"):
        ks.spec("bagged")
    assert ks.color("single") == ks.SINGLE_COLOR


def test_unit_names_are_the_ones_studies_already_hold():
    """Resuming a study written before the registry needs the same directory names."""
    assert runner.GroupUnit("multi_head", 3, 0.25, 1).name == "mh__bb3__noise0.25__seed1"
    assert runner.GroupUnit("multi_head", 3, 0.25, 1).units(2) == ["mh__bb3__noise0.25__seed1__h0",
                                                                   "mh__bb3__noise0.25__seed1__h1"]
    assert runner.GroupUnit("warm", 3, 0, 1).units(5) == ["warm__bb3__noise0__seed1"]
    assert runner.GroupUnit("cleaned", 2, 0, 0).units(2) == ["cleaned__bb2__noise0__seed0__m0",
                                                             "cleaned__bb2__noise0__seed0__m1"]
    ft = runner.kind_units("finetune", 0.0, 1, 3, 5)
    pre = runner.kind_units("pretrain", 0.0, 1, 3, 5)
    lora = runner.kind_units("lora", 0.0, 1, 3, 5)
    drawn = runner.draw_backbones(1, 3, 5)
    assert ft == [f"bb{drawn[0]}__ft{1000 + i}__noise0__seed1" for i in range(3)]
    assert pre == [f"bb{b}__ft{1000 + i}__noise0__seed1" for i, b in enumerate(drawn)]
    assert ft[0] == pre[0] and lora == [f"lora__{u}" for u in ft]


def test_members_and_groups_are_planned_from_the_registry():
    quick = resolve_config(profile="smoke")
    every = resolve_config(profile="smoke", overrides=[f"sweep.kinds={list(STUDY_KINDS)}"])
    n = 4
    assert not any(isinstance(u, runner.LoraUnit) for u in runner.plan_members(quick, n))
    assert runner.plan_groups(quick, n) == []
    names = {u.name for u in runner.plan_members(every, n)}
    for noise in every.sweep.noise:
        for seed in every.sweep.seeds:
            for kind in ("finetune", "pretrain", "lora"):
                assert set(runner.kind_units(kind, noise, seed, every.ensemble_size, n)) <= names
    groups = runner.plan_groups(every, n)
    assert [g.kind for g in groups[::len(every.sweep.noise) * len(every.sweep.seeds)]] == ["multi_head", "warm",
                                                                                            "cleaned"]
    assert len(groups) == 3 * len(every.sweep.noise) * len(every.sweep.seeds)


def test_a_toy_kind_is_one_registry_entry(monkeypatch):
    toy = ks.KindSpec("toy", "toy", "Pretrain-style members under another name.", "#000000", "members",
                      layout="pretrain", own_members="pretrain", train_includes=("finetune",))
    monkeypatch.setitem(ks.KINDS, "toy", toy)
    assert runner.kind_units("toy", 0.25, 2, 3, 5) == runner.kind_units("pretrain", 0.25, 2, 3, 5)
    assert ks.color("toy") == "#000000" and ks.extra(["finetune", "toy"]) == ["toy"]
    assert toy.own == "pretrain" and toy.forward_passes(3) == 3 and toy.label("min") == "toy ensemble (min)"
    members = pd.DataFrame({"kind": ["toy", "toy", "finetune"], "noise": 0.0, "seed": 0, "trained": ["a", "b", "c"],
                            "train_seconds": [1.0, 2.0, 4.0], "score_seconds": [0.5, 0.5, 9.0]})
    assert kind_costs(members, "toy", 0.0, [0]) == {"train_seconds": 7.0, "score_seconds": 1.0}


def test_fixed_method_kinds_name_themselves():
    warm = ks.spec("warm")
    assert warm.label("mean") == "WARM (weights averaged)" and warm.method_name("mean") == "weights averaged"
    assert warm.own == "finetune" and warm.forward_passes(5) == 1
    assert ks.spec("multi_head").heads and ks.spec("multi_head").forward_passes(5) == 1
    assert ks.spec("pretrain").label("mean") == "pretrain ensemble (mean)"
