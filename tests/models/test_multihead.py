"""Multi-head ensembles: training loop, directory format, one-pass scoring, head export.

Score tolerance: atol 1e-5 (fp32 on CPU) between one-pass scoring, per-head scoring
and exported standalone heads (same ops; a (d, K) vs (d, 1) matmul rounds differently).
"""

import json

import numpy as np
import pytest
import torch

from rewardherd import core
from rewardherd.data import bootstrap_counts
from rewardherd.models import Ensemble, ManifestError, load_member_model
from rewardherd.models.formatting import encode_batch, pad_token_id
from rewardherd.models.multihead import HEADS_FILE, MultiHeadRewardModel, head_parameter_names
from rewardherd.models.tiny import rule_labelled_pairs
from rewardherd.models.vectorized import GroupScorer, _SharedUnit, build_units
from rewardherd.training.config import TrainConfig
from rewardherd.training.ensemble import PlanMismatchError
from rewardherd.training.multihead import multihead_loss, train_multihead_ensemble

ATOL = 1e-5
CONFIG = TrainConfig(lr=2e-3, epochs=4, batch_size=16, max_length=48, warmup_ratio=0.0, device="cpu")


@pytest.fixture(scope="module")
def pairs():
    all_pairs = rule_labelled_pairs(96, seed=1)
    return all_pairs[:72], all_pairs[72:]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_backbone, pairs):
    out = tmp_path_factory.mktemp("mh") / "ens"
    manifest = train_multihead_ensemble(*pairs, out, tiny_backbone, 3, CONFIG, seeds=(11, 12, 13), bootstrap=True,
                                        progress=False)
    return out, manifest


# ------------------------------------------------------------------ format
def test_directory_format_and_manifest(trained, tiny_backbone):
    out, manifest = trained
    d = json.loads((out / "ensemble.json").read_text())
    assert d["kind"] == "multi_head" and d["complete"] is True
    assert sorted(p.name for p in out.iterdir()) == ["backbone", "ensemble.json", HEADS_FILE]
    assert (out / "backbone" / "model.safetensors").is_file() and (out / "backbone" / "tokenizer.json").is_file()
    assert json.loads((out / "backbone" / "config.json").read_text())["architectures"] == ["GPT2Model"]
    assert [m["head"] for m in d["members"]] == [0, 1, 2]
    for k, m in enumerate(d["members"]):
        assert m["format"] == "multi_head" and m["path"] == "backbone" and m["name"] == f"head_{k}"
        assert m["finetune_seed"] == 11 + k and m["backbone"] == str(tiny_backbone)
        assert 0.0 <= m["heldout_accuracy"] <= 1.0 and m["n_heldout_pairs"] == 24
        assert {"mean", "std", "n"} <= set(m["standardization"]) and m["standardization"]["n"] == 48
        assert m["train_config"]["bootstrap"] is True and m["train_config"]["n_heads"] == 3
        assert 0 < m["train_config"]["bootstrap_unique_pairs"] < 72  # a resample misses ~1/e of the pairs
    assert manifest.members[0].head == 0


def test_training_lowers_the_loss_and_learns_the_rule(trained):
    _, manifest = trained
    tc = manifest.members[0].train_config
    assert tc["last_loss"] < tc["first_loss"]
    assert np.mean([m.heldout_accuracy for m in manifest.members]) > 0.6


def test_load_scores_all_heads_in_one_pass_equal_to_each_head_alone(trained, texts):
    out, _ = trained
    ens = Ensemble.load(out, device="cpu")
    assert ens.names == ["head_0", "head_1", "head_2"]
    parent = ens.members[0].model.parent
    assert all(m.model.parent is parent for m in ens.members)  # one backbone in memory
    units = build_units([m.model for m in ens.members], "auto")
    assert len(units) == 1 and isinstance(units[0], _SharedUnit)
    calls = []
    handle = parent.model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        fast = ens.score(*texts, batch_size=64)
    finally:
        handle.remove()
    assert len(calls) == 1  # 9 texts, one bucket, one backbone pass for 3 heads
    loop = Ensemble(ens.members, ens.manifest, scoring="loop").score(*texts, batch_size=64)
    np.testing.assert_allclose(fast, loop, atol=ATOL, rtol=0)
    assert not np.allclose(fast[0], fast[1], atol=1e-4)  # heads differ


