"""report.md and a self-contained report.html (images embedded) from stored results, both
rendered from one :class:`rewardherd.studies.document.Document`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from rewardherd.studies import kinds as ks
from rewardherd.studies.config import __doc__ as DEFINITIONS
from rewardherd.studies.document import Document, interval_text
from rewardherd.studies.plots import CAPTIONS

CLAIM_NAMES = {
    "C1": "members agree less on optimized samples than selection alone explains (underspecification)",
    "C2": "optimizing one RM improves the others less than their correlation predicts",
    "C3": "ensembles beat their own members at high n (and pretrain beats finetune)",
    "C4": "ensembles are still over-optimized (shared errors survive)",
    "C5": "conservative aggregation (min, uncertainty-weighted) shrinks over-optimization",
    "C6": "gold follows the Gao best-of-n form and turns down within the tested range",
    "C7": "direct alignment: RPO's gold drops less from its peak to the end of training than DPO's",
}


def _summary(claims: list[dict], config: dict, timings: dict, calibration: dict, precision: str = "") -> list[str]:
    lines = []
    by: dict[str, list[dict]] = {}
    for c in claims:
        by.setdefault(c["label"], []).append(c)
    summ = calibration.get("summary", {})
    for cid in sorted(by):
        verdicts = [c["verdict"] for c in by[cid]]
        counts = {v: verdicts.count(v) for v in ("reproduced", "not reproduced", "inconclusive") if v in verdicts}
        txt = ", ".join(f"{n} {v}" for v, n in counts.items())
        fns = sorted({c["claim"] for c in by[cid]})
        power = [summ[f]["power"] for f in fns if f in summ and summ[f]["power"] is not None]
        decide = ""
        if power:
            p = min(power)
            decide = (f" At this size the rule detects the calibration's weakest simulated effect {p:.0%} of the time"
                      + (" (decidable)." if p >= 0.8 else " (low power: this profile cannot decide small effects, so "
                                                           "'inconclusive' here is not evidence of absence)."))
        lines.append(f"- **{cid}** ({CLAIM_NAMES.get(cid, '')}): {txt} of {len(verdicts)} comparison(s).{decide}")
    lines.append(
        f"- Profile `{config.get('profile')}`: K={config.get('ensemble_size')} members, seeds {config['sweep']['seeds']}, "
        f"label noise {config['sweep']['noise']}, pool {config['pool']['prompts']} prompts x {config['pool']['size']} "
        f"samples, world replicate {config.get('world_seed', 0)}.")
    if claims:
        lines.append(f"- Every interval covers: {claims[0]['covers']}.")
    if precision:
        lines.append(f"- Pool scores: {precision}.")
    if timings:
        lines.append("- Wall time by stage (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()) + ".")
    return lines


def _precision_text(res: Path) -> str:
    """How the members' pool scores were computed (float32, or bfloat16 with its rank check)."""
    path = res / "members.parquet"
    if not path.exists():
        return ""
    m = pd.read_parquet(path).drop_duplicates("unit")
    if "score_dtype" not in m:
        return ""
    bf = m[m["score_dtype"] == "bfloat16"]
    if bf.empty:
        return f"float32 for all {len(m)} members"
    from rewardherd.models.scoring import BF16_PROBE, BF16_RANK_TOLERANCE

    rest = len(m) - len(bf)
    return (f"bfloat16 for {len(bf)} of {len(m)} members, each accepted because a {BF16_PROBE:,}-sample probe "
            f"ranked like float32 (Spearman >= {BF16_RANK_TOLERANCE}; lowest seen {bf['score_spearman_vs_float32'].min():.5f})"
            + (f"; float32 for the other {rest} (probe disagreed or bfloat16 is not native here)" if rest else ""))


