"""Direct alignment on preference pairs through TRL's DPOTrainer, on the gold-vs-KL axes.

No reward model is trained or optimized: the policy is fitted to the pairs directly, and
evaluated on held-out prompts like RL (:class:`rewardherd.policy.rl.Evaluator`), so its
curves go on the same gold-vs-sqrt(KL) axes as best-of-n and RL (SCIENCE.md sections 6-7).

Losses (TRL 1.16 ``DPOTrainer``; ``kl_coef`` is TRL's ``beta``). With the sequence
log-ratios ``h_c = log pi(y_c|x) - log pi_ref(y_c|x)`` (sum over the response's tokens)
and ``h_r`` likewise, and ``delta = h_c - h_r``:

- ``sigmoid`` (DPO, Rafailov et al. 2023): ``-log sigmoid(beta * delta)``;
- ``ipo`` (Azar et al. 2023): ``(delta' - 1 / (2 beta))^2``, where TRL's ``delta'`` divides
  each log-ratio by its response's token count (TRL's choice, confirmed with the authors);
- ``hinge`` (SLiC-style, Zhao et al. 2023): ``relu(1 - beta * delta)``;
- ``sft`` (with ``sigmoid``: RPO, Liu et al. 2024, arXiv 2405.16436): the negative
  log-likelihood of the chosen responses.

The terms are summed as ``sum_k loss_weights[k] * mean_over_pairs(term_k)``. TRL 1.16's
``sft`` term is one number per batch: **the mean over every chosen-response token of the
batch** of ``-log pi(token)`` (tokens pooled across the batch's chosen responses, the EOS
TRL appends included; rejected responses and prompts excluded). It is therefore not RPO's
per-sequence ``-log pi(y_c|x) / |y_c|`` averaged over pairs: longer chosen responses weigh
more. TRL 1.16 removed ``rpo_alpha``; RPO's weight is the ``sft`` entry of ``loss_weights``.

Evaluation, with the policy in eval mode, at step 0, every ``eval_every`` steps, at each
checkpoint and at the end: ``eval_samples`` samples of each of the first ``eval_prompts``
held-out prompts. KL(pi || pi_ref) is the sequence-level k1 estimator
(:func:`rewardherd.core.sequence_kl` via :func:`rewardherd.policy.rl.measure_kl`): the mean
over the n samples of ``sum_t log pi(y_t) / pi_ref(y_t)``, unbiased at temperature 1, with
variance ``Var[log pi(y)/pi_ref(y)] / n`` reported as ``kl_se`` (sample sd / sqrt(n),
treating the n samples as independent). The proxy (``ens/<method>``, ``ens/std``,
``score/z/<member>``, ``score/raw/<member>``) is recorded when an ensemble is given, and
``gold`` / ``gold_se`` when a gold reward is.

Checkpoints: the policy, optimizer, scheduler and RNG state at each of
``checkpoint_fractions`` (in epochs; step = nearest to fraction x steps per epoch), moved
whole into ``<out>/checkpoints/epoch_<f>`` by :func:`rewardherd.io.atomic_dir`, with the
evaluation rows so far. Rerunning the same plan resumes from the latest checkpoint (a
finished run does no training); another plan is a :class:`PlanMismatchError`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from rewardherd.config import config_hash, to_dict
from rewardherd.io import atomic_dir, file_sha256, write_json_atomic, write_table_atomic
from rewardherd.policy.config import DPOConfig
from rewardherd.policy.rl import Evaluator
from rewardherd.training.ensemble import PlanMismatchError, data_fingerprint

log = logging.getLogger(__name__)

__all__ = ["DPOConfig", "DPOSchedule", "PlanMismatchError", "dpo_schedule", "dpo_trainer", "train_dpo"]

RUN_FILE = "config.json"
EVAL_TABLE = "dpo_eval.parquet"
SAMPLES_TABLE = "dpo_samples.parquet"
TRAIN_LOG = "dpo_train_log.parquet"
CHECKPOINTS = "checkpoints"
POLICY = "policy"
_SCRATCH = "trainer"  # TRL's output_dir: checkpoints are written here, then moved into CHECKPOINTS
RUN_FORMAT = 1


@dataclass(frozen=True)
class DPOSchedule:
    """Which optimizer steps train, evaluate and checkpoint."""

    steps_per_epoch: int
    total_steps: int
    checkpoints: dict[int, float]
    """Step -> epoch fraction of each checkpoint."""
    evals: frozenset[int]


def dpo_schedule(n_pairs: int, config: DPOConfig) -> DPOSchedule:
    """Steps per epoch ``ceil(n_pairs / batch_size)``, ``ceil(epochs x that)`` steps, and the
    step nearest each checkpoint fraction; two fractions on one step are a ValueError."""
    if n_pairs < 1:
        raise ValueError("no preference pairs to train on")
    spe = math.ceil(n_pairs / config.batch_size)
    total = max(1, math.ceil(config.epochs * spe - 1e-9))
    checkpoints: dict[int, float] = {}
    for f in config.checkpoint_fractions:
        step = min(total, max(1, math.floor(f * spe + 0.5)))
        if step in checkpoints:
            raise ValueError(f"checkpoint_fractions {checkpoints[step]:g} and {f:g} both fall on step {step} "
                             f"({spe} steps per epoch: {n_pairs} pairs / batch_size {config.batch_size}); "
                             "drop one or use more pairs")
        checkpoints[step] = f
    evals = {0, total, *checkpoints, *range(config.eval_every, total + 1, config.eval_every)}
    return DPOSchedule(spe, total, checkpoints, frozenset(evals))


def _dir_fingerprint(path: Path) -> dict[str, str]:
    """SHA-256 of every file under a model directory, by relative path."""
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: policy directory not found")
    return {str(p.relative_to(path)): file_sha256(p) for p in sorted(path.rglob("*")) if p.is_file()}


def _plan(policy_dir: Path, pairs: Sequence, eval_prompts: Sequence[str], config: DPOConfig, ensemble,
          gold, gold_name: str | None, features) -> dict:
    """Everything a run's results depend on; its :func:`config_hash` pins the run directory."""
    ens = None
    if ensemble is not None:
        manifest = getattr(ensemble, "manifest", None)
        ens = {"names": list(ensemble.names), "config_hash": getattr(manifest, "config_hash", None)}
    return {"config": to_dict(config), "data": data_fingerprint(pairs), "n_pairs": len(pairs),
            "policy": _dir_fingerprint(policy_dir),
            "eval_prompts": config_hash({"prompts": list(eval_prompts)[: config.eval_prompts]}),
            "ensemble": ens, "gold": None if gold is None else gold_name or getattr(gold, "key", "given"),
            "features": features is not None}


