"""Reduced-precision pool scoring: bfloat16 is kept only when it ranks like float32."""

import numpy as np
import pytest
import torch

from rewardherd.models import scoring
from rewardherd.models.formatting import encode_batch, pad_token_id


@pytest.fixture()
def member_and_ids(make_ensemble):
    m = make_ensemble(1).members[0]
    rng = np.random.default_rng(0)
    words = ["good", "bad", "long", "short", "yes", "no", "the", "a"]
    prompts = [f"q{i}: " for i in range(64)]
    responses = [" ".join(rng.choice(words, size=int(rng.integers(1, 12)))) for _ in range(64)]
    ids, _ = encode_batch(m.tokenizer, prompts, responses, 64)
    return m.model, ids, pad_token_id(m.tokenizer)


def test_float32_is_the_plain_path(member_and_ids):
    model, ids, pad = member_and_ids
    scores, rec = scoring.score_ids_checked(model, ids, pad, "float32")
    assert rec == {"dtype": "float32"}
    np.testing.assert_array_equal(scores, scoring.score_ids(model, ids, pad, 128))


def test_bfloat16_ranks_like_float32_and_leaves_the_model_in_float32(member_and_ids):
    model, ids, pad = member_and_ids
    ref = scoring.score_ids(model, ids, pad, 128)
    scores, rec = scoring.score_ids_checked(model, ids, pad, "bfloat16", probe=32)
    assert rec["dtype"] == "bfloat16" and rec["probe"] == 32
    assert rec["spearman_vs_float32"] >= scoring.BF16_RANK_TOLERANCE
    assert not np.array_equal(scores, ref)  # really reduced precision
    assert np.abs(scores - ref).max() < 0.05 * max(ref.std(), 1e-3) + 0.05
    assert next(model.parameters()).dtype == torch.float32
    after, _ = scoring.score_ids_checked(model, ids, pad, "float32")
    np.testing.assert_array_equal(after, ref)  # the weights were not rounded through bfloat16


def test_disagreeing_bfloat16_falls_back_to_float32(member_and_ids, monkeypatch):
    model, ids, pad = member_and_ids
    monkeypatch.setattr(scoring, "BF16_RANK_TOLERANCE", 1.01)  # nothing passes
    scores, rec = scoring.score_ids_checked(model, ids, pad, "bfloat16")
    assert rec["dtype"] == "float32" and rec["fallback"] is True
    np.testing.assert_array_equal(scores, scoring.score_ids(model, ids, pad, 128))


def test_auto_means_float32_without_native_bfloat16(monkeypatch):
    monkeypatch.setattr(scoring, "native_bf16", lambda device="cpu": False)
    assert scoring.resolve_score_dtype("auto") == "float32"
    monkeypatch.setattr(scoring, "native_bf16", lambda device="cpu": True)
    assert scoring.resolve_score_dtype("auto") == "bfloat16"
    with pytest.raises(ValueError, match="score_dtype"):
        scoring.resolve_score_dtype("fp8")
