"""Train tiny finetune-seed and pretrain-seed ensembles on rule-labelled data (TRL RewardTrainer).

Acceptance: every member's held-out accuracy is clearly above chance; the ensemble
round-trips through save/load with identical scores; each member loads alone with
``AutoModelForSequenceClassification.from_pretrained`` and scores like its ensemble row.
"""

import shutil
from importlib import metadata

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rewardherd import core
from rewardherd.models import Ensemble
from rewardherd.models.formatting import encode
from rewardherd.models.manifest import FORMAT_VERSION
from rewardherd.studies.evaluation import evaluate_ensemble
from rewardherd.training import MemberSpec, train_member

KINDS = ["finetune_ensemble", "pretrain_ensemble"]


@pytest.fixture(params=KINDS)
def trained(request):
    return request.getfixturevalue(request.param)


def _heldout_texts(heldout):
    prompts = [p.prompt for p in heldout] * 2
    responses = [p.chosen for p in heldout] + [p.rejected for p in heldout]
    return prompts, responses


def test_every_member_is_clearly_above_chance(trained, rule_split):
    out, manifest, cfg = trained
    _, heldout = rule_split
    assert manifest.complete
    assert len(manifest.members) == len(cfg.member_specs())
    for m in manifest.members:
        assert m.n_heldout_pairs == len(heldout)
        assert m.heldout_accuracy >= 0.8, (m.name, m.heldout_accuracy)


def test_manifest_accuracy_and_statistics_match_the_saved_members(trained, rule_split):
    """The manifest's accuracy and standardization statistics are those of the saved weights
    on the held-out responses (chosen and rejected)."""
    out, manifest, _ = trained
    _, heldout = rule_split
    ens = Ensemble.load(out, device="cpu")
    raw = ens.score(*_heldout_texts(heldout))
    b = len(heldout)
    for i, m in enumerate(manifest.members):
        assert core.preference_accuracy(raw[i, :b], raw[i, b:]) == pytest.approx(m.heldout_accuracy)
        assert m.standardization["mean"] == pytest.approx(raw[i].mean(), abs=1e-5)
        assert m.standardization["std"] == pytest.approx(raw[i].std(), abs=1e-5)
        assert m.standardization["n"] == 2 * b
    z = ens.standardize(raw)
    np.testing.assert_allclose(z.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=1), 1.0, atol=1e-5)


def test_save_load_round_trip_gives_identical_scores(trained, rule_split, tmp_path):
    out, manifest, _ = trained
    prompts, responses = _heldout_texts(rule_split[1])
    ens = Ensemble.load(out, device="cpu")
    scores = ens.score(prompts, responses)
    ens.save(tmp_path / "copy")
    again = Ensemble.load(tmp_path / "copy", device="cpu")
    np.testing.assert_array_equal(again.score(prompts, responses), scores)
    assert [m.info for m in again.members] == manifest.members
    np.testing.assert_array_equal(Ensemble.load(out, device="cpu").score(prompts, responses), scores)


def test_each_member_loads_alone_with_transformers(trained, rule_split):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out, manifest, _ = trained
    heldout = rule_split[1][:8]
    prompts, responses = _heldout_texts(heldout)
    ens = Ensemble.load(out, device="cpu")
    rows = ens.score(prompts, responses)
    for i, m in enumerate(manifest.members):
        member_dir = out / m.path
        assert (member_dir / "model.safetensors").is_file()
        assert not list(member_dir.glob("*.bin"))
        model = AutoModelForSequenceClassification.from_pretrained(member_dir).eval()
        tok = AutoTokenizer.from_pretrained(member_dir)
        assert model.config.num_labels == 1
        assert model.config.pad_token_id is not None
        assert tok.pad_token_id is not None
        alone = []
        for p, r in zip(prompts, responses, strict=True):
            ids, _ = encode(tok, p, r, manifest.max_length)
            with torch.no_grad():
                alone.append(model(input_ids=torch.tensor([ids])).logits[0, 0].item())
        np.testing.assert_allclose(alone, rows[i], atol=1e-5, rtol=0)


def test_members_differ(trained, rule_split):
    out, manifest, _ = trained
    ens = Ensemble.load(out, device="cpu")
    raw = ens.score(*_heldout_texts(rule_split[1]))
    for i in range(len(ens)):
        for j in range(i + 1, len(ens)):
            assert not np.allclose(raw[i], raw[j], atol=1e-3), (i, j)
    assert evaluate_ensemble(ens, rule_split[1])["kendall_tau"] < 1.0


