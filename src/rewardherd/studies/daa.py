"""The study's direct-alignment (DAA) arm, from stored units to tables, fits, its claim and a paragraph.

Each unit (:class:`rewardherd.studies.runner.DAAUnit`) is one `rewardherd dpo` run in
``cells/daa__...`` whose evaluations are at step 0 and at each checkpoint fraction of an
epoch (``StudyConfig.dpo``), so every seed's curve has the same T points. An *arm* is
(objective, beta, data, noise); its seeds are replicates. Here:

- ``results/daa.parquet``: one row per (arm, seed, evaluation): objective, beta, data, noise,
  seed, step, epoch, kl, sqrt_kl, gold, proxy (the seed's pretrain-ensemble mean when the
  study trained it, else NaN), on the same gold-vs-sqrt(KL) axes as best-of-n and RL;
- ``results/daa_band.parquet``: per arm and evaluation, the mean gold gain over step 0 with its
  95% crossed seeds x prompts t interval (:func:`rewardherd.core.crossed_interval`: seed and
  prompt variance, not world builds), the band the optimizers figure shades;
- ``results/daa_fits.json``: Gao's RL form R(d) = d (alpha - beta log d) per arm
  (:func:`rewardherd.core.fit_gao_pigeonhole`: pigeonhole bootstrap over seeds and prompts);
- ``results/daa_calibration.json``: C7's calibration at the arm's size, written by the calibration
  stage (:func:`calibrate_daa`);
- ``results/daa_claims.json``: C7 (:func:`rewardherd.studies.claims.rpo_vs_dpo_drop`) per
  (beta, data) with both DPO and RPO (its calibration scenarios:
  :func:`rewardherd.studies.calibration.daa_scenarios`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rewardherd import core, schema
from rewardherd.io import write_json_atomic, write_table_atomic

ARM = ["objective", "beta", "data", "noise"]


def daa_units(out: Path) -> list[tuple[dict, Path]]:
    """(unit record, directory) of every finished DAA unit."""
    return [(json.loads((d / "DONE").read_text()), d) for d in sorted((out / "cells").glob("daa__*"))
            if (d / "DONE").exists()]


def daa_table(out: Path) -> pd.DataFrame:
    """One row per (arm, seed, evaluation) (see the module docstring); empty without DAA units."""
    frames = []
    for unit, d in daa_units(out):
        ev = pd.read_parquet(d / "dpo_eval.parquet")
        proxy = ev[schema.ens_col("mean")] if schema.ens_col("mean") in ev else np.nan
        frames.append(pd.DataFrame({**{k: unit[k] for k in (*ARM, "seed")}, "step": ev["step"], "epoch": ev["epoch"],
                                    "kl": ev["kl"], "sqrt_kl": np.sqrt(np.clip(ev["kl"], 0, None)),
                                    "gold": ev["gold"], "proxy": proxy}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def daa_samples(out: Path) -> pd.DataFrame:
    """Every evaluated sample of every DAA unit, with its unit's arm and seed and its evaluation's ordinal."""
    frames = []
    for unit, d in daa_units(out):
        s = pd.read_parquet(d / "dpo_samples.parquet", columns=["prompt_id", "sample_id", "step", "kl", "gold"])
        s["point"] = s["step"].rank(method="dense").astype(int) - 1
        frames.append(s.assign(**{k: unit[k] for k in (*ARM, "seed")}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def arm_arrays(samples: pd.DataFrame, seeds) -> tuple[np.ndarray, np.ndarray]:
    """(S, P, T) per-prompt mean gold and KL of one arm's samples, seeds in ``seeds`` order.

    Seeds are aligned by evaluation ordinal (the study evaluates at fixed epoch fractions);
    runs with fewer evaluations than the others are a ValueError."""
    per = samples.groupby(["seed", "prompt_id", "point"])[["gold", "kl"]].mean()
    T = samples.groupby("seed")["point"].nunique()
    if T.nunique() != 1:
        raise ValueError(f"DAA seeds of one arm have different numbers of evaluations: {T.to_dict()}")
    prompts = sorted(samples["prompt_id"].unique())
    idx = pd.MultiIndex.from_product([list(seeds), prompts, range(int(T.iloc[0]))])
    per = per.reindex(idx)
    shape = (len(seeds), len(prompts), int(T.iloc[0]))
    return per["gold"].to_numpy().reshape(shape), per["kl"].to_numpy().reshape(shape)


def arm_grids(samples: pd.DataFrame) -> dict[tuple, tuple[list, np.ndarray, np.ndarray]]:
    """Per arm (``ARM`` values): its seeds and its (S, P, T) gold and KL (:func:`arm_arrays`),
    built once for the band and the fits."""
    out = {}
    for arm, g in samples.groupby(ARM):
        seeds = sorted(g["seed"].unique())
        out[arm] = (seeds, *arm_arrays(g, seeds))
    return out


def arm_band(grids: dict) -> pd.DataFrame:
    """Per arm and evaluation ordinal (``point``): sqrt(KL) (each seed's, averaged over seeds, as in
    ``daa.parquet``) and the mean gold gain over step 0 (estimate, low, high).

    The gain is per (seed, prompt) (the prompt's mean gold at the evaluation minus at step 0,
    same seed), so the interval is :func:`rewardherd.core.crossed_interval` over seeds x
    prompts; it covers seed and prompt variance, not the world build."""
    rows = []
    for arm, (seeds, gold, kl) in grids.items():
        sqrt_kl = np.sqrt(np.clip(kl.mean(axis=1), 0, None)).mean(axis=0)  # each seed's sqrt(mean KL), averaged
        for t in range(gold.shape[2]):
            iv = core.crossed_interval(gold[:, :, t] - gold[:, :, 0])
            rows.append({**dict(zip(ARM, arm, strict=True)), "point": t, "sqrt_kl": float(sqrt_kl[t]), "seeds": len(seeds),
                         "prompts": gold.shape[1], "estimate": iv.estimate, "low": iv.low, "high": iv.high})
    return pd.DataFrame(rows)


def arm_fits(grids: dict, n_boot: int, seed: int = 0) -> list[dict]:
    """Gao's RL form per arm (``grids``: :func:`arm_grids`), with its pigeonhole-bootstrap
    interval over seeds and prompts."""
    rows = []
    for arm, (_, gold, kl) in grids.items():
        fit = core.fit_gao_pigeonhole(gold, kl, "rl", n_boot=n_boot, seed=seed)
        S, P = gold.shape[:2]
        objective, kl_coef, data, noise = arm  # the arm's beta is kl_coef here, as in RL's rows: fit["beta"] is Gao's
        rows.append({"optimizer": "daa", "objective": objective, "kl_coef": kl_coef, "data": data, "noise": noise,
                     "seeds": S, "prompts": P, **fit,
                     "covers": f"{S} seed(s) x {P} evaluation prompts (pigeonhole bootstrap); world fixed"})
    return rows


def daa_claims(samples: pd.DataFrame) -> list[dict]:
    """C7 per (beta, data, noise) where the study ran both DPO and RPO (same seeds and prompts)."""
    from rewardherd.studies import claims as cl

    results = []
    for (beta, data, noise), g in samples.groupby(["beta", "data", "noise"]):
        if not {"dpo", "rpo"} <= set(g["objective"]):
            continue
        seeds = sorted(set(g.loc[g["objective"] == "dpo", "seed"]) & set(g.loc[g["objective"] == "rpo", "seed"]))
        dpo, _ = arm_arrays(g[(g["objective"] == "dpo") & g["seed"].isin(seeds)], seeds)
        rpo, _ = arm_arrays(g[(g["objective"] == "rpo") & g["seed"].isin(seeds)], seeds)
        select = cl.split_prompts(dpo.shape[1], seed=0)
        r = cl.apply("rpo_vs_dpo_drop", dpo, rpo, np.arange(dpo.shape[2]), select,
                     comparison=f"DPO's held-out peak-to-end gold drop minus RPO's, beta {beta:g}, {data} data, "
                                f"noise {noise:g}")
        results.append({**r.as_dict(), "beta": beta, "data": data, "noise": noise})
    return results


def daa_calibration(config, samples: pd.DataFrame, known: list[dict] | None = None) -> dict:
    """C7's calibration at the arm's size (seeds, evaluation prompts, evaluations), cached like the study's;
    cells in ``known`` (a finished study's stored rows, by key) are not simulated again."""
    from rewardherd.studies import calibration as cal
    from rewardherd.world.cache import default_cache_dir

    size = cal.DAASize(seeds=len(config.daa_sweep.seeds), prompts=int(samples["prompt_id"].nunique()),
                       points=int(samples["point"].nunique()))
    if config.calibration_replicates < 1:
        return {"size": size.__dict__, "replicates": 0, "rows": [], "summary": {}}
    cache = config.cache_dir or (default_cache_dir() if config.user is None else None)
    t = time.time()
    rows = cal.calibrate(size, config.calibration_replicates, cache_dir=cache, cells=cal.daa_scenarios(), known=known)
    return {"size": size.__dict__, "replicates": config.calibration_replicates, "rows": rows,
            "summary": cal.summarize(rows), "seconds": round(time.time() - t, 1)}


def analyze_daa(out: Path, config) -> list[dict]:
    """Write the DAA arm's tables, fits, claims and calibration (nothing without DAA units); return the fits."""
    res = Path(out) / "results"
    table = daa_table(Path(out))
    if table.empty:
        return []
    write_table_atomic(table, res / "daa.parquet")
    samples = daa_samples(Path(out))
    grids = arm_grids(samples)
    write_table_atomic(arm_band(grids), res / "daa_band.parquet")
    fits = arm_fits(grids, n_boot=min(config.bootstrap, 1000))
    write_json_atomic(res / "daa_fits.json", fits)
    keep_stored_calibration(res)
    write_json_atomic(res / "daa_claims.json", {"claims": daa_claims(samples)})
    return fits


def keep_stored_calibration(res: Path) -> None:
    """Before a study from before 2026-12-08 has its ``daa_claims.json`` rewritten: move the C7
    calibration it held into ``daa_calibration.json``, so the calibration stage reuses its rows."""
    if (res / "daa_calibration.json").exists() or not (res / "daa_claims.json").exists():
        return
    legacy = json.loads((res / "daa_claims.json").read_text()).get("calibration")
    if legacy:
        write_json_atomic(res / "daa_calibration.json", legacy)


def stored_daa_calibration(res: Path) -> dict:
    """The DAA arm's stored calibration: ``daa_calibration.json``, or where studies before 2026-12-08
    kept it, inside ``daa_claims.json``; empty if neither has one."""
    if (res / "daa_calibration.json").exists():
        return json.loads((res / "daa_calibration.json").read_text())
    if (res / "daa_claims.json").exists():
        return json.loads((res / "daa_claims.json").read_text()).get("calibration", {})
    return {}


def calibrate_daa(out: Path, config) -> dict | None:
    """The calibration stage's DAA part: C7 at the arm's size, ``results/daa_calibration.json``
    (None and nothing written without a DAA arm). Stored rows are reused by key."""
    res = Path(out) / "results"
    if not (res / "daa.parquet").exists():
        return None
    known = stored_daa_calibration(res).get("rows", [])
    calibration = daa_calibration(config, daa_samples(Path(out)), known=known)
    write_json_atomic(res / "daa_calibration.json", calibration)
    return calibration


def _arm_label(objective: str, beta: float, data: str) -> str:
    return f"{objective.upper()} (beta {beta:g}, {data} data)"


def _shape(gold: pd.Series) -> str:
    """How a mean gold curve (indexed by epoch) moves, in words."""
    top, start, end = gold.max(), gold.iloc[0], gold.iloc[-1]
    if top <= start:  # the highest point is step 0 (ties included)
        return "never rises above its step-0 gold"
    if gold.idxmax() < gold.index.max() and end < top:
        return "peaks before the end of training and falls"
    if end > start:
        return "rises to the end of training (no peak inside the tested range)"
    return "never rises above its step-0 gold"


def daa_paragraph(table: pd.DataFrame, fits: list[dict], claims: list[dict]) -> str:
    """What the built-in world shows for the DAA arm, in words generated from its results."""
    if table.empty:
        return ""
    parts = []
    for arm, g in table.groupby(ARM):
        m = g.groupby("epoch")[["gold", "sqrt_kl"]].mean().sort_index()
        peak = m["gold"].idxmax()
        parts.append(f"{_arm_label(*arm[:3])}: mean gold {m['gold'].iloc[0]:.3f} at step 0, highest ({m['gold'].max():.3f}) "
                     f"at epoch {peak:.3g} (sqrt KL {m.loc[peak, 'sqrt_kl']:.2f}), {m['gold'].iloc[-1]:.3f} at the end; "
                     f"its curve {_shape(m['gold'])}.")
    for f in fits:
        iv = (f"95% interval [{f['beta_low']:.3g}, {f['beta_high']:.3g}]" if np.isfinite(f["beta_low"])
              else "no interval")
        parts.append(f"Gao's RL form on {_arm_label(f['objective'], f['kl_coef'], f['data'])}: alpha {f['alpha']:.3g} "
                     f"[{f['alpha_low']:.3g}, {f['alpha_high']:.3g}], beta {f['beta']:.3g} ({iv}), R^2 {f['r2']:.2f}.")
    for c in claims:
        parts.append(f"C7 ({c['comparison']}): {c['estimate']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}], "
                     f"{c['verdict']}.")
    return " ".join(parts)


def beside_text(curves: pd.DataFrame, rl: pd.DataFrame | None, table: pd.DataFrame) -> str:
    """One sentence per optimizer family at the DAA arm's label noise: each one's largest mean gold
    gain over its reference and the sqrt(KL) where it is reached, so the three can be read together."""
    if table.empty:
        return ""
    noise = float(table["noise"].iloc[0])
    parts = []
    bon = curves[np.isclose(curves["noise"], noise) & (curves["kind"] == "pretrain")] if not curves.empty else curves
    if not bon.empty:
        best = bon.loc[bon["gold_delta"].idxmax()]
        parts.append(f"Best-of-n (pretrain ensembles, noise {noise:g}): largest gold gain {best['gold_delta']:+.3f} "
                     f"({best['method']}, n={int(best['n'])}, sqrt KL {np.sqrt(best['kl']):.2f}).")
    if rl is not None and not rl.empty and "gold" in rl:
        gains = []
        for _, g in rl.groupby(["unit_kind", "unit_method", "unit_kl_coef"]):
            m = g.groupby("step")[["kl", "gold"]].mean().sort_index()
            gains.append(((m["gold"] - m["gold"].iloc[0]).max(), np.sqrt(max(m["kl"].iloc[-1], 0.0))))
        top = max(gains)
        parts.append(f"RL: largest gold gain {top[0]:+.3f} over {len(gains)} arm(s) (end sqrt KL up to "
                     f"{max(k for _, k in gains):.2f}).")
    gains = []
    for arm, g in table.groupby(ARM):
        m = g.groupby("epoch")[["gold", "sqrt_kl"]].mean().sort_index()
        gains.append(((m["gold"] - m["gold"].iloc[0]).max(), _arm_label(*arm[:3]), m["sqrt_kl"].iloc[-1]))
    top = max(gains)
    parts.append(f"Direct alignment: largest gold gain {top[0]:+.3f} ({top[1]}; its end sqrt KL {top[2]:.2f}).")
    return " ".join(parts)
