"""Fixtures for rewardherd.serve tests: a tiny saved ensemble and live uvicorn servers.

Serving does not need trained members, so the ensemble is untrained: one tiny GPT-2
backbone with a differently seeded score head per member, saved as a normal ensemble
directory (with standardization statistics) and loaded through Ensemble.load.
Servers bind 127.0.0.1 on a port the OS picks; nothing leaves loopback.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import torch

from rewardherd.models import Ensemble, Manifest, Member, MemberInfo
from rewardherd.models.tiny import build_saved_backbones

N_MEMBERS = 3
PROMPTS = ["item 1: ", "item 2: ", "item 3: ", "item 4: "]
RESPONSES = ["good happy kind", "bad awful sad", "the quick brown fox", "warm"]


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread():
    """One intra-op thread: tiny models run faster, and client threads in the same
    process do not oversubscribe a 2-core machine. Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build_member(backbone, i: int) -> Member:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    tok = AutoTokenizer.from_pretrained(backbone)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "score.weight newly initialized" is expected
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(200 + i)  # the score head is what differs between members
            model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tok.pad_token_id
    model.eval()
    info = MemberInfo(name=f"member_{i}", path=f"member_{i}", backbone=str(backbone), finetune_seed=i,
                      pretrain_seed=0, heldout_accuracy=0.5, n_heldout_pairs=20)
    return Member(info, model, tok)


@pytest.fixture(scope="session")
def ensemble_dir(tmp_path_factory):
    """A saved, untrained 3-member ensemble whose statistics come from scoring a few texts."""
    from rewardherd import core

    root = tmp_path_factory.mktemp("serve")
    (backbone,) = build_saved_backbones(root, [0])
    members = [build_member(backbone, i) for i in range(N_MEMBERS)]
    ens = Ensemble(members, Manifest(kind="finetune", members=[m.info for m in members], max_length=64))
    raw = ens.score(PROMPTS * 2, RESPONSES + RESPONSES[::-1])
    mean, std = core.member_statistics(raw)
    for m, mu, sd in zip(members, mean, std, strict=True):
        m.info.standardization = {"mean": float(mu), "std": float(sd), "n": raw.shape[1]}
    return ens.save(root / "ens")


@pytest.fixture(scope="session")
def ensemble(ensemble_dir):
    """The shared loaded ensemble; tests must not mutate it."""
    return Ensemble.load(ensemble_dir)


class WrappedEnsemble:
    """An Ensemble whose ``score`` first calls ``before(prompts, responses)`` (to slow
    it down, block it or count calls); everything else is the wrapped ensemble's."""

    def __init__(self, inner: Ensemble, before):
        self._inner = inner
        self._before = before

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __len__(self) -> int:
        return len(self._inner)

    def score(self, prompts, responses, **kwargs):
        self._before(prompts, responses)
        return self._inner.score(prompts, responses, **kwargs)


@dataclass
class LiveServer:
    url: str
    server: object  # uvicorn.Server
    thread: threading.Thread


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app, *, graceful_timeout: float = 20.0):
    """Run ``app`` under a real uvicorn server in a thread on 127.0.0.1 (random port)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=graceful_timeout)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn-test")
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield LiveServer(f"http://127.0.0.1:{port}", server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture(scope="session")
def serve_live():
    """The :func:`live_server` context manager (conftest helpers reach tests as fixtures)."""
    return live_server


@pytest.fixture(scope="session")
def wrap_ensemble():
    """The :class:`WrappedEnsemble` factory: ``wrap_ensemble(inner, before)``."""
    return WrappedEnsemble
