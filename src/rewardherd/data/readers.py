"""Raw row readers for preference files: JSONL, CSV, Parquet, ``datasets`` directories.

Each reader yields ``(location, row)`` with ``row`` a plain dict; the location is a
1-based line for JSONL/CSV and a 0-based row index for Parquet/datasets (see
:func:`detect_format`). Readers only parse; :mod:`rewardherd.data.validation` checks
fields. Unparseable input raises :class:`PreferenceDataError` at once.

CSV cells are always strings: ``margin`` is parsed as a float and an empty ``id`` or
``margin`` cell means "absent". CSV holds plain-text pairs only; a cell that looks
like JSON is kept as text, never reinterpreted as a conversation.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from rewardherd.data.schema import LocationUnit, PreferenceDataError

Format = Literal["jsonl", "csv", "parquet", "dataset"]

_SUFFIXES: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def detect_format(path: Path) -> Format:
    """The reader for ``path`` by suffix, or ``"dataset"`` for a ``datasets``
    ``save_to_disk`` directory; FileNotFoundError or ValueError otherwise."""
    if not path.exists():
        raise FileNotFoundError(f"preference data not found: {path}")
    if path.is_dir():
        markers = ("state.json", "dataset_info.json", "dataset_dict.json")
        if not any((path / m).is_file() for m in markers):
            raise ValueError(
                f"{path}: directory is not a `datasets` save_to_disk output "
                "(no state.json / dataset_dict.json)"
            )
        return "dataset"
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        supported = ", ".join(sorted(_SUFFIXES))
        raise ValueError(
            f"{path}: unsupported file type {path.suffix!r}; expected one of {supported} "
            "or a `datasets` save_to_disk directory"
        )
    return fmt


def location_unit(fmt: Format) -> LocationUnit:
    """Return ``"line"`` for line-based formats, ``"row"`` for tabular ones."""
    return "line" if fmt in ("jsonl", "csv") else "row"


def iter_rows(path: Path, fmt: Format) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(location, row)`` for every record of ``path``."""
    readers = {
        "jsonl": _iter_jsonl,
        "csv": _iter_csv,
        "parquet": _iter_parquet,
        "dataset": _iter_dataset,
    }
    return readers[fmt](path)


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise PreferenceDataError(
                    f"not valid UTF-8 ({e.reason})", path=str(path), line=lineno
                ) from e
            if lineno == 1:
                text = text.removeprefix("\ufeff")
            if not text.strip():
                continue  # blank lines (e.g. a trailing newline) are not records
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise PreferenceDataError(
                    f"invalid JSON: {e.msg} (column {e.colno})", path=str(path), line=lineno
                ) from e
            except RecursionError:
                raise PreferenceDataError(
                    "invalid row: JSON nested too deeply", path=str(path), line=lineno
                ) from None
            if not isinstance(obj, dict):
                raise PreferenceDataError(
                    f"expected a JSON object, got {type(obj).__name__}", path=str(path), line=lineno
                )
            yield lineno, obj


def _iter_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    # The stdlib reader (not pandas) keeps exact physical line numbers, also for quoted
    # cells that span lines, and never turns text such as "NA" into NaN.
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        # strict: a stray quote or an unclosed one is an error, never a silently merged cell
        reader = csv.reader(f, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise PreferenceDataError(f"invalid CSV header: {e}", path=str(path), line=1) from e
        except UnicodeDecodeError as e:
            raise PreferenceDataError(f"not valid UTF-8 ({e.reason})", path=str(path), line=1) from None
        header = [h.strip() for h in header]
        prev_end = reader.line_num
        while True:
            start = prev_end + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                detail = (
                    "unclosed quote: a quoted cell starting in this record is never closed "
                    "(reached the end of the file)"
                    if "unexpected end of data" in str(e)
                    else str(e)
                )
                raise PreferenceDataError(f"invalid CSV: {detail}", path=str(path), line=start) from e
            except UnicodeDecodeError as e:
                raise PreferenceDataError(
                    f"not valid UTF-8 ({e.reason})", path=str(path), line=start
                ) from None
            prev_end = reader.line_num
            if not cells:
                continue  # blank line
            if len(cells) > len(header):
                raise PreferenceDataError(
                    f"expected {len(header)} cells (header), got {len(cells)}",
                    path=str(path),
                    line=start,
                )
            # Short rows leave trailing columns absent, reported as missing fields.
            row: dict[str, Any] = dict(zip(header, cells, strict=False))
            for name in ("id", "margin"):
                if row.get(name) == "":
                    row[name] = None
            if isinstance(row.get("margin"), str):
                row["margin"] = _parse_csv_margin(row["margin"], path, start)
            yield start, row


def _parse_csv_margin(value: str, path: Path, line: int) -> float:
    try:
        margin = float(value)
    except ValueError:
        raise PreferenceDataError(
            f"expected a number, got {value[:40]!r}", path=str(path), line=line, field="margin"
        ) from None
    if not math.isfinite(margin):
        raise PreferenceDataError(
            f"expected a finite number, got {value!r}", path=str(path), line=line, field="margin"
        )
    return margin


def _iter_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    try:
        parquet_file = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ... for corrupt files
        raise PreferenceDataError(f"cannot read Parquet: {e}", path=str(path)) from e
    index = 0
    for batch in parquet_file.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            yield index, row
            index += 1


def _iter_dataset(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # a bad state.json / dataset_info.json / arrow file raises anything
        raise PreferenceDataError(
            f"cannot read `datasets` directory: {type(e).__name__}: {e}"[:500], path=str(path)
        ) from None
    if isinstance(ds, datasets.DatasetDict):
        splits = list(ds)
        if len(splits) != 1:
            raise ValueError(
                f"{path}: a DatasetDict with splits {splits}; pass one split's directory, "
                f"e.g. {path / splits[0]}"
            )
        ds = ds[splits[0]]
    for index, row in enumerate(ds):
        yield index, dict(row)
