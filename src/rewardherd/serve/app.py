"""The FastAPI app: an Ensemble behind HTTP, with its uncertainty.

Shape notation: ``m`` members, ``b`` pairs in one request. Routes, responses and error
codes: docs/serving.md. Aggregation is :meth:`rewardherd.models.Ensemble.aggregate_scores`
on the ensemble's standardized scores; no NaN or infinity is ever returned.
"""

from __future__ import annotations

import hmac
import logging
import math
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from rewardherd import core, schema
from rewardherd.serve.batcher import BatcherClosedError, MicroBatcher, QueueFullError
from rewardherd.serve.config import ServeConfig
from rewardherd.serve.protocol import (
    RequestError,
    check_method,
    parse_get_reward,
    parse_json,
    parse_score,
    template_roles,
)

log = logging.getLogger(__name__)

SPREAD_KEY = schema.SPREAD  # the extra_logs key of the spread (as the TRL adapter logs it)
ERROR_CHARS = 300  # error messages returned to clients are cut to this length


def score_pairs(ensemble, prompts: list, responses: list, batch_size: int) -> tuple[np.ndarray, list[str | None]]:
    """Raw member scores (m, b) and a per-pair error (or None), isolating failures.

    One failing pair (e.g. a member producing NaN) makes :meth:`Ensemble.score` fail
    for its whole call; the call is then halved recursively so only the failing
    pairs get an error and the rest are scored. Their columns are left NaN.
    """
    b = len(prompts)
    raw = np.full((len(ensemble), b), np.nan)
    errors: list[str | None] = [None] * b

    def run(idx: list[int]) -> None:
        try:
            out = ensemble.score([prompts[i] for i in idx], [responses[i] for i in idx], batch_size=batch_size)
            raw[:, idx] = out
        except Exception as e:
            if len(idx) == 1:
                log.warning("pair could not be scored: %s: %s", type(e).__name__, e)
                errors[idx[0]] = f"scoring failed: {type(e).__name__}: {e}"[:ERROR_CHARS]
                return
            half = len(idx) // 2
            run(idx[:half])
            run(idx[half:])

    if b:
        run(list(range(b)))
    for i in range(b):
        if errors[i] is None and not np.all(np.isfinite(raw[:, i])):
            errors[i] = "scoring failed: a member produced a non-finite score"
    return raw, errors


def _special_token_strings(ensemble) -> tuple[str, ...]:
    tokens = set()
    for m in ensemble.members:
        for name in ("pad_token", "eos_token"):
            t = getattr(m.tokenizer, name, None)
            if isinstance(t, str) and t:
                tokens.add(t)
    return tuple(sorted(tokens, key=len, reverse=True))


def _manifest_summary(ensemble) -> dict:
    mf = ensemble.manifest
    return {
        "kind": mf.kind,
        "format_version": mf.format_version,
        "created": mf.created,
        "max_length": mf.max_length,
        "text_format": mf.text_format,
        "complete": mf.complete,
        "config_hash": mf.config_hash,
        "package_versions": dict(mf.package_versions),
    }


def _member_summary(info) -> dict:
    return {
        "name": info.name,
        "backbone": info.backbone,
        "pretrain_seed": info.pretrain_seed,
        "finetune_seed": info.finetune_seed,
        "heldout_accuracy": info.heldout_accuracy,
        "standardization": info.standardization,
    }


