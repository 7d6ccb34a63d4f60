"""Turn stored study rows into curves, fits, claims and diagnostics (no training here).

Every claim is a difference computed per prompt (and seed), with a 95% paired
bootstrap interval over prompts pooled across seeds, and one fixed decision rule
(:func:`rewardherd.core.decide`): reproduced when the interval excludes 0 in the
claimed direction, not reproduced when it excludes 0 the other way, otherwise
inconclusive. The rules below were written before the first full run and are not
tuned per run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rewardherd import core
from rewardherd.policy.bon import MethodSpec

log = logging.getLogger(__name__)

RULES = {
    "C1": "tau(top 1/n_max of each prompt's pool by the pretrain ensemble's mean) - tau(whole pool): mean Kendall tau "
          "between pretrain members; claimed negative (members agree less under optimization pressure). Caveat: "
          "selecting on the members' own mean lowers their agreement by itself (Berkson's paradox); the same "
          "difference on random subsets of equal size is shown beside it as a control.",
    "C2": "for each single member i at n_max: gain of its own standardized score minus the mean gain of the other "
          "members' scores (gain = value at n_max - value at n=1); claimed positive (optimizing one RM does not "
          "improve the others as much).",
    "C3": "gold at n_max: ensemble minus average single RM (and pretrain minus finetune); claimed positive.",
    "C4": "pretrain ensemble with its best method: gold at its peak n minus gold at n_max; claimed positive "
          "(still over-optimized: shared errors survive), shown with the drift of length and the share of "
          "members whose score rises while gold falls.",
    "C5": "peak-to-end gold drop of the average single RM minus that of the min / uncertainty-weighted ensemble; "
          "claimed positive (conservative aggregation reduces over-optimization).",
    "C6": "Gao best-of-n fit R(d) = d(alpha - beta d) of the average single RM's gold vs d = sqrt(KL): beta, with "
          "a bootstrap over prompts; claimed positive (the gold curve turns down), R^2 reported.",
}


def _interval(values, config, seed: int = 0) -> core.Interval:
    return core.paired_bootstrap(values, n_boot=config.bootstrap, seed=seed)


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


def per_prompt(cells: pd.DataFrame, kind: str, method: str, noise: float, n: int, col: str = "gold",
               size: int | None = None) -> np.ndarray:
    """(seeds, prompts) matrix of one value at one n."""
    c = cells[(cells["kind"] == kind) & (cells["method"] == method) & (cells["noise"] == noise) & (cells["n"] == n)]
    if kind == "single":
        c = c[c["member"] == "average"]  # the average single RM, not the pooled members
    if size is not None:
        c = c[c["size"] == size]
    return c.pivot_table(index="seed", columns="prompt_id", values=col, aggfunc="mean").to_numpy()


def curves_table(cells: pd.DataFrame, config) -> pd.DataFrame:
    """Mean gold/proxy/features per (noise, kind, method, size, n) with bootstrap CIs of re-centred gold."""
    rows = []
    keys = ["noise", "kind", "method", "size", "n"]
    base = cells[cells["n"] == 1].groupby(["noise", "seed", "prompt_id"])["gold"].mean()
    cells = cells[(cells["kind"] != "single") | (cells["member"] == "average")]
    for (noise, kind, method, size, n), g in cells.groupby(keys):
        wide = g.pivot_table(index="seed", columns="prompt_id", values="gold")
        b = base.loc[noise].unstack("prompt_id").loc[wide.index, wide.columns].to_numpy()
        iv = _interval(wide.to_numpy() - b, config)
        row = {"noise": noise, "kind": kind, "method": method, "size": size, "n": n, "kl": float(g["kl"].iloc[0]),
               "gold": float(g["gold"].mean()), "gold_delta": iv.estimate, "gold_delta_low": iv.low,
               "gold_delta_high": iv.high, "proxy": float(g["proxy"].mean())}
        for c in g.columns:
            if c.startswith("f/"):
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


def _peak_drop(cells, kind, method, noise, nmax) -> tuple[np.ndarray, int]:
    """Per (seed, prompt) gold at the mean curve's peak n minus gold at n_max."""
    c = cells[(cells["kind"] == kind) & (cells["method"] == method) & (cells["noise"] == noise)]
    if kind == "single":
        c = c[c["member"] == "average"]
    peak_n = int(c.groupby("n")["gold"].mean().idxmax())
    return per_prompt(cells, kind, method, noise, peak_n) - per_prompt(cells, kind, method, noise, nmax), peak_n


def _claim(cid, label, iv, direction, **extra) -> dict:
    return {"claim": cid, "comparison": label, "estimate": iv.estimate, "low": iv.low, "high": iv.high,
            "direction": direction, "verdict": core.decide(iv, direction), **extra}


