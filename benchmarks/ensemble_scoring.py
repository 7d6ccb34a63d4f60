"""Ensemble scoring throughput: naive loop vs Ensemble.score vs vmap vs multi-head vs the limit.

Usage::

    python benchmarks/ensemble_scoring.py --device cpu --quick   # a few minutes on 2 cores
    python benchmarks/ensemble_scoring.py --device cuda          # bf16, all sizes, CUDA graphs too

Members are random-init GPT-2 reward models (``GPT2ForSequenceClassification``,
num_labels=1, distinct seeds) over a byte-level BPE tokenizer (vocab 4096) trained on
the benchmark's own texts: 2x128 (~1M parameters), 6x384 (~12M), 12x768 (~89M, GPU
only unless ``--sizes`` names it).

Two parts, every ratio measured in the same run:

1. **end-to-end** (tokenize + pad + forward) on realistic variable-length English
   samples (5-60 words; from ``/usr/share/games/fortunes`` when present, else a
   synthetic word mix), a pool of ``--n-samples`` pairs scored with at most
   ``batch`` sequences per forward:

   - ``naive``: for each of K HF models, for each chunk of ``batch`` samples in input
     order: ``tokenizer(texts, padding=True)`` then ``model(**enc)`` (the earlier
     reference code's shape: tokenize and pad per member);
   - ``ens``: one ``Ensemble.score`` call over the pool (auto path: tokenize once,
     length buckets across the pool, one pad per bucket, dedup);
   - ``ens/chunk``: ``Ensemble.score`` called once per chunk of ``batch`` samples
     (no cross-chunk bucketing: only the shared tokenization helps);
   - ``ens-vmap``: ``Ensemble(scoring="vmap").score`` over the pool;
   - ``mh``: a K-head multi-head Ensemble over the pool; ``single``: one member.

2. **forward-only** on fixed-shape random ids (``--seq`` tokens): ``loop`` (K HF
   forwards), ``vmap`` (stacked members), ``mh`` (one multi-head forward), ``limit``
   (one model scoring a K-times larger batch: the same FLOPs, no per-member
   overhead); on CUDA also ``vmap+graph`` and ``loop+graph`` (CUDA graphs).

Times are medians over ``--repeats`` after one warm-up; throughput is samples/s
(pairs scored by all K members per second).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

SIZES = {"1m": (2, 128, 2), "12m": (6, 384, 6), "89m": (12, 768, 12)}  # n_layer, n_embd, n_head
FORTUNE_FILES = ("fortunes", "wisdom", "literature", "science", "computers", "people", "humorists", "platitudes",
                 "work", "food", "pets", "tao", "education", "kids", "songs-poems")
VOCAB = 4096


# ------------------------------------------------------------------ data
def load_texts(n: int, seed: int = 0) -> tuple[list[str], list[str], str]:
    """n (prompt, response) pairs of 5-60 words: the first 20-40% of the words are the prompt."""
    rng = random.Random(seed)
    items: list[str] = []
    root = Path("/usr/share/games/fortunes")
    for name in FORTUNE_FILES:
        f = root / name
        if f.is_file():
            for item in f.read_text(errors="ignore").split("\n%\n"):
                words = item.split()
                if 5 <= len(words) <= 60:
                    items.append(" ".join(words))
    source = "fortunes"
    if len(items) < n:
        source = "synthetic"
        vocab = ("the of and a to in is you that it he was for on are as with his they at be this have from or one "
                 "had by word but not what all were we when your can said there use an each which she do how their if "
                 "will up other about out many then them these so some her would make like him into time has look two "
                 "more write go see number no way could people my than first water been call who oil its now find long "
                 "down day did get come made may part").split()
        items = [" ".join(rng.choice(vocab) for _ in range(rng.randint(5, 60))) for _ in range(n)]
    rng.shuffle(items)
    items = items[:n]
    prompts, responses = [], []
    for it in items:
        words = it.split()
        cut = max(1, int(len(words) * rng.uniform(0.2, 0.4)))
        prompts.append(" ".join(words[:cut]) + " ")
        responses.append(" ".join(words[cut:]))
    return prompts, responses, source


def build_tokenizer(texts: list[str]):
    from rewardherd.models.tiny import build_tokenizer as tiny_tokenizer

    return tiny_tokenizer(texts, vocab_size=VOCAB)


def build_members(tok, size: str, k: int, device, dtype, max_positions: int = 512):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    n_layer, n_embd, n_head = SIZES[size]
    cfg = GPT2Config(vocab_size=len(tok), n_positions=max_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
                     num_labels=1, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                     eos_token_id=tok.eos_token_id)
    models = []
    for i in range(k):
        torch.manual_seed(1000 + i)
        models.append(GPT2ForSequenceClassification(cfg).eval().to(device=device, dtype=dtype))
    return models, cfg


def build_multihead(cfg, k: int, device, dtype):
    import copy

    from transformers import GPT2ForSequenceClassification

    from rewardherd.models.multihead import MultiHeadRewardModel

    c = copy.deepcopy(cfg)
    c.num_labels = k
    torch.manual_seed(2000)
    return MultiHeadRewardModel(GPT2ForSequenceClassification(c).eval().to(device=device, dtype=dtype))


def make_ensemble(models, tok, scoring="auto", cuda_graphs=False):
    from rewardherd.models import Ensemble, Manifest, Member, MemberInfo

    members = [Member(MemberInfo(name=f"m{i}", path=f"m{i}", backbone="random", finetune_seed=i), m, tok)
               for i, m in enumerate(models)]
    manifest = Manifest(kind="finetune", members=[m.info for m in members], max_length=512)
    return Ensemble(members, manifest, scoring=scoring, cuda_graphs=cuda_graphs)


def make_multihead_ensemble(mh, tok):
    from rewardherd.models import Ensemble, Manifest, Member, MemberInfo

    members = [Member(MemberInfo(name=f"h{i}", path="backbone", backbone="random", finetune_seed=i,
                                 format="multi_head", head=i), v, tok) for i, v in enumerate(mh.views())]
    return Ensemble(members, Manifest(kind="multi_head", members=[m.info for m in members], max_length=512))


# ------------------------------------------------------------------ timing
def time_interleaved(fns: dict, repeats: int, device) -> dict[str, float]:
    """Median seconds per method, methods interleaved per repeat (fair under noisy load)."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for f in fns.values():
        f()
    sync()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            sync()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def naive_loop(models, tok, prompts, responses, batch: int, device):
    """The reference shape: per member, per chunk, tokenize + pad + forward."""
    texts = [p + r + tok.eos_token for p, r in zip(prompts, responses, strict=True)]
    out = np.empty((len(models), len(texts)))
    with torch.inference_mode():
        for i, m in enumerate(models):
            for s in range(0, len(texts), batch):
                enc = tok(texts[s : s + batch], padding=True, truncation=True, max_length=512, return_tensors="pt")
                enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
                out[i, s : s + batch] = m(**enc).logits[:, 0].float().cpu().numpy()
    return out