def test_finetune_seed_members(finetune_ensemble, backbones):
    _, manifest, _ = finetune_ensemble
    assert manifest.kind == "finetune"
    assert [m.name for m in manifest.members] == ["member_0", "member_1", "member_2"]
    assert [m.finetune_seed for m in manifest.members] == [0, 1, 2]
    assert {m.backbone for m in manifest.members} == {str(backbones[0])}
    assert [m.pretrain_seed for m in manifest.members] == [None, None, None]


def test_pretrain_seed_members(pretrain_ensemble, backbones):
    _, manifest, _ = pretrain_ensemble
    assert manifest.kind == "pretrain"
    assert [m.backbone for m in manifest.members] == [str(b) for b in backbones]
    assert [m.pretrain_seed for m in manifest.members] == [0, 1]
    assert [m.finetune_seed for m in manifest.members] == [0, 0]


def test_manifest_records_training_config_and_versions(trained, rule_split, fast):
    import json

    out, manifest, _ = trained
    d = json.loads((out / "ensemble.json").read_text())
    assert d["format_version"] == FORMAT_VERSION
    assert d["complete"] is True
    assert d["config_hash"] and d["created"]
    assert d["max_length"] == fast.max_length
    for name in ("torch", "transformers", "trl", "peft", "numpy"):
        assert d["package_versions"][name] == metadata.version(name)
    for m in d["members"]:
        tc = m["train_config"]
        assert tc["lr"] == fast.lr and tc["epochs"] == fast.epochs and tc["batch_size"] == fast.batch_size
        assert tc["center_coef"] == 0.01 and tc["bf16"] is False
        assert tc["n_train_pairs"] == len(rule_split[0])
        assert tc["n_truncated"] == 0
        assert tc["last_loss"] < tc["first_loss"]  # loss falls on separable preferences
        assert {"mean", "std", "n"} <= set(m["standardization"])


def test_training_changes_the_backbone_parameters(finetune_ensemble, backbones):
    out, _, _ = finetune_ensemble
    before = load_file(backbones[0] / "model.safetensors")
    after = load_file(out / "member_0" / "model.safetensors")
    key = next(k for k in after if k.endswith("h.0.attn.c_attn.weight"))
    src = next(k for k in before if k.endswith("h.0.attn.c_attn.weight"))
    assert after[key].shape == before[src].shape
    assert not torch.equal(after[key], before[src])
    assert any(k.startswith("score") for k in after)


def test_evaluate_ensemble_on_heldout(finetune_ensemble, rule_split):
    out, manifest, _ = finetune_ensemble
    res = evaluate_ensemble(Ensemble.load(out, device="cpu"), rule_split[1])
    assert res["n_pairs"] == len(rule_split[1])
    assert res["member_accuracy"] == {m.name: pytest.approx(m.heldout_accuracy) for m in manifest.members}
    assert set(res["method_accuracy"]) == set(core.METHODS)
    assert all(a >= 0.8 for a in res["method_accuracy"].values())
    assert 0.0 <= res["direction_agreement"] <= 1.0


