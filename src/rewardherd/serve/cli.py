"""`rewardherd serve ENSEMBLE_DIR`: load an ensemble and serve it with uvicorn.

Register it on the main app with ``app.command("serve")(serve_command)``. Help
texts and defaults come from :class:`~rewardherd.serve.config.ServeConfig`.
fastapi, uvicorn and torch are imported only when the command runs.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from rewardherd.cli_common import (
    PARAM_HELP,
    VERIFY_HELP,
    EnsembleArg,
    RawOpt,
    config_options,
    or_fail,
    parse_aggregation,
)
from rewardherd.config import field_docs
from rewardherd.serve.config import ServeConfig

TOKEN_ENV = "REWARDHERD_TOKEN"

log = logging.getLogger(__name__)


@config_options(
    ServeConfig, ("token", "method", "max_body_bytes", "max_items", "max_text_chars", "batching", "max_batch",
                  "max_wait_ms", "max_queue", "strip_special_tokens"), into="options",
    token=typer.Option(envvar=TOKEN_ENV, show_default=False,
                       help=f"Prefer the {TOKEN_ENV} environment variable: a flag is visible in the process list."),
    method=typer.Option(help="Written with its parameters as on every command, e.g. 'uncertainty_weighted(lam=0.5)'."),
    strip_special_tokens=typer.Option("--strip-special-tokens/--keep-special-tokens"),
)
def serve_command(
    ensemble: EnsembleArg,
    host: Annotated[str, typer.Option(help="Interface to bind; the default serves this machine only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    options: dict | None = None,
    param: Annotated[list[str] | None, typer.Option(help=field_docs(ServeConfig)["params"] + " " + PARAM_HELP)] = None,
    raw: RawOpt = False,
    graceful_timeout: Annotated[float, typer.Option(
        help="Seconds to let in-flight requests finish on shutdown (Ctrl-C / SIGTERM).")] = 30.0,
    device: Annotated[str | None, typer.Option(help="Device for the members (default: cuda if available).")] = None,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help=VERIFY_HELP)] = True,
):
    """Serve an ensemble over HTTP: OpenRLHF's /get_reward, /v1/score, /v1/info, /health."""
    from rewardherd.models import Ensemble, ManifestError

    spec = parse_aggregation(options.pop("method"), param)
    config = or_fail(ServeConfig, **options, method=spec.method, params=dict(spec.params), standardize=not raw)
    # an invalid ensemble never starts a server
    ens = or_fail(Ensemble.load, ensemble, device=device, verify=verify, errors=(ManifestError, OSError, ValueError))
    import uvicorn

    from rewardherd.serve.app import create_app

    app = or_fail(create_app, ens, config)
    if host not in ("127.0.0.1", "localhost", "::1") and config.token is None:
        log.warning("serving on %s without a token: anyone who can reach this address can use it", host)
    typer.echo(f"serving {len(ens)} member(s) from {ensemble} on http://{host}:{port} "
               f"(method {config.method}, batching {'on' if config.batching else 'off'}, "
               f"auth {'on' if config.token else 'off'})", err=True)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", lifespan="on",
                                           timeout_graceful_shutdown=graceful_timeout))
    server.run()  # returns after a graceful shutdown (Ctrl-C / SIGTERM); exits 1 if it cannot bind
