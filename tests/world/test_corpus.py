import pytest

from rewardherd.world.config import CorpusConfig
from rewardherd.world.corpus import (
    SPLITS,
    CorpusNotFoundError,
    clean_item,
    load_corpus,
    source_files,
    split_items,
)


def test_split_on_percent_and_blank_lines():
    assert split_items("one\ntwo\n%\nthree\n%\n") == ["one\ntwo", "three"]
    assert split_items("one\ntwo\n\nthree\n\n\nfour") == ["one\ntwo", "three", "four"]


def test_clean_item_drops_attribution_and_collapses_whitespace():
    raw = "A bird in the hand\n   is worth two.\n\t\t-- Cervantes\n\t\tDon Quixote"
    assert clean_item(raw) == "A bird in the hand is worth two."
    assert clean_item(raw, strip_attribution=False).endswith("Don Quixote")


def test_missing_corpus_says_how_to_install(tmp_path):
    with pytest.raises(CorpusNotFoundError, match="apt-get update && apt-get install"):
        load_corpus(CorpusConfig(fortunes_dir=str(tmp_path / "nope")))
    with pytest.raises(CorpusNotFoundError, match="--corpus"):
        load_corpus(CorpusConfig(path=str(tmp_path / "missing.txt")))


def test_offensive_and_excluded_files_are_skipped(tmp_path):
    (tmp_path / "off").mkdir()
    (tmp_path / "off" / "rude").write_text("rude words here and more\n%\n")
    (tmp_path / "art").write_text("ascii art\n%\n")
    (tmp_path / "wisdom").write_text("wise words are spoken here\n%\n")
    (tmp_path / "wisdom.dat").write_bytes(b"\x00")
    names = [p.name for p in source_files(CorpusConfig(fortunes_dir=str(tmp_path)))]
    assert names == ["wisdom"]


def test_partitions_are_disjoint_stable_and_deduplicated(corpus_file, tmp_path):
    cfg = CorpusConfig(path=str(corpus_file))
    items = load_corpus(cfg)
    assert {it.split for it in items} <= set(SPLITS)
    assert len({it.text.lower() for it in items}) == len(items)
    # Reordering the file does not move an item to another partition.
    texts = [it.text for it in items]
    rev = tmp_path / "rev.txt"
    rev.write_text("\n\n".join(reversed(texts + texts[:5])))  # blank-line format, duplicates
    items2 = load_corpus(CorpusConfig(path=str(rev)))
    assert {(i.text, i.split) for i in items} == {(i.text, i.split) for i in items2}


def test_max_items_subset(corpus_file):
    items = load_corpus(CorpusConfig(path=str(corpus_file), max_items=50))
    assert len(items) == 50
