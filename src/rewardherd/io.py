"""Atomic writes of result files and directories (write a temporary sibling, then
rename it into place, so a killed run never leaves a half-written table, record or
model directory behind), and the one file checksum every cache and manifest uses."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def write_atomic(path: str | Path, write, *, overwrite: bool = True, fsync: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it into place.

    The temporary file is created with mode 0o666 less the umask, like any file
    ``open`` creates. ``overwrite=False`` never replaces an existing ``path`` (a
    FileExistsError, also when one appears while ``write`` runs); ``fsync=True``
    flushes the bytes to disk before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _move_no_overwrite(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _move_no_overwrite(tmp: Path, path: Path) -> None:
    # link() fails if path appeared meanwhile, so a race cannot overwrite silently.
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it") from None
    except OSError:
        # Filesystems without hard links: check, then rename (a small race window).
        if path.exists():
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(final: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield an empty staging directory next to ``final``; when the block ends without
    an exception, rename it to ``final``. On an exception the staging directory is
    removed and ``final`` is left as it was.

    An existing ``final`` is a FileExistsError unless ``replace=True``; then it is
    renamed aside first and deleted only once the new directory is in place, so a
    crash never loses it (it stays as ``final`` or as a ``.<name>.old-*`` sibling).
    The staging directory is a ``.<name>.tmp-*`` sibling (mode 0o777 less the umask),
    which a killed run leaves behind.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    while True:  # os.mkdir honours the umask, unlike tempfile.mkdtemp's 0o700
        stage = final.with_name(f".{final.name}.tmp-{secrets.token_hex(4)}")
        try:
            os.mkdir(stage)
            break
        except FileExistsError:
            continue
    try:
        yield stage
        if not (final.exists() or final.is_symlink()):
            os.replace(stage, final)
            return
        if not replace:
            raise FileExistsError(f"{final} exists; pass replace=True to replace it")
        old = final.with_name(f".{final.name}.old-{stage.name[-8:]}")
        os.replace(final, old)
        try:
            os.replace(stage, final)
        except BaseException:
            os.replace(old, final)
            raise
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _remove(old)


def _remove(path: Path) -> None:
    """Delete a file or directory tree; a failure only leaves it behind, with a warning."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as e:
        log.warning("could not remove the replaced %s (%s); delete it by hand", path, e.strerror or e)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Text (UTF-8)."""
    return write_atomic(Path(path), lambda t: Path(t).write_text(text, encoding="utf-8"))


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """JSON (indented, non-JSON values via ``str``)."""
    return write_text_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


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
