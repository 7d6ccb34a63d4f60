"""write_preferences: explicit format, round trip, atomic write, no silent overwrite."""

import json

import pytest

from rewardherd.data import PreferencePair, load_preferences, write_preferences
from rewardherd.data import loading as loading_module


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
@pytest.mark.parametrize("conversational", [False, True], ids=["text", "chat"])
def test_round_trip(tmp_path, make_pairs, suffix, conversational):
    pairs = make_pairs(6, conversational=conversational)
    # some margins set, one conversational message with an extra key
    pairs[1] = PreferencePair(
        pairs[1].id, pairs[1].prompt, pairs[1].chosen, pairs[1].rejected, 0.25
    )
    if conversational:
        extra = [{"role": "system", "content": "be brief", "name": "sys"}, *pairs[2].prompt]
        pairs[2] = PreferencePair(pairs[2].id, extra, pairs[2].chosen, pairs[2].rejected)
    path = write_preferences(pairs, tmp_path / f"out{suffix}")
    loaded, report = load_preferences(path)
    assert loaded == pairs
    assert report.warnings == [] and report.skipped == {}


def test_jsonl_is_explicit_prompt_form(tmp_path, pairs):
    path = write_preferences(pairs[:1], tmp_path / "out.jsonl")
    record = json.loads(path.read_text().splitlines()[0])
    assert list(record) == ["id", "prompt", "chosen", "rejected"]  # no margin when unset


def test_refuses_overwrite_unless_asked(tmp_path, pairs):
    path = tmp_path / "out.jsonl"
    write_preferences(pairs, path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_preferences(pairs[:2], path)
    assert len(load_preferences(path)[0]) == len(pairs)
    write_preferences(pairs[:2], path, overwrite=True)
    assert len(load_preferences(path)[0]) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temp files left


def test_failed_write_leaves_old_file_and_no_temp(tmp_path, pairs, monkeypatch):
    path = tmp_path / "out.jsonl"
    write_preferences(pairs, path)
    before = path.read_bytes()

    def boom(records, f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(loading_module, "_write_jsonl", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_preferences(pairs[:1], path, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_write_rejects_bad_input(tmp_path, make_pairs):
    with pytest.raises(ValueError, match="supports .jsonl and .parquet"):
        write_preferences(make_pairs(2), tmp_path / "out.csv")
    mixed = make_pairs(2) + make_pairs(2, conversational=True)
    with pytest.raises(ValueError, match="mix"):
        write_preferences(mixed, tmp_path / "out.jsonl")
    assert list(tmp_path.iterdir()) == []


def test_file_appearing_during_write_is_not_overwritten(tmp_path, pairs, monkeypatch):
    path = tmp_path / "out.jsonl"
    real_write = loading_module._write_jsonl

    def racing_write(records, f):
        path.write_text("someone else's data\n")
        real_write(records, f)

    monkeypatch.setattr(loading_module, "_write_jsonl", racing_write)
    with pytest.raises(FileExistsError):
        write_preferences(pairs, path)
    assert path.read_text() == "someone else's data\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_empty_round_trip(tmp_path, suffix):
    path = write_preferences([], tmp_path / f"empty{suffix}")
    pairs, report = load_preferences(path)
    assert pairs == [] and report.n_read == 0
