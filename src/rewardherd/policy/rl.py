"""RL against an ensemble reward with a KL penalty, through TRL's RLOOTrainer.

Why RLOO and not GRPO: TRL's RLOOTrainer subtracts ``beta * KL`` from the reward,
with KL the sequence-level sum of per-token log-ratios (k1) — the papers' PPO setup
(Gao et al.; Coste et al.; Eisenstein et al.) also penalizes KL in the reward. TRL's
GRPOTrainer instead adds a per-token k3 KL term to the loss. rewardherd's
``kl_coef`` maps to TRL's ``beta`` and is always set explicitly.

Departures from the papers: RLOO (leave-one-out baseline over ``num_generations``
samples per prompt) replaces PPO with a value head; the policy is a tiny LM on the
built-in world.

Evaluation (every ``eval_every`` steps, and at step 0) samples held-out prompts at the
training temperature (KL is the policy's own only at temperature 1) and records the
k1 KL (:func:`measure_kl`, EOS included when emitted), the proxy under every requested
method, each member's raw and standardized reward, and gold and features when given;
columns as in docs/schema.md. Checkpoints go to ``<out>/checkpoints/step_<k>``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rewardherd import core, schema
from rewardherd.io import write_table_atomic
from rewardherd.models.scoring import pad_right
from rewardherd.policy.config import RLConfig

log = logging.getLogger(__name__)


@torch.inference_mode()
def response_logprobs(model, tokenizer, prompts: Sequence[str], response_ids: Sequence[Sequence[int]],
                      batch_size: int = 32) -> list[np.ndarray]:
    """Per-token log-probs of each sampled response (its exact ids) given its prompt."""
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out: list[np.ndarray] = []
    for s in range(0, len(prompts), batch_size):
        ps = tokenizer(list(prompts[s : s + batch_size]), add_special_tokens=True)["input_ids"]
        rs = [list(r) for r in response_ids[s : s + batch_size]]
        ids, mask = pad_right([p + r for p, r in zip(ps, rs, strict=True)], pad)  # (b, t) each
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None].to(device))[..., 0]
        for i, (p, r) in enumerate(zip(ps, rs, strict=True)):
            out.append(logp[i, len(p) - 1 : len(p) - 1 + len(r)].cpu().double().numpy())
    return out


def measure_kl(policy, ref, tokenizer, prompts, response_ids, batch_size: int = 32) -> np.ndarray:
    """Sequence-level k1 KL per sample (sum of per-token log-ratios over the sampled ids), (b,)."""
    lp = response_logprobs(policy, tokenizer, prompts, response_ids, batch_size)
    lr = response_logprobs(ref, tokenizer, prompts, response_ids, batch_size)
    t = max((len(x) for x in lp), default=0)
    a, b, mask = np.zeros((3, len(lp), max(t, 1)))
    for i, (x, y) in enumerate(zip(lp, lr, strict=True)):
        a[i, : len(x)], b[i, : len(y)], mask[i, : len(x)] = x, y, 1.0
    return core.sequence_kl(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(mask)).numpy()


#: Offset of the held-out sampling seed from the training seed (any fixed prime).
EVAL_SEED_OFFSET = 7919


class Evaluator:
    """Evaluates a policy on held-out prompts: KL, proxy per method, members, gold, features.

    Shared by RL (:func:`run_rl`) and DPO (:func:`rewardherd.policy.dpo.train_dpo`).
    ``config`` is an :class:`RLConfig` or any config with ``eval_prompts``,
    ``eval_samples``, ``max_new_tokens``, ``temperature``, ``seed`` and ``aggregation``;
    with ``ensemble=None`` no proxy or member columns are recorded. ``name`` labels the
    log line.
    """

    def __init__(self, ensemble, ref_model, tokenizer, prompts: Sequence[str], config, *,
                 methods: Sequence = (), gold: Callable | None = None, features: Callable | None = None,
                 name: str = "rl"):
        self.ensemble, self.ref, self.tokenizer = ensemble, ref_model, tokenizer
        self.prompts = list(prompts)[: config.eval_prompts]
        self.config = config
        specs = [config.aggregation] + [m for m in methods]
        self.methods = list({s.label: s for s in specs}.values())
        self.gold, self.features, self.name = gold, features, name
        self.rows: list[dict] = []
        self.samples: list[pd.DataFrame] = []

    def __call__(self, policy, step: int) -> dict:
        # Everything measured here (samples, KL, scores) uses the policy in eval mode: in
        # train mode dropout makes KL against an identical reference positive.
        was_training = policy.training
        policy.eval()
        try:
            return self._evaluate(policy, step)
        finally:
            if was_training:
                policy.train()

    def _evaluate(self, policy, step: int) -> dict:
        from rewardherd.policy.sampling import sample_continuations

        # Held-out samples use their own seed stream, apart from training's (config.seed).
        df = sample_continuations(policy, self.tokenizer, self.prompts, self.config.eval_samples,
                                  max_new_tokens=self.config.max_new_tokens, temperature=self.config.temperature,
                                  seed=self.config.seed + EVAL_SEED_OFFSET, batch_size=256)
        prompts, responses = df["prompt"].tolist(), df["response"].tolist()
        kl = measure_kl(policy, self.ref, self.tokenizer, prompts, df["response_ids"].tolist())
        row = {"step": step, "kl": float(kl.mean()), "kl_se": float(kl.std(ddof=1) / np.sqrt(len(kl)))}
        df = df.drop(columns=["response_ids"]).assign(step=step, kl=kl)
        if self.ensemble is not None:
            self._score_proxy(row, df, prompts, responses)
        if self.gold is not None:
            g = np.asarray(self.gold(prompts, responses), dtype=np.float64)
            row["gold"] = float(g.mean())
            row["gold_se"] = float(g.std(ddof=1) / np.sqrt(len(g)))
            df["gold"] = g
        if self.features is not None:
            feats = self.features(prompts, responses)
            for c in feats.columns:
                row[schema.feature_col(c)] = float(feats[c].mean())
                df[schema.feature_col(c)] = feats[c].to_numpy()
        self.rows.append(row)
        self.samples.append(df)
        proxy = row.get(schema.ens_col(self.methods[0].label), float("nan"))
        log.info("%s eval step %d: kl=%.3f proxy=%.3f gold=%s", self.name, step, row["kl"], proxy,
                 f"{row.get('gold', float('nan')):.3f}")
        return row

    def _score_proxy(self, row: dict, df: pd.DataFrame, prompts: list, responses: list) -> None:
        """The spread, each method's aggregate and each member's mean score into ``row``;
        each member's raw score per sample into ``df``."""
        raw = self.ensemble.score(prompts, responses)
        std = self.ensemble.standardize(raw)
        row[schema.SPREAD] = float(core.spread(std).std.mean())
        for spec in self.methods:
            row[schema.ens_col(spec.label)] = float(spec.apply(std).mean())
        for name, r_raw, r_std in zip(self.ensemble.names, raw, std, strict=True):
            row[schema.z_col(name)] = float(r_std.mean())
            row[schema.raw_col(name)] = float(r_raw.mean())
            df[schema.raw_col(name)] = r_raw


