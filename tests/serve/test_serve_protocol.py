"""rewardherd.serve.protocol: query splitting and request validation, without HTTP."""

import pytest

from rewardherd.serve.config import ServeConfig
from rewardherd.serve.protocol import (
    RequestError,
    parse_get_reward,
    parse_json,
    parse_score,
    split_query,
    strip_tokens,
)

TOKENS = ("<|endoftext|>", "<|pad|>")
LIMITS = {"max_items": 4, "max_text_chars": 20}


# ------------------------------------------------------------------- splitting
def test_split_query_prompt_prefix_becomes_the_prompt():
    assert split_query("Q: hi A: yes", "Q: hi ") == ("Q: hi ", "A: yes")


def test_split_query_without_prompt_is_all_response():
    assert split_query("Q: hi A: yes", None) == ("", "Q: hi A: yes")


def test_split_query_prompt_that_is_not_a_prefix_is_ignored():
    assert split_query("Q: hi A: yes", "something else") == ("", "Q: hi A: yes")


def test_split_query_empty_prompt_is_ignored():
    assert split_query("abc", "") == ("", "abc")


def test_split_query_strips_left_padding_and_eos_first():
    # OpenRLHF decodes left-padded sequences with their special tokens.
    q = "<|pad|><|pad|>Q: hi A: yes<|endoftext|>"
    assert split_query(q, "Q: hi ", TOKENS) == ("Q: hi ", "A: yes")


def test_split_query_keeps_tokens_when_not_asked_to_strip():
    q = "<|pad|>Q: hi A: yes<|endoftext|>"
    assert split_query(q, "Q: hi ", ()) == ("", q)


def test_strip_tokens_removes_whole_tokens_only():
    # str.strip("<|pad|>") would eat the trailing ">" and "|" of the text too.
    assert strip_tokens("a|>b>|<|pad|>", ("<|pad|>",)) == "a|>b>|"
    assert strip_tokens("<|pad|><|endoftext|>x<|endoftext|><|pad|>", TOKENS) == "x"
    assert strip_tokens("<|pad|>", TOKENS) == ""
    assert strip_tokens("mid<|pad|>dle", TOKENS) == "mid<|pad|>dle"


# ----------------------------------------------------------------- JSON bodies
@pytest.mark.parametrize("body", [b"", b"{", b"[1,]", b'{"a": NaN}', b'{"a": Infinity}', b"\xff\xfe\xfa",
                                  b"[" * 100_000])
def test_parse_json_rejects_malformed_bodies_with_400(body):
    with pytest.raises(RequestError) as e:
        parse_json(body)
    assert e.value.status == 400
    assert "malformed JSON" in e.value.detail


# ------------------------------------------------------------------ get_reward
def test_parse_get_reward_splits_each_query():
    req = parse_get_reward({"query": ["P1 r1", "zz"], "prompts": ["P1 ", "P2 "], "labels": ["x", None],
                            "templates": "ignored"}, **LIMITS)
    assert req.prompts == ["P1 ", ""]
    assert req.responses == ["r1", "zz"]


def test_parse_get_reward_accepts_null_prompts_and_missing_labels():
    req = parse_get_reward({"query": ["a", "b"], "prompts": None}, **LIMITS)
    assert req.responses == ["a", "b"]
    req = parse_get_reward({"query": ["a", "b"], "prompts": ["a", None]}, **LIMITS)
    assert req.prompts == ["a", ""] and req.responses == ["", "b"]


@pytest.mark.parametrize(
    "data, status, needle, index",
    [
        ([1], 422, "JSON object", None),
        ({}, 422, "'query' is required", None),
        ({"query": "abc"}, 422, "list of strings", None),
        ({"query": ["a", 3]}, 422, "query[1] must be a string", 1),
        ({"query": ["a", "b"], "prompts": ["a"]}, 422, "1 entries for 2 queries", None),
        ({"query": ["a", "b"], "prompts": "a"}, 422, "'prompts' must be a list", None),
        ({"query": ["a", "b"], "prompts": ["a", 7]}, 422, "prompts[1]", 1),
        ({"query": ["a", "x" * 21]}, 422, "query[1] has 21 characters; the limit is 20", 1),
        ({"query": ["a", "b"], "prompts": [None, "y" * 21]}, 422, "prompts[1] has 21 characters", 1),
        ({"query": ["a"] * 5}, 413, "5 items; the limit is 4", None),
    ],
)
def test_parse_get_reward_rejects_the_whole_request(data, status, needle, index):
    with pytest.raises(RequestError) as e:
        parse_get_reward(data, **LIMITS)
    assert e.value.status == status
    assert needle in e.value.detail
    assert e.value.index == index