def plain_summary(curves: pd.DataFrame, rl: pd.DataFrame | None) -> list[str]:
    """Plain-English sentences computed from the curves (no claim verdicts here)."""
    lines = []
    k = curves[curves["kind"] != "single"]["size"].max()
    for noise, c in curves.groupby("noise"):
        single = c[c["kind"] == "single"].sort_values("n")
        if single.empty:
            continue
        nmax = int(single["n"].max())
        peak = single.loc[single["gold_delta"].idxmax()]
        end = single[single["n"] == nmax].iloc[0]
        ens = c[(c["kind"] != "single") & (c["size"] == k) & (c["n"] == nmax)]
        best = ens.loc[ens["gold_delta"].idxmax()]
        worst = ens.loc[ens["gold_delta"].idxmin()]
        lines.append(
            f"- Label noise {noise:g}: best-of-n against the average single RM raises gold by "
            f"{peak['gold_delta']:+.3f} up to n={int(peak['n'])}, then gold falls to {end['gold_delta']:+.3f} at "
            f"n={nmax} (relative to n=1) while the proxy keeps rising ({single['proxy'].iloc[0]:.2f} -> "
            f"{end['proxy']:.2f}). At n={nmax} the best ensemble is {best['kind']} {best['method']} "
            f"({best['gold_delta']:+.3f}), the worst {worst['kind']} {worst['method']} ({worst['gold_delta']:+.3f}).")
    if rl is not None and not rl.empty:
        for cell, g in rl.groupby("cell"):
            g = g.sort_values("step")
            lines.append(
                f"- RL {cell.replace('rl__', '')}: after {int(g['step'].iloc[-1])} steps KL = {g['kl'].iloc[-1]:.2f}, "
                f"gold {g['gold'].iloc[-1] - g['gold'].iloc[0]:+.3f} vs the start.")
    return lines


_CORE_KEYS = ("label", "claim", "comparison", "estimate", "low", "high", "direction", "verdict", "rule", "covers",
              "interval", "df")


def _claims_table(claims: list[dict], calibration: dict) -> pd.DataFrame:
    summ = calibration.get("summary", {})
    rows = []
    for c in claims:
        extra = {k: v for k, v in c.items() if k not in _CORE_KEYS and not isinstance(v, list)}
        cal = summ.get(c["claim"])
        rows.append({"claim": c["label"], "rule": c["claim"], "comparison": c["comparison"],
                     "estimate": round(c["estimate"], 4), "95% CI": f"[{c['low']:.4f}, {c['high']:.4f}]",
                     "claimed sign": c["direction"], "verdict": c["verdict"],
                     "false positive at this size": "-" if cal is None else f"{cal['false_positive']:.0%}",
                     "power at this size (weakest / strongest effect)": "-" if cal is None or cal["power"] is None
                     else f"{cal['power']:.0%} / {cal['power_strong']:.0%}",
                     "details": ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in extra.items())})
    return pd.DataFrame(rows)


def calibration_table(calibration: dict) -> pd.DataFrame:
    """The calibration rows (``calibrate``'s) as the report shows them."""
    rows = [{"rule": r["claim"], "members": r.get("kind", "pretrain"), "truth": r["truth"], "scenario": r["scenario"],
             "reproduced": f"{r['reproduced']:.2f} ± {r['reproduced se']:.2f}",
             "not reproduced": f"{r['not reproduced']:.2f} ± {r['not reproduced se']:.2f}",
             "inconclusive": f"{r['inconclusive']:.2f}", "target met": "yes" if r["target_met"] else "NO"}
            for r in calibration.get("rows", [])]
    return pd.DataFrame(rows)


CAN_DECIDE = {
    "smoke": "Nothing: the smoke profile checks that the pipeline runs end to end; its numbers carry no evidence.",
    "quick": ("The quick profile (5 members, 6 seeds, 256 prompts x 128 samples, n <= 32, tiny models on the "
              "built-in world) decides the claims whose calibrated power at its size is high (see the power column); "
              "the weakest rules (underspecification, residual over-optimization, Gao's form) detect the "
              "calibration's strong effects but not its moderate ones, so an 'inconclusive' there is not evidence "
              "of absence. It cannot decide ensemble-size trends (one size), behaviour beyond n = 32, "
              "or RL claims: RL is one seed and one short run per arm, an illustration, not evidence. Intervals "
              "cover seeds (backbone draws, fine-tune seeds, label flips) and prompts; they do not cover the world "
              "build (policy, preference data, pool): compare world replicates (world_seed) for that."),
    "kinds": ("The quick study's size with every ensemble kind: what the quick profile decides, plus each extra "
              "kind against the average single member, its own members and the finetune ensemble under the same "
              "calibrated C3 rules (an 'inconclusive' is not evidence of no difference). Costs are this machine's "
              "seconds, for one world build."),
    "sharing": ("One level of the shared-error sweep on the teacher world: the quick study's size at noise 0 without "
                "RL, so what the quick profile decides at noise 0, for members trained on their own 2600-pair "
                "subsamples at this level of gold's tail and of the pairs they share (world.gold.shared_error and "
                "train.subsample_shared in the configuration; the sweep's report one folder up; docs/world.md)."),
    "markers": ("One level of the markers sweep: the quick study's size at noise 0 without RL, so what the quick "
                "profile decides at noise 0, for a world whose preference data carry this level of markers (see "
                "world.preferences.markers in the configuration, and the sweep's report one folder up)."),
    "daa": ("The quick study at label noise 0.25 plus the direct-alignment arm (DPO, IPO and RPO at betas 0.03, "
            "0.1 and 0.3, on noisy, cleaned and relabelled pairs, 4 seeds, 384 pairs each): the best-of-n claims as "
            "the quick profile decides them at one noise level; for DAA, each arm's gold curve with its seeds x "
            "prompts interval, Gao's RL-form fits with pigeonhole intervals over its 4 seeds and 96 evaluation "
            "prompts, and C7 (RPO's drop vs DPO's) at the power its calibration rows report for this size. Four "
            "seeds sample seed variance thinly, the DAA runs are short, and one world build is fixed."),

    "full": ("The full profile: the quick study's world and size (5 members, 6 seeds, 256 x 128 pool) with every "
             "ensemble kind, six aggregations, ensemble sizes 1-5, calibration at 100 replicates and an RL grid with "
             "3 seeds per arm. It decides what the quick profile decides, at the same calibrated power, for more "
             "kinds and methods; the size curve and the RL cells are descriptive (no claim rule uses them). It "
             "cannot decide behaviour beyond n = 32, and its intervals cover seeds and prompts, not the world build. "
             "The paper-scale world (world.name=full) does not build in its time budget on 2 cores."),
}


