"""The error-sharing sweep (issues 13 and 23): one study per level of one of the world's dials.

Two dials: ``sweep.markers`` lists levels of ``world.preferences.markers``
(docs/sharing_dial.md), each run in ``<out>/markers<level>/``; ``sweep.levels`` lists
levels of the study's shared-error dial (``StudyConfig.dial``, set by
:func:`rewardherd.studies.config.at_dial_level`: gold's tail and, with ``tail_and_data``,
the pairs all members share; docs/world.md), each run in ``<out>/level<level>/``. Each
level is a whole study (its own report, claims and calibration). The markers dial leaves
the best-of-n pool alone, so it is sampled once and linked into every level; the tail
changes gold, so each shared-error level scores its own pool. Then ``<out>/results/sharing_dial.parquet`` holds, per
level, kind, method and noise, each ensemble's gold gain over its own members at n_max
and at each curve's peak (C3 rules, with intervals and verdicts; their calibration is in
``results/calibration.json``) beside its members' measured error sharing, and
``<out>/report.html`` plots one against the other.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from rewardherd.config import to_dict
from rewardherd.io import write_atomic, write_json_atomic, write_table_atomic, write_text_atomic
from rewardherd.studies import kinds
from rewardherd.studies.document import Document, interval_text
from rewardherd.studies.report import calibration_table

log = logging.getLogger(__name__)

#: What a level sets, per dial (the table's ``dial`` column).
DIAL_TEXT = {
    "markers": ("world.preferences.markers: the share of training and held-out pairs carrying redundant markers, "
                "docs/sharing_dial.md"),
    "tail": ("world.gold.shared_error: the strength of gold's tail, a term no preference pair shows, so every "
             "member misses it; docs/world.md"),
    "tail_and_data": ("world.gold.shared_error and train.subsample_shared together: the strength of gold's tail, a "
                      "term no preference pair shows, and the share of each member's training subsample that every "
                      "member holds; docs/world.md"),
}
#: The error correlation each dial's levels are read against (the figure's x, the summary's order).
X_AXIS = {"markers": ("rho_bar", "members' error correlation rho_bar (pool)"),
          "tail": ("residual_rho", "members' residual error correlation (pool, gold regressed out)"),
          "tail_and_data": ("residual_rho", "members' residual error correlation (pool, gold regressed out)")}
#: How the tables and the summary name each x column.
X_LABEL = {"rho_bar": "rho_bar", "residual_rho": "residual rho"}


def dial_text(dial: str) -> str:
    """The sweep report's explanation of its figure, for the dial it turns."""
    what = ("the members' mean pairwise error correlation rho_bar" if X_AXIS[dial][0] == "rho_bar" else
            "the members' mean pairwise residual error correlation (each member's error with gold's part regressed "
            "out, core.residual_error_sharing; rho_bar is in the table)")
    return (f"Each point is one level of the world's {'error-sharing' if dial == 'markers' else 'shared-error'} "
            f"dial ({DIAL_TEXT[dial]}). x: {what} on the best-of-n pool (mean over seeds; bars: min-max over seeds). "
            "y, top row: the ensemble's gold at n_max minus the average gold of its own members each optimized alone "
            "(the C3 rule); bottom row: the same at each curve's own peak n, chosen on one half of the prompts and "
            "measured on the other (95% t intervals over seeds x prompts, which cover seeds and prompts, not the world "
            "build; both rules are calibrated below). Averaging can only cancel idiosyncratic error, so theory expects "
            "the gain to shrink toward zero, or below, as the correlation -> 1. The dial also changes what members "
            "learn (their held-out accuracy is in the table), so it is not a pure sharing dial; read the gain against "
            "the error correlation with that in mind.")


def sweep_dial(config) -> tuple[str, tuple[float, ...]]:
    """The dial a sweep config turns (``markers``, or its shared-error ``dial``) and its levels."""
    if config.sweep.markers:
        return "markers", tuple(config.sweep.markers)
    return config.dial, tuple(config.sweep.levels)


