"""`rewardherd strength`, `rewardherd clean` and `rewardherd warm`: thin commands over
:mod:`rewardherd.cleaning` and :mod:`rewardherd.training.warm`.

Registered on the main app in :mod:`rewardherd.cli`. Heavy libraries are imported
only when a command runs. Nothing the user has is modified: inputs are only read, and
an existing output is refused unless ``--overwrite``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rewardherd.cli_common import PAIRS_HELP, ProgressOpt, SkipInvalidOpt, config_options, or_fail
from rewardherd.cli_common import fail as _fail
from rewardherd.config import field_docs
from rewardherd.io import file_sha256
from rewardherd.training.config import EnsembleConfig, TrainConfig

E = field_docs(EnsembleConfig)

TABLE_SUFFIXES = (".parquet", ".jsonl")


def _refuse_existing(paths: list[Path], overwrite: bool) -> None:
    for p in paths:
        if p.exists() and not overwrite:
            _fail(f"{p} exists; pass --overwrite to replace it")


def _refuse_inputs_as_outputs(outputs: list[Path], inputs: list[Path]) -> None:
    for o in outputs:
        for i in inputs:
            if o.resolve() == i.resolve():
                _fail(f"{o} is also an input; write the output elsewhere (inputs are never modified)")


def _warn(msg: str) -> None:
    typer.secho(f"warning: {msg}", fg=typer.colors.YELLOW, err=True)


# ------------------------------------------------------------------ strength
@config_options(TrainConfig, ("lr", "epochs", "batch_size", "max_length", "center_coef"), into="hyper", given_only=True)
def strength_command(
    data: Annotated[Path, typer.Option(help=PAIRS_HELP)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Strength table to write (.parquet or .jsonl); a histogram PNG is written beside it.")],
    ensemble: Annotated[Path | None, typer.Argument(help="An existing ensemble to measure with. Its strengths are labelled in-sample (its members may have been trained on these pairs). Omit it to cross-fit with --backbone.")] = None,
    backbone: Annotated[list[str] | None, typer.Option(help=f"Cross-fitting: {E['backbones']}")] = None,
    folds: Annotated[int, typer.Option(help="Cross-fitting: K; the members of fold k are trained on the other K-1 folds and score fold k only.")] = 5,
    kind: Annotated[str, typer.Option(help=E["kind"])] = EnsembleConfig.kind,
    members: Annotated[int, typer.Option(help=f"Members per fold. {E['n_members']}")] = EnsembleConfig.n_members,
    seed: Annotated[list[int] | None, typer.Option(help=E["seeds"])] = None,
    fold_seed: Annotated[int, typer.Option(help="Salt of the assignment of prompts to folds.")] = 0,
    work_dir: Annotated[Path | None, typer.Option(help="Where the fold ensembles are kept (reruns resume them); default: <out stem>.folds beside --out.")] = None,
    hyper: dict | None = None,
    skip_invalid: SkipInvalidOpt = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output table and figure (and fold ensembles trained with another plan).")] = False,
    progress: ProgressOpt = True,
):
    """Preference strength of every pair from ensemble votes (Secrets of RLHF II): mean and std of the
    members' margins. Cross-fitted by default (--backbone, --folds); from ENSEMBLE in-sample."""
    from rewardherd.cleaning import (
        IN_SAMPLE_WARNING,
        cross_fit_strength,
        ensemble_strength,
        strength_histogram,
    )
    from rewardherd.config import ConfigError, from_dict
    from rewardherd.data import PreferenceDataError, load_preferences
    from rewardherd.io import write_table_atomic
    from rewardherd.models import ManifestError
    from rewardherd.training import PlanMismatchError

    if out.suffix not in TABLE_SUFFIXES:
        _fail(f"{out}: the strength table must end in .parquet or .jsonl")
    figure = out.with_suffix(".png")
    _refuse_inputs_as_outputs([out, figure], [data])
    _refuse_existing([out, figure], overwrite)
    if (ensemble is None) == (not backbone):
        _fail("give either ENSEMBLE (in-sample strengths) or --backbone (cross-fitted strengths), not both or neither")
    try:
        pairs, report = load_preferences(data, skip_invalid=skip_invalid)
        typer.echo(report.summary(), err=True)
        if ensemble is not None:
            from rewardherd.models import Ensemble

            _warn(IN_SAMPLE_WARNING)
            table = ensemble_strength(Ensemble.load(ensemble), pairs)
        else:
            en = {"kind": kind, "backbones": list(backbone), "n_members": members, "seeds": list(seed or [])}
            train_cfg = from_dict(TrainConfig, hyper, "train")
            ens_cfg = from_dict(EnsembleConfig, en, "ensemble")
            work = work_dir or out.with_name(f"{out.stem}.folds")
            typer.echo(f"cross-fitting: {folds} folds x {len(ens_cfg.member_specs())} member(s), fold ensembles in {work}",
                       err=True)
            table = cross_fit_strength(pairs, ens_cfg, folds, train_cfg, work, seed=fold_seed, overwrite=overwrite,
                                       progress=progress)
    except (ConfigError, PreferenceDataError, ManifestError, PlanMismatchError, FileExistsError, ValueError) as e:
        _fail(str(e))
    write_table_atomic(table, out)
    strength_histogram(table, figure)
    below = float((table["mean"] < 0).mean())
    label = "in-sample" if bool(table["in_sample"].any()) else f"cross-fitted ({folds} folds)"
    typer.echo(f"{len(table)} pairs, {label}: {below:.1%} with negative mean strength, "
               f"median std {table['std'].median():.3f}")
    typer.echo(f"wrote {out} and {figure}")


