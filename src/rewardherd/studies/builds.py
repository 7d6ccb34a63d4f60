"""World-build replicates (issue 23): the same study on several builds of the built-in world.

A study's intervals cover its seeds and prompts; the world build (policy, backbone pool,
preference data, pool: ``StudyConfig.world_seed``, :func:`rewardherd.world.world_replicate`)
is fixed. ``world_seeds`` lists builds; each runs as a whole study, or as a whole level sweep
when ``sweep.levels`` or ``sweep.markers`` is set, in ``<out>/build<seed>/`` with its own
report, claims and calibration. Then ``<out>/results/builds.parquet`` holds every claim row of
every build (one row per build, level and comparison) and ``<out>/report.html`` sets the
builds' verdicts side by side.

The table adds no decision rule: each verdict is its own build's calibrated rule. It shows
whether a verdict holds when the world is rebuilt and how far an estimate moves between
builds against the intervals within a build (``spread`` / ``half-width``). A split verdict is
not by itself evidence that builds differ: two builds of one world split with a probability
set by each rule's power and false-positive rate (each build's calibration table), up to 0.5
where a rule is near its threshold.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from rewardherd.config import to_dict
from rewardherd.io import write_json_atomic, write_table_atomic, write_text_atomic
from rewardherd.studies.document import Document, interval_text

#: Verdict words (claims.verdict) in the order the summary counts them.
VERDICTS = ("reproduced", "not reproduced", "inconclusive")
#: Numbers a comparison's text takes from the data (a chosen peak n, a fit's R^2 and d*): masked
#: when rows are matched across builds, since the same comparison reads differently in each.
_DATA_NUMBER = re.compile(r"(?<=[=<>] )-?[\d.]+|(?<==)-?[\d.]+")


def build_dir(out: Path, seed: int) -> Path:
    return Path(out) / f"build{seed}"


def build_config(config, seed: int):
    """One build's study: the sweep's configuration at ``world_seed=seed``."""
    return replace(config, world_seeds=(), world_seed=int(seed))


def claim_files(study: Path) -> list[tuple[str, Path]]:
    """(where, file) for every claims file of a finished study or level sweep: where is the level's
    directory name, '' for a plain study."""
    study = Path(study)
    found = []
    for d in [study, *sorted(p for p in study.iterdir() if p.is_dir())]:
        for name in ("claims.json", "daa_claims.json"):
            f = d / "results" / name
            if f.exists():
                found.append(("" if d == study else d.name, f))
    return found


def study_claims(study: Path, build: int) -> pd.DataFrame:
    """Every claim row of one build, keyed by (where, claim, signature, ordinal) so that the same
    comparison lines up across builds (see ``_DATA_NUMBER``)."""
    rows = []
    for where, f in claim_files(study):
        for c in json.loads(f.read_text())["claims"]:
            missing = [k for k in ("label", "claim", "comparison", "estimate", "low", "high", "verdict") if k not in c]
            if missing:
                raise ValueError(f"{f}: a claim row has no {missing[0]!r} field; re-run `rewardherd report` on "
                                 f"{study} to rewrite its claims")
            rows.append({"build": int(build), "where": where, "label": c["label"], "claim": c["claim"],
                         "comparison": c["comparison"], "signature": _DATA_NUMBER.sub("#", c["comparison"]),
                         "estimate": float(c["estimate"]), "low": float(c["low"]), "high": float(c["high"]),
                         "verdict": c["verdict"]})
    if not rows:
        raise FileNotFoundError(f"{study}: no results/claims.json in the study or its levels; is it finished?")
    t = pd.DataFrame(rows)
    t["ordinal"] = t.groupby(["where", "claim", "signature"]).cumcount()
    return t


def builds_table(out: Path, seeds) -> pd.DataFrame:
    """Every build's claim rows, long: one row per build and comparison."""
    return pd.concat([study_claims(build_dir(out, s), s) for s in seeds], ignore_index=True)