def write_report(out: Path) -> Path:
    from rewardherd.studies.plots import all_figures

    out = Path(out)
    res = out / "results"
    config = json.loads((out / "config.json").read_text())
    versions = json.loads((out / "versions.json").read_text()) if (out / "versions.json").exists() else {}
    cl = json.loads((res / "claims.json").read_text())
    fits = json.loads((res / "fits.json").read_text())
    unc = json.loads((res / "uncertainty.json").read_text())
    timings = json.loads((res / "timings.json").read_text()) if (res / "timings.json").exists() else {}
    opt_acc = pd.read_parquet(res / "optimized_accuracy.parquet")
    figs = all_figures(out)
    calibration = json.loads((res / "calibration.json").read_text()) if (res / "calibration.json").exists() else {}
    table = _claims_table(cl["claims"], calibration)
    cal_df = calibration_table(calibration)
    fits_df = pd.DataFrame(fits)
    unc_df = pd.DataFrame(unc)
    acc_df = opt_acc.groupby("noise")[["heldout_accuracy", "optimized_accuracy"]].agg(["mean", "min", "max"]).round(3)
    curves = pd.read_parquet(res / "curves.parquet")
    sharing_df = _sharing_table(res)
    rl = pd.read_parquet(res / "rl.parquet") if (res / "rl.parquet").exists() else None
    summary = plain_summary(curves, rl) + _summary(cl["claims"], config, timings, calibration,
                                                   _precision_text(res))
    caveat = CAN_DECIDE.get(config.get("profile"), "")
    doc = Document("rewardherd over-optimization study")
    doc.heading("Summary").bullets(s[2:] for s in summary).paragraph(f"**What this profile can decide.** {caveat}")
    doc.heading("Claims (computed from the data)").table(table, shade_verdicts=True)
    doc.heading("Decision rules", 3).bullets(f"**{k}**: {v}" for k, v in cl["rules"].items()).paragraph(VERDICT_TEXT)
    doc.heading("Calibration of the rules at this study's size", 3).paragraph(_calibration_text(calibration))
    doc.table(cal_df)
    doc.heading("Figures")
    for k, p in figs.items():
        doc.figure(p, k, CAPTIONS.get(k, k), relative_to=out)
    daa_text, daa_claims_df, daa_cal_df = _daa_section(res)
    if daa_text:
        doc.heading("Direct alignment (DPO, IPO, RPO) beside best-of-n and RL").paragraph(daa_text)
        doc.table(daa_claims_df, shade_verdicts=True).table(daa_cal_df)
    kind_lines, kinds_df = _kinds(res)
    if not kinds_df.empty:
        doc.heading("Every ensemble kind and its cost").paragraph(KINDS_TEXT).bullets(s[2:] for s in kind_lines)
        doc.table(kinds_df)
    doc.heading("Gao et al. fits").table(fits_df.round(4))
    doc.heading("Shared and idiosyncratic error (in distribution and on the best-of-n pool)")
    doc.paragraph(_sharing_text(config)).table(sharing_df, empty="(not computed)")
    doc.heading("Is the spread worth anything?").paragraph(
        "Spearman correlation of the ensemble's per-sample spread (std of standardized member scores) with the "
        "proxy-gold gap, and AUROC of the spread for 'gold below the pool median', over every pool sample.")
    doc.table(unc_df.round(3))
    doc.heading("Member accuracy: in distribution vs on optimized samples").paragraph(
        "Pairs: each prompt's best-of-N pick by the pretrain ensemble's mean vs every other sample of that prompt, "
        "labelled by gold.")
    doc.table(acc_df, index=True)
    doc.heading("Definitions").preformatted(DEFINITIONS.strip())
    doc.heading("Configuration").preformatted(json.dumps({k: v for k, v in config.items() if k != "_hash"}, indent=2),
                                              "json")
    doc.heading("Versions").preformatted(json.dumps(versions, indent=2), "json")
    return doc.write(out)