def test_manifest_statistics_match_the_loaded_heads(trained, pairs):
    out, manifest = trained
    ens = Ensemble.load(out, device="cpu")
    held = pairs[1]
    sc = ens.score([p.prompt for p in held], [p.chosen for p in held])
    sr = ens.score([p.prompt for p in held], [p.rejected for p in held])
    mean, std = core.member_statistics(np.concatenate([sc, sr], axis=1))
    for k, m in enumerate(manifest.members):
        assert m.standardization["mean"] == pytest.approx(mean[k], abs=1e-5)
        assert m.standardization["std"] == pytest.approx(std[k], abs=1e-5)
        assert m.heldout_accuracy == pytest.approx(core.preference_accuracy(sc[k], sr[k]))
    assert ens.reward([p.prompt for p in held], [p.chosen for p in held]).reward.shape == (24,)


def test_export_head_is_a_standalone_member_with_the_same_scores(trained, texts, tmp_path):
    out, _ = trained
    ens = Ensemble.load(out, device="cpu")
    raw = ens.score(*texts)
    path = ens.export_member("head_1", tmp_path / "head_1")
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()
    assert json.loads((path / "config.json").read_text())["architectures"] == ["GPT2ForSequenceClassification"]
    model, tok = load_member_model(path, device="cpu")
    assert model.config.num_labels == 1
    ids, _ = encode_batch(tok, *texts, ens.max_length)
    standalone = GroupScorer("loop").score([model], ids, pad_token_id(tok), 4)[0]
    np.testing.assert_allclose(standalone, raw[1], atol=ATOL, rtol=0)
    with pytest.raises(FileExistsError):
        ens.export_member("head_1", path)
    with pytest.raises(KeyError):
        ens.export_member("head_9", tmp_path / "x")


def test_save_round_trip_and_head_subsets_renumber(trained, texts, tmp_path):
    out, _ = trained
    ens = Ensemble.load(out, device="cpu")
    raw = ens.score(*texts)
    again = Ensemble.load(ens.save(tmp_path / "copy"), device="cpu")
    np.testing.assert_allclose(again.score(*texts), raw, atol=0, rtol=0)
    sub = Ensemble([ens.members[2], ens.members[0]], ens.manifest)
    d = sub.save(tmp_path / "sub")
    manifest = json.loads((d / "ensemble.json").read_text())
    assert [(m["name"], m["head"]) for m in manifest["members"]] == [("head_2", 0), ("head_0", 1)]
    np.testing.assert_allclose(Ensemble.load(d, device="cpu").score(*texts), raw[[2, 0]], atol=0, rtol=0)


def test_rerun_with_the_same_plan_keeps_the_directory_and_a_new_plan_is_refused(trained, tiny_backbone, pairs):
    out, manifest = trained
    stamp = (out / HEADS_FILE).stat().st_mtime_ns
    again = train_multihead_ensemble(*pairs, out, tiny_backbone, 3, CONFIG, seeds=(11, 12, 13), bootstrap=True,
                                     progress=False)
    assert again.config_hash == manifest.config_hash and (out / HEADS_FILE).stat().st_mtime_ns == stamp
    with pytest.raises(PlanMismatchError):
        train_multihead_ensemble(*pairs, out, tiny_backbone, 2, CONFIG, progress=False)


def test_missing_or_inconsistent_heads_are_refused(trained, tmp_path):
    import shutil

    out, _ = trained
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    d = json.loads((bad / "ensemble.json").read_text())
    d["members"][0]["head"] = 7
    (bad / "ensemble.json").write_text(json.dumps(d))
    with pytest.raises(ManifestError, match="head 7 out of range"):
        Ensemble.load(bad, device="cpu")
    (bad / HEADS_FILE).unlink()
    with pytest.raises(ManifestError, match=HEADS_FILE):
        Ensemble.load(bad, device="cpu")


