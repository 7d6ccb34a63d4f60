"""Budgets of the built-in world: cold and warm build time, gold-reward throughput.

Targets (issue 3, 2 cores): ``quick`` builds in <= 12 min from an empty cache and
<= 10 s from a warm one; gold scores >= 400 samples/s uncached.

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/world_budget.py --profile quick
    HF_HUB_OFFLINE=1 python benchmarks/world_budget.py --cache-dir ~/.cache/rewardherd --no-cold

The cold build uses a fresh temporary cache unless ``--cache-dir`` is given. Timings
depend on what else runs on the machine: the script prints the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def timed_build(profile: str, cache_dir: Path) -> float:
    """Wall time of `rewardherd.world.cli build` in a fresh interpreter (imports included)."""
    code = ("import sys; from rewardherd.world.cli import world_app; "
            f"sys.argv=['world','build','--profile',{profile!r},'--cache-dir',{str(cache_dir)!r},"
            "'--no-progress']; world_app()")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def gold_throughput(cache_dir: Path | None, profile: str, n: int) -> dict:
    import numpy as np
    import pandas as pd

    from rewardherd.world import GoldReward, build_world

    world = build_world(profile, cache_dir, progress=False)
    base = pd.read_parquet(world.base_samples)
    pool = pd.read_parquet(world.preference_samples)
    df = pd.concat([base[["prompt", "response"]], pool[["prompt", "response"]]], ignore_index=True)
    reps = -(-n // len(df))
    prompts = (df["prompt"].tolist() * reps)[:n]
    # Make every sample distinct so nothing is a cache hit.
    responses = [r + " " * (i // len(df)) for i, r in enumerate((df["response"].tolist() * reps)[:n])]
    gold = GoldReward(world.config.gold)  # no disk cache
    t0 = time.perf_counter()
    _ = gold.encoder, gold.vader
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    vals = gold(prompts, responses)
    dt = time.perf_counter() - t0
    t1 = time.perf_counter()
    gold(prompts, responses)
    hit_dt = time.perf_counter() - t1
    return {"samples": n, "distinct_prompts": len(set(prompts)), "load_seconds": round(load_s, 2),
            "uncached_seconds": round(dt, 2), "uncached_per_second": round(n / dt, 1),
            "cached_per_second": round(n / hit_dt, 1),
            "mean_words": float(np.mean([len(r.split()) for r in responses])),
            "gold_mean": float(vals.mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--no-cold", action="store_true", help="skip the cold build")
    ap.add_argument("--gold-samples", type=int, default=8192)
    args = ap.parse_args()
    tmp = None
    if args.cache_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="rewardherd-budget-")
        cache = Path(tmp.name)
    else:
        cache = Path(args.cache_dir).expanduser()
    out: dict = {"profile": args.profile, "cpus": os.cpu_count(),
                 "loadavg_start": os.getloadavg()}
    if not args.no_cold:
        out["cold_build_seconds"] = round(timed_build(args.profile, cache), 1)
        out["loadavg_after_cold"] = os.getloadavg()
    out["warm_build_seconds"] = round(timed_build(args.profile, cache), 1)
    out["gold"] = gold_throughput(cache, args.profile, args.gold_samples)
    out["loadavg_end"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
