"""Helpers every member format shares: the default device, quiet transformers loads,
and loading one standalone HF member.

Standalone (``hf``), multi-head and LoRA members all use these, so the format modules
(:mod:`~rewardherd.models.multihead`, :mod:`~rewardherd.models.lora`) and
:mod:`~rewardherd.models.ensemble` import this module and not each other.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch

from rewardherd.models.formatting import pad_token_id
from rewardherd.models.manifest import ManifestError


def default_device() -> torch.device:
    """cuda when available, else cpu."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


def load_member_model(path: str | Path, *, device=None, dtype=torch.float32, trust_remote_code: bool = False):
    """Load one member (safetensors only) and its tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(path)
    if not any(path.glob("*.safetensors")):
        raise ManifestError(f"{path}: no .safetensors weights (rewardherd never loads pickled weights)")
    model = AutoModelForSequenceClassification.from_pretrained(
        path, use_safetensors=True, trust_remote_code=trust_remote_code, dtype=dtype
    )
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad_token_id(tokenizer)
    model.eval().to(device or default_device())
    return model, tokenizer
