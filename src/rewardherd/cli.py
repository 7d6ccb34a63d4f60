"""`rewardherd <verb>`: a thin layer that parses, calls library functions and prints.

Help texts come from the config dataclasses' field docstrings (one source of truth).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import typer

from rewardherd import schema
from rewardherd.cli_cleaning import clean_command, strength_command, warm_command
from rewardherd.cli_common import (
    GOLD_HELP,
    PAIRS_HELP,
    PARAM_HELP,
    POLICY_HELP,
    VERIFY_HELP,
    BatchSizeOpt,
    EnsembleArg,
    EnsembleOpt,
    ProgressOpt,
    RawOpt,
    SkipInvalidOpt,
    config_options,
    or_fail,
    parse_aggregation,
)
from rewardherd.cli_common import fail as _fail
from rewardherd.cli_dpo import dpo_command
from rewardherd.config import field_docs
from rewardherd.core import METHODS
from rewardherd.io import write_json_atomic, write_table_atomic
from rewardherd.policy.config import BonConfig, RLConfig
from rewardherd.serve.cli import serve_command
from rewardherd.studies.config import StudyConfig, Sweep, resolve_config
from rewardherd.training.config import EnsembleConfig, TrainConfig
from rewardherd.world.cli import world_app

app = typer.Typer(
    name="rewardherd",
    help="Reward-model ensembles against reward hacking: train, score, optimize, measure.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Help of every `--method` option: the one way to write an aggregation.
METHOD_HELP = (f"Aggregation, written name or 'name(k=v,...)', e.g. mean or 'uncertainty_weighted(lam=0.5)'; "
               f"methods: {', '.join(METHODS)}.")

E = field_docs(EnsembleConfig)
B = field_docs(BonConfig)
R = field_docs(RLConfig)
SWEEP_HELP = "\n\n".join(f"sweep.{k}: {doc}" for k, doc in field_docs(Sweep).items())

log = logging.getLogger("rewardherd")


def _setup_logging(verbose: bool) -> None:
    import warnings

    if not verbose:
        # Transformers' per-load reports and weight-loading bars drown the CLI's own output.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("rewardherd").setLevel(logging.INFO)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False):
    _setup_logging(verbose)


def _os_message(e: OSError) -> str:
    """``path: reason`` for an OSError, without the errno noise."""
    if e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror}"
    return str(e)


def _drop_empty_out(out: Path, existed: bool) -> None:
    """Remove an --out this run created when it holds no trained member, so a failed
    run leaves nothing behind (and never blocks a corrected rerun)."""
    import shutil

    from rewardherd.training.ensemble import holds_no_member

    if not existed and holds_no_member(out):
        shutil.rmtree(out, ignore_errors=True)


# --------------------------------------------------------------------- train
@app.command()
@config_options(TrainConfig, ("lr", "epochs", "batch_size", "max_length", "center_coef", "heldout_fraction", "lora_r",
                              "shared_head_init", "bootstrap", "member_label_noise", "batched"), into="hyper", given_only=True,
                shared_head_init=typer.Option("--shared-head-init"), bootstrap=typer.Option("--bootstrap"),
                batched=typer.Option("--batched/--no-batched"))
def train(
    data: Annotated[Path | None, typer.Option(help=PAIRS_HELP)] = None,
    out: Annotated[Path | None, typer.Option(help="Ensemble directory to create (or resume).")] = None,
    backbone: Annotated[list[str] | None, typer.Option(help=E["backbones"])] = None,
    kind: Annotated[str | None, typer.Option(help=f"{E['kind']} [default: {EnsembleConfig.kind}]")] = None,
    members: Annotated[int | None, typer.Option(help=f"{E['n_members']} [default: {EnsembleConfig.n_members}]")] = None,
    seed: Annotated[list[int] | None, typer.Option(help=E["seeds"])] = None,
    heldout_data: Annotated[Path | None, typer.Option(help="Separate held-out pairs (else split by prompt hash).")] = None,
    hyper: dict | None = None,
    config: Annotated[Path | None, typer.Option(help="YAML with `data`, `out`, `ensemble:` and `train:` sections; flags override it.")] = None,
    skip_invalid: SkipInvalidOpt = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing ensemble trained with a different configuration.")] = False,
    progress: ProgressOpt = True,
):
    """Train a reward-model ensemble (resumable: rerun the same command to continue)."""
    from rewardherd.config import ConfigError, from_dict, load_yaml
    from rewardherd.data import PreferenceDataError, load_preferences, split_by_prompt
    from rewardherd.training import PlanMismatchError, train_ensemble

    cfg = load_yaml(config) if config else {}
    unknown = set(cfg) - {"data", "out", "heldout_data", "ensemble", "train"}
    if unknown:
        _fail(f"{config}: unknown key(s) {sorted(unknown)}; known: data, out, heldout_data, ensemble, train")
    data = data or (Path(cfg["data"]) if "data" in cfg else None)
    out = out or (Path(cfg["out"]) if "out" in cfg else None)
    heldout_data = heldout_data or (Path(cfg["heldout_data"]) if cfg.get("heldout_data") else None)
    if data is None or out is None:
        _fail("--data and --out are required (or give them in --config)")
    for section in ("train", "ensemble"):
        if not isinstance(cfg.get(section) or {}, dict):
            _fail(f"{config}: {section}: expected a mapping of settings, got {type(cfg[section]).__name__}")
    tr = {**(cfg.get("train") or {}), **hyper}
    en = dict(cfg.get("ensemble") or {})
    # a flag overrides the file; neither: EnsembleConfig's default
    flags = {"backbones": backbone or None, "kind": kind, "n_members": members, "seeds": seed or None}
    en.update((k, v) for k, v in flags.items() if v is not None)
    out_existed = out.exists()
    try:
        where = str(config) if config else "command line"
        train_cfg = from_dict(TrainConfig, tr, where, "train")
        ens_cfg = from_dict(EnsembleConfig, en, where, "ensemble")
        if out.exists() and not out.is_dir():
            raise FileExistsError(f"--out {out} is a file, not a directory; choose another --out")
        pairs, report = load_preferences(data, skip_invalid=skip_invalid)
        typer.echo(report.summary(), err=True)
        if not pairs:
            raise ValueError(f"{data}: no preference pairs to train on")
        if heldout_data is not None:
            heldout, rep2 = load_preferences(heldout_data, skip_invalid=skip_invalid)
            typer.echo(rep2.summary(), err=True)
            if not heldout:
                raise ValueError(f"{heldout_data}: no held-out preference pairs")
            train_pairs = pairs
        else:
            train_pairs, heldout = split_by_prompt(pairs, heldout_fraction=train_cfg.heldout_fraction)
        manifest = train_ensemble(train_pairs, heldout, out, ens_cfg, train_cfg, overwrite=overwrite,
                                  progress=progress)
    except (ConfigError, PreferenceDataError, PlanMismatchError, ValueError, OSError) as e:
        _drop_empty_out(out, out_existed)
        _fail(_os_message(e) if isinstance(e, OSError) else str(e))
    except BaseException:
        _drop_empty_out(out, out_existed)
        raise
    typer.echo(f"ensemble written to {out}")
    for m in manifest.members:
        typer.echo(f"  {m.name}: backbone={m.backbone} seed={m.finetune_seed} held-out accuracy={m.heldout_accuracy:.3f}")


# --------------------------------------------------------------------- score
def _read_items(path: Path) -> tuple[list, list, list]:
    """(prompts, responses, ids) of a JSONL or Parquet items file; exits 2 naming
    file:line and field on the first bad row."""
    from rewardherd.models.ensemble import check_text

    if not path.is_file():
        _fail(f"{path}: not found" if not path.exists() else f"{path}: not a file")
    rows: list[tuple[str, object]] = []
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ... for corrupt files
            _fail(f"{path}: cannot read Parquet: {e}"[:500])
        rows = [(f"{path}: row index {i}", r) for i, r in enumerate(table.to_pylist())]
    else:
        with path.open("rb") as f:
            for i, raw in enumerate(f, 1):
                where = f"{path}:line {i}"
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    _fail(f"{where}: not valid UTF-8 ({e.reason})")
                if i == 1:
                    line = line.removeprefix("\ufeff")  # a byte-order mark, as `train` accepts
                if not line.strip():
                    continue
                try:
                    rows.append((where, json.loads(line)))
                except json.JSONDecodeError as e:
                    _fail(f"{where}: invalid JSON: {e.msg} (column {e.colno})")
                except RecursionError:
                    _fail(f"{where}: invalid row: JSON nested too deeply")
    prompts, responses, ids = [], [], []
    for n, (where, r) in enumerate(rows):
        if not isinstance(r, dict):
            _fail(f"{where}: expected a JSON object with 'prompt' and 'response'; got {type(r).__name__}")
        for f in ("prompt", "response"):
            if r.get(f) is None:
                _fail(f"{where}: missing field '{f}'")
            try:
                check_text(r[f], f"field '{f}'")
            except (TypeError, ValueError) as e:
                _fail(f"{where}: {e}")
        i = n if r.get("id") is None else r["id"]
        if isinstance(i, bool) or not isinstance(i, str | int):
            _fail(f"{where}: field 'id': expected a string or an int; got {type(i).__name__}")
        if isinstance(i, str):
            try:
                check_text(i, "field 'id'")
            except ValueError as e:
                _fail(f"{where}: {e}")
        prompts.append(r["prompt"])
        responses.append(r["response"])
        ids.append(i)
    return prompts, responses, ids


@app.command()
def score(
    ensemble: EnsembleArg,
    input: Annotated[Path, typer.Option("--input", "-i", help="JSONL or Parquet with `prompt` and `response` (optional `id`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .jsonl or .parquet: score/raw/<member>, ens/<method>, ens/std, ens/var, ens/range (docs/schema.md).")],
    method: Annotated[str, typer.Option(help=METHOD_HELP)] = "mean",
    param: Annotated[list[str] | None, typer.Option(help=PARAM_HELP)] = None,
    raw: RawOpt = False,
    batch_size: BatchSizeOpt = 64,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
    gold: Annotated[str | None, typer.Option(help=GOLD_HELP[:-1] + ": add a `gold` column and write the members' error sharing to <out>.sharing.json.")] = None,
    within_prompt: Annotated[bool, typer.Option(help="With --gold: z-score members and gold within each prompt (prompts with one response or constant scores are dropped and counted).")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help=VERIFY_HELP)] = True,
):
    """Score (prompt, response) pairs with every member; write scores, aggregate and spread.

    The output format follows the suffix of --out: .jsonl or .json (JSON lines), .csv or .parquet."""
    import pandas as pd

    from rewardherd.io import table_format
    from rewardherd.models import Ensemble, ManifestError

    or_fail(table_format, out)
    if out.exists() and not overwrite:
        _fail(f"{out} exists; pass --overwrite to replace it")
    if within_prompt and gold is None:
        _fail("--within-prompt needs --gold")
    gold_fn = _gold(gold)
    spec = parse_aggregation(method, param)
    prompts, responses, ids = _read_items(input)
    try:
        ens = Ensemble.load(ensemble, verify=verify)
        res = ens.reward(prompts, responses, spec.method, standardize=not raw, batch_size=batch_size, **spec.params)
    except (ManifestError, ValueError, TypeError, FloatingPointError) as e:
        _fail(str(e))
    df = pd.DataFrame({"id": ids})  # columns: docs/schema.md
    for name, row in zip(ens.names, res.raw_scores, strict=True):
        df[schema.raw_col(name)] = row
    df[schema.ens_col(spec.label)] = res.reward
    df["method"] = spec.method
    df[schema.SPREAD] = res.spread.std
    df[schema.SPREAD_VAR] = res.spread.var
    df[schema.SPREAD_RANGE] = res.spread.range
    sharing = None
    if gold_fn is not None:
        df["gold"], sharing = _score_sharing(gold_fn, prompts, responses, res.raw_scores, ens.names, within_prompt)
    write_table_atomic(df, out)
    typer.echo(f"scored {len(df)} pairs with {len(ens)} members ({spec.method}) -> {out}")
    if sharing is not None:
        from rewardherd.io import write_json_atomic
        from rewardherd.studies.evaluation import format_sharing

        path = write_json_atomic(out.with_suffix(".sharing.json"), sharing)
        for line in format_sharing(sharing):
            typer.echo(line)
        typer.echo(f"error sharing -> {path}")


def _score_sharing(gold_fn, prompts, responses, raw, names, within_prompt: bool):
    """`score --gold`: the gold scores (b,) and the members' error-sharing record."""
    from rewardherd.core import error_sharing
    from rewardherd.studies.evaluation import call_gold, sharing_record

    groups = [p if isinstance(p, str) else json.dumps(p, sort_keys=True) for p in prompts] if within_prompt else None
    try:
        g = call_gold(gold_fn, prompts, responses)
        res = error_sharing(raw, g, groups=groups, degenerate="drop" if within_prompt else "error")
    except ValueError as e:
        _fail(f"error sharing: {e}")
    return g, sharing_record(res, names, "responses")


