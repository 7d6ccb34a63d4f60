"""Batched member training (rewardherd.training.batched): members trained together are the
members trained alone (the loop: bit for bit; vmap: to float rounding), each keeps its own
seed, and they come out as standard HF members."""

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rewardherd.data.resample import member_counts
from rewardherd.models import Ensemble
from rewardherd.training import EnsembleConfig, TrainConfig, train_ensemble
from rewardherd.training.batched import MemberOrder, backbones_batchable, total_steps
from rewardherd.training.config import MemberSpec
from rewardherd.training.member import train_members

ONE_EPOCH = TrainConfig(lr=2e-3, epochs=1, batch_size=16, max_length=64)


def _weights(d):
    return load_file(d / "model.safetensors")


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def _train(root, specs, split, config=ONE_EPOCH, **kw):
    dirs = [root / f"m{i}" for i in range(len(specs))]
    infos = train_members(specs, *split, dirs, names=[f"m{i}" for i in range(len(specs))], config=config,
                          progress=False, **kw)
    return dirs, infos


@pytest.fixture(scope="module")
def dropout_free(tmp_path_factory, backbones):
    """Copies of the two tiny backbones with dropout off (the built-in world's have none)."""
    out = []
    for b in backbones:
        d = tmp_path_factory.mktemp("nodrop") / b.name
        shutil.copytree(b, d)
        cfg = json.loads((d / "config.json").read_text())
        cfg.update(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        (d / "config.json").write_text(json.dumps(cfg))
        out.append(d)
    return out


def test_loop_members_together_equal_members_alone_bit_for_bit(tmp_path, backbones, rule_split):
    # The tiny backbones have dropout 0.1: each member's masks come from its own RNG stream.
    specs = [MemberSpec(str(backbones[0]), 7, 0), MemberSpec(str(backbones[0]), 8, 0),
             MemberSpec(str(backbones[1]), 9, 1)]
    together, infos = _train(tmp_path / "together", specs, rule_split)
    for k, spec in enumerate(specs):
        (alone,), (info,) = _train(tmp_path / f"alone{k}", [spec], rule_split)
        assert _max_diff(_weights(together[k]), _weights(alone)) == 0.0
        assert infos[k].heldout_accuracy == info.heldout_accuracy
        assert infos[k].standardization == info.standardization
    assert infos[0].train_config["batched_with"] == 3 and infos[0].train_config["stepping"] == "loop"
    # Different seeds are different members (head, data order, dropout).
    assert _max_diff(_weights(together[0]), _weights(together[1])) > 1e-3


def test_vmap_matches_the_loop_to_float_rounding(tmp_path, dropout_free, rule_split):
    specs = [MemberSpec(str(dropout_free[0]), 3, 0), MemberSpec(str(dropout_free[1]), 4, 1)]
    loop, loop_infos = _train(tmp_path / "loop", specs, rule_split, stepping="loop")
    vm, vm_infos = _train(tmp_path / "vmap", specs, rule_split, stepping="vmap")
    for a, b, ia, ib in zip(loop, vm, loop_infos, vm_infos, strict=True):
        assert _max_diff(_weights(a), _weights(b)) < 1e-4  # measured ~7e-6 after one epoch
        assert ia.standardization["mean"] == pytest.approx(ib.standardization["mean"], abs=1e-5)
        assert ib.train_config["stepping"] == "vmap"


def test_fused_adamw_matches_the_per_parameter_loop_to_float_rounding(tmp_path, backbones, rule_split, monkeypatch):
    from rewardherd.training import batched

    specs = [MemberSpec(str(backbones[0]), 3, 0), MemberSpec(str(backbones[1]), 4, 1)]
    fused, fused_infos = _train(tmp_path / "fused", specs, rule_split)
    monkeypatch.setattr(batched, "FUSED_ADAMW", False)
    plain, plain_infos = _train(tmp_path / "plain", specs, rule_split)
    for a, b, ia, ib in zip(fused, plain, fused_infos, plain_infos, strict=True):
        diff = _max_diff(_weights(a), _weights(b))
        assert 0.0 < diff < 1e-4  # the kernels do differ, by rounding only
        assert ia.standardization["mean"] == pytest.approx(ib.standardization["mean"], abs=1e-4)
    opt = batched.adamw([{"params": [torch.nn.Parameter(torch.zeros(2))], "weight_decay": 0.0}], lr=1e-3)
    assert opt.defaults["fused"] is None  # FUSED_ADAMW off: the per-parameter loop
    monkeypatch.setattr(batched, "FUSED_ADAMW", True)
    opt = batched.adamw([{"params": [torch.nn.Parameter(torch.zeros(2))], "weight_decay": 0.0}], lr=1e-3)
    assert opt.defaults["fused"] is True


def test_members_keep_their_bootstrap_and_order_seeds():
    a, b, again = (MemberOrder(100, s, member_counts(100, s, bootstrap=True)) for s in (1, 2, 1))
    assert a.n_distinct < 100 and a.n_distinct != b.n_distinct or not np.array_equal(a.pool, b.pool)
    assert np.array_equal(a.pool, again.pool)
    # Within an epoch each resampled pair comes once per copy; the last batch is short.
    batches = [a.next(16) for _ in range(7)]
    assert [len(x) for x in batches] == [16] * 6 + [4]
    assert sorted(np.concatenate(batches).tolist()) == sorted(a.pool.tolist())
    assert not np.array_equal(batches[0], again.next(16)[::-1])
    plain = MemberOrder(10, 0)
    assert sorted(plain.pool.tolist()) == list(range(10)) and plain.n_distinct == 10
    assert total_steps(100, TrainConfig(epochs=2, batch_size=16)) == 14
    assert total_steps(100, TrainConfig(epochs=0.5, batch_size=16)) == 4


def test_batched_members_are_standard_hf_members(tmp_path, finetune_ensemble, rule_split):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out, manifest, _ = finetune_ensemble  # trained by train_ensemble, batched by default
    assert all(m.train_config["batched_with"] == 3 for m in manifest.members)
    ens = Ensemble.load(out, device="cpu")
    prompts, responses = ["item 1: ", "item 2: "], ["good kind warm", "sad cold"]
    scores = ens.score(prompts, responses)
    model = AutoModelForSequenceClassification.from_pretrained(out / "member_1")
    tok = AutoTokenizer.from_pretrained(out / "member_1")
    from rewardherd.models.formatting import encode, pad_token_id
    from rewardherd.models.scoring import score_ids

    ids = [encode(tok, p, r, 64)[0] for p, r in zip(prompts, responses, strict=True)]
    alone = score_ids(model.eval(), ids, pad_token_id(tok), 8)
    assert scores.shape == (3, 2)
    np.testing.assert_allclose(scores[1], alone, rtol=0, atol=1e-5)  # raw member scores, loaded two ways
    assert all(m.heldout_accuracy >= 0.9 for m in manifest.members)


def test_no_batched_trains_through_trl_and_mixed_shapes_train_one_at_a_time(tmp_path, backbones, rule_split,
                                                                            monkeypatch):
    from rewardherd.models.tiny import build_saved_backbones

    small = rule_split[0][:32], rule_split[1][:16]
    trl = TrainConfig(lr=2e-3, epochs=1, batch_size=16, max_length=64, batched=False)
    m = train_ensemble(*small, tmp_path / "trl", EnsembleConfig(kind="finetune", backbones=(str(backbones[0]),),
                                                                n_members=2), trl, progress=False)
    assert all("batched_with" not in x.train_config for x in m.members)
    wide = build_saved_backbones(tmp_path / "wide", [5], n_embd=48)[0]
    assert backbones_batchable([backbones[0], backbones[1]])
    assert not backbones_batchable([backbones[0], wide])
    m = train_ensemble(*small, tmp_path / "mixed", EnsembleConfig(kind="pretrain", backbones=(str(backbones[0]),
                                                                  str(wide)), pretrain_seeds=(0, 5)),
                       ONE_EPOCH, progress=False)
    assert all("batched_with" not in x.train_config for x in m.members)


def test_lora_members_train_batched_and_merge(tmp_path, backbones, rule_split):
    lora = TrainConfig(lr=2e-3, epochs=1, batch_size=16, max_length=64, lora_r=4)
    dirs, infos = _train(tmp_path, [MemberSpec(str(backbones[0]), 1, 0), MemberSpec(str(backbones[0]), 2, 0)],
                         rule_split, config=lora)
    base = load_file(backbones[0] / "model.safetensors")
    w0, w1 = _weights(dirs[0]), _weights(dirs[1])
    assert not any("lora" in k for k in w0)  # merged: a standalone member
    attn = next(k for k in w0 if k.endswith("attn.c_attn.weight"))
    assert _max_diff({attn: w0[attn]}, {attn: base[attn]}) > 0  # the adapter moved the merged weights
    assert _max_diff({attn: w0[attn]}, {attn: w1[attn]}) > 0  # and differs per seed
    assert all(i.format == "hf" and i.train_config["lora_r"] == 4 for i in infos)


def test_bad_batches_are_clear_errors(tmp_path, backbones, rule_split):
    with pytest.raises(ValueError, match="must be equal"):
        train_members([MemberSpec(str(backbones[0]), 1, 0)], *rule_split, [tmp_path / "a", tmp_path / "b"],
                      names=["a"], progress=False)
    (tmp_path / "x").mkdir()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        train_members([MemberSpec(str(backbones[0]), 1, 0)], *rule_split, [tmp_path / "x"], names=["x"],
                      progress=False)
    assert torch.get_default_dtype() == torch.float32


def test_member_label_noise_is_each_members_own_flips(tmp_path, backbones, rule_split):
    """A member trained with member_label_noise is, bit for bit, the member trained without it on
    the pairs its own flips swap; members of one ensemble see different flips."""
    from dataclasses import replace

    from rewardherd.data.noise import member_flips, pick_rows, swap_labels

    train, heldout = rule_split
    n = len(train)
    flips = {s: member_flips(n, 0.25, s) for s in (7, 8)}
    assert all(len(f) == round(0.25 * n) for f in flips.values()) and flips[7] != flips[8]
    assert member_flips(n, 0.25, 7) == flips[7] and flips[7] != pick_rows(n, 0.25, 7)  # not the seed's shared flips
    noisy = replace(ONE_EPOCH, member_label_noise=0.25)
    specs = [MemberSpec(str(backbones[0]), 7, 0), MemberSpec(str(backbones[0]), 8, 0)]
    together, _ = _train(tmp_path / "together", specs, rule_split, config=noisy)
    for k, spec in enumerate(specs):
        (clean,), _ = _train(tmp_path / f"swapped{k}", [spec], (swap_labels(train, flips[spec.finetune_seed]),
                                                                 heldout))
        assert _max_diff(_weights(together[k]), _weights(clean)) == 0.0
    (plain,), _ = _train(tmp_path / "plain", specs[:1], rule_split)
    assert _max_diff(_weights(together[0]), _weights(plain)) > 0
    # the TRL path (train_member, one at a time) applies the same flips
    from rewardherd.training.member import train_member

    trl = replace(noisy, batched=False)
    train_member(specs[0], train, heldout, tmp_path / "trl", name="m0", config=trl, progress=False)
    train_member(specs[0], swap_labels(train, flips[7]), heldout, tmp_path / "trl_swapped", name="m0",
                 config=replace(trl, member_label_noise=0.0), progress=False)
    assert _max_diff(_weights(tmp_path / "trl"), _weights(tmp_path / "trl_swapped")) == 0.0


def test_member_label_noise_is_checked_and_keeps_older_plans():
    assert "member_label_noise" not in TrainConfig().hashed()  # plans hashed before it existed still match
    assert TrainConfig(member_label_noise=0.1).hashed()["member_label_noise"] == 0.1
    with pytest.raises(ValueError, match=r"member_label_noise must be in \[0, 0.5\)"):
        TrainConfig(member_label_noise=0.5)
