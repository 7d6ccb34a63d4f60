"""Config plumbing shared by every component: field docs, dict/YAML loading, overrides.

Each component has one frozen dataclass; the string literal under each field is its
only help text (the CLI reads it from here). Unknown keys are errors; validation
lives in each dataclass's ``__post_init__``. Overrides use dotted keys
(``train.lr=1e-5``); values are parsed as YAML scalars/lists. A named profile is a
plain nested dict of overrides, applied by :func:`resolve_profile`.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import textwrap
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration is invalid: the message names the file and the key."""


def check(cond: bool, msg: str) -> None:
    """A ``__post_init__`` validation: raise ``ValueError(msg)`` unless ``cond``."""
    if not cond:
        raise ValueError(msg)


@cache
def field_docs(cls) -> dict[str, str]:
    """The docstring under each dataclass field, by field name (inherited too)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body
        for a, b in zip(body, body[1:], strict=False):
            if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                    and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
                docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def _key(path: str, k: str) -> str:
    return f"{path}.{k}" if path else k


def _coerce(tp, value, where: str, path: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def bad(problem: str) -> ConfigError:
        return ConfigError(f"{where}: {path}: {problem}")

    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad(f"expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, where, path)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: {path}: invalid value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise bad(f"{value!r} is not one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            value = [value]
        if origin is tuple and args and Ellipsis not in args:  # fixed length, e.g. tuple[float, float]
            if len(value) != len(args):
                raise bad(f"expected {len(args)} values, got {len(value)}")
            pairs = enumerate(zip(args, value, strict=True))
            return tuple(_coerce(a, v, where, f"{path}[{i}]") for i, (a, v) in pairs)
        item = args[0] if args else Any
        return tuple(_coerce(item, v, where, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad(f"expected a mapping, got {type(value).__name__}")
        return dict(value)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(f"expected a number, got {value!r}")
        return float(value)
    expected = {int: "an integer", bool: "true/false", str: "a string"}.get(tp)
    if expected and (not isinstance(value, tp) or (tp is int and isinstance(value, bool))):
        raise bad(f"expected {expected}, got {value!r}")
    return value


def from_dict(cls, data: dict, where: str = "config", path: str = ""):
    """Build dataclass ``cls`` from a nested dict; unknown keys and bad types are errors.

    A partial nested section keeps the field's own default for the keys it leaves out.
    ``where`` names the source (a file, "command line") and ``path`` the dotted section
    ``data`` sits at; every error names both, the offending dotted key, and for an
    unknown key the allowed ones.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {path or 'top level'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        keys = ", ".join(repr(_key(path, k)) for k in unknown)
        raise ConfigError(f"{where}: unknown key {keys}; allowed{' in ' + path if path else ''}: "
                          f"{', '.join(sorted(fields))}")
    kwargs = {}
    for k, v in data.items():
        f = fields[k]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if isinstance(v, dict) and dataclasses.is_dataclass(default):  # a partial section keeps its defaults
            v = merge(to_dict(default), v)
        kwargs[k] = _coerce(hints[k], v, where, _key(path, k))
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{where}: {path + ': ' if path else ''}{e}") from e


def to_dict(obj) -> dict:
    """Dataclass to plain JSON-able dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))


def key_fields(obj, later: dict[str, Any]) -> dict:
    """``asdict(obj)`` without each field of ``later`` that holds the value given there: fields
    added after keys were first written, at the value that behaves as before, stay out of the
    key, so what was built or trained before them is still found."""
    return {k: v for k, v in dataclasses.asdict(obj).items() if not (k in later and v == later[k])}


def config_hash(obj) -> str:
    """Stable short hash of a config (dataclass or dict)."""
    d = to_dict(obj) if dataclasses.is_dataclass(obj) else obj
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def merge(base: dict, update: dict) -> dict:
    """``base`` with ``update`` laid over it: mappings merge key by key, other values replace."""
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def apply_overrides(data: dict, overrides: list[str] | dict[str, Any], where: str = "command line") -> dict:
    """Apply dotted overrides to a nested dict (returns a copy).

    ``overrides`` is a list of ``key.sub=value`` strings (values parsed as YAML) or a
    mapping ``{"key.sub": value}``. Whether a key exists is checked by :func:`from_dict`.
    """
    import yaml

    if not isinstance(overrides, dict):
        parsed = {}
        for ov in overrides:
            if "=" not in ov:
                raise ConfigError(f"{where}: override {ov!r} must look like key.sub=value")
            key, raw = ov.split("=", 1)
            parsed[key.strip()] = yaml.safe_load(raw) if raw != "" else ""
        overrides = parsed
    out = json.loads(json.dumps(data))
    for key, value in overrides.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {} if node.get(p) is None else node[p]
                if not isinstance(node[p], dict):
                    raise ConfigError(f"{where}: {key!r}: {p!r} is not a section")
            node = node[p]
        node[parts[-1]] = value
    return out


def resolve_profile(profiles: dict[str, dict], profile: str, *layers: dict, overrides: list[str] | dict = (),
                    where: str = "config") -> dict:
    """A named profile (world or study), then each layer (e.g. a YAML file) merged over it,
    then dotted overrides; :func:`from_dict` builds the config from the result."""
    if profile not in profiles:
        raise ConfigError(f"{where}: unknown profile {profile!r}; choose from {sorted(profiles)}")
    data = profiles[profile]
    for layer in layers:
        data = merge(data, layer)
    return apply_overrides(data, overrides, where)


def load_yaml(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data
