"""Reading a small corpus file by hand (world/corpus.py): which items survive cleaning, what
they become, where they go, and what identifies a source."""

import hashlib

import pytest

from rewardherd.world.config import CorpusConfig
from rewardherd.world.corpus import (
    SPLITS,
    CorpusItem,
    _acceptable,
    assign_split,
    clean_item,
    fingerprint,
    load_corpus,
    read_corpus,
    split_items,
    write_corpus,
)

TEXT = """The early bird catches the worm.
%
A stitch in time
    saves nine.
\t-- Benjamin Franklin
%
the EARLY bird catches the worm.
%
Too short
%
1234 5678 9012 ++++ ////
%
Every cloud has a silver lining, they say.
%
"""


def test_a_small_file_by_hand(tmp_path):
    path = tmp_path / "sayings.txt"
    path.write_text(TEXT)
    items = load_corpus(CorpusConfig(path=str(path)))
    # kept: the bird (its lower-case repeat is a duplicate), the stitch (attribution dropped, lines joined),
    # the cloud; dropped: 'Too short' (2 words < 3) and the digits (under 60% letters)
    assert sorted(it.text for it in items) == ["A stitch in time saves nine.", "Every cloud has a silver lining, they say.",
                                               "The early bird catches the worm."]
    for it in items:
        assert it.id == hashlib.sha256(it.text.encode()).hexdigest()[:16]
        assert it.source == "sayings.txt" and it.split in SPLITS
        assert it.split == assign_split(it.text, CorpusConfig(path=str(path)))
    assert [it.id for it in items] == sorted(it.id for it in items)  # ordered by id, not by file position


def test_windows_line_ends_and_blank_line_items(tmp_path):
    assert split_items("one line\r\n%\r\nand two\r\n%\r\n") == ["one line", "and two"]
    assert split_items("%\n%\n") == []  # only separators
    assert split_items("first item\n  \nsecond\n\t\nthird") == ["first item", "second", "third"]  # blank = spaces
    assert split_items("a\n% \nb") == ["a", "b"]  # a '%' line may carry trailing blanks
    path = tmp_path / "plain.txt"
    path.write_text("Words in the first item.\n\nWords in the second item.\n")
    assert sorted(it.text for it in load_corpus(CorpusConfig(path=str(path)))) == [
        "Words in the first item.", "Words in the second item."]


def test_clean_item_keeps_a_first_line_that_looks_like_an_attribution():
    assert clean_item("-- not an attribution, the item itself\n-- Author") == "-- not an attribution, the item itself"
    assert clean_item("Quote here\n\u2014 Someone") == "Quote here"  # an em dash counts too
    assert clean_item("a  b\n\n  c\t d") == "a b c d"


@pytest.mark.parametrize(("text", "ok"), [
    ("one two", False), ("one two three", True),  # min_words 3
    (" ".join(["w"] * 5), True), (" ".join(["w"] * 6), False),  # max_words 5
    ("abc 12", False),  # 3 letters of 5 non-space characters is 60%, but only 2 words
    ("abc de 12345", False),  # 5 letters of 10: under 60%
    ("abc def 1234", True),  # 6 of 10: 60% is enough
])
def test_acceptable_word_bounds_and_letter_share(text, ok):
    assert _acceptable(text, CorpusConfig(min_words=3, max_words=5)) is ok


def test_assign_split_shares_match_the_fractions():
    cfg = CorpusConfig(val_fraction=0.1, pref_train_fraction=0.2, pref_heldout_fraction=0.1, eval_fraction=0.1)
    texts = [f"item number {i}" for i in range(4000)]
    splits = [assign_split(t, cfg) for t in texts]
    share = {s: splits.count(s) / len(texts) for s in SPLITS}
    for name, frac in (("val", 0.1), ("pref_train", 0.2), ("pref_heldout", 0.1), ("eval", 0.1), ("pretrain", 0.5)):
        assert share[name] == pytest.approx(frac, abs=0.03), name  # binomial sd at most 0.008
    assert splits == [assign_split(t, cfg) for t in texts]  # a hash: the same every time


def test_write_and_read_corpus_round_trip(tmp_path):
    items = [CorpusItem(id="a1", text="Caf\u00e9 au lait, s'il vous pla\u00eet.", split="eval", source="f"),
             CorpusItem(id="b2", text="Plain", split="pretrain", source="g")]
    path = tmp_path / "items.jsonl"
    write_corpus(items, path)
    assert read_corpus(path) == items
    assert "Caf\u00e9" in path.read_text(encoding="utf-8")  # written as UTF-8, not escaped
    path.write_text(path.read_text() + "\n\n")
    assert read_corpus(path) == items  # blank lines are skipped


def test_fingerprint_names_sizes_and_hashes_each_source_file(tmp_path):
    one = tmp_path / "one.txt"
    one.write_text("some words here\n")
    fp = fingerprint(CorpusConfig(path=str(one)))
    assert fp == [["one.txt", 16, hashlib.sha256(b"some words here\n").hexdigest()[:16]]]
    d = tmp_path / "fortunes"
    (d / "sub").mkdir(parents=True)
    (d / "b").write_text("bb")
    (d / "sub" / "a").write_text("a")
    assert [row[:2] for row in fingerprint(CorpusConfig(fortunes_dir=str(d)))] == [["b", 2], ["sub/a", 1]]
    one.write_text("some words HERE\n")  # same size, other content
    assert fingerprint(CorpusConfig(path=str(one)))[0][2] != fp[0][2]


def test_max_items_keeps_a_subset_chosen_by_hash_not_by_position(tmp_path):
    texts = [f"Item number {i} has enough words." for i in range(30)]
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("\n%\n".join(texts))
    b.write_text("\n%\n".join(reversed(texts)))
    keep_a = load_corpus(CorpusConfig(path=str(a), max_items=7))
    assert len(keep_a) == 7
    assert {it.text for it in keep_a} == {it.text for it in load_corpus(CorpusConfig(path=str(b), max_items=7))}
