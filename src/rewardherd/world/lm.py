"""The world's tokenizer and tiny causal LMs (backbones and the base policy).

- Tokenizer: byte-level BPE trained on the pretraining partition, with
  ``<|endoftext|>`` as BOS/EOS (prepended, as items are packed in pretraining) and a
  separate ``<|pad|>``, so sequence-classification heads, which pool the last non-pad
  token, never mistake the EOS that TRL appends for padding.
- LMs: GPT-2, no dropout, tied embeddings, a plain fp32 loop over random windows of the
  packed stream ``<eos> item <eos> item ...`` (items shuffled per seed), AdamW, warmup
  then cosine decay. The seed sets initialization and data order: the pretrain-seed
  axis of Eisenstein et al. (their backbones are T5 checkpoints; ours ~0.3-2M
  parameters pretrained for minutes).

Each saved directory holds the model (safetensors) and the tokenizer, loadable offline.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import LMConfig, TokenizerConfig

logger = logging.getLogger(__name__)

EOS = "<|endoftext|>"
PAD = "<|pad|>"


def train_tokenizer(texts: Sequence[str], config: TokenizerConfig) -> Any:
    """Train a byte-level BPE tokenizer and wrap it for transformers.

    Returns:
        A ``PreTrainedTokenizerFast`` whose ``__call__`` prepends ``<|endoftext|>``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer)
    eos_id = tok.token_to_id(EOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{EOS} $A", pair=f"{EOS} $A {EOS} $B", special_tokens=[(EOS, eos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=PAD,
        model_max_length=1024,
    )


def load_tokenizer(path: str | Path) -> Any:
    """Load a saved tokenizer offline."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (no-op for None)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def pack_items(tokenizer: Any, texts: Sequence[str], seed: int | None) -> np.ndarray:
    """Token stream ``<eos> item <eos> item ...`` with items shuffled by ``seed``.

    Args:
        tokenizer: The world tokenizer (prepends ``<eos>`` itself).
        texts: Items.
        seed: Shuffle seed; None keeps the given order.

    Returns:
        int64 array of shape (total_tokens,).
    """
    order = np.arange(len(texts))
    if seed is not None:
        np.random.default_rng(seed).shuffle(order)
    enc = tokenizer([texts[i] for i in order], add_special_tokens=True)["input_ids"]
    return np.concatenate([np.asarray(ids, dtype=np.int64) for ids in enc])


def make_gpt2(config: LMConfig, tokenizer: Any, seed: int) -> Any:
    """A freshly initialized ``GPT2LMHeadModel`` (initialization seeded by ``seed``)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.block_size,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        summary_first_dropout=0.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(cfg)


def _lr_at(step: int, config: LMConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.lr * config.min_lr_ratio
    return floor + 0.5 * (config.lr - floor) * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate_lm(model: Any, stream: np.ndarray, block_size: int, batch_size: int,
                max_batches: int) -> float:
    """Mean next-token loss (nats) over non-overlapping windows of ``stream``."""
    model.eval()
    n_windows = max(1, (len(stream) - 1) // block_size)
    n_windows = min(n_windows, batch_size * max_batches)
    total, count = 0.0, 0
    for start in range(0, n_windows, batch_size):
        idx = range(start, min(n_windows, start + batch_size))
        x = torch.stack([torch.from_numpy(stream[i * block_size:(i + 1) * block_size])
                         for i in idx])
        out = model(input_ids=x, labels=x)
        n = x.numel() - x.shape[0]
        total += float(out.loss) * n
        count += n
    return total / count


def pretrain_lm(
    config: LMConfig,
    tokenizer: Any,
    train_texts: Sequence[str],
    val_texts: Sequence[str],
    seed: int,
    out_dir: Path,
    *,
    progress: bool = False,
    desc: str = "pretrain",
) -> dict[str, Any]:
    """Pretrain a tiny GPT-2 on ``train_texts`` and save it with the tokenizer to ``out_dir``.

    ``seed`` sets the initialization, the data order and the windows; ``val_texts`` give
    the perplexity. Returns stats: parameters, tokens seen, tokens/s, final train loss,
    val loss and perplexity."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    stream = torch.from_numpy(pack_items(tokenizer, train_texts, seed))
    val_stream = pack_items(tokenizer, val_texts, None)
    if len(stream) <= config.block_size + 1:
        raise ValueError(f"pretraining stream of {len(stream)} tokens is shorter than a block")
    model = make_gpt2(config, tokenizer, seed)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, betas=(0.9, 0.95),
    )
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.arange(config.block_size)
    model.train()
    losses: list[float] = []
    bar = tqdm(range(config.steps), desc=desc, disable=not progress, leave=False)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, config)
        starts = torch.randint(0, len(stream) - config.block_size, (config.batch_size,),
                               generator=gen)
        x = stream[starts[:, None] + offsets]  # (batch, block_size)
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    train_seconds = time.perf_counter() - t0
    val_loss = evaluate_lm(model, val_stream, config.block_size, config.batch_size,
                           config.eval_batches)
    model.eval()
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    tokens = config.steps * config.batch_size * config.block_size
    stats = {
        "seed": seed,
        "n_params": sum(p.numel() for p in model.parameters()),
        "tokens_seen": tokens,
        "stream_tokens": len(stream),
        "epochs": tokens / len(stream),
        "train_seconds": round(train_seconds, 2),
        "tokens_per_second": round(tokens / train_seconds, 1),
        "train_loss_last": float(np.mean(losses[-max(1, len(losses) // 10):])),
        "val_loss": val_loss,
        "val_perplexity": math.exp(val_loss),
    }
    (out_dir / "pretrain_stats.json").write_text(json.dumps(stats, indent=1))
    logger.info("%s: %d params, val ppl %.1f, %.0f tok/s", desc, stats["n_params"],
                stats["val_perplexity"], stats["tokens_per_second"])
    return stats


def load_causal_lm(path: str | Path) -> Any:
    """Load a saved world LM for generation (eval mode, fp32)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path))
    model.eval()
    return model
