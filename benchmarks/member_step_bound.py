"""How much can batching K members save on this machine? The ideal-batching bound of a member step.

Usage::

    python benchmarks/member_step_bound.py               # quick world's member shape, K=5, ~1 min
    python benchmarks/member_step_bound.py --threads 2 --length 48

Any batched implementation of K same-shape members (stacked parameters with vmap, grouped
matmuls, ...) does at least the K members' arithmetic. The cheapest way to do that much
arithmetic in a reward-model step is *one* model run on a K-times-larger batch: the same
FLOPs, one set of operator dispatches, and matmuls with K times more rows against one
weight (grouped matmuls against K weights are no more efficient). So

    bound = t(one model, batch K x B) / t(one model, batch B)

is a lower bound on (K members batched) / (one member) for a training step of this
shape on this machine. If the bound exceeds a target, no batching reaches the target
here; only less arithmetic does (a smaller model, shorter or fewer sequences).

The machine's cores can also be shared out: K members split over one process per core
(the study's ``workers``), each running its members' batch in one model, all at once. The
bound printed is the fastest K-member row over the fastest one-member row.

Printed, all from this one run (run it alone: two heavy jobs on 2 cores make each
several times slower):

* per row, the FLOPs (``torch.utils.flop_counter``), the median time, GFLOP/s, and that
  against this machine's fp32 matmul rate (a 1024^3 matmul at the row's threads);
* rows for one member and for K members' batch, at 1 thread and at one thread per core, and K
  members over one 1-thread process per core;
* a training step is forward + backward + gradient clip + fused AdamW, the member loop's step
  (``rewardherd.training.batched``); a scoring pass is one no-grad forward of the scoring
  batch (``TrainConfig.eval_batch_size`` sequences); both on a randomly initialized GPT-2
  reward model of the world's backbone shape (timing does not depend on the weights' values).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def median_time(fn, reps: int, warmup: int = 3, barrier=None) -> float:
    for _ in range(warmup):
        fn()
    if barrier is not None:  # processes sharing the machine start timing together
        barrier.wait()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class Bench:
    """One reward model of the world's backbone shape, its optimizer, and its two timed parts."""

    def __init__(self, world: str, length: int, threads: int):
        import torch
        from transformers import GPT2Config, GPT2ForSequenceClassification

        from rewardherd.models.common import fused_gelu
        from rewardherd.training.batched import adamw
        from rewardherd.training.config import TrainConfig
        from rewardherd.world.config import world_config

        torch.set_num_threads(threads)
        self.torch, self.length = torch, length
        self.lm = world_config(world).backbones.lm
        self.vocab = world_config(world).tokenizer.vocab_size
        self.train = TrainConfig()
        cfg = GPT2Config(vocab_size=self.vocab, n_positions=max(self.lm.block_size, length), n_embd=self.lm.n_embd,
                         n_layer=self.lm.n_layer, n_head=self.lm.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                         attn_pdrop=0.0, num_labels=1, pad_token_id=0, bos_token_id=None, eos_token_id=None)
        torch.manual_seed(0)
        self.model = fused_gelu(GPT2ForSequenceClassification(cfg)).train()
        self.opt = adamw([{"params": list(self.model.parameters()), "weight_decay": 0.0}], self.train.lr)

    def batch(self, n_seq: int):
        g = self.torch.Generator().manual_seed(n_seq)
        ids = self.torch.randint(1, self.vocab, (n_seq, self.length), generator=g)
        return ids, self.torch.ones_like(ids)

    def step(self, ids, mask) -> None:
        scores = self.model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)
        loss = -self.torch.nn.functional.logsigmoid(scores[0::2] - scores[1::2]).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()

    def score(self, ids, mask) -> None:
        with self.torch.no_grad():
            self.model.eval()
            self.model(input_ids=ids, attention_mask=mask)
            self.model.train()

    def flops(self, part: str, n_seq: int) -> int:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            getattr(self, part)(*self.batch(n_seq))
        return counter.get_total_flops()

    def time(self, part: str, n_seq: int, reps: int, barrier=None) -> float:
        ids, mask = self.batch(n_seq)
        return median_time(lambda: getattr(self, part)(ids, mask), reps=reps, barrier=barrier)

    def matmul_rate(self) -> float:
        a, b = self.torch.randn(1024, 1024), self.torch.randn(1024, 1024)
        return 2 * 1024 ** 3 / median_time(lambda: a @ b, reps=10)