def test_training_is_reproducible(backbones, rule_split, tmp_path):
    """The same spec, seed, data and config give the same weights (so a resumed run matches)."""
    from rewardherd.training import TrainConfig

    quick = TrainConfig(lr=2e-3, epochs=1, batch_size=16, max_length=64)
    data = (rule_split[0][:48], rule_split[1][:16])
    infos = [
        train_member(MemberSpec(str(backbones[0]), 3), *data, tmp_path / name, name=name, config=quick, progress=False)
        for name in ("a", "b")
    ]
    assert infos[0].heldout_accuracy == infos[1].heldout_accuracy
    assert infos[0].standardization == infos[1].standardization
    a = load_file(tmp_path / "a" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temp dirs left


def test_bootstrap_members_train_on_their_own_resample(backbones, rule_split, tmp_path):
    """bootstrap=True: each member trains on the resample bootstrap_counts draws from its
    fine-tune seed (so its weights differ from the full-data member's), and records how
    many distinct pairs it saw."""
    from rewardherd.data import bootstrap_counts, bootstrap_pairs
    from rewardherd.training import TrainConfig

    data = (rule_split[0][:48], rule_split[1][:16])
    base = TrainConfig(lr=2e-3, epochs=1, batch_size=16, max_length=64)
    boot = TrainConfig(lr=2e-3, epochs=1, batch_size=16, max_length=64, bootstrap=True)
    full = train_member(MemberSpec(str(backbones[0]), 3), *data, tmp_path / "full", name="full", config=base,
                        progress=False)
    bag = train_member(MemberSpec(str(backbones[0]), 3), *data, tmp_path / "bag", name="bag", config=boot,
                       progress=False)
    counts = bootstrap_counts(48, [3])[0]
    assert bag.train_config["n_train_pairs"] == full.train_config["n_train_pairs"] == 48
    assert bag.train_config["n_distinct_train_pairs"] == int((counts > 0).sum()) < 48
    assert full.train_config["n_distinct_train_pairs"] == 48
    assert [p.id for p in bootstrap_pairs(data[0], 3)] == [p.id for p, c in zip(data[0], counts, strict=True)
                                                          for _ in range(c)]
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "bag" / "model.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_train_member_refuses_existing_directory_and_empty_data(backbones, rule_split, tmp_path, fast):
    (tmp_path / "m").mkdir()
    spec = MemberSpec(str(backbones[0]), 0)
    with pytest.raises(FileExistsError):
        train_member(spec, *rule_split, tmp_path / "m", name="m", config=fast, progress=False)
    with pytest.raises(ValueError, match="held-out"):
        train_member(spec, rule_split[0], [], tmp_path / "n", name="n", config=fast, progress=False)
    assert not (tmp_path / "n").exists()


def test_copy_of_trained_ensemble_is_movable(finetune_ensemble, tmp_path):
    """Member paths are relative: a copied ensemble directory loads from its new place."""
    out, _, _ = finetune_ensemble
    shutil.copytree(out, tmp_path / "moved")
    ens = Ensemble.load(tmp_path / "moved", device="cpu")
    assert ens.directory == tmp_path / "moved"
    assert len(ens) == 3


@pytest.mark.parametrize("batched", [False, True])
def test_subsample_members_train_on_their_own_pairs(backbones, rule_split, tmp_path, batched):
    """subsample=20: each member trains on the 20 distinct pairs subsample_counts draws from
    its fine-tune seed (one epoch: 2 steps of 16 at most), whichever path trains it."""
    from rewardherd.data.resample import subsample_counts
    from rewardherd.training import TrainConfig
    from rewardherd.training.member import train_members

    data = (rule_split[0][:48], rule_split[1][:16])
    cfg = TrainConfig(lr=2e-3, epochs=1, batch_size=16, max_length=64, subsample=20, batched=batched)
    specs = [MemberSpec(str(backbones[0]), s) for s in (3, 4)]
    if batched:
        infos = train_members(specs, *data, [tmp_path / "a", tmp_path / "b"], names=["a", "b"], config=cfg,
                              progress=False)
    else:
        infos = [train_member(s, *data, tmp_path / n, name=n, config=cfg, progress=False)
                 for s, n in zip(specs, "ab", strict=True)]
    counts = subsample_counts(48, [3, 4], 20)
    assert (counts.sum(axis=1) == 20).all() and counts.max() == 1 and not np.array_equal(counts[0], counts[1])
    for info in infos:
        assert info.train_config["n_train_pairs"] == 48
        assert info.train_config["n_distinct_train_pairs"] == 20
        assert info.train_config["subsample"] == 20


def test_subsample_is_checked():
    from rewardherd.data.resample import member_counts
    from rewardherd.training import TrainConfig

    with pytest.raises(ValueError, match="exclusive"):
        TrainConfig(bootstrap=True, subsample=10)
    with pytest.raises(ValueError, match="subsample must be >= 1"):
        TrainConfig(subsample=0)
    with pytest.raises(ValueError, match=r"subsample=60 must be in \[1, 48\]"):
        member_counts(48, 0, subsample=60)
    assert member_counts(48, 0) is None
    assert TrainConfig().hashed() == TrainConfig(subsample=None).hashed()
    assert "subsample" in TrainConfig(subsample=5).hashed()


def test_subsample_shared_block():
    """subsample_shared=f: round(f * size) pairs are one block every member holds, the rest
    each member's own draw from the other pairs; f=0 gives independent subsamples, f=1 one."""
    from rewardherd.data.resample import subsample_counts

    seeds = [3, 4, 5]
    ind, half, same = (subsample_counts(100, seeds, 20, f) for f in (0.0, 0.5, 1.0))
    for c in (ind, half, same):
        assert (c.sum(axis=1) == 20).all() and c.max() == 1
    np.testing.assert_array_equal(ind, np.stack([subsample_counts(100, [s], 20)[0] for s in seeds]))
    assert (same == same[0]).all()
    common = (half == 1).all(axis=0)
    assert common.sum() >= 10  # the block, plus any pair two own draws happen to share
    block = subsample_counts(100, [99], 20, 0.5)[0].astype(bool) & common
    assert block.sum() == 10  # the block is the same whatever the seeds
    with pytest.raises(ValueError, match="subsample_shared must be in"):
        subsample_counts(100, seeds, 20, 1.5)
