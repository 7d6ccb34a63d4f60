"""Helpers shared by the CLI modules (`rewardherd.cli`, `rewardherd.serve.cli`, `rewardherd.world.cli`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

VERIFY_HELP = ("Check every member file against the SHA-256 in the manifest before loading (default); "
               "--no-verify skips the hashing for very large models.")
if TYPE_CHECKING:
    from rewardherd.core import Aggregation

# rewardherd.core is imported inside the functions: `import rewardherd.serve.cli` must not load torch.

#: Help of `--param`, kept as an alias of the parameters written in `--method`.
PARAM_HELP = ("Alias of writing a parameter inside --method: name=value, e.g. lam=0.5 (repeatable); "
              "merged into the --method spec and overriding it.")


def fail(msg: str, code: int = 2) -> None:
    """Print ``error: msg`` in red on stderr and exit with ``code``."""
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


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
