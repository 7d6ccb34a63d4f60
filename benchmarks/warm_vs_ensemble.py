"""WARM vs its members vs their prediction ensemble, on the built-in world.

For each seed: K=5 fine-tune-seed members on the quick world's backbone 0, trained on
the training pairs with a share of labels flipped (``--noise``, default 0.25), once with
a shared head initialization (WARM's recipe, ``TrainConfig.shared_head_init``) and once
with each head seeded by its member's seed; their weight average
(``rewardherd.training.warm.warm_average``); then, for the mean member, the mean
(prediction) ensemble and WARM: accuracy on the world's noise-free held-out pairs and
best-of-n gold at n_max on a study's pool (unbiased estimator), with the cost of each in
forward passes per scored response. Mean over seeds with 95% t intervals over seeds
(flip draw and fine-tune seeds; the pool's prompts and the world build are fixed).

    python benchmarks/warm_vs_ensemble.py runs/study/pool.parquet [--seeds 0 1 2] [--work /tmp/warm]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import dataclasses

    import numpy as np
    import pandas as pd
    from scipy import stats

    from rewardherd import core
    from rewardherd.cleaning import _pair_scores
    from rewardherd.data import inject_label_noise
    from rewardherd.models import Ensemble
    from rewardherd.models.formatting import encode_batch, pad_token_id
    from rewardherd.models.scoring import score_ids_checked
    from rewardherd.studies.config import resolve_config
    from rewardherd.studies.inputs import resolve_inputs
    from rewardherd.training import EnsembleConfig, train_ensemble
    from rewardherd.training.warm import warm_average

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pool", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--noise", type=float, default=0.25)
    ap.add_argument("--work", type=Path, default=Path("/tmp/rewardherd_warm"))
    args = ap.parse_args()
    cfg = resolve_config(profile="quick")
    inputs = resolve_inputs(cfg, progress=False)
    pool = pd.read_parquet(args.pool).sort_values(["prompt_id", "sample_id"]).reset_index(drop=True)
    p = pool["prompt_id"].nunique()
    n = len(pool) // p
    gold = pool["gold"].to_numpy().reshape(p, n)
    n_max = core.n_grid(n, cfg.pool.max_n_fraction)[-1]
    ids = None
    rows = []
    for seed in args.seeds:
        noisy, _ = inject_label_noise(inputs.train_pairs, args.noise, seed)
        for shared in (True, False):
            t = time.time()
            d = args.work / f"seed{seed}_{'shared' if shared else 'own'}"
            if d.exists():
                shutil.rmtree(d)
            ens_cfg = EnsembleConfig(kind="finetune", backbones=(str(inputs.backbones[0]),), n_members=5,
                                     seeds=tuple(1000 * seed + i for i in range(5)))
            train_ensemble(noisy, inputs.heldout_pairs, d / "ensemble", ens_cfg,
                           dataclasses.replace(cfg.train, shared_head_init=shared), progress=False)
            t_train = time.time() - t
            warm_average(d / "ensemble", d / "warm", heldout_pairs=inputs.heldout_pairs)
            models = {"members": Ensemble.load(d / "ensemble"), "warm": Ensemble.load(d / "warm")}
            row = {"seed": seed, "head_init": "shared" if shared else "own", "train_s": round(t_train, 1)}
            z = {}
            for name, ens in models.items():
                c, r = _pair_scores(ens, inputs.heldout_pairs, 128)  # (m, b) standardized
                if name == "members":
                    row["acc_member_mean"] = float(np.mean(c > r))
                    row["acc_ensemble"] = float(np.mean(c.mean(0) > r.mean(0)))
                else:
                    row["acc_warm"] = float(np.mean(c[0] > r[0]))
                zs = []
                for m in ens.members:
                    if ids is None:
                        ids, _ = encode_batch(m.tokenizer, pool["prompt"].tolist(), pool["response"].tolist(),
                                              cfg.train.max_length)
                    sc, _ = score_ids_checked(m.model, ids, pad_token_id(m.tokenizer), cfg.pool.score_dtype)
                    st = m.info.standardization
                    zs.append(core.standardize(sc[None, :], [st["mean"]], [st["std"]])[0].reshape(p, n))
                z[name] = np.stack(zs)
            row["gold_member_mean"] = float(np.mean([core.bon_estimate(zk, gold, [n_max]).mean() for zk in z["members"]]))
            row["gold_ensemble"] = float(core.bon_estimate(z["members"].mean(0), gold, [n_max]).mean())
            row["gold_warm"] = float(core.bon_estimate(z["warm"][0], gold, [n_max]).mean())
            row["seconds"] = round(time.time() - t, 1)
            rows.append(row)
            print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    df = pd.DataFrame(rows)
    print(f"\nn_max={n_max}; cost per scored response: member 1 forward, prediction ensemble 5, WARM 1; "
          "training: 5 members for both the ensemble and WARM (WARM adds one average).")
    for init, g in df.groupby("head_init"):
        print(f"head init {init}: mean over {len(g)} seeds [95% t interval over seeds]")
        for k in ("acc_member_mean", "acc_ensemble", "acc_warm", "gold_member_mean", "gold_ensemble", "gold_warm"):
            v = g[k].to_numpy()
            half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
            print(f"  {k:18s} {v.mean():+.4f}  [{v.mean() - half:+.4f}, {v.mean() + half:+.4f}]")
        for a, b in (("warm", "ensemble"), ("warm", "member_mean"), ("ensemble", "member_mean")):
            for what in ("acc", "gold"):
                v = (g[f"{what}_{a}"] - g[f"{what}_{b}"]).to_numpy()
                half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
                print(f"  {what} {a} - {b}: {v.mean():+.4f}  [{v.mean() - half:+.4f}, {v.mean() + half:+.4f}]")


if __name__ == "__main__":
    main()
