"""`rewardherd serve`: option parsing, errors, and one end-to-end run in a subprocess."""

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
import typer
from typer.testing import CliRunner

from rewardherd.config import field_docs
from rewardherd.serve.cli import serve_command
from rewardherd.serve.config import ServeConfig


@pytest.fixture(scope="module")
def cli():
    # Registered exactly as the main CLI should: app.command("serve")(serve_command).
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root():
        """rewardherd (test copy)."""

    app.command("serve")(serve_command)
    return app


def test_help_lists_the_options_with_help_from_serve_config(cli):
    r = CliRunner().invoke(cli, ["serve", "--help"], env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    for flag in ("--host", "--port", "--token", "--method", "--param", "--max-body-bytes", "--max-items",
                 "--max-text-chars", "--max-batch", "--max-wait-ms", "--no-batching", "--max-queue",
                 "REWARDHERD_TOKEN", "127.0.0.1"):
        assert flag in r.output, flag
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", r.output).split())  # without rich's boxes and wrapping
    for name, doc in field_docs(ServeConfig).items():
        if name != "standardize":  # --raw is its negation
            assert doc in text, name
    assert "--keep-special-tokens" in text


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--method", "avg"], "unknown aggregation method"),
        (["--param", "lam"], "must look like name=value"),
        (["--max-items", "0"], "max_items must be an integer >= 1"),
        (["--method", "uncertainty_weighted", "--param", "lam=-1"], "lam must be >= 0"),
    ],
)
def test_bad_settings_exit_2_with_a_message(cli, ensemble_dir, args, needle):
    r = CliRunner().invoke(cli, ["serve", str(ensemble_dir), *args])
    assert r.exit_code == 2
    assert needle in r.output


def test_missing_ensemble_exits_2(cli, tmp_path):
    r = CliRunner().invoke(cli, ["serve", str(tmp_path / "nowhere")])
    assert r.exit_code == 2
    assert "not found" in r.output


@pytest.mark.slow
def test_serve_end_to_end_with_token_from_the_environment(ensemble_dir):
    """The command really serves on 127.0.0.1, takes its token from REWARDHERD_TOKEN,
    and exits cleanly on SIGINT."""
    from socket import socket

    with socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = "import typer; from rewardherd.serve.cli import serve_command; typer.run(serve_command)"
    env = {**os.environ, "REWARDHERD_TOKEN": "env-token", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(ensemble_dir), "--port", str(port), "--max-wait-ms", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        assert httpx.post(f"{url}/get_reward", json={"query": ["good"]}).status_code == 401
        r = httpx.post(f"{url}/get_reward", json={"query": ["good", "bad"]},
                       headers={"Authorization": "Bearer env-token"})
        assert r.status_code == 200
        assert len(r.json()["rewards"]) == 2
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit 130).
    assert proc.returncode in (0, 128 + signal.SIGINT, -signal.SIGINT), out
    assert "Application shutdown complete" in out
    assert "serving 3 member(s)" in out
    assert "env-token" not in out