def _open_run(out_dir: Path, phash: str, overwrite: bool) -> dict | None:
    """The run record of ``out_dir`` when it holds this plan; None when starting afresh.
    Another plan is a PlanMismatchError (replaced with ``overwrite``)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {out_dir} is a file, not a directory; choose another --out")
    path = out_dir / RUN_FILE
    if path.exists():
        try:
            record = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not a DPO run record ({e}); choose another --out") from None
        if record.get("plan_hash") == phash:
            return record
        if not record.get("complete") and not any((out_dir / CHECKPOINTS).glob("epoch_*")):
            log.warning("%s holds no checkpoint of its earlier plan (a failed or killed run); starting afresh",
                        out_dir)
            shutil.rmtree(out_dir)
            return None
        if not overwrite:
            raise PlanMismatchError(f"{out_dir} holds a DPO run with a different configuration (plan "
                                    f"{record.get('plan_hash')} != {phash}); choose another --out or pass "
                                    "--overwrite to replace it")
        log.warning("--overwrite: replacing the DPO run in %s", out_dir)
        shutil.rmtree(out_dir)
    elif out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out_dir} exists and is not a DPO run directory; choose another --out")
        shutil.rmtree(out_dir)
    return None


def _latest_checkpoint(out_dir: Path, phash: str) -> Path | None:
    """The checkpoint of this plan with the most steps (each is complete: moved in atomically)."""
    best: tuple[int, Path] | None = None
    for d in (out_dir / CHECKPOINTS).glob("epoch_*"):
        meta = d / "checkpoint.json"
        if not meta.is_file():
            continue
        m = json.loads(meta.read_text())
        if m.get("plan_hash") == phash and (best is None or m["step"] > best[0]):
            best = (m["step"], d)
    return None if best is None else best[1]


def _saved_evaluations(checkpoint: Path) -> tuple[list[dict], list[pd.DataFrame]]:
    """The evaluator's rows and samples as a checkpoint stored them (without ``epoch`` and ``config/``)."""
    table = pd.read_parquet(checkpoint / "eval_rows.parquet")
    table = table.drop(columns=[c for c in table.columns if c == "epoch" or c.startswith("config/")])
    return table.to_dict("records"), [pd.read_parquet(checkpoint / "eval_samples.parquet")]


