"""Row validation: field types, implicit-prompt extraction, soft checks, lengths.

Two classes of problems (policy from the data issue):

- structural (bad JSON, missing field, wrong type, mixed plain/conversational rows):
  always raise :class:`PreferenceDataError`;
- soft (empty text, chosen == rejected, duplicate pair, duplicate id): raise by
  default, or are skipped and counted with ``skip_invalid=True``.

Over-long sequences are neither: they are counted and reported, never dropped.

Implicit-prompt rows (``chosen``/``rejected`` only) are split like TRL's
``extract_prompt``: the prompt is the longest common prefix (of characters, or of
whole messages), and a space just before the point where the texts diverge stays
with the completions (``"Q: hi A: yes"``/``"Q: hi A: no"`` gives prompt
``"Q: hi A:"``). Unlike TRL, when one text is a prefix of the other the whole of it
is the prompt (TRL keeps back its last character), so that completion is empty and
reported as ``empty_text``; with no common prefix the prompt is ``""`` (or ``[]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rewardherd.data.schema import (
    LocationUnit,
    PreferenceDataError,
    PreferencePair,
    Text,
    canonical_json,
    format_location,
    make_pair_id,
)

KNOWN_FIELDS = frozenset({"id", "prompt", "chosen", "rejected", "margin"})


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


@dataclass(frozen=True)
class RowContext:
    """Where a row came from, for error messages."""

    path: str
    line: int
    unit: LocationUnit

    def error(self, detail: str, field: str | None = None, reason: str | None = None):
        """Build a :class:`PreferenceDataError` located at this row."""
        return PreferenceDataError(
            detail, path=self.path, line=self.line, field=field, unit=self.unit, reason=reason
        )

    @property
    def where(self) -> str:
        """``path:line`` or ``path: row index i``."""
        return format_location(self.path, self.line, self.unit)


def check_unicode(value: str, where: str, field: str, ctx: RowContext) -> None:
    """Refuse strings no tokenizer can encode: lone UTF-16 surrogates, which JSON's
    ``\\ud800`` escapes produce."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ctx.error(
            f"{where}invalid Unicode: lone surrogate {value[e.start]!r} at character {e.start}", field
        ) from None


def _parse_text(value: Any, field: str, ctx: RowContext) -> Text:
    if isinstance(value, str):
        check_unicode(value, "", field, ctx)
        return value
    if isinstance(value, list | tuple):
        messages = []
        for i, message in enumerate(value):
            if not isinstance(message, dict):
                raise ctx.error(
                    f"message index {i}: expected an object with 'role' and 'content', "
                    f"got {_type_name(message)}",
                    field,
                )
            # Parquet/datasets fill keys absent from a message with null; drop them so
            # that a write/load round trip gives back the same messages.
            message = {k: v for k, v in message.items() if v is not None}
            for key in ("role", "content"):
                if key not in message:
                    raise ctx.error(f"message index {i}: missing key '{key}'", field)
                if not isinstance(message[key], str):
                    raise ctx.error(
                        f"message index {i}: key '{key}': expected a string, "
                        f"got {_type_name(message[key])}",
                        field,
                    )
                check_unicode(message[key], f"message index {i}: key '{key}': ", field, ctx)
            messages.append(message)
        return messages
    raise ctx.error(f"expected a string or a list of messages, got {_type_name(value)}", field)


def _parse_margin(value: Any, ctx: RowContext) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ctx.error(f"expected a number, got {_type_name(value)}", "margin")
    if not math.isfinite(value):
        raise ctx.error(f"expected a finite number, got {value}", "margin")
    return float(value)


def _parse_id(value: Any, ctx: RowContext) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ctx.error(f"expected a string or an int, got {_type_name(value)}", "id")
    if isinstance(value, str) and not value.strip():
        raise ctx.error("expected a non-empty string or an int, got an empty string", "id")
    if isinstance(value, str):
        check_unicode(value, "", "id", ctx)
    return str(value)