def kv_sampling_trainer(base):
    """``base`` (TRL's RLOOTrainer) whose rollouts come from :func:`rewardherd.policy.sampling.generate_ids`
    (a KV-cached loop) where TRL would call ``model.generate`` with plain temperature / top-p sampling."""

    class KVSamplingTrainer(base):
        def _generate_single_turn(self, prompt_ids, images, multimodal_fields):
            from rewardherd.policy.sampling import generate_ids

            gc = self.generation_config
            plain = (not self.use_vllm and images is None and not multimodal_fields and not gc.top_k
                     and gc.min_p is None and gc.repetition_penalty in (None, 1.0) and len(self.eos_token_ids) == 1)
            if not plain:
                return super()._generate_single_turn(prompt_ids, images, multimodal_fields)
            # One 63-bit stream key per row from torch's RNG (seeded by TRL from args.seed).
            keys = torch.randint(0, 2**62, (len(prompt_ids),), dtype=torch.int64).numpy().astype(np.uint64)
            return generate_ids(self.accelerator.unwrap_model(self.model), [list(p) for p in prompt_ids], keys,
                                max_new_tokens=gc.max_new_tokens, temperature=gc.temperature,
                                top_p=1.0 if gc.top_p is None else gc.top_p, eos_id=self.eos_token_ids[0],
                                pad_id=self._tokenizer.pad_token_id)

    return KVSamplingTrainer


