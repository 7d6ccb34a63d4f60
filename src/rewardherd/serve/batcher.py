"""Micro-batching: concurrent requests share one scoring call.

Shape notation: ``m`` members, ``b`` pairs in a scoring call. A scoring function maps
``(prompts, responses)`` of length b to ``(raw, errors)``: raw member scores (m, b) and,
per pair, an error message or None. One worker owns the model and gathers requests
(never split) up to ``max_batch`` pairs or ``max_wait_ms``; the queue is bounded
(:class:`QueueFullError`, HTTP 503). Details: docs/serving.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

ScoreFn = Callable[[list, list], tuple[np.ndarray, list]]


class QueueFullError(RuntimeError):
    """The request queue is full; the client should retry later."""


class BatcherClosedError(RuntimeError):
    """The batcher is shutting down and takes no new requests."""


@dataclass
class _Job:
    prompts: list
    responses: list
    future: asyncio.Future

    def __len__(self) -> int:
        return len(self.prompts)


@dataclass
class BatcherStats:
    """Counters since start: scoring calls, requests and pairs scored."""

    calls: int = 0
    requests: int = 0
    pairs: int = 0
    max_requests_per_call: int = 0
    rejected_full: int = 0

    def as_dict(self) -> dict:
        return {
            "calls": self.calls,
            "requests": self.requests,
            "pairs": self.pairs,
            "max_requests_per_call": self.max_requests_per_call,
            "mean_pairs_per_call": self.pairs / self.calls if self.calls else 0.0,
            "rejected_full": self.rejected_full,
        }


class MicroBatcher:
    """Bounded queue plus one worker that scores requests in merged batches.

    Args:
        score_fn: ``(prompts, responses) -> (raw (m, b), errors (b,))``, run in a thread.
        max_batch: most pairs per scoring call.
        max_wait_ms: how long to wait for more requests after the first one.
        max_queue: most requests waiting; more raise :class:`QueueFullError`.
        enabled: False scores each request alone (no merging, no waiting).
    """

    def __init__(self, score_fn: ScoreFn, *, max_batch: int = 64, max_wait_ms: float = 5.0, max_queue: int = 256,
                 enabled: bool = True):
        if max_batch < 1 or max_queue < 1 or not max_wait_ms >= 0:
            raise ValueError(f"need max_batch >= 1, max_queue >= 1, max_wait_ms >= 0; got {max_batch}, "
                             f"{max_queue}, {max_wait_ms}")
        self.score_fn = score_fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.enabled = enabled
        self.stats = BatcherStats()
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None
        self._closing = False
        self._in_flight = 0  # requests taken from the queue, not yet answered

    # --------------------------------------------------------------- lifecycle
    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done() and not self._closing

    @property
    def pending(self) -> int:
        """Requests queued or being scored."""
        return (self._queue.qsize() if self._queue is not None else 0) + self._in_flight

    async def start(self) -> None:
        if self._worker is not None:
            raise RuntimeError("batcher already started")
        self._queue = asyncio.Queue(self.max_queue)
        self._closing = False
        self._worker = asyncio.create_task(self._run(), name="rewardherd-batcher")

    async def stop(self, timeout: float | None = None) -> None:
        """Refuse new requests, finish every queued and running one, stop the worker.

        Args:
            timeout: seconds to wait for the queue to drain; then the requests still
                waiting fail with :class:`BatcherClosedError`. None waits until done.
        """
        if self._worker is None:
            return
        self._closing = True
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            log.warning("batcher: %d request(s) still pending after %.1fs; failing them", self.pending, timeout)
        self._worker.cancel()
        try:
            await self._worker
        except asyncio.CancelledError:
            pass
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(BatcherClosedError("server is shutting down"))
            self._queue.task_done()
        self._worker = None

    # ----------------------------------------------------------------- submit
    async def submit(self, prompts: Sequence, responses: Sequence) -> tuple[np.ndarray, list]:
        """Score one request's pairs; returns ``(raw (m, k), errors (k,))``.

        Raises:
            QueueFullError: the queue holds ``max_queue`` requests.
            BatcherClosedError: the batcher is stopping or not started.
        """
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if self._closing or self._worker is None:
            raise BatcherClosedError("server is shutting down")
        job = _Job(list(prompts), list(responses), asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.stats.rejected_full += 1
            raise QueueFullError(f"{self.max_queue} requests are already waiting; retry later") from None
        return await job.future

    # ----------------------------------------------------------------- worker
    async def _run(self) -> None:
        carry: _Job | None = None
        batch: list[_Job] = []
        try:
            while True:
                if carry is None:
                    job = await self._queue.get()
                    self._in_flight += 1
                else:
                    job, carry = carry, None
                batch = [job]
                if self.enabled:
                    carry = await self._collect(batch)
                try:
                    await self._score(batch)
                finally:
                    for _ in batch:
                        self._in_flight -= 1
                        self._queue.task_done()
        except asyncio.CancelledError:
            # Only stop() cancels, after the drain or its timeout: fail what is left.
            for j in [*batch, *([carry] if carry is not None else [])]:
                if not j.future.done():
                    j.future.set_exception(BatcherClosedError("server is shutting down"))
            raise

    async def _collect(self, batch: list[_Job]) -> _Job | None:
        """Add waiting requests to ``batch`` until it is full or the wait is over.

        Returns a request that did not fit (the next batch starts with it), or None.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        n = len(batch[0])
        while n < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    return None
            self._in_flight += 1
            if n + len(job) > self.max_batch:
                return job  # task_done and _in_flight are settled when its own batch ends
            batch.append(job)
            n += len(job)
        return None

    async def _score(self, batch: list[_Job]) -> None:
        live = [j for j in batch if not j.future.done()]  # a cancelled client needs no scoring
        if not live:
            return
        prompts = [p for j in live for p in j.prompts]
        responses = [r for j in live for r in j.responses]
        try:
            raw, errors = await asyncio.to_thread(self.score_fn, prompts, responses)
            if raw.ndim != 2 or raw.shape[1] != len(prompts) or len(errors) != len(prompts):
                raise RuntimeError(f"scoring returned shape {raw.shape} and {len(errors)} errors for "
                                   f"{len(prompts)} pairs")
        except Exception as e:  # the whole call failed: every request in it gets the error
            log.exception("batcher: scoring call of %d pairs failed", len(prompts))
            for j in live:
                if not j.future.done():
                    j.future.set_exception(e)
            return
        self.stats.calls += 1
        self.stats.requests += len(live)
        self.stats.pairs += len(prompts)
        self.stats.max_requests_per_call = max(self.stats.max_requests_per_call, len(live))
        start = 0
        for j in live:
            end = start + len(j)
            if not j.future.done():
                j.future.set_result((raw[:, start:end], list(errors[start:end])))
            start = end