def _eval_table(rows: list[dict], schedule: DPOSchedule, config: DPOConfig) -> pd.DataFrame:
    """Evaluation rows with ``epoch`` after ``step`` and the run's ``config/<field>`` columns."""
    table = pd.DataFrame(rows)
    table.insert(1, "epoch", table["step"] / schedule.steps_per_epoch)
    for k, v in to_dict(config).items():
        table[f"config/{k}"] = json.dumps(v) if isinstance(v, list | dict) or v is None else v
    return table


def _samples_table(samples: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(samples, ignore_index=True) if samples else pd.DataFrame()


def _publish_checkpoint(src: Path, out_dir: Path, step: int, fraction: float, phash: str,
                        evaluator: Evaluator, schedule: DPOSchedule, config: DPOConfig) -> Path:
    """Move TRL's finished ``checkpoint-<step>`` into ``checkpoints/epoch_<f>`` as one rename,
    with the evaluation rows and samples so far."""
    final = out_dir / CHECKPOINTS / f"epoch_{fraction:g}"
    with atomic_dir(final, replace=True) as stage:
        for p in src.iterdir():
            os.replace(p, stage / p.name)
        write_table_atomic(_eval_table(evaluator.rows, schedule, config), stage / "eval_rows.parquet")
        write_table_atomic(_samples_table(evaluator.samples), stage / "eval_samples.parquet")
        write_json_atomic(stage / "checkpoint.json", {"step": step, "epoch": step / schedule.steps_per_epoch,
                                                      "fraction": fraction, "plan_hash": phash})
    src.rmdir()
    log.info("dpo checkpoint at step %d (epoch %.3f) -> %s", step, step / schedule.steps_per_epoch, final)
    return final


def _callback(evaluator: Evaluator, schedule: DPOSchedule, out_dir: Path, phash: str, config: DPOConfig):
    """A TrainerCallback: evaluate on the schedule, ask TRL to save at checkpoint steps, then publish."""
    from transformers import TrainerCallback

    class _Schedule(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step in schedule.evals:
                evaluator(model, state.global_step)
            if state.global_step in schedule.checkpoints:
                control.should_save = True

        def on_save(self, args, state, control, **kw):
            step = state.global_step
            if step in schedule.checkpoints:
                _publish_checkpoint(Path(args.output_dir) / f"checkpoint-{step}", out_dir, step,
                                    schedule.checkpoints[step], phash, evaluator, schedule, config)

    return _Schedule()


def dpo_trainer(policy, ref, tokenizer, pairs: Sequence, out_dir: str | Path, config: DPOConfig,
                schedule: DPOSchedule, callbacks: Sequence = (), progress: bool = True, device: str = "cpu"):
    """TRL's DPOTrainer for ``config``, as :func:`train_dpo` builds it (TRL's defaults that
    matter set explicitly); TRL writes its scratch checkpoints under ``<out_dir>/trainer``."""
    from datasets import Dataset
    from trl import DPOConfig as TRLDPOConfig
    from trl import DPOTrainer

    from rewardherd.data import to_trl_records

    args = TRLDPOConfig(
        output_dir=str(Path(out_dir) / _SCRATCH), beta=config.kl_coef, loss_type=list(config.loss_type),
        loss_weights=list(config.weights), max_steps=schedule.total_steps,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=1, learning_rate=config.lr,
        lr_scheduler_type=config.lr_schedule, warmup_steps=0, max_length=config.max_length, seed=config.seed,
        data_seed=config.seed, disable_dropout=config.disable_dropout, precompute_ref_log_probs=False,
        bf16=config.bf16 and device == "cuda", activation_checkpointing=False, report_to="none",
        save_strategy="no", logging_steps=1, use_cpu=device == "cpu", disable_tqdm=not progress,
        dataloader_num_workers=0,
    )
    # TRL's DPO reads prompt/chosen/rejected only (a margin column would be carried along unused)
    records = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in to_trl_records(pairs)]
    trainer = DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=Dataset.from_list(records),
                         processing_class=tokenizer, callbacks=list(callbacks))
    if len(trainer.train_dataset) != len(pairs):
        raise ValueError(f"{len(pairs) - len(trainer.train_dataset)} of {len(pairs)} pairs do not fit in "
                         f"max_length={config.max_length} tokens; raise max_length")
    if not progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def _run_record(phash: str, plan: dict, schedule: DPOSchedule, complete: bool) -> dict:
    from rewardherd.models.manifest import package_versions

    return {"format": RUN_FORMAT, "plan_hash": phash, "complete": complete, "config": plan["config"],
            "plan": plan, "steps_per_epoch": schedule.steps_per_epoch, "total_steps": schedule.total_steps,
            "checkpoints": {str(k): v for k, v in schedule.checkpoints.items()}, "versions": package_versions()}


