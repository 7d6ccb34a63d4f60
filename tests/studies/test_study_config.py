"""Study config resolution: profiles, overrides, the world section, renamed keys."""

import json
import re

import pytest
from typer.testing import CliRunner

from rewardherd.cli import app
from rewardherd.config import ConfigError, field_docs
from rewardherd.policy.config import RLConfig
from rewardherd.studies.config import RLSweep, Sweep, resolve_config
from rewardherd.studies.runner import StudyConfigMismatch, run_study
from rewardherd.world import world_config


def test_profiles_resolve_and_unknown_keys_fail():
    cfg = resolve_config(None, "quick", ["pool.size=64", "train.lr=1e-5"])
    assert cfg.pool.size == 64 and cfg.train.lr == 1e-5 and cfg.ensemble_size == 5
    with pytest.raises(ConfigError):
        resolve_config(None, "quick", ["pool.sise=64"])
    with pytest.raises(ConfigError):
        resolve_config(None, "nope")


def test_world_section_overrides_its_profile_field_by_field():
    cfg = resolve_config(None, "quick", ["world.policy.lm.steps=500"])
    base = world_config("quick")
    assert cfg.world.policy.lm.steps == 500
    assert cfg.world.policy.lm.n_layer == base.policy.lm.n_layer and cfg.world.policy.lm.n_embd == base.policy.lm.n_embd
    smoke = resolve_config(None, "smoke")
    assert smoke.world == world_config("smoke")
    assert resolve_config(None, "quick", ["world.name=smoke"]).world == world_config("smoke")
    with pytest.raises(ConfigError, match=r"world\.name: unknown profile 'huge'; choose from \['full', 'quick', 'smoke'\]"):
        resolve_config(None, "quick", ["world.name=huge"])


def test_profiles_keep_the_study_rl_schedule():
    """The study's RL defaults differ from the `rl` command's; profiles keep them exactly."""
    quick = resolve_config(None, "quick")
    assert (quick.rl.steps, quick.rl.lr, quick.rl.eval_every) == (60, 3e-5, 15)
    assert quick.rl_sweep == RLSweep()
    smoke = resolve_config(None, "smoke")
    assert (smoke.rl.steps, smoke.rl.lr, smoke.rl.eval_every, smoke.rl.num_generations) == (2, 3e-5, 1, 2)
    full = resolve_config(None, "full")
    assert (full.rl.steps, full.rl.lr, full.rl_sweep.kl_coefs, len(full.rl_sweep.seeds)) == (200, 3e-5, (0.01,), 3)
    assert full.world == quick.world and full.pool == quick.pool and full.sweep.seeds == quick.sweep.seeds
    assert RLConfig().steps == 50  # the `rl` command's own default is untouched


def test_unknown_dotted_key_names_the_key_and_the_allowed_ones():
    with pytest.raises(ConfigError) as e:
        resolve_config(None, "quick", ["rl.stepz=3"])
    msg = str(e.value)
    assert "'rl.stepz'" in msg and "steps" in msg and "eval_every" in msg


@pytest.mark.parametrize("key, new", [
    ("world_overrides.policy.lm.steps=5", "world"), ("world_profile=smoke", "world.name"),
    ("rl.kinds=[single]", "rl_sweep.kinds"), ("rl.enabled=false", "rl_sweep.enabled"),
    ("rl.kl_coef=0.1", "rl_sweep.kl_coefs"),
    ("kinds=[finetune,pretrain]", "sweep.kinds"), ("methods=[mean]", "sweep.methods"), ("noise=[0.1]", "sweep.noise"),
    ("seeds=[0,1]", "sweep.seeds"), ("sizes=[1]", "sweep.sizes"),
])
def test_old_keys_name_the_new_key(key, new, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(new)):
        resolve_config(None, "smoke", [key])
    name, value = key.split("=")
    head, _, leaf = name.partition(".")
    path = tmp_path / "study.yaml"
    path.write_text(f"{head}:\n  {leaf}: {value}\n" if leaf else f"{head}: {value}\n")
    with pytest.raises(ConfigError, match=new) as e:
        resolve_config(path, "smoke")
    assert str(path) in str(e.value)


def test_top_level_sweep_axes_are_errors_that_name_the_sweep_key(tmp_path):
    with pytest.raises(ConfigError, match=r"^study config: 'seeds' is now sweep\.seeds$"):
        resolve_config(None, "quick", ["seeds=[0,1]"])
    path = tmp_path / "old.yaml"
    path.write_text("profile: smoke\nkinds: [finetune, pretrain, lora]\npool:\n  size: 8\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: 'kinds' is now sweep\.kinds$"):
        resolve_config(path)