# ---------------------------------------------------------------------- eval
@app.command("eval")
def eval_(
    ensemble: EnsembleArg,
    data: Annotated[Path, typer.Option(help="Preference pairs to evaluate on (JSONL, Parquet, CSV, datasets dir).")],
    method: Annotated[list[str] | None, typer.Option(help=METHOD_HELP + " Repeatable; default: every method with its default parameters.")] = None,
    raw: RawOpt = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON.")] = None,
    batch_size: BatchSizeOpt = 64,
    gold: Annotated[str | None, typer.Option(help=GOLD_HELP[:-1] + ": also report how much of the members' error is shared, on both responses of every pair and on pair margins.")] = None,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help=VERIFY_HELP)] = True,
):
    """Preference accuracy per member and per aggregation method, and member agreement."""
    from rewardherd.data import PreferenceDataError, load_preferences
    from rewardherd.models import Ensemble, ManifestError
    from rewardherd.studies.evaluation import evaluate_ensemble, format_sharing

    gold_fn = _gold(gold)
    specs = [parse_aggregation(m) for m in method or []]
    try:
        pairs, report = load_preferences(data)
        ens = Ensemble.load(ensemble, verify=verify)
        res = evaluate_ensemble(ens, pairs, methods=specs or None, standardize=not raw, batch_size=batch_size,
                                gold=gold_fn)
    except (ManifestError, PreferenceDataError, ValueError, TypeError, FloatingPointError) as e:
        _fail(str(e))
    except OSError as e:
        _fail(_os_message(e))
    typer.echo(f"{len(pairs)} pairs from {data}")
    for title, key in (("member", "member_accuracy"), ("aggregate", "method_accuracy")):
        typer.echo(f"{title} accuracy:")
        for name, acc in res[key].items():
            typer.echo(f"  {name}: {acc:.3f}")
    typer.echo(f"mean pairwise agreement on preference direction: {res['direction_agreement']:.3f}")
    typer.echo(f"mean pairwise Kendall tau of scores: {res['kendall_tau']:.3f}")
    for rec in res.get("error_sharing", {}).values():
        for line in format_sharing(rec):
            typer.echo(line)
    if json_out:
        write_json_atomic(json_out, res)


