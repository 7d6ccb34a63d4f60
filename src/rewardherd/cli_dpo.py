"""`rewardherd dpo`: a thin command over :func:`rewardherd.policy.dpo.train_dpo`.

Registered on the main app in :mod:`rewardherd.cli`. Heavy libraries are imported only
when the command runs. Help texts are the :class:`~rewardherd.policy.config.DPOConfig`
field docstrings; the options are validated by :func:`rewardherd.config.from_dict`, so a
bad value is one line naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rewardherd import schema
from rewardherd.cli_common import (
    GOLD_HELP,
    PAIRS_HELP,
    POLICY_HELP,
    VERIFY_HELP,
    ProgressOpt,
    SkipInvalidOpt,
    config_options,
)
from rewardherd.cli_common import fail as _fail
from rewardherd.config import field_docs
from rewardherd.policy.config import DPOConfig

D = field_docs(DPOConfig)

_SCALARS = ("kl_coef", "epochs", "batch_size", "lr", "lr_schedule", "max_length", "eval_every", "eval_prompts",
            "eval_samples", "max_new_tokens", "temperature", "seed", "disable_dropout", "bf16")


def _os_message(e: OSError) -> str:
    """``path: reason`` for an OSError, without the errno noise."""
    if e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return str(e)


@config_options(DPOConfig, _SCALARS, into="options", given_only=True, kl_coef=typer.Option("--kl-coef", "--beta"),
                eval_prompts=typer.Option("--n-eval-prompts"))
def dpo_command(
    data: Annotated[Path, typer.Option(help=PAIRS_HELP)],
    policy: Annotated[Path, typer.Option(help=POLICY_HELP + "; also the frozen reference.")],
    eval_prompts_file: Annotated[Path, typer.Option("--eval-prompts", help="Held-out prompts for evaluation (KL, proxy, gold): text file or JSONL with `prompt`.")],
    out: Annotated[Path, typer.Option(help="Run directory to create (rerunning the same command resumes it).")],
    loss_type: Annotated[list[str] | None, typer.Option(help=f"{D['loss_type']} Repeat for RPO: --loss-type sigmoid --loss-type sft. [default: sigmoid]")] = None,
    loss_weight: Annotated[list[float] | None, typer.Option(help=f"{D['loss_weights']} Repeat, one per --loss-type.")] = None,
    checkpoint_fraction: Annotated[list[float] | None, typer.Option(help=f"{D['checkpoint_fractions']} Repeatable. [default: {', '.join(map(str, DPOConfig.checkpoint_fractions))}]")] = None,
    method: Annotated[list[str] | None, typer.Option(help=f"{D['methods']} Repeatable. [default: mean]")] = None,
    ensemble: Annotated[Path | None, typer.Option(help="Ensemble directory scoring the evaluation samples (the proxy reward); optional.")] = None,
    gold: Annotated[str | None, typer.Option(help=GOLD_HELP)] = None,
    options: dict | None = None,
    skip_invalid: SkipInvalidOpt = False,
    overwrite: Annotated[bool, typer.Option(help="Replace a run with another configuration in --out.")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help=VERIFY_HELP)] = True,
    progress: ProgressOpt = True,
):
    """Direct alignment (TRL DPOTrainer: DPO, IPO, hinge, RPO) on preference pairs, evaluated on held-out
    prompts on the gold-vs-KL axes (resumable: rerun the same command to continue)."""
    from rewardherd.config import ConfigError, from_dict
    from rewardherd.data import PreferenceDataError, load_preferences
    from rewardherd.models import Ensemble, ManifestError
    from rewardherd.policy.dpo import PlanMismatchError, train_dpo
    from rewardherd.studies.inputs import load_gold, read_prompts

    lists = {"loss_type": loss_type, "loss_weights": loss_weight, "checkpoint_fractions": checkpoint_fraction,
             "methods": method}
    values = {**options, **{k: v for k, v in lists.items() if v}}
    try:
        cfg = from_dict(DPOConfig, values, "command line")
        pairs, report = load_preferences(data, skip_invalid=skip_invalid)
        typer.echo(report.summary(), err=True)
        if not pairs:
            raise ValueError(f"{data}: no preference pairs to train on")
        prompts = read_prompts(str(eval_prompts_file))
        ens = None if ensemble is None else Ensemble.load(ensemble, verify=verify)
        gold_fn = None if gold is None else load_gold(gold)
        table = train_dpo(policy, pairs, prompts, out, cfg, ensemble=ens, gold=gold_fn, gold_name=gold,
                          overwrite=overwrite, progress=progress)
    except (ConfigError, PreferenceDataError, PlanMismatchError, ManifestError, ValueError, OSError) as e:
        _fail(_os_message(e) if isinstance(e, OSError) else str(e))
    cols = ["step", "epoch", "kl", "kl_se"] + [c for c in (schema.ens_col(cfg.aggregation.label), "gold")
                                              if c in table.columns]
    typer.echo(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    typer.echo(f"wrote {out}/dpo_eval.parquet, dpo_samples.parquet, config.json, policy/ and checkpoints/")
