"""Preference-pair schema: the pair record, the load report and the data error.

A pair follows TRL's explicit-prompt convention: ``prompt`` + ``chosen`` /
``rejected`` completions, either all plain strings or all conversational (lists of
``{"role", "content"}`` messages). ``id`` is always a string; files may hold int ids,
which are converted, and rows without an id get a stable content hash
(:func:`make_pair_id`).

Locations in errors and reports: ``path:17`` is a 1-based line (JSONL, CSV; for a CSV
record spanning several lines, the line it starts on), ``path: row index 17`` is a
0-based row index (Parquet, ``datasets`` directories), as in ``table[17]``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Literal

Text = str | list[dict[str, Any]]
"""A plain string or a conversation (list of ``{"role": str, "content": str}``)."""

LocationUnit = Literal["line", "row"]

#: Soft problems, skippable with ``skip_invalid=True``; keys of ``LoadReport.skipped``.
SKIP_REASONS = ("empty_text", "chosen_equals_rejected", "duplicate_pair", "duplicate_id")


def canonical_json(value: Any) -> str:
    """Serialize ``value`` to a canonical JSON string (sorted keys, no spaces, UTF-8).

    Used for hashing, so it must never change: ids and splits depend on it.
    """
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def make_pair_id(prompt: Text, chosen: Text, rejected: Text) -> str:
    """The stable content id of a pair: 16 hex chars of the SHA-256 of the canonical JSON
    of ``[prompt, chosen, rejected]`` (not the margin), the same on every machine."""
    payload = canonical_json([prompt, chosen, rejected]).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()[:16]


def format_location(path: str, line: int | None, unit: LocationUnit = "line") -> str:
    """Format ``path:17`` (1-based line) or ``path: row index 17`` (0-based row)."""
    if line is None:
        return str(path)
    if unit == "line":
        return f"{path}:{line}"
    return f"{path}: row index {line}"


class PreferenceDataError(ValueError):
    """A preference file holds a row that cannot be loaded.

    The message reads like ``data.jsonl:17: field 'chosen': expected a string or a list of
    messages, got int``; ``detail`` is the message without the location. ``line`` is a
    1-based line (``unit="line"``: JSONL/CSV) or a 0-based row index (``"row"``:
    Parquet/dataset), None for a file-level problem; ``field`` is None for a row-level
    problem; ``reason`` is one of :data:`SKIP_REASONS` for a soft problem, else None."""

    def __init__(
        self,
        detail: str,
        *,
        path: str,
        line: int | None = None,
        field: str | None = None,
        unit: LocationUnit = "line",
        reason: str | None = None,
    ) -> None:
        self.detail = detail
        self.path = str(path)
        self.line = line
        self.field = field
        self.unit = unit
        self.reason = reason
        field_part = f"field '{field}': " if field is not None else ""
        super().__init__(f"{format_location(self.path, line, unit)}: {field_part}{detail}")

    def __reduce__(self):
        # Keyword-only __init__ breaks default exception pickling (Ray ships errors
        # between processes), so rebuild from the attributes.
        kwargs = dict(
            path=self.path, line=self.line, field=self.field, unit=self.unit, reason=self.reason
        )
        return (_rebuild_error, (self.detail, kwargs))


def _rebuild_error(detail: str, kwargs: dict[str, Any]) -> PreferenceDataError:
    return PreferenceDataError(detail, **kwargs)


def _check_text_type(name: str, value: Any) -> None:
    if isinstance(value, str):
        return
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        return
    raise TypeError(f"PreferencePair.{name} must be a str or a list of message dicts")


@dataclass(frozen=True)
class PreferencePair:
    """One preference pair: ``chosen`` is preferred over ``rejected`` given ``prompt``.

    ``id`` is a file's id or :func:`make_pair_id` of the content; ``prompt`` may be empty
    ("" or []) when an implicit-prompt row has no common prefix; ``margin`` is an optional
    preference strength passed to TRL. Functions in ``rewardherd.data`` return new pairs
    and never modify the message lists of their inputs."""

    id: str
    prompt: Text
    chosen: Text
    rejected: Text
    margin: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or self.id == "":
            raise TypeError(f"PreferencePair.id must be a non-empty str, got {self.id!r}")
        for name in ("prompt", "chosen", "rejected"):
            _check_text_type(name, getattr(self, name))
        kinds = {isinstance(getattr(self, n), list) for n in ("prompt", "chosen", "rejected")}
        if len(kinds) != 1:
            raise TypeError(
                f"PreferencePair {self.id}: prompt, chosen and rejected must all be strings "
                "or all be message lists"
            )
        if self.margin is not None and (
            isinstance(self.margin, bool)
            or not isinstance(self.margin, Real)
            or not math.isfinite(self.margin)
        ):
            raise TypeError(
                f"PreferencePair.margin must be a finite float or None, got {self.margin!r}"
            )

    @property
    def is_conversational(self) -> bool:
        """Whether the pair holds message lists rather than plain strings."""
        return isinstance(self.chosen, list)


@dataclass
class LoadReport:
    """What :func:`load_preferences` read, skipped and noticed: rows read (JSONL blank
    lines are not rows) and loaded, skipped rows per reason (non-zero only) with the first
    few as examples, warnings, and over-long counts (only when a length limit was given)."""

    path: str
    n_read: int = 0
    n_loaded: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    too_long: dict[str, int] = field(default_factory=dict)

    @property
    def n_skipped(self) -> int:
        """Total number of skipped rows."""
        return sum(self.skipped.values())

    def summary(self) -> str:
        """Return a multi-line, human-readable summary of the load."""
        lines = [f"{self.path}: loaded {self.n_loaded} of {self.n_read} rows"]
        if self.skipped:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items()))
            lines.append(f"skipped {self.n_skipped} ({reasons})")
            lines.extend(f"  e.g. {example}" for example in self.examples)
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)
