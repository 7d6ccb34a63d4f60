"""Where a study's time goes: per stage and per unit type, with each figure's share.

Reads a finished (or partly finished) study directory: ``results/timings.json`` (stage
wall times written by the runner), each member unit's ``info.json`` (training and
scoring seconds, and the precision its pool scores were computed in) and each RL
cell's trainer log (TRL's per-step ``step_time``). Nothing is rerun. With
``--compare`` it prints both side by side and the per-seed cost ratio.

    python benchmarks/study_profile.py runs/study
    python benchmarks/study_profile.py runs/study --compare runs/study_before   # side by side
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def profile(out: Path) -> dict:
    tpath = out / "results" / "timings.json"
    stages = json.loads(tpath.read_text()) if tpath.exists() else {}
    units = [json.loads(p.read_text()) for p in sorted((out / "members").glob("*/info.json"))]
    # a multi-head or cleaned ensemble writes one info per member, each with the whole unit's times
    units = list({u.get("trained", u.get("name", i)): u for i, u in enumerate(units)}.values())
    mem = pd.DataFrame([{"train": u.get("train_seconds"), "score": u.get("score_seconds"), "unit": u.get("seconds"),
                         "dtype": (u.get("pool_scores") or {}).get("dtype", "float32")} for u in units])
    steps = [pd.read_parquet(p, columns=["step_time"])["step_time"] for p in sorted(out.glob("cells/rl__*/rl_train_log.parquet"))]
    config = json.loads((out / "config.json").read_text())
    total = sum(stages.values())
    per_unit = {}
    if len(mem):
        per_unit = {f"member {k} (mean s)": float(mem[k].mean()) for k in ("train", "score", "unit") if mem[k].notna().any()}
        per_unit["member units"] = len(mem)
        per_unit["member score dtype"] = ", ".join(f"{d} x{n}" for d, n in mem["dtype"].value_counts().items())
    if steps:
        s = pd.concat(steps)
        per_unit["RL cells"] = len(steps)
        per_unit["RL step (median s)"] = float(s.median())
    seeds = len(config.get("sweep", config)["seeds"])  # top-level in studies run before the sweep section
    return {"stages": stages, "total": total, "seeds": seeds, "per_unit": per_unit,
            "per_seed": total / seeds if total else float("nan")}


def _fmt(v) -> str:
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def show(name: str, p: dict) -> None:
    total = p["total"] or float("nan")
    print(f"== {name}: {p['seeds']} seeds, {total:.0f} s in all stages, {p['per_seed']:.0f} s per seed")
    for stage, sec in p["stages"].items():
        print(f"  {stage:12s} {sec:8.1f} s  {sec / total:6.1%}")
    for k, v in p["per_unit"].items():
        print(f"  {k:24s} {_fmt(v)}")


def compare(after: dict, before: dict, a_name: str, b_name: str) -> None:
    stages = list(dict.fromkeys(list(before["stages"]) + list(after["stages"])))
    print(f"\n{'stage (s)':24s} {'before':>10s} {'after':>10s} {'after/before':>13s}")
    for s in stages + ["total", "per seed"]:
        key = {"total": "total", "per seed": "per_seed"}.get(s)
        b = before[key] if key else before["stages"].get(s, float("nan"))
        a = after[key] if key else after["stages"].get(s, float("nan"))
        ratio = a / b if b else float("nan")
        print(f"{s:24s} {b:10.1f} {a:10.1f} {ratio:13.2f}")
    for k in dict.fromkeys(list(before["per_unit"]) + list(after["per_unit"])):
        b, a = before["per_unit"].get(k, ""), after["per_unit"].get(k, "")
        ratio = f"{a / b:13.2f}" if isinstance(a, float) and isinstance(b, float) and b else ""
        print(f"{k:24s} {_fmt(b):>10s} {_fmt(a):>10s} {ratio}")
    print(f"\nper-seed cost ratio ({a_name} / {b_name}): {after['per_seed'] / before['per_seed']:.2f}")


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
        compare(a, b, str(args.study), str(args.compare))


if __name__ == "__main__":
    main()
