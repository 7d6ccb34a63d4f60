"""Helpers shared by the CLI modules (`rewardherd.cli`, `rewardherd.serve.cli`, `rewardherd.world.cli`)."""

from __future__ import annotations

import typer

VERIFY_HELP = ("Check every member file against the SHA-256 in the manifest before loading (default); "
               "--no-verify skips the hashing for very large models.")


def fail(msg: str, code: int = 2) -> None:
    """Print ``error: msg`` in red on stderr and exit with ``code``."""
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def parse_params(items: list[str] | None) -> dict:
    """``["lam=0.5", "ddof=1"]`` -> ``{"lam": 0.5, "ddof": 1}`` (values parsed as YAML scalars)."""
    import yaml

    out = {}
    for it in items or []:
        if "=" not in it:
            fail(f"--param {it!r} must look like name=value (e.g. lam=0.5)")
        k, v = it.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out
