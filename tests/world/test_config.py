import dataclasses

import pytest

from rewardherd.world.config import PROFILES, GoldConfig, LMConfig, WorldConfig, world_config


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_are_valid_and_shift_is_on(profile):
    cfg = world_config(profile)
    assert cfg.name == profile
    # The distribution shift: the preference data's responses are shorter than the pool's.
    assert cfg.preferences.sampling.max_new_tokens < cfg.pool.max_new_tokens


def test_unknown_profile():
    with pytest.raises(ValueError, match="unknown world profile"):
        world_config("huge")


def test_validation_errors():
    with pytest.raises(ValueError, match="n_head"):
        LMConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="min_words"):
        GoldConfig(min_words=20, max_words=10)


def test_roundtrip_and_overrides():
    cfg = world_config("quick")
    assert WorldConfig.from_dict(cfg.to_dict()) == cfg
    new = cfg.with_overrides({"policy.lm.steps": 70, "gold.max_words": 12})
    assert new.policy.lm.steps == 70 and new.gold.max_words == 12
    assert new.backbones == cfg.backbones
    with pytest.raises(KeyError):
        cfg.with_overrides({"policy.lm.stepz": 7})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "x"  # type: ignore[misc]


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, rewardherd.world; bad = [m for m in ('matplotlib', 'ray', 'fastapi', "
            "'transformers', 'torch') if m in sys.modules]; print(bad); assert not bad")
    subprocess.run([sys.executable, "-c", code], check=True)
