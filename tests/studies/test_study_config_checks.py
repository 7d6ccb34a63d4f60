"""Each validation rule of the study configuration (studies/config.py) refuses exactly what it
names, and accepts the boundary it states."""

import pytest

from rewardherd.studies.config import (
    CleanConfig,
    PoolConfig,
    RLSweep,
    StudyConfig,
    Sweep,
    UserSource,
    _has,
    resolve_config,
)
from rewardherd.training import TrainConfig

USER = UserSource(policy="p", preferences="t.jsonl", heldout_preferences="h.jsonl", backbones=("b0", "b1"),
                  prompts="e.txt", gold="m:f")


@pytest.mark.parametrize(("make", "msg"), [
    (lambda: PoolConfig(prompts=1), "pool.prompts and pool.size must be >= 2"),
    (lambda: PoolConfig(size=1), "pool.prompts and pool.size must be >= 2"),
    (lambda: PoolConfig(max_n_fraction=0.0), r"max_n_fraction must be in \(0, 1\]"),
    (lambda: PoolConfig(max_n_fraction=1.5), r"max_n_fraction must be in \(0, 1\]"),
    (lambda: CleanConfig(folds=1), "clean.folds must be >= 2 and clean.members >= 1; got 1, 2"),
    (lambda: CleanConfig(members=0), "clean.folds must be >= 2 and clean.members >= 1; got 3, 0"),
    (lambda: CleanConfig(flip_below=0.2), r"need 0 <= clean.flip_below <= clean.drop_between\[0\]"),
    (lambda: CleanConfig(drop_between=(0.3, 0.1)), r"got 0.1, \[0.3, 0.1\]"),
    (lambda: CleanConfig(drop_between=(0.1, 1.0)), r"drop_between\[1\] < 1"),
    (lambda: Sweep(kinds=("pretrain",)), "kinds must hold finetune and pretrain once each"),
    (lambda: Sweep(kinds=("finetune", "pretrain", "pretrain")), "kinds must hold finetune and pretrain once each"),
    (lambda: Sweep(methods=("mean(",)), "cannot parse method"),
    (lambda: Sweep(noise=(0.5,)), r"noise levels must be in \[0, 0.5\); got 0.5"),
    (lambda: Sweep(noise=(-0.1,)), r"noise levels must be in \[0, 0.5\); got -0.1"),
    (lambda: Sweep(seeds=()), "at least one seed"),
    (lambda: Sweep(markers=(0.5, 0.5)), r"markers levels must be distinct and in \[0, 1\]"),
    (lambda: Sweep(markers=(1.5,)), r"markers levels must be distinct and in \[0, 1\]; got \[1.5\]"),
    (lambda: Sweep(levels=(0.5, 0.5)), r"sweep.levels must be distinct and in \[0, 1\]"),
    (lambda: Sweep(levels=(-0.1,)), r"sweep.levels must be distinct and in \[0, 1\]; got \[-0.1\]"),
    (lambda: Sweep(markers=(0.5,), levels=(0.5,)), "sweep.markers and sweep.levels are two dials"),
    (lambda: StudyConfig(ensemble_size=1), "ensemble_size must be >= 2"),
    (lambda: StudyConfig(lora_r=0), "lora_r must be >= 1; got 0"),
    (lambda: StudyConfig(workers=0), "workers must be >= 1; got 0"),
    (lambda: StudyConfig(user=USER), "user.train_prompts is required for RL"),
    (lambda: StudyConfig(calibration_replicates=-1), "calibration_replicates and world_seed must be >= 0"),
    (lambda: StudyConfig(world_seed=-1), "calibration_replicates and world_seed must be >= 0"),
    (lambda: StudyConfig(sweep=Sweep(sizes=(4,))), r"sweep.sizes must be in \[1, ensemble_size=3\]"),
    (lambda: StudyConfig(sweep=Sweep(sizes=(0,))), r"sweep.sizes must be in \[1, ensemble_size=3\]"),
    (lambda: StudyConfig(train=TrainConfig(member_label_noise=0.1),
                         sweep=Sweep(kinds=("finetune", "pretrain", "multi_head"))),
     "multi-head heads share every batch"),
])
def test_each_rule_refuses_what_it_names(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_the_stated_boundaries_are_accepted():
    assert PoolConfig(prompts=2, size=2, max_n_fraction=1.0).size == 2
    assert CleanConfig(flip_below=0.1, drop_between=(0.1, 0.1)).folds == 3  # flip_below == lo == hi
    assert Sweep(noise=(0.0, 0.49), markers=(0.0, 1.0)).markers == (0.0, 1.0)
    assert StudyConfig(ensemble_size=2, sweep=Sweep(sizes=(1, 2))).sweep.sizes == (1, 2)
    assert StudyConfig(train=TrainConfig(member_label_noise=0.1)).train.member_label_noise == 0.1
    # a user study needs RL training prompts only when RL runs
    assert StudyConfig(user=USER, rl_sweep=RLSweep(enabled=False)).user == USER
    with_prompts = UserSource(**{**USER.__dict__, "train_prompts": "t.txt"})
    assert StudyConfig(user=with_prompts).user.train_prompts == "t.txt"


def test_the_error_sharing_dials_need_the_builtin_world():
    for sweep in (Sweep(markers=(0.0, 1.0)), Sweep(levels=(0.0, 1.0))):
        with pytest.raises(ValueError, match="sweep.markers and sweep.levels need the built-in world"):
            StudyConfig(user=USER, rl_sweep=RLSweep(enabled=False), sweep=sweep)


def test_rl_sweep_methods_and_noise_are_checked_too():
    with pytest.raises(ValueError, match="cannot parse method"):
        StudyConfig(rl_sweep=RLSweep(methods=("min)",)))
    with pytest.raises(ValueError, match=r"rl_sweep.noise levels must be in \[0, 0.5\); got 0.7"):
        StudyConfig(rl_sweep=RLSweep(noise=(0.7,)))


def test_has_follows_dotted_keys_through_nested_dicts():
    data = {"rl": {"kinds": ["single"], "steps": None}, "seeds": [0]}
    assert _has(data, "rl.kinds") and _has(data, "rl.steps") and _has(data, "seeds")
    assert not _has(data, "rl.methods") and not _has(data, "seeds.x") and not _has(data, "world.name")


def test_profiles_resolve_to_their_stated_sizes():
    smoke = resolve_config(None, "smoke")
    assert (smoke.ensemble_size, smoke.sweep.seeds, smoke.pool.prompts, smoke.pool.size) == (2, (0,), 12, 16)
    assert (smoke.bootstrap, smoke.calibration_replicates) == (200, 2)
    quick = resolve_config(None, "quick")
    assert (quick.ensemble_size, len(quick.sweep.seeds), quick.pool.prompts, quick.pool.size) == (5, 6, 256, 128)
    sharing = resolve_config(None, "sharing")
    assert sharing.sweep.levels == (0.0, 0.25, 0.5, 0.75, 1.0) and sharing.sweep.noise == (0.0,)
    assert (sharing.dial, sharing.train.subsample, sharing.world.gold.design) == ("tail_and_data", 2600, "teacher")
    assert (sharing.world.gold.long_weight, sharing.world.preferences.samples_per_prompt) == (0.085, 16)
    assert not sharing.rl_sweep.enabled and sharing.sweep.seeds == quick.sweep.seeds
    markers = resolve_config(None, "markers")
    assert markers.sweep.markers == (0.0, 0.75, 0.9, 1.0) and markers.sweep.noise == (0.0,)
    assert not markers.rl_sweep.enabled and markers.world.gold.design == quick.world.gold.design
    full = resolve_config(None, "full")
    assert full.sweep.sizes == (1, 2, 3, 4, 5) and len(full.sweep.methods) == 6 and full.calibration_replicates == 100
