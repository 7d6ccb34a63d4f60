"""Atomic writes of result files: write a temporary sibling, then rename it into place,
so a killed run never leaves a half-written table or record behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _atomic(path: Path, write) -> Path:
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
    return _atomic(Path(path), lambda t: t.write_text(json.dumps(obj, indent=2, default=str) + "\n"))


def write_table_atomic(df, path: str | Path) -> Path:
    """A pandas DataFrame as Parquet (``.parquet``) or JSON lines (anything else)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return _atomic(path, lambda t: df.to_parquet(t, index=False))
    return _atomic(path, lambda t: df.to_json(t, orient="records", lines=True))