# --------------------------------------------------------------------- clean
def clean_command(
    data: Annotated[Path, typer.Option(help="Preference pairs to clean (read only, never modified).")],
    strength: Annotated[Path, typer.Option(help="Strength table from `rewardherd strength` (rows joined to pairs by id).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Cleaned pairs to write (.jsonl or .parquet).")],
    flip_below: Annotated[float | None, typer.Option(help="Flip chosen and rejected of this fraction of the pairs with the lowest mean strength (e.g. 0.1).")] = None,
    drop_between: Annotated[tuple[float, float] | None, typer.Option(help="Drop the pairs ranked between these two fractions of mean strength (e.g. 0.1 0.3): the ambiguous band.")] = None,
    margin_from_strength: Annotated[bool, typer.Option(help="Write each kept pair's margin as --margin-scale x its strength (after flipping), for an adaptive-margin Bradley-Terry loss in `rewardherd train`.")] = False,
    margin_scale: Annotated[float, typer.Option(help="Scale from standardized strength to the reward's logit units (with --margin-from-strength).")] = 1.0,
    summary: Annotated[Path | None, typer.Option(help="Summary JSON of what changed; default <out stem>.summary.json beside --out.")] = None,
    skip_invalid: SkipInvalidOpt = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output and summary.")] = False,
):
    """Flip the weakest pairs and drop the ambiguous band by preference strength (Secrets of RLHF II);
    write the cleaned pairs and a summary of what changed."""
    from rewardherd.cleaning import IN_SAMPLE_WARNING, clean_pairs, read_strength
    from rewardherd.data import PreferenceDataError, load_preferences, write_preferences
    from rewardherd.io import write_json_atomic

    if flip_below is None and drop_between is None and not margin_from_strength:
        _fail("nothing to do: give --flip-below, --drop-between and/or --margin-from-strength")
    summary = summary or out.with_name(f"{out.stem}.summary.json")
    _refuse_inputs_as_outputs([out, summary], [data, strength])
    if out.resolve() == summary.resolve():
        _fail(f"--summary {summary} and --out must differ")
    _refuse_existing([out, summary], overwrite)
    if not data.exists():
        _fail(f"{data}: not found")
    before = file_sha256(data) if data.is_file() else None
    try:
        pairs, report = load_preferences(data, skip_invalid=skip_invalid)
        typer.echo(report.summary(), err=True)
        table = read_strength(strength)
        cleaned, info = clean_pairs(pairs, table, flip_below=flip_below, drop_between=drop_between,
                                    margin_scale=margin_scale if margin_from_strength else None, where=str(strength))
    except KeyError as e:
        _fail(str(e.args[0]))
    except (PreferenceDataError, FileNotFoundError, ValueError) as e:
        _fail(str(e))
    if info["in_sample"]:
        _warn(f"{strength}: {IN_SAMPLE_WARNING}")
    or_fail(write_preferences, cleaned, out, overwrite=overwrite, errors=(FileExistsError, ValueError))
    write_json_atomic(summary, {"data": str(data), "data_sha256": before, "strength": str(strength),
                                "strength_sha256": file_sha256(strength), "out": str(out), **info})
    typer.echo(f"{info['n_pairs']} pairs: flipped {info['n_flipped']}, dropped {info['n_dropped']}, "
               f"wrote {info['n_written']} to {out}" + (" (margins from strength)" if margin_from_strength else ""))
    typer.echo(f"summary: {summary}")


# ---------------------------------------------------------------------- warm
def warm_command(
    ensemble: Annotated[Path, typer.Argument(help="Ensemble of members fine-tuned from one initialization (one backbone; ideally trained with --shared-head-init).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to create: one HF AutoModelForSequenceClassification and a one-member ensemble.json.")],
    data: Annotated[Path | None, typer.Option(help="Held-out pairs for the averaged member's accuracy and standardization statistics (without them it has none).")] = None,
    batch_size: Annotated[int, typer.Option(help="Sequences per forward pass when scoring --data.")] = 64,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output directory.")] = False,
):
    """WARM: average the weights of the members into one reward model (Ramé et al. 2024)."""
    from rewardherd.data import PreferenceDataError, load_preferences
    from rewardherd.models import ManifestError
    from rewardherd.training.warm import warm_average

    _refuse_existing([out], overwrite)
    try:
        heldout = None
        if data is not None:
            heldout, report = load_preferences(data)
            typer.echo(report.summary(), err=True)
        manifest = warm_average(ensemble, out, heldout_pairs=heldout, overwrite=overwrite, batch_size=batch_size)
    except (ManifestError, PreferenceDataError, FileExistsError, ValueError) as e:
        _fail(str(e))
    info, src = manifest.members[0], manifest.extra["warm"]
    typer.echo(f"averaged {len(src['members'])} members of {ensemble} -> {out}")
    if info.heldout_accuracy is not None:
        typer.echo(f"  held-out accuracy on {data}: {info.heldout_accuracy:.3f}")
    if not src["shared_head_init"]:
        typer.echo("  note: the members' heads were not initialized alike (train with --shared-head-init for WARM)")