def run_rl(policy_dir: str | Path, ensemble, train_prompts: Sequence[str], eval_prompts: Sequence[str],
           out_dir: str | Path, config: RLConfig = RLConfig(), *, gold: Callable | None = None,
           features: Callable | None = None, methods: Sequence = (), progress: bool = True) -> pd.DataFrame:
    """Train ``policy_dir`` against the ensemble with RLOO; return the evaluation rows.

    Writes ``rl_eval.parquet`` (one row per evaluation), ``rl_samples.parquet`` (every
    evaluated sample with its scores) and checkpoints under ``out_dir``.
    """
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from transformers.utils import logging as hf_logging
    from trl import RLOOConfig, RLOOTrainer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    tokenizer.padding_side = "left"
    ref = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32).eval().to(device)
    policy = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)
    evaluator = Evaluator(ensemble, ref, tokenizer, eval_prompts, config, methods=methods, gold=gold,
                          features=features)
    reward_fn = ensemble.as_reward_function(config.method, **config.params)

    class _EvalCallback(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % config.eval_every == 0 or state.global_step == config.steps:
                evaluator(model, state.global_step)
                if config.save_checkpoints:
                    model.save_pretrained(out_dir / "checkpoints" / f"step_{state.global_step}")

    evaluator(policy.to(device), 0)
    args = RLOOConfig(
        output_dir=str(out_dir / "trainer"),
        beta=config.kl_coef,
        num_generations=config.num_generations,
        per_device_train_batch_size=config.prompts_per_step * config.num_generations,
        max_completion_length=config.max_new_tokens,
        max_steps=config.steps,
        learning_rate=config.lr,
        temperature=config.temperature,
        seed=config.seed,
        bf16=config.bf16 and device == "cuda",
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_steps=max(1, config.eval_every // 2),
        use_cpu=device == "cpu",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )
    n_rows = max(len(train_prompts), config.steps * config.prompts_per_step)
    rows = [{"prompt": train_prompts[i % len(train_prompts)]} for i in range(n_rows)]
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        trainer_cls = kv_sampling_trainer(RLOOTrainer) if config.kv_sampler else RLOOTrainer
        trainer = trainer_cls(model=policy, reward_funcs=[reward_fn], args=args, train_dataset=Dataset.from_list(rows),
                              processing_class=tokenizer, callbacks=[_EvalCallback()])
        if not progress:
            from transformers.trainer_callback import PrinterCallback

            trainer.remove_callback(PrinterCallback)
        trainer.train()
    finally:
        hf_logging.set_verbosity(verbosity)
    table = pd.DataFrame(evaluator.rows)
    for k, v in asdict(config).items():
        table[f"config/{k}"] = str(v) if isinstance(v, dict) else v
    write_table_atomic(table, out_dir / "rl_eval.parquet")
    write_table_atomic(pd.concat(evaluator.samples, ignore_index=True), out_dir / "rl_samples.parquet")
    train_log = pd.DataFrame([h for h in trainer.state.log_history if "train_runtime" not in h])
    write_table_atomic(train_log, out_dir / "rl_train_log.parquet")
    return table

