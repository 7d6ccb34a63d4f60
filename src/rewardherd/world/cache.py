"""A content-keyed artifact cache: build once, rename into place, verify on reuse.

Layout: ``<cache_dir>/<kind>/<key>/`` holds the artifact's files plus ``_COMPLETE.json``
(the key, the key dict that produced it, and the size and SHA-256 of every file).
``key`` is a hash of the canonical JSON of the key dict, which callers build from the
config section that produced the artifact *and the keys of its upstream artifacts*,
so a change anywhere upstream changes every downstream key and nothing else.

Writes are atomic: an artifact is built in a temporary sibling directory, its marker
is written last, and the directory is renamed into place. An entry without a marker,
or whose files do not match the marker, is treated as partial or corrupt: it is
moved aside and rebuilt. A per-key lock file (``fcntl.flock``) makes concurrent
builders of the same key (e.g. Ray workers) wait for one another instead of racing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rewardherd.io import atomic_dir, file_sha256

logger = logging.getLogger(__name__)

MARKER = "_COMPLETE.json"
CACHE_FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """``$REWARDHERD_CACHE`` if set, else ``~/.cache/rewardherd``."""
    env = os.environ.get("REWARDHERD_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/rewardherd").expanduser()


def _canonical(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, list | tuple):
        return [_canonical(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and math.isfinite(obj) and obj == int(obj) and abs(obj) < 2**53:
        # 1.0 and 1 hash alike, so a YAML "1" does not invalidate a cached "1.0".
        return int(obj)
    return obj


def hash_key(key_dict: dict[str, Any], length: int = 16) -> str:
    """Stable hex digest of a JSON-serializable dict (order-insensitive)."""
    blob = json.dumps(_canonical(key_dict), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def _manifest(root: Path) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != MARKER:
            files[p.relative_to(root).as_posix()] = {"size": p.stat().st_size,
                                                     "sha256": file_sha256(p)}
    return files


def verify_entry(path: Path, key: str | None = None, *, check_hashes: bool = True) -> bool:
    """Whether ``path`` is a complete, uncorrupted cache entry (with marker key ``key`` if
    given; ``check_hashes=False`` compares sizes only)."""
    marker = path / MARKER
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if key is not None and meta.get("key") != key:
        return False
    for rel, info in meta.get("files", {}).items():
        p = path / rel
        if not p.is_file() or p.stat().st_size != info["size"]:
            return False
        if check_hashes and file_sha256(p) != info["sha256"]:
            return False
    return True


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _discard(path: Path) -> None:
    if path.exists():
        trash = path.with_name(f".trash-{path.name}-{uuid.uuid4().hex[:8]}")
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)


def read_marker(path: Path) -> dict[str, Any]:
    """The ``_COMPLETE.json`` metadata of an entry."""
    return json.loads((path / MARKER).read_text())


def cached_artifact(
    cache_dir: str | os.PathLike[str],
    kind: str,
    key_dict: dict[str, Any],
    build_fn: Callable[[Path], dict[str, Any] | None],
    *,
    force: bool = False,
    check_hashes: bool = True,
) -> Path:
    """The directory ``<cache_dir>/<kind>/<key>`` of an artifact, built first if absent or broken.

    ``key_dict`` is everything the artifact depends on (config section, upstream keys, a
    format version), JSON-serializable. ``build_fn(tmp_dir)`` writes the artifact's files
    into the empty ``tmp_dir`` and may return metadata, stored in the marker under
    ``"meta"``. ``force`` rebuilds a valid entry; ``check_hashes=False`` verifies an
    existing entry by sizes only."""
    key = hash_key({"kind": kind, "cache_format": CACHE_FORMAT_VERSION, **key_dict})
    kind_dir = Path(cache_dir).expanduser() / kind
    final = kind_dir / key
    if not force and verify_entry(final, key, check_hashes=check_hashes):
        logger.debug("cache hit %s/%s", kind, key)
        return final
    with _locked(kind_dir / f".{key}.lock"):
        # Someone else may have finished it while we waited for the lock.
        if not force and verify_entry(final, key, check_hashes=check_hashes):
            return final
        if final.exists():
            logger.warning("cache entry %s is partial or corrupt; rebuilding", final)
            _discard(final)
        t0 = time.perf_counter()
        with atomic_dir(final) as tmp:
            meta = build_fn(tmp)
            marker = {
                "kind": kind,
                "key": key,
                "key_dict": _canonical(key_dict),
                "meta": meta or {},
                "build_seconds": round(time.perf_counter() - t0, 3),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "files": _manifest(tmp),
            }
            (tmp / MARKER).write_text(json.dumps(marker, indent=1, sort_keys=True))
    logger.info("built %s/%s in %.1fs", kind, key, time.perf_counter() - t0)
    return final
