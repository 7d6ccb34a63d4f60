"""Study config resolution: profiles, overrides, world overrides that keep the profile's other fields."""

import pytest

from rewardherd.config import ConfigError
from rewardherd.studies.config import resolve_config
from rewardherd.studies.inputs import _flatten
from rewardherd.world import world_config


def test_profiles_resolve_and_unknown_keys_fail():
    cfg = resolve_config(None, "quick", ["pool.size=64", "train.lr=1e-5"])
    assert cfg.pool.size == 64 and cfg.train.lr == 1e-5 and cfg.ensemble_size == 5
    with pytest.raises(ConfigError):
        resolve_config(None, "quick", ["pool.sise=64"])
    with pytest.raises(ConfigError):
        resolve_config(None, "nope")


def test_nested_world_overrides_change_one_field_only():
    cfg = resolve_config(None, "quick", ["world_overrides.policy.lm.steps=500"])
    base = world_config("quick")
    new = base.with_overrides(_flatten(dict(cfg.world_overrides)))
    assert new.policy.lm.steps == 500
    assert new.policy.lm.n_layer == base.policy.lm.n_layer and new.policy.lm.n_embd == base.policy.lm.n_embd
