"""cli_common.config_options: CLI options generated from a config dataclass's fields."""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from rewardherd.cli_common import config_options
from rewardherd.config import field_docs


@dataclass(frozen=True)
class Knobs:
    lr: float = 0.1
    """Learning rate of the knob."""
    steps: int = 3
    """Steps the knob takes."""
    loud: bool = True
    """Whether the knob is loud."""
    secret: str | None = None
    """A secret."""


def _app(**kwargs):
    got = {}
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command()
    @config_options(Knobs, ("lr", "steps", "loud", "secret"), into="knobs", **kwargs)
    def run(first: Annotated[Path, typer.Argument(help="A path.")], knobs: dict | None = None,
            last: Annotated[int, typer.Option(help="Last option.")] = 7):
        got.update(knobs, first=first, last=last)

    return app, got


def _invoke(app, args):
    return CliRunner().invoke(app, args, env={"COLUMNS": "200", "TERMINAL_WIDTH": "200", "NO_COLOR": "1"})


def test_options_take_the_field_defaults_and_the_docstrings_as_help():
    app, got = _app(loud=typer.Option("--loud/--quiet"), secret=typer.Option(envvar="KNOB_SECRET", help="Env first."))
    r = _invoke(app, ["p", "--steps", "5", "--quiet"])
    assert r.exit_code == 0, r.output
    assert got == {"lr": 0.1, "steps": 5, "loud": False, "secret": None, "first": Path("p"), "last": 7}
    r = CliRunner().invoke(app, ["p"], env={"KNOB_SECRET": "s3"})
    assert got["secret"] == "s3"
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", _invoke(app, ["--help"]).output).split())  # without rich's boxes
    for doc in field_docs(Knobs).values():
        assert doc in text
    assert "A secret. Env first." in text and "KNOB_SECRET" in text and "--quiet" in text
    # the generated options sit where `knobs` was, between --first's argument and --last
    assert text.index("--lr") < text.index("--secret") < text.index("--last")


def test_given_only_passes_only_the_options_given():
    app, got = _app(given_only=True)
    r = _invoke(app, ["p", "--lr", "0.5"])
    assert r.exit_code == 0, r.output
    assert got == {"lr": 0.5, "first": Path("p"), "last": 7}
    text = _invoke(app, ["--help"]).output
    assert "[default: 0.1]" not in text  # "not given": the YAML file or the field's default decides


@pytest.mark.parametrize("bad", [["p", "--steps", "x"], ["p", "--nope", "1"]])
def test_bad_values_are_usage_errors(bad):
    app, _ = _app()
    assert _invoke(app, bad).exit_code == 2
