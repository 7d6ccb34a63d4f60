"""Best-of-n against an ensemble: pools, scoring, and unbiased curves.

Shape notation: ``p`` prompts, ``N`` pool size per prompt, ``m`` members, ``g`` n values.

One table keyed by (prompt_id, sample_id) holds every sample's text, its raw member
scores (columns ``score/raw/<member>``), its ``gold`` reward and its features
(``feature/<name>``; see docs/schema.md), so gold always
travels with its sample (the pitfall in SCIENCE.md section 5 cannot happen: curves are
computed by :func:`rewardherd.core.bon_estimate`, which permutes proxy and values
together).

The curve for a method is the unbiased estimator of E[value of best-of-n] under the
aggregate proxy, for n on a grid, with KL = log n - (n - 1)/n (an upper bound).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rewardherd import core, schema
from rewardherd.core import Aggregation
from rewardherd.io import write_atomic

log = logging.getLogger(__name__)

MEMBER_PREFIX = schema.RAW  # raw member score columns: score/raw/<member>


#: Deprecated alias of :class:`rewardherd.core.Aggregation` (the one aggregation spec);
#: kept so code written against ``rewardherd.policy.bon.MethodSpec`` still works.
MethodSpec = Aggregation


def member_columns(pool: pd.DataFrame) -> list[str]:
    return [c for c in pool.columns if c.startswith(MEMBER_PREFIX)]


def sample_pool(
    model,
    tokenizer,
    prompts: Sequence[str],
    pool_size: int,
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    min_new_tokens: int = 1,
    seed: int = 0,
    batch_size: int = 256,
    prompt_ids: Sequence | None = None,
    path: str | Path | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Sample N responses per prompt, stored as Parquet at ``path`` and reused.

    The stored pool is reused only if its sampling settings (kept in a sidecar
    ``<path>.json``) match; otherwise it is an error rather than a silent resample.
    """
    from rewardherd.policy.sampling import sample_continuations

    settings = {
        "pool_size": pool_size, "max_new_tokens": max_new_tokens, "min_new_tokens": min_new_tokens,
        "temperature": temperature, "top_p": top_p, "seed": seed, "n_prompts": len(prompts),
        "policy": str(getattr(model.config, "_name_or_path", "")),
    }
    if path is not None:
        path = Path(path)
        side = path.with_suffix(path.suffix + ".json")
        if path.exists() and side.exists():
            stored = json.loads(side.read_text())
            if stored != settings:
                raise ValueError(f"{path} was sampled with other settings {stored}; choose another path")
            log.info("reusing pool %s", path)
            return pd.read_parquet(path)
    pool = sample_continuations(
        model, tokenizer, prompts, pool_size, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
        temperature=temperature, top_p=top_p, seed=seed, batch_size=batch_size, prompt_ids=prompt_ids, progress=progress,
    )
    if path is not None:
        write_atomic(path, lambda t: pool.to_parquet(t, index=False))
        write_atomic(side, lambda t: t.write_text(json.dumps(settings)))
    return pool


def score_pool(
    pool: pd.DataFrame,
    ensemble=None,
    *,
    gold: Callable[[list, list], np.ndarray] | None = None,
    features: Callable[[list, list], pd.DataFrame] | None = None,
    batch_size: int = 64,
    prefix: str = "",
) -> pd.DataFrame:
    """Add raw member scores (``score/raw/<prefix><member>``), ``gold`` and ``feature/<name>`` columns.

    Each sample is scored once per member and once by gold. Returns a new table.
    """
    out = pool.copy()
    prompts, responses = out["prompt"].tolist(), out["response"].tolist()
    if ensemble is not None:
        raw = ensemble.score(prompts, responses, batch_size=batch_size)  # (m, b)
        for name, row in zip(ensemble.names, raw, strict=True):
            out[f"{MEMBER_PREFIX}{prefix}{name}"] = row
    if gold is not None and "gold" not in out:
        out["gold"] = np.asarray(gold(prompts, responses), dtype=np.float64)
    if features is not None:
        feats = features(prompts, responses)
        for c in feats.columns:
            if schema.feature_col(c) not in out:
                out[schema.feature_col(c)] = feats[c].to_numpy()
    return out


def pool_matrix(pool: pd.DataFrame, column: str) -> np.ndarray:
    """(p, N) matrix of one column, rows ordered by prompt_id, columns by sample_id."""
    wide = pool.pivot(index="prompt_id", columns="sample_id", values=column)
    if wide.isna().any().any():
        raise ValueError("every prompt needs the same pool size (found missing samples)")
    return wide.to_numpy(dtype=np.float64)


def aggregate_pool(
    pool: pd.DataFrame,
    members: Sequence[str],
    spec: Aggregation,
    standardization: tuple[np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """Aggregate proxy of every sample, in pool row order, (b,)."""
    raw = pool[list(members)].to_numpy(dtype=np.float64).T  # (m, b)
    scores = core.standardize(raw, *standardization) if standardization is not None else raw
    return spec.apply(scores)


def bon_curves(
    pool: pd.DataFrame,
    members: Sequence[str],
    methods: Sequence[Aggregation],
    ns: Sequence[int],
    *,
    standardization: tuple[np.ndarray, np.ndarray] | None = None,
    values: Sequence[str] = ("gold",),
) -> pd.DataFrame:
    """Per-prompt best-of-n curves of the ensemble of ``members`` columns under each method.

    ``standardization`` is per-member (mean, std) applied before aggregating; ``values``
    are the columns whose best-of-n expectation is reported beside the proxy (gold,
    features, other members' scores). Returns a long table: method, n, kl, prompt_id,
    proxy, and one column per value."""
    pool = pool.sort_values(["prompt_id", "sample_id"], kind="stable").reset_index(drop=True)
    prompt_ids = np.sort(pool["prompt_id"].unique())
    value_cols = [v for v in values if v in pool.columns]
    vals = np.stack([pool_matrix(pool, v) for v in value_cols], axis=-1) if value_cols else None  # (p, N, f)
    kl = core.bon_kl(np.asarray(ns))
    frames = []
    for spec in methods:
        agg = aggregate_pool(pool, members, spec, standardization)
        proxy = pool.assign(_agg=agg).pivot(index="prompt_id", columns="sample_id", values="_agg").to_numpy()
        stacked = proxy[:, :, None] if vals is None else np.concatenate([proxy[:, :, None], vals], axis=-1)
        est = core.bon_estimate(proxy, stacked, ns)  # (p, g, 1 + f)
        df = pd.DataFrame({
            "method": spec.label,
            "n": np.tile(np.asarray(ns), len(prompt_ids)),
            "kl": np.tile(kl, len(prompt_ids)),
            "prompt_id": np.repeat(prompt_ids, len(ns)),
            "proxy": est[:, :, 0].reshape(-1),
        })
        for j, c in enumerate(value_cols):
            df[c] = est[:, :, j + 1].reshape(-1)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def summarize(curves: pd.DataFrame, by: Sequence[str] = ("method", "n", "kl")) -> pd.DataFrame:
    """Mean and standard error over prompts of every value column."""
    value_cols = [c for c in curves.columns if c not in set(by) | {"prompt_id"} and
                  pd.api.types.is_numeric_dtype(curves[c])]
    g = curves.groupby(list(by), sort=True)[value_cols]
    mean = g.mean()
    se = g.std(ddof=1) / np.sqrt(g.count())
    se.columns = [f"{c}_se" for c in se.columns]
    return pd.concat([mean, se], axis=1).reset_index()
