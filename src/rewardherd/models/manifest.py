"""The ensemble directory format: ``ensemble.json`` plus one directory per member.

Members are standalone HF models (``hf``), heads over one backbone (``multi_head``) or
LoRA adapters over one backbone (``lora``). Every load validates each field and member
path and verifies the recorded SHA-256 checksums; every error names the file and the
field or member. The format, field by field: docs/ensemble_format.md.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rewardherd.io import file_sha256, write_json_atomic
from rewardherd.schema import KINDS, canonical_kind

FORMAT_VERSION = 1
MANIFEST = "ensemble.json"
TEXT_FORMAT = "plain-v1"
MEMBER_FORMATS = ("hf", "multi_head", "lora")


class ManifestError(ValueError):
    """An ensemble directory or its manifest is invalid.

    The message names the manifest file and field, or the member and the file at
    fault. ``member`` and ``file`` hold them when known (else ``None``).
    """

    def __init__(self, message: str, *, member: str | None = None, file: str | None = None):
        super().__init__(message)
        self.member = member
        self.file = file

    def __reduce__(self):  # keyword arguments survive pickling (Ray ships errors)
        return (_rebuild_manifest_error, (str(self), self.member, self.file))


def _rebuild_manifest_error(message, member, file):
    return ManifestError(message, member=member, file=file)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _type_name(x) -> str:
    return "null" if x is None else type(x).__name__


@dataclass
class MemberInfo:
    name: str
    path: str
    backbone: str
    finetune_seed: int
    pretrain_seed: int | None = None
    format: str = "hf"
    heldout_accuracy: float | None = None
    n_heldout_pairs: int | None = None
    standardization: dict[str, float] | None = None
    train_config: dict[str, Any] = field(default_factory=dict)
    head: int | None = None
    """Row of this member in ``heads.safetensors`` (multi_head members only)."""
    files: dict[str, str] | None = None
    """SHA-256 of every file of the member, keyed by path relative to the ensemble
    directory; None in manifests written before checksums existed."""

    @classmethod
    def from_dict(cls, d: dict, where: str) -> MemberInfo:
        if not isinstance(d, dict):
            raise ManifestError(f"{where}: expected an object; got {_type_name(d)}")
        missing = [k for k in ("name", "path", "backbone", "finetune_seed") if k not in d]
        if missing:
            raise ManifestError(f"{where}: member is missing field(s) {missing}")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ManifestError(f"{where}: member has unknown field(s) {sorted(unknown)}")

        def bad(key: str, expected: str):
            return ManifestError(f"{where}.{key}: expected {expected}; got {d[key]!r}"[:400])

        for key in ("name", "path", "backbone", "format"):
            if key in d and not (isinstance(d[key], str) and d[key].strip()):
                raise bad(key, "a non-empty string")
        if d.get("format", "hf") not in MEMBER_FORMATS:
            raise bad("format", f"one of {list(MEMBER_FORMATS)}")
        if not _is_int(d["finetune_seed"]):
            raise bad("finetune_seed", "an int")
        for key in ("pretrain_seed", "n_heldout_pairs", "head"):
            if d.get(key) is not None and not _is_int(d[key]):
                raise bad(key, "an int or null")
        for key in ("n_heldout_pairs", "head"):
            if d.get(key) is not None and d[key] < 0:
                raise bad(key, "an int >= 0")
        acc = d.get("heldout_accuracy")
        if acc is not None and not (_is_number(acc) and 0 <= acc <= 1):
            raise bad("heldout_accuracy", "a number in [0, 1] or null")
        if "train_config" in d and not isinstance(d["train_config"], dict):
            raise bad("train_config", "an object")
        st = d.get("standardization")
        if st is not None:
            if not (isinstance(st, dict) and {"mean", "std"} <= set(st)):
                raise bad("standardization", "an object with 'mean' and 'std'")
            extra = set(st) - {"mean", "std", "n"}
            if extra:
                raise ManifestError(f"{where}.standardization: unknown field(s) {sorted(extra)}")
            if not (_is_number(st["mean"]) and math.isfinite(st["mean"])):
                raise ManifestError(f"{where}.standardization.mean: expected a finite number; got {st['mean']!r}"[:400])
            if not (_is_number(st["std"]) and math.isfinite(st["std"]) and st["std"] > 0):
                raise ManifestError(f"{where}.standardization.std: expected a finite number > 0; got {st['std']!r}"[:400])
            if "n" in st and not (_is_int(st["n"]) and st["n"] >= 0):
                raise ManifestError(f"{where}.standardization.n: expected an int >= 0; got {st['n']!r}"[:400])
        files = d.get("files")
        if files is not None:
            if not isinstance(files, dict) or not files:
                raise bad("files", "a non-empty object of file path -> sha256")
            for k, v in files.items():
                if not (k and isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)):
                    raise ManifestError(f"{where}.files[{k!r}]: expected a sha256 hex digest; got {v!r}"[:400])
        return cls(**d)


@dataclass
class Manifest:
    kind: str
    members: list[MemberInfo]
    max_length: int | None = 512
    complete: bool = True
    text_format: str = TEXT_FORMAT
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    package_versions: dict[str, str] = field(default_factory=lambda: package_versions())
    config_hash: str | None = None
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.kind = canonical_kind(self.kind)  # an old name (finetune_seeds, ...) is written back as the new one

    def to_dict(self) -> dict:
        d = asdict(self)
        d["members"] = [_member_dict(m) for m in self.members]
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str) -> Manifest:
        """Parse and validate a manifest dict; every error names ``where`` and the field."""
        if not isinstance(d, dict):
            raise ManifestError(f"{where}: expected a JSON object")
        version = d.get("format_version")
        if not _is_int(version) or version != FORMAT_VERSION:
            raise ManifestError(f"{where}: field 'format_version' is {version!r}; this rewardherd reads {FORMAT_VERSION}")
        if "members" not in d or not isinstance(d["members"], list):
            raise ManifestError(f"{where}: field 'members' must be a list")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ManifestError(f"{where}: unknown field(s) {sorted(unknown)}")
        if "kind" not in d:
            raise ManifestError(f"{where}: missing field 'kind'")

        def bad(key: str, expected: str):
            return ManifestError(f"{where}: field '{key}': expected {expected}; got {d[key]!r}"[:400])

        if not isinstance(d["kind"], str) or canonical_kind(d["kind"]) not in KINDS:
            raise bad("kind", f"one of {list(KINDS)}")
        if "complete" in d and not isinstance(d["complete"], bool):
            raise bad("complete", "true or false")
        ml = d.get("max_length")
        if ml is not None and not (_is_int(ml) and ml >= 1):
            raise bad("max_length", "an int >= 1 or null")
        if "text_format" in d and d["text_format"] != TEXT_FORMAT:
            raise bad("text_format", f"{TEXT_FORMAT!r} (the only text format this rewardherd reads)")
        for key in ("created", "config_hash"):
            if d.get(key) is not None and not isinstance(d[key], str):
                raise bad(key, "a string")
        pv = d.get("package_versions")
        if pv is not None and not (isinstance(pv, dict) and all(isinstance(v, str) for v in pv.values())):
            raise bad("package_versions", "an object of package name -> version string")
        if "extra" in d and not isinstance(d["extra"], dict):
            raise bad("extra", "an object")
        members = [MemberInfo.from_dict(m, f"{where}: members[{i}]") for i, m in enumerate(d["members"])]
        seen: dict[str, int] = {}
        for i, m in enumerate(members):
            if m.name in seen:
                raise ManifestError(f"{where}: members[{i}].name: duplicate member name {m.name!r} "
                                    f"(also members[{seen[m.name]}])")
            seen[m.name] = i
        return cls(**{**d, "members": members})

    @classmethod
    def read(cls, directory: str | Path) -> Manifest:
        path = Path(directory) / MANIFEST
        if not path.is_file():
            raise ManifestError(f"{path}: not found; is {directory} an ensemble directory?")
        try:
            d = json.loads(path.read_bytes().decode("utf-8"))
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
        except UnicodeDecodeError as e:
            raise ManifestError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
        except RecursionError:
            raise ManifestError(f"{path}: invalid JSON: nested too deeply") from None
        except OSError as e:
            raise ManifestError(f"{path}: cannot read: {e.strerror or e}") from None
        return cls.from_dict(d, str(path))

    def write(self, directory: str | Path) -> Path:
        """Write ``ensemble.json`` atomically (temp file, then rename).

        Members without checksums (``files`` None) whose files exist under
        ``directory`` get them now (docs/ensemble_format.md); existing checksums are
        kept, so a resumed run never re-blesses a changed file.
        """
        directory = Path(directory)
        for m in self.members:
            if m.files is None:
                m.files = member_checksums(directory, m)
        return write_json_atomic(directory / MANIFEST, self.to_dict())


def _member_dict(m: MemberInfo) -> dict:
    d = asdict(m)
    if d["head"] is None:  # only multi-head members carry it; other manifests stay as before
        del d["head"]
    if d["files"] is None:
        del d["files"]
    return d


# ----------------------------------------------------------- member files
WEIGHTS_SUFFIX = ".safetensors"
TOKENIZER_CONFIG = "tokenizer_config.json"
HEADS_FILE = "heads.safetensors"  # multi-head: next to the shared backbone directory
LORA_BACKBONE = "backbone"  # lora: the shared backbone at the top of the ensemble directory


def member_roots(directory: Path, info: MemberInfo) -> list[Path]:
    """The files and directories a member is made of (directories are read whole)."""
    path = directory / info.path
    if info.format == "multi_head":
        return [path, path.parent / HEADS_FILE]
    if info.format == "lora":
        return [path, directory / LORA_BACKBONE]
    return [path]


def _files_under(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames) if not f.startswith(".")]
    return out


def _rel(directory: Path, path: Path) -> str:
    return Path(os.path.relpath(path, directory)).as_posix()


def member_files(directory: Path, info: MemberInfo) -> list[Path]:
    """Every (non-hidden) file of a member, except the ensemble's own manifest (a WARM
    member's directory is the ensemble directory, and the manifest holds the checksums)."""
    manifest = os.path.realpath(directory / MANIFEST)
    return [f for root in member_roots(directory, info) for f in _files_under(root)
            if os.path.realpath(f) != manifest]


