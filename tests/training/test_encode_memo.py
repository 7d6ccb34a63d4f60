"""Member training tokenizes each (prompt, response) once per process and tokenizer."""

from rewardherd.models.formatting import encode_batch
from rewardherd.models.tiny import build_tokenizer
from rewardherd.training import member


def test_memoized_encoding_equals_encode_batch_and_is_reused(monkeypatch):
    member._ENCODED.clear()
    tok = build_tokenizer()
    prompts = ["item 1: ", "item 2: ", "item 1: "]
    responses = ["good good", "bad " * 40, "good good"]
    want = encode_batch(tok, prompts, responses, 16)
    assert member._encode_batch(tok, prompts, responses, 16) == want  # truncation counted per sequence
    calls = []
    real = member.encode
    monkeypatch.setattr(member, "encode", lambda *a: calls.append(a) or real(*a))
    ids, n_trunc = member._encode_batch(tok, prompts, responses, 16)
    assert (ids, n_trunc) == want and calls == []  # all from the memo
    ids[0].append(-1)  # callers get copies: the memo is not changed through them
    assert member._encode_batch(tok, prompts, responses, 16) == want
    member._encode_batch(tok, prompts, responses, 32)  # another max_length is another entry
    assert len(calls) == 2  # two distinct pairs
    member._ENCODED.clear()


def test_chat_pairs_are_not_memoized():
    member._ENCODED.clear()
    tok = build_tokenizer()
    msgs = [[{"role": "user", "content": "hi"}]]
    ids, _ = member._encode_batch(tok, msgs, [[{"role": "assistant", "content": "yes"}]], 32)
    assert ids == encode_batch(tok, msgs, [[{"role": "assistant", "content": "yes"}]], 32)[0]
    assert member._ENCODED == {}
