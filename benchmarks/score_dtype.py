"""Pool scoring in bfloat16 vs float32: speed, and whether members rank the pool alike.

For a few trained members of a finished study (``runs/study`` by default) it scores the
study's whole best-of-n pool in float32 and in bfloat16 (same process, alternating) and
prints, per member: both times and their ratio, the Spearman correlation of the two
score vectors (the study's acceptance rule is >= 0.999 on a 1,024-sample probe,
``rewardherd.models.scoring.BF16_RANK_TOLERANCE``), the fraction of prompts whose
best sample changes, and the change in best-of-n gold at n_max (unbiased estimator).
It also times one member's scoring of the pool with one batch at a time on every thread
(``workers=1``) and with :func:`~rewardherd.models.common.cpu_batch_workers` batches at
once, one share of the threads each, as the study scores (float32 and bfloat16,
alternating, ``--repeats`` times each), prints the medians and their ratio, and says
whether the two give bitwise the same scores.

    python benchmarks/score_dtype.py [runs/study] [--members 4] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import numpy as np
    import pandas as pd
    import torch

    from rewardherd import core
    from rewardherd.models.common import cpu_batch_workers, load_member_model
    from rewardherd.models.formatting import encode_batch, pad_token_id
    from rewardherd.models.scoring import native_bf16, score_ids

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", nargs="?", type=Path, default=Path("runs/study"))
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    pool = pd.read_parquet(args.study / "pool.parquet", columns=["prompt_id", "sample_id", "prompt", "response", "gold"])
    pool = pool.sort_values(["prompt_id", "sample_id"]).reset_index(drop=True)
    p, n = pool["prompt_id"].nunique(), pool.groupby("prompt_id").size().iloc[0]
    gold = pool["gold"].to_numpy().reshape(p, n)
    config = json.loads((args.study / "config.json").read_text())
    n_max = core.n_grid(n, config["pool"]["max_n_fraction"])[-1]
    units = sorted(d for d in (args.study / "members").iterdir() if (d / "model").exists())[: args.members]
    print(f"pool {len(pool)} samples ({p} prompts x {n}); native bfloat16: {native_bf16()}; "
          f"threads {torch.get_num_threads()}; n_max {n_max}")
    print(f"{'member':34s} {'fp32 s':>7s} {'bf16 s':>7s} {'ratio':>6s} {'spearman':>9s} {'top1 chg':>8s} "
          f"{'dgold@nmax':>10s}")
    ids = None
    for d in units:
        model, tok = load_member_model(d / "model")
        if ids is None:
            ids, _ = encode_batch(tok, pool["prompt"].tolist(), pool["response"].tolist(), config["train"]["max_length"])
        pad = pad_token_id(tok)
        t = time.perf_counter()
        s32 = score_ids(model, ids, pad, 128)
        t32 = time.perf_counter() - t
        model.to(torch.bfloat16)
        t = time.perf_counter()
        s16 = score_ids(model, ids, pad, 128)
        t16 = time.perf_counter() - t
        a, b = s32.reshape(p, n), s16.reshape(p, n)
        top = np.mean(a.argmax(1) != b.argmax(1))
        g32 = core.bon_estimate(a, gold, [n_max]).mean()
        g16 = core.bon_estimate(b, gold, [n_max]).mean()
        print(f"{d.name:34s} {t32:7.2f} {t16:7.2f} {t16 / t32:6.2f} {core.spearman(s32, s16):9.6f} {top:8.3f} "
              f"{g16 - g32:+10.5f}")
    workers = cpu_batch_workers()
    model, tok = load_member_model(units[0] / "model")
    print(f"\none member, whole pool: 1 batch at a time on {torch.get_num_threads()} threads vs {workers} at once "
          f"(median of {args.repeats}, alternating)")
    for dtype in (torch.float32, torch.bfloat16):
        model.to(dtype)
        times: dict[int, list[float]] = {1: [], workers: []}
        scores = {}
        for _ in range(args.repeats):
            for w in times:
                t = time.perf_counter()
                scores[w] = score_ids(model, ids, pad_token_id(tok), 128, workers=w)
                times[w].append(time.perf_counter() - t)
        one, many = np.median(times[1]), np.median(times[workers])
        same = np.array_equal(scores[1], scores[workers])
        print(f"{str(dtype):15s} workers=1 {one:6.2f} s   workers={workers} {many:6.2f} s   ratio {many / one:5.2f}   "
              f"bitwise equal: {same} (max |diff| {np.abs(scores[1] - scores[workers]).max():.2g})")


if __name__ == "__main__":
    main()
