"""Text formatting, length-bucketed batching helpers, and the tiny local models."""

import numpy as np
import pytest
import torch

from rewardherd.models.formatting import (
    encode,
    encode_batch,
    pad_token_id,
    render,
    render_messages_plain,
)
from rewardherd.models.scoring import length_buckets, pad_right
from rewardherd.models.tiny import (
    NEGATIVE,
    POSITIVE,
    build_backbone,
    build_tokenizer,
    rule_labelled_pairs,
)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


# -------------------------------------------------------------- formatting
def test_plain_format_is_prompt_plus_response_plus_eos(tok):
    ids, truncated = encode(tok, "item 1: ", "good kind")
    assert not truncated
    assert ids == tok("item 1: good kind")["input_ids"] + [tok.eos_token_id]
    assert render(tok, "item 1: ", "good kind") == ("item 1: good kind", False)


def test_eos_is_not_doubled(tok):
    ids, _ = encode(tok, "a ", "b<|endoftext|>")
    assert ids[-1] == tok.eos_token_id and ids[-2] != tok.eos_token_id


def test_truncation_keeps_the_end(tok):
    full, _ = encode(tok, "item 1: ", "good bad happy sad kind cruel warm cold")
    ids, truncated = encode(tok, "item 1: ", "good bad happy sad kind cruel warm cold", max_length=5)
    assert truncated
    assert ids == full[-5:]
    _, n = encode_batch(tok, ["x ", "item 1: "], ["y", "good bad happy sad kind cruel warm cold"], max_length=5)
    assert n == 1


def test_truncation_keeps_a_leading_special_token():
    class Bert:
        """Minimal BERT-like tokenizer stand-in: [CLS]=1 ... [SEP]=2, no EOS."""

        eos_token_id = None
        all_special_ids = [1, 2]

        def __call__(self, text, add_special_tokens=True):
            body = [10 + ord(c) for c in text]
            return {"input_ids": [1, *body, 2] if add_special_tokens else body}

    ids, truncated = encode(Bert(), "ab", "cdef", max_length=4)
    assert truncated
    assert ids == [1, 10 + ord("e"), 10 + ord("f"), 2]


def test_conversation_without_chat_template_uses_plain_fallback(tok):
    assert not getattr(tok, "chat_template", None)
    prompt = [{"role": "user", "content": "hi"}]
    response = [{"role": "assistant", "content": "good"}]
    text, templated = render(tok, prompt, response)
    assert text == "user: hi\nassistant: good\n" == render_messages_plain(prompt + response)
    assert not templated
    # a plain-string response to a conversational prompt becomes an assistant message
    assert render(tok, prompt, "good") == (text, False)


def test_conversation_with_chat_template_is_rendered_by_the_template(tok):
    import copy

    t = copy.deepcopy(tok)
    t.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    text, templated = render(t, [{"role": "user", "content": "hi"}], [{"role": "assistant", "content": "ok"}])
    assert templated and text == "<user>hi<assistant>ok"
    ids, _ = encode(t, [{"role": "user", "content": "hi"}], [{"role": "assistant", "content": "ok"}])
    assert ids == t("<user>hi<assistant>ok", add_special_tokens=False)["input_ids"]  # no EOS added to a template


def test_encode_batch_length_mismatch(tok):
    with pytest.raises(ValueError):
        encode_batch(tok, ["a"], ["b", "c"])


def test_pad_token_id_falls_back_to_eos(tok):
    assert pad_token_id(tok) == tok.pad_token_id

    class NoPad:
        pad_token_id = None
        eos_token_id = 7

    assert pad_token_id(NoPad()) == 7
    NoPad.eos_token_id = None
    with pytest.raises(ValueError, match="pad"):
        pad_token_id(NoPad())


# ----------------------------------------------------------------- scoring
def test_length_buckets_cover_every_index_once_and_group_by_length():
    lengths = [5, 1, 9, 3, 3, 7, 2]
    buckets = length_buckets(lengths, 3)
    flat = np.concatenate(buckets)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert [len(b) for b in buckets] == [3, 3, 1]
    assert [lengths[i] for i in flat] == sorted(lengths)
    with pytest.raises(ValueError):
        length_buckets(lengths, 0)


def test_pad_right_pads_with_mask():
    ids, mask = pad_right([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == mask.dtype == torch.long


# -------------------------------------------------------------------- tiny
def test_rule_labelled_pairs_follow_the_rule_and_are_deterministic():
    pairs = rule_labelled_pairs(50, seed=3)
    assert pairs == rule_labelled_pairs(50, seed=3)
    assert pairs != rule_labelled_pairs(50, seed=4)
    assert len({p.prompt for p in pairs}) == 50
    for p in pairs:
        for text, sign in ((p.chosen, 1), (p.rejected, -1)):
            words = text.split()
            assert set(words) <= set(POSITIVE) | set(NEGATIVE)
            pos = sum(w in POSITIVE for w in words)
            neg = sum(w in NEGATIVE for w in words)
            assert sign * (pos - neg) > 0


def test_tiny_backbones_are_seeded(tok):
    a, b, a2 = build_backbone(tok, 0), build_backbone(tok, 1), build_backbone(tok, 0)
    pa, pb, pa2 = (dict(m.named_parameters()) for m in (a, b, a2))
    name = "transformer.h.0.attn.c_attn.weight"
    assert torch.equal(pa[name], pa2[name])
    assert not torch.equal(pa[name], pb[name])
    assert a.config.n_layer == 2 and a.config.n_embd == 32
    assert a.config.pad_token_id == tok.pad_token_id