def common_prefix_length(a: Text, b: Text) -> int:
    """Number of leading characters (strings) or messages (conversations) shared."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def extract_prompt(chosen: Text, rejected: Text) -> tuple[Text, Text, Text]:
    """Split an implicit-prompt pair into ``(prompt, chosen, rejected)``.

    See the module docstring for how this matches and departs from TRL.
    """
    n = common_prefix_length(chosen, rejected)
    if isinstance(chosen, str) and n > 0 and chosen[n - 1] == " ":
        n -= 1  # keep the separating space with the completions, as TRL does
    return chosen[:n], chosen[n:], rejected[n:]


@dataclass(frozen=True)
class ParsedRow:
    """A structurally valid row, before soft checks."""

    prompt: Text
    chosen: Text
    rejected: Text
    margin: float | None
    id: str | None


def parse_row(row: dict[str, Any], ctx: RowContext) -> ParsedRow:
    """Check a raw row's fields and types; extract the prompt when it is implicit.

    A ``None`` value means the same as an absent key (Parquet and ``datasets`` cannot tell
    them apart). A missing ``chosen``/``rejected``, a wrong type, or texts of different
    kinds (text vs messages) raise :class:`PreferenceDataError`."""
    for field in ("chosen", "rejected"):
        if row.get(field) is None:
            raise ctx.error("missing field", field)
    chosen = _parse_text(row["chosen"], "chosen", ctx)
    rejected = _parse_text(row["rejected"], "rejected", ctx)
    kind = "a list of messages" if isinstance(chosen, list) else "a string"
    if isinstance(rejected, list) != isinstance(chosen, list):
        raise ctx.error(
            f"expected {kind} like 'chosen', got {_type_name(row['rejected'])}", "rejected"
        )
    if row.get("prompt") is None:
        prompt, chosen, rejected = extract_prompt(chosen, rejected)
    else:
        prompt = _parse_text(row["prompt"], "prompt", ctx)
        if isinstance(prompt, list) != isinstance(chosen, list):
            raise ctx.error(
                f"expected {kind} like 'chosen', got {_type_name(row['prompt'])}", "prompt"
            )
    return ParsedRow(
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        margin=_parse_margin(row.get("margin"), ctx),
        id=_parse_id(row.get("id"), ctx),
    )


def is_empty(text: Text) -> bool:
    """Whether a completion holds no non-whitespace text."""
    if isinstance(text, str):
        return not text.strip()
    return all(not m["content"].strip() for m in text)


class SoftChecker:
    """Stateful soft checks over the rows of one file (first occurrence wins)."""

    def __init__(self) -> None:
        self._pairs: dict[str, str] = {}  # canonical content -> where first seen
        self._ids: dict[str, str] = {}  # id -> where first seen

    def check(self, parsed: ParsedRow, ctx: RowContext) -> PreferencePair:
        """Return the pair, or raise a soft :class:`PreferenceDataError` (with ``reason``).

        Nothing is recorded for a rejected row, so a later copy of a skipped row is
        judged on its own.
        """
        # Identity first: an implicit-prompt row with chosen == rejected becomes a
        # prompt with two empty completions, and "identical" is the better diagnosis.
        if parsed.chosen == parsed.rejected:
            raise ctx.error("identical to 'chosen'", "rejected", reason="chosen_equals_rejected")
        for field in ("chosen", "rejected"):
            if is_empty(getattr(parsed, field)):
                raise ctx.error("empty text", field, reason="empty_text")
        content = canonical_json([parsed.prompt, parsed.chosen, parsed.rejected])
        if content in self._pairs:
            raise ctx.error(
                f"duplicate of {self._pairs[content]} (same prompt, chosen and rejected)",
                reason="duplicate_pair",
            )
        pair_id = (
            parsed.id
            if parsed.id is not None
            else make_pair_id(parsed.prompt, parsed.chosen, parsed.rejected)
        )
        if pair_id in self._ids:
            raise ctx.error(
                f"duplicate id {pair_id!r} (first at {self._ids[pair_id]})",
                "id",
                reason="duplicate_id",
            )
        self._pairs[content] = ctx.where
        self._ids[pair_id] = ctx.where
        return PreferencePair(
            id=pair_id,
            prompt=parsed.prompt,
            chosen=parsed.chosen,
            rejected=parsed.rejected,
            margin=parsed.margin,
        )


def _full_sequence(prompt: Text, completion: Text) -> Text:
    return prompt + completion  # str + str or list + list: what TRL tokenizes


def _char_length(text: Text) -> int:
    if isinstance(text, str):
        return len(text)
    return sum(len(m["content"]) for m in text)


def _token_lengths(tokenizer: Any, texts: list[Text], batch_size: int = 1024) -> list[int]:
    """Token counts as TRL's RewardTrainer computes them (EOS appended to plain text)."""
    if not texts:
        return []
    if isinstance(texts[0], list):
        if not hasattr(tokenizer, "apply_chat_template"):
            raise ValueError(
                "counting tokens of conversational pairs needs a transformers tokenizer "
                "with a chat template"
            )
        lengths = []
        for conversation in texts:
            out = tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True)
            ids = out["input_ids"]
            lengths.append(len(ids[0]) if ids and isinstance(ids[0], list) else len(ids))
        return lengths
    eos = getattr(tokenizer, "eos_token", None)
    if isinstance(eos, str) and eos:
        texts = [t if t.endswith(eos) else t + eos for t in texts]
    lengths = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        if callable(tokenizer):  # transformers tokenizer
            lengths.extend(len(ids) for ids in tokenizer(text=batch)["input_ids"])
        elif hasattr(tokenizer, "encode_batch"):  # tokenizers.Tokenizer
            lengths.extend(len(enc.ids) for enc in tokenizer.encode_batch(batch))
        else:
            raise TypeError(
                "tokenizer must be a transformers tokenizer or a tokenizers.Tokenizer, "
                f"got {type(tokenizer).__name__}"
            )
    return lengths


def count_too_long(
    pairs: list[PreferencePair],
    *,
    max_chars: int | None = None,
    tokenizer: Any = None,
    max_length: int | None = None,
) -> tuple[dict[str, int], list[str]]:
    """``(counts, warnings)``: pairs whose ``prompt + chosen`` / ``prompt + rejected`` exceed
    ``max_chars`` characters or ``max_length`` tokens (with ``tokenizer``), keyed
    ``"{chosen,rejected}_{chars,tokens}"`` per limit given, and one warning per non-zero
    count. Lengths are of the full sequence as TRL's RewardTrainer measures it; a
    conversation's characters are the sum of its message contents."""
    counts: dict[str, int] = {}
    warnings: list[str] = []
    m = len(pairs)
    for side in ("chosen", "rejected"):
        sequences = [_full_sequence(p.prompt, getattr(p, side)) for p in pairs]
        if max_chars is not None:
            n = sum(_char_length(s) > max_chars for s in sequences)
            counts[f"{side}_chars"] = n
            if n > 0:
                warnings.append(
                    f"{n} of {m} {side} texts (prompt + {side}) exceed max_chars={max_chars} "
                    "characters and would be truncated"
                )
        if max_length is not None:
            n = sum(length > max_length for length in _token_lengths(tokenizer, sequences))
            counts[f"{side}_tokens"] = n
            if n > 0:
                warnings.append(
                    f"{n} of {m} {side} texts (prompt + {side}) exceed max_length={max_length} "
                    "tokens and would be truncated (TRL's RewardTrainer drops such pairs instead)"
                )
    return counts, warnings