def member_checksums(directory: str | Path, info: MemberInfo) -> dict[str, str] | None:
    """SHA-256 of every (non-hidden) file of a member, keyed relative to ``directory``;
    None when the member has no files there (an in-memory manifest)."""
    directory = Path(directory)
    files = member_files(directory, info)
    return {_rel(directory, f): file_sha256(f) for f in files} or None


def check_member_path(directory: str | Path, info: MemberInfo) -> Path:
    """The member's directory, refused unless it is one (docs/ensemble_format.md)."""
    directory = Path(directory)
    path = directory / info.path
    where = f"{directory / MANIFEST}: member {info.name!r}: field 'path'"
    if not path.is_dir():
        raise ManifestError(f"{where}: {path} does not exist or is not a directory", member=info.name,
                            file=str(path))
    if info.format == "lora":
        need = ["adapter_config.json", "adapter_model.safetensors"]
        missing = [n for n in need if not (path / n).is_file()]
        backbone = directory / LORA_BACKBONE
        if not ((backbone / "config.json").is_file() and (backbone / TOKENIZER_CONFIG).is_file()
                and any(backbone.glob(f"*{WEIGHTS_SUFFIX}"))):
            raise ManifestError(f"{directory / MANIFEST}: member {info.name!r} has format 'lora' and needs the shared "
                                f"backbone {backbone} (config.json, {TOKENIZER_CONFIG} and *.safetensors), which is "
                                "missing", member=info.name, file=str(backbone))
    else:
        # Without tokenizer_config.json a tokenizer still loads, but without its special
        # tokens (no EOS appended): other ids, other scores. So it is required.
        missing = [n for n in ["config.json", TOKENIZER_CONFIG] if not (path / n).is_file()]
        if not any(path.glob(f"*{WEIGHTS_SUFFIX}")):
            missing.append("*.safetensors weights (rewardherd never loads pickled weights)")
    if missing:
        raise ManifestError(f"{where}: {path} is not a member directory: no {', '.join(missing)}",
                            member=info.name, file=str(path))
    return path


