"""Helpers shared by the CLI modules (`rewardherd.cli`, `rewardherd.serve.cli`, `rewardherd.world.cli`)."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rewardherd.config import field_docs

VERIFY_HELP = ("Check every member file against the SHA-256 in the manifest before loading (default); "
               "--no-verify skips the hashing for very large models.")
if TYPE_CHECKING:
    from rewardherd.core import Aggregation

# rewardherd.core is imported inside the functions: `import rewardherd.serve.cli` must not load torch.

# Options several commands share, written once (typer copies the option objects).
EnsembleArg = Annotated[Path, typer.Argument(help="Ensemble directory.")]
EnsembleOpt = Annotated[Path, typer.Option(help="Ensemble directory.")]
RawOpt = Annotated[bool, typer.Option(help="Aggregate raw member scores instead of standardized ones.")]
BatchSizeOpt = Annotated[int, typer.Option(help="Sequences per forward pass.")]
ProgressOpt = Annotated[bool, typer.Option(help="Show progress bars.")]
SkipInvalidOpt = Annotated[bool, typer.Option(help="Skip (and count) duplicate/empty/identical pairs instead of failing.")]
PAIRS_HELP = "Preference pairs: JSONL, Parquet, CSV or a datasets directory."
GOLD_HELP = "Gold reward: package.module:function or an HF reward-model directory."
POLICY_HELP = "Policy directory (HF causal LM + tokenizer)"

#: Help of `--param`, kept as an alias of the parameters written in `--method`.
PARAM_HELP = ("Alias of writing a parameter inside --method: name=value, e.g. lam=0.5 (repeatable); "
              "merged into the --method spec and overriding it.")


def fail(msg: str, code: int = 2) -> None:
    """Print ``error: msg`` in red on stderr and exit with ``code``."""
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def or_fail(fn, *args, errors: type[Exception] | tuple = ValueError, **kwargs):
    """``fn(*args, **kwargs)``; on one of ``errors``, :func:`fail` with its message."""
    try:
        return fn(*args, **kwargs)
    except errors as e:
        fail(str(e))


def parse_params(items: list[str] | None) -> dict:
    """``["lam=0.5", "ddof=1"]`` -> ``{"lam": 0.5, "ddof": 1}`` (values are numbers)."""
    from rewardherd.core import parse_number

    out = {}
    for it in items or []:
        if "=" not in it:
            fail(f"--param {it!r} must look like name=value (e.g. lam=0.5)")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = parse_number(v, k.strip())
        except ValueError as e:
            fail(f"--param {it!r}: {e}")
    return out


def parse_aggregation(method: str, params: list[str] | None = None) -> Aggregation:
    """`--method 'name(k=v)'` plus any `--param k=v` aliases as one validated Aggregation."""
    from rewardherd.core import Aggregation

    try:
        spec = Aggregation.parse(method)
        return Aggregation(spec.method, {**spec.params, **parse_params(params)}) if params else spec
    except ValueError as e:
        fail(str(e))


def config_options(cls, names: tuple[str, ...], into: str, *, given_only: bool = False, **custom):
    """Decorator: give a command one ``--option`` per named field of config dataclass ``cls``.

    Each option's help is the field's docstring and its default the field's default, so
    neither is written twice. The options take the place of the command's ``into``
    parameter, which receives their values as one dict, ready for ``cls(**values)``.
    ``custom`` maps a field to a ``typer.Option(...)`` of its own flag names or env var;
    its help, if any, is appended to the docstring. With ``given_only`` every option
    defaults to None, "not given" (a YAML file or the field's default decides), and the
    dict holds only the options given.
    """
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}

    def option(n):
        info = custom.get(n) or typer.Option()
        info.help = f"{docs[n]} {info.help}" if info.help else docs[n]
        tp, default = (hints[n] | None, None) if given_only else (hints[n], fields[n].default)
        return inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[tp, info])

    def decorate(fn):
        sig = inspect.signature(fn, eval_str=True)
        params = []
        for p in sig.parameters.values():
            params += [option(n) for n in names] if p.name == into else [p.replace(kind=p.KEYWORD_ONLY)]

        @functools.wraps(fn)
        def command(**kwargs):
            values = {n: kwargs.pop(n) for n in names}
            if given_only:
                values = {n: v for n, v in values.items() if v is not None}
            return fn(**kwargs, **{into: values})

        command.__signature__ = sig.replace(parameters=params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate
