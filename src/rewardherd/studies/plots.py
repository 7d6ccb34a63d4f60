"""Figures from stored study results (reads files; never trains or scores)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from rewardherd import schema
from rewardherd.io import write_atomic
from rewardherd.studies import kinds as ks

METHOD_STYLES = {"mean": "-", "median": (0, (1, 1)), "min": "--", "mean_minus_std": "-.",
                 "uncertainty_weighted": ":", "soft_min": (0, (3, 1, 1, 1, 1, 1))}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Lay out, write and close a figure (every figure of the report goes through here)."""
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format=Path(path).suffix.lstrip(".") or "png"))
    _plt().close(fig)
    return path


def _style(kind: str, method: str) -> dict:
    """Colour by ensemble kind, line style by aggregation method."""
    base = method.split("(")[0]
    return {"color": ks.color(kind), "ls": METHOD_STYLES.get(base, (0, (5, 1, 1, 1)))}


def _ensemble_size(curves: pd.DataFrame) -> int:
    """K: the largest ensemble size in the curves (the size the main figures show)."""
    return int(curves[curves["kind"] != "single"]["size"].max())


def _main_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Single-RM curves and full-size ensembles (the size sweep has its own figure)."""
    return curves[(curves["kind"] == "single") | (curves["size"] == _ensemble_size(curves))]


def bon_gold(curves: pd.DataFrame, band: pd.DataFrame, path: Path, value: str = "gold_delta") -> Path:
    """Gold (re-centred) vs sqrt(KL_bon): rows = noise, columns = methods; CIs shaded."""
    plt = _plt()
    k = _ensemble_size(curves)
    methods = sorted(curves[curves["kind"] != "single"]["method"].unique())
    noises = sorted(curves["noise"].unique())
    fig, axes = plt.subplots(len(noises), len(methods), figsize=(4.2 * len(methods), 3.4 * len(noises)),
                             squeeze=False, sharex=True)
    for r, noise in enumerate(noises):
        single = curves[(curves["kind"] == "single") & (curves["noise"] == noise)].sort_values("n")
        base = single[single["n"] == 1]["gold"].mean()
        for c, method in enumerate(methods):
            ax = axes[r, c]
            d = np.sqrt(single["kl"])
            ax.plot(d, single[value], color=ks.SINGLE_COLOR, marker="o", ms=3, label="single RM (avg)")
            ax.fill_between(d, single[f"{value}_low"], single[f"{value}_high"], color=ks.SINGLE_COLOR, alpha=0.15)
            b = band[band["noise"] == noise]
            for which, ls in (("best", ":"), ("worst", "--")):
                bb = b[b["which"] == which].sort_values("n")
                ax.plot(np.sqrt(bb["kl"]), bb["gold"] - base, color=ks.SINGLE_COLOR, ls=ls, lw=1,
                        label=f"{which} member")
            for kind in ks.MAIN_KINDS:
                g = curves[(curves["kind"] == kind) & (curves["noise"] == noise) & (curves["method"] == method)
                           & (curves["size"] == k)].sort_values("n")
                if g.empty:
                    continue
                d = np.sqrt(g["kl"])
                ax.plot(d, g[value], color=ks.color(kind), marker="o", ms=3, label=f"{kind} ensemble")
                ax.fill_between(d, g[f"{value}_low"], g[f"{value}_high"], color=ks.color(kind), alpha=0.15)
            ax.axhline(0, color="black", lw=0.5)
            ax.set_title(f"{method}, label noise {noise:g}", fontsize=10)
            if r == len(noises) - 1:
                ax.set_xlabel("sqrt(KL_bon)")
            if c == 0:
                ax.set_ylabel("gold - gold(n=1)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Best-of-n: gold reward vs optimization (95% intervals over seeds x prompts)")
    return _save(fig, path)


def bon_proxy(curves: pd.DataFrame, path: Path) -> Path:
    plt = _plt()
    noises = sorted(curves["noise"].unique())
    fig, axes = plt.subplots(1, len(noises), figsize=(5 * len(noises), 3.6), squeeze=False)
    for c, noise in enumerate(noises):
        ax = axes[0, c]
        main = _main_curves(curves)
        for (kind, method), g in main[main["noise"] == noise].groupby(["kind", "method"]):
            g = g.sort_values("n")
            ax.plot(np.sqrt(g["kl"]), g["proxy"], marker=".", alpha=0.8, label=f"{kind} {method}", **_style(kind, method))
        ax.set_title(f"proxy (standardized aggregate), noise {noise:g}", fontsize=10)
        ax.set_xlabel("sqrt(KL_bon)")
    axes[0, 0].legend(fontsize=6)
    return _save(fig, path)


def features(curves: pd.DataFrame, path: Path) -> Path | None:
    """Hacking features of best-of-n picks vs sqrt(KL): a grid of readable panels."""
    plt = _plt()
    fcols = schema.columns(schema.FEATURE, curves.columns)[:6]
    if not fcols:
        return None
    ncol = min(3, len(fcols))
    nrow = -(-len(fcols) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.3 * ncol, 3.4 * nrow), squeeze=False)
    main = _main_curves(curves)
    sub = main[main["noise"] == main["noise"].max()]
    for j, f in enumerate(fcols):
        ax = axes[j // ncol, j % ncol]
        for (kind, method), g in sub.groupby(["kind", "method"]):
            g = g.sort_values("n")
            ax.plot(np.sqrt(g["kl"]), g[f], marker=".", alpha=0.8, label=f"{kind} {method}", **_style(kind, method))
        ax.set_title(schema.strip(schema.FEATURE, f).replace("_", " "), fontsize=10)
        ax.set_xlabel("sqrt(KL of best-of-n)")
    for j in range(len(fcols), nrow * ncol):
        axes[j // ncol, j % ncol].axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Hacking features of best-of-n picks (label noise {sub['noise'].max():g})")
    return _save(fig, path)


def rl(rl_rows: pd.DataFrame, path: Path) -> Path | None:
    if rl_rows.empty:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for cell, g in rl_rows.groupby("cell"):
        g = g.sort_values("step")
        d = np.sqrt(np.clip(g["kl"], 0, None))
        proxy_col = next(c for c in schema.aggregate_columns(g.columns) if g[c].notna().all())
        label = cell.replace("rl__", "")
        axes[0].plot(d, g["gold"] - g["gold"].iloc[0], marker="o", ms=3, label=label)
        axes[1].plot(d, g[proxy_col] - g[proxy_col].iloc[0], marker="o", ms=3, label=label)
    axes[0].set_title("RL: gold - gold(step 0)")
    axes[1].set_title("RL: optimized proxy - proxy(step 0)")
    for ax in axes:
        ax.set_xlabel("sqrt(KL) measured on held-out prompts (sequence k1)")
        ax.axhline(0, color="black", lw=0.5)
    axes[0].legend(fontsize=6)
    return _save(fig, path)


def optimizers(curves: pd.DataFrame, rl_rows: pd.DataFrame | None, band: pd.DataFrame, path: Path) -> Path | None:
    """Best-of-n, RL and the DAA arms on one axis, one panel per DAA training data: gold minus gold
    of the reference policy against sqrt(KL(pi || pi_ref)). Best-of-n at the DAA arm's label noise
    (its pretrain ensembles, every method, and the single-RM average) and RL (averaged over seeds)
    are the same in every panel; each DAA arm (``daa.arm_band``) is shaded with its 95% crossed
    seeds x prompts interval."""
    if band.empty:
        return None
    plt = _plt()
    datas = [d for d in ("noisy", "cleaned", "relabelled") if d in set(band["data"])]
    datas += sorted(set(band["data"]) - set(datas))
    fig, axes = plt.subplots(1, len(datas), figsize=(6.2 * len(datas), 4.8), squeeze=False, sharey=True)
    noise = float(band["noise"].iloc[0])
    bon = _main_curves(curves)
    bon = bon[np.isclose(bon["noise"], noise) & bon["kind"].isin(["pretrain", "single"])]
    colors = {"dpo": "tab:green", "ipo": "tab:purple", "rpo": "tab:orange"}
    betas = sorted(band["beta"].unique())
    markers = dict(zip(betas, ["o", "^", "s", "D", "v", "P"] * len(betas), strict=False))
    for ax, data in zip(axes[0], datas, strict=True):
        for (kind, method), g in bon.groupby(["kind", "method"]):
            g = g.sort_values("n")
            style = {"color": "grey", "ls": ":"} if kind == "single" else _style(kind, method)
            ax.plot(np.sqrt(g["kl"]), g["gold_delta"], lw=1.0, label=f"best-of-n: {kind} ({method})", **style)
        if rl_rows is not None and not rl_rows.empty and "gold" in rl_rows:
            for cell, g in rl_rows.groupby(["unit_kind", "unit_method", "unit_kl_coef"]):
                m = g.groupby("step")[["kl", "gold"]].mean().sort_index()
                ax.plot(np.sqrt(np.clip(m["kl"], 0, None)), m["gold"] - m["gold"].iloc[0], marker="s", ms=3, lw=1,
                        color="tab:red", alpha=0.8, label=f"RL: {cell[0]} ({cell[1]}), kl_coef {cell[2]:g}")
        for (obj, beta), g in band[band["data"] == data].groupby(["objective", "beta"]):
            g = g.sort_values("point")
            color = colors.get(obj, "black")
            ax.plot(g["sqrt_kl"], g["estimate"], marker=markers[beta], ms=3.5, lw=1.4, color=color,
                    label=f"{obj.upper()} beta {beta:g}")
            ax.fill_between(g["sqrt_kl"], g["low"], g["high"], color=color, alpha=0.10, lw=0)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_xlabel("sqrt(KL(pi || pi_ref))")
        ax.set_title(f"DAA on {data} pairs (label noise {noise:g})", fontsize=10)
        ax.legend(fontsize=5.5, ncol=2)
    axes[0, 0].set_ylabel("gold - gold of the reference policy")
    return _save(fig, path)


def accuracy(opt_acc: pd.DataFrame, path: Path) -> Path | None:
    if opt_acc.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4))
    for noise, g in opt_acc.groupby("noise"):
        ax.scatter(g["heldout_accuracy"], g["optimized_accuracy"], label=f"noise {noise:g}", s=18)
    lo = float(min(opt_acc["heldout_accuracy"].min(), opt_acc["optimized_accuracy"].min())) - 0.05
    ax.plot([lo, 1], [lo, 1], color="black", lw=0.5)
    ax.set_xlabel("held-out accuracy (in distribution)")
    ax.set_ylabel("accuracy on best-of-N picks vs pool")
    ax.set_title("Members on optimized samples", fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def member_label(unit: str) -> str:
    """'bb3__ft1002__noise0__seed1' -> 'backbone 3, fine-tune seed 1002'."""
    parts = unit.split("__")
    if len(parts) < 2 or not parts[0].startswith("bb") or not parts[1].startswith("ft"):
        return unit
    bb, ft = parts[0].removeprefix("bb"), parts[1].removeprefix("ft")
    return f"backbone {bb}, fine-tune seed {ft}"


def cross(cross_df: pd.DataFrame, path: Path) -> Path | None:
    if cross_df.empty:
        return None
    plt = _plt()
    sub = cross_df[(cross_df["noise"] == cross_df["noise"].max()) & (cross_df["seed"] == cross_df["seed"].min())]
    members = list(sub["optimized"])
    cols = [m for m in members if m in sub.columns] + ["gold"]
    mat = sub[cols].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 4, 0.8 * len(members) + 3))
    im = ax.imshow(mat, cmap="viridis")
    short = [member_label(m) for m in members]
    ax.set_xticks(range(len(cols)), short + ["gold"], rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(members)), short, fontsize=8)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", color="white", fontsize=7)
    ax.set_xlabel("evaluated with (standardized score; gold raw)")
    ax.set_ylabel("optimized against (best-of-n_max)")
    fig.colorbar(im, ax=ax, shrink=0.7)
    return _save(fig, path)


def sizes(curves: pd.DataFrame, path: Path) -> Path | None:
    """Gold (re-centred) at the largest n against ensemble size (full profile: sizes 1..K)."""
    ens = curves[curves["kind"] != "single"]
    if ens["size"].nunique() < 2:
        return None
    plt = _plt()
    nmax = ens["n"].max()
    noises = sorted(ens["noise"].unique())
    fig, axes = plt.subplots(1, len(noises), figsize=(5 * len(noises), 3.6), squeeze=False)
    for j, noise in enumerate(noises):
        ax = axes[0, j]
        sub = ens[(ens["noise"] == noise) & (ens["n"] == nmax)]
        for (kind, method), g in sub.groupby(["kind", "method"]):
            g = g.sort_values("size")
            ax.errorbar(g["size"], g["gold_delta"], yerr=[g["gold_delta"] - g["gold_delta_low"],
                                                          g["gold_delta_high"] - g["gold_delta"]],
                        color=ks.color(kind), marker="o", ms=3, capsize=2, alpha=0.8, label=f"{kind} {method}")
        single = curves[(curves["kind"] == "single") & (curves["noise"] == noise) & (curves["n"] == nmax)]
        if not single.empty:
            ax.axhline(single["gold_delta"].iloc[0], color=ks.SINGLE_COLOR, ls="--", label="single RM (avg)")
        ax.set_xlabel("ensemble size")
        ax.set_title(f"gold - gold(n=1) at n={nmax}, noise {noise:g}", fontsize=10)
    axes[0, 0].legend(fontsize=6)
    return _save(fig, path)


def sharing(table: pd.DataFrame, path: Path) -> Path:
    """Members' error variance split into shared and idiosyncratic parts, per ensemble kind.

    ``table``: rows of :func:`rewardherd.studies.sharing.sharing_table` (``kind``,
    ``shared_variance``, ``idiosyncratic_variance``, ``mean_error_variance``,
    ``rho_bar``, ``shared_fraction``), optionally with ``noise`` (one panel each) and
    other axes such as ``seed`` (averaged). The bar's height is the mean member error
    variance V = shared + idiosyncratic; the black tick is the error variance of the
    ensemble's mean, C + (V - C)/K: averaging removes only what lies above the shared part.
    """
    plt = _plt()
    t = table if "noise" in table.columns else table.assign(noise=np.nan)
    t = t if "where" in t.columns else t.assign(where="pool")
    cols = ["shared_variance", "idiosyncratic_variance", "mean_error_variance", "rho_bar", "shared_fraction"]
    panels = sorted({(w, v) for w, v in zip(t["where"], t["noise"], strict=True)},
                    key=lambda p: (p[0] != "pool", np.isnan(p[1]), p[1]))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 + 1.6 * t["kind"].nunique() * len(panels), 3.8),
                             squeeze=False, sharey=False)
    for j, (where, noise) in enumerate(panels):
        ax = axes[0, j]
        sub = t[(t["where"] == where) & ((t["noise"] == noise) if not np.isnan(noise) else t["noise"].isna())]
        g = sub.groupby("kind", sort=False)[cols].mean()
        x = np.arange(len(g))
        colors = [ks.color(k) for k in g.index]
        ax.bar(x, g["shared_variance"], color=colors)
        ax.bar(x, g["idiosyncratic_variance"], bottom=g["shared_variance"], color=colors, alpha=0.35, hatch="//")
        ax.hlines(g["mean_error_variance"], x - 0.4, x + 0.4, color="black", lw=1.5)
        for xi, (_, row) in zip(x, g.iterrows(), strict=True):
            top = row["shared_variance"] + row["idiosyncratic_variance"]
            ax.text(xi, top, f"rho={row['rho_bar']:.2f}\nshared={row['shared_fraction']:.2f}", ha="center",
                    va="bottom", fontsize=7)
        ax.set_xticks(x, list(g.index))
        ax.set_xlim(-0.6, len(g) - 0.4)
        ax.margins(y=0.2)
        ax.set_title(("pool" if where == "pool" else "held-out pairs") + " errors vs gold"
                     + ("" if np.isnan(noise) else f", noise {noise:g}"), fontsize=10)
        if j == 0:
            ax.set_ylabel("error variance (z units)")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color="#555555", label="shared (mean pairwise cov.)"),
               Patch(facecolor="#555555", alpha=0.35, hatch="//", label="idiosyncratic"),
               Line2D([], [], color="black", lw=1.5, label="error var. of the ensemble mean")]
    axes[0, -1].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return _save(fig, path)


def sharing_dial(table: pd.DataFrame, path: Path, x: str = "rho_bar",
                 xlabel: str = "members' error correlation rho_bar (pool)", level_name: str = "markers") -> Path:
    """Each ensemble's gold gain over its own members (95% interval) at n_max (top row) and at
    each curve's peak (bottom row) against its members' error correlation on the pool (min-max
    over seeds; ``x`` names the column, with ``x_min`` and ``x_max``: rho_bar on the markers dial,
    residual_rho on the shared-error dial, as :data:`rewardherd.studies.dial.X_AXIS` says), one
    panel per method and label noise, one line per kind through the dial's levels (rows of
    :func:`rewardherd.studies.dial.sharing_dial_table`); points are labelled by their ``level_name`` level."""
    plt = _plt()
    panels = list(dict.fromkeys(zip(table["noise"], table["method"], strict=True)))
    fig, axes = plt.subplots(2, len(panels), figsize=(1.2 + 3.6 * len(panels), 7.2), squeeze=False, sharey="row")
    for row, (prefix, where) in enumerate((("", "at n_max"), ("peak_", "at each curve's peak"))):
        for ax, (noise, method) in zip(axes[row], panels, strict=True):
            sub = table[(table["noise"] == noise) & (table["method"] == method)]
            for k, (kind, g) in enumerate(sub.groupby("kind", sort=False)):
                g = g.sort_values("level")
                y, lo, hi = g[f"{prefix}gain"], g[f"{prefix}gain_low"], g[f"{prefix}gain_high"]
                ax.errorbar(g[x], y, yerr=[y - lo, hi - y], xerr=[g[x] - g[f"{x}_min"], g[f"{x}_max"] - g[x]], marker="o",
                            capsize=3, color=ks.color(kind), label=kind)
                for xv, v, lv in zip(g[x], y, g["level"], strict=True):
                    ax.annotate(f"{lv:g}", (xv, v), textcoords="offset points", fontsize=7,
                                xytext=(4, 4 if k % 2 == 0 else -10))  # kinds' labels on opposite sides
            ax.axhline(0, color="black", lw=0.8, ls="--")
            ax.set_title(f"{method}, noise {noise:g}", fontsize=10)
        axes[row, 0].set_ylabel(f"gold gain over own members\n{where}")
    fig.supxlabel(f"x: {xlabel}", fontsize=10)  # one label: a long one per panel overlaps its neighbours'
    axes[0, -1].legend(fontsize=8, title=f"point labels: {level_name} level", title_fontsize=7)
    return _save(fig, path)


def kinds(rows: pd.DataFrame, path: Path) -> Path | None:
    """Each ensemble kind's gold gain over the average single member at n_max (95% interval)
    against its inference cost, one panel per label noise; the first method of each
    multi-member kind (the kinds table has every method)."""
    if rows.empty:
        return None
    plt = _plt()
    noises = sorted(rows["noise"].unique())
    first = rows.groupby(["noise", "kind"], sort=False).head(1)
    fig, axes = plt.subplots(1, len(noises), figsize=(4.6 * len(noises), 3.8), squeeze=False, sharey=True)
    for j, noise in enumerate(noises):
        ax = axes[0, j]
        g = first[first["noise"] == noise].reset_index(drop=True)
        ax.axhline(0, color=ks.SINGLE_COLOR, ls="--", lw=1)
        for i, r in g.iterrows():
            x = r["forward_passes"] * (1 + 0.06 * (i - len(g) / 2))  # spread kinds that share a cost
            err = [[r["gain_vs_single"] - r["gain_vs_single_low"]], [r["gain_vs_single_high"] - r["gain_vs_single"]]]
            ax.errorbar([x], [r["gain_vs_single"]], yerr=err, fmt="o", capsize=3, color=ks.color(r["kind"]),
                        label=f"{r['kind']} ({r['method']}), train {r['train_seconds']:.0f} s")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(g["forward_passes"].unique()), [str(v) for v in sorted(g["forward_passes"].unique())])
        ax.set_xlabel("forward passes per scored response")
        ax.set_title(f"gold gain over the average single member, noise {noise:g}", fontsize=10)
        ax.legend(fontsize=7, loc="best")
    axes[0, 0].set_ylabel("gold at n_max, minus single")
    return _save(fig, path)


#: What each report figure shows and what to look for (the report prints these as captions).
CAPTIONS = {
    "bon_gold": ("Gold reward of the best-of-n pick minus gold at n=1, against sqrt(KL) of best-of-n, one panel per "
                 "aggregation method (columns) and label-noise level (rows). Grey: single reward models (their "
                 "average, with the best and worst member); blue: fine-tune-seed ensemble; red: pretrain-seed "
                 "ensemble; shaded: 95% intervals over seeds x prompts. Look for curves that rise and then fall "
                 "(over-optimization) and for ensembles that stay above their members."),
    "bon_proxy": ("The optimized proxy (standardized aggregate of the ensemble or the single member) of the best-of-n "
                  "pick against sqrt(KL). It keeps rising by construction; compare with the gold figure to see where "
                  "proxy and gold part."),
    "features": ("Hacking features of the best-of-n picks (highest label noise) against sqrt(KL): length, repetition, "
                 "copying from the prompt, and so on. A feature that grows under every ensemble kind is an error the "
                 "members share, which no ensemble removes."),
    "accuracy": ("Each member's accuracy on held-out preference pairs (x, in distribution) against its accuracy on "
                 "the samples best-of-n picks (y, pairs of the pretrain ensemble's pick with every other sample of "
                 "the prompt, labelled by gold). Points below the diagonal: members that look good in distribution "
                 "and fail where the optimizer goes."),
    "cross": ("Optimize one member by best-of-n (rows), evaluate with every member's standardized score and with gold "
              "(columns), one seed at the highest label noise. A strong diagonal with weaker off-diagonal cells means "
              "optimizing one reward model does not carry over to the others."),
    "sizes": ("Gold at the largest n against ensemble size, per kind and method, with the single-RM average as a "
              "dashed line: whether adding members keeps helping."),
    "sharing": ("How much of the members' error (standardized score minus standardized gold: within each prompt of "
                "the best-of-n pool, off distribution; on the held-out pairs' margins, in distribution) every member "
                "shares (solid) and how much is each member's own (hatched), per ensemble kind and label noise, "
                "averaged over seeds; the black tick is the error variance of the "
                "ensemble's mean. Averaging removes only the hatched part: where rho (the mean pairwise correlation "
                "of errors) is near 1, ensembles cannot help (herding). See docs/error_sharing.md."),
    "kinds": ("Every ensemble kind's best-of-n gold at the largest n minus that of the average full fine-tuned "
              "single member (dashed line at 0), with 95% intervals over seeds x prompts, against what the kind costs "
              "at inference (forward passes per scored response; log scale). The legend gives each kind's training "
              "time per ensemble (WARM's includes its members'). The kinds table below has every method and the "
              "comparison with each kind's own members."),
    "optimizers": ("Best-of-n (pretrain ensembles in their kind's colour, one line style per method; grey dotted: "
                   "the single-RM average), RL (red) and direct alignment (green DPO, purple IPO, orange RPO; one "
                   "marker per beta) on one axis, one panel per DAA training data (the world's noisy pairs, pairs "
                   "cleaned by the ensemble, pairs relabelled by it): gold minus the reference policy's gold "
                   "against sqrt(KL(pi || pi_ref)), each averaged over its seeds. Shading: each DAA arm's 95% "
                   "interval over seeds x prompts (crossed t; the world build is fixed). Best-of-n's KL is the "
                   "analytic log n - (n-1)/n; RL's and DAA's are sampled k1 on held-out prompts."),
    "rl": ("RL with a KL penalty (TRL RLOO): gold and the optimized proxy relative to step 0, against sqrt(KL) "
           "measured on held-out prompts. In the quick profile these runs are short illustrations, not evidence."),
}


def all_figures(out: Path) -> dict[str, Path]:
    res = out / "results"
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    curves = pd.read_parquet(res / "curves.parquet")
    band = pd.read_parquet(res / "member_band.parquet")
    made = {
        "bon_gold": bon_gold(curves, band, figs / "bon_gold.png"),
        "bon_proxy": bon_proxy(curves, figs / "bon_proxy.png"),
        "features": features(curves, figs / "features.png"),
        "accuracy": accuracy(pd.read_parquet(res / "optimized_accuracy.parquet"), figs / "accuracy.png"),
        "cross": cross(pd.read_parquet(res / "cross.parquet"), figs / "cross.png"),
        "sizes": sizes(curves, figs / "sizes.png"),
    }
    rows = pd.DataFrame(json.loads((res / "kinds.json").read_text())) if (res / "kinds.json").exists() else None
    if rows is not None and not rows.empty:
        made["kinds"] = kinds(rows, figs / "kinds.png")
        if ks.extra(rows["kind"].unique()):  # a study of kinds: its cost figure is the headline
            made = {"kinds": made.pop("kinds"), **made}
    rl_rows = pd.read_parquet(res / "rl.parquet") if (res / "rl.parquet").exists() else None
    if rl_rows is not None:
        made["rl"] = rl(rl_rows, figs / "rl.png")
    if (res / "daa_band.parquet").exists():
        made["optimizers"] = optimizers(curves, rl_rows, pd.read_parquet(res / "daa_band.parquet"),
                                        figs / "optimizers.png")
    sharing_rows = pd.read_parquet(res / "sharing.parquet") if (res / "sharing.parquet").exists() else None
    if sharing_rows is not None and not sharing_rows.empty:
        made["sharing"] = sharing(sharing_rows, figs / "sharing.png")
    return {k: v for k, v in made.items() if v is not None}


def bon_summary(summary: pd.DataFrame, path: Path) -> Path:
    """Proxy and gold vs sqrt(KL_bon) per method, with standard errors (the `bon` command's plot)."""
    plt = _plt()
    has_gold = "gold" in summary.columns
    fig, axes = plt.subplots(1, 2 if has_gold else 1, figsize=(10 if has_gold else 5, 3.6), squeeze=False)
    for method, g in summary.groupby("method"):
        g = g.sort_values("n")
        d = np.sqrt(g["kl"])
        axes[0, 0].errorbar(d, g["proxy"], yerr=g["proxy_se"], marker="o", ms=3, capsize=2, label=method)
        if has_gold:
            axes[0, 1].errorbar(d, g["gold"], yerr=g["gold_se"], marker="o", ms=3, capsize=2, label=method)
    axes[0, 0].set_title("proxy (aggregate) of best-of-n")
    if has_gold:
        axes[0, 1].set_title("gold of best-of-n")
    for ax in axes[0]:
        ax.set_xlabel("sqrt(KL_bon), KL_bon = log n - (n-1)/n")
    axes[0, 0].legend(fontsize=7)
    return _save(fig, path)
