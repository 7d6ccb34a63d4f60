"""Loading preference files: formats, TRL forms, errors with file/line/field, reports."""

import json
import pickle

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rewardherd.data import (
    LoadReport,
    PreferenceDataError,
    PreferencePair,
    load_preferences,
    make_pair_id,
)
from rewardherd.data.loading import MAX_EXAMPLES

GOOD = {"prompt": "Q", "chosen": "yes", "rejected": "no"}
CHAT_P = [{"role": "user", "content": "What color is the sky?"}]
CHAT_C = [{"role": "assistant", "content": "It is blue."}]
CHAT_R = [{"role": "assistant", "content": "It is green."}]


# --- malformed input: one case per class; the error names file, line and field ---------

# (rows written after one good row, so the bad row is on line 2; field; detail fragment;
#  soft reason or None for structural)
MALFORMED = {
    "invalid_json": (['{"chosen": "a", "rejected": '], None, "invalid JSON", None),
    "not_an_object": (["[1, 2]"], None, "expected a JSON object, got list", None),
    "missing_chosen": ([{"prompt": "Q", "rejected": "no"}], "chosen", "missing field", None),
    "null_rejected": ([{"chosen": "a", "rejected": None}], "rejected", "missing field", None),
    "chosen_wrong_type": (
        [{"prompt": "Q", "chosen": 3, "rejected": "no"}],
        "chosen",
        "expected a string or a list of messages, got int",
        None,
    ),
    "prompt_wrong_type": (
        [{"prompt": {"a": 1}, "chosen": "a", "rejected": "b"}],
        "prompt",
        "expected a string or a list of messages, got dict",
        None,
    ),
    "margin_wrong_type": (
        [{**GOOD, "chosen": "x", "margin": "0.5"}],
        "margin",
        "expected a number, got str",
        None,
    ),
    "margin_bool": ([{**GOOD, "chosen": "x", "margin": True}], "margin", "got bool", None),
    "id_wrong_type": ([{**GOOD, "chosen": "x", "id": 1.5}], "id", "got float", None),
    "id_empty": ([{**GOOD, "chosen": "x", "id": ""}], "id", "empty string", None),
    "message_missing_content": (
        [{"prompt": CHAT_P, "chosen": [{"role": "assistant"}], "rejected": CHAT_R}],
        "chosen",
        "message index 0: missing key 'content'",
        None,
    ),
    "message_not_a_dict": (
        [{"prompt": CHAT_P, "chosen": CHAT_C, "rejected": ["hi"]}],
        "rejected",
        "message index 0: expected an object",
        None,
    ),
    "rejected_kind_mismatch": (
        [{"prompt": "Q", "chosen": "a", "rejected": CHAT_R}],
        "rejected",
        "expected a string like 'chosen', got list",
        None,
    ),
    "mixed_plain_and_conversational_rows": (
        [{"prompt": CHAT_P, "chosen": CHAT_C, "rejected": CHAT_R}],
        "chosen",
        "conversational row in a file whose first row",
        None,
    ),
    "empty_text": (
        [{"prompt": "Q", "chosen": "a", "rejected": "  "}],
        "rejected",
        "empty text",
        "empty_text",
    ),
    "chosen_equals_rejected": (
        [{"prompt": "Q", "chosen": "same", "rejected": "same"}],
        "rejected",
        "identical to 'chosen'",
        "chosen_equals_rejected",
    ),
    "duplicate_pair": ([GOOD], None, "duplicate of", "duplicate_pair"),
    "duplicate_id": (
        [
            {
                "prompt": "Q",
                "chosen": "other",
                "rejected": "no",
                "id": make_pair_id("Q", "yes", "no"),
            }
        ],
        "id",
        "duplicate id",
        "duplicate_id",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED), ids=str)
