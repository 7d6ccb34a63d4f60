"""The world's corpus: short English items, cleaned, deduplicated and partitioned.

Default source: Debian's ``fortunes`` package (BSD; quotations and aphorisms), split on
lines holding only ``%``. The offensive set (any ``off`` directory) and non-prose
categories (ASCII art, code, non-English) are skipped. ``--corpus PATH`` accepts any
text file (items separated by ``%`` lines if it has any, otherwise by blank lines) or a
directory of such files.

Cleaning: trailing attribution lines ("-- Author") are dropped, whitespace is collapsed
to single spaces, items outside ``[min_words, max_words]`` or with under 60% letters
are dropped, and case-insensitive duplicates are removed.

Partitions are assigned by a stable hash of the cleaned text, so they do not depend on
file order: ``val`` (perplexity), ``pref_train`` / ``pref_heldout`` (preference
prompts), ``eval`` (best-of-n / RL prompts) and ``pretrain`` (the rest). Prompt items
are never seen in pretraining.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from .config import CorpusConfig

logger = logging.getLogger(__name__)

SPLITS = ("pretrain", "val", "pref_train", "pref_heldout", "eval")

INSTALL_HINT = (
    "the built-in world's corpus is missing: install Debian's fortunes as root with "
    "`apt-get update && apt-get install -y fortunes` (or `make corpus`), "
    "or pass --corpus PATH with any text file"
)

_ATTRIBUTION = re.compile(r"^\s*(--|\u2014)\s*\S")


class CorpusNotFoundError(FileNotFoundError):
    """The corpus source does not exist; the message says how to install it."""


@dataclass(frozen=True)
class CorpusItem:
    """One cleaned corpus item."""

    id: str
    text: str
    split: str
    source: str


def _text_hash(text: str, salt: str = "") -> str:
    return hashlib.sha256((salt + text).encode()).hexdigest()


def _unit(text: str, salt: str) -> float:
    return int(_text_hash(text, salt)[:13], 16) / 16**13


def source_files(config: CorpusConfig) -> list[Path]:
    """The files the corpus is read from, in a stable order.

    Raises:
        CorpusNotFoundError: if the source is missing or holds no usable file.
    """
    if config.path is not None:
        root = Path(config.path).expanduser()
        if not root.exists():
            raise CorpusNotFoundError(f"corpus file {root} does not exist; {INSTALL_HINT}")
    else:
        root = Path(config.fortunes_dir)
        if not root.is_dir():
            raise CorpusNotFoundError(f"{root} not found; {INSTALL_HINT}")
    if root.is_file():
        return [root]
    files = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or p.is_symlink() or p.suffix in (".dat", ".u8"):
            continue
        if "off" in rel.parts[:-1] or p.name in config.exclude_categories:
            continue
        files.append(p)
    if not files:
        raise CorpusNotFoundError(f"no corpus files under {root}; {INSTALL_HINT}")
    return files


def fingerprint(config: CorpusConfig) -> list[list[str | int]]:
    """(relative name, size, sha256) of every source file: part of the corpus cache key."""
    files = source_files(config)
    base = files[0].parent if len(files) == 1 else Path(config.path or config.fortunes_dir)
    return [[p.relative_to(base).as_posix(), p.stat().st_size,
             hashlib.sha256(p.read_bytes()).hexdigest()[:16]] for p in files]


def split_items(raw: str) -> list[str]:
    """Split a text into raw items: on ``%`` lines if any, else on blank lines."""
    raw = raw.replace("\r\n", "\n")
    if any(line.strip() == "%" for line in raw.split("\n")):
        chunks = re.split(r"\n%[ \t]*\n", "\n" + raw + "\n")
    else:
        chunks = re.split(r"\n[ \t]*\n", raw)
    return [c for c in (c.strip("\n") for c in chunks) if c.strip() and c.strip() != "%"]


def clean_item(raw: str, *, strip_attribution: bool = True) -> str:
    """Drop attribution lines and collapse whitespace."""
    lines = raw.split("\n")
    if strip_attribution:
        for i, line in enumerate(lines):
            if i > 0 and _ATTRIBUTION.match(line):
                lines = lines[:i]
                break
    return " ".join(" ".join(lines).split())


def _acceptable(text: str, config: CorpusConfig) -> bool:
    words = text.split()
    if not config.min_words <= len(words) <= config.max_words:
        return False
    letters = sum(ch.isalpha() for ch in text)
    return letters >= 0.6 * len(text.replace(" ", ""))


def assign_split(text: str, config: CorpusConfig) -> str:
    """Partition of an item, from a stable hash of its text."""
    u = _unit(text, "split")
    edges = (
        ("val", config.val_fraction),
        ("pref_train", config.pref_train_fraction),
        ("pref_heldout", config.pref_heldout_fraction),
        ("eval", config.eval_fraction),
    )
    acc = 0.0
    for name, frac in edges:
        acc += frac
        if u < acc:
            return name
    return "pretrain"


def load_corpus(config: CorpusConfig) -> list[CorpusItem]:
    """Read, clean, deduplicate and partition the corpus.

    Returns:
        Items sorted by id (a hash), so the order is independent of the source files.

    Raises:
        CorpusNotFoundError: if the source is missing.
    """
    files = source_files(config)
    seen: set[str] = set()
    items: list[CorpusItem] = []
    dropped = 0
    for path in files:
        raw = path.read_text(encoding="utf-8", errors="replace")
        for chunk in split_items(raw):
            text = clean_item(chunk, strip_attribution=config.strip_attribution)
            norm = text.lower()
            if not _acceptable(text, config) or norm in seen:
                dropped += 1
                continue
            seen.add(norm)
            items.append(CorpusItem(id=_text_hash(text)[:16], text=text,
                                    split=assign_split(text, config), source=path.name))
    if config.max_items is not None and len(items) > config.max_items:
        items = sorted(items, key=lambda it: _text_hash(it.text, "subset"))[: config.max_items]
    items.sort(key=lambda it: it.id)
    if not items:
        raise CorpusNotFoundError(f"the corpus source yielded no usable items; {INSTALL_HINT}")
    logger.info("corpus: %d items kept, %d dropped, from %d files", len(items), dropped, len(files))
    return items


def write_corpus(items: list[CorpusItem], path: Path) -> None:
    """Write items as JSONL rows ``{id, text, split, source}``."""
    with open(path, "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps({"id": it.id, "text": it.text, "split": it.split,
                                "source": it.source}, ensure_ascii=False) + "\n")


def read_corpus(path: Path) -> list[CorpusItem]:
    """Read items written by :func:`write_corpus`."""
    with open(path, encoding="utf-8") as f:
        return [CorpusItem(**json.loads(line)) for line in f if line.strip()]
