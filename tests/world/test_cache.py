import json

import pytest

from rewardherd.world.cache import MARKER, cached_artifact, hash_key, verify_entry


def _builder(calls, content="hello"):
    def build(tmp):
        calls.append(tmp)
        (tmp / "a.txt").write_text(content)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.bin").write_bytes(b"\x00\x01" * 10)
        return {"n": len(calls)}
    return build


def test_key_is_order_insensitive_and_int_float_stable():
    assert hash_key({"a": 1, "b": [1, 2]}) == hash_key({"b": [1, 2], "a": 1.0})
    assert hash_key({"a": 1}) != hash_key({"a": 2})


def test_builds_once_then_hits(tmp_path):
    calls = []
    p1 = cached_artifact(tmp_path, "thing", {"x": 1}, _builder(calls))
    p2 = cached_artifact(tmp_path, "thing", {"x": 1}, _builder(calls))
    assert p1 == p2 and len(calls) == 1
    meta = json.loads((p1 / MARKER).read_text())
    assert set(meta["files"]) == {"a.txt", "sub/b.bin"} and meta["meta"] == {"n": 1}
    # No temporary directories are left behind.
    assert [p.name for p in (tmp_path / "thing").iterdir() if not p.name.startswith(".")] == [p1.name]
    assert not [p for p in (tmp_path / "thing").iterdir() if p.name.startswith(".tmp")]


def test_changed_key_builds_new_entry(tmp_path):
    calls = []
    p1 = cached_artifact(tmp_path, "thing", {"x": 1}, _builder(calls))
    p2 = cached_artifact(tmp_path, "thing", {"x": 2}, _builder(calls))
    assert p1 != p2 and len(calls) == 2 and verify_entry(p1) and verify_entry(p2)


@pytest.mark.parametrize("damage", ["marker", "content", "truncate", "delete"])
def test_corrupt_or_partial_entries_are_rebuilt(tmp_path, damage):
    calls = []
    p = cached_artifact(tmp_path, "thing", {"x": 1}, _builder(calls))
    if damage == "marker":  # a partial entry: files without the completion marker
        (p / MARKER).unlink()
    elif damage == "content":  # same size, other bytes
        (p / "a.txt").write_text("jello")
    elif damage == "truncate":
        (p / "sub" / "b.bin").write_bytes(b"\x00")
    else:
        (p / "a.txt").unlink()
    assert not verify_entry(p)
    p2 = cached_artifact(tmp_path, "thing", {"x": 1}, _builder(calls))
    assert p2 == p and len(calls) == 2 and verify_entry(p2)
    assert (p2 / "a.txt").read_text() == "hello"


def test_failed_build_leaves_nothing(tmp_path):
    def broken(tmp):
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cached_artifact(tmp_path, "thing", {"x": 1}, broken)
    assert not [p for p in (tmp_path / "thing").iterdir() if not p.name.endswith(".lock")]
    calls = []
    p = cached_artifact(tmp_path, "thing", {"x": 1}, _builder(calls))
    assert verify_entry(p) and len(calls) == 1


def test_force_rebuilds(tmp_path):
    calls = []
    cached_artifact(tmp_path, "thing", {"x": 1}, _builder(calls))
    cached_artifact(tmp_path, "thing", {"x": 1}, _builder(calls), force=True)
    assert len(calls) == 2
