import dataclasses

import pytest

from rewardherd.config import ConfigError, from_dict, to_dict
from rewardherd.world.config import PROFILES, GoldConfig, LMConfig, WorldConfig, world_config


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_are_valid_and_shift_is_on(profile):
    cfg = world_config(profile)
    assert cfg.name == profile
    # The distribution shift: the preference data's responses are shorter than the pool's.
    assert cfg.preferences.sampling.max_new_tokens < cfg.pool.max_new_tokens


def test_unknown_profile():
    with pytest.raises(ConfigError, match=r"world: unknown profile 'huge'; choose from \['full', 'quick', 'smoke'\]"):
        world_config("huge")


def test_validation_errors():
    with pytest.raises(ValueError, match="n_head"):
        LMConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="min_words"):
        GoldConfig(min_words=20, max_words=10)


def test_profiles_are_overrides_of_the_defaults():
    assert world_config("quick") == WorldConfig()
    smoke = world_config("smoke")
    assert smoke.policy.lm.n_embd == 32 and smoke.backbones.seeds == (0, 1)
    # keys a profile leaves out keep the section's own default, not the class default
    full = world_config("full")
    assert full.policy.lm.lr == WorldConfig().policy.lm.lr == 2e-3 and full.policy.seed == 1000


def test_roundtrip_and_overrides():
    cfg = world_config("quick")
    assert from_dict(WorldConfig, to_dict(cfg)) == cfg
    new = world_config("quick", {"policy.lm.steps": 70, "gold.max_words": 12})
    assert new.policy.lm.steps == 70 and new.gold.max_words == 12
    assert new.policy.lm.n_embd == cfg.policy.lm.n_embd == 128  # the rest of the section is kept
    assert new.backbones == cfg.backbones
    assert world_config("smoke", ["policy.lm.steps=5"]).policy.lm.n_embd == 32
    with pytest.raises(ConfigError) as e:
        world_config("quick", ["policy.lm.stepz=7"])
    assert "'policy.lm.stepz'" in str(e.value) and "steps" in str(e.value)  # the key, and the allowed ones
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "x"  # type: ignore[misc]


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, rewardherd.world; bad = [m for m in ('matplotlib', 'ray', 'fastapi', "
            "'transformers', 'torch') if m in sys.modules]; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True)
