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
        row["seconds"] = round(time.time() - t, 1)
        rows.append(row)
        print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    print(f"\nmean over {len(rows)} seeds, 95% t interval over seeds (noise {args.noise}, {args.folds} folds, "
          f"{args.members} members per fold):")
    for k in [k for k in rows[0] if k not in ("seed", "n", "flipped", "seconds")]:
        v = np.array([r[k] for r in rows])
        half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
        print(f"  {k:16s} {v.mean():.3f}  [{v.mean() - half:.3f}, {v.mean() + half:.3f}]")


if __name__ == "__main__":
    main()
