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


# ------------------------------------------------------------ batches at once (CPU)
@pytest.fixture()
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_concurrent_batches_score_like_one_at_a_time(member_and_ids, two_threads):
    model, ids, pad = member_and_ids
    one = scoring.score_ids(model, ids, pad, 8)
    seen = []
    hook = model.register_forward_hook(lambda *a: seen.append((torch.is_inference_mode_enabled(),
                                                                torch.get_num_threads())))
    try:
        two = scoring.score_ids(model, ids, pad, 8, workers=2)
    finally:
        hook.remove()
    # Same buckets, each in its own thread with one intra-op thread; kernels may split work
    # differently with one thread, so equal to float rounding (bitwise on the machine measured).
    np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)
    assert len(seen) == len(scoring.length_buckets([len(x) for x in ids], 8))
    assert all(inference for inference, _ in seen)  # grad mode is per thread: each worker set it
    assert {threads for _, threads in seen} == {1}  # the two threads were shared out
    assert torch.get_num_threads() == 2  # and given back
    checked, rec = scoring.score_ids_checked(model, ids, pad, "float32", workers=2)
    np.testing.assert_allclose(checked, one, rtol=1e-5, atol=1e-6)


def test_run_concurrently_splits_items_raises_and_restores_threads(two_threads):
    from rewardherd.models.common import run_concurrently

    got = []
    run_concurrently(got.append, list(range(5)), 2)
    assert sorted(map(tuple, got)) == [(0, 2, 4), (1, 3)]
    got.clear()
    run_concurrently(got.append, [7], 4)  # never more workers than items
    assert got == [[7]]

    def boom(part):
        raise RuntimeError(f"bad part {part}")

    with pytest.raises(RuntimeError, match="bad part"):
        run_concurrently(boom, [1, 2], 2)
    assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="workers must be >= 1"):
        run_concurrently(got.append, [1], 0)


def test_cpu_batch_workers(two_threads):
    from rewardherd.models.common import cpu_batch_workers

    assert cpu_batch_workers("cpu") == 2
    assert cpu_batch_workers("cuda") == 1  # GPUs batch on the device
    torch.set_num_threads(1)
    assert cpu_batch_workers("cpu") == 1