def test_text_limit_is_inclusive():
    parse_get_reward({"query": ["x" * 20]}, **LIMITS)  # exactly at the limit is fine


# ---------------------------------------------------------------------- score
def _score(data, n_members=3, method="mean", params=None):
    return parse_score(data, default_method=method, default_params=params or {}, n_members=n_members, **LIMITS)


def test_parse_score_validates_each_item_on_its_own():
    req = _score({"items": [
        {"prompt": "p", "response": "r", "id": "a"},
        {"prompt": "p"},
        "not an object",
        {"prompt": [{"role": "user", "content": "hi"}], "response": [{"role": "assistant", "content": "yo"}]},
    ]})
    assert req.items[0] == ("p", "r") and req.ids[0] == "a"
    assert req.items[1] is None and "field 'response' is required" in req.errors[1]
    assert req.items[2] is None and "items[2] must be an object" in req.errors[2]
    assert req.items[3] is not None and req.errors[3] is None


def test_parse_score_invalid_items_keep_a_plain_id():
    req = _score({"items": [{"prompt": 5, "response": "r", "id": "named"}, {"prompt": 5, "id": ["x"]}]})
    assert req.items == [None, None]
    assert req.ids == ["named", None]


@pytest.mark.parametrize(
    "item, needle",
    [
        ({"prompt": 1, "response": "r"}, "items[0].prompt must be a string or a list of messages"),
        ({"prompt": "p", "response": "r" * 21}, "items[0].response has 21 characters; the limit is 20"),
        # a message list counts one per message plus its role and content characters: 1 + 4 + 21
        ({"prompt": [{"role": "user", "content": "x" * 21}], "response": "r"}, "items[0].prompt has 26 characters"),
        ({"prompt": [{"role": "user"}], "response": "r"}, "items[0].prompt[0] must be an object"),
        ({"prompt": "p", "response": "r", "extra": 1}, "unknown field(s) ['extra']"),
        ({"prompt": "p", "response": "r", "id": {"a": 1}}, "id must be a string, number or null"),
    ],
)
def test_parse_score_item_errors_name_the_field(item, needle):
    req = _score({"items": [item]})
    assert req.items == [None]
    assert needle in req.errors[0]


def test_parse_score_method_and_params_rules():
    # No method: the server's method, with request params overriding the server's.
    req = _score({"items": [], "params": {"lam": 2.0}}, method="uncertainty_weighted", params={"lam": 0.5, "ddof": 1})
    assert (req.method, req.params) == ("uncertainty_weighted", {"lam": 2.0, "ddof": 1})
    # A method: its params alone (the server's belong to another method).
    req = _score({"items": [], "method": "soft_min", "params": {"temperature": 0.5}},
                 method="uncertainty_weighted", params={"lam": 0.5})
    assert (req.method, req.params) == ("soft_min", {"temperature": 0.5})


@pytest.mark.parametrize(
    "data, status, needle",
    [
        ({"items": [], "method": "nope"}, 422, "unknown aggregation method"),
        ({"items": [], "method": "mean", "params": {"lam": 1}}, 422, "takes no parameter"),
        ({"items": [], "method": "uncertainty_weighted", "params": {"lam": -1}}, 422, "lam must be >= 0"),
        ({"items": [], "method": "soft_min", "params": {"temperature": "hot"}}, 422, "finite number"),
        ({"items": [], "method": 3}, 422, "'method' must be a string"),
        ({"items": [], "params": [1]}, 422, "'params' must be an object"),
        ({"items": {}}, 422, "'items' must be a list"),
        ({"items": [], "extra": 1}, 422, "unknown field(s) ['extra']"),
        ({"items": [{"prompt": "p", "response": "r"}] * 5}, 413, "5 items; the limit is 4"),
        ("text", 422, "JSON object"),
    ],
)
def test_parse_score_rejects_bad_requests_as_a_whole(data, status, needle):
    with pytest.raises(RequestError) as e:
        _score(data)
    assert e.value.status == status
    assert needle in e.value.detail


def test_ddof_one_needs_two_members():
    with pytest.raises(RequestError, match="more than 1 member"):
        _score({"items": [], "method": "mean_minus_std", "params": {"ddof": 1}}, n_members=1)


# --------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"method": "avg"}, "unknown aggregation method"),
        ({"max_items": 0}, "max_items must be an integer >= 1"),
        ({"max_body_bytes": 1.5}, "max_body_bytes must be an integer"),
        ({"max_wait_ms": -1}, "max_wait_ms must be >= 0"),
        ({"token": ""}, "token must be a non-empty string"),
    ],
)
def test_serve_config_validates(kwargs, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        ServeConfig(**kwargs)


def test_serve_config_does_not_print_its_token():
    assert "s3cret" not in repr(ServeConfig(token="s3cret"))
