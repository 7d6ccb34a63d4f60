"""Fuzz a valid ensemble directory: damage one thing at a time and load it.

Mutations (seeded): truncate, flip bytes in, append to, or delete each file of the
directory; set each manifest field (top level and member) to a wrong type or an
out-of-range value. The only allowed outcomes are a clean load whose raw and
standardized scores equal the original's exactly, or a :class:`ManifestError` whose
message names the member or the manifest file (and the damaged file or field).
Never another exception, never different scores.

``ensemble.json`` is the editable source of truth (standardization statistics live
in it), so a byte flip there that still parses as a valid manifest may change the
standardized scores; for those the raw scores must still be identical.

The default run draws ``REWARDHERD_FUZZ_N`` (default 100) mutations; e.g.
``REWARDHERD_FUZZ_N=600 pytest tests/reliability/test_fuzz_ensemble_dir.py``.
"""

import json
import math
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from rewardherd.models import Ensemble, ManifestError

N = int(os.environ.get("REWARDHERD_FUZZ_N", "100"))
SEED = int(os.environ.get("REWARDHERD_FUZZ_SEED", "0"))

PROMPTS = ["item 1: ", "item 2: ", "item 3: "]
RESPONSES = ["good kind warm", "bad sad cold", "the quick brown fox"]

WRONG = ["x", "", None, -1, 0, 1.5, -7.25, True, [], {}, [1], {"a": 1}, 10**20, math.nan, math.inf]
TOP_FIELDS = ["format_version", "kind", "members", "max_length", "complete", "text_format", "created",
              "package_versions", "config_hash", "extra"]
MEMBER_FIELDS = ["name", "path", "backbone", "finetune_seed", "pretrain_seed", "format", "heldout_accuracy",
                 "n_heldout_pairs", "standardization", "train_config", "head", "files"]
STAT_FIELDS = ["mean", "std", "n"]
# Values that are wrong for fields where any number would be valid (and change scores).
WRONG_FOR = {"mean": ["x", "", None, True, [], {}, math.nan, math.inf, -math.inf],
             "std": ["x", None, True, [], 0, -1, -0.5, math.nan, math.inf]}


def _file_mutation(kind: str, rel: str):
    def apply(d: Path, rng: random.Random) -> str:
        p = d / rel
        data = p.read_bytes()
        if kind == "delete":
            p.unlink()
        elif kind == "truncate":
            p.write_bytes(data[: rng.randrange(len(data))])
        elif kind == "append":
            p.write_bytes(data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))))
        else:  # flip 1-8 random bits
            b = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            p.write_bytes(bytes(b))
        return f"{kind} {rel}"

    return apply


def _field_mutation(path: tuple):
    def apply(d: Path, rng: random.Random) -> str:
        m = json.loads((d / "ensemble.json").read_text())
        target = m
        for k in path[:-1]:
            target = target[k]
        value = rng.choice(WRONG_FOR.get(path[-1], WRONG) if "standardization" in path else WRONG)
        if path[-1] == "name" and rng.random() < 0.3:
            value = m["members"][0]["name"]  # a duplicate name
        if path[-1] == "path" and rng.random() < 0.5:
            value = rng.choice(["../../..", "..", ".", "/", "member_0", "member_1/../member_2", "nope"])
        target[path[-1]] = value
        (d / "ensemble.json").write_text(json.dumps(m))
        return f"set {'.'.join(map(str, path))} = {value!r}"

    return apply


def mutations(ens_dir: Path) -> list:
    files = sorted(str(p.relative_to(ens_dir)) for p in ens_dir.rglob("*") if p.is_file())
    out = [(f"file:{k}:{f}", _file_mutation(k, f)) for f in files for k in ("delete", "truncate", "append", "flip")]
    out += [(f"field:{k}", _field_mutation((k,))) for k in TOP_FIELDS]
    for i in range(3):
        out += [(f"field:members.{i}.{k}", _field_mutation(("members", i, k))) for k in MEMBER_FIELDS]
        out += [(f"field:members.{i}.standardization.{k}", _field_mutation(("members", i, "standardization", k)))
                for k in STAT_FIELDS]
    return out


@pytest.fixture(scope="module")
def reference(work):
    ens = Ensemble.load(work["ens"], device="cpu")
    raw = ens.score(PROMPTS, RESPONSES)
    return raw, ens.standardize(raw)


def test_fuzz_ensemble_directory(work, reference, tmp_path):
    raw_ref, std_ref = reference
    pool = mutations(work["ens"])
    rng = random.Random(SEED)
    outcomes = {"error": 0, "identical": 0}
    failures = []
    for i in range(N):
        label, mutate = pool[i % len(pool)] if i < len(pool) and N >= len(pool) else rng.choice(pool)
        d = tmp_path / f"m{i}"
        shutil.copytree(work["ens"], d)
        what = mutate(d, random.Random(SEED * 100_003 + i))
        try:
            ens = Ensemble.load(d, device="cpu")
            raw = ens.score(PROMPTS, RESPONSES)
            std = ens.standardize(raw)
        except ManifestError as e:
            msg = str(e)
            named = str(d / "ensemble.json") in msg or "member '" in msg or "members " in msg
            if not named:
                failures.append(f"{what}: ManifestError names neither the manifest nor a member: {msg}")
            outcomes["error"] += 1
        except Exception as e:  # anything else is a bug
            failures.append(f"{what}: {type(e).__name__}: {e}"[:400])
        else:
            manifest_flip = label.startswith("file:") and label.endswith("ensemble.json")
            if not np.array_equal(raw, raw_ref):
                failures.append(f"{what}: loaded with different raw scores")
            elif not manifest_flip and not np.array_equal(std, std_ref):
                failures.append(f"{what}: loaded with different standardized scores")
            else:
                outcomes["identical"] += 1
        shutil.rmtree(d, ignore_errors=True)
    print(f"fuzz: {N} mutations (seed {SEED}, pool {len(pool)}): {outcomes}, {len(failures)} failure(s)")
    assert not failures, "\n".join(failures[:20])


def test_fuzz_without_verification_truncated_or_deleted_files_are_errors(work, reference, tmp_path):
    """With verify=False (no hashing) damage must still never load silently: every
    truncated or deleted member file is an error or leaves the scores identical."""
    raw_ref, _ = reference
    files = sorted(str(p.relative_to(work["ens"])) for p in work["ens"].rglob("*")
                   if p.is_file() and p.name != "ensemble.json")
    failures = []
    for i, (rel, kind) in enumerate((f, k) for f in files for k in ("delete", "truncate")):
        d = tmp_path / f"m{i}"
        shutil.copytree(work["ens"], d)
        what = _file_mutation(kind, rel)(d, random.Random(SEED + i))
        try:
            raw = Ensemble.load(d, device="cpu", verify=False).score(PROMPTS, RESPONSES)
        except ManifestError as e:
            if "member '" not in str(e) and str(d / "ensemble.json") not in str(e):
                failures.append(f"{what}: error names no member: {e}")
        except Exception as e:
            failures.append(f"{what}: {type(e).__name__}: {e}"[:400])
        else:
            if not np.array_equal(raw, raw_ref):
                failures.append(f"{what}: loaded with different raw scores")
        shutil.rmtree(d, ignore_errors=True)
    assert not failures, "\n".join(failures)