def level_config(config, dial: str, level: float):
    """One level's study: ``config`` with the sweep's dial at ``level`` and no sweep of its own."""
    from rewardherd.studies.config import at_dial_level

    base = replace(config, sweep=replace(config.sweep, markers=(), levels=()))
    if dial == "markers":
        return replace(base, world=replace(config.world, preferences=replace(config.world.preferences, markers=level)))
    return at_dial_level(base, level)


GAINS = "Ensemble gain over its own members, at n_max and at each curve's peak"


def _level_name(dial: str) -> str:
    """What a level is called in directory names, tables and the figure: markers, or a shared-error level."""
    return "markers" if dial == "markers" else "level"


def level_dir(out: Path, level: float, dial: str = "markers") -> Path:
    return Path(out) / f"{_level_name(dial)}{level:g}"


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)  # study files are written atomically, never in place: a hard link is safe
    except OSError:  # another file system: an atomic copy, so a killed run never leaves half a pool
        write_atomic(dst, lambda tmp: shutil.copy2(src, tmp))


def run_sharing(config, out_dir: str | Path, run_study, *, progress: bool = True, overwrite: bool = False) -> Path:
    """Run (or resume) every level's study with ``run_study`` (the runner's), then tabulate and
    report. Returns the report path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dial, levels = sweep_dial(config)
    pool, seconds = None, {}
    for level in levels:
        d = level_dir(out, level, dial)
        if pool is not None and dial == "markers" and not d.exists():
            _link(pool, d / "pool.parquet")
        t = time.time()
        run_study(level_config(config, dial, level), d, progress=progress, overwrite=overwrite)
        seconds[d.name] = round(time.time() - t, 1)
        pool = d / "pool.parquet"
    # written once every level has run: a rerun that a level refuses (another configuration) changes nothing here
    write_json_atomic(out / "config.json", to_dict(config))
    table = sharing_dial_table(out, levels, dial)
    write_table_atomic(table, out / "results" / "sharing_dial.parquet")
    write_json_atomic(out / "results" / "calibration.json", sweep_calibration(out, levels, dial))
    write_json_atomic(out / "results" / "timings.json", seconds)
    write_text_atomic(out / "results" / "DONE", "ok\n")
    return write_sharing_report(out, table, seconds)


def report_sharing(out: Path, reanalyze) -> Path:
    """Re-analyse every level of a finished sweep (``reanalyze``) and rewrite the sweep's table and report."""
    old = pd.read_parquet(out / "results" / "sharing_dial.parquet")
    dial = _dial(old)
    levels = sorted({float(v) for v in old["level"]})
    for level in levels:
        reanalyze(level_dir(out, level, dial))
    table = sharing_dial_table(out, levels, dial)
    write_table_atomic(table, out / "results" / "sharing_dial.parquet")
    write_json_atomic(out / "results" / "calibration.json", sweep_calibration(out, levels, dial))
    timings = out / "results" / "timings.json"
    return write_sharing_report(out, table, json.loads(timings.read_text()) if timings.exists() else {})


def _spread(values: pd.Series) -> tuple[float, float, float]:
    return float(values.mean()), float(values.min()), float(values.max())