# ------------------------------------------------------------------ parts
def end_to_end(args, tok, prompts, responses, device, dtype, rows: list[dict]):
    for size in args.sizes:
        ks = sorted(set(args.ks) | {1})
        models_all, cfg = build_members(tok, size, max(ks), device, dtype)
        for k in ks:
            if k == 1 and args.e2e_skip_k1:
                continue
            models = models_all[:k]
            ens = make_ensemble(models, tok)
            ens_vmap = make_ensemble(models, tok, scoring="vmap")
            single = make_ensemble(models[:1], tok)
            mh = make_multihead_ensemble(build_multihead(cfg, k, device, dtype), tok)
            for b in args.e2e_batch_sizes_by_size.get(size, args.e2e_batch_sizes):
                n = args.n_samples_by_size.get(size, args.n_samples)
                n = n if b > 1 else min(n, args.n_samples_bs1)
                p, r = prompts[:n], responses[:n]

                def chunked(e=ens, b=b, p=p, r=r):
                    for s in range(0, len(p), b):
                        e.score(p[s : s + b], r[s : s + b], batch_size=b)

                fns = {
                    "naive": lambda m=models, b=b, p=p, r=r: naive_loop(m, tok, p, r, b, device),
                    "ens": lambda b=b, p=p, r=r, e=ens: e.score(p, r, batch_size=b),
                    "ens/chunk": chunked,
                    "mh": lambda b=b, p=p, r=r, e=mh: e.score(p, r, batch_size=b),
                    "single": lambda b=b, p=p, r=r, e=single: e.score(p, r, batch_size=b),
                }
                if size in args.e2e_lite_sizes:  # the headline methods only
                    del fns["ens/chunk"]
                elif k > 1:
                    fns["ens-vmap"] = lambda b=b, p=p, r=r, e=ens_vmap: e.score(p, r, batch_size=b)
                t = time_interleaved(fns, args.repeats, device)
                row = {"part": "e2e", "size": size, "k": k, "batch": b, "n": n,
                       **{f"t_{m}": v for m, v in t.items()},
                       **{f"sps_{m}": n / v for m, v in t.items()}}
                row["ens_vs_naive"] = t["naive"] / t["ens"]
                if "ens/chunk" in t:
                    row["chunk_vs_naive"] = t["naive"] / t["ens/chunk"]
                row["mh_vs_single_time"] = t["mh"] / t["single"]
                if "ens-vmap" in t:
                    row["vmap_vs_loop_time"] = t["ens-vmap"] / t["ens"]
                rows.append(row)
                print(f"e2e  {size:>4} K={k} b={b:<3} n={n:<4} " + "  ".join(f"{m}={n / v:8.1f}/s" for m, v in t.items())
                      + f" | ens/naive={row['ens_vs_naive']:.2f}x"
                      + (f" chunk/naive={row['chunk_vs_naive']:.2f}x" if "chunk_vs_naive" in row else "")
                      + f" mh/single time={row['mh_vs_single_time']:.2f}x", flush=True)
        del models_all