def test_sweep_section_holds_the_best_of_n_axes():
    quick, kinds = resolve_config(None, "quick"), resolve_config(None, "kinds")
    assert quick.sweep.seeds == (0, 1, 2, 3, 4, 5) and quick.sweep.kinds == Sweep().kinds
    assert kinds.sweep.seeds == quick.sweep.seeds and "cleaned" in kinds.sweep.kinds
    assert resolve_config(None, "full").sweep.sizes == (1, 2, 3, 4, 5)
    cfg = resolve_config(None, "smoke", ["sweep.seeds=[3,4]", "sweep.methods=[min]"])
    assert cfg.sweep.seeds == (3, 4) and cfg.sweep.methods == ("min",) and cfg.sweep.noise == (0.0, 0.25)


@pytest.mark.parametrize("key, msg", [
    ("sweep.kinds=[finetune]", "sweep: kinds must hold finetune and pretrain"),
    ("sweep.noise=[0.5]", "sweep: noise levels must be in"), ("sweep.seeds=[]", "sweep: at least one seed"),
    ("sweep.methods=[nope]", "sweep: unknown aggregation method 'nope'"), ("sweep.sizes=[3]", r"sweep.sizes must be in \[1, ensemble_size=2\]"),
    ("sweep.seedz=[1]", "'sweep.seedz'; allowed in sweep: kinds, levels, markers, methods, noise, seeds, sizes"),
    ("sweep.markers=[0,1.5]", r"sweep: markers levels must be distinct and in \[0, 1\]; got \[0.0, 1.5\]"),
    ("sweep.markers=[0.5,0.5]", "sweep: markers levels must be distinct"),
])
def test_sweep_errors_name_the_sweep_key(key, msg):
    with pytest.raises(ConfigError, match=msg):
        resolve_config(None, "smoke", [key])


def test_markers_profile_sweeps_the_markers_dial_without_rl():
    cfg = resolve_config(None, "markers")
    assert cfg.sweep.markers == (0.0, 0.75, 0.9, 1.0) and cfg.sweep.noise == (0.0,) and not cfg.rl_sweep.enabled
    assert cfg.sweep.seeds == resolve_config(None, "quick").sweep.seeds and cfg.world.preferences.markers == 0.0
    with pytest.raises(ConfigError, match=r"world.preferences: preferences.markers must be in \[0, 1\]; got 2.0"):
        resolve_config(None, "smoke", ["world.preferences.markers=2"])


def test_a_run_dir_with_the_old_layout_is_refused_not_resumed(tmp_path):
    """The config hash covers the layout: a study written with top-level axes is not mixed into."""
    (tmp_path / "config.json").write_text(json.dumps({"seeds": [0], "noise": [0.0], "_hash": "0123"}))
    with pytest.raises(StudyConfigMismatch, match="before the best-of-n axes moved under `sweep`"):
        run_study(resolve_config(None, "smoke"), tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_study_help_lists_each_sweep_key_with_its_docstring():
    res = CliRunner().invoke(app, ["study", "--help"])
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    for key, doc in field_docs(Sweep).items():
        assert f"sweep.{key}: {doc}" in text


def test_studies_written_before_later_fields_keep_their_key():
    """A study directory is resumed under study_keys: the quick and smoke profiles hash as they
    did before the gold tail, pairing and teacher fields existed (first key) and as on the
    day the tail and pairing fields were hashed whole (second key); a field off its old value
    changes the key."""
    from rewardherd.config import to_dict
    from rewardherd.studies.runner import study_keys

    expected = {"quick": ("7ad728a17c914fd2", "d1f25c6e5e9e4e21"), "smoke": ("5b7bc8a551634062", "60cf49aba440b0cd")}
    for profile, keys in expected.items():
        cfg = resolve_config(None, profile, [])
        assert study_keys(cfg, to_dict(cfg)) == keys
    cfg = resolve_config(None, "quick", ["train.subsample=100", "dial=tail_and_data"])
    assert study_keys(cfg, to_dict(cfg))[0] not in expected["quick"]
    with pytest.raises(ConfigError, match="dial=tail_and_data moves train.subsample_shared"):
        resolve_config(None, "quick", ["dial=tail_and_data"])


def test_a_dial_level_sets_the_tail_and_with_tail_and_data_the_shared_subsample():
    from rewardherd.studies.config import at_dial_level

    tail = resolve_config(None, "quick", ["train.subsample=100"])
    both = resolve_config(None, "quick", ["train.subsample=100", "dial=tail_and_data"])
    a, b = at_dial_level(tail, 0.25), at_dial_level(both, 0.25)
    assert a.world.gold.shared_error == b.world.gold.shared_error == 0.25
    assert a.train.subsample_shared == 0.0 and b.train.subsample_shared == 0.25
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        at_dial_level(tail, 1.5)
