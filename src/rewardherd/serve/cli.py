"""`rewardherd serve ENSEMBLE_DIR`: load an ensemble and serve it with uvicorn.

Register it on the main app with ``app.command("serve")(serve_command)``. Help
texts and defaults come from :class:`~rewardherd.serve.config.ServeConfig`.
fastapi, uvicorn and torch are imported only when the command runs.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Annotated

import typer

from rewardherd.cli_common import PARAM_HELP, VERIFY_HELP, parse_aggregation
from rewardherd.cli_common import fail as _fail
from rewardherd.config import field_docs
from rewardherd.serve.config import ServeConfig

S = field_docs(ServeConfig)
D = {f.name: f.default for f in dataclasses.fields(ServeConfig) if f.default is not dataclasses.MISSING}
TOKEN_ENV = "REWARDHERD_TOKEN"

log = logging.getLogger(__name__)






def serve_command(
    ensemble: Annotated[Path, typer.Argument(help="Ensemble directory.")],
    host: Annotated[str, typer.Option(help="Interface to bind; the default serves this machine only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    token: Annotated[str | None, typer.Option(envvar=TOKEN_ENV, show_default=False,
                                              help=f"{S['token']} Prefer the {TOKEN_ENV} environment variable: "
                                                   "a flag is visible in the process list.")] = None,
    method: Annotated[str, typer.Option(help=S["method"] + " Written with its parameters as on every command, "
                                             "e.g. 'uncertainty_weighted(lam=0.5)'.")] = D["method"],
    param: Annotated[list[str] | None, typer.Option(help=S["params"] + " " + PARAM_HELP)] = None,
    raw: Annotated[bool, typer.Option(help="Aggregate raw member scores instead of standardized ones.")] = False,
    max_body_bytes: Annotated[int, typer.Option(help=S["max_body_bytes"])] = D["max_body_bytes"],
    max_items: Annotated[int, typer.Option(help=S["max_items"])] = D["max_items"],
    max_text_chars: Annotated[int, typer.Option(help=S["max_text_chars"])] = D["max_text_chars"],
    batching: Annotated[bool, typer.Option("--batching/--no-batching", help=S["batching"])] = D["batching"],
    max_batch: Annotated[int, typer.Option(help=S["max_batch"])] = D["max_batch"],
    max_wait_ms: Annotated[float, typer.Option(help=S["max_wait_ms"])] = D["max_wait_ms"],
    max_queue: Annotated[int, typer.Option(help=S["max_queue"])] = D["max_queue"],
    strip_special_tokens: Annotated[bool, typer.Option("--strip-special-tokens/--keep-special-tokens",
                                                       help=S["strip_special_tokens"])] = D["strip_special_tokens"],
    graceful_timeout: Annotated[float, typer.Option(
        help="Seconds to let in-flight requests finish on shutdown (Ctrl-C / SIGTERM).")] = 30.0,
    device: Annotated[str | None, typer.Option(help="Device for the members (default: cuda if available).")] = None,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help=VERIFY_HELP)] = True,
):
    """Serve an ensemble over HTTP: OpenRLHF's /get_reward, /v1/score, /v1/info, /health."""
    from rewardherd.models import Ensemble, ManifestError

    spec = parse_aggregation(method, param)
    try:
        config = ServeConfig(
            method=spec.method, params=dict(spec.params), standardize=not raw, token=token,
            max_body_bytes=max_body_bytes, max_items=max_items, max_text_chars=max_text_chars, batching=batching,
            max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue,
            strip_special_tokens=strip_special_tokens,
        )
    except ValueError as e:
        _fail(str(e))
    try:
        ens = Ensemble.load(ensemble, device=device, verify=verify)
    except (ManifestError, OSError, ValueError) as e:  # an invalid ensemble never starts a server
        _fail(str(e))
    import uvicorn

    from rewardherd.serve.app import create_app

    try:
        app = create_app(ens, config)
    except ValueError as e:
        _fail(str(e))
    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        log.warning("serving on %s without a token: anyone who can reach this address can use it", host)
    typer.echo(f"serving {len(ens)} member(s) from {ensemble} on http://{host}:{port} "
               f"(method {config.method}, batching {'on' if config.batching else 'off'}, "
               f"auth {'on' if token else 'off'})", err=True)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", lifespan="on",
                                           timeout_graceful_shutdown=graceful_timeout))
    server.run()  # returns after a graceful shutdown (Ctrl-C / SIGTERM); exits 1 if it cannot bind