def claims(out_dir: Path, cells: pd.DataFrame, config, pool: pd.DataFrame) -> list[dict]:
    out = []
    nmax = int(cells["n"].max())
    methods = [MethodSpec.parse(m).label for m in config.methods]
    conservative = [m for m in methods if m.startswith(("min", "uncertainty_weighted"))]
    k = config.ensemble_size
    for noise in config.noise:
        tag = f"noise {noise:g}"
        single_end = per_prompt(cells, "single", "mean", noise, nmax)
        # C3
        for kind in ("finetune", "pretrain"):
            for m in methods:
                d = per_prompt(cells, kind, m, noise, nmax, size=k) - single_end
                out.append(_claim("C3", f"{kind} ensemble ({m}) - single RM, gold at n={nmax}, {tag}",
                                  _interval(d, config), "positive"))
        for m in methods:
            d = per_prompt(cells, "pretrain", m, noise, nmax, size=k) - per_prompt(cells, "finetune", m, noise, nmax, size=k)
            out.append(_claim("C3", f"pretrain - finetune ensemble ({m}), gold at n={nmax}, {tag}",
                              _interval(d, config), "positive"))
        # C5
        single_drop, single_peak = _peak_drop(cells, "single", "mean", noise, nmax)
        for kind in ("finetune", "pretrain"):
            for m in conservative:
                drop, peak = _peak_drop(cells[cells["size"] == k], kind, m, noise, nmax)
                out.append(_claim("C5", f"single RM drop (peak n={single_peak}) - {kind} {m} drop (peak n={peak}), {tag}",
                                  _interval(single_drop - drop, config), "positive"))
        # C4: best pretrain method still drops; length drift; members agree while gold falls
        pre = cells[(cells["kind"] == "pretrain") & (cells["noise"] == noise) & (cells["size"] == k)]
        best = pre[pre["n"] == nmax].groupby("method")["gold"].mean().idxmax()
        drop, peak = _peak_drop(pre, "pretrain", best, noise, nmax)
        extra = {}
        lencol = next((c for c in ("f/n_tokens", "f/n_words", "f/length_tokens") if c in pre.columns), None)
        if lencol:
            extra["length_feature"] = lencol[2:]
            extra["length_drift"] = float(per_prompt(cells, "pretrain", best, noise, nmax, lencol, size=k).mean()
                                          - per_prompt(cells, "pretrain", best, noise, 1, lencol, size=k).mean())
        zc = [c for c in pre.columns if c.startswith("z/") and pre[c].notna().any()]
        seed_shares = []
        for seed in config.seeds:
            mem = _members_of(pre, "pretrain", seed, k)
            rises = [per_prompt(pre[pre["seed"] == seed], "pretrain", best, noise, nmax, c).mean()
                     > per_prompt(pre[pre["seed"] == seed], "pretrain", best, noise, peak, c).mean() for c in zc if c[2:] in mem]
            if rises:
                seed_shares.append(float(np.mean(rises)))
        extra["share_of_members_rising_from_peak"] = float(np.mean(seed_shares)) if seed_shares else None
        out.append(_claim("C4", f"pretrain ensemble ({best}, its best method): gold at peak n={peak} - gold at n={nmax}, {tag}",
                          _interval(drop, config), "positive", **extra))
        # C2: own vs cross gain for single members
        s = cells[(cells["kind"] == "single") & (cells["noise"] == noise) & (cells["member"] != "average")]
        diffs = []
        for seed in config.seeds:
            ss = s[s["seed"] == seed]
            members = sorted(ss["member"].unique())
            if len(members) < 2:
                continue
            per_member = []
            for mname in members:
                sm = ss[ss["member"] == mname]
                own = _gain(sm, f"z/{mname}", nmax)
                cross = np.mean([_gain(sm, f"z/{o}", nmax) for o in members if o != mname], axis=0)
                per_member.append(own - cross)
            diffs.append(np.mean(per_member, axis=0))
        if diffs:
            out.append(_claim("C2", f"own-score gain - other members' gain when optimizing one member, n={nmax}, {tag}",
                              _interval(np.array(diffs), config), "positive"))
        # C6: Gao fit of the single RM curve; bootstrap beta over prompts
        out.append(_c6(cells, noise, config))
        # C1: agreement on top samples vs the whole pool
        out.append(_c1(out_dir, pool, cells, config, noise, nmax))
    return out


def _members_of(df, kind, seed, k) -> set[str]:
    from rewardherd.studies.runner import MemberUnit, ensemble_members

    noise = float(df["noise"].iloc[0])
    return {MemberUnit(b, ft, noise, seed).name for b, ft in ensemble_members(kind, seed, k)}