# ------------------------------------------------------------------ optimize
def _read_prompt_file(path: Path) -> list[str]:
    from rewardherd.studies.inputs import read_prompts

    return or_fail(read_prompts, str(path), errors=(FileNotFoundError, ValueError))


def _gold(spec: str | None):
    from rewardherd.studies.inputs import load_gold

    return None if spec is None else or_fail(load_gold, spec)


@app.command()
@config_options(BonConfig, ("pool_size", "max_new_tokens", "temperature", "top_p", "seed", "max_n_fraction"),
                into="options")
def bon(
    policy: Annotated[Path, typer.Option(help=POLICY_HELP + ".")],
    ensemble: EnsembleOpt,
    prompts: Annotated[Path, typer.Option(help="Prompts: text file (one per line) or JSONL with `prompt`.")],
    out: Annotated[Path, typer.Option(help="Output directory: pool.parquet, curves.parquet, summary.csv, bon.png.")],
    method: Annotated[list[str] | None, typer.Option(help=f"{B['methods']} Repeatable; default: "
                                                     f"{', '.join(BonConfig.methods)}. {METHOD_HELP}")] = None,
    gold: Annotated[str | None, typer.Option(help=GOLD_HELP)] = None,
    raw: RawOpt = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help=VERIFY_HELP)] = True,
    options: dict | None = None,
):
    """Best-of-n against the ensemble: sample a pool, score it, write unbiased curves and a plot."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardherd.core import n_grid
    from rewardherd.models import Ensemble, ManifestError
    from rewardherd.policy.bon import bon_curves, member_columns, sample_pool, score_pool, summarize
    from rewardherd.studies.plots import bon_summary

    cfg = BonConfig(**options, methods=tuple(method or BonConfig.methods))
    specs = [parse_aggregation(m) for m in cfg.methods]
    ens = or_fail(Ensemble.load, ensemble, verify=verify, errors=(ManifestError, ValueError))
    gold_fn = _gold(gold)
    plist = _read_prompt_file(prompts)
    tok = AutoTokenizer.from_pretrained(policy)
    model = AutoModelForCausalLM.from_pretrained(policy).eval()
    out.mkdir(parents=True, exist_ok=True)
    pool = or_fail(sample_pool, model, tok, plist, cfg.pool_size, max_new_tokens=cfg.max_new_tokens,
                   temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed, path=out / "pool.parquet",
                   progress=True)
    scored = score_pool(pool.drop(columns=["response_ids"], errors="ignore"), ens, gold=gold_fn)
    write_table_atomic(scored, out / "pool_scored.parquet")
    std = None if raw else ens.standardization()
    cols = member_columns(scored)
    values = ["gold"] + cols if gold_fn is not None else cols
    curves = bon_curves(scored, cols, specs, n_grid(cfg.pool_size, cfg.max_n_fraction), standardization=std,
                        values=values)
    write_table_atomic(curves, out / "curves.parquet")
    summary = summarize(curves)
    summary.to_csv(out / "summary.csv", index=False)
    bon_summary(summary, out / "bon.png")
    show = ["method", "n", "kl", "proxy", "proxy_se"] + (["gold", "gold_se"] if gold_fn is not None else [])
    typer.echo(summary[show].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    typer.echo(f"wrote {out}/pool.parquet, curves.parquet, summary.csv, bon.png")


@app.command()
@config_options(RLConfig, ("steps", "lr", "num_generations", "prompts_per_step", "max_new_tokens", "temperature",
                           "eval_every", "eval_samples", "seed", "save_checkpoints", "bf16", "kv_sampler"),
                into="options")  # --eval-prompts is the held-out prompts file (its first RLConfig.eval_prompts are used)
def rl(
    policy: Annotated[Path, typer.Option(help=POLICY_HELP + "; also the KL reference.")],
    ensemble: EnsembleOpt,
    prompts: Annotated[Path, typer.Option(help="Training prompts: text file or JSONL with `prompt`.")],
    eval_prompts: Annotated[Path, typer.Option(help="Held-out prompts for evaluation (KL, proxy, gold).")],
    out: Annotated[Path, typer.Option(help="Output directory (one sub-directory per kl_coef).")],
    method: Annotated[str, typer.Option(help=f"{R['method']} {METHOD_HELP}")] = RLConfig.method,
    kl_coef: Annotated[list[float] | None, typer.Option(
        help=f"{R['kl_coef']} Repeat for a sweep; default {RLConfig.kl_coef}.")] = None,
    gold: Annotated[str | None, typer.Option(help=GOLD_HELP)] = None,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help=VERIFY_HELP)] = True,
    options: dict | None = None,
):
    """RL against the ensemble with a KL penalty (TRL RLOO), evaluated on held-out prompts."""
    from rewardherd.models import Ensemble, ManifestError
    from rewardherd.policy.rl import run_rl

    spec = parse_aggregation(method)
    ens = or_fail(Ensemble.load, ensemble, verify=verify, errors=(ManifestError, ValueError))
    gold_fn = _gold(gold)
    train_p, eval_p = _read_prompt_file(prompts), _read_prompt_file(eval_prompts)
    for coef in kl_coef or [RLConfig.kl_coef]:
        cfg = or_fail(RLConfig, method=spec.method, params=dict(spec.params), kl_coef=coef, **options)
        d = out / f"kl{coef:g}"
        table = run_rl(policy, ens, train_p, eval_p, d, cfg, gold=gold_fn)
        cols = ["step", "kl", schema.ens_col(spec.label)] + (["gold"] if gold_fn is not None else [])
        typer.echo(f"kl_coef={coef:g} -> {d}")
        typer.echo(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))


# --------------------------------------------------------------------- study
@app.command(epilog=SWEEP_HELP)
@config_options(StudyConfig, ("executor", "ray_address", "cache_dir"), into="settings", given_only=True)
def study(
    config: Annotated[Path | None, typer.Argument(help="Study YAML (see rewardherd.studies.config); default: built-in world.")] = None,
    profile: Annotated[str | None, typer.Option(help="smoke, quick, kinds, sharing, markers, daa or full (default: the YAML's, else quick).")] = None,
    out: Annotated[Path, typer.Option(help="Output directory (stable: rerunning resumes).")] = Path("runs/study"),
    settings: dict | None = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Dotted override (repeatable), e.g. --set sweep.seeds=[0,1] or pool.size=64 (the sweep keys are below; every key: rewardherd.studies.config).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace results of a study with another configuration in --out.")] = False,
    progress: ProgressOpt = True,
):
    """Run the over-optimization study end to end and write report.html / report.md."""
    from rewardherd.config import ConfigError
    from rewardherd.studies.runner import StudyConfigMismatch, run_study

    overrides = list(set_ or []) + [f"{key}={value}" for key, value in settings.items() if value]
    try:
        cfg = resolve_config(config, profile, overrides)
        report = run_study(cfg, out, progress=progress, overwrite=overwrite)
    except (ConfigError, StudyConfigMismatch, FileNotFoundError, ValueError) as e:
        _fail(str(e))
    typer.echo(f"report: {report}")
    typer.echo(f"report (markdown): {report.with_suffix('.md')}")


@app.command()
def diagnose(
    profile: Annotated[str, typer.Option(help="Study profile whose world, members and pool are diagnosed.")] = "quick",
    levels: Annotated[str, typer.Option(help="Comma-separated levels of world.gold.shared_error in [0, 1].")] = "0,1",
    out: Annotated[Path, typer.Option(help="Output directory (rerunning resumes its members).")] = Path("runs/diagnose"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Dotted study override (repeatable), e.g. --set world.gold.design=lexical.")] = None,
    progress: ProgressOpt = True,
):
    """Single-member diagnostics of the built-in world at levels of its shared-error dial: residual
    error correlation, rho_bar, accuracy in and out of distribution, within-prompt Spearman with gold
    and each member's best-of-n gold curve. Forms no ensemble (docs/world.md)."""
    from rewardherd.config import ConfigError
    from rewardherd.studies.diagnose import run_diagnostics

    try:
        values = [float(x) for x in levels.split(",") if x.strip()]
    except ValueError:
        _fail(f"--levels: expected comma-separated numbers in [0, 1]; got {levels!r}")
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        _fail(f"--levels: expected comma-separated numbers in [0, 1]; got {levels!r}")
    try:
        cfg = resolve_config(None, profile, list(set_ or []))
        path = run_diagnostics(cfg, values, out, progress=progress)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        _fail(str(e))
    typer.echo(path.read_text())
    typer.echo(f"diagnostics: {path} (and {path.with_suffix('.json')})")


@app.command()
def report(out: Annotated[Path, typer.Argument(help="A finished study directory.")]):
    """Rebuild the analysis and report.html / report.md from the stored per-cell rows (no training,
    sampling or scoring)."""
    from rewardherd.studies.runner import reanalyze

    if not (out / "results" / "DONE").exists():
        _fail(f"{out}: not a finished study (results/DONE missing); run `rewardherd study --out {out}` first")
    path = or_fail(reanalyze, out, errors=(FileNotFoundError, ValueError))
    typer.echo(f"report: {path}")


app.command("serve")(serve_command)
app.command("strength")(strength_command)
app.command("clean")(clean_command)
app.command("warm")(warm_command)
app.command("dpo")(dpo_command)
app.add_typer(world_app, name="world")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
