"""The world's tokenizer and tiny LMs (world/lm.py): the learning-rate schedule by hand,
packing, thread scoping, seeded initialization, the loss and a pretraining run of a few
steps on a tiny model."""

import json
import math

import numpy as np
import pytest
import torch

from rewardherd.world import lm
from rewardherd.world.config import LMConfig, TokenizerConfig

TEXTS = [f"the cat number {i} sat on the mat and looked at the dog" for i in range(40)]
TINY = LMConfig(n_layer=1, n_embd=8, n_head=1, block_size=16, steps=3, batch_size=2, warmup_steps=1,
                eval_batches=1)


@pytest.fixture(scope="module")
def tok():
    return lm.train_tokenizer(TEXTS, TokenizerConfig(vocab_size=300))


def test_lr_schedule_by_hand():
    cfg = LMConfig(lr=1.0, min_lr_ratio=0.1, steps=12, warmup_steps=2)
    # warmup: lr (step + 1) / warmup
    assert lm._lr_at(0, cfg) == pytest.approx(0.5) and lm._lr_at(1, cfg) == pytest.approx(1.0)
    # cosine from the peak to 0.1 over the 10 steps after warmup
    assert lm._lr_at(2, cfg) == pytest.approx(1.0)
    assert lm._lr_at(7, cfg) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 2)))  # halfway: 0.55
    assert lm._lr_at(12, cfg) == pytest.approx(0.1) and lm._lr_at(50, cfg) == pytest.approx(0.1)  # floor
    flat = LMConfig(lr=2e-3, steps=4, warmup_steps=0, min_lr_ratio=1.0)
    assert [lm._lr_at(s, flat) for s in range(4)] == pytest.approx([2e-3] * 4)


def test_tokenizer_prepends_eos_and_pads_with_its_own_token(tok):
    ids = tok("the cat")["input_ids"]
    assert ids[0] == tok.eos_token_id == tok.bos_token_id
    assert tok.pad_token_id != tok.eos_token_id
    assert tok.decode(ids[1:]) == "the cat"
    assert tok("the cat", add_special_tokens=False)["input_ids"] == ids[1:]


def test_pack_items_concatenates_items_each_after_an_eos(tok):
    texts = ["one item", "two items here", "three"]
    plain = lm.pack_items(tok, texts, None)
    want = np.concatenate([tok(t)["input_ids"] for t in texts])
    np.testing.assert_array_equal(plain, want)
    assert plain.dtype == np.int64 and int((plain == tok.eos_token_id).sum()) == 3
    shuffled = lm.pack_items(tok, texts, 1)
    order = np.arange(3)
    np.random.default_rng(1).shuffle(order)
    np.testing.assert_array_equal(shuffled, np.concatenate([tok(texts[i])["input_ids"] for i in order]))


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    with lm.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), lm.torch_threads(1):
        raise RuntimeError("restored even on error")
    assert torch.get_num_threads() == before
    with lm.torch_threads(None):
        assert torch.get_num_threads() == before


def test_make_gpt2_is_seeded_and_leaves_the_global_rng_alone(tok):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a, b, c = lm.make_gpt2(TINY, tok, 5), lm.make_gpt2(TINY, tok, 5), lm.make_gpt2(TINY, tok, 6)
    assert torch.equal(torch.random.get_rng_state(), state)
    wa, wb, wc = (m.transformer.wte.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert a.config.n_positions == 16 and a.config.vocab_size == len(tok)
    assert a.config.pad_token_id == tok.pad_token_id and a.config.resid_pdrop == 0.0


def test_evaluate_lm_is_the_mean_next_token_loss_over_whole_windows(tok):
    model = lm.make_gpt2(TINY, tok, 0)
    stream = lm.pack_items(tok, TEXTS[:6], None)
    n_windows = (len(stream) - 1) // 16
    loss = lm.evaluate_lm(model, stream, 16, batch_size=2, max_batches=50)
    # by hand: every window's mean loss, each over its 15 predicted tokens
    with torch.no_grad():
        x = torch.stack([torch.from_numpy(stream[i * 16:(i + 1) * 16]) for i in range(n_windows)])
        logits = model(input_ids=x).logits[:, :-1]
        want = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
    assert loss == pytest.approx(float(want), rel=1e-5)
    # at most batch_size x max_batches windows
    first = lm.evaluate_lm(model, stream, 16, batch_size=1, max_batches=1)
    with torch.no_grad():
        one = float(model(input_ids=x[:1], labels=x[:1]).loss)
    assert first == pytest.approx(one, rel=1e-6)
    assert 0 < loss < math.log(len(tok)) + 1  # an untrained model is about uniform


def test_pretrain_a_few_steps_and_reload(tok, tmp_path):
    stats = lm.pretrain_lm(TINY, tok, TEXTS, TEXTS[:4], seed=3, out_dir=tmp_path)
    assert stats["seed"] == 3 and stats["tokens_seen"] == 3 * 2 * 16  # steps x batch x block
    assert stats["val_perplexity"] == pytest.approx(math.exp(stats["val_loss"]))
    assert stats["epochs"] == pytest.approx(96 / stats["stream_tokens"])
    assert json.loads((tmp_path / "pretrain_stats.json").read_text()) == stats
    model = lm.load_causal_lm(tmp_path)
    assert not model.training and sum(p.numel() for p in model.parameters()) == stats["n_params"]
    assert lm.load_tokenizer(tmp_path).pad_token_id == tok.pad_token_id
    again = lm.pretrain_lm(TINY, tok, TEXTS, TEXTS[:4], seed=3, out_dir=tmp_path / "again")
    assert again["val_loss"] == pytest.approx(stats["val_loss"], rel=1e-6)  # the seed fixes everything


def test_a_stream_shorter_than_a_block_is_refused(tok, tmp_path):
    with pytest.raises(ValueError, match="shorter than a block"):
        lm.pretrain_lm(TINY, tok, ["tiny"], ["tiny"], seed=0, out_dir=tmp_path)
