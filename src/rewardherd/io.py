"""Atomic writes of result files (write a temporary sibling, then rename it into place,
so a killed run never leaves a half-written table or record behind), and the one
file checksum every cache and manifest uses."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: str | Path, write) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """JSON (indented, non-JSON values via ``str``)."""
    return write_atomic(Path(path), lambda t: t.write_text(json.dumps(obj, indent=2, default=str) + "\n"))


#: Table formats by suffix: what :func:`write_table_atomic` writes.
TABLE_SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}


def table_format(path: str | Path) -> str:
    """``parquet``, ``csv`` or ``jsonl`` from the suffix; ValueError for any other suffix."""
    path = Path(path)
    fmt = TABLE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported output suffix {path.suffix!r}; use .jsonl or .json (JSON lines), "
                         ".csv or .parquet")
    return fmt


def write_table_atomic(df, path: str | Path) -> Path:
    """A pandas DataFrame as Parquet (``.parquet``), CSV (``.csv``) or JSON lines
    (``.jsonl``, ``.json``, ``.ndjson``); any other suffix is a ValueError."""
    path = Path(path)
    fmt = table_format(path)
    if fmt == "parquet":
        return write_atomic(path, lambda t: df.to_parquet(t, index=False))
    if fmt == "csv":
        return write_atomic(path, lambda t: df.to_csv(t, index=False))
    return write_atomic(path, lambda t: df.to_json(t, orient="records", lines=True))


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
