"""The study's best-of-n pool (sampled once per study from the policy, with gold and
features), its token ids per tokenizer, and the held-out pairs' gold."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rewardherd import schema
from rewardherd.config import config_hash
from rewardherd.io import write_table_atomic
from rewardherd.policy.bon import sample_pool
from rewardherd.studies.config import StudyConfig

log = logging.getLogger(__name__)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
                   "merges.txt")


def pool_token_ids(out: Path, pool_path: Path, model_dir: Path, tok, max_length: int) -> list[np.ndarray]:
    """The pool's token ids under ``tok``, encoded once per study and tokenizer.

    Members of the built-in world share one tokenizer, so the 32k-sample pool is
    tokenized once instead of once per member. The cache file is keyed by the
    tokenizer's files (as saved beside the member), ``max_length`` and the pool file.
    """
    from rewardherd.io import file_sha256, write_atomic
    from rewardherd.models.formatting import encode_batch

    parts = [f"{name}:{file_sha256(model_dir / name)}" for name in TOKENIZER_FILES if (model_dir / name).exists()]
    key = config_hash({"tokenizer": parts, "max_length": max_length, "pool": file_sha256(pool_path)})
    path = out / "pool_ids" / f"{key}.npz"
    if path.exists():
        with np.load(path) as z:
            flat, offsets = z["ids"], z["offsets"]
        return [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
    pool = pd.read_parquet(pool_path, columns=["prompt", "response"])
    ids, _ = encode_batch(tok, pool["prompt"].tolist(), pool["response"].tolist(), max_length)
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in ids])]).astype(np.int64)
    flat = np.concatenate([np.asarray(x, dtype=np.int64) for x in ids]) if ids else np.zeros(0, np.int64)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a path
            np.savez(f, ids=flat, offsets=offsets)

    write_atomic(path, write)
    return [flat[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]


def heldout_gold(inputs) -> pd.DataFrame:
    """Gold of each held-out pair's two responses, for the in-distribution error decomposition."""
    if inputs.heldout_gold is not None:
        return inputs.heldout_gold
    pairs = [p for p in inputs.heldout_pairs if not p.is_conversational]
    g = np.asarray(inputs.gold([p.prompt for p in pairs] * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs]),
                   dtype=np.float64)
    return pd.DataFrame({"id": [p.id for p in pairs], "gold_chosen": g[: len(pairs)], "gold_rejected": g[len(pairs):]})


def ensure_pool(inputs, config: StudyConfig, out: Path, progress: bool) -> Path:
    path = out / "pool.parquet"
    if path.exists():
        return path
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(inputs.policy_dir)
    model = AutoModelForCausalLM.from_pretrained(inputs.policy_dir).eval()
    prompts = inputs.eval_prompts[: config.pool.prompts]
    if len(prompts) < config.pool.prompts:
        log.warning("only %d evaluation prompts available (pool.prompts=%d)", len(prompts), config.pool.prompts)
    t0 = time.time()
    pool = sample_pool(model, tok, prompts, config.pool.size, max_new_tokens=inputs.max_new_tokens,
                       min_new_tokens=inputs.min_new_tokens, top_p=inputs.top_p,
                       temperature=config.pool.temperature, seed=config.pool.seed, progress=progress)
    pool = pool.drop(columns=[c for c in ("response_ids",) if c in pool])
    t1 = time.time()
    pool["gold"] = np.asarray(inputs.gold(pool["prompt"].tolist(), pool["response"].tolist()), dtype=np.float64)
    feats = inputs.features(pool["prompt"].tolist(), pool["response"].tolist())
    for c in feats.columns:
        values = pd.to_numeric(feats[c], errors="coerce").astype(np.float64)
        if values.isna().any():
            log.warning("feature %s is undefined for %d samples; not tracked", c, int(values.isna().sum()))
            continue
        pool[schema.feature_col(c)] = values.to_numpy()
    log.info("pool: %d samples sampled in %.0fs, gold+features in %.0fs", len(pool), t1 - t0, time.time() - t1)
    write_table_atomic(pool, path)
    return path
