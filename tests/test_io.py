"""rewardherd.io: atomic file writes and the atomic-directory helper."""

import os
import stat

import pytest

from rewardherd.io import atomic_dir, write_atomic, write_json_atomic, write_text_atomic


def _names(d):
    return sorted(p.name for p in d.iterdir())


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    write_atomic(path, lambda t: t.write_text("one"))
    write_atomic(path, lambda t: t.write_text("two"))
    assert path.read_text() == "two"
    assert _names(path.parent) == ["a.txt"]


def test_text_and_json_helpers_write_utf8_in_place_and_leave_no_temp(tmp_path):
    p = tmp_path / "sub" / "DONE"
    write_text_atomic(p, "ok \u2713\n")
    write_text_atomic(p, "again \u2713\n")
    assert p.read_bytes() == "again \u2713\n".encode("utf-8")
    j = write_json_atomic(tmp_path / "sub" / "r.json", {"a": 1, "b": tmp_path})
    assert j.read_text() == '{\n  "a": 1,\n  "b": "' + str(tmp_path) + '"\n}\n'
    assert sorted(x.name for x in (tmp_path / "sub").iterdir()) == ["DONE", "r.json"]


def test_write_atomic_failure_keeps_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")

    def boom(t):
        t.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(path, boom, fsync=True)
    assert path.read_text() == "old"
    assert _names(tmp_path) == ["a.txt"]


def test_write_atomic_no_overwrite(tmp_path):
    path = tmp_path / "a.txt"
    write_atomic(path, lambda t: t.write_text("new"), overwrite=False)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_atomic(path, lambda t: t.write_text("other"), overwrite=False)
    assert path.read_text() == "new"
    assert _names(tmp_path) == ["a.txt"]


def test_write_atomic_honours_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_atomic(tmp_path / "a.txt", lambda t: t.write_text("x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # like open(), not mkstemp's 0o600


def test_atomic_dir_moves_staging_into_place(tmp_path):
    final = tmp_path / "deep" / "ens"
    with atomic_dir(final) as stage:
        assert stage.parent == final.parent and stage.name.startswith(".ens.tmp-")
        assert not final.exists()  # nothing visible until the block succeeds
        (stage / "w.bin").write_text("w")
    assert (final / "w.bin").read_text() == "w"
    assert _names(final.parent) == ["ens"]


def test_atomic_dir_exception_removes_staging_and_keeps_old(tmp_path):
    final = tmp_path / "ens"
    final.mkdir()
    (final / "w.bin").write_text("old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_dir(final, replace=True) as stage:
            (stage / "w.bin").write_text("new")
            raise RuntimeError("killed")
    assert (final / "w.bin").read_text() == "old"
    assert _names(tmp_path) == ["ens"]
    with pytest.raises(RuntimeError, match="killed"):  # and with nothing there before
        with atomic_dir(tmp_path / "fresh"):
            raise RuntimeError("killed")
    assert _names(tmp_path) == ["ens"]


def test_atomic_dir_replace(tmp_path):
    final = tmp_path / "ens"
    final.mkdir()
    (final / "stale.bin").write_text("old")
    with atomic_dir(final, replace=True) as stage:
        (stage / "w.bin").write_text("new")
    assert _names(final) == ["w.bin"]  # replaced, not merged
    assert _names(tmp_path) == ["ens"]  # the old one is gone once the new one is in place


def test_atomic_dir_refuses_existing_without_replace(tmp_path):
    final = tmp_path / "ens"
    final.mkdir()
    (final / "w.bin").write_text("old")
    with pytest.raises(FileExistsError, match="replace=True"):
        with atomic_dir(final) as stage:
            (stage / "w.bin").write_text("new")
    assert (final / "w.bin").read_text() == "old"
    assert _names(tmp_path) == ["ens"]


def test_atomic_dir_failed_swap_restores_old(tmp_path, monkeypatch):
    """If the new directory cannot be renamed into place, the old one is put back."""
    final = tmp_path / "ens"
    final.mkdir()
    (final / "w.bin").write_text("old")
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append((str(src), str(dst)))
        if len(calls) == 2:  # the second rename: staging -> final
            raise OSError("EIO")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OSError, match="EIO"):
        with atomic_dir(final, replace=True) as stage:
            (stage / "w.bin").write_text("new")
    monkeypatch.setattr(os, "replace", real)
    assert (final / "w.bin").read_text() == "old"
    assert _names(tmp_path) == ["ens"]


def test_atomic_dir_honours_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "ens") as stage:
            (stage / "w.bin").write_text("w")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ens").stat().st_mode) == 0o755  # like mkdir, not mkdtemp's 0o700
