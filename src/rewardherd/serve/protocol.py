"""Request parsing and validation for the HTTP routes (no web framework here).

``/get_reward`` (OpenRLHF's protocol) is validated all or nothing, because that
protocol has no per-item error; ``/v1/score`` validates each item on its own. Request
shapes, the query-splitting rule and the limits: docs/serving.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewardherd import core


class RequestError(Exception):
    """A request the server refuses: HTTP status, message, and optionally the item index."""

    def __init__(self, status: int, detail: str, *, index: int | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.index = index
        self.headers = headers or {}

    def body(self) -> dict:
        # a detail quoting client text must still encode as UTF-8 JSON (lone surrogates)
        detail = self.detail.encode("utf-8", "backslashreplace").decode("utf-8")
        out: dict[str, Any] = {"detail": detail}
        if self.index is not None:
            out["index"] = self.index
        return out


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """Decode a JSON body; malformed JSON (or NaN/Infinity literals) is a 400."""
    if not body:
        raise RequestError(400, "malformed JSON: empty body")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise RequestError(400, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise RequestError(400, f"malformed JSON: {e}") from None
    except RecursionError:
        raise RequestError(400, "malformed JSON: nested too deeply") from None


DEFAULT_ROLES = ("system", "user", "assistant")

_ROLE_RE = re.compile(r"""role['"]?\]?\s*==\s*['"]([A-Za-z_][\w-]*)['"]""")


def template_roles(templates) -> tuple[str, ...]:
    """:data:`DEFAULT_ROLES` plus the roles chat templates compare ``message['role']``
    (or ``message.role``) with, e.g. ``tool`` or ``ipython``."""
    roles = list(DEFAULT_ROLES)
    for t in templates:
        if isinstance(t, dict):  # tokenizers may hold several named templates
            t = " ".join(v for v in t.values() if isinstance(v, str))
        if isinstance(t, str):
            roles += [r for r in _ROLE_RE.findall(t) if r not in roles]
    return tuple(roles)


def check_unicode(text: str, where: str) -> None:
    """422 unless ``text`` encodes as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RequestError(422, f"{where}: invalid Unicode (lone surrogate at character {e.start})") from None


def check_items(n: int, max_items: int) -> None:
    if n > max_items:
        raise RequestError(413, f"request has {n} items; the limit is {max_items} per request")


def text_chars(text) -> int:
    """Size of a text against the limit: characters of a string; for a message list,
    one per message plus the characters of every role and content."""
    if isinstance(text, str):
        return len(text)
    return len(text) + sum(len(m["role"]) + len(m["content"]) for m in text)


def check_text(text, where: str, max_chars: int, roles: Sequence[str] = DEFAULT_ROLES) -> None:
    """Raise 422 unless ``text`` is a string or a message list within ``max_chars``
    whose roles are in ``roles``, all valid Unicode."""
    if isinstance(text, list):
        if len(text) > max_chars:  # each message counts at least one: refuse before walking them
            raise RequestError(422, f"{where} has {len(text)} messages; the limit is {max_chars} characters")
        for j, m in enumerate(text):
            if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
                raise RequestError(422, f"{where}[{j}] must be an object with string 'role' and 'content'")
        n = text_chars(text)
        if n > max_chars:
            raise RequestError(422, f"{where} has {n} characters (roles, contents and one per message); the limit "
                                    f"is {max_chars}")
        for j, m in enumerate(text):
            if m["role"] not in roles:
                check_unicode(m["role"], f"{where}[{j}].role")
                raise RequestError(422, f"{where}[{j}].role is {m['role'][:40]!r}; allowed roles: {', '.join(roles)}")
            check_unicode(m["content"], f"{where}[{j}].content")
        return
    if not isinstance(text, str):
        raise RequestError(422, f"{where} must be a string or a list of messages; got {_type_name(text)}")
    if len(text) > max_chars:
        raise RequestError(422, f"{where} has {len(text)} characters; the limit is {max_chars}")
    check_unicode(text, where)


def _type_name(x) -> str:
    return "null" if x is None else type(x).__name__


# --------------------------------------------------------------- /get_reward
def strip_tokens(text: str, tokens: Sequence[str]) -> str:
    """Remove whole occurrences of ``tokens`` from both ends of ``text`` (repeatedly).

    Unlike ``str.strip(token)``, which strips a set of characters, this removes only
    complete token strings, so a response ending in ``>`` keeps it.
    """
    changed = True
    while changed and text:
        changed = False
        for t in tokens:
            if t and text.startswith(t):
                text, changed = text[len(t):], True
            if t and text.endswith(t):
                text, changed = text[: -len(t)], True
    return text


def split_query(query: str, prompt: str | None, tokens: Sequence[str] = ()) -> tuple[str, str]:
    """(prompt, response) of one OpenRLHF query; the rule is in docs/serving.md."""
    query = strip_tokens(query, tokens)
    if prompt is not None:
        prompt = strip_tokens(prompt, tokens)
        if prompt and query.startswith(prompt):
            return prompt, query[len(prompt):]
    return "", query


def _check_string(x, where: str, expected: str, max_chars: int, index: int) -> None:
    """422 naming item ``index`` unless ``x`` is a valid string of at most ``max_chars``."""
    if not isinstance(x, str):
        raise RequestError(422, f"{where} must be {expected}; got {_type_name(x)}", index=index)
    if len(x) > max_chars:
        raise RequestError(422, f"{where} has {len(x)} characters; the limit is {max_chars}", index=index)
    try:
        check_unicode(x, where)
    except RequestError as e:
        raise RequestError(e.status, e.detail, index=index) from None