def agreement(table: pd.DataFrame) -> pd.DataFrame:
    """One row per comparison: each build's estimate [interval] and verdict, whether the verdicts
    agree, and the spread of the estimates across builds against the mean half-width within one."""
    seeds = sorted(table["build"].unique())
    rows = []
    for (where, _, _, _), g in table.groupby(["where", "claim", "signature", "ordinal"], sort=False):
        by = {int(r["build"]): r for _, r in g.iterrows()}
        first = by[min(by)]
        row = {"level": where or "-", "claim": first["label"], "comparison": first["comparison"]}
        for s in seeds:
            r = by.get(s)
            row[f"build {s}"] = "missing" if r is None else interval_text(r["estimate"], r["low"], r["high"])
            row[f"verdict {s}"] = "missing" if r is None else r["verdict"]
        verdicts = {row[f"verdict {s}"] for s in seeds}
        row["agree"] = "yes" if len(verdicts) == 1 else "no"
        est = g["estimate"].to_numpy(float)
        half = (g["high"] - g["low"]).to_numpy(float) / 2
        finite = np.isfinite(est) & np.isfinite(half)
        row["spread"] = float(np.ptp(est[finite])) if finite.sum() >= 2 else np.nan
        row["half-width"] = float(half[finite].mean()) if finite.any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def summary_lines(wide: pd.DataFrame, seeds) -> list[str]:
    """Counts of agreement, overall and per claim label."""
    cols = [f"verdict {s}" for s in seeds]

    def counts(t: pd.DataFrame) -> str:
        same = t[cols].nunique(axis=1) == 1
        parts = [f"{int((same & (t[cols[0]] == v)).sum())} {v} in every build" for v in VERDICTS]
        return f"{int(same.sum())} of {len(t)} agree ({', '.join(parts)}); {int((~same).sum())} split"

    lines = [f"All comparisons over builds {', '.join(map(str, seeds))}: {counts(wide)}."]
    for label, t in wide.groupby("claim", sort=True):
        lines.append(f"{label}: {counts(t)}.")
    moved = wide[wide["spread"] > 2 * wide["half-width"]]
    lines.append(f"{len(moved)} of {len(wide)} estimates move between builds by more than twice their mean "
                 "half-width within a build: there the build matters more than the seeds and prompts the "
                 "intervals cover.")
    return lines


def write_builds_report(out: Path, table: pd.DataFrame, seconds: dict) -> Path:
    seeds = sorted(int(s) for s in table["build"].unique())
    wide = agreement(table)
    shown = wide.assign(spread=wide["spread"].round(3), **{"half-width": wide["half-width"].round(3)})
    links = [f"{build_dir(Path(), s).name}/report.html" for s in seeds]
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
    doc = Document("rewardherd world-build replicates")
    doc.paragraph(
        f"The same study on {len(seeds)} builds of the built-in world (world_seed {', '.join(map(str, seeds))}: each "
        "redraws the policy, the backbone pool and the preference data). Within a build, intervals cover seeds and "
        "prompts; this page shows whether each verdict holds when the world is rebuilt. It adds no decision rule: "
        "each verdict is its build's own calibrated rule (calibration tables in each build's report), so two builds "
        "of one world can split where a rule's power is below 1 or an effect sits near its threshold. spread: the "
        "largest minus the smallest estimate across builds; half-width: the mean half-width of the builds' 95% "
        "intervals. Numbers inside a comparison (a chosen peak n, a fit's R^2) are the first build's.")
    doc.heading("What came out").bullets(summary_lines(wide, seeds))
    doc.heading("Every comparison, build by build").table(shown, shade_verdicts=True)
    doc.paragraph("Each build's full report: " + ", ".join(links))
    if timing:
        doc.paragraph(f"Wall time per build in the run that finished the replicates (a build already done only "
                      f"rebuilt its report): {timing}.")
    return doc.write(out)


def run_builds(config, out_dir: str | Path, run_study, *, progress: bool = True, overwrite: bool = False) -> Path:
    """Run (or resume) the study on every build in ``config.world_seeds`` with ``run_study`` (the
    runner's), then tabulate and report. Returns the report path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds = {}
    for seed in config.world_seeds:
        t = time.time()
        run_study(build_config(config, seed), build_dir(out, seed), progress=progress, overwrite=overwrite)
        seconds[build_dir(out, seed).name] = round(time.time() - t, 1)
    write_json_atomic(out / "config.json", to_dict(config))  # once every build ran (a refused build changes nothing)
    table = builds_table(out, config.world_seeds)
    write_table_atomic(table, out / "results" / "builds.parquet")
    write_json_atomic(out / "results" / "timings.json", seconds)
    write_text_atomic(out / "results" / "DONE", "ok\n")
    return write_builds_report(out, table, seconds)


def report_builds(out: Path, reanalyze) -> Path:
    """Re-analyse every build of a finished replicate run (``reanalyze``) and rewrite its table and report."""
    seeds = sorted(int(s) for s in pd.read_parquet(out / "results" / "builds.parquet")["build"].unique())
    for seed in seeds:
        reanalyze(build_dir(out, seed))
    table = builds_table(out, seeds)
    write_table_atomic(table, out / "results" / "builds.parquet")
    timings = out / "results" / "timings.json"
    return write_builds_report(out, table, json.loads(timings.read_text()) if timings.exists() else {})