def _daa_section(res: Path) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """The DAA arm's paragraph (generated from its results), its C7 claims with their calibration,
    and that calibration's rows; empty without a DAA arm."""
    from rewardherd.studies.daa import beside_text, daa_paragraph, stored_daa_calibration

    if not (res / "daa.parquet").exists():
        return "", pd.DataFrame(), pd.DataFrame()
    fits = json.loads((res / "daa_fits.json").read_text())
    stored = json.loads((res / "daa_claims.json").read_text())
    table = pd.read_parquet(res / "daa.parquet")
    rl = pd.read_parquet(res / "rl.parquet") if (res / "rl.parquet").exists() else None
    curves = pd.read_parquet(res / "curves.parquet") if (res / "curves.parquet").exists() else pd.DataFrame()
    text = " ".join(t for t in (beside_text(curves, rl, table), daa_paragraph(table, fits, stored["claims"])) if t)
    calibration = stored_daa_calibration(res)
    return text, _claims_table(stored["claims"], calibration), calibration_table(calibration)


VERDICT_TEXT = ("Verdicts: reproduced when the 95% interval excludes 0 in the claimed direction; not reproduced when it "
                "excludes 0 the other way; inconclusive otherwise. Means use a t interval over seeds x prompts (crossed "
                "random effects, Satterthwaite degrees of freedom); the Gao fit uses a pigeonhole bootstrap over seeds "
                "and prompts. Each row's 'covers' says which sources of variance its interval includes.")


def _calibration_text(calibration: dict) -> str:
    if not calibration or not calibration.get("rows"):
        return ("Not calibrated at this size (calibration_replicates = 0); run benchmarks/claims_calibration.py "
                "with this study's size.")
    z = calibration["size"]
    return (f"Each rule was run on {calibration['replicates']} simulated studies per scenario at this study's size "
            f"({z['seeds']} seeds x {z['prompts']} prompts, pool {z['pool']}, K={z['members']}), where the effect is "
            "absent (null), present (effect) or reversed (opposite); shares ± Monte Carlo standard errors. Targets: "
            "'reproduced' <= 5% under nulls and opposite effects, 'not reproduced' <= 5% under the effect. "
            "benchmarks/claims_calibration.py runs the same with 200 replicates.")


WHERE = {"pool": "best-of-n pool (off distribution)", "heldout": "held-out pairs (in distribution)"}
SHARING_TEXT = ("Each member's error is its standardized score minus standardized gold: on the best-of-n pool "
                "z-scored within each prompt, on the held-out preference pairs the member's margin (chosen minus "
                "rejected) against gold's margin, z-scored across pairs. rho_bar: mean pairwise correlation of the "
                "members' errors; shared fraction: variance of the mean error over the mean member error variance (K members). Averaging K members can remove only the "
                "idiosyncratic part. Mean over seeds (min-max in brackets). docs/error_sharing.md explains how to "
                "place your own ensemble on this axis with `rewardherd eval --gold`.")


def _sharing_text(config: dict) -> str:
    """SHARING_TEXT, plus where a built-in world study sits on the world's error-sharing dial."""
    if config.get("user"):
        return SHARING_TEXT
    m = config.get("world", {}).get("preferences", {}).get("markers", 0.0)
    tail = config.get("world", {}).get("gold", {}).get("shared_error", 1.0)
    shared = config.get("train", {}).get("subsample_shared", 0.0)
    data = f" and train.subsample_shared = {shared:g}" if config.get("dial") == "tail_and_data" else ""
    return (SHARING_TEXT + f" This world's error-sharing dial is at world.preferences.markers = {m:g}"
            f"{' (the default)' if m == 0 else ''}, and its shared-error dial at world.gold.shared_error = {tail:g}"
            f"{data}; a study with sweep.markers or sweep.levels sweeps one of them and plots each ensemble's gain "
            "over its own members against its members' error correlation, so the correlations above place this "
            "study on that axis (docs/sharing_dial.md, docs/world.md).")


