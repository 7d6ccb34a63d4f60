"""Turn stored study tables into curves, fits, claims and diagnostics (no training here).

Reads the runner's tables (``cells/``, ``pool.parquet``, ``results/members.parquet``,
``members/<unit>/scores.parquet``), turns them into arrays, and hands them to the
claim functions of :mod:`rewardherd.studies.claims`, whose rules and calibration live
there. Curve bands use the same crossed seeds x prompts interval as the claims.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rewardherd import core, schema
from rewardherd.io import write_json_atomic, write_table_atomic
from rewardherd.studies import kinds

log = logging.getLogger(__name__)


def load_cells(out: Path) -> pd.DataFrame:
    files = sorted((out / "cells").glob("bon__*.parquet"))
    if not files:
        raise FileNotFoundError(f"{out}/cells: no best-of-n cells")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def single_average(cells: pd.DataFrame) -> pd.DataFrame:
    """Average single-RM curve per (noise, seed, n, prompt) over members."""
    s = cells[cells["kind"] == "single"]
    num = [c for c in s.columns if c not in ("method", "kind", "member") and pd.api.types.is_numeric_dtype(s[c])]
    avg = s.groupby(["noise", "seed", "n", "prompt_id"], as_index=False)[[c for c in num if c not in
                                                                          ("noise", "seed", "n", "prompt_id")]].mean()
    return avg.assign(kind="single", method="mean", member="average", size=1)


def curves_table(cells: pd.DataFrame, config) -> pd.DataFrame:
    """Mean gold/proxy/features per (noise, kind, method, size, n) with bootstrap CIs of re-centred gold."""
    rows = []
    keys = ["noise", "kind", "method", "size", "n"]
    base = cells[cells["n"] == 1].groupby(["noise", "seed", "prompt_id"])["gold"].mean()
    cells = cells[(cells["kind"] != "single") | (cells["member"] == "average")]
    for (noise, kind, method, size, n), g in cells.groupby(keys):
        wide = g.pivot_table(index="seed", columns="prompt_id", values="gold")
        b = base.loc[noise].unstack("prompt_id").loc[wide.index, wide.columns].to_numpy()
        iv = core.crossed_interval(wide.to_numpy() - b)  # as the claims use
        row = {"noise": noise, "kind": kind, "method": method, "size": size, "n": n, "kl": float(g["kl"].iloc[0]),
               "gold": float(g["gold"].mean()), "gold_delta": iv.estimate, "gold_delta_low": iv.low,
               "gold_delta_high": iv.high, "proxy": float(g["proxy"].mean())}
        for c in schema.columns(schema.FEATURE, g.columns):
            row[c] = float(g[c].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def member_band(cells: pd.DataFrame) -> pd.DataFrame:
    """Best and worst single member (by mean gold at n_max, per noise and seed), averaged over seeds."""
    s = cells[(cells["kind"] == "single") & (cells["member"] != "average")]
    nmax = s["n"].max()
    end = s[s["n"] == nmax].groupby(["noise", "seed", "member"])["gold"].mean()
    rows = []
    for (noise, seed), g in end.groupby(level=[0, 1]):
        best, worst = g.idxmax()[2], g.idxmin()[2]
        for label, m in (("best", best), ("worst", worst)):
            c = s[(s["noise"] == noise) & (s["seed"] == seed) & (s["member"] == m)]
            rows.append(c.groupby("n", as_index=False)[["gold", "kl"]].mean().assign(noise=noise, seed=seed, which=label))
    return pd.concat(rows).groupby(["noise", "which", "n"], as_index=False)[["gold", "kl"]].mean()


def member_units(members: pd.DataFrame, kind: str, noise: float, seed: int) -> list[str]:
    """The units of one ensemble, in slot order (from the runner's members table)."""
    m = members[(members["kind"] == kind) & (members["noise"] == noise) & (members["seed"] == seed)]
    return m.sort_values("slot")["unit"].tolist()


def _curve(cells: pd.DataFrame, prompts, ns, **match) -> np.ndarray:
    """(P, G) gold of one curve (cells rows matching ``match``) over prompts x n."""
    c = cells
    for k, v in match.items():
        c = c[c[k] == v]
    wide = c.pivot_table(index="prompt_id", columns="n", values="gold", aggfunc="mean")
    return wide.reindex(index=prompts, columns=ns).to_numpy()


def _member_curves(single: pd.DataFrame, members: pd.DataFrame, kind: str, noise: float, seeds, prompts,
                   ns) -> np.ndarray:
    """(S, K, P, G) gold curves of one ensemble kind's members, each optimized alone."""
    return np.stack([np.stack([_curve(single, prompts, ns, seed=s, member=u)
                               for u in member_units(members, kind, noise, s)]) for s in seeds])


def claim_results(cells: pd.DataFrame, config, zt: pd.DataFrame, members: pd.DataFrame) -> list[dict]:
    """Every claim of the papers on this study's tables (rules in rewardherd.studies.claims)."""
    from rewardherd.studies import claims as cl

    results = []
    ns = sorted(int(n) for n in cells["n"].unique())
    nmax = ns[-1]
    methods = [core.Aggregation.parse(m).label for m in config.sweep.methods]
    conservative = [m for m in methods if not m.startswith(("mean", "median")) or m.startswith("mean_minus_std")]
    k = config.ensemble_size
    prompts = sorted(cells["prompt_id"].unique())
    select = cl.split_prompts(len(prompts), seed=0)
    seeds = list(config.sweep.seeds)
    for noise in config.sweep.noise:
        tag = f"noise {noise:g}"
        c = cells[cells["noise"] == noise]
        ens = c[(c["kind"] != "single") & (c["size"] == k)]
        single = c[c["kind"] == "single"]

        mc = {kind: _member_curves(single, members, kind, noise, seeds, prompts, ns)
              for kind in kinds.MAIN_KINDS}

        def ens_curve(kind: str, m: str, ens=ens) -> np.ndarray:  # (S, P, G)
            return np.stack([_curve(ens, prompts, ns, seed=s, kind=kind, method=m) for s in seeds])

        for kind in cl.SPECS["ensemble_vs_own_members"].kinds:
            for m in methods:
                r = cl.apply("ensemble_vs_own_members", ens_curve(kind, m)[..., -1], mc[kind][..., -1],
                             comparison=f"{kind} ensemble ({m}) - its own {k} members, gold at n={nmax}, {tag}")
                results.append(r.as_dict())
        for m in methods:
            r = cl.apply("pretrain_vs_finetune", ens_curve("pretrain", m)[..., -1], ens_curve("finetune", m)[..., -1],
                         comparison=f"pretrain - finetune ensemble ({m}), gold at n={nmax}, {tag}")
            results.append(r.as_dict())
        for m in methods:
            curve = ens_curve("pretrain", m)
            r = cl.apply("residual_overoptimization", curve, ns, select)
            extra = {}
            lencol = next((f for f in map(schema.feature_col, ("n_tokens", "n_words")) if f in ens.columns), None)
            if lencol:
                e = ens[(ens["kind"] == "pretrain") & (ens["method"] == m)]
                extra = {"length_feature": schema.strip(schema.FEATURE, lencol),
                         "length_drift": float(e[e["n"] == nmax][lencol].mean() - e[e["n"] == 1][lencol].mean())}
            d = r.as_dict()
            d.update(comparison=f"pretrain ensemble ({m}): gold at held-out peak n={d['peak_n']} - gold at "
                                f"n={nmax}, {tag}", **extra)
            results.append(d)
        for kind in cl.SPECS["conservative_aggregation"].kinds:
            for m in conservative:
                r = cl.apply("conservative_aggregation", mc[kind].mean(axis=1), ens_curve(kind, m), ns, select)
                d = r.as_dict()
                d["comparison"] = (f"{kind}: own members' drop (peak n={d['members_peak_n']}) - {m} ensemble's drop "
                                   f"(peak n={d['ensemble_peak_n']}), {tag}")
                results.append(d)
        r = cl.apply("gao_bon_form", mc["pretrain"].mean(axis=1), ns, select)
        d = r.as_dict()
        d["comparison"] = (f"Gao best-of-n fit of the pretrain ensemble's members (average), beta; R^2={d['r2']:.2f}, "
                           f"peak d*={d['peak_d']:.2f} (tested d <= {d['d_max']:.2f}), {tag}")
        results.append(d)
        z = pool_member_z(zt, members, "pretrain", noise, seeds)  # (S, P, K, N)
        r = cl.apply("cross_rm_transfer", z, nmax, comparison=f"pretrain members: predicted - actual gain of the "
                                                              f"other members when one is optimized, n={nmax}, {tag}")
        results.append(r.as_dict())
        top = max(2, z.shape[-1] // nmax)
        r = cl.apply("underspecification", z, top,
                     comparison=f"pretrain members: Kendall tau on each prompt's top {top} of {z.shape[-1]} "
                                f"(n={nmax}) - its Gaussian-copula expectation, {tag}")
        results.append(r.as_dict())
    return results


def load_kind_cells(out: Path) -> pd.DataFrame:
    """The extra kinds' best-of-n cells (empty when the study has none)."""
    files = sorted((out / "cells").glob("kinds__*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True) if files else pd.DataFrame()


def kind_costs(members: pd.DataFrame, kind: str, noise: float, seeds) -> dict:
    """Mean over seeds of one ensemble's training and pool-scoring seconds, each trained
    model counted once, plus the training of the kinds its spec's ``train_includes`` names
    (warm: the finetune members it averages)."""
    train, score = [], []
    for s in seeds:
        m = members[(members["kind"] == kind) & (members["noise"] == noise) & (members["seed"] == s)]
        m = m.drop_duplicates("trained")
        t = float(m["train_seconds"].sum())
        for other in kinds.spec(kind).train_includes:
            f = members[(members["kind"] == other) & (members["noise"] == noise) & (members["seed"] == s)]
            t += float(f.drop_duplicates("trained")["train_seconds"].sum())
        train.append(t)
        score.append(float(m["score_seconds"].sum()))
    return {"train_seconds": float(np.mean(train)), "score_seconds": float(np.mean(score))}


def kind_results(cells: pd.DataFrame, kcells: pd.DataFrame, config, members: pd.DataFrame) -> tuple[list, list]:
    """Every ensemble kind at n_max, with its cost: its gold minus the average full fine-tuned
    single member's (one baseline for every kind), minus its own members' (C3), and minus the
    finetune ensemble's with the same method (same backbone, seeds and noisy data).

    The first two use the C3 rule :func:`~rewardherd.studies.claims.ensemble_vs_own_members`,
    the third the C3 paired difference :func:`~rewardherd.studies.claims.pretrain_vs_finetune`,
    each calibrated in its C3 rows; only what is compared differs. Each row also has the gain
    over its own members at each curve's peak (chosen on the claims' selection half of the
    prompts, :func:`~rewardherd.studies.claims.ensemble_vs_own_members_at_peak`; calibrated in
    the error-sharing sweep's report). Returns ``(rows, claims)``:
    one row per (noise, kind, method), and the own-member C3 claims of the extra kinds (the
    finetune and pretrain ones are among the main claims already).
    """
    from rewardherd.studies import claims as cl

    if "train_seconds" not in members.columns:  # members table of an older run
        members = members.assign(trained=members["unit"], train_seconds=np.nan, score_seconds=np.nan)
    ns = sorted(int(n) for n in cells["n"].unique())
    nmax, k, seeds = ns[-1], config.ensemble_size, list(config.sweep.seeds)
    prompts = sorted(cells["prompt_id"].unique())
    select = cl.split_prompts(len(prompts), seed=0)  # the claims' split (C4, C5)
    methods = [core.Aggregation.parse(m).label for m in config.sweep.methods]
    rows, claims = [], []
    for noise in config.sweep.noise:
        tag = f"gold at n={nmax}, noise {noise:g}"
        c = cells[cells["noise"] == noise]
        single = c[c["kind"] == "single"]
        x = kcells[kcells["noise"] == noise] if not kcells.empty else kcells
        full = [sorted(set(member_units(members, "finetune", noise, s)) | set(member_units(members, "pretrain", noise,
                                                                                             s))) for s in seeds]
        base = np.stack([np.stack([_curve(single, prompts, [nmax], seed=s, member=u)[:, 0] for u in us])
                         for s, us in zip(seeds, full, strict=True)])  # (S, 2K-1, P)
        for kind in config.sweep.kinds:
            sp = kinds.spec(kind)
            ens_rows = (c[(c["kind"] == kind) & (c["size"] == k)] if sp.main
                        else x[(x["kind"] == kind) & (x["member"] == "")])
            mem_rows = single if kinds.spec(sp.own).main else x[x["member"] != ""]  # where its members' curves are
            own_curves = _member_curves(mem_rows, members, sp.own, noise, seeds, prompts, ns)  # (S, K, P, G)
            own = own_curves[..., -1]
            cost = kind_costs(members, kind, noise, seeds)
            passes = sp.forward_passes(k)
            for m in (["mean"] if sp.fixed_method else methods):
                ens_curves = np.stack([_curve(ens_rows, prompts, ns, seed=s, method=m) for s in seeds])  # (S, P, G)
                ens = ens_curves[..., -1]
                # a fixed-method kind (warm) is compared with the finetune mean only if the study computed it
                ft = None if kind == "finetune" or m not in methods else np.stack(
                    [_curve(c[(c["kind"] == "finetune") & (c["size"] == k)], prompts, [nmax], seed=s, method=m)[:, 0]
                     for s in seeds])
                label = sp.label(m)
                vs_single = cl.apply("ensemble_vs_own_members", ens, base,
                                     comparison=f"{label} - the average full fine-tuned single member, {tag}")
                vs_own = cl.apply("ensemble_vs_own_members", ens, own,
                                  comparison=f"{label} - its own {own.shape[1]} members"
                                             f"{f' (the {sp.own} members it averages)' if sp.own != kind else ''}, "
                                             f"{tag}")
                at_peak = cl.apply("ensemble_vs_own_members_at_peak", own_curves.mean(axis=1), ens_curves, ns, select)
                vs_ft = None if ft is None else cl.apply("pretrain_vs_finetune", ens, ft,
                                                         comparison=f"{label} - finetune ensemble ({m}), {tag}")
                if not sp.main:
                    claims.append(vs_own.as_dict())
                rows.append({"noise": noise, "kind": kind, "method": sp.method_name(m),
                             "members": int(own.shape[1]), "forward_passes": passes, **cost,
                             "gold": float(ens.mean()),
                             "gain_vs_single": vs_single.estimate, "gain_vs_single_low": vs_single.low,
                             "gain_vs_single_high": vs_single.high, "verdict_vs_single": vs_single.verdict,
                             "gain_vs_own": vs_own.estimate, "gain_vs_own_low": vs_own.low,
                             "gain_vs_own_high": vs_own.high, "verdict_vs_own": vs_own.verdict,
                             "gain_vs_own_peak": at_peak.estimate, "gain_vs_own_peak_low": at_peak.low,
                             "gain_vs_own_peak_high": at_peak.high, "verdict_vs_own_peak": at_peak.verdict,
                             "own_peak_n": at_peak.extra["members_peak_n"],
                             "ensemble_peak_n": at_peak.extra["ensemble_peak_n"],
                             **({} if vs_ft is None else {
                                 "gain_vs_finetune": vs_ft.estimate, "gain_vs_finetune_low": vs_ft.low,
                                 "gain_vs_finetune_high": vs_ft.high, "verdict_vs_finetune": vs_ft.verdict}),
                             "covers": vs_single.covers})
    return rows, claims


def study_calibration(config, cells: pd.DataFrame, out: Path | None = None) -> dict:
    """The claim rules' calibration at this study's size: simulated, except the cells that
    ``out``'s stored calibration or the cache already has (each cell keyed by its content)."""
    from rewardherd.studies import calibration as cal
    from rewardherd.world.cache import default_cache_dir

    size = cal.Size(seeds=len(config.sweep.seeds), prompts=int(cells["prompt_id"].nunique()), pool=config.pool.size,
                    members=config.ensemble_size, max_n_fraction=config.pool.max_n_fraction)
    if config.calibration_replicates < 1:
        return {"size": size.__dict__, "replicates": 0, "rows": [], "summary": {}, "seconds": 0.0}
    # Shared through the world cache when the study uses one (the built-in world, or --cache-dir).
    cache = config.cache_dir or (default_cache_dir() if config.user is None else None)
    t = time.time()
    # A finished study's rows are reused by key, so rebuilding its report simulates nothing.
    previous = Path(out) / "results" / "calibration.json" if out is not None else None
    known = json.loads(previous.read_text()).get("rows", []) if previous is not None and previous.exists() else []
    rows = cal.calibrate(size, config.calibration_replicates, cache_dir=cache, known=known,
                         workers=os.cpu_count() or 1)  # cells are independent: one process per core
    return {"size": size.__dict__, "replicates": config.calibration_replicates, "rows": rows,
            "summary": cal.summarize(rows), "seconds": round(time.time() - t, 1)}


def calibrate(out: Path, config) -> dict:
    """The calibration stage, after :func:`analyze`: ``results/calibration.json``, the claim rules'
    false-positive rates and power at this study's size (:func:`study_calibration`). Simulates
    only the cells neither the stored file nor the cache holds, so on a finished study (and in
    ``rewardherd report``) it simulates nothing."""
    from rewardherd.studies.daa import calibrate_daa

    out = Path(out)
    cal = study_calibration(config, load_cells(out), out)
    write_json_atomic(out / "results" / "calibration.json", cal)
    calibrate_daa(out, config)  # C7 at the DAA arm's own size, where the study has one
    return cal


def pool_member_z(zt: pd.DataFrame, members: pd.DataFrame, kind: str, noise: float, seeds) -> np.ndarray:
    """(S, P, K, N) standardized pool scores of one ensemble kind's members, per seed."""
    zt = zt.sort_values(["prompt_id", "sample_id"])
    P = zt["prompt_id"].nunique()
    per_seed = []
    for s in seeds:
        units = member_units(members, kind, noise, s)
        per_seed.append(zt[units].to_numpy().T.reshape(len(units), P, -1).transpose(1, 0, 2))  # (P, K, N)
    return np.stack(per_seed)


def member_z_table(out_dir, pool: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """Every trained member's standardized scores on every pool sample, read once.

    Columns: prompt_id, sample_id, gold, and one column per unit (in pool order).
    """
    stats = members.drop_duplicates("unit").set_index("unit")
    frame = pool[["prompt_id", "sample_id", "gold"]].copy()
    for u in stats.index:
        sc = pd.read_parquet(Path(out_dir) / "members" / u / "scores.parquet")
        z = core.standardize(sc["score"].to_numpy()[None, :], [stats.loc[u, "mean"]], [stats.loc[u, "std"]])[0]
        frame = frame.merge(sc[["prompt_id", "sample_id"]].assign(**{u: z}), on=["prompt_id", "sample_id"])
    return frame


#: uncertainty() z-scores gold and the ensemble mean over the pool. A user's gold can
#: score every pool sample alike (std 0; the tiny rule gold on random text does), so the
#: std is floored here: a constant series maps to zeros instead of stopping the report.
UNCERTAINTY_STD_FLOOR = 1e-12


def _z_floored(x: np.ndarray) -> np.ndarray:
    """(x - mean) / max(std, UNCERTAINTY_STD_FLOOR), through core.standardize; x is (b,)."""
    return core.standardize(x[None, :], [x.mean()], [max(x.std(), UNCERTAINTY_STD_FLOOR)])[0]


def uncertainty(zt: pd.DataFrame, config, members: pd.DataFrame) -> list[dict]:
    """Does the ensemble spread predict the proxy-gold gap? Spearman and AUROC per kind."""
    rows = []
    gold = zt["gold"].to_numpy()
    gz = _z_floored(gold)
    bad = gold < np.median(gold)
    for noise in config.sweep.noise:
        for kind in kinds.MAIN_KINDS:
            sp, sa, au = [], [], []
            for seed in config.sweep.seeds:
                mem = member_units(members, kind, noise, seed)
                z = zt[mem].to_numpy().T
                spread = core.spread(z).std
                gap = _z_floored(z.mean(axis=0)) - gz
                sp.append(core.spearman(spread, gap))
                sa.append(core.spearman(spread, np.abs(gap)))
                au.append(core.auroc(spread, bad))
            rows.append({"noise": noise, "kind": kind, "spearman_spread_vs_gap": float(np.mean(sp)),
                         "spearman_spread_vs_abs_gap": float(np.mean(sa)),
                         "auroc_spread_for_gold_below_median": float(np.mean(au)), "seeds": len(sp)})
    return rows


def optimized_accuracy(zt: pd.DataFrame, config, members: pd.DataFrame) -> list[dict]:
    """Member accuracy on gold-labelled pairs (pretrain-ensemble best-of-N pick vs each other sample)."""
    rows = []
    for noise in config.sweep.noise:
        for seed in config.sweep.seeds:
            units = sorted({u for kind in kinds.MAIN_KINDS for u in member_units(members, kind, noise, seed)})
            pre = member_units(members, "pretrain", noise, seed)
            frame = zt[["prompt_id", "gold", *units]]
            acc = {m: [] for m in units}
            for _, g in frame.groupby("prompt_id"):
                top = int(np.argmax(g[pre].to_numpy().mean(axis=1)))
                gold = g["gold"].to_numpy()
                others = np.arange(len(g)) != top
                gold_says = gold[top] > gold[others]
                for m in units:
                    s = g[m].to_numpy()
                    acc[m].append(np.mean((s[top] > s[others]) == gold_says))
            for m in units:
                acc_in = members.loc[members["unit"] == m, "heldout_accuracy"].iloc[0]
                rows.append({"noise": noise, "seed": seed, "member": m, "heldout_accuracy": acc_in,
                             "optimized_accuracy": float(np.mean(acc[m]))})
    return rows


def sharing_rows(zt: pd.DataFrame, config, members: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Shared vs idiosyncratic error of each ensemble's members on the pool (off distribution,
    ``where="pool"``), z-scored within each prompt, and on the held-out pairs (in distribution,
    ``where="heldout"``), per (noise, seed, kind); see docs/error_sharing.md."""
    from rewardherd.studies.sharing import sharing_table

    frames = []
    for noise in config.sweep.noise:
        for seed in config.sweep.seeds:
            groups = {kind: member_units(members, kind, noise, seed) for kind in kinds.MAIN_KINDS}
            try:
                t = sharing_table(zt, groups, degenerate="drop")
            except ValueError as e:  # e.g. gold constant within every prompt: nothing to decompose
                log.warning("error sharing not computed for noise %g, seed %s: %s", noise, seed, e)
                continue
            frames.append(t.drop(columns=["members", "member_variance"]).assign(noise=noise, seed=seed, where="pool"))
    frames += heldout_sharing(out, config, members)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["kind", "noise", "seed", "where"])


def heldout_sharing(out: Path, config, members: pd.DataFrame) -> list[pd.DataFrame]:
    """The same decomposition in distribution: each member's margin on the held-out pairs
    against gold's margin (:func:`rewardherd.core.margin_error_sharing`), z-scored across pairs."""
    gold_path = out / "heldout_gold.parquet"
    if not gold_path.exists():
        return []
    gold = pd.read_parquet(gold_path).set_index("id")
    frames = []
    for noise in config.sweep.noise:
        for seed in config.sweep.seeds:
            for kind in kinds.MAIN_KINDS:
                tabs = [pd.read_parquet(out / "members" / u / "heldout.parquet").set_index("id")
                        for u in member_units(members, kind, noise, seed)]
                ids = tabs[0].index.intersection(gold.index)
                g = gold.loc[ids]
                try:
                    r = core.margin_error_sharing(np.stack([t.loc[ids, "chosen"] for t in tabs]),
                                                  np.stack([t.loc[ids, "rejected"] for t in tabs]),
                                                  g["gold_chosen"].to_numpy(), g["gold_rejected"].to_numpy())
                except ValueError as e:  # e.g. a member's margins are constant
                    log.warning("held-out error sharing not computed for %s, noise %g, seed %s: %s", kind, noise, seed, e)
                    continue
                row = {k: v for k, v in r.as_dict().items() if k != "member_variance"}
                frames.append(pd.DataFrame([{"kind": kind, **row, "noise": noise, "seed": seed,
                                             "where": "heldout"}]))
    return frames


def rl_arm_fits(rl: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Gao's RL form R(d) = d (alpha - beta log d) per RL arm, pooled over its seeds, with
    a 95% bootstrap interval over seeds (each seed: its own RL run; the 'single' arm also
    rotates its member). With one seed there is no interval (the run is an illustration).
    """
    rows = []
    keys = ["unit_kind", "unit_method", "unit_noise", "unit_kl_coef"]
    if "gold" not in rl or not set(keys) <= set(rl.columns):
        return rows
    for (kind, method, noise, kl_coef), g in rl.groupby(keys):
        runs = []
        for _, r in g.groupby("unit_seed"):
            r = r.sort_values("step")
            runs.append((np.sqrt(np.clip(r["kl"].to_numpy(), 0, None)), r["gold"].to_numpy() - r["gold"].iloc[0]))
        d, y = (np.concatenate(a) for a in zip(*runs, strict=True))
        if len(d) < 3:
            continue
        fit = core.fit_gao(d, y, "rl")
        row = {"optimizer": "rl_arm", "kind": kind, "method": method, "noise": float(noise), "kl_coef": float(kl_coef),
               "seeds": len(runs), **fit.as_dict(), "alpha_low": None, "alpha_high": None, "beta_low": None,
               "beta_high": None, "covers": "one RL seed: no interval (illustration)"}
        if len(runs) >= 2:
            rng = np.random.default_rng(seed)
            boots = []
            for _ in range(n_boot):
                pick = [runs[i] for i in rng.integers(0, len(runs), len(runs))]
                dd, yy = (np.concatenate(a) for a in zip(*pick, strict=True))
                a, b = core.fit_gao_batch(dd, yy[None, :], "rl")
                boots.append((a[0], b[0]))
            lo, hi = np.quantile(np.array(boots), [0.025, 0.975], axis=0)
            row.update(alpha_low=float(lo[0]), alpha_high=float(hi[0]), beta_low=float(lo[1]), beta_high=float(hi[1]),
                       covers=f"{len(runs)} RL seeds (bootstrap over seeds); evaluation prompts and world fixed")
        rows.append(row)
    return rows


def rl_tables(out: Path) -> pd.DataFrame:
    frames = []
    for d in sorted((out / "cells").glob("rl__*")):
        p = d / "rl_eval.parquet"
        if (d / "DONE").exists() and p.exists():
            df = pd.read_parquet(p)
            unit = json.loads((d / "DONE").read_text())
            frames.append(df.assign(cell=d.name, **{f"unit_{k}": v for k, v in unit.items()}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@dataclass
class StudyAnalysis:
    """What the analysis stage finds: one field per file :meth:`write` puts under ``results/``
    (docs/schema.md), so a caller can use the results without reading them back."""

    curves: pd.DataFrame
    """Best-of-n curves with their crossed intervals (``curves.parquet``)."""
    member_band: pd.DataFrame
    """The single members' band (``member_band.parquet``)."""
    fits: list[dict]
    """Gao fits: best-of-n, RL cells and arms, DAA arms (``fits.json``)."""
    rl: pd.DataFrame
    """RL evaluation rows (``rl.parquet``; empty without RL cells, and then not written)."""
    kinds: list[dict]
    """Per-kind gains and costs (``kinds.json``)."""
    claims: list[dict]
    """Every claim row (``claims.json``, with :data:`~rewardherd.studies.claims.RULES`)."""
    uncertainty: list[dict]
    """Does the members' spread flag proxy-gold gaps (``uncertainty.json``)."""
    optimized_accuracy: pd.DataFrame
    """Members' accuracy on optimized samples (``optimized_accuracy.parquet``)."""
    sharing: pd.DataFrame
    """The members' error split into shared and idiosyncratic parts (``sharing.parquet``)."""
    cross: pd.DataFrame
    """Optimize member i, evaluate member j (``cross.parquet``)."""
    samples: pd.DataFrame
    """The scored pool (``<out>/samples.parquet``)."""

    def write(self, out: Path) -> None:
        from rewardherd.studies.claims import RULES

        res = Path(out) / "results"
        write_table_atomic(self.curves, res / "curves.parquet")
        write_table_atomic(self.member_band, res / "member_band.parquet")
        if not self.rl.empty:
            write_table_atomic(self.rl, res / "rl.parquet")
        write_json_atomic(res / "fits.json", self.fits)
        write_json_atomic(res / "kinds.json", self.kinds)
        write_json_atomic(res / "claims.json", {"rules": RULES, "claims": self.claims})
        write_json_atomic(res / "uncertainty.json", self.uncertainty)
        write_table_atomic(self.optimized_accuracy, res / "optimized_accuracy.parquet")
        write_table_atomic(self.sharing, res / "sharing.parquet")
        write_table_atomic(self.cross, res / "cross.parquet")
        write_table_atomic(self.samples, Path(out) / "samples.parquet")


def curve_fits(curves: pd.DataFrame, rl: pd.DataFrame, config) -> list[dict]:
    """Gao's form on every best-of-n curve, every RL cell and, with intervals, every RL arm."""
    fits = []
    for (noise, kind, method, size), g in curves.groupby(["noise", "kind", "method", "size"]):
        g = g.sort_values("n")
        f = core.fit_gao(np.sqrt(g["kl"].to_numpy()), g["gold_delta"].to_numpy(), "bon")
        fits.append({"optimizer": "bon", "noise": noise, "kind": kind, "method": method, "size": int(size),
                     **f.as_dict()})
    if rl.empty:
        return fits
    for cell, g in rl.groupby("cell"):
        g = g.sort_values("step")
        d = np.sqrt(np.clip(g["kl"].to_numpy(), 0, None))
        if "gold" in g and len(g) >= 2:
            f = core.fit_gao(d, g["gold"].to_numpy() - g["gold"].iloc[0], "rl")
            fits.append({"optimizer": "rl", "cell": cell, **f.as_dict()})
    return fits + rl_arm_fits(rl, n_boot=min(config.bootstrap, 1000))


def study_analysis(out: Path, config) -> StudyAnalysis:
    """Every result of the analysis stage from the study's stored tables, without writing any."""
    out = Path(out)
    cells = load_cells(out)
    cells = pd.concat([cells, single_average(cells)], ignore_index=True)
    pool = pd.read_parquet(out / "pool.parquet")
    curves = curves_table(cells, config)
    rl = rl_tables(out)
    members = pd.read_parquet(out / "results" / "members.parquet")
    zt = member_z_table(out, pool, members)
    kind_rows, kind_claims = kind_results(cells, load_kind_cells(out), config, members)
    return StudyAnalysis(
        curves=curves, member_band=member_band(cells), fits=curve_fits(curves, rl, config), rl=rl, kinds=kind_rows,
        claims=claim_results(cells, config, zt, members) + kind_claims, uncertainty=uncertainty(zt, config, members),
        optimized_accuracy=pd.DataFrame(optimized_accuracy(zt, config, members)),
        sharing=sharing_rows(zt, config, members, out), cross=cross_matrix(cells, config), samples=pool)


def analyze(out: Path, config) -> StudyAnalysis:
    """The analysis stage: :func:`study_analysis`, written under ``<out>/results/``, and returned (no
    training; the claim rules' calibration, the DAA arm's C7 included, is the next stage, :func:`calibrate`)."""
    from rewardherd.studies.daa import analyze_daa

    result = study_analysis(out, config)
    result.fits += analyze_daa(Path(out), config)
    result.write(out)
    return result


def cross_matrix(cells: pd.DataFrame, config) -> pd.DataFrame:
    """Optimize single member i (best-of-n_max); evaluate each member j (standardized) and gold, per noise/seed."""
    nmax = int(cells["n"].max())
    s = cells[(cells["kind"] == "single") & (cells["member"] != "average") & (cells["n"] == nmax)]
    rows = []
    for (noise, seed, member), g in s.groupby(["noise", "seed", "member"]):
        row = {"noise": noise, "seed": seed, "optimized": member, "gold": float(g["gold"].mean())}
        for c in schema.columns(schema.Z, g.columns):
            if g[c].notna().any():
                row[schema.strip(schema.Z, c)] = float(g[c].mean())
        rows.append(row)
    return pd.DataFrame(rows)

