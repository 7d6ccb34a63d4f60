"""Tiny models built locally, for tests, demos and smoke runs (nothing is downloaded).

A byte-level BPE tokenizer trained in memory on a few sentences, and GPT-2 backbones
of a few thousand parameters (2 layers, d=32) initialized with a given seed: two
seeds give a pretrain-seed pair in miniature.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

DEFAULT_TEXT = [
    "the quick brown fox jumps over the lazy dog",
    "good great happy wonderful kind bright warm",
    "bad awful sad terrible cruel dark cold",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "0 1 2 3 4 5 6 7 8 9 . , ! ? ' \" - : ;",
]


def build_tokenizer(texts: Iterable[str] = DEFAULT_TEXT, vocab_size: int = 320):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with ``<|endoftext|>`` (EOS/BOS) and
    ``<|pad|>`` (PAD) tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|pad|>",
        model_max_length=1024,
    )


def build_backbone(tokenizer, seed: int, n_layer: int = 2, n_embd: int = 32, n_head: int = 2, n_positions: int = 256):
    """A randomly initialized ``GPT2LMHeadModel`` (seeded), pad/eos ids set from the tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    return model


def save_backbone(model, tokenizer, path: str | Path) -> Path:
    """Save a backbone and its tokenizer as a standard HF directory (safetensors)."""
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_saved_backbones(root: str | Path, seeds: Iterable[int], **kwargs) -> list[Path]:
    """Build, save and return the paths of one tiny backbone per seed (shared tokenizer)."""
    tok = build_tokenizer()
    return [save_backbone(build_backbone(tok, s, **kwargs), tok, Path(root) / f"backbone_seed{s}") for s in seeds]


POSITIVE = ("good", "great", "happy", "wonderful", "kind", "bright", "warm")
NEGATIVE = ("bad", "awful", "sad", "terrible", "cruel", "dark", "cold")


def rule_labelled_pairs(n: int, seed: int = 0):
    """Preference pairs whose label follows a known rule: the response with more
    positive than negative words wins. Prompts are distinct (``item {i}: ``); each
    response mixes both word sets so the rule must be counted, not just detected."""
    import random

    from rewardherd.data import PreferencePair, make_pair_id

    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        prompt = f"item {i}: "
        k = rng.randint(3, 6)
        # chosen: majority positive; rejected: majority negative
        n_pos = rng.randint(k // 2 + 1, k)
        c_words = [rng.choice(POSITIVE) for _ in range(n_pos)] + [rng.choice(NEGATIVE) for _ in range(k - n_pos)]
        n_neg = rng.randint(k // 2 + 1, k)
        r_words = [rng.choice(NEGATIVE) for _ in range(n_neg)] + [rng.choice(POSITIVE) for _ in range(k - n_neg)]
        rng.shuffle(c_words)
        rng.shuffle(r_words)
        chosen, rejected = " ".join(c_words), " ".join(r_words)
        pairs.append(PreferencePair(id=make_pair_id(prompt, chosen, rejected), prompt=prompt, chosen=chosen,
                                    rejected=rejected))
    return pairs


def rule_gold(prompts, responses):
    """A gold reward for tiny test worlds: positive minus negative words, minus a length
    penalty beyond 6 words (so longer is not always better). ``module:function`` target."""
    import numpy as np

    out = []
    for r in responses:
        words = r.split()
        score = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
        out.append(score - 0.5 * max(0, len(words) - 6))
    return np.asarray(out, dtype=np.float64)