def test_malformed_row_error_names_file_line_field(write_jsonl, case):
    rows, field, fragment, reason = MALFORMED[case]
    path = write_jsonl([GOOD, *rows])
    with pytest.raises(PreferenceDataError) as info:
        load_preferences(path)
    err = info.value
    assert err.path == str(path)
    assert err.line == 2 and err.unit == "line"
    assert err.field == field
    assert err.reason == reason
    message = str(err)
    assert message.startswith(f"{path}:2: ")
    if field is not None:
        assert f"field '{field}': " in message
    assert fragment in message
    if reason is not None:
        assert "skip_invalid=True" in message


def test_message_format_matches_spec(write_jsonl):
    path = write_jsonl([GOOD, GOOD | {"chosen": 17}])
    with pytest.raises(PreferenceDataError) as info:
        load_preferences(path)
    assert str(info.value) == (
        f"{path}:2: field 'chosen': expected a string or a list of messages, got int"
    )
    assert isinstance(info.value, ValueError)


def test_line_numbers_count_blank_lines(write_jsonl):
    path = write_jsonl([GOOD, "", "   ", '{"chosen": 1, "rejected": "b"}'])
    with pytest.raises(PreferenceDataError) as info:
        load_preferences(path)
    assert info.value.line == 4


def test_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"chosen": "\xff"}\n')
    with pytest.raises(PreferenceDataError, match=r"data\.jsonl:2: not valid UTF-8"):
        load_preferences(path)


def test_structural_errors_raise_even_with_skip_invalid(write_jsonl):
    path = write_jsonl([GOOD, {"prompt": "Q", "chosen": 3, "rejected": "no"}])
    with pytest.raises(PreferenceDataError, match="got int"):
        load_preferences(path, skip_invalid=True)


def test_error_survives_pickling():
    err = PreferenceDataError(
        "empty text", path="d.jsonl", line=3, field="chosen", reason="empty_text"
    )
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err) == "d.jsonl:3: field 'chosen': empty text"
    assert (copy.path, copy.line, copy.field, copy.reason) == ("d.jsonl", 3, "chosen", "empty_text")


# --- CSV ----------------------------------------------------------------------------


def test_csv_loads_and_parses_margin_and_ids(write_csv):
    path = write_csv(
        ["id", "prompt", "chosen", "rejected", "margin"],
        [["a", "Q1", "yes", "no", "0.5"], ["", "Q2", "NA", "no", ""]],
    )
    pairs, report = load_preferences(path)
    assert pairs[0] == PreferencePair(id="a", prompt="Q1", chosen="yes", rejected="no", margin=0.5)
    # empty id/margin cells mean absent; text like "NA" stays text
    assert pairs[1] == PreferencePair(
        id=make_pair_id("Q2", "NA", "no"), prompt="Q2", chosen="NA", rejected="no"
    )
    assert (report.n_read, report.n_loaded) == (2, 2)


def test_csv_error_reports_physical_line_of_multiline_record(write_csv):
    # Row 1 spans lines 2-3 (quoted newline), so the bad record starts on line 4.
    path = write_csv(
        ["prompt", "chosen", "rejected", "margin"],
        [["Q", "line one\nline two", "no", "1"], ["Q", "yes", "no", "high"]],
    )
    with pytest.raises(PreferenceDataError) as info:
        load_preferences(path)
    assert (info.value.line, info.value.field) == (4, "margin")
    assert str(info.value) == f"{path}:4: field 'margin': expected a number, got 'high'"


def test_csv_missing_column_is_missing_field(write_csv):
    path = write_csv(["prompt", "chosen"], [["Q", "yes"]])
    with pytest.raises(PreferenceDataError) as info:
        load_preferences(path)
    assert (info.value.line, info.value.field) == (2, "rejected")
    assert "missing field" in str(info.value)


def test_csv_too_many_cells(write_csv):
    path = write_csv(["prompt", "chosen", "rejected"], [["Q", "a", "b"], ["Q", "a", "c", "extra"]])
    with pytest.raises(PreferenceDataError, match=r"data\.csv:3: expected 3 cells"):
        load_preferences(path)


# --- Parquet and datasets directories (0-based row index) ----------------------------