class _Service:
    """What the routes share: the ensemble, the config, the micro-batcher and the token.

    Building it checks the server method against the ensemble and, with
    standardization, the member statistics (both ValueErrors)."""

    def __init__(self, ensemble, config: ServeConfig) -> None:
        self.ensemble = ensemble
        self.config = config
        self.names = list(ensemble.names)
        self.m = len(self.names)
        # extra_logs keys of the members
        self.log_keys = [schema.score_col(n, config.standardize) for n in self.names]
        try:
            check_method(config.method, dict(config.params), self.m)
        except RequestError as e:
            raise ValueError(e.detail) from None
        if config.standardize:
            ensemble.standardization()  # ManifestError (a ValueError) now, not on the first request
        self.tokens = _special_token_strings(ensemble) if config.strip_special_tokens else ()
        self.roles = template_roles(getattr(mb.tokenizer, "chat_template", None) for mb in ensemble.members)
        self.batcher = MicroBatcher(
            lambda p, r: score_pairs(ensemble, p, r, config.max_batch),
            max_batch=config.max_batch,
            max_wait_ms=config.max_wait_ms,
            max_queue=config.max_queue,
            enabled=config.batching,
        )
        self.token = config.token.encode("utf-8") if config.token is not None else None

    def authorize(self, request: Request) -> None:
        if self.token is None:
            return
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        given = credentials.strip().encode("latin-1") if scheme.lower() == "bearer" else b""
        # compare_digest takes time independent of where the tokens differ.
        if not hmac.compare_digest(given, self.token):
            raise RequestError(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})

    async def read_json(self, request: Request) -> Any:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                raise RequestError(400, f"invalid Content-Length {declared!r}") from None
            if n > limit:
                raise RequestError(413, f"request body is {n} bytes; the limit is {limit} bytes")
        body = bytearray()
        try:
            async for chunk in request.stream():  # counts chunked bodies too, which declare no length
                body += chunk
                if len(body) > limit:
                    raise RequestError(413, f"request body exceeds the limit of {limit} bytes")
        except ClientDisconnect:
            raise RequestError(400, "client disconnected before sending the whole body") from None
        return parse_json(bytes(body))

    async def score(self, prompts: list, responses: list) -> tuple[np.ndarray, list]:
        try:
            return await self.batcher.submit(prompts, responses)
        except QueueFullError as e:
            raise RequestError(503, str(e), headers={"Retry-After": "1"}) from None
        except BatcherClosedError as e:
            raise RequestError(503, str(e)) from None

    def aggregate(self, raw: np.ndarray, method: str, params: dict) -> tuple[np.ndarray, core.Spread, np.ndarray]:
        """(reward (b,), spread, aggregated scores (m, b)) of finite raw scores (m, b)."""
        out = self.ensemble.aggregate_scores(raw, method, standardize=self.config.standardize, **params)
        return out.reward, out.spread, out.scores

    def info(self, request: Request) -> dict:
        """The /v1/info payload."""
        self.authorize(request)
        config = self.config
        return {
            "members": [_member_summary(mb.info) for mb in self.ensemble.members],
            "n_members": self.m,
            "method": config.method,
            "params": dict(config.params),
            "standardize": config.standardize,
            "methods": {k: dict(v) for k, v in core.METHOD_PARAMS.items()},
            "manifest": _manifest_summary(self.ensemble),
            "limits": {
                "max_body_bytes": config.max_body_bytes,
                "max_items": config.max_items,
                "max_text_chars": config.max_text_chars,
            },
            "batching": {
                "enabled": config.batching,
                "max_batch": config.max_batch,
                "max_wait_ms": config.max_wait_ms,
                "max_queue": config.max_queue,
                **self.batcher.stats.as_dict(),
            },
            "auth": self.token is not None,
        }

    async def get_reward(self, request: Request) -> dict:
        """The /get_reward response (OpenRLHF/TRL remote reward form)."""
        self.authorize(request)
        config, log_keys = self.config, self.log_keys
        req = parse_get_reward(await self.read_json(request), max_items=config.max_items,
                               max_text_chars=config.max_text_chars, tokens=self.tokens)
        b = len(req.prompts)
        if b == 0:
            return {"rewards": [], "scores": [], "extra_logs": {SPREAD_KEY: [], **{k: [] for k in log_keys}}}
        raw, errors = await self.score(req.prompts, req.responses)
        bad = [i for i, e in enumerate(errors) if e is not None]
        if bad:
            raise RequestError(500, f"query[{bad[0]}]: {errors[bad[0]]} ({len(bad)} of {b} queries failed)",
                               index=bad[0])
        reward, spread, scores = self.aggregate(raw, config.method, dict(config.params))
        finite = np.isfinite(reward) & np.isfinite(spread.std) & np.all(np.isfinite(scores), axis=0)
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise RequestError(500, f"query[{i}]: the aggregate is not finite", index=i)
        rewards = reward.tolist()
        extra = {SPREAD_KEY: spread.std.tolist(), **{k: row.tolist() for k, row in zip(log_keys, scores, strict=True)}}
        return {"rewards": rewards, "scores": rewards, "extra_logs": extra}

    async def score_items(self, request: Request) -> dict:
        """The /v1/score response: one result (or error) per item, in request order."""
        self.authorize(request)
        config = self.config
        req = parse_score(await self.read_json(request), default_method=config.method,
                          default_params=dict(config.params), n_members=self.m, max_items=config.max_items,
                          max_text_chars=config.max_text_chars, roles=self.roles)
        errors = list(req.errors)
        results: list[dict | None] = [None] * len(errors)
        await self._score_valid(req, errors, results)
        for i, e in enumerate(errors):
            if e is not None:
                results[i] = {"index": i, "error": e}
            if req.ids[i] is not None:
                results[i]["id"] = req.ids[i]
        return {
            "members": self.names,
            "method": req.method,
            "params": req.params,
            "standardized": config.standardize,
            "n_errors": sum(e is not None for e in errors),
            "results": results,
        }

    async def _score_valid(self, req, errors: list, results: list) -> None:
        """Score the items of ``req`` without a parse error; fill ``results`` (the scored
        ones) and ``errors`` (the ones that failed) in place, by item index."""
        valid = [i for i, e in enumerate(errors) if e is None]
        if not valid:
            return
        raw, score_errors = await self.score([req.items[i][0] for i in valid], [req.items[i][1] for i in valid])
        ok = []
        for j, i in enumerate(valid):
            if score_errors[j] is not None:
                errors[i] = score_errors[j]
            else:
                ok.append(j)
        if not ok:
            return
        reward, spread, scores = self.aggregate(raw[:, ok], req.method, req.params)
        for k, j in enumerate(ok):
            i = valid[j]
            values = [reward[k], spread.std[k], spread.var[k], spread.range[k], *scores[:, k], *raw[:, j]]
            if not all(math.isfinite(v) for v in values):
                errors[i] = "the aggregate or spread is not finite"
                continue
            results[i] = {
                "index": i,
                "reward": float(reward[k]),
                "spread": {"std": float(spread.std[k]), "var": float(spread.var[k]),
                           "range": float(spread.range[k])},
                "scores": scores[:, k].tolist(),
                "raw_scores": raw[:, j].tolist(),
            }


def create_app(ensemble, config: ServeConfig = ServeConfig()) -> FastAPI:
    """Build the app around a loaded :class:`~rewardherd.models.Ensemble`.

    The micro-batcher starts with the app's lifespan and, on shutdown, finishes every
    queued and running request. A server method that does not fit the ensemble, or
    standardization without member statistics, is a ValueError."""
    service = _Service(ensemble, config)
    batcher = service.batcher

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        log.info("serving %d member(s), method %s, batching %s", service.m, config.method,
                 "on" if config.batching else "off")
        try:
            yield
        finally:
            await batcher.stop()
            log.info("batcher drained and stopped")

    app = FastAPI(title="rewardherd", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.batcher = batcher
    app.state.ensemble = ensemble
    app.state.config = config

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError):
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    @app.get("/health")
    async def health():
        if not batcher.running:
            return JSONResponse({"status": "shutting_down"}, status_code=503)
        return {"status": "ok"}

    @app.get("/v1/info")
    async def info(request: Request):
        return service.info(request)

    @app.post("/get_reward")
    async def get_reward(request: Request):
        return await service.get_reward(request)

    @app.post("/v1/score")
    async def score_items(request: Request):
        return await service.score_items(request)

    return app
