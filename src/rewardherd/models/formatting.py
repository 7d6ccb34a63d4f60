"""How a (prompt, response) pair becomes token ids, identically in training and scoring.

Plain text (the documented default): ``text = prompt + response``, tokenized with the
tokenizer's special tokens (e.g. BERT's [CLS] ... [SEP]), then the tokenizer's EOS id
is appended when it has one and the text does not already end with it. This matches
TRL's RewardTrainer for explicit-prompt data (``prompt + chosen + eos``), so a member
scored by TRL, OpenRLHF or RewardBench on the same string sees the same ids. No
separator is inserted: put one in the prompt (e.g. a trailing space or newline) if
the task needs it.

Conversational data (lists of ``{"role", "content"}`` messages): the tokenizer's chat
template renders ``prompt + response`` messages when it has one; otherwise a plain
fallback renders each message as ``"{role}: {content}\\n"``.

Truncation keeps the end of the sequence (the response) and any leading special
token (BOS/CLS, which BERT-style models pool): ids = ids[:1] + ids[-(max_length-1):]
when the first id is special, else ids[-max_length:]. Callers count truncations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Text = str | list[dict[str, Any]]


def render_messages_plain(messages: list[dict[str, Any]]) -> str:
    """Fallback rendering of a conversation when the tokenizer has no chat template."""
    return "".join(f"{m['role']}: {m['content']}\n" for m in messages)


def _as_messages(x: Text, role: str) -> list[dict[str, Any]]:
    return list(x) if isinstance(x, list) else [{"role": role, "content": x}]


def render(tokenizer, prompt: Text, response: Text) -> tuple[str, bool]:
    """Render one pair as a string. Returns ``(text, already_has_special_tokens)``."""
    if isinstance(prompt, list) or isinstance(response, list):
        messages = _as_messages(prompt, "user") + _as_messages(response, "assistant")
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(messages, tokenize=False), True
        return render_messages_plain(messages), False
    return prompt + response, False


def encode(tokenizer, prompt: Text, response: Text, max_length: int | None = None) -> tuple[list[int], bool]:
    """Token ids of one (prompt, response) pair: ``(ids, truncated)``."""
    text, templated = render(tokenizer, prompt, response)
    ids = list(tokenizer(text, add_special_tokens=not templated)["input_ids"])
    eos = tokenizer.eos_token_id
    if not templated and eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    truncated = False
    if max_length is not None and len(ids) > max_length:
        truncated = True
        special = set(tokenizer.all_special_ids)
        if ids and ids[0] in special and max_length > 1:
            ids = ids[:1] + ids[-(max_length - 1) :]
        else:
            ids = ids[-max_length:]
    return ids, truncated


def encode_batch(
    tokenizer, prompts: Sequence[Text], responses: Sequence[Text], max_length: int | None = None
) -> tuple[list[list[int]], int]:
    """Encode many pairs. Returns ``(ids_per_pair, n_truncated)``."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    out, n_trunc = [], 0
    for p, r in zip(prompts, responses, strict=True):
        ids, t = encode(tokenizer, p, r, max_length)
        out.append(ids)
        n_trunc += int(t)
    return out, n_trunc


def pad_token_id(tokenizer) -> int:
    """The id used for padding: the tokenizer's pad token, else its EOS."""
    pid = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pid is None:
        raise ValueError("tokenizer has neither a pad token nor an EOS token; set tokenizer.pad_token")
    return int(pid)
