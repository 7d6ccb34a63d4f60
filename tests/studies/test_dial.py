"""The sharing sweep's pool link: a hard link, or an atomic copy where links fail."""

import os

from rewardherd.studies import dial


def test_link_falls_back_to_an_atomic_copy(tmp_path, monkeypatch):
    src = tmp_path / "a" / "pool.parquet"
    src.parent.mkdir()
    src.write_bytes(b"pool bytes")
    dial._link(src, tmp_path / "b" / "pool.parquet")
    assert os.path.samefile(src, tmp_path / "b" / "pool.parquet")

    def no_link(*a):
        raise OSError("cross-device link")

    monkeypatch.setattr(dial.os, "link", no_link)
    dial._link(src, tmp_path / "c" / "pool.parquet")
    assert (tmp_path / "c" / "pool.parquet").read_bytes() == b"pool bytes"
    assert not os.path.samefile(src, tmp_path / "c" / "pool.parquet")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["pool.parquet"]  # no temporary left behind