def _gain(sm: pd.DataFrame, col: str, nmax: int) -> np.ndarray:
    hi = sm[sm["n"] == nmax].sort_values("prompt_id")[col].to_numpy()
    lo = sm[sm["n"] == 1].sort_values("prompt_id")[col].to_numpy()
    return hi - lo


def _c6(cells, noise, config) -> dict:
    avg = cells[(cells["kind"] == "single") & (cells["noise"] == noise) & (cells["member"] == "average")]
    wide = avg.pivot_table(index="prompt_id", columns="n", values="gold", aggfunc="mean")  # mean over seeds
    ns = wide.columns.to_numpy()
    d = np.sqrt(core.bon_kl(ns))
    y = wide.to_numpy() - wide.to_numpy()[:, :1]
    fit = core.fit_gao(d, y.mean(axis=0), "bon")
    rng = np.random.default_rng(0)
    betas = []
    for _ in range(min(config.bootstrap, 500)):
        idx = rng.integers(0, y.shape[0], y.shape[0])
        betas.append(core.fit_gao(d, y[idx].mean(axis=0), "bon").beta)
    iv = core.Interval(fit.beta, float(np.quantile(betas, 0.025)), float(np.quantile(betas, 0.975)), 0.95, len(betas))
    return _claim("C6", f"Gao best-of-n fit of the single RM's gold, beta (R^2={fit.r2:.2f}, alpha={fit.alpha:.3f}, "
                  f"peak d*={fit.peak_d if fit.peak_d is None else round(fit.peak_d, 2)}), noise {noise:g}",
                  iv, "positive", r2=fit.r2, alpha=fit.alpha)


