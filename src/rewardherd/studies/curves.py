"""Best-of-n cells: per-prompt curves of every kind, method and ensemble size for one
(noise, seed), from the members' pool scores (one cell writer, one schema: docs/schema.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from rewardherd import core, schema
from rewardherd.io import write_table_atomic
from rewardherd.policy.bon import MEMBER_PREFIX, bon_curves
from rewardherd.studies import kinds
from rewardherd.studies.config import StudyConfig
from rewardherd.studies.plan import MemberUnit, ensemble_members, kind_units


def _with_unit_scores(table: pd.DataFrame, out: Path, unit: str) -> tuple[pd.DataFrame, str, tuple[float, float]]:
    """``table`` joined with one unit's pool scores (column MEMBER_PREFIX + unit), and the
    unit's standardization (mean, std)."""
    col = f"{MEMBER_PREFIX}{unit}"
    sc = pd.read_parquet(out / "members" / unit / "scores.parquet")
    table = table.merge(sc.rename(columns={"score": col}), on=["prompt_id", "sample_id"], validate="1:1")
    info = json.loads((out / "members" / unit / "info.json").read_text())
    return table, col, (info["standardization"]["mean"], info["standardization"]["std"])


def kinds_cell(out: Path, config: StudyConfig, noise: float, seed: int, pool: pd.DataFrame,
               n_backbones: int) -> Path | None:
    """Per-prompt best-of-n curves of the extra kinds (multi_head, lora, warm) for one
    (noise, seed): each kind's ensemble with every method (warm: its one model), and each
    of its members alone (``member`` set). None when the study has no extra kind."""
    extra = kinds.extra(config.sweep.kinds)
    path = out / "cells" / f"kinds__noise{noise:g}__seed{seed}.parquet"
    if not extra or path.exists():
        return path if extra else None
    table = pool[["prompt_id", "sample_id", "gold"] + schema.columns(schema.FEATURE, pool.columns)].copy()
    values = ["gold"] + schema.columns(schema.FEATURE, table.columns)
    ns = core.n_grid(config.pool.size, config.pool.max_n_fraction)
    methods = [core.Aggregation.parse(m) for m in config.sweep.methods]
    frames = []
    for kind in extra:
        units = kind_units(kind, noise, seed, config.ensemble_size, n_backbones)
        cols, stats = [], []
        for unit in units:
            table, col, st = _with_unit_scores(table, out, unit)
            cols.append(col)
            stats.append(st)
        st = (np.array([s[0] for s in stats]), np.array([s[1] for s in stats]))
        c = bon_curves(table, cols, methods if len(cols) > 1 else [core.Aggregation("mean")], ns, standardization=st,
                       values=values)
        frames.append(c.assign(kind=kind, member="", size=len(cols)))
        if len(cols) == 1:  # warm: its members are the finetune kind's
            continue
        for i, (unit, col) in enumerate(zip(units, cols, strict=True)):
            c = bon_curves(table, [col], [core.Aggregation("mean")], ns,
                           standardization=(st[0][i:i + 1], st[1][i:i + 1]), values=values)
            frames.append(c.assign(kind=kind, member=unit, size=1))
    write_table_atomic(pd.concat(frames, ignore_index=True).assign(noise=noise, seed=seed), path)
    return path


def bon_cell(out: Path, config: StudyConfig, noise: float, seed: int, pool: pd.DataFrame, n_backbones: int) -> Path:
    """Per-prompt best-of-n curves of every kind and method for one (noise, seed)."""
    path = out / "cells" / f"bon__noise{noise:g}__seed{seed}.parquet"
    if path.exists():
        return path
    k = config.ensemble_size
    names: dict[tuple[int, int], str] = {}
    stats = {}
    table = pool[["prompt_id", "sample_id", "gold"] + schema.columns(schema.FEATURE, pool.columns)].copy()
    for kind in kinds.MAIN_KINDS:
        for b, ft in ensemble_members(kinds.spec(kind).layout, seed, k, n_backbones):
            unit = MemberUnit(b, ft, noise, seed)
            if (b, ft) in names:
                continue
            table, col, stats[col] = _with_unit_scores(table, out, unit.name)
            table[schema.z_col(unit.name)] = core.standardize(table[col].to_numpy()[None, :], [stats[col][0]],
                                                       [stats[col][1]])[0]
            names[(b, ft)] = col
    ns = core.n_grid(config.pool.size, config.pool.max_n_fraction)
    values = ["gold"] + [c for c in table.columns if c.startswith((schema.FEATURE, schema.Z))]
    methods = [core.Aggregation.parse(m) for m in config.sweep.methods]
    frames = []
    for kind in kinds.MAIN_KINDS:
        cols = [names[bf] for bf in ensemble_members(kinds.spec(kind).layout, seed, k, n_backbones)]
        st = (np.array([stats[c][0] for c in cols]), np.array([stats[c][1] for c in cols]))
        c = bon_curves(table, cols, methods, ns, standardization=st, values=values)
        frames.append(c.assign(kind=kind, member="", size=k))
        for size in config.sweep.sizes:  # ensemble-size sweep: the first `size` members
            if size == k:
                continue
            c = bon_curves(table, cols[:size], methods, ns, standardization=(st[0][:size], st[1][:size]),
                           values=values)
            frames.append(c.assign(kind=kind, member="", size=size))
    for col in names.values():
        st = (np.array([stats[col][0]]), np.array([stats[col][1]]))
        c = bon_curves(table, [col], [core.Aggregation("mean")], ns, standardization=st, values=values)
        frames.append(c.assign(kind="single", member=schema.strip(MEMBER_PREFIX, col), size=1))
    curves = pd.concat(frames, ignore_index=True).assign(noise=noise, seed=seed)
    write_table_atomic(curves, path)
    return path
