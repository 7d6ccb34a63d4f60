"""RL step time with a K-member ensemble reward vs a single member (issue target: <= 1.5x on CPU).

Uses the built-in world's policy and proxy backbones (profile quick by default), the
same RLOO batch for both arms, and TRL's own per-step timer (``step_time``). Members are
sequence-classification heads on the world's backbones (untrained heads cost the same as
trained ones). Both arms run in one process, alternating, and the ratio of medians is
printed.

    python benchmarks/rl_step.py [--profile quick] [--members 5] [--steps 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_ensemble(backbones, k):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rewardherd.models.ensemble import Ensemble, Member
    from rewardherd.models.formatting import pad_token_id
    from rewardherd.models.manifest import Manifest, MemberInfo

    members = []
    for i in range(k):
        path = backbones[i % len(backbones)]
        tok = AutoTokenizer.from_pretrained(path)
        torch.manual_seed(i)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1).eval()
        model.config.pad_token_id = pad_token_id(tok)
        info = MemberInfo(name=f"member_{i}", path=f"member_{i}", backbone=str(path), finetune_seed=i,
                          standardization={"mean": 0.0, "std": 1.0, "n": 0})
        members.append(Member(info, model, tok))
    return Ensemble(members, Manifest(kind="explicit", members=[m.info for m in members]))


def step_times(policy_dir, ens, prompts, steps, batch_prompts, generations, max_new_tokens, kv_sampler=False):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import RLOOConfig, RLOOTrainer

    tok = AutoTokenizer.from_pretrained(policy_dir)
    tok.padding_side = "left"
    with tempfile.TemporaryDirectory() as d:
        args = RLOOConfig(output_dir=d, beta=0.05, num_generations=generations,
                          per_device_train_batch_size=batch_prompts * generations,
                          max_completion_length=max_new_tokens, max_steps=steps, learning_rate=1e-5,
                          report_to="none", save_strategy="no", logging_steps=1, use_cpu=True, bf16=False,
                          gradient_checkpointing=False, disable_tqdm=True, seed=0)
        from rewardherd.policy.rl import kv_sampling_trainer

        cls = kv_sampling_trainer(RLOOTrainer) if kv_sampler else RLOOTrainer
        trainer = cls(model=AutoModelForCausalLM.from_pretrained(policy_dir), args=args,
                              reward_funcs=[ens.as_reward_function("mean")],
                              train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]), processing_class=tok)
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
    times = [h["step_time"] for h in trainer.state.log_history if "step_time" in h]
    return times[1:] or times, wall  # drop the first (warm-up) step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompts-per-step", type=int, default=4)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--sampler", action="store_true",
                    help="instead: the ensemble's RL step with TRL's generate vs rewardherd's KV-cached sampler")
    a = ap.parse_args()

    from rewardherd.world import build_world

    world = build_world(a.profile, cache_dir=a.cache_dir, progress=False)
    prompts = world.load_prompts("train")["prompt"].tolist()[:256]
    mnt = world.config.pool.max_new_tokens
    single = make_ensemble(world.backbone_dirs, 1)
    ens = make_ensemble(world.backbone_dirs, a.members)
    if a.sampler:
        compare_samplers(world, ens, prompts, a, mnt)
        return
    res = {"single": [], "ensemble": []}
    arms = (("single", single), ("ensemble", ens))
    for r in range(a.rounds):  # alternate arms so drifting machine load hits both alike
        for label, e in arms:
            times, wall = step_times(world.policy_dir, e, prompts, a.steps, a.prompts_per_step, a.generations, mnt)
            res[label] += times
            print(f"round {r} {label:>8}: median step {statistics.median(times):.3f} s over {len(times)} steps "
                  f"(wall {wall:.1f} s)")
    # The reward call alone, on one batch of completions of the policy.
    pool = world.sample(prompts[: a.prompts_per_step], a.generations, seed=1)
    p, c = pool["prompt"].tolist(), pool["response"].tolist()
    call = {}
    for label, e in arms:
        f = e.as_reward_function("mean")
        f(p, c)
        t = time.perf_counter()
        for _ in range(20):
            f(p, c)
        call[label] = (time.perf_counter() - t) / 20
    s_med, e_med = statistics.median(res["single"]), statistics.median(res["ensemble"])
    print(f"batch {a.prompts_per_step}x{a.generations} completions, <= {mnt} tokens, policy {world.policy_dir.name}")
    print(f"median RL step: single {s_med:.3f} s, {a.members} members {e_med:.3f} s "
          f"-> ratio {e_med / s_med:.2f}x ({len(res['single'])} + {len(res['ensemble'])} steps)")
    print(f"reward call per batch: single {call['single'] * 1000:.1f} ms, {a.members} members "
          f"{call['ensemble'] * 1000:.1f} ms ({call['ensemble'] / call['single']:.1f}x; "
          f"{(call['ensemble'] - call['single']) / s_med * 100:.1f}% of a single-RM step)")

def compare_samplers(world, ens, prompts, a, mnt) -> None:
    """The K-member RL step with TRL's ``generate`` and with ``RLConfig.kv_sampler``, alternating rounds."""
    res = {"generate": [], "kv sampler": []}
    for r in range(a.rounds):
        for label in res:
            times, wall = step_times(world.policy_dir, ens, prompts, a.steps, a.prompts_per_step, a.generations, mnt,
                                     kv_sampler=label == "kv sampler")
            res[label] += times
            print(f"round {r} {label:>10}: median step {statistics.median(times):.3f} s (wall {wall:.1f} s)")
    g, k = statistics.median(res["generate"]), statistics.median(res["kv sampler"])
    print(f"median RL step, {a.members} members, batch {a.prompts_per_step}x{a.generations}, <= {mnt} tokens: "
          f"generate {g:.3f} s, kv sampler {k:.3f} s -> ratio {k / g:.2f}x")


if __name__ == "__main__":
    main()
