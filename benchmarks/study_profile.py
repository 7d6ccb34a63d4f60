"""Where a study's time goes: per stage and per unit type, with each figure's share.

Reads a finished (or partly finished) study directory: ``results/timings.json`` (stage
wall times written by the runner) and each member unit's ``info.json`` (training and
scoring seconds), and each RL cell's trainer log. Nothing is rerun.

    python benchmarks/study_profile.py runs/study
    python benchmarks/study_profile.py runs/study --compare runs/study_before   # side by side
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def profile(out: Path) -> dict:
    timings = json.loads((out / "results" / "timings.json").read_text()) if (out / "results" / "timings.json").exists() else {}
    units = [json.loads(p.read_text()) for p in sorted((out / "members").glob("*/info.json"))]
    df = pd.DataFrame([{"seconds": u.get("seconds"), "train": u.get("train_seconds"), "score": u.get("score_seconds")}
                       for u in units])
    config = json.loads((out / "config.json").read_text())
    seeds = len(config["seeds"])
    return {"stages": timings, "units": len(units), "unit_mean": df.mean(numeric_only=True).to_dict() if len(df) else {},
            "seeds": seeds, "total": sum(timings.values())}


def show(name: str, p: dict) -> None:
    total = p["total"] or float("nan")
    print(f"== {name}: {p['seeds']} seeds, {p['units']} member units, {total:.0f} s in all stages")
    for stage, sec in p["stages"].items():
        print(f"  {stage:12s} {sec:8.1f} s  {sec / total:6.1%}")
    if p["unit_mean"]:
        u = p["unit_mean"]
        print("  member unit (mean): " + ", ".join(f"{k} {v:.1f} s" for k, v in u.items() if v == v))
    print(f"  per seed: {total / p['seeds']:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", type=Path)
    ap.add_argument("--compare", type=Path, help="another study directory (e.g. before a change)")
    args = ap.parse_args()
    a = profile(args.study)
    show(str(args.study), a)
    if args.compare:
        b = profile(args.compare)
        show(str(args.compare), b)
        if a["total"] and b["total"]:
            print(f"per-seed cost ratio {args.study} / {args.compare}: "
                  f"{(a['total'] / a['seeds']) / (b['total'] / b['seeds']):.2f}")


if __name__ == "__main__":
    main()
