"""Single-member diagnostics of the built-in world at levels of its shared-error dial.

For each level of the shared-error dial (:func:`~rewardherd.studies.config.at_dial_level`:
``world.gold.shared_error``, and with ``dial=tail_and_data`` also ``train.subsample_shared``) this trains the study's fine-tune- and
pretrain-seed members (the same units a study would, per seed and noise level), scores
the study's best-of-n pool with each, and reports per level and member group the
diagnostics of :mod:`rewardherd.core.diagnostics`: residual error correlation, rho_bar,
accuracy in distribution (held-out preference pairs) and out of it (pool pairs),
within-prompt Spearman with gold, and the single-member best-of-n gold curve; and the
pretrain-minus-finetune residual correlation with a seeds x prompts interval.

No ensemble is formed: this is what a world design and its levels are chosen and
preregistered from (docs/world.md). Levels whose training and held-out pairs are
identical share their trained members (the tail sits beyond the preference data, so
usually all do); the pool is sampled once and each level's gold is computed on it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rewardherd import schema
from rewardherd.config import config_hash
from rewardherd.core import (
    member_diagnostics,
    n_grid,
    prompt_residual_covariances,
    residual_correlation_difference,
    shared_residual_features,
)
from rewardherd.io import write_json_atomic
from rewardherd.studies.config import StudyConfig, at_dial_level
from rewardherd.studies.document import Document, interval_text
from rewardherd.studies.inputs import resolve_inputs
from rewardherd.studies.runner import (
    MemberUnit,
    ensemble_members,
    ensure_pool,
    run_members,
)

log = logging.getLogger(__name__)
GROUPS = ("finetune", "pretrain")


def _data_key(inputs, config: StudyConfig) -> str:
    """Key of what a level's members are trained from: its pairs and the training config."""
    return config_hash({"train_config": config.train.hashed(),
                        **{split: [(p.id, p.prompt, p.chosen, p.rejected) for p in pairs]
                           for split, pairs in (("train", inputs.train_pairs), ("heldout", inputs.heldout_pairs))}})


