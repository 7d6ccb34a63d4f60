"""The error-sharing dial (issue 13, part 2): single-member diagnostics per level.

For each marker fraction (``rewardherd.data.plant_markers``; docs/sharing_dial.md) and
each ensemble kind, trains K members on the quick world's training pairs (noise 0) with
the markers planted, scores a subset of the study's best-of-n pool (first ``--prompts``
prompt ids, every sample of each), and prints per level and kind:

- ``rho_off`` / ``shared_off``: mean pairwise error correlation and shared fraction on
  the pool (off distribution; within-prompt z-scores, ``core.error_sharing``);
- ``rho_in``: the same on held-out pair margins (in distribution: held-out pairs marked
  like the training pairs, with another seed; gold of the unmarked responses,
  ``core.margin_error_sharing``);
- ``acc_in``: member accuracy on those marked held-out pairs (the in-distribution
  accuracy the dial must keep), ``acc_clean``: on the world's unmarked held-out pairs;
- ``r_gold``: each member's within-prompt correlation with gold on the pool (mean);
- ``bon_n``: each single member's best-of-n gold (unbiased estimator, mean over members
  and prompts) and its range over members.

It never computes an ensemble aggregate. Gold and the pool are read, never changed.
Needs the quick world in the cache and a finished quick study's pool.parquet.

    python benchmarks/sharing_dial.py --pool runs/study/pool.parquet --out /tmp/dial \\
        --levels 0 0.25 0.5 0.75 1 --prompts 128
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rewardherd import core
from rewardherd.data import plant_markers
from rewardherd.data.markers import CHOSEN_MARKER, REJECTED_MARKER
from rewardherd.io import write_json_atomic, write_table_atomic
from rewardherd.world.world import MARKER_SEEDS

NS = (1, 4, 16, 32)
#: Marker seeds: one data set for every member, held-out pairs marked with another seed
#: (as the world's ``preferences.markers`` setting plants them).
TRAIN_SEED, HELDOUT_SEED = MARKER_SEEDS["train"], MARKER_SEEDS["heldout"]


def within_prompt_z(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    s = pd.Series(x).groupby(groups)
    return ((pd.Series(x) - s.transform("mean")) / s.transform("std", ddof=0)).to_numpy()


def markers(pairs, level, seed):
    return plant_markers(pairs, level, seed)[0]


def balance_length(pairs, level, seed):
    """Length-balanced subsample: among pairs whose responses differ in word count, the
    share where chosen is longer goes from the data's own s0 (level 0) to 0.5 (level 1);
    every level keeps the same number of pairs (the most that level 1 allows)."""
    from rewardherd.world.gold import words

    d = np.array([len(words(p.chosen)) - len(words(p.rejected)) for p in pairs])
    lng, sht, eq = (np.flatnonzero(d > 0), np.flatnonzero(d < 0), np.flatnonzero(d == 0))
    if len(sht) > len(lng):
        raise ValueError("chosen is shorter in most pairs; balance_length expects the opposite")
    s0 = len(lng) / (len(lng) + len(sht))
    s = s0 - level * (s0 - 0.5)
    m = 2 * len(sht)  # unequal pairs kept at every level
    rng = np.random.default_rng(seed)
    n_long = int(round(s * m))
    keep = np.concatenate([rng.choice(lng, n_long, replace=False), rng.choice(sht, m - n_long, replace=False), eq])
    return [pairs[i] for i in np.sort(keep)]


MECHANISMS = {"markers": markers, "balance": balance_length}


def train_and_score(inp, cfg, kind, level, seed, k, pool, work: Path, transform=markers) -> dict:
    from rewardherd.models.common import load_member_model
    from rewardherd.models.formatting import encode_batch, pad_token_id
    from rewardherd.models.scoring import score_ids
    from rewardherd.studies.runner import draw_backbones
    from rewardherd.training.config import MemberSpec
    from rewardherd.training.member import evaluate_pairs, train_member

    train, held = transform(inp.train_pairs, level, TRAIN_SEED), transform(inp.heldout_pairs, level, HELDOUT_SEED)
    drawn = draw_backbones(seed, k, len(inp.backbones))
    specs = [(drawn[0] if kind == "finetune" else b, 1000 * seed + i) for i, b in enumerate(drawn)]
    out = {"heldout_ids": [q.id for q in held], "scores": [], "acc_in": [], "acc_clean": [], "chosen": [], "rejected": [], "members": []}
    for i, (b, ft) in enumerate(specs):
        d = work / f"{kind}_{level:g}_{i}"
        info = train_member(MemberSpec(str(inp.backbones[b]), ft, b), train, held, d, name=d.name,
                            config=cfg.train, progress=False)
        model, tok = load_member_model(d)
        ev = evaluate_pairs(model, tok, held, cfg.train.max_length, cfg.train.eval_batch_size)
        clean = evaluate_pairs(model, tok, inp.heldout_pairs, cfg.train.max_length, cfg.train.eval_batch_size)
        ids, _ = encode_batch(tok, pool["prompt"].tolist(), pool["response"].tolist(), cfg.train.max_length)
        out["scores"].append(score_ids(model, ids, pad_token_id(tok), batch_size=128))
        out["acc_in"].append(info.heldout_accuracy)
        out["acc_clean"].append(clean["accuracy"])
        out["chosen"].append(ev["chosen_scores"])
        out["rejected"].append(ev["rejected_scores"])
        out["members"].append(f"bb{b}__ft{ft}")
        shutil.rmtree(d)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", default="runs/study/pool.parquet", help="a quick study's pool.parquet (read only)")
    ap.add_argument("--out", required=True, help="output folder (outside the repo)")
    ap.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--kinds", nargs="+", default=["finetune", "pretrain"], choices=["finetune", "pretrain"])
    ap.add_argument("--prompts", type=int, default=128, help="score the first N prompt ids of the pool")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mechanism", choices=sorted(MECHANISMS), default="markers")
    args = ap.parse_args()

    from rewardherd.studies.config import resolve_config
    from rewardherd.studies.inputs import resolve_inputs
    from rewardherd.studies.runner import heldout_gold

    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = resolve_config(profile="quick")
    inp = resolve_inputs(cfg, progress=False)
    pool = pd.read_parquet(args.pool, columns=["prompt_id", "sample_id", "prompt", "response", "gold"])
    keep = np.sort(pool["prompt_id"].unique())[: args.prompts]
    pool = pool[pool["prompt_id"].isin(keep)].sort_values(["prompt_id", "sample_id"]).reset_index(drop=True)
    n_per = pool.groupby("prompt_id").size()
    if n_per.nunique() != 1:
        raise SystemExit(f"{args.pool}: prompts have different pool sizes")
    p, n = len(keep), int(n_per.iloc[0])
    ends = pool["response"].str.endswith((CHOSEN_MARKER, REJECTED_MARKER)).mean()
    held = inp.heldout_pairs
    hg = heldout_gold(inp)  # the unmarked responses' gold, as the study stores it
    gold_by_id = dict(zip(hg["id"], zip(hg["gold_chosen"], hg["gold_rejected"], strict=True), strict=True))
    gold = pool["gold"].to_numpy()
    pid = pool["prompt_id"].to_numpy()
    zg = within_prompt_z(gold, pid)
    print(f"pool subset: {p} prompts x {n} samples; responses ending in a marker: {ends:.4f}; "
          f"train {len(inp.train_pairs)} pairs, held-out {len(held)}", flush=True)

    rows, members = [], []
    work = Path(tempfile.mkdtemp(prefix="sharing_dial_", dir=out))
    try:
        for level in args.levels:
            for kind in args.kinds:
                t = time.time()
                r = train_and_score(inp, cfg, kind, level, args.seed, args.k, pool, work, MECHANISMS[args.mechanism])
                z = np.array(r["scores"])
                off = core.error_sharing(z, gold, groups=pid)
                gc, gr = np.array([gold_by_id[i] for i in r["heldout_ids"]]).T
                ind = core.margin_error_sharing(np.array(r["chosen"]), np.array(r["rejected"]), gc, gr)
                bon = np.array([core.bon_estimate(s.reshape(p, n), gold.reshape(p, n), list(NS)).mean(0)
                                for s in z])  # (K, len(NS)), single members only
                r_gold = [float(np.mean(within_prompt_z(s, pid) * zg)) for s in z]
                row = {"mechanism": args.mechanism, "level": level, "pairs": len(MECHANISMS[args.mechanism](inp.train_pairs, level, TRAIN_SEED)), "kind": kind, "k": args.k, "prompts": p,
                       "rho_off": off.rho_bar, "shared_off": off.shared_fraction, "rho_in": ind.rho_bar,
                       "shared_in": ind.shared_fraction,
                       "acc_in": float(np.mean(r["acc_in"])), "acc_in_min": float(np.min(r["acc_in"])),
                       "acc_in_max": float(np.max(r["acc_in"])), "acc_clean": float(np.mean(r["acc_clean"])),
                       "r_gold": float(np.mean(r_gold)), "seconds": round(time.time() - t, 1)}
                for j, m in enumerate(NS):
                    row[f"bon{m}"] = float(bon[:, j].mean())
                    row[f"bon{m}_min"], row[f"bon{m}_max"] = float(bon[:, j].min()), float(bon[:, j].max())
                rows.append(row)
                for i, name in enumerate(r["members"]):
                    members.append({"level": level, "kind": kind, "member": name, "acc_in": r["acc_in"][i],
                                    "acc_clean": r["acc_clean"][i], "r_gold": r_gold[i],
                                    **{f"bon{m}": float(bon[i, j]) for j, m in enumerate(NS)}})
                print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
                write_table_atomic(pd.DataFrame(rows), out / "levels.parquet")
                write_table_atomic(pd.DataFrame(members), out / "members.parquet")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_json_atomic(out / "run.json", {"args": vars(args), "seconds": round(time.time() - t0, 1),
                                         "pool_marker_fraction": float(ends)})
    print(pd.DataFrame(rows)[["mechanism", "level", "pairs", "kind", "rho_off", "shared_off", "rho_in", "acc_in", "acc_clean", "r_gold",
                              "bon1", "bon4", "bon16", "bon32"]].round(3).to_string(index=False))
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
