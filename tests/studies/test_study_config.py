"""Study config resolution: profiles, overrides, the world section, renamed keys."""

import pytest

from rewardherd.config import ConfigError
from rewardherd.policy.config import RLConfig
from rewardherd.studies.config import RLSweep, resolve_config
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
    assert (full.rl.steps, full.rl.lr, full.rl_sweep.kl_coefs) == (200, 3e-5, (0.0, 0.01, 0.2))
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
])
def test_old_keys_name_the_new_key(key, new, tmp_path):
    with pytest.raises(ConfigError, match=new):
        resolve_config(None, "smoke", [key])
    name, value = key.split("=")
    head, _, leaf = name.partition(".")
    path = tmp_path / "study.yaml"
    path.write_text(f"{head}:\n  {leaf}: {value}\n" if leaf else f"{head}: {value}\n")
    with pytest.raises(ConfigError, match=new) as e:
        resolve_config(path, "smoke")
    assert str(path) in str(e.value)