def _warn_overlap(pairs: Sequence, eval_prompts: Sequence[str]) -> None:
    seen = {p.prompt for p in pairs if isinstance(p.prompt, str)}
    shared = sum(p in seen for p in eval_prompts)
    if shared:
        log.warning("%d of %d evaluation prompts are also training prompts: the evaluation is not held out",
                    shared, len(eval_prompts))


def train_dpo(policy_dir: str | Path, train_pairs: Sequence, eval_prompts: Sequence[str], out_dir: str | Path,
              config: DPOConfig = DPOConfig(), *, ensemble=None, gold: Callable | None = None,
              gold_name: str | None = None, features: Callable | None = None, overwrite: bool = False,
              progress: bool = True) -> pd.DataFrame:
    """Train ``policy_dir`` on ``train_pairs`` with TRL's DPOTrainer; return the evaluation table.

    Args:
        policy_dir: HF causal LM + tokenizer; also the frozen reference pi_ref.
        train_pairs: :class:`~rewardherd.data.PreferencePair` values (plain-text prompts).
        eval_prompts: held-out prompts; the first ``config.eval_prompts`` are evaluated.
        ensemble: an :class:`~rewardherd.models.Ensemble` for the proxy columns, or None.
        gold: ``gold(prompts, responses) -> (b,)`` (e.g. the built-in world's ``World.gold``), or None.
        gold_name: what identifies ``gold`` in the plan (e.g. its ``--gold`` spec); default its
            ``key`` attribute (the world's gold has one), else only that a gold is given.
        features: ``features(prompts, responses) -> DataFrame`` of hacking features, or None.
        overwrite: replace a run of another plan in ``out_dir`` instead of refusing.

    Returns:
        One row per evaluation: ``step``, ``epoch``, ``kl``, ``kl_se``, the proxy columns,
        ``gold``, ``gold_se``, ``feature/<name>`` and ``config/<field>``. Also written to
        ``<out>/dpo_eval.parquet``, beside ``dpo_samples.parquet`` (every evaluated sample),
        ``dpo_train_log.parquet`` (TRL's per-step log), ``config.json`` (the plan, its hash,
        versions), ``policy/`` (the final policy) and ``checkpoints/epoch_<f>/``.
    """
    out_dir, policy_dir, pairs = Path(out_dir), Path(policy_dir), list(train_pairs)
    schedule = dpo_schedule(len(pairs), config)
    plan = _plan(policy_dir, pairs, eval_prompts, config, ensemble, gold, gold_name, features)
    phash = config_hash(plan)
    record = _open_run(out_dir, phash, overwrite)
    if record is not None and record.get("complete") and (out_dir / EVAL_TABLE).is_file():
        log.info("%s: DPO run already finished (plan %s); nothing to train", out_dir, phash)
        return pd.read_parquet(out_dir / EVAL_TABLE)
    _warn_overlap(pairs, list(eval_prompts)[: config.eval_prompts])
    resume = _latest_checkpoint(out_dir, phash)
    shutil.rmtree(out_dir / _SCRATCH, ignore_errors=True)  # a killed run's unpublished checkpoint
    write_json_atomic(out_dir / RUN_FILE, _run_record(phash, plan, schedule, complete=False))
    with _quiet(progress):
        trainer, evaluator = _setup(policy_dir, pairs, eval_prompts, out_dir, config, schedule, phash, ensemble,
                                    gold, features, progress)
    if resume is None:
        evaluator(trainer.model, 0)
    else:
        log.info("resuming the DPO run in %s from %s", out_dir, resume)
        evaluator.rows, evaluator.samples = _saved_evaluations(resume)
    with _quiet(progress):
        trainer.train(resume_from_checkpoint=None if resume is None else str(resume))
        return _finish(trainer, evaluator, out_dir, config, schedule, phash, plan)


