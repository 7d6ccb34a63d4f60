"""rewardherd.serve.batcher: merging, bounds, serialization, errors and draining.

The scoring function is a fake: each pair's "score" is float(response) for every
member, so a request can check that it got its own columns back.
"""

import asyncio
import threading
import time

import numpy as np
import pytest

from rewardherd.serve.batcher import BatcherClosedError, MicroBatcher, QueueFullError

M = 2  # members of the fake ensemble


class FakeScorer:
    """Records call sizes and the most calls ever running at once."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None, fail_on: str | None = None):
        self.delay = delay
        self.gate = gate
        self.fail_on = fail_on
        self.sizes: list[int] = []
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    def __call__(self, prompts, responses):
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            if self.gate is not None:
                assert self.gate.wait(10), "gate never opened"
            time.sleep(self.delay)
            if self.fail_on is not None and self.fail_on in responses:
                raise RuntimeError("model exploded")
            self.sizes.append(len(responses))
            raw = np.tile(np.array([float(r) for r in responses]), (M, 1))  # (m, b)
            return raw, [None] * len(responses)
        finally:
            with self._lock:
                self.running -= 1


def _req(*values):
    """A request of len(values) pairs whose responses are the values as strings."""
    return ["p"] * len(values), [str(v) for v in values]


async def _with_batcher(scorer, body, **kwargs):
    b = MicroBatcher(scorer, **kwargs)
    await b.start()
    try:
        return await body(b)
    finally:
        await b.stop()


def test_concurrent_requests_share_one_scoring_call():
    scorer = FakeScorer()

    async def body(b):
        return await asyncio.gather(*(b.submit(*_req(i, i + 0.5)) for i in range(5)))

    results = asyncio.run(_with_batcher(scorer, body, max_batch=64, max_wait_ms=200))
    assert scorer.sizes == [10]
    for i, (raw, errors) in enumerate(results):
        assert raw.shape == (M, 2)
        np.testing.assert_array_equal(raw, [[i, i + 0.5]] * M)  # each request got its own columns
        assert errors == [None, None]


def test_max_batch_bounds_each_call_and_never_splits_a_request():
    scorer = FakeScorer()

    async def body(b):
        return await asyncio.gather(*(b.submit(*_req(3 * i, 3 * i + 1, 3 * i + 2)) for i in range(4)))

    results = asyncio.run(_with_batcher(scorer, body, max_batch=7, max_wait_ms=200))
    assert scorer.sizes == [6, 6]  # 3 + 3 fit in 7; a third request of 3 would not
    for i, (raw, _) in enumerate(results):
        np.testing.assert_array_equal(raw[0], [3 * i, 3 * i + 1, 3 * i + 2])


def test_a_request_larger_than_max_batch_is_scored_alone():
    scorer = FakeScorer()

    async def body(b):
        return await asyncio.gather(b.submit(*_req(*range(10))), b.submit(*_req(99)))

    (big, _), (small, _) = asyncio.run(_with_batcher(scorer, body, max_batch=4, max_wait_ms=100))
    assert sorted(scorer.sizes) == [1, 10]
    np.testing.assert_array_equal(big[0], np.arange(10))
    np.testing.assert_array_equal(small[0], [99])


def test_batching_off_scores_each_request_alone_and_one_at_a_time():
    scorer = FakeScorer(delay=0.01)

    async def body(b):
        return await asyncio.gather(*(b.submit(*_req(i)) for i in range(6)))

    results = asyncio.run(_with_batcher(scorer, body, max_batch=64, max_wait_ms=200, enabled=False))
    assert scorer.sizes == [1] * 6
    assert scorer.max_running == 1  # the single worker serializes model access
    assert [float(r[0][0, 0]) for r in results] == [0, 1, 2, 3, 4, 5]


def test_batching_on_never_runs_two_calls_at_once():
    scorer = FakeScorer(delay=0.02)

    async def body(b):
        for _ in range(3):
            await asyncio.gather(*(b.submit(*_req(i)) for i in range(5)))
            await asyncio.sleep(0)

    asyncio.run(_with_batcher(scorer, body, max_batch=2, max_wait_ms=1))
    assert scorer.max_running == 1


def test_full_queue_is_refused_at_once():
    gate = threading.Event()
    scorer = FakeScorer(gate=gate)

    async def body(b):
        first = asyncio.ensure_future(b.submit(*_req(1)))  # taken by the worker, blocked on the gate
        while b._in_flight == 0:
            await asyncio.sleep(0.001)
        second = asyncio.ensure_future(b.submit(*_req(2)))  # fills the queue (max_queue=1)
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFullError, match="retry later"):
            await b.submit(*_req(3))
        assert b.stats.rejected_full == 1
        gate.set()
        return await asyncio.gather(first, second)

    results = asyncio.run(_with_batcher(scorer, body, max_queue=1, enabled=False))
    assert [float(r[0][0, 0]) for r in results] == [1, 2]


def test_stop_drains_queued_and_running_requests():
    gate = threading.Event()
    scorer = FakeScorer(gate=gate)

    async def main():
        b = MicroBatcher(scorer, max_batch=64, enabled=False)
        await b.start()
        futures = [asyncio.ensure_future(b.submit(*_req(i))) for i in range(5)]
        while b.pending < 5:  # one running (blocked on the gate), four queued
            await asyncio.sleep(0.001)
        stopper = asyncio.ensure_future(b.stop())
        await asyncio.sleep(0.05)
        assert not stopper.done()  # stop waits for the drain
        with pytest.raises(BatcherClosedError):  # but takes no new work meanwhile
            await b.submit(*_req(9))
        gate.set()
        await stopper
        assert all(f.done() for f in futures)
        return [f.result() for f in futures]

    results = asyncio.run(main())
    assert [float(r[0][0, 0]) for r in results] == [0, 1, 2, 3, 4]
    assert scorer.sizes == [1] * 5


def test_stop_with_timeout_fails_what_is_left():
    gate = threading.Event()
    scorer = FakeScorer(gate=gate)

    async def main():
        b = MicroBatcher(scorer, enabled=False)
        await b.start()
        futures = [asyncio.ensure_future(b.submit(*_req(i))) for i in range(3)]
        await asyncio.sleep(0.01)
        await b.stop(timeout=0.05)
        gate.set()  # let the abandoned scoring thread finish
        return await asyncio.gather(*futures, return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, BatcherClosedError) for r in results)


def test_a_failed_call_fails_its_requests_and_the_worker_carries_on():
    scorer = FakeScorer(fail_on="13")

    async def body(b):
        bad = await asyncio.gather(b.submit(*_req(13)), b.submit(*_req(1)), return_exceptions=True)
        good = await b.submit(*_req(2))
        return bad, good

    bad, (raw, _) = asyncio.run(_with_batcher(scorer, body, max_wait_ms=100))
    assert all(isinstance(r, RuntimeError) for r in bad)  # both were in the failing call
    assert float(raw[0, 0]) == 2.0


def test_scoring_runs_off_the_event_loop():
    scorer = FakeScorer(delay=0.5)
    ticks = 0

    async def body(b):
        nonlocal ticks
        task = asyncio.ensure_future(b.submit(*_req(1)))
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
        return await task

    asyncio.run(_with_batcher(scorer, body, enabled=False))
    assert ticks >= 10  # the loop kept running while the model worked


def test_submit_before_start_and_mismatched_lengths():
    async def main():
        b = MicroBatcher(FakeScorer())
        with pytest.raises(BatcherClosedError):
            await b.submit(*_req(1))
        await b.start()
        with pytest.raises(ValueError, match="2 prompts but 1 responses"):
            await b.submit(["a", "b"], ["1"])
        await b.stop()

    asyncio.run(main())


@pytest.mark.parametrize("kwargs", [{"max_batch": 0}, {"max_queue": 0}, {"max_wait_ms": -1.0}])
def test_batcher_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        MicroBatcher(FakeScorer(), **kwargs)