def test_parquet_loads_and_errors_name_row_index(tmp_path):
    path = tmp_path / "data.parquet"
    table = pa.table(
        {"prompt": ["Q1", "Q2", "Q3"], "chosen": ["a", "b", ""], "rejected": ["x", "y", "z"]}
    )
    pq.write_table(table, path)
    with pytest.raises(PreferenceDataError) as info:
        load_preferences(path)
    assert (info.value.line, info.value.unit, info.value.field) == (2, "row", "chosen")
    assert str(info.value).startswith(f"{path}: row index 2: field 'chosen': empty text")
    pairs, report = load_preferences(path, skip_invalid=True)
    assert [p.chosen for p in pairs] == ["a", "b"]
    assert report.skipped == {"empty_text": 1}
    assert report.examples[0].startswith(f"{path}: row index 2:")


def test_parquet_nullable_columns_mean_absent(tmp_path):
    path = tmp_path / "data.parquet"
    table = pa.table(
        {
            "id": [None, "b"],
            "chosen": ["Q: hi A: yes", "a"],
            "rejected": ["Q: hi A: no", "b"],
            "prompt": [None, "P"],
            "margin": [None, 2.0],
        }
    )
    pq.write_table(table, path)
    pairs, _ = load_preferences(path)
    assert pairs[0].prompt == "Q: hi A:" and pairs[0].margin is None
    assert pairs[0].id == make_pair_id("Q: hi A:", " yes", " no")
    assert pairs[1] == PreferencePair(id="b", prompt="P", chosen="a", rejected="b", margin=2.0)


def test_dataset_dir_loads_conversational(tmp_path):
    import datasets

    rows = [
        {"prompt": CHAT_P, "chosen": CHAT_C, "rejected": CHAT_R, "id": 1},
        {
            "prompt": CHAT_P,
            "chosen": CHAT_R,
            "rejected": [{"role": "assistant", "content": ""}],
            "id": 2,
        },
    ]
    datasets.Dataset.from_list(rows).save_to_disk(tmp_path / "ds")
    with pytest.raises(PreferenceDataError) as info:
        load_preferences(tmp_path / "ds")
    assert (info.value.line, info.value.unit, info.value.field) == (1, "row", "rejected")
    assert str(info.value).startswith(f"{tmp_path / 'ds'}: row index 1: field 'rejected'")
    pairs, report = load_preferences(tmp_path / "ds", skip_invalid=True)
    assert pairs == [PreferencePair(id="1", prompt=CHAT_P, chosen=CHAT_C, rejected=CHAT_R)]
    assert pairs[0].is_conversational
    assert report.skipped == {"empty_text": 1}