def verify_member_files(directory: str | Path, info: MemberInfo, cache: dict | None = None) -> bool:
    """Check a member's files against its recorded checksums.

    Returns False when the manifest records none (an older manifest; the caller
    warns); raises :class:`ManifestError` naming the member and the file when a
    file is missing, changed, or present but not recorded.
    """
    directory = Path(directory)
    cache = {} if cache is None else cache
    if info.files is None:
        return False
    for rel, digest in info.files.items():
        f = directory / rel
        if not f.is_file():
            raise ManifestError(f"member {info.name!r}: {f}: file is missing (the manifest records its checksum)",
                                member=info.name, file=str(f))
        key = os.path.realpath(f)
        if key not in cache:
            cache[key] = file_sha256(f)
        if cache[key] != digest:
            raise ManifestError(f"member {info.name!r}: {f}: checksum mismatch (the file changed since the ensemble "
                                "was saved; it may be corrupt)", member=info.name, file=str(f))
    recorded = {os.path.normpath(directory / r) for r in info.files}
    for f in member_files(directory, info):
        if os.path.normpath(f) not in recorded:
            raise ManifestError(f"member {info.name!r}: {f}: file is not in the manifest's checksums "
                                "(added after the ensemble was saved)", member=info.name, file=str(f))
    return True


def package_versions() -> dict[str, str]:
    out = {}
    for name in ("rewardherd", "torch", "transformers", "trl", "peft", "tokenizers", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