# ------------------------------------------------------------ the pieces
def test_head_init_is_seeded_per_head(tiny_backbone):
    a = MultiHeadRewardModel.from_backbone(tiny_backbone, 3, (5, 6, 5))
    b = MultiHeadRewardModel.from_backbone(tiny_backbone, 2, (6, 9))
    w, wb = a.model.score.weight, b.model.score.weight
    torch.testing.assert_close(w[0], w[2], atol=0, rtol=0)  # same seed, same head
    torch.testing.assert_close(w[1], wb[0], atol=0, rtol=0)  # independent of K and position
    assert not torch.equal(w[0], w[1])


def test_head_parameter_names_are_found_structurally():
    from transformers import BertConfig, GPT2Config

    assert head_parameter_names(GPT2Config(n_layer=1, n_embd=16, n_head=2)) == ["score.weight"]
    bert = BertConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, intermediate_size=32)
    assert head_parameter_names(bert) == ["classifier.bias", "classifier.weight"]


def test_bootstrap_counts_are_resamples():
    c = bootstrap_counts(50, (1, 2, 1))
    assert c.shape == (3, 50) and (c.sum(axis=1) == 50).all()
    np.testing.assert_array_equal(c[0], c[2])
    assert not np.array_equal(c[0], c[1])


def test_multihead_loss_is_the_core_loss_per_head():
    g = torch.Generator().manual_seed(0)
    ch, rj = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    margin = torch.rand(5, generator=g)
    kw = {"center_coef": 0.01, "label_smoothing": 0.1}
    plain = multihead_loss(ch, rj, margin=margin, **kw)
    torch.testing.assert_close(plain, core.bradley_terry_loss(ch, rj, margin=margin[None].expand(3, 5), **kw))
    torch.testing.assert_close(multihead_loss(ch, rj, counts=torch.ones(3, 5, dtype=torch.long), margin=margin, **kw),
                               plain)
    counts = torch.tensor([[2, 0, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 3]])
    # head 1 drew none of these pairs: it is left out; the others repeat their pairs
    h0 = core.bradley_terry_loss(ch[0, [0, 0, 2]], rj[0, [0, 0, 2]], margin=margin[[0, 0, 2]], **kw)
    h2 = core.bradley_terry_loss(ch[2, [0, 1, 2, 3, 4, 4, 4]], rj[2, [0, 1, 2, 3, 4, 4, 4]],
                                 margin=margin[[0, 1, 2, 3, 4, 4, 4]], **kw)
    torch.testing.assert_close(multihead_loss(ch, rj, counts=counts, margin=margin, **kw), (h0 + h2) / 2)


def test_invalid_arguments(tiny_backbone, pairs, tmp_path):
    with pytest.raises(ValueError, match="seeds"):
        train_multihead_ensemble(*pairs, tmp_path / "x", tiny_backbone, 3, CONFIG, seeds=(1, 2), progress=False)
    with pytest.raises(ValueError, match="lora_r"):
        train_multihead_ensemble(*pairs, tmp_path / "x", tiny_backbone, 2, TrainConfig(lora_r=4), progress=False)
    with pytest.raises(ValueError, match="shared_head_init"):
        train_multihead_ensemble(*pairs, tmp_path / "x", tiny_backbone, 2, TrainConfig(shared_head_init=True),
                                 progress=False)
    with pytest.raises(ValueError, match="cannot see different labels"):
        train_multihead_ensemble(*pairs, tmp_path / "x", tiny_backbone, 2, TrainConfig(member_label_noise=0.1),
                                 progress=False)
    with pytest.raises(ValueError, match="held-out"):
        train_multihead_ensemble(pairs[0], [], tmp_path / "x", tiny_backbone, 2, CONFIG, progress=False)
