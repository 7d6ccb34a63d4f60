"""What a study runs on: the built-in world or the user's own components."""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class StudyInputs:
    policy_dir: Path
    backbones: list[Path]
    train_pairs: list
    heldout_pairs: list
    eval_prompts: list[str]
    train_prompts: list[str]
    gold: Callable[[list, list], np.ndarray]
    features: Callable[[list, list], pd.DataFrame]
    max_new_tokens: int
    fingerprint: dict
    description: str
    min_new_tokens: int = 1
    top_p: float = 1.0
    world_summary: dict | None = None
    heldout_gold: pd.DataFrame | None = None
    """Gold of the held-out pairs (``id``, ``gold_chosen``, ``gold_rejected``); None: computed by ``gold``."""


def read_prompts(path: str) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: prompts file not found")
    out = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        if p.suffix == ".jsonl":
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}:{i}: invalid JSON: {e.msg}") from e
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                raise ValueError(f"{p}:{i}: field 'prompt' missing or not a string")
            out.append(row["prompt"])
        else:
            out.append(line)
    return out


def load_gold(spec: str) -> Callable[[list, list], np.ndarray]:
    """A gold reward from `module:function` or an HF sequence-classification directory."""
    if ":" in spec and not Path(spec).exists():
        mod, _, fn = spec.partition(":")
        try:
            func = getattr(importlib.import_module(mod), fn)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"gold {spec!r}: cannot import: {e}") from e
        return lambda p, r: np.asarray(func(list(p), list(r)), dtype=np.float64)
    path = Path(spec)
    if not path.is_dir():
        raise ValueError(f"gold {spec!r}: neither `module:function` nor a model directory")
    from rewardherd.models.common import load_member_model
    from rewardherd.models.formatting import encode_batch, pad_token_id
    from rewardherd.models.scoring import score_ids

    model, tok = load_member_model(path)

    def gold(prompts, responses):
        ids, _ = encode_batch(tok, list(prompts), list(responses), 512)
        return score_ids(model, ids, pad_token_id(tok))

    return gold


def resolve_inputs(config, progress: bool = True) -> StudyInputs:
    from rewardherd.data import load_preferences

    if config.user is not None:
        u = config.user
        from transformers import AutoTokenizer

        from rewardherd.world.features import hacking_features

        train, rep = load_preferences(u.preferences)
        heldout, rep2 = load_preferences(u.heldout_preferences)
        log.info("%s", rep.summary())
        prompts = read_prompts(u.prompts)
        train_prompts = read_prompts(u.train_prompts) if u.train_prompts else []
        return StudyInputs(
            policy_dir=Path(u.policy), backbones=[Path(b) for b in u.backbones], train_pairs=train,
            heldout_pairs=heldout, eval_prompts=prompts, train_prompts=train_prompts, gold=load_gold(u.gold),
            features=partial(hacking_features, tokenizer=AutoTokenizer.from_pretrained(u.policy)),
            max_new_tokens=u.max_new_tokens,
            fingerprint={"user": json.loads(json.dumps(u.__dict__, default=str))},
            description=f"user components (policy {u.policy})",
        )
    return world_inputs(config, progress=progress)


def world_inputs(config, progress: bool = True) -> StudyInputs:
    from rewardherd.world import build_world, world_replicate

    wcfg = world_replicate(config.world, config.world_seed)
    world = build_world(wcfg, cache_dir=config.cache_dir, progress=progress)
    keys = {
        "policy": world.summary["policy"]["key"], "backbones": [b["key"] for b in world.summary["backbones"]],
        "preferences": world.summary["preferences"]["key"], "markers": wcfg.preferences.markers,
        "gold": world.summary["gold_key"],
    }
    return StudyInputs(
        policy_dir=Path(world.policy_dir), backbones=[Path(b) for b in world.backbone_dirs],
        train_pairs=world.load_preferences("train"), heldout_pairs=world.load_preferences("heldout"),
        eval_prompts=world.load_prompts("eval")["prompt"].tolist(),
        train_prompts=world.load_prompts("train")["prompt"].tolist(),
        gold=world.gold, features=world.features, max_new_tokens=wcfg.pool.max_new_tokens,
        min_new_tokens=wcfg.pool.min_new_tokens, top_p=wcfg.pool.top_p,
        fingerprint={"world": keys},
        description=f"built-in world ({config.world.name} profile, replicate {config.world_seed})",
        world_summary=world.summary, heldout_gold=world.heldout_gold(),
    )