def _in_process(job) -> float:
    world, length, part, n_seq, reps, barrier = job
    return Bench(world, length, 1).time(part, n_seq, reps, barrier)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", default="quick", help="world profile whose backbone shape is used")
    ap.add_argument("--k", type=int, default=5, help="ensemble size (the quick study's)")
    ap.add_argument("--length", type=int, default=36, help="padded tokens per sequence")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="threads / processes for the many-core rows")
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    import multiprocessing as mp

    import torch

    k, cores = args.k, args.cores
    bench = Bench(args.world, args.length, 1)
    lm, pairs = bench.lm, bench.train.batch_size
    n_params = sum(p.numel() for p in bench.model.parameters())
    print(f"torch {torch.__version__}; {args.world} backbone: {lm.n_layer} layers, n_embd {lm.n_embd}, {lm.n_head} "
          f"heads, vocab {bench.vocab} ({n_params / 1e6:.2f} M parameters); a training step is {pairs} pairs x 2 "
          f"sequences, a scoring pass {bench.train.eval_batch_size} sequences, of {args.length} tokens; K={k}, "
          f"{cores} cores")
    rates = {1: bench.matmul_rate()}
    torch.set_num_threads(cores)
    rates[cores] = bench.matmul_rate()
    print("fp32 matmul 1024^3: " + ", ".join(f"{r / 1e9:.0f} GFLOP/s at {t} thread(s)" for t, r in rates.items()))
    print()
    print("| part | who | threads x processes | sequences | GFLOP | time (ms) | GFLOP/s | of matmul rate |")
    print("|---|---|---|---|---|---|---|---|")
    ctx = mp.get_context("spawn")
    split = [len(range(i, k, cores)) for i in range(min(cores, k))]  # members per process
    for part, n_one in (("step", 2 * pairs), ("score", bench.train.eval_batch_size)):
        name = {"step": "training step", "score": "scoring pass"}[part]
        best = {}
        for who, n_seq in (("one member", n_one), (f"{k} members' batch in one model", n_one * k)):
            f = bench.flops(part, n_seq)
            for threads in sorted({1, cores}):
                torch.set_num_threads(threads)
                t = bench.time(part, n_seq, args.reps)
                best[who] = min(best.get(who, t), t)
                print(f"| {name} | {who} | {threads} x 1 | {n_seq} | {f / 1e9:.3f} | {t * 1e3:.1f} | "
                      f"{f / t / 1e9:.1f} | {f / t / rates[threads]:.2f} |")
        if len(split) > 1:
            with ctx.Manager() as manager, ctx.Pool(len(split)) as pool:
                barrier = manager.Barrier(len(split))
                times = pool.map(_in_process, [(args.world, args.length, part, m * n_one, args.reps, barrier)
                                               for m in split])
            t = max(times)  # all processes ran at once: the slowest sets the wall time
            who = f"{k} members over {len(split)} processes ({'+'.join(map(str, split))}), each its batch"
            f = bench.flops(part, n_one * k)
            best["split"] = t
            print(f"| {name} | {who} | 1 x {len(split)} | {n_one * k} | {f / 1e9:.3f} | {t * 1e3:.1f} | "
                  f"{f / t / 1e9:.1f} | {f / t / (len(split) * rates[1]):.2f} |")
        one = best.pop("one member")
        print(f"|  | **bound: fastest {k}-member row / fastest one-member row** | | | | **{min(best.values()) / one:.2f}x** "
              f"| | |")
    print()
    print(f"A target below the bound (for instance {k} members batched <= 2x one member) is out of reach of any "
          "batching on this machine; only less arithmetic per member gets there.")


if __name__ == "__main__":
    main()