def test_dataset_dict_dir(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list([GOOD])
    datasets.DatasetDict({"train": ds}).save_to_disk(tmp_path / "one")
    pairs, _ = load_preferences(tmp_path / "one")
    assert [p.chosen for p in pairs] == ["yes"]
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(tmp_path / "two")
    with pytest.raises(ValueError, match="pass one split's directory"):
        load_preferences(tmp_path / "two")
    pairs, _ = load_preferences(tmp_path / "two" / "test")
    assert len(pairs) == 1


def test_unsupported_inputs(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_preferences(tmp_path / "nope.jsonl")
    (tmp_path / "data.json").write_text("[]")
    with pytest.raises(ValueError, match="unsupported file type '.json'"):
        load_preferences(tmp_path / "data.json")
    (tmp_path / "plain_dir").mkdir()
    with pytest.raises(ValueError, match="not a `datasets` save_to_disk"):
        load_preferences(tmp_path / "plain_dir")


# --- TRL forms and ids --------------------------------------------------------------


def test_implicit_prompt_matches_trl_extract_prompt(write_jsonl):
    # Expected values are what trl.extract_prompt returns for these rows.
    path = write_jsonl(
        [
            {"chosen": "Q: hi A: yes", "rejected": "Q: hi A: no"},
            {"chosen": "ab", "rejected": "cd"},
            {"chosen": "I like cats", "rejected": "I like cars"},
        ]
    )
    pairs, _ = load_preferences(path)
    got = [(p.prompt, p.chosen, p.rejected) for p in pairs]
    assert got == [("Q: hi A:", " yes", " no"), ("", "ab", "cd"), ("I like ca", "ts", "rs")]


def test_implicit_prompt_when_one_text_is_prefix_of_other(write_jsonl):
    # The whole shorter text is the prompt, so its completion is empty (TRL would
    # keep back one character instead).
    path = write_jsonl([{"chosen": "Q: why? A:", "rejected": "Q: why? A: because"}])
    with pytest.raises(PreferenceDataError) as info:
        load_preferences(path)
    assert (info.value.field, info.value.reason) == ("chosen", "empty_text")


def test_implicit_prompt_conversational(write_jsonl):
    path = write_jsonl([{"chosen": CHAT_P + CHAT_C, "rejected": CHAT_P + CHAT_R}])
    pairs, _ = load_preferences(path)
    assert pairs[0] == PreferencePair(
        id=make_pair_id(CHAT_P, CHAT_C, CHAT_R), prompt=CHAT_P, chosen=CHAT_C, rejected=CHAT_R
    )


def test_implicit_chosen_equals_rejected_is_reported_as_identical(write_jsonl):
    path = write_jsonl([{"chosen": "same", "rejected": "same"}])
    with pytest.raises(PreferenceDataError) as info:
        load_preferences(path)
    assert info.value.reason == "chosen_equals_rejected"


def test_ids_are_stable_content_hashes_or_given(write_jsonl):
    path = write_jsonl([GOOD, {"prompt": "Q", "chosen": "a", "rejected": "b", "id": 42}])
    pairs, _ = load_preferences(path)
    # Pinned value: changing the hash scheme would silently rename every dataset's ids.
    assert (
        pairs[0].id == make_pair_id("Q", "yes", "no") == "752dd9d98f044acb"
    )  # sha256(b'["Q","yes","no"]')[:16]
    assert pairs[1].id == "42"


def test_int_and_str_ids_collide(write_jsonl):
    path = write_jsonl(
        [GOOD | {"id": 1}, {"prompt": "Q", "chosen": "a", "rejected": "b", "id": "1"}]
    )
    with pytest.raises(PreferenceDataError, match="duplicate id '1'"):
        load_preferences(path)


# --- skip_invalid counting and warnings ----------------------------------------------


def test_skip_invalid_counts_every_reason(write_jsonl):
    rows = [
        GOOD,  # 1 kept
        {"prompt": "Q", "chosen": "", "rejected": "no"},  # 2 empty_text
        {"prompt": "Q", "chosen": "x", "rejected": "x"},  # 3 chosen_equals_rejected
        GOOD,  # 4 duplicate_pair (of line 1)
        GOOD | {"id": "other-id"},  # 5 duplicate_pair: ids do not make content unique
        {"prompt": "Q2", "chosen": "a", "rejected": "b", "id": "k"},  # 6 kept
        {"prompt": "Q3", "chosen": "a", "rejected": "b", "id": "k"},  # 7 duplicate_id
        {"prompt": "Q", "chosen": "", "rejected": "no"},  # 8 empty_text
    ]
    path = write_jsonl(rows)
    pairs, report = load_preferences(path, skip_invalid=True)
    assert [p.id for p in pairs] == [make_pair_id("Q", "yes", "no"), "k"]
    assert report.skipped == {
        "empty_text": 2,
        "chosen_equals_rejected": 1,
        "duplicate_pair": 2,
        "duplicate_id": 1,
    }
    assert (report.n_read, report.n_loaded, report.n_skipped) == (8, 2, 6)
    assert len(report.examples) == MAX_EXAMPLES
    assert report.examples[0] == f"{path}:2: field 'chosen': empty text [empty_text]"
    assert f"{path}:4: duplicate of {path}:1" in report.examples[2]
    summary = report.summary()
    assert "loaded 2 of 8 rows" in summary
    assert (
        "skipped 6 (chosen_equals_rejected: 1, duplicate_id: 1, duplicate_pair: 2, empty_text: 2)"
        in summary
    )


def test_skipped_row_is_logged(write_jsonl, caplog):
    path = write_jsonl([GOOD, GOOD])
    with caplog.at_level("WARNING", logger="rewardherd.data"):
        load_preferences(path, skip_invalid=True)
    assert "duplicate_pair: 1" in caplog.text


def test_unknown_fields_and_prompt_in_completions_warn(write_jsonl):
    path = write_jsonl([{"prompt": "Q:", "chosen": "Q: yes", "rejected": "Q: no", "score": 1}])
    pairs, report = load_preferences(path)
    assert len(pairs) == 1
    assert "ignored unknown fields: score" in report.warnings
    assert any("prompt may be duplicated" in w for w in report.warnings)


def test_empty_file(write_jsonl):
    pairs, report = load_preferences(write_jsonl([""]))
    assert pairs == [] and report == LoadReport(path=report.path)


# --- over-long sequences: counted, never dropped -------------------------------------


def _word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "</s>": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok


def test_over_long_counted_by_chars(write_jsonl):
    # prompt + completion lengths: chosen 1+3=4, 1+10=11; rejected 1+2=3, 1+2=3
    path = write_jsonl([GOOD, {"prompt": "Q", "chosen": "0123456789", "rejected": "no"}])
    pairs, report = load_preferences(path, max_chars=5)
    assert len(pairs) == 2 and report.n_loaded == 2
    assert report.too_long == {"chosen_chars": 1, "rejected_chars": 0}
    assert report.warnings == [
        "1 of 2 chosen texts (prompt + chosen) exceed max_chars=5 characters and would be truncated"
    ]


def test_over_long_counted_by_tokens(write_jsonl):
    rows = [
        {"prompt": "a b", "chosen": " c d e", "rejected": " c"},  # 5 and 3 words
        {"prompt": "a", "chosen": " b", "rejected": " c d e f g h"},  # 2 and 7 words
        {"prompt": "a", "chosen": " b", "rejected": " c"},  # 2 and 2 words
    ]
    pairs, report = load_preferences(write_jsonl(rows), tokenizer=_word_tokenizer(), max_length=4)
    assert len(pairs) == 3
    assert report.too_long == {"chosen_tokens": 1, "rejected_tokens": 1}
    assert "1 of 3 chosen texts (prompt + chosen) exceed max_length=4 tokens" in report.warnings[0]


def test_over_long_tokens_hf_tokenizer_adds_eos_and_uses_chat_template(write_jsonl):
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_object=_word_tokenizer(), eos_token="</s>", unk_token="[UNK]"
    )
    # "a b c" is 3 words + EOS = 4 tokens, as TRL's RewardTrainer counts it
    path = write_jsonl([{"prompt": "a", "chosen": " b c", "rejected": " b"}])
    _, report = load_preferences(path, tokenizer=hf, max_length=3)
    assert report.too_long == {"chosen_tokens": 1, "rejected_tokens": 0}

    hf.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    chat = write_jsonl(
        [
            {
                "prompt": CHAT_P,
                "chosen": CHAT_C,
                "rejected": [{"role": "assistant", "content": "No."}],
            }
        ],
        name="chat.jsonl",
    )
    # contents: 5 words + 3 words = 8 tokens; 5 + 1 = 6 tokens
    _, report = load_preferences(chat, tokenizer=hf, max_length=7)
    assert report.too_long == {"chosen_tokens": 1, "rejected_tokens": 0}


def test_length_option_validation(write_jsonl):
    path = write_jsonl([GOOD])
    with pytest.raises(ValueError, match="together"):
        load_preferences(path, max_length=4)
    with pytest.raises(ValueError, match="max_chars"):
        load_preferences(path, max_chars=0)
