"""The artifact cache's keys and entries (world/cache.py) beyond build-once: canonical key
dicts, the default directory, markers, size-only verification."""

import json
import math
from pathlib import Path

import pytest

from rewardherd.world import cache
from rewardherd.world.cache import MARKER, cached_artifact, hash_key, read_marker, verify_entry


def test_canonical_sorts_keys_stringifies_paths_and_folds_integral_floats():
    got = cache._canonical({"b": (1.0, Path("/x/y")), "a": {2: 2.5, 1: [3.0, float("inf")]}})
    assert got == {"a": {"1": [3, math.inf], "2": 2.5}, "b": [1, "/x/y"]}
    assert list(got) == ["a", "b"] and list(got["a"]) == ["1", "2"]
    assert cache._canonical(2.0**53) == 2.0**53  # too large to be sure it is an integer: kept as a float
    assert cache._canonical(True) is True  # not turned into 1


def test_hash_key_is_hex_of_the_requested_length_and_sees_every_value():
    k = hash_key({"a": 1})
    assert len(k) == 16 and int(k, 16) >= 0
    assert len(hash_key({"a": 1}, length=8)) == 8 and hash_key({"a": 1}, length=8) == k[:8]
    assert hash_key({"a": (1, 2)}) == hash_key({"a": [1, 2]})  # tuples and lists alike (JSON)
    assert hash_key({"a": [1, 2]}) != hash_key({"a": [2, 1]})  # order inside a list matters
    assert hash_key({"a": {"b": 1}}) != hash_key({"a": {"b": 1, "c": None}})
    assert hash_key({"p": Path("/x")}) == hash_key({"p": "/x"})


def test_default_cache_dir_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("REWARDHERD_CACHE", str(tmp_path / "c"))
    assert cache.default_cache_dir() == tmp_path / "c"
    monkeypatch.setenv("REWARDHERD_CACHE", "~/elsewhere")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.default_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("REWARDHERD_CACHE")
    assert cache.default_cache_dir() == tmp_path / ".cache" / "rewardherd"


def test_the_marker_holds_the_key_its_dict_the_metadata_and_every_file(tmp_path):
    def build(out):
        (out / "x.txt").write_text("abc")
        return {"rows": 3}

    p = cached_artifact(tmp_path, "thing", {"config": {"b": 1.0, "a": Path("/p")}}, build)
    m = read_marker(p)
    assert p.name == m["key"] == hash_key({"kind": "thing", "cache_format": cache.CACHE_FORMAT_VERSION,
                                           "config": {"b": 1, "a": "/p"}})
    assert m["key_dict"] == {"config": {"a": "/p", "b": 1}} and m["meta"] == {"rows": 3} and m["kind"] == "thing"
    assert m["files"] == {"x.txt": {"size": 3, "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}}
    assert verify_entry(p, m["key"]) and not verify_entry(p, "0" * 16)  # a marker of another key


def test_size_only_verification_misses_a_same_size_change_and_hashes_catch_it(tmp_path):
    calls = []

    def build(out):
        calls.append(1)
        (out / "x.txt").write_text("abc")

    p = cached_artifact(tmp_path, "thing", {"x": 1}, build)
    (p / "x.txt").write_text("abd")  # same size, other bytes
    assert verify_entry(p, check_hashes=False) and not verify_entry(p)
    assert cached_artifact(tmp_path, "thing", {"x": 1}, build, check_hashes=False) == p and len(calls) == 1
    assert cached_artifact(tmp_path, "thing", {"x": 1}, build) == p and len(calls) == 2  # rebuilt
    assert (p / "x.txt").read_text() == "abc"


@pytest.mark.parametrize("marker", ["not json", json.dumps({"key": "k", "files": {"gone.txt": {"size": 1}}})])
def test_an_unreadable_marker_or_a_missing_file_is_not_an_entry(tmp_path, marker):
    (tmp_path / MARKER).write_text(marker)
    assert not verify_entry(tmp_path)
    assert not verify_entry(tmp_path / "nowhere")


def test_each_kind_has_its_own_folder(tmp_path):
    a = cached_artifact(tmp_path, "corpus", {"x": 1}, lambda out: (out / "f").write_text("1") and None)
    b = cached_artifact(tmp_path, "tokenizer", {"x": 1}, lambda out: (out / "f").write_text("1") and None)
    assert a.parent.name == "corpus" and b.parent.name == "tokenizer" and a.name != b.name  # the kind is in the key