def forward_only(args, tok, device, dtype, rows: list[dict]):
    from rewardherd.models.vectorized import GroupScorer, StackedMembers

    on_cuda = torch.device(device).type == "cuda"
    for size in args.sizes:
        models_all, cfg = build_members(tok, size, max(args.ks), device, dtype)
        for k in args.ks:
            models = models_all[:k]
            mh = build_multihead(cfg, k, device, dtype)
            # the members' parameters become views of the stack: same contiguous memory for "loop"
            stacked = StackedMembers(models) if k > 1 else None
            for b in args.batch_sizes:
                if args.max_tokens and k * b * args.seq > args.max_tokens:
                    continue
                g = torch.Generator().manual_seed(0)
                ids = torch.randint(2, len(tok), (b, args.seq), generator=g).to(device)
                mask = torch.ones_like(ids)
                big_ids, big_mask = ids.repeat(k, 1), mask.repeat(k, 1)
                seqs = [row.tolist() for row in ids.cpu()]
                pad = tok.pad_token_id

                @torch.inference_mode()
                def loop(models=models, ids=ids, mask=mask):
                    return [m(input_ids=ids, attention_mask=mask).logits for m in models]

                fns = {"loop": loop,
                       "mh": torch.inference_mode()(lambda mh=mh, ids=ids, mask=mask: mh(ids, mask)),
                       "limit": torch.inference_mode()(lambda m=models[0], i=big_ids, a=big_mask:
                                                       m(input_ids=i, attention_mask=a).logits)}
                if stacked is not None:
                    fns["vmap"] = torch.inference_mode()(lambda s=stacked, ids=ids, mask=mask: s(ids, mask))
                if on_cuda:  # the whole K-member forward replayed as one CUDA graph (forward only)
                    for mode in ("vmap", "loop"):
                        (unit,) = GroupScorer(mode, cuda_graphs=True).plan(models)
                        fns[f"{mode}+graph"] = torch.inference_mode()(lambda u=unit, i=ids, a=mask: u(i, a))
                    scorer = GroupScorer("vmap", cuda_graphs=True, graph_length_multiple=args.seq)
                    # the same through GroupScorer.score: + host padding, H2D copy, D2H result
                    fns["score(vmap+graph)"] = lambda s=scorer, m=models, q=seqs, b=b, p=pad: s.score(m, q, p, b)
                t = time_interleaved(fns, args.repeats, device)
                row = {"part": "forward", "size": size, "k": k, "batch": b, "seq": args.seq,
                       **{f"ms_{m}": 1e3 * v for m, v in t.items()},
                       **{f"sps_{m}": b / v for m, v in t.items()},
                       **{f"{m}_vs_limit": v / t["limit"] for m, v in t.items() if m != "limit"}}
                rows.append(row)
                print(f"fwd  {size:>4} K={k} b={b:<3} t={args.seq} " + "  ".join(f"{m}={1e3 * v:8.2f}ms" for m, v in t.items())
                      + " | vs limit: " + " ".join(f"{m}={v / t['limit']:.2f}x" for m, v in t.items() if m != "limit"),
                      flush=True)
            del stacked
        del models_all


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--quick", action="store_true", help="short CPU run: 1M and 12M members, fewer cells")
    ap.add_argument("--sizes", nargs="+", choices=list(SIZES), default=None)
    ap.add_argument("--ks", nargs="+", type=int, default=[1, 3, 5, 8])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 64])
    ap.add_argument("--e2e-batch-sizes", nargs="+", type=int, default=None)
    ap.add_argument("--seq", type=int, default=None, help="forward-only length (default 128 CPU, 256 CUDA)")
    ap.add_argument("--n-samples", type=int, default=512)
    ap.add_argument("--n-samples-bs1", type=int, default=64, help="pool size at batch 1 (slow)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=None, help="skip forward cells with K*batch*seq above this")
    ap.add_argument("--skip", nargs="*", default=[], choices=["e2e", "forward"])
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads; use 1 on a shared machine (a descheduled OpenMP peer thread "
                         "made 2-thread forwards ~100x slower there)")
    ap.add_argument("--json", type=Path, default=None, help="also write every row here")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda but no CUDA device is available")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    args.seq = args.seq or (256 if device.type == "cuda" else 128)
    args.sizes = args.sizes or (["1m", "12m", "89m"] if device.type == "cuda" else ["1m", "12m"])
    args.e2e_batch_sizes = args.e2e_batch_sizes or args.batch_sizes
    args.e2e_skip_k1 = False
    args.e2e_lite_sizes = set()
    if args.quick:
        args.repeats = min(args.repeats, 3)
        args.n_samples = min(args.n_samples, 256)
        args.n_samples_bs1 = min(args.n_samples_bs1, 32)
        args.max_tokens = args.max_tokens or 5 * 64 * 128
        args.e2e_skip_k1 = True
    torch.manual_seed(0)

    t0 = time.time()
    prompts, responses, source = load_texts(max(args.n_samples, 2000))
    tok = build_tokenizer(prompts + responses)
    n_tok = [len(tok(p + r)["input_ids"]) + 1 for p, r in zip(prompts[: args.n_samples], responses, strict=False)]
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    la = os.getloadavg()
    load = f" load avg {la[0]:.1f}/{la[1]:.1f}/{la[2]:.1f} on {os.cpu_count()} cores"
    print(f"# device={name}{load} dtype={dtype} torch={torch.__version__} texts={source} "
          f"tokens/sample: mean {np.mean(n_tok):.1f}, min {min(n_tok)}, max {max(n_tok)}", flush=True)
    rows: list[dict] = []
    if "e2e" not in args.skip:
        e2e_args = argparse.Namespace(**vars(args))
        e2e_args.n_samples_by_size, e2e_args.e2e_batch_sizes_by_size = {}, {}
        if args.quick:  # the headline cells only; 12M members on a smaller pool
            e2e_args.ks = [5]
            e2e_args.n_samples_by_size, e2e_args.e2e_batch_sizes_by_size = {"12m": 128}, {"12m": [8]}
            e2e_args.e2e_lite_sizes = {"12m"}
        end_to_end(e2e_args, tok, prompts, responses, device, dtype, rows)
    if "forward" not in args.skip:
        fwd_args = argparse.Namespace(**vars(args))
        if args.quick:
            fwd_args.sizes = ["1m"]
        forward_only(fwd_args, tok, device, dtype, rows)
        if args.quick and "12m" in args.sizes:
            fwd_args.sizes, fwd_args.ks, fwd_args.batch_sizes = ["12m"], [5], [8]
            forward_only(fwd_args, tok, device, dtype, rows)

    print("\n# summary (ratios from this run)")
    for r in rows:
        if r["part"] == "e2e":
            print(f"e2e     {r['size']:>4} K={r['k']} batch={r['batch']:<3}: Ensemble.score {r['sps_ens']:8.1f}/s vs "
                  f"naive {r['sps_naive']:8.1f}/s = {r['ens_vs_naive']:.2f}x"
                  + (f" (per-chunk calls {r['chunk_vs_naive']:.2f}x)" if "chunk_vs_naive" in r else "") + "; "
                  f"multi-head/single time {r['mh_vs_single_time']:.2f}x"
                  + (f"; vmap/loop time {r['vmap_vs_loop_time']:.2f}x" if "vmap_vs_loop_time" in r else ""))
    for r in rows:
        if r["part"] == "forward" and r["k"] == 5:
            print(f"forward {r['size']:>4} K=5 batch={r['batch']:<3}: " + ", ".join(
                f"{m[:-9]} {r[m]:.2f}x limit" for m in r if m.endswith("_vs_limit")) + f" (limit {r['ms_limit']:.2f} ms)")
    print(f"# total {time.time() - t0:.0f}s")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
