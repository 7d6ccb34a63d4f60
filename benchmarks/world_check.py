"""Does the built-in world show over-optimization? Single-proxy checks only.

Builds (or loads) a world, trains one proxy reward member per pretrained backbone
(rewardherd.training, noise-free labels), and reports:

1. each member's held-out accuracy against noise-free gold labels (target 0.6-0.9);
2. the shared length error: in the preference data, on pool pairs inside and beyond the
   preference data's length range, how often each member and gold prefer the longer
   response, and the length of the best-of-n pick;
3. best-of-n against each single member: pools of N per prompt over P evaluation
   prompts, proxy and gold per n (unbiased estimator, rewardherd.core.bon_estimate),
   the gold peak and the drop from it to the largest n with its standard error over
   prompts (paired: per-prompt differences).

Ensembles are deliberately not evaluated here: the world's design is judged by
single-proxy phenomena only (issue 3).

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/world_check.py --profile quick --out /tmp/world_check
    HF_HUB_OFFLINE=1 python benchmarks/world_check.py --prompts 64 --pool 128 --max-n 32  # fast look
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pandas as pd


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="world config override key=value (repeatable)")
    ap.add_argument("--out", default="/tmp/rewardherd_world_check")
    ap.add_argument("--prompts", type=int, default=256, help="evaluation prompts")
    ap.add_argument("--pool", type=int, default=512, help="pool size N per prompt")
    ap.add_argument("--max-n", type=int, default=128)
    ap.add_argument("--members", type=int, default=None, help="use only the first K backbones")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0, help="pool sampling seed")
    ap.add_argument("--threads", type=int, default=None)
    return ap.parse_args()


def member_tables(pool: pd.DataFrame, members: list[str], pref_max_tokens: int,
                  gold_max_words: int, rng: np.random.Generator, pairs_per_prompt: int = 64):
    """Length preference of members vs gold on random within-prompt pool pairs."""
    rows = []
    for _pid, g in pool.groupby("prompt_id", sort=False):
        idx = rng.integers(0, len(g), size=(pairs_per_prompt, 2))
        idx = idx[idx[:, 0] != idx[:, 1]]
        a, b = g.iloc[idx[:, 0]], g.iloc[idx[:, 1]]
        w_a, w_b = a["n_words"].to_numpy(), b["n_words"].to_numpy()
        keep = w_a != w_b
        long_is_a = w_a > w_b
        longer = np.where(long_is_a, w_a, w_b)
        shorter_tokens = np.where(long_is_a, b["n_tokens"], a["n_tokens"])
        longer_tokens = np.where(long_is_a, a["n_tokens"], b["n_tokens"])
        rec = {"longer_words": longer, "shorter_tokens": shorter_tokens,
               "longer_tokens": longer_tokens, "keep": keep}
        for col in ["gold", *members]:
            d = a[col].to_numpy() - b[col].to_numpy()
            rec[col] = np.where(long_is_a, d > 0, d < 0).astype(float)
            rec[col][d == 0] = 0.5
        rows.append(pd.DataFrame(rec))
    df = pd.concat(rows, ignore_index=True)
    df = df[df["keep"]]
    in_dist = df[df["longer_tokens"] <= pref_max_tokens]
    beyond = df[df["longer_words"] > gold_max_words]
    out = []
    for col in ["gold", *members]:
        out.append({"scorer": col,
                    "P(longer wins) both <= pref tokens": in_dist[col].mean(),
                    f"P(longer wins) longer > {gold_max_words} words": beyond[col].mean(),
                    "pairs_in": len(in_dist), "pairs_beyond": len(beyond)})
    return pd.DataFrame(out)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from rewardherd import core
    from rewardherd.models.ensemble import Ensemble
    from rewardherd.policy.bon import bon_curves, sample_pool, summarize
    from rewardherd.training import EnsembleConfig, TrainConfig, train_ensemble
    from rewardherd.world import build_world, world_config

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    cfg = world_config(args.profile, args.sets)
    t0 = time.perf_counter()
    world = build_world(cfg, args.cache_dir, progress=True)
    print(f"world built/loaded in {time.perf_counter() - t0:.1f}s "
          f"(artifacts' build time {world.summary['build_seconds_total']:.0f}s)")
    print(json.dumps({k: world.summary[k] for k in ("policy", "preferences", "base_samples")},
                     indent=1))

    # 1. One proxy member per backbone (pretrain seeds), noise-free labels.
    train_pairs = world.load_preferences("train")
    heldout_pairs = world.load_preferences("heldout")
    backbones = [str(p) for p in world.backbone_dirs[: args.members]]
    seeds = list(world.pretrain_seeds[: len(backbones)])
    tc = TrainConfig(lr=args.lr, epochs=args.epochs, batch_size=args.batch_size,
                     lr_scheduler="cosine", max_length=128)
    t0 = time.perf_counter()
    ens_dir = out / f"members-{world.summary['preferences']['key']}"
    manifest = train_ensemble(train_pairs, heldout_pairs, ens_dir,
                              EnsembleConfig(kind="pretrain", backbones=tuple(backbones),
                                             pretrain_seeds=tuple(seeds)), tc, progress=False,
                              overwrite=True)
    train_s = time.perf_counter() - t0
    ens = Ensemble.load(ens_dir)
    acc = pd.DataFrame([{"member": m.name, "pretrain_seed": m.pretrain_seed,
                         "heldout_accuracy": m.heldout_accuracy, "n_heldout": m.n_heldout_pairs}
                        for m in manifest.members])
    # Accuracy on the training pairs too (how much of the gold signal is learnable).
    tp = train_pairs[:1000]
    sc = ens.score([p.prompt for p in tp], [p.chosen for p in tp])
    sr = ens.score([p.prompt for p in tp], [p.rejected for p in tp])
    acc["train_accuracy"] = [(c > r).mean() for c, r in zip(sc, sr, strict=True)]
    print(f"\n== 1. single proxies: held-out accuracy vs noise-free gold (trained in {train_s:.0f}s)")
    print(acc.to_string(index=False, float_format="%.3f"))

    # 2. Pool in the policy's (longer) setting, scored by gold, members, features.
    eval_prompts = world.load_prompts("eval").head(args.prompts)
    if len(eval_prompts) < args.prompts:
        print(f"only {len(eval_prompts)} evaluation prompts exist")
    t0 = time.perf_counter()
    pool_path = out / (f"pool-{world.summary['policy']['key']}-{len(eval_prompts)}x{args.pool}"
                       f"-{cfg.pool.max_new_tokens}-s{args.seed}.parquet")
    pool = sample_pool(world.load_policy(), world.tokenizer, eval_prompts["prompt"].tolist(),
                       args.pool, max_new_tokens=cfg.pool.max_new_tokens,
                       temperature=cfg.pool.temperature, top_p=cfg.pool.top_p, seed=args.seed,
                       batch_size=512, prompt_ids=eval_prompts["id"].tolist(), path=pool_path,
                       progress=True)
    sample_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    comps = world.gold.components(pool["prompt"].tolist(), pool["response"].tolist())
    gold_s = time.perf_counter() - t0
    pool = pool.drop(columns=["response_ids"], errors="ignore")
    pool = pd.concat([pool, comps], axis=1)
    t0 = time.perf_counter()
    raw = ens.score(pool["prompt"].tolist(), pool["response"].tolist(), batch_size=256)  # (m, b)
    score_s = time.perf_counter() - t0
    mean, std = ens.standardization()
    z = core.standardize(raw, mean, std)
    members = list(ens.names)
    for name, row in zip(members, z, strict=True):
        pool[name] = row
    print(f"\npool {len(eval_prompts)}x{args.pool}: sampled in {sample_s:.0f}s, gold "
          f"{gold_s:.0f}s ({len(pool) / max(gold_s, 1e-9):.0f}/s incl. cache hits), "
          f"members scored in {score_s:.0f}s")
    print(f"pool words: mean {pool.n_words.mean():.1f}, q50 {pool.n_words.median():.0f}, "
          f"q95 {pool.n_words.quantile(0.95):.0f}; over gold max_words "
          f"{(pool.n_words > cfg.gold.max_words).mean():.2f}; tokens > pref max "
          f"{(pool.n_tokens > cfg.preferences.sampling.max_new_tokens).mean():.2f}")

    # 3. Shared length error.
    pairs_df = pd.read_parquet(world.train_preferences.parent / "train_pairs.parquet")
    neq = pairs_df[pairs_df.words_chosen != pairs_df.words_rejected]
    print("\n== 2. shared error: length")
    print(f"preference data: chosen is longer in {(neq.words_chosen > neq.words_rejected).mean():.3f}"
          f" of {len(neq)} training pairs of unequal length")
    lt = member_tables(pool, members, cfg.preferences.sampling.max_new_tokens, cfg.gold.max_words,
                       np.random.default_rng(0))
    print(lt.to_string(index=False, float_format="%.3f"))
    corr = pd.DataFrame({c: [pool.groupby("prompt_id")[[c, "n_words"]].corr().xs(
        "n_words", level=1)[c].mean()] for c in ["gold", *members]}, index=["within-prompt corr with words"])
    print(corr.T.to_string(float_format="%.3f"))

    # 4. Best-of-n against each single member.
    ns = [n for n in core.n_grid(args.pool) if n <= args.max_n]
    curves = pd.concat([bon_curves(pool, [m], [core.Aggregation("mean")], ns,
                                   values=("gold", "n_words", "sentiment", "relevance"))
                        .assign(member=m) for m in members], ignore_index=True)
    summ = summarize(curves, by=("member", "n"))
    print(f"\n== 3. best-of-n vs single proxies ({len(eval_prompts)} prompts, pool {args.pool})")
    results = []
    for m in members:
        s = summ[summ.member == m].set_index("n")
        print(f"-- {m}")
        print(s[["proxy", "proxy_se", "gold", "gold_se", "n_words", "sentiment", "relevance"]]
              .to_string(float_format="%.3f"))
        c = curves[curves.member == m].pivot(index="prompt_id", columns="n", values="gold")
        peak = int(s["gold"].idxmax())
        diff = c[peak] - c[ns[-1]]
        drop, se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))
        rise = c[peak] - c[1]
        res = {"member": m, "peak_n": peak, "gold_n1": float(s.loc[1, "gold"]),
               "gold_peak": float(s.loc[peak, "gold"]), "gold_max_n": float(s.loc[ns[-1], "gold"]),
               "drop": drop, "drop_se": se, "drop_z": drop / se if se > 0 else float("nan"),
               "rise": float(rise.mean()), "rise_se": float(rise.std(ddof=1) / np.sqrt(len(rise))),
               "proxy_monotone": bool(np.all(np.diff(s["proxy"].to_numpy()) > 0))}
        results.append(res)
    res_df = pd.DataFrame(results)
    print("\nsummary (drop = gold(peak n) - gold(max n), paired SE over prompts):")
    print(res_df.to_string(index=False, float_format="%.3f"))
    summ.to_csv(out / "bon_summary.csv", index=False)
    acc.to_csv(out / "accuracy.csv", index=False)
    lt.to_csv(out / "length.csv", index=False)
    res_df.to_csv(out / "bon_drop.csv", index=False)
    (out / "world_summary.json").write_text(json.dumps(world.summary, indent=1))
    print(f"\ntotal {time.perf_counter() - t_all:.0f}s; tables in {out}")


if __name__ == "__main__":
    main()