def _c1(out, pool, cells, config, noise, nmax) -> dict:
    seed_vals, controls = [], []
    k = config.ensemble_size
    N = config.pool.size
    top = max(2, N // nmax)
    for seed in config.seeds:
        mem = _members_of(cells[cells["noise"] == noise], "pretrain", seed, k)
        scores = _member_scores(out, pool, mem)
        vals, control = [], []
        rng = np.random.default_rng(seed)
        for _, g in scores.groupby("prompt_id"):
            zs = g[sorted(mem)].to_numpy().T  # (m, N)
            order = np.argsort(-zs.mean(axis=0), kind="stable")
            t_all = core.pairwise_kendall(zs)
            vals.append(core.pairwise_kendall(zs[:, order[:top]]) - t_all)
            control.append(core.pairwise_kendall(zs[:, rng.choice(zs.shape[1], top, replace=False)]) - t_all)
        seed_vals.append(np.nan_to_num(np.array(vals)))
        controls.append(np.nan_to_num(np.array(control)))
    iv = _interval(np.array(seed_vals), config)
    # Descriptive control, not part of the rule: random subsets of the same size. Selecting on the
    # members' own mean lowers their agreement by itself (Berkson), so read C1 with this beside it.
    return _claim("C1", f"member Kendall tau on each prompt's top {top} samples (n={nmax} pressure) - on all {N}, "
                  f"pretrain members, noise {noise:g}", iv, "negative",
                  random_subset_same_size=float(np.mean(controls)))


def _member_scores(out_dir, pool: pd.DataFrame, members) -> pd.DataFrame:
    """Standardized scores of the given members on every pool sample, one column each."""
    frame = pool[["prompt_id", "sample_id"]].copy()
    for m in sorted(members):
        p = Path(out_dir) / "members" / m / "scores.parquet"
        info = json.loads((Path(out_dir) / "members" / m / "info.json").read_text())
        sc = pd.read_parquet(p)
        st = info["standardization"]
        frame = frame.merge(sc.assign(**{m: (sc["score"] - st["mean"]) / st["std"]})[["prompt_id", "sample_id", m]],
                            on=["prompt_id", "sample_id"])
    return frame


def uncertainty(out: Path, pool: pd.DataFrame, config) -> list[dict]:
    """Does the ensemble spread predict the proxy-gold gap? Spearman and AUROC per kind."""
    from rewardherd.studies.runner import MemberUnit, ensemble_members

    rows = []
    gold = pool["gold"].to_numpy()
    gz = (gold - gold.mean()) / max(gold.std(), 1e-12)
    bad = gold < np.median(gold)
    for noise in config.noise:
        for kind in ("finetune", "pretrain"):
            sp, sa, au = [], [], []
            for seed in config.seeds:
                mem = [MemberUnit(b, ft, noise, seed).name for b, ft in ensemble_members(kind, seed, config.ensemble_size)]
                frame = _member_scores(out, pool, mem)
                z = frame[mem].to_numpy().T
                spread = core.spread(z).std
                mean = z.mean(axis=0)
                gap = (mean - mean.mean()) / max(mean.std(), 1e-12) - gz
                sp.append(core.spearman(spread, gap))
                sa.append(core.spearman(spread, np.abs(gap)))
                au.append(core.auroc(spread, bad))
            rows.append({"noise": noise, "kind": kind, "spearman_spread_vs_gap": float(np.mean(sp)),
                         "spearman_spread_vs_abs_gap": float(np.mean(sa)),
                         "auroc_spread_for_gold_below_median": float(np.mean(au)), "seeds": len(sp)})
    return rows


def optimized_accuracy(out: Path, pool: pd.DataFrame, config) -> list[dict]:
    """Member accuracy on gold-labelled pairs (pretrain-ensemble best-of-N pick vs each other sample)."""
    from rewardherd.studies.runner import MemberUnit, ensemble_members

    rows = []
    for noise in config.noise:
        for seed in config.seeds:
            units = {MemberUnit(b, ft, noise, seed).name for kind in ("finetune", "pretrain")
                     for b, ft in ensemble_members(kind, seed, config.ensemble_size)}
            pre = [MemberUnit(b, ft, noise, seed).name for b, ft in ensemble_members("pretrain", seed, config.ensemble_size)]
            frame = _member_scores(out, pool, sorted(units))
            frame = frame.merge(pool[["prompt_id", "sample_id", "gold"]], on=["prompt_id", "sample_id"])
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
                info = json.loads((out / "members" / m / "info.json").read_text())
                rows.append({"noise": noise, "seed": seed, "member": m, "heldout_accuracy": info["heldout_accuracy"],
                             "optimized_accuracy": float(np.mean(acc[m]))})
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


def analyze(out: Path, config, inputs=None) -> None:
    out = Path(out)
    res = out / "results"
    res.mkdir(parents=True, exist_ok=True)
    cells = load_cells(out)
    cells = pd.concat([cells, single_average(cells)], ignore_index=True)
    pool = pd.read_parquet(out / "pool.parquet")
    curves = curves_table(cells, config)
    curves.to_parquet(res / "curves.parquet", index=False)
    member_band(cells).to_parquet(res / "member_band.parquet", index=False)
    fits = []
    for (noise, kind, method, size), g in curves.groupby(["noise", "kind", "method", "size"]):
        g = g.sort_values("n")
        f = core.fit_gao(np.sqrt(g["kl"].to_numpy()), g["gold_delta"].to_numpy(), "bon")
        fits.append({"optimizer": "bon", "noise": noise, "kind": kind, "method": method, "size": int(size),
                     **f.as_dict()})
    rl = rl_tables(out)
    if not rl.empty:
        rl.to_parquet(res / "rl.parquet", index=False)
        for cell, g in rl.groupby("cell"):
            g = g.sort_values("step")
            d = np.sqrt(np.clip(g["kl"].to_numpy(), 0, None))
            if "gold" in g and len(g) >= 2:
                f = core.fit_gao(d, g["gold"].to_numpy() - g["gold"].iloc[0], "rl")
                fits.append({"optimizer": "rl", "cell": cell, **f.as_dict()})
    (res / "fits.json").write_text(json.dumps(fits, indent=2, default=float))
    cl = claims(out, cells, config, pool)
    (res / "claims.json").write_text(json.dumps({"rules": RULES, "claims": cl}, indent=2, default=float))
    (res / "uncertainty.json").write_text(json.dumps(uncertainty(out, pool, config), indent=2))
    pd.DataFrame(optimized_accuracy(out, pool, config)).to_parquet(res / "optimized_accuracy.parquet", index=False)
    cross = cross_matrix(cells, config)
    cross.to_parquet(res / "cross.parquet", index=False)
    samples = pool.copy()
    samples.to_parquet(out / "samples.parquet", index=False)


def cross_matrix(cells: pd.DataFrame, config) -> pd.DataFrame:
    """Optimize single member i (best-of-n_max); evaluate each member j (standardized) and gold, per noise/seed."""
    nmax = int(cells["n"].max())
    s = cells[(cells["kind"] == "single") & (cells["member"] != "average") & (cells["n"] == nmax)]
    rows = []
    for (noise, seed, member), g in s.groupby(["noise", "seed", "member"]):
        row = {"noise": noise, "seed": seed, "optimized": member, "gold": float(g["gold"].mean())}
        for c in g.columns:
            if c.startswith("z/") and g[c].notna().any():
                row[c[2:]] = float(g[c].mean())
        rows.append(row)
    return pd.DataFrame(rows)

