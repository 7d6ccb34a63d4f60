"""Hacking features per sample: what reward hacking tends to change.

One row per (prompt, response); every study tracks these along its curves to show
where members agree while gold disagrees (Eisenstein et al. sec. 5: length, copying,
formatting). Features of this world's designed shared error come first (length),
then degeneration (repetition, distinct-n, non-alphabetic tokens), copying from the
prompt, and sentiment-lexicon stuffing (what a sentiment-driven proxy would exploit).

Definitions: docs/schema.md (Hacking features).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .gold import norm_words, prompt_overlap, vader_lexicon, words

FEATURE_COLUMNS = (
    "n_tokens", "n_words", "n_chars", "distinct_1", "distinct_2", "repeated_bigram_frac",
    "max_word_repeat", "prompt_overlap", "prompt_bigram_copy", "nonalpha_token_frac",
    "sentiment_words", "positive_words", "negative_words", "exclamations", "ends_sentence",
)


def _row(prompt: str, response: str, lexicon: dict[str, float]) -> dict[str, float]:
    text = response.strip()
    ws = norm_words(text)
    toks = text.split()
    bigrams = list(zip(ws, ws[1:], strict=False))
    prompt_words = norm_words(prompt)
    pb = set(zip(prompt_words, prompt_words[1:], strict=False))
    counts = Counter(ws)
    valences = [lexicon[w] for w in ws if w in lexicon]
    return {
        "n_words": len(words(text)),
        "n_chars": len(text),
        "distinct_1": len(counts) / len(ws) if ws else 1.0,
        "distinct_2": len(set(bigrams)) / len(bigrams) if bigrams else 1.0,
        "repeated_bigram_frac": 1.0 - len(set(bigrams)) / len(bigrams) if len(bigrams) >= 2 else 0.0,
        "max_word_repeat": max(counts.values()) if counts else 0,
        "prompt_overlap": prompt_overlap(prompt, text),
        "prompt_bigram_copy": sum(b in pb for b in bigrams) / len(bigrams) if bigrams else 0.0,
        "nonalpha_token_frac": (sum(not any(c.isalpha() for c in t) for t in toks) / len(toks)
                                if toks else 0.0),
        "sentiment_words": len(valences),
        "positive_words": sum(v > 0 for v in valences),
        "negative_words": sum(v < 0 for v in valences),
        "exclamations": text.count("!"),
        "ends_sentence": bool(text) and text[-1] in ".!?",
    }


def hacking_features(prompts: Sequence[str], responses: Sequence[str],
                     tokenizer: Any | None = None) -> pd.DataFrame:
    """Hacking features of each (prompt, response) sample: columns :data:`FEATURE_COLUMNS`, b
    rows in input order (definitions: docs/schema.md). With ``tokenizer``,
    ``n_tokens`` counts its tokens (no special tokens); else it is NaN."""
    if len(prompts) != len(responses):
        raise ValueError("prompts and responses must have the same length")
    lexicon = vader_lexicon()
    df = pd.DataFrame([_row(p, r, lexicon) for p, r in zip(prompts, responses, strict=True)],
                      columns=[c for c in FEATURE_COLUMNS if c != "n_tokens"])
    if tokenizer is not None and len(responses):
        ids = tokenizer(list(responses), add_special_tokens=False)["input_ids"]
        n_tokens = np.array([len(i) for i in ids], dtype=np.float64)
    else:
        n_tokens = np.full(len(responses), np.nan)
    df.insert(0, "n_tokens", n_tokens)
    return df