def sharing_dial_table(out: Path, levels, dial: str = "markers") -> pd.DataFrame:
    """One row per (level, noise, kind, method) of the finetune and pretrain ensembles: the gain
    over their own members (``results/kinds.json``) beside the members' error sharing on the
    pool (rho_bar, and the residual correlation where the level's study recorded it) and on the
    held-out pairs (``results/sharing.parquet``) and their held-out accuracy."""
    rows = []
    for level in levels:
        res = level_dir(out, level, dial) / "results"
        sharing = pd.read_parquet(res / "sharing.parquet")
        members = pd.read_parquet(res / "members.parquet")
        for r in json.loads((res / "kinds.json").read_text()):
            if not kinds.spec(r["kind"]).main:
                continue
            sh = sharing[(sharing["kind"] == r["kind"]) & (sharing["noise"] == r["noise"])]
            pool, held = sh[sh["where"] == "pool"], sh[sh["where"] == "heldout"]
            acc = members[(members["kind"] == r["kind"]) & (members["noise"] == r["noise"])]["heldout_accuracy"]
            rho, rho_min, rho_max = _spread(pool["rho_bar"])
            nan = float("nan")
            res_rho = _spread(pool["residual_rho_bar"]) if "residual_rho_bar" in pool else (nan, nan, nan)
            acc_mean, acc_min, acc_max = _spread(acc)
            rows.append({
                "dial": dial, "level": level, "noise": r["noise"], "kind": r["kind"], "method": r["method"],
                "seeds": len(pool), "rho_bar": rho, "rho_bar_min": rho_min, "rho_bar_max": rho_max,
                "residual_rho": res_rho[0], "residual_rho_min": res_rho[1], "residual_rho_max": res_rho[2],
                "shared_fraction": float(pool["shared_fraction"].mean()),
                "rho_bar_heldout": float(held["rho_bar"].mean()) if len(held) else float("nan"),
                "heldout_accuracy": acc_mean, "heldout_accuracy_min": acc_min, "heldout_accuracy_max": acc_max,
                "gain": r["gain_vs_own"], "gain_low": r["gain_vs_own_low"], "gain_high": r["gain_vs_own_high"],
                "verdict": r["verdict_vs_own"],
                "peak_gain": r["gain_vs_own_peak"], "peak_gain_low": r["gain_vs_own_peak_low"],
                "peak_gain_high": r["gain_vs_own_peak_high"], "peak_verdict": r["verdict_vs_own_peak"],
                "own_peak_n": r["own_peak_n"], "ensemble_peak_n": r["ensemble_peak_n"], "covers": r["covers"]})
    return pd.DataFrame(rows)


def _dial(table: pd.DataFrame) -> str:
    """The dial a sweep table was made on (tables from before issue 23 have no column: markers)."""
    return str(table["dial"].iloc[0]) if "dial" in table and len(table) else "markers"


def _spread_text(t: pd.DataFrame, col: str) -> list[str]:
    return [f"{a:.3f} [{b:.3f}, {c:.3f}]" for a, b, c in zip(t[col], t[f"{col}_min"], t[f"{col}_max"], strict=True)]


def _display(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    members = table.drop_duplicates(["level", "noise", "kind"])
    dial = _dial(table)
    name = _level_name(dial)
    residual = ({"residual rho pool [min, max]": _spread_text(members, "residual_rho")}
                if "residual_rho" in members and members["residual_rho"].notna().any() else {})
    levels = pd.DataFrame({
        name: members["level"], "noise": members["noise"], "kind": members["kind"], **residual,
        "rho_bar pool [min, max]": _spread_text(members, "rho_bar"),
        "shared fraction": members["shared_fraction"].round(3),
        "rho_bar held-out": members["rho_bar_heldout"].round(3),
        "member held-out accuracy [min, max]": _spread_text(members, "heldout_accuracy")})
    x = X_AXIS[dial][0]
    gains = pd.DataFrame({
        name: table["level"], "noise": table["noise"], "kind": table["kind"], "method": table["method"],
        X_LABEL[x]: table[x].round(3),
        "gain vs own members at n_max [95% CI]": _intervals(table, ""), "verdict at n_max": table["verdict"],
        "gain at each curve's peak [95% CI]": _intervals(table, "peak_"), "verdict at peaks": table["peak_verdict"],
        "peak n (ensemble / members)": [f"{a} / {b}" for a, b in zip(table["ensemble_peak_n"], table["own_peak_n"],
                                                                     strict=True)]})
    return levels, gains


def _intervals(table: pd.DataFrame, prefix: str) -> list[str]:
    return [interval_text(e, lo, hi) for e, lo, hi in
            zip(table[f"{prefix}gain"], table[f"{prefix}gain_low"], table[f"{prefix}gain_high"], strict=True)]


def summary_lines(table: pd.DataFrame) -> list[str]:
    """What came out, computed from the table: the verdict counts, and each kind and method's gain at its
    highest and at its lowest measured error correlation (rho_bar on the markers dial, the residual
    correlation on the shared-error dial)."""
    x = X_AXIS[_dial(table)][0]
    lines = []
    for prefix, where in (("", "at n_max"), ("peak_", "at each curve's peak")):
        counts = table[f"{prefix}verdict"].value_counts()
        lines.append(f"Verdicts {where} over {len(table)} (level, kind, method) cells: "
                     + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("reproduced", "not reproduced", "inconclusive"))
                     + " (reproduced = the ensemble beats its own members).")
    for (noise, kind, method), g in table.groupby(["noise", "kind", "method"], sort=False):
        hi, lo = g.loc[g[x].idxmax()], g.loc[g[x].idxmin()]
        parts = [f"{where} " + " -> ".join(interval_text(r[p + "gain"], r[p + "gain_low"], r[p + "gain_high"])
                                           for r in (hi, lo))
                 for p, where in (("", "at n_max"), ("peak_", "at peaks"))]
        lines.append(f"{kind} {method}, noise {noise:g}, from {X_LABEL[x]} {hi[x]:.2f} to {lo[x]:.2f}: "
                     f"gain {parts[0]}; {parts[1]}.")
    return lines