@dataclass(frozen=True)
class GetRewardRequest:
    prompts: list[str]  # (b,) split prompts
    responses: list[str]  # (b,) split responses


def parse_get_reward(data: Any, *, max_items: int, max_text_chars: int, tokens: Sequence[str] = ()) -> GetRewardRequest:
    """Validate an OpenRLHF request (all or nothing) and split each query."""
    if not isinstance(data, dict):
        raise RequestError(422, f"request body must be a JSON object; got {_type_name(data)}")
    if "query" not in data:
        raise RequestError(422, "field 'query' is required (a list of prompt+response strings)")
    queries = data["query"]
    if not isinstance(queries, list):
        raise RequestError(422, f"field 'query' must be a list of strings; got {_type_name(queries)}")
    check_items(len(queries), max_items)
    prompts = data.get("prompts")
    if prompts is not None:
        if not isinstance(prompts, list):
            raise RequestError(422, f"field 'prompts' must be a list of strings or null; got {_type_name(prompts)}")
        if len(prompts) != len(queries):
            raise RequestError(422, f"field 'prompts' has {len(prompts)} entries for {len(queries)} queries")
    for i, q in enumerate(queries):
        _check_string(q, f"query[{i}]", "a string", max_text_chars, i)
        if prompts is not None and prompts[i] is not None:
            _check_string(prompts[i], f"prompts[{i}]", "a string or null", max_text_chars, i)
    pairs = [split_query(q, prompts[i] if prompts is not None else None, tokens) for i, q in enumerate(queries)]
    return GetRewardRequest([p for p, _ in pairs], [r for _, r in pairs])


# ----------------------------------------------------------------- /v1/score
ITEM_KEYS = {"prompt", "response", "id"}
SCORE_KEYS = {"items", "method", "params"}


@dataclass(frozen=True)
class ScoreRequest:
    method: str
    params: dict[str, float | int]
    items: list[tuple[Any, Any] | None]  # (prompt, response), or None where the item is invalid
    ids: list[Any]  # the items' "id" (None when absent or invalid)
    errors: list[str | None]  # per item: why it is invalid, or None


def parse_params(params: Any, where: str = "params") -> dict[str, float | int]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise RequestError(422, f"field '{where}' must be an object; got {_type_name(params)}")
    out = {}
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
            raise RequestError(422, f"{where}.{k} must be a finite number; got {v!r}")
        out[k] = v
    return out


def check_method(method: str, params: dict, n_members: int) -> None:
    """422 unless ``method`` and ``params`` aggregate an ensemble of ``n_members``.

    Validates through :class:`rewardherd.core.Aggregation`, so the server accepts
    exactly what the library accepts.
    """
    try:
        core.Aggregation(method, params).check_members(n_members)
    except (TypeError, ValueError) as e:
        raise RequestError(422, f"invalid method/params: {e}") from None


def parse_score(
    data: Any, *, default_method: str, default_params: dict, n_members: int, max_items: int, max_text_chars: int,
    roles: Sequence[str] = DEFAULT_ROLES,
) -> ScoreRequest:
    """Validate a /v1/score request: method/params as a whole, each item on its own."""
    if not isinstance(data, dict):
        raise RequestError(422, f"request body must be a JSON object; got {_type_name(data)}")
    unknown = set(data) - SCORE_KEYS
    if unknown:
        raise RequestError(422, f"unknown field(s) {sorted(unknown)}; known: items, method, params")
    items = data.get("items")
    if not isinstance(items, list):
        raise RequestError(422, f"field 'items' must be a list of {{prompt, response}} objects; got {_type_name(items)}")
    check_items(len(items), max_items)
    params = parse_params(data.get("params"))
    method = data.get("method")
    if method is None:
        method, params = default_method, {**default_params, **params}
    elif not isinstance(method, str):
        raise RequestError(422, f"field 'method' must be a string; got {_type_name(method)}")
    check_method(method, params, n_members)
    pairs, ids, errors = [], [], []
    for i, item in enumerate(items):
        try:
            pairs.append(_parse_item(item, f"items[{i}]", max_text_chars, roles))
            ids.append(item.get("id"))
            errors.append(None)
        except RequestError as e:
            pairs.append(None)
            ids.append(_scalar_id(item))
            errors.append(e.detail)
    return ScoreRequest(method, params, pairs, ids, errors)


def _scalar_id(item: Any):
    """An invalid item's id, echoed back only when it is a plain, valid value."""
    i = item.get("id") if isinstance(item, dict) else None
    if isinstance(i, dict | list):
        return None
    if isinstance(i, str):
        try:
            i.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return i


def _parse_item(item: Any, where: str, max_text_chars: int, roles: Sequence[str] = DEFAULT_ROLES) -> tuple[Any, Any]:
    if not isinstance(item, dict):
        raise RequestError(422, f"{where} must be an object with 'prompt' and 'response'; got {_type_name(item)}")
    unknown = set(item) - ITEM_KEYS
    if unknown:
        raise RequestError(422, f"{where}: unknown field(s) {sorted(unknown)}; known: prompt, response, id")
    for f in ("prompt", "response"):
        if f not in item:
            raise RequestError(422, f"{where}: field '{f}' is required")
        check_text(item[f], f"{where}.{f}", max_text_chars, roles)
    if isinstance(item.get("id"), dict | list):
        raise RequestError(422, f"{where}.id must be a string, number or null")
    if isinstance(item.get("id"), str):
        if len(item["id"]) > max_text_chars:
            raise RequestError(422, f"{where}.id has {len(item['id'])} characters; the limit is {max_text_chars}")
        check_unicode(item["id"], f"{where}.id")
    return item["prompt"], item["response"]
