"""The built-in offline world: corpus, tokenizer, tiny LMs, gold reward, preference data.

Example::

    from rewardherd.world import build_world
    world = build_world("quick")            # cached under ~/.cache/rewardherd
    pool = world.sample(world.load_prompts("eval")["prompt"][:8], n=16)
    pool["gold"] = world.gold(pool["prompt"].tolist(), pool["response"].tolist())

Importing this package is cheap: torch and transformers load with the first function
that needs them.
"""

from __future__ import annotations

from typing import Any

from rewardherd.world.cache import cached_artifact, default_cache_dir, hash_key
from rewardherd.world.config import (
    PROFILES,
    BackbonesConfig,
    CorpusConfig,
    GoldConfig,
    LMConfig,
    PolicyConfig,
    PreferenceConfig,
    PromptConfig,
    SamplingConfig,
    TokenizerConfig,
    WorldConfig,
    world_config,
    world_replicate,
)

_LAZY = {
    "World": "rewardherd.world.world",
    "build_world": "rewardherd.world.world",
    "GoldReward": "rewardherd.world.gold",
    "hacking_features": "rewardherd.world.features",
    "FEATURE_COLUMNS": "rewardherd.world.features",
    "CorpusNotFoundError": "rewardherd.world.corpus",
    "load_corpus": "rewardherd.world.corpus",
}

__all__ = [
    "PROFILES", "BackbonesConfig", "CorpusConfig", "GoldConfig", "LMConfig", "PolicyConfig",
    "PreferenceConfig", "PromptConfig", "SamplingConfig", "TokenizerConfig", "WorldConfig",
    "world_config", "world_replicate", "cached_artifact", "default_cache_dir", "hash_key", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rewardherd.world' has no attribute {name!r}")