def _setup(policy_dir: Path, pairs, eval_prompts, out_dir: Path, config: DPOConfig, schedule: DPOSchedule,
           phash: str, ensemble, gold, features, progress: bool):
    """Policy, reference, evaluator and trainer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    ref = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32).eval().to(device)
    # train mode from the start, as during training: evaluation must switch to eval mode itself
    policy = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32).to(device).train()
    evaluator = Evaluator(ensemble, ref, tokenizer, eval_prompts, config, methods=config.aggregations, gold=gold,
                          features=features, name="dpo")
    callback = _callback(evaluator, schedule, out_dir, phash, config)
    trainer = dpo_trainer(policy, ref, tokenizer, pairs, out_dir, config, schedule, [callback], progress, device)
    return trainer, evaluator


class _quiet:
    """Transformers at error verbosity; its and datasets' progress bars off unless ``progress``."""

    def __init__(self, progress: bool):
        self.progress = progress

    def __enter__(self):
        import datasets
        from transformers.utils import logging as hf_logging

        self.verbosity = hf_logging.get_verbosity()
        self.bars = (hf_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled())
        hf_logging.set_verbosity_error()
        if not self.progress:
            hf_logging.disable_progress_bar()
            datasets.disable_progress_bars()

    def __exit__(self, *exc):
        import datasets
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity(self.verbosity)
        if self.bars[0]:
            hf_logging.enable_progress_bar()
        if self.bars[1]:
            datasets.enable_progress_bars()


def _finish(trainer, evaluator: Evaluator, out_dir: Path, config: DPOConfig, schedule: DPOSchedule, phash: str,
            plan: dict) -> pd.DataFrame:
    """Write the final policy and tables, drop TRL's scratch directory, mark the run complete."""
    with atomic_dir(out_dir / POLICY, replace=True) as stage:
        trainer.model.save_pretrained(stage)
        trainer.processing_class.save_pretrained(stage)
    table = _eval_table(evaluator.rows, schedule, config)
    write_table_atomic(_samples_table(evaluator.samples), out_dir / SAMPLES_TABLE)
    train_log = pd.DataFrame([h for h in trainer.state.log_history if "train_runtime" not in h])
    write_table_atomic(train_log, out_dir / TRAIN_LOG)
    write_table_atomic(table, out_dir / EVAL_TABLE)
    shutil.rmtree(out_dir / _SCRATCH, ignore_errors=True)
    write_json_atomic(out_dir / RUN_FILE, _run_record(phash, plan, schedule, complete=True))
    return table
