"""A real uvicorn server on 127.0.0.1: concurrent clients, an OpenRLHF-style client,
backpressure (503) and graceful shutdown."""

import threading
import time

import httpx
import numpy as np
import pytest
import requests
import torch

from rewardherd import core
from rewardherd.serve import ServeConfig, create_app


def _wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def test_concurrent_clients_are_batched_and_each_gets_its_own_rewards(ensemble, serve_live):
    app = create_app(ensemble, ServeConfig(max_wait_ms=100.0, max_batch=64))
    n_clients, per_client = 8, 4
    requests_by_client = [
        [[f"item {c}-{k}: " + ("good " * (c + 1)) + ("bad " * k)] for k in range(per_client)]
        for c in range(n_clients)
    ]
    answers: dict[tuple[int, int], list] = {}
    failures: list = []
    barrier = threading.Barrier(n_clients)

    def client(c: int, url: str):
        try:
            with httpx.Client(base_url=url, timeout=60) as http:
                barrier.wait()
                for k, queries in enumerate(requests_by_client[c]):
                    r = http.post("/get_reward", json={"query": queries})
                    if r.status_code != 200:
                        failures.append((c, k, r.status_code, r.text))
                    else:
                        answers[(c, k)] = r.json()["rewards"]
        except Exception as e:  # surfaced by the assertion below
            failures.append((c, repr(e)))

    with serve_live(app) as live:
        threads = [threading.Thread(target=client, args=(c, live.url)) for c in range(n_clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert failures == []
    assert len(answers) == n_clients * per_client
    stats = app.state.batcher.stats
    assert stats.requests == n_clients * per_client
    assert stats.max_requests_per_call > 1, "concurrent requests were never merged"
    assert stats.calls < stats.requests
    # Batching must not mix requests up: each answer equals scoring that request alone.
    queries = [q for c in range(n_clients) for k in range(per_client) for q in requests_by_client[c][k]]
    want = core.aggregate(ensemble.standardize(ensemble.score([""] * len(queries), queries)), "mean")
    got = [answers[(c, k)][0] for c in range(n_clients) for k in range(per_client)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------- OpenRLHF
# Written against OpenRLHF's documented remote reward-model protocol, not against
# rewardherd: POST {"query", "prompts", "labels"} as JSON with `requests`, retry on
# errors, read the "rewards" key (older clients) or the whole dict (newer ones,
# which read "rewards", "scores" and every "extra_logs" list per sample).
def openrlhf_style_request(url, data, score_key="rewards", attempts=3):
    headers = {"Content-Type": "application/json"}
    for _ in range(attempts):
        try:
            response = requests.post(url=url, json=data, headers=headers, timeout=180)
            response.raise_for_status()
            body = response.json()
            assert score_key in body, f"{score_key} not in {body}"
            return body
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"request failed {attempts} times")


def test_openrlhf_style_client_gets_valid_rewards(ensemble, serve_live):
    app = create_app(ensemble, ServeConfig(method="uncertainty_weighted", params={"lam": 0.5}))
    prompts = ["Human: say something nice\nAssistant: ", "Human: and something sad\nAssistant: "]
    responses = ["good happy kind", "bad awful sad"]
    # OpenRLHF decodes left-padded sequences with their special tokens kept.
    queries = ["<|pad|><|pad|>" + prompts[0] + responses[0] + "<|endoftext|>",
               prompts[1] + responses[1] + "<|endoftext|><|pad|>"]
    labels = ["", ""]
    with serve_live(app) as live:
        body = openrlhf_style_request(f"{live.url}/get_reward", {"query": queries, "prompts": prompts, "labels": labels})
        old_style = openrlhf_style_request(f"{live.url}/get_reward", {"query": queries})
    rewards = torch.tensor(body["rewards"])
    assert rewards.shape == (2,) and torch.isfinite(rewards).all()
    scores = torch.tensor(body["scores"])
    assert scores.shape == (2,)
    for key, values in body["extra_logs"].items():
        t = torch.tensor(values)
        assert t.shape == (2,) and torch.isfinite(t).all(), key
    # The stripped, split pairs score exactly like the clean (prompt, response) pairs.
    scores_std = ensemble.standardize(ensemble.score(prompts, responses))
    want = core.aggregate(scores_std, "uncertainty_weighted", lam=0.5)
    np.testing.assert_allclose(body["rewards"], want, rtol=1e-6, atol=1e-6)
    # Without prompts the whole query is the response; plain-text scoring sees the same ids.
    np.testing.assert_allclose(old_style["rewards"], want, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------- backpressure
def test_full_queue_gets_503_over_http(ensemble, serve_live, wrap_ensemble):
    gate = threading.Event()
    gated = wrap_ensemble(ensemble, lambda p, r: gate.wait(30))
    app = create_app(gated, ServeConfig(max_queue=1, batching=False))
    results: list = []

    def call(url):
        results.append(httpx.post(f"{url}/get_reward", json={"query": ["good"]}, timeout=60).status_code)

    with serve_live(app) as live:
        batcher = app.state.batcher
        first = threading.Thread(target=call, args=(live.url,))
        first.start()
        _wait_for(lambda: batcher.pending == 1, what="the first request to reach the model")
        second = threading.Thread(target=call, args=(live.url,))
        second.start()
        _wait_for(lambda: batcher.pending == 2, what="the second request to be queued")
        r = httpx.post(f"{live.url}/get_reward", json={"query": ["good"]}, timeout=60)
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert "retry later" in r.json()["detail"]
        gate.set()
        first.join(30)
        second.join(30)
    assert results == [200, 200]


# ------------------------------------------------------------------- shutdown
@pytest.mark.parametrize("batching", [False, True])
def test_shutdown_completes_in_flight_requests(ensemble, serve_live, wrap_ensemble, batching):
    delay = 0.25
    slow = wrap_ensemble(ensemble, lambda p, r: time.sleep(delay))
    app = create_app(slow, ServeConfig(batching=batching, max_batch=2, max_wait_ms=1.0))
    n = 5
    results: dict[int, tuple] = {}

    def call(i, url):
        try:
            r = httpx.post(f"{url}/get_reward", json={"query": [f"item {i}: good"]}, timeout=60)
            results[i] = (r.status_code, r.json())
        except Exception as e:
            results[i] = ("error", repr(e))

    with serve_live(app) as live:
        threads = [threading.Thread(target=call, args=(i, live.url)) for i in range(n)]
        for t in threads:
            t.start()
        batcher = app.state.batcher
        _wait_for(lambda: batcher.pending == n, what="every request to be in flight")
        live.server.should_exit = True  # what SIGINT/SIGTERM does
        live.thread.join(30)
        assert not live.thread.is_alive()
        for t in threads:
            t.join(30)
        with pytest.raises(httpx.ConnectError):  # the server is gone
            httpx.get(f"{live.url}/health", timeout=5)
    assert sorted(results) == list(range(n))
    for i in range(n):
        status, body = results[i]
        assert status == 200, (i, body)
        assert len(body["rewards"]) == 1 and np.isfinite(body["rewards"][0])
    assert batcher.stats.requests == n
    assert not batcher.running
