"""Helpers every member format shares: the default device, running batches concurrently
on the CPU, quiet transformers loads, the fused GELU, and loading one standalone HF member.

Standalone (``hf``), multi-head and LoRA members all use these, so the format modules
(:mod:`~rewardherd.models.multihead`, :mod:`~rewardherd.models.lora`) and
:mod:`~rewardherd.models.ensemble` import this module and not each other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import torch

from rewardherd.models.formatting import pad_token_id
from rewardherd.models.manifest import ManifestError


def default_device() -> torch.device:
    """cuda when available, else cpu."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_batch_workers(device: torch.device | str = "cpu") -> int:
    """How many batches to run at once (:func:`run_concurrently`): 2 on a CPU with at least
    two intra-op threads, else 1.

    The built-in world's tiny models use a second thread poorly inside one op (attention
    and GELU on a 128 x ~40 x 256 batch gain about 1.6x from it); two batches at once, one
    thread each, score the quick study's pool faster on a 2-core CPU, with bitwise the same
    scores there (``benchmarks/score_dtype.py``). Sampling is not run this way: the
    policy's logits differ in the last bits between one and two threads, which flipped 5
    of 4,096 sampled responses (floating-point ties, see :mod:`rewardherd.policy.sampling`)
    for about 8% less time. Two, not more: that is all this was measured on, and it at most
    doubles the activation memory.
    """
    if torch.device(device).type != "cpu":
        return 1
    return 2 if torch.get_num_threads() >= 2 else 1


def run_concurrently(fn: Callable[[list], None], items: Sequence, workers: int) -> None:
    """``fn(items[i::workers])`` for each i, in ``workers`` threads that share the intra-op
    threads (``workers`` = 1: one call, here). Grad mode is per thread, so ``fn`` sets its
    own (``torch.inference_mode``). Results go wherever ``fn`` writes them; the first
    error is raised."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1; got {workers}")
    workers = min(workers, len(items))
    if workers <= 1:
        fn(list(items))
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // workers))  # read by each new worker thread when it starts
    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(fn, [list(items[i::workers]) for i in range(workers)]))
    finally:
        torch.set_num_threads(threads)


@contextmanager
def quiet_transformers():
    """Silence transformers' load reports (e.g. "score.weight newly initialized",
    which is expected when a head is added to a body)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def fused_gelu(model: torch.nn.Module) -> torch.nn.Module:
    """Swap transformers' ``gelu_new`` modules (GPT-2's tanh GELU, written as seven
    element-wise ops) for its ``GELUTanh`` (the same formula as one fused kernel) in place.

    The two agree to float rounding (transformers documents them as equivalent); on the
    built-in world's tiny GPT-2 members the fused one makes training about 1.5x faster
    (docs/performance.md). The saved config keeps ``gelu_new``. Returns ``model``.
    """
    from transformers.activations import GELUTanh, NewGELUActivation

    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is NewGELUActivation:
                setattr(module, name, GELUTanh())
    return model


def check_config_file(path: Path) -> None:
    """``path/config.json`` must be a JSON object naming a ``model_type``."""
    cfg = path / "config.json"
    try:
        d = json.loads(cfg.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ManifestError(f"{cfg}: not a valid JSON config ({type(e).__name__}: {e})"[:400], file=str(cfg)) from None
    if not isinstance(d, dict) or not isinstance(d.get("model_type"), str):
        raise ManifestError(f"{cfg}: not a Hugging Face model config (expected an object with 'model_type')",
                            file=str(cfg))


def load_member_model(path: str | Path, *, device=None, dtype=torch.float32, trust_remote_code: bool = False):
    """Load one member (safetensors only) and its tokenizer.

    Refuses (:class:`ManifestError`) weights that lack a tensor the model needs, such
    as the score head: transformers would initialize it at random and every load
    would give other scores.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(path)
    if not any(path.glob("*.safetensors")):
        raise ManifestError(f"{path}: no .safetensors weights (rewardherd never loads pickled weights)")
    check_config_file(path)
    with quiet_transformers():  # the missing-weights report is turned into an error below
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, use_safetensors=True, trust_remote_code=trust_remote_code, dtype=dtype, output_loading_info=True
        )
    missing = sorted(info.get("missing_keys") or ())
    mismatched = sorted(str(k[0]) if isinstance(k, tuple) else str(k) for k in info.get("mismatched_keys") or ())
    if missing or mismatched:
        bad = missing or mismatched
        raise ManifestError(
            f"{path}: the weights lack tensor(s) {bad[:5]}{' ...' if len(bad) > 5 else ''}: they would be newly "
            "initialized (random scores on every load); is this a trained reward model?", file=str(path))
    if getattr(model.config, "num_labels", 1) != 1:
        raise ManifestError(f"{path / 'config.json'}: num_labels is {model.config.num_labels}; a member has one "
                            "score (num_labels=1)", file=str(path / "config.json"))
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad_token_id(tokenizer)
    fused_gelu(model).eval().to(device or default_device())
    return model, tokenizer
