import numpy as np
import pytest
import torch

from rewardherd.policy.sampling import row_keys, row_uniforms, sample_continuations

PROMPTS = ["The cat sat", "A bird in the hand", "Never", "Life is good and"]


@pytest.fixture(scope="module")
def lm():
    from rewardherd.world.config import LMConfig, TokenizerConfig
    from rewardherd.world.lm import make_gpt2, train_tokenizer

    texts = ["the cat sat on the mat and the bird sang in the hand", "life is good and never bad"] * 5
    tok = train_tokenizer(texts, TokenizerConfig(vocab_size=300))
    model = make_gpt2(LMConfig(n_layer=1, n_embd=32, n_head=2, block_size=64, steps=1,
                               warmup_steps=0), tok, seed=0)
    model.eval()
    return model, tok


def _sample(lm, prompts=PROMPTS, n=4, **kw):
    model, tok = lm
    args = {"max_new_tokens": 12, "batch_size": 64, "seed": 3, **kw}
    return sample_continuations(model, tok, prompts, n, **args)


def test_columns_and_order(lm):
    df = _sample(lm)
    assert list(df.columns) == ["prompt_id", "prompt", "sample_id", "response", "response_ids",
                                "n_tokens", "stopped"]
    assert len(df) == 16
    assert df["prompt_id"].tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    assert df["sample_id"].tolist() == [0, 1, 2, 3] * 4
    assert (df["n_tokens"] <= 12).all() and (df["n_tokens"] >= 1).all()
    assert (df["n_tokens"] + df["stopped"] == df["response_ids"].map(len)).all()
    assert all(ids[-1] == lm[1].eos_token_id for ids in df[df.stopped]["response_ids"])


def test_reproducible_regardless_of_batch_size_and_pool_size(lm):
    a = _sample(lm, batch_size=64)
    b = _sample(lm, batch_size=3)
    assert a["response"].tolist() == b["response"].tolist()
    # The first samples of a bigger pool are the smaller pool; other prompts do not matter.
    c = _sample(lm, prompts=PROMPTS[::-1] + ["extra prompt"], n=6, batch_size=5)
    for p in PROMPTS:
        small = a[a.prompt == p]["response"].tolist()
        big = c[(c.prompt == p) & (c.sample_id < 4)]["response"].tolist()
        assert small == big


def test_seed_changes_samples_and_greedy_is_constant(lm):
    a = _sample(lm, seed=1)
    b = _sample(lm, seed=2)
    assert a["response"].tolist() != b["response"].tolist()
    g = _sample(lm, temperature=0.0)
    assert g.groupby("prompt")["response"].nunique().max() == 1


def test_min_new_tokens_and_top_p(lm):
    model, tok = lm
    df = _sample(lm, min_new_tokens=12, n=8)
    assert (df["n_tokens"] == 12).all() and not df["stopped"].any()
    # top_p tiny = greedy on the first token.
    t = _sample(lm, top_p=1e-6, n=4)
    g = _sample(lm, temperature=0.0, n=1)
    for p in PROMPTS:
        first = {ids[0] for ids in t[t.prompt == p]["response_ids"]}
        assert first == {g[g.prompt == p]["response_ids"].iloc[0][0]}


def test_uniforms_are_in_range_and_distinct():
    keys = row_keys(["a", "a", "b"], [0, 1, 0], seed=0)
    assert len(set(keys.tolist())) == 3
    u = np.stack([row_uniforms(keys, s) for s in range(2000)])
    assert (u >= 0).all() and (u < 1).all()
    assert abs(u.mean() - 0.5) < 0.02


def test_rejects_bad_args(lm):
    with pytest.raises(ValueError):
        _sample(lm, n=0)
    with pytest.raises(ValueError, match="positions"):
        _sample(lm, max_new_tokens=100)
    assert torch.is_grad_enabled()
