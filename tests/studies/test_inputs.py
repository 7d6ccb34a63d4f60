"""Reading the user's prompt files for a study: every bad line is named by file, line and field."""

import pytest

from rewardherd.studies.inputs import read_prompts


def test_text_and_jsonl_prompts(tmp_path):
    (tmp_path / "p.txt").write_text("first\n\nsecond\n")
    (tmp_path / "p.jsonl").write_text('{"prompt": "a"}\n\n{"prompt": "b", "x": 1}\n')
    assert read_prompts(str(tmp_path / "p.txt")) == ["first", "second"]
    assert read_prompts(str(tmp_path / "p.jsonl")) == ["a", "b"]


@pytest.mark.parametrize("line, msg", [
    ("5", "p.jsonl:2: field 'prompt' missing or not a string"),  # valid JSON, not an object
    ('["a"]', "p.jsonl:2: field 'prompt' missing or not a string"),
    ('{"prompt": 3}', "p.jsonl:2: field 'prompt' missing or not a string"),
    ('{"text": "a"}', "p.jsonl:2: field 'prompt' missing or not a string"),
    ("{nope", "p.jsonl:2: invalid JSON"),
])
def test_bad_jsonl_lines_name_file_line_and_field(tmp_path, line, msg):
    (tmp_path / "p.jsonl").write_text('{"prompt": "ok"}\n' + line + "\n")
    with pytest.raises(ValueError, match=msg):
        read_prompts(str(tmp_path / "p.jsonl"))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="prompts file not found"):
        read_prompts(str(tmp_path / "none.txt"))