def _matrix(pool: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """(prompts, pool size) from a column aligned with ``pool`` (sorted by prompt, sample)."""
    p = pool["prompt_id"].nunique()
    return np.asarray(values, dtype=np.float64).reshape(p, -1)


def _group_scores(data_dir: Path, pool: pd.DataFrame, units: list[MemberUnit]) -> tuple[np.ndarray, list[float]]:
    scores, accs = [], []
    for u in units:
        d = data_dir / "members" / u.name
        sc = pd.read_parquet(d / "scores.parquet").set_index(["prompt_id", "sample_id"])["score"]
        scores.append(_matrix(pool, sc.loc[list(zip(pool["prompt_id"], pool["sample_id"], strict=True))].to_numpy()))
        accs.append(float(json.loads((d / "info.json").read_text())["heldout_accuracy"]))
    return np.stack(scores), accs


def _level_rows(level: float, noise: float, config: StudyConfig, data_dir: Path, pool: pd.DataFrame,
                gold: np.ndarray, n_backbones: int, n_boot: int) -> tuple[list[dict], dict]:
    ns = n_grid(gold.shape[1], config.pool.max_n_fraction)
    rows, covs = [], {g: [] for g in GROUPS}
    kept = np.ones(gold.shape[0], dtype=bool)
    per_group: dict[str, list] = {g: [] for g in GROUPS}
    features = {schema.strip(schema.FEATURE, c): _matrix(pool, pool[c].to_numpy())
                for c in schema.columns(schema.FEATURE, pool.columns)}
    for seed in config.sweep.seeds:
        for group in GROUPS:
            units = [MemberUnit(b, ft, noise, seed)
                     for b, ft in ensemble_members(group, seed, config.ensemble_size, n_backbones)]
            scores, accs = _group_scores(data_dir, pool, units)
            d = member_diagnostics(scores, gold, ns)
            cov, ok = prompt_residual_covariances(scores, gold)
            full = np.full((gold.shape[0], *cov.shape[1:]), np.nan)
            full[ok] = cov
            covs[group].append(full)
            kept &= ok
            per_group[group].append({"d": d, "acc_in": float(np.mean(accs)),
                                     "features": shared_residual_features(scores, gold, features)})
    diff = residual_correlation_difference([c[kept] for c in covs["pretrain"]], [c[kept] for c in covs["finetune"]],
                                           n_boot=n_boot)
    for group in GROUPS:
        items = per_group[group]
        curve = np.mean([it["d"].mean_curve for it in items], axis=0)
        rows.append({
            "level": level, "noise": noise, "members": group, "seeds": len(items),
            "residual_rho": float(np.mean([it["d"].residual.rho_bar for it in items])),
            "rho_bar": float(np.mean([it["d"].sharing.rho_bar for it in items])),
            "acc_in": float(np.mean([it["acc_in"] for it in items])),
            "acc_out": float(np.mean([np.mean(it["d"].pool_accuracy) for it in items])),
            "spearman": float(np.mean([it["d"].mean_spearman for it in items])),
            "peak_n": int(ns[int(np.argmax(curve))]),
            "gain_to_peak": float(curve.max() - curve[0]), "drop_after_peak": float(curve.max() - curve[-1]),
            "curve": {int(n): float(v) for n, v in zip(ns, curve, strict=True)},
            "per_seed_peak_n": [it["d"].peak_n for it in items],
            "shared_residual_features": {f: {k: float(np.mean([it["features"][f][k] for it in items]))
                                             for k in ("shared_residual", "gold")} for f in features},
        })
    return rows, {"level": level, "noise": noise, "pretrain_minus_finetune_residual_rho": diff.as_dict(),
                  "prompts_kept": int(kept.sum())}


def run_diagnostics(config: StudyConfig, levels, out_dir: str | Path, *, progress: bool = True,
                    n_boot: int = 1000) -> Path:
    """Diagnose each level of ``world.gold.shared_error``; writes ``diagnostics.json`` and
    ``diagnostics.md`` under ``out_dir`` and returns the Markdown path."""
    if config.world is None:
        raise ValueError("diagnostics need the built-in world (the study config has a user source)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, diffs, seconds, data = [], [], {}, {}
    pool = None
    for level in levels:
        t0 = time.time()
        cfg = at_dial_level(config, float(level))
        inputs = resolve_inputs(cfg, progress=progress)
        data_dir = out / f"data-{_data_key(inputs, cfg)[:12]}"
        data.setdefault(data_dir.name, []).append(float(level))
        pool_path = ensure_pool(inputs, cfg, out, progress)
        if pool is None:
            pool = pd.read_parquet(pool_path).sort_values(["prompt_id", "sample_id"], ignore_index=True)
        n_backbones = len(inputs.backbones)
        units = list({u.name: u for noise in cfg.sweep.noise for seed in cfg.sweep.seeds for g in GROUPS
                      for u in (MemberUnit(b, ft, noise, seed)
                                for b, ft in ensemble_members(g, seed, cfg.ensemble_size, n_backbones))}.values())
        run_members(units, cfg, inputs.backbones, inputs.train_pairs, inputs.heldout_pairs, pool_path, data_dir,
                    f"members (level {level:g})", progress)
        gold = _matrix(pool, inputs.gold(pool["prompt"].tolist(), pool["response"].tolist()))
        for noise in cfg.sweep.noise:
            r, d = _level_rows(float(level), noise, cfg, data_dir, pool, gold, n_backbones, n_boot)
            rows += r
            diffs.append(d)
        seconds[f"{float(level):g}"] = round(time.time() - t0, 1)
    result = {"design": config.world.gold.design, "dial": config.dial, "bootstrap_members": config.train.bootstrap, "levels": [float(x) for x in levels], "rows": rows,
              "pretrain_vs_finetune": diffs, "members_shared_by_levels": data, "seconds": seconds,
              "world": config.world.name, "seeds": list(config.sweep.seeds), "ensemble_size": config.ensemble_size}
    write_json_atomic(out / "diagnostics.json", result)
    diagnostics_document(result).write(out, stem="diagnostics")
    return out / "diagnostics.md"


def diagnostics_table(result: dict) -> pd.DataFrame:
    """One row per (level, noise, member group): the preregistration table."""
    df = pd.DataFrame(result["rows"])
    df["curve"] = [" ".join(f"{v:+.3f}" for v in c.values()) for c in df["curve"]]
    return df.drop(columns=["per_seed_peak_n", "shared_residual_features"], errors="ignore")


def shared_features_table(result: dict) -> pd.DataFrame:
    """One row per pool feature: gold's within-prompt correlation with it, and the members'
    shared residual's, per (level, noise, member group) (means over seeds)."""
    rows = [r for r in result["rows"] if r.get("shared_residual_features")]
    if not rows:
        return pd.DataFrame()
    names = list(rows[0]["shared_residual_features"])
    table = {"feature": names}
    for r in rows:
        if f"gold at {r['level']:g}" not in table:
            table[f"gold at {r['level']:g}"] = [r["shared_residual_features"][f]["gold"] for f in names]
    for r in rows:
        table[f"{r['level']:g} / {r['noise']:g} / {r['members']}"] = [
            r["shared_residual_features"][f]["shared_residual"] for f in names]
    return pd.DataFrame(table)


def diagnostics_document(result: dict) -> Document:
    """The diagnostics report (``diagnostics.md`` and ``.html``): the preregistration table, the
    pretrain-minus-finetune differences and the shared residual features."""
    df = diagnostics_table(result)
    ns = list(result["rows"][0]["curve"]) if result["rows"] else []
    diff = pd.DataFrame([{"level": d["level"], "noise": d["noise"], "prompts": d["prompts_kept"],
                          "pretrain - finetune residual rho": interval_text(
                              d["pretrain_minus_finetune_residual_rho"]["estimate"],
                              d["pretrain_minus_finetune_residual_rho"]["low"],
                              d["pretrain_minus_finetune_residual_rho"]["high"])}
                         for d in result["pretrain_vs_finetune"]])
    doc = Document(f"Single-member diagnostics: gold design `{result['design']}`, world `{result['world']}`"
                   + (", members on bootstrap resamples" if result.get("bootstrap_members") else ""))
    doc.paragraph(
        f"Seeds {result['seeds']}, K = {result['ensemble_size']} members per group; levels of the `{result.get('dial', 'tail')}` "
        f"dial {result['levels']} (gold.shared_error" + (" and train.subsample_shared" if result.get("dial") == "tail_and_data" else "")
        + f"). Means over seeds. residual_rho: error correlation with gold's part regressed out; "
        "rho_bar: today's error correlation; acc_in: held-out preference pairs; acc_out: disjoint pool pairs; "
        "spearman: within-prompt with gold; curve: single-member best-of-n gold at n = "
        f"{', '.join(map(str, ns))} (members and seeds averaged). No ensemble was formed.")
    doc.table(df.round(3))
    doc.paragraph("Pretrain-seed minus fine-tune-seed residual error correlation (95% pigeonhole bootstrap over seeds "
                  "and prompts; it covers seeds and prompts, not world builds):")
    doc.table(diff)
    doc.paragraph("What the members share beyond gold: the within-prompt correlation of each pool feature with the "
                  "members' mean residual error (the part averaging cannot cancel), per level / noise / member group, "
                  "beside gold's own correlation with the feature at each level (core.shared_residual_features; means "
                  "over seeds):")
    doc.table(shared_features_table(result).round(3))
    doc.paragraph(f"Levels sharing trained members (identical preference data): {result['members_shared_by_levels']}. "
                  f"Seconds per level: {result['seconds']}.")
    return doc