def sweep_calibration(out: Path, levels, dial: str = "markers") -> dict:
    """The calibration of the sweep's two rules at its levels' size: C3 at n_max (the
    ensemble_vs_own_members rows of a level's calibration) and C3 at each curve's peak
    (:func:`rewardherd.studies.calibration.peak_scenarios`, simulated here with the
    levels' replicate count, cached by size in the world cache)."""
    from rewardherd.studies import calibration as cal
    from rewardherd.world.cache import default_cache_dir

    level = json.loads((level_dir(out, levels[0], dial) / "results" / "calibration.json").read_text())
    c3 = [r for r in level["rows"] if r["claim"] == "ensemble_vs_own_members"]
    if not level["replicates"]:
        return {**level, "rows": []}
    cache = json.loads((out / "config.json").read_text()).get("cache_dir") or default_cache_dir()
    peak = cal.calibrate(cal.Size(**level["size"]), level["replicates"], cache_dir=cache, cells=cal.peak_scenarios())
    return {"size": level["size"], "replicates": level["replicates"], "rows": c3 + peak}


def write_sharing_report(out: Path, table: pd.DataFrame, seconds: dict) -> Path:
    from rewardherd.studies.claims import RULES
    from rewardherd.studies.plots import sharing_dial

    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    dial = _dial(table)
    fig = sharing_dial(table, figs / "sharing_dial.png", *X_AXIS[dial],
                       "markers" if dial == "markers" else "shared-error dial")
    levels, gains = _display(table)
    covers = table["covers"].iloc[0] if len(table) else ""
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
    text = dial_text(dial)
    links = [f"{level_dir(Path(), lv, dial).name}/report.html" for lv in dict.fromkeys(table["level"])]
    summary = summary_lines(table)
    calp = out / "results" / "calibration.json"
    calibration = json.loads(calp.read_text()) if calp.exists() else {"rows": []}
    cal = calibration_table(calibration)
    rules = [f"{name}: {RULES[name]}" for name in ("ensemble_vs_own_members", "ensemble_vs_own_members_at_peak")]
    size = calibration.get("size") or {}
    cal_text = (f"Both rules simulated where the effect is absent (null), present (effect) or, for C3 at n_max, "
                f"reversed (opposite), at the levels' size "
                f"({size.get('seeds')} seeds x {size.get('prompts')} prompts, pool {size.get('pool')}, "
                f"K = {size.get('members')}; {calibration.get('replicates')} replicates per row; "
                "rewardherd.studies.calibration): the share of each verdict, with its Monte Carlo standard error. "
                "Targets: reproduced <= 5% under a null, not reproduced <= 5% under an effect."
                if len(cal) else "Not calibrated (calibration_replicates = 0).")
    doc = Document("rewardherd error-sharing sweep")
    doc.paragraph(text).paragraph(f"Intervals cover: {covers}.")
    doc.heading("What came out").bullets(summary).figure(fig, "sharing dial", relative_to=out)
    doc.heading("The dial's levels (single-member diagnostics)").table(levels)
    doc.heading(GAINS).table(gains, shade_verdicts=True)
    doc.heading("The rules and their calibration").bullets(rules).paragraph(cal_text).table(cal)
    doc.paragraph("Each level's full report (claims, calibration, figures): " + ", ".join(links))
    doc.paragraph(f"Wall time per level in the run that finished the sweep (a level already done only rebuilt its "
                  f"report): {timing}.")
    return doc.write(out)
