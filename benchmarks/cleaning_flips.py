"""Does low ensemble-vote strength find flipped labels? Measured on the built-in world.

The quick world's training pairs carry gold labels; ``inject_label_noise`` flips a known
25% of them per seed. Strength is cross-fitted (K folds; each fold's members never see
the pairs they score; ``rewardherd.cleaning.cross_fit_strength``), the default for
cleaning. For each seed it prints the AUROC of low mean strength for "this label was
flipped", and the precision and recall of flipping the lowest q of pairs (the
``rewardherd clean --flip-below q`` rule) at a few q; then the mean over seeds with a
95% t interval (it covers seeds: the flip draw, fold draw and fine-tune seeds; not the
world build).

    python benchmarks/cleaning_flips.py [--seeds 0 1 2] [--folds 5] [--members 3] [--work /tmp/flips]
    python benchmarks/cleaning_flips.py --retrain runs/study/pool.parquet   # also retrain on cleaned data

With ``--retrain POOL`` it then cleans each seed's noisy data with a rule fixed in advance
(flip the weakest 10%, drop the next 20%: ``--flip-below 0.1 --drop-between 0.1 0.3``),
trains K=5 fine-tune-seed members on the noisy and on the cleaned pairs (same backbone and
seeds), and reports held-out accuracy (noise-free held-out pairs) and best-of-n gold at
n_max on the study's pool, of the single members (average) and of their mean ensemble,
as cleaned minus noisy per seed, with t intervals over seeds.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import numpy as np
    from scipy import stats

    from rewardherd import core
    from rewardherd.cleaning import cross_fit_strength
    from rewardherd.data import inject_label_noise
    from rewardherd.studies.config import resolve_config
    from rewardherd.studies.inputs import resolve_inputs
    from rewardherd.training import EnsembleConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--noise", type=float, default=0.25)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--quantiles", type=float, nargs="+", default=[0.1, 0.2, 0.25, 0.3])
    ap.add_argument("--work", type=Path, default=Path("/tmp/rewardherd_cleaning_flips"))
    ap.add_argument("--retrain", type=Path, help="a study's pool.parquet: also retrain on cleaned data")
    ap.add_argument("--flip-below", type=float, default=0.1)
    ap.add_argument("--drop-between", type=float, nargs=2, default=[0.1, 0.3])
    args = ap.parse_args()
    cfg = resolve_config(profile="quick")
    inputs = resolve_inputs(cfg, progress=False)
    rows = []
    for seed in args.seeds:
        t = time.time()
        noisy, flipped = inject_label_noise(inputs.train_pairs, args.noise, seed)
        flipped = set(flipped)
        ens = EnsembleConfig(kind="finetune", backbones=(str(inputs.backbones[0]),), n_members=args.members,
                             seeds=tuple(1000 * seed + i for i in range(args.members)))
        table = cross_fit_strength(noisy, ens, args.folds, cfg.train, args.work / f"seed{seed}", seed=seed)
        is_flip = table["id"].isin(flipped).to_numpy()
        strength = table["mean"].to_numpy()
        row = {"seed": seed, "auroc": core.auroc(-strength, is_flip), "n": len(table), "flipped": int(is_flip.sum())}
        order = np.argsort(strength, kind="stable")
        for q in args.quantiles:
            pick = np.zeros(len(table), bool)
            pick[order[: int(round(q * len(table)))]] = True
            tp = int((pick & is_flip).sum())
            row[f"precision@{q:g}"] = tp / max(int(pick.sum()), 1)
            row[f"recall@{q:g}"] = tp / max(int(is_flip.sum()), 1)
        if args.retrain is not None:
            row.update(retrain(args, cfg, inputs, noisy, table, seed))
        row["seconds"] = round(time.time() - t, 1)
        rows.append(row)
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    print(f"\nmean over {len(rows)} seeds, 95% t interval over seeds (noise {args.noise}, {args.folds} folds, "
          f"{args.members} members per fold):")
    for k in [k for k in rows[0] if k not in ("seed", "n", "flipped", "seconds")]:
        v = np.array([r[k] for r in rows])
        half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
        print(f"  {k:16s} {v.mean():.3f}  [{v.mean() - half:.3f}, {v.mean() + half:.3f}]")


def retrain(args, cfg, inputs, noisy, table, seed: int) -> dict:
    """Cleaned minus noisy: member accuracy and gold at n_max (members' average, mean ensemble)."""
    import shutil

    import numpy as np
    import pandas as pd

    from rewardherd import core
    from rewardherd.cleaning import clean_pairs
    from rewardherd.models.common import load_member_model
    from rewardherd.models.formatting import encode_batch, pad_token_id
    from rewardherd.models.scoring import score_ids_checked
    from rewardherd.training.config import MemberSpec
    from rewardherd.training.member import train_member

    pool = pd.read_parquet(args.retrain).sort_values(["prompt_id", "sample_id"]).reset_index(drop=True)
    p = pool["prompt_id"].nunique()
    n = len(pool) // p
    gold = pool["gold"].to_numpy().reshape(p, n)
    n_max = core.n_grid(n, cfg.pool.max_n_fraction)[-1]
    cleaned, summary = clean_pairs(noisy, table, flip_below=args.flip_below, drop_between=tuple(args.drop_between))
    out, ids = {}, None
    for name, pairs in (("noisy", noisy), ("cleaned", cleaned)):
        z, acc = [], []
        for i in range(5):
            d = args.work / f"seed{seed}" / f"{name}_m{i}"
            if d.exists():
                shutil.rmtree(d)
            info = train_member(MemberSpec(str(inputs.backbones[0]), 1000 * seed + i, 0), pairs, inputs.heldout_pairs,
                                d, name=f"{name}_m{i}", config=cfg.train, progress=False)
            model, tok = load_member_model(d)
            if ids is None:
                ids, _ = encode_batch(tok, pool["prompt"].tolist(), pool["response"].tolist(), cfg.train.max_length)
            sc, _ = score_ids_checked(model, ids, pad_token_id(tok), cfg.pool.score_dtype)
            st = info.standardization
            z.append(core.standardize(sc[None, :], [st["mean"]], [st["std"]])[0].reshape(p, n))
            acc.append(info.heldout_accuracy)
        z = np.stack(z)  # (K, p, n)
        out[name] = {"acc": float(np.mean(acc)),
                     "gold_members": float(np.mean([core.bon_estimate(zk, gold, [n_max]).mean() for zk in z])),
                     "gold_ensemble": float(core.bon_estimate(z.mean(0), gold, [n_max]).mean())}
    res = {f"d_{k}": out["cleaned"][k] - out["noisy"][k] for k in out["noisy"]}
    res.update({f"noisy_{k}": v for k, v in out["noisy"].items()})
    res.update({f"cleaned_{k}": v for k, v in out["cleaned"].items()})
    res["cleaned_pairs"] = len(cleaned)
    return res


if __name__ == "__main__":
    main()