KINDS_TEXT = ("Gold of the best-of-n pick at the largest n for each ensemble kind and method, minus the average full "
              "fine-tuned single member (one baseline for every kind), minus the kind's own members each optimized "
              "alone (WARM: the finetune members it averages), and minus the finetune ensemble with the same method "
              "(same backbone, fine-tune seeds and noisy data: cleaned differs only by its data, WARM only by "
              "averaging weights instead of predictions). These are the C3 rules with their calibration; only "
              "what is compared differs. WARM averages the finetune members as they were trained, each with its own "
              "head initialization unless train.shared_head_init is set (WARM's recipe shares it). Cost: forward "
              "passes per scored response at inference, and seconds to train one ensemble and to score the pool "
              "with it, on the machine that ran the study (mean "
              "over seeds; WARM's training includes its members').")


def _kinds(res: Path) -> tuple[list[str], pd.DataFrame]:
    """The kinds section: a sentence per cheap kind against the pretrain ensemble, and the table."""
    p = res / "kinds.json"
    rows = pd.DataFrame(json.loads(p.read_text())) if p.exists() else pd.DataFrame()
    if rows.empty:
        return [], rows
    lines = [f"- {kind}: {ks.spec(kind).description}" for kind in rows["kind"].unique()]
    for noise, g in rows.groupby("noise"):
        first = g.groupby("kind", sort=False).head(1).set_index("kind")
        pre = first.loc["pretrain"]
        for kind, r in first.iterrows():
            if kind == "pretrain" or r["forward_passes"] >= pre["forward_passes"]:
                continue
            gains = [interval_text(x["gain_vs_single"], x["gain_vs_single_low"], x["gain_vs_single_high"])
                     for x in (r, pre)]
            head = (f"noise {noise:g}: {kind} ({r['method']}) at {r['forward_passes']} forward pass(es) gains "
                    f"{gains[0]} gold over the average single member; the pretrain ensemble ({pre['method']}) at "
                    f"{pre['forward_passes']} gains {gains[1]}")
            if pre["verdict_vs_single"] == "reproduced":
                lines.append(f"- {head}: {r['gain_vs_single'] / pre['gain_vs_single']:.0%} of its benefit.")
            else:
                lines.append(f"- {head}, which is not a significant benefit, so no share of it is stated.")
    table = pd.DataFrame({
        "noise": rows["noise"], "kind": rows["kind"], "method": rows["method"], "passes": rows["forward_passes"],
        "train s": rows["train_seconds"].round(1), "score s": rows["score_seconds"].round(1),
        "vs single [95% CI]": _gain_column(rows, "single"),
        "vs own members [95% CI]": _gain_column(rows, "own"),
        "vs finetune ensemble [95% CI]": _gain_column(rows, "finetune", blank_missing=True)})
    return lines, table


def _gain_column(rows: pd.DataFrame, vs: str, blank_missing: bool = False) -> list[str]:
    """'gain [low, high] verdict' of each kinds row against ``vs`` ('' where not compared)."""
    cols = [rows[f"gain_vs_{vs}{end}"] for end in ("", "_low", "_high")]
    cols.append(rows[f"verdict_vs_{vs}"])
    return ["" if blank_missing and pd.isna(e) else f"{interval_text(e, lo, hi)} {v}"
            for e, lo, hi, v in zip(*cols, strict=True)]


def _sharing_table(res: Path) -> pd.DataFrame:
    p = res / "sharing.parquet"
    if not p.exists():
        return pd.DataFrame()
    t = pd.read_parquet(p)
    if t.empty:
        return pd.DataFrame()
    rows = []
    t = t if "where" in t.columns else t.assign(where="pool")  # a run from before the held-out rows
    for (where, noise, kind), g in t.groupby(["where", "noise", "kind"], sort=False):
        rows.append({"errors on": WHERE[where], "label noise": noise, "kind": kind, "seeds": len(g),
                     "rho_bar": f"{g['rho_bar'].mean():.3f} [{g['rho_bar'].min():.3f}, {g['rho_bar'].max():.3f}]",
                     "shared fraction": f"{g['shared_fraction'].mean():.3f} [{g['shared_fraction'].min():.3f}, "
                                        f"{g['shared_fraction'].max():.3f}]"})
    return pd.DataFrame(rows)
