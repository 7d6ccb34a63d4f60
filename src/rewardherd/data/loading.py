"""Load and write preference pairs.

``load_preferences`` reads JSONL, CSV, Parquet or a ``datasets`` ``save_to_disk``
directory in TRL's explicit-prompt, implicit-prompt or conversational form, checks
every row (see :mod:`rewardherd.data.validation` for the policy) and returns the pairs
with a :class:`LoadReport`. Nothing is dropped silently: every skipped row is counted
by reason, and over-long sequences are counted but kept.

``write_preferences`` writes the explicit ``id``/``prompt``/``chosen``/``rejected``
(/``margin``) form, atomically.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rewardherd.data.readers import detect_format, iter_rows, location_unit
from rewardherd.data.schema import LoadReport, PreferenceDataError, PreferencePair
from rewardherd.data.validation import (
    KNOWN_FIELDS,
    RowContext,
    SoftChecker,
    count_too_long,
    parse_row,
)
from rewardherd.io import write_atomic

logger = logging.getLogger(__name__)

#: How many skipped rows ``LoadReport.examples`` keeps.
MAX_EXAMPLES = 5


def load_preferences(
    path: str | os.PathLike[str],
    *,
    skip_invalid: bool = False,
    max_chars: int | None = None,
    tokenizer: Any = None,
    max_length: int | None = None,
) -> tuple[list[PreferencePair], LoadReport]:
    """Load and validate preference pairs.

    Accepted rows hold ``chosen`` and ``rejected`` (strings, or lists of
    ``{"role", "content"}`` messages), an optional ``prompt`` (absent: the shared
    prefix becomes the prompt, as TRL's ``extract_prompt``), an optional ``margin``
    (number) and an optional ``id`` (string or int; absent: a content hash). Other
    columns are ignored and named in a warning. All rows of a file must be of one
    kind, plain text or conversational.

    Args:
        path: A ``.jsonl``/``.ndjson``, ``.csv``, ``.parquet``/``.pq`` file, or a
            ``datasets`` ``save_to_disk`` directory (a DatasetDict only if it holds
            one split).
        skip_invalid: Skip (and count) rows with soft problems: empty text,
            chosen identical to rejected, duplicate pair, duplicate id. The first
            occurrence of a duplicate is kept. Structural problems always raise.
        max_chars: Count sequences (prompt + completion) longer than this many
            characters.
        tokenizer: A transformers tokenizer (or ``tokenizers.Tokenizer`` for plain
            text), used with ``max_length``.
        max_length: Count sequences longer than this many tokens.

    Returns:
        ``(pairs, report)`` with pairs in file order.

    Raises:
        PreferenceDataError: A structural problem, or a soft one without
            ``skip_invalid``; the message names file, line/row and field.
        FileNotFoundError: ``path`` does not exist.
        ValueError: Unsupported file type, or inconsistent length options.
    """
    _check_length_options(max_chars, tokenizer, max_length)
    path = Path(path)
    fmt = detect_format(path)
    unit = location_unit(fmt)
    report = LoadReport(path=str(path))
    checker = SoftChecker()
    pairs: list[PreferencePair] = []
    unknown: set[str] = set()
    first_kind: tuple[bool, str] | None = None  # (is_conversational, where)
    for loc, row in iter_rows(path, fmt):
        report.n_read += 1
        ctx = RowContext(path=str(path), line=loc, unit=unit)
        unknown.update(k for k in row if k not in KNOWN_FIELDS)
        parsed = parse_row(row, ctx)
        first_kind = _check_kind(isinstance(parsed.chosen, list), first_kind, ctx)
        try:
            pairs.append(checker.check(parsed, ctx))
        except PreferenceDataError as e:
            _skip_or_raise(e, skip_invalid, report)
    report.n_loaded = len(pairs)
    if unknown:
        report.warnings.append(f"ignored unknown fields: {', '.join(sorted(unknown))}")
    _warn_prompt_in_completions(pairs, report)
    if max_chars is not None or max_length is not None:
        report.too_long, warnings = count_too_long(
            pairs, max_chars=max_chars, tokenizer=tokenizer, max_length=max_length
        )
        report.warnings.extend(warnings)
    if report.skipped or report.warnings:
        logger.warning("%s", report.summary())
    else:
        logger.info("%s", report.summary())
    return pairs, report


def _check_length_options(max_chars: int | None, tokenizer: Any, max_length: int | None) -> None:
    """ValueError unless ``tokenizer`` and ``max_length`` come together and both limits
    are positive ints or None."""
    if (tokenizer is None) != (max_length is None):
        raise ValueError("tokenizer and max_length must be given together")
    for name, limit in (("max_chars", max_chars), ("max_length", max_length)):
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"{name} must be a positive int or None, got {limit!r}")


def _check_kind(
    conversational: bool, first_kind: tuple[bool, str] | None, ctx: RowContext
) -> tuple[bool, str]:
    """The file's ``(is_conversational, where)`` after this row; a row of the other kind
    than the first row is a PreferenceDataError."""
    if first_kind is None:
        return (conversational, ctx.where)
    if conversational != first_kind[0]:
        kinds = ("plain-text", "conversational")
        raise ctx.error(
            f"{kinds[conversational]} row in a file whose first row "
            f"({first_kind[1]}) is {kinds[first_kind[0]]}",
            "chosen",
        )
    return first_kind


def _skip_or_raise(e: PreferenceDataError, skip_invalid: bool, report: LoadReport) -> None:
    """Count a soft problem in ``report`` (with ``skip_invalid``) or re-raise it with a hint."""
    if not skip_invalid:
        raise PreferenceDataError(
            f"{e.detail} (pass skip_invalid=True to skip such rows)",
            path=e.path,
            line=e.line,
            field=e.field,
            unit=e.unit,
            reason=e.reason,
        ) from None
    report.skipped[e.reason] = report.skipped.get(e.reason, 0) + 1
    if len(report.examples) < MAX_EXAMPLES:
        report.examples.append(f"{e} [{e.reason}]")


def _warn_prompt_in_completions(pairs: list[PreferencePair], report: LoadReport) -> None:
    # A common conversion slip: an explicit prompt column *and* completions that still
    # start with it; TRL would then see the prompt twice.
    n = sum(
        1
        for p in pairs
        if isinstance(p.prompt, str)
        and p.prompt.strip()
        and p.chosen.startswith(p.prompt)
        and p.rejected.startswith(p.prompt)
    )
    if n > 0:
        report.warnings.append(
            f"{n} of {len(pairs)} pairs have chosen and rejected that both start with the "
            "prompt; the prompt may be duplicated (drop the 'prompt' field to use the "
            "implicit-prompt form)"
        )


def _pair_record(pair: PreferencePair) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": pair.id,
        "prompt": pair.prompt,
        "chosen": pair.chosen,
        "rejected": pair.rejected,
    }
    if pair.margin is not None:
        record["margin"] = pair.margin
    return record


def write_preferences(
    pairs: Iterable[PreferencePair],
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Write pairs (all plain text or all conversational) atomically in the explicit
    ``id``/``prompt``/``chosen``/``rejected`` form: JSONL (``.jsonl``) or Parquet
    (``.parquet``/``.pq``) by suffix. ``margin`` is written only where set (JSONL) or as
    a nullable column when any pair has one (Parquet). An existing ``path`` is a
    FileExistsError unless ``overwrite``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".parquet", ".pq"):
        raise ValueError(f"{path}: write_preferences supports .jsonl and .parquet, got {suffix!r}")
    pairs = list(pairs)
    if len({p.is_conversational for p in pairs}) > 1:
        raise ValueError("cannot write a mix of plain-text and conversational pairs")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    records = [_pair_record(p) for p in pairs]

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            if suffix == ".jsonl":
                _write_jsonl(records, f)
            else:
                _write_parquet(records, f)

    write_atomic(path, write, overwrite=overwrite, fsync=True)
    logger.info("wrote %d pairs to %s", len(pairs), path)
    return path


def _write_jsonl(records: Sequence[dict[str, Any]], f: Any) -> None:
    for record in records:
        # Insertion order (id, prompt, chosen, rejected, margin) reads best by eye.
        f.write(json.dumps(record, ensure_ascii=False).encode("utf-8"))
        f.write(b"\n")


def _write_parquet(records: Sequence[dict[str, Any]], f: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {
        name: [r[name] for r in records] for name in ("id", "prompt", "chosen", "rejected")
    }
    if any("margin" in r for r in records):
        columns["margin"] = [r.get("margin") for r in records]
    if records:
        table = pa.Table.from_pydict(columns)
    else:
        text = pa.string()
        table = pa.table({name: pa.array([], type=text) for name in columns})
    pq.write_table(table, f)
