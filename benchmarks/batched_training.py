"""Batched member training and scoring against the one-at-a-time path, on the quick world.

Usage::

    python benchmarks/batched_training.py                 # quick world (built or cached), ~10 min on 2 cores
    python benchmarks/batched_training.py --prompts 256   # the study's full pool (slower)

Every ratio comes from this one run, timed back to back on the same machine (run it
alone: two heavy jobs on 2 cores make each several times slower). Parts:

1. **training** on the quick study's training pairs and config (seed 0, noise 0):
   one member through TRL's RewardTrainer (the ``batched=False`` path), one member
   in rewardherd's loop, and K members of one backbone trained together (loop, the loop with
   torch's per-parameter AdamW instead of its fused kernel, and vmap when ``--vmap``);
2. **scoring** the pool with K members: each member alone (``score_ids_checked``,
   as the unbatched study does) against one bucketed pass for all
   (``runner.score_members``);
3. **the study's member stage, 2 seeds**: the member units of seeds 0 and 1 at noise 0
   (finetune + pretrain, member 0 shared: 2 x (2K - 1) units) through ``runner.run_members``
   one at a time through TRL (the ``train.batched=false`` path), batched in one process,
   and batched in 2 processes of 1 torch thread (``workers=2``).

The pool is sampled from the world's policy once per ``--prompts`` (x the study's
128 samples per prompt) into ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=64, help="pool prompts (the quick study uses 256)")
    ap.add_argument("--k", type=int, default=5, help="ensemble size (the quick study's)")
    ap.add_argument("--vmap", action="store_true", help="also time vmap stepping (slower on CPU)")
    ap.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temporary one)")
    args = ap.parse_args()

    import pandas as pd
    import torch

    from rewardherd.models.common import cpu_batch_workers, load_member_model
    from rewardherd.models.formatting import pad_token_id
    from rewardherd.models.scoring import score_ids_checked
    from rewardherd.studies import runner
    from rewardherd.studies.config import resolve_config
    from rewardherd.studies.inputs import resolve_inputs
    from rewardherd.training.config import MemberSpec
    from rewardherd.training.member import train_member, train_members

    config = resolve_config(profile="quick", overrides=[f"pool.prompts={args.prompts}"])
    work = args.work or Path(tempfile.mkdtemp(prefix="batched-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    inputs = resolve_inputs(config, progress=False)
    train, _ = runner.noisy_train_pairs(inputs.train_pairs, 0.0, 0)
    held = inputs.heldout_pairs
    k = args.k
    bb = str(inputs.backbones[runner.draw_backbones(0, k, len(inputs.backbones))[0]])
    specs = [MemberSpec(bb, i, 0) for i in range(k)]
    print(f"torch threads {torch.get_num_threads()}, {len(train)} training pairs, {len(held)} held-out, K={k}, "
          f"pool {args.prompts} x {config.pool.size}")

    def fresh(name):
        d = work / name
        shutil.rmtree(d, ignore_errors=True)
        return d

    rows = {}
    # Warm-up (imports, first-call costs) of both paths on a few pairs, not timed.
    train_member(specs[0], train[:32], held[:8], fresh("warm-trl") / "m", name="w", config=config.train, progress=False)
    train_members(specs[:1], train[:32], held[:8], [fresh("warm-loop") / "m"], names=["w"], config=config.train,
                  progress=False)
    rows["train: one member, TRL"], _ = timed(lambda: train_member(
        specs[0], train, held, fresh("trl") / "m", name="m", config=config.train, progress=False))
    rows["train: one member, batched loop"], _ = timed(lambda: train_members(
        specs[:1], train, held, [fresh("one") / "m"], names=["m"], config=config.train, progress=False))
    rows[f"train: {k} members, batched loop"], _ = timed(lambda: train_members(
        specs, train, held, [fresh("loop") / f"m{i}" for i in range(k)], names=[f"m{i}" for i in range(k)],
        config=config.train, progress=False, stepping="loop"))
    from rewardherd.training import batched

    batched.FUSED_ADAMW = False
    rows[f"train: {k} members, batched loop, per-parameter AdamW"], _ = timed(lambda: train_members(
        specs, train, held, [fresh("loop-plain") / f"m{i}" for i in range(k)], names=[f"m{i}" for i in range(k)],
        config=config.train, progress=False, stepping="loop"))
    batched.FUSED_ADAMW = True
    if args.vmap:
        rows[f"train: {k} members, batched vmap"], _ = timed(lambda: train_members(
            specs, train, held, [fresh("vmap") / f"m{i}" for i in range(k)], names=[f"m{i}" for i in range(k)],
            config=config.train, progress=False, stepping="vmap"))

    pool_path = runner.ensure_pool(inputs, config, work, progress=False)
    models, toks = zip(*[load_member_model(work / "loop" / f"m{i}") for i in range(k)], strict=True)
    ids = runner.pool_token_ids(work, pool_path, work / "loop" / "m0", toks[0], config.train.max_length)
    pad = pad_token_id(toks[0])
    # float32: in bfloat16 (the quick study's `auto` where the CPU runs it natively) score_members scores
    # member by member, each with its own float32 probe, exactly as the one-at-a-time path does.
    rows[f"score: {k} members one at a time (float32)"], _ = timed(lambda: [score_ids_checked(
        m, ids, pad, "float32", batch_size=128, workers=cpu_batch_workers()) for m in models])
    rows[f"score: {k} members, one pass (float32)"], _ = timed(lambda: runner.score_members(
        list(models), ids, pad, "float32"))

    units = [u for u in runner.plan_members(config, len(inputs.backbones)) if u.noise == 0.0 and u.seed in (0, 1)
             and type(u) is runner.MemberUnit]
    seq_out, bat_out, par_out = fresh("study-seq"), fresh("study-batched"), fresh("study-batched-2p")
    for d in (seq_out, bat_out, par_out):
        d.mkdir()
        shutil.copy(pool_path, d / "pool.parquet")
    arms = ((seq_out, "one at a time (TRL), 1 process", replace(config, train=replace(config.train, batched=False))),
            (bat_out, "batched, 1 process", config), (par_out, "batched, 2 processes x 1 thread",
                                                     replace(config, workers=2)))
    for out, label, cfg in arms:
        rows[f"study, 2 seeds: {len(units)} units {label}"], _ = timed(lambda o=out, c=cfg: runner.run_members(
            units, c, inputs.backbones, inputs.train_pairs, held, o / "pool.parquet", o, "members", False))
    one = rows["train: one member, TRL"]
    print(f"\n{'part':58s} {'seconds':>8s} {'/ one TRL member':>17s}")
    for name, s in rows.items():
        print(f"{name:58s} {s:8.2f} {s / one:17.2f}")
    ratios = {
        f"train {k} batched / one member (TRL)": rows[f"train: {k} members, batched loop"] / one,
        f"train {k} batched / one member (same loop)": rows[f"train: {k} members, batched loop"]
        / rows["train: one member, batched loop"],
        f"train {k} batched, fused AdamW / per-parameter AdamW": rows[f"train: {k} members, batched loop"]
        / rows[f"train: {k} members, batched loop, per-parameter AdamW"],
        "score one pass / one at a time (float32)": rows[f"score: {k} members, one pass (float32)"]
        / rows[f"score: {k} members one at a time (float32)"],
        "study member stage batched / one at a time": rows[f"study, 2 seeds: {len(units)} units batched, 1 process"]
        / rows[f"study, 2 seeds: {len(units)} units one at a time (TRL), 1 process"],
        "study member stage batched, 2 processes / one at a time":
        rows[f"study, 2 seeds: {len(units)} units batched, 2 processes x 1 thread"]
        / rows[f"study, 2 seeds: {len(units)} units one at a time (TRL), 1 process"],
    }
    print()
    for name, r in ratios.items():
        print(f"{name:58s} {r:8.2f}")
    acc = {name: [json.loads((d / "members" / u.name / "info.json").read_text())["heldout_accuracy"] for u in units]
           for name, d in (("one at a time", seq_out), ("batched", bat_out), ("batched, 2 processes", par_out))}
    print("\nheld-out accuracy of the seed's units:",
          {n: [round(a, 3) for a in v] for n, v in acc.items()},
          {n: round(sum(v) / len(v), 4) for n, v in acc.items()})
    print(pd.Series(rows).round(2).to_json())


if __name__ == "__main__":
    main()
