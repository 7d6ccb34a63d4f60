"""LoRA members: unmerged adapters over one backbone, one mixed-adapter pass, merged export.

Score tolerance: atol 1e-5 (fp32 on CPU) between the mixed-adapter pass, one adapter
at a time, a fresh peft model per adapter, and the merged export (merging adds B@A to
the base weight, which rounds differently from computing the delta separately).
"""

import json
import shutil

import numpy as np
import pytest
import torch

from rewardherd.models import Ensemble, Manifest, ManifestError, MemberInfo, load_member_model
from rewardherd.models.formatting import encode_batch, pad_token_id
from rewardherd.models.tiny import rule_labelled_pairs
from rewardherd.models.vectorized import GroupScorer, _SharedUnit, build_units
from rewardherd.training.config import MemberSpec, TrainConfig
from rewardherd.training.lora import save_scoring_backbone, train_lora_ensemble
from rewardherd.training.member import train_member

ATOL = 1e-5


def _adapter(backbone_dir, seed: int, out, with_head: bool = True):
    """A random (non-zero) LoRA adapter with its own random score head, saved with peft."""
    from peft import LoraConfig, TaskType, get_peft_model
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(backbone_dir, num_labels=1)
    torch.manual_seed(seed)
    cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, init_lora_weights=False,
                     modules_to_save=["score"])
    pm = get_peft_model(base, cfg)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "modules_to_save" in n:
                p.normal_(0.0, 0.5)
    pm.save_pretrained(out)
    if not with_head:  # an adapter file holding only LoRA matrices
        f = out / "adapter_model.safetensors"
        save_file({k: v for k, v in load_file(f).items() if "lora_" in k}, f)


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory, tiny_backbone):
    root = tmp_path_factory.mktemp("lora") / "ens"
    root.mkdir()
    save_scoring_backbone(tiny_backbone, root / "backbone")
    infos = []
    for i in range(3):
        _adapter(root / "backbone", 100 + i, root / f"member_{i}")
        infos.append(MemberInfo(name=f"member_{i}", path=f"member_{i}", backbone=str(tiny_backbone), finetune_seed=i,
                                format="lora", standardization={"mean": 0.0, "std": 1.0, "n": 2}))
    Manifest(kind="finetune", members=infos, max_length=64).write(root)
    return root


def _fresh_reference(lora_dir, i, texts):
    """One adapter on a freshly loaded backbone, scored alone: the independent reference."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(lora_dir / "backbone")
    base = AutoModelForSequenceClassification.from_pretrained(lora_dir / "backbone")
    model = PeftModel.from_pretrained(base, lora_dir / f"member_{i}").eval()
    ids, _ = encode_batch(tok, *texts, 64)
    return GroupScorer("loop").score([model], ids, pad_token_id(tok), 1)[0]


def test_one_mixed_adapter_pass_equals_each_adapter_alone(lora_dir, texts):
    ens = Ensemble.load(lora_dir, device="cpu", scoring="vmap")  # what auto does on CUDA
    parent = ens.members[0].model.parent
    assert all(m.model.parent is parent for m in ens.members)  # one backbone in memory
    units = build_units([m.model for m in ens.members], "vmap")
    assert len(units) == 1 and isinstance(units[0], _SharedUnit)
    # auto on CPU loops over adapters (faster there); still one backbone in memory
    assert [type(u).__name__ for u in build_units([m.model for m in ens.members], "auto")] == ["_ModelUnit"] * 3
    calls = []
    handle = parent.peft.register_forward_pre_hook(lambda *a, **k: calls.append(1))
    try:
        fast = ens.score(*texts)
    finally:
        handle.remove()
    assert len(calls) == 1  # 9 texts in one bucket: one forward for 3 adapters
    loop = Ensemble(ens.members, ens.manifest, scoring="loop").score(*texts)
    np.testing.assert_allclose(fast, loop, atol=ATOL, rtol=0)
    np.testing.assert_allclose(Ensemble(ens.members, ens.manifest).score(*texts), loop, atol=ATOL, rtol=0)
    for i in range(3):
        np.testing.assert_allclose(fast[i], _fresh_reference(lora_dir, i, texts), atol=ATOL, rtol=0)
    assert not np.allclose(fast[0], fast[1], atol=1e-4)


def test_merged_export_is_standalone_with_the_same_scores(lora_dir, texts, tmp_path):
    ens = Ensemble.load(lora_dir, device="cpu")
    raw = ens.score(*texts)
    path = ens.export_member("member_2", tmp_path / "m2")
    assert (path / "model.safetensors").is_file() and not (path / "adapter_config.json").exists()
    model, tok = load_member_model(path, device="cpu")
    ids, _ = encode_batch(tok, *texts, 64)
    np.testing.assert_allclose(GroupScorer("loop").score([model], ids, pad_token_id(tok), 4)[0], raw[2], atol=ATOL,
                               rtol=0)
    np.testing.assert_allclose(ens.score(*texts), raw, atol=0, rtol=0)  # the shared model was not merged into


def test_save_round_trip(lora_dir, texts, tmp_path):
    ens = Ensemble.load(lora_dir, device="cpu")
    d = ens.save(tmp_path / "copy")
    assert sorted(p.name for p in d.iterdir()) == ["backbone", "ensemble.json", "member_0", "member_1", "member_2"]
    assert (d / "member_0" / "adapter_model.safetensors").is_file()
    assert json.loads((d / "ensemble.json").read_text())["members"][0]["format"] == "lora"
    np.testing.assert_allclose(Ensemble.load(d, device="cpu").score(*texts), ens.score(*texts), atol=0, rtol=0)


def test_missing_backbone_or_head_is_refused(lora_dir, tmp_path, tiny_backbone):
    bad = tmp_path / "bad"
    shutil.copytree(lora_dir, bad)
    shutil.rmtree(bad / "backbone")
    with pytest.raises(ManifestError, match="lora"):
        Ensemble.load(bad, device="cpu")
    shutil.copytree(lora_dir / "backbone", bad / "backbone")
    shutil.rmtree(bad / "member_1")
    _adapter(bad / "backbone", 5, bad / "member_1", with_head=False)
    with pytest.raises(ManifestError, match="member_1.*checksum"):  # the manifest's checksums catch it first
        Ensemble.load(bad, device="cpu")
    with pytest.raises(ManifestError, match="score head"):  # and without them, the structural check
        Ensemble.load(bad, device="cpu", verify=False)


@pytest.mark.slow
def test_train_lora_ensemble_end_to_end(tiny_backbone, tmp_path, texts):
    pairs = rule_labelled_pairs(40, seed=3)
    cfg = TrainConfig(lr=1e-3, epochs=1, batch_size=8, max_length=48, lora_r=4, lora_alpha=8, device="cpu")
    manifest = train_lora_ensemble(pairs[:32], pairs[32:], tmp_path / "ens", tiny_backbone, cfg, seeds=(0, 1),
                                   progress=False)
    assert manifest.complete and [m.format for m in manifest.members] == ["lora", "lora"]
    assert (tmp_path / "ens" / "member_0" / "adapter_model.safetensors").is_file()
    ens = Ensemble.load(tmp_path / "ens", device="cpu")
    held = pairs[32:]
    sc = ens.score([p.prompt for p in held], [p.chosen for p in held])
    sr = ens.score([p.prompt for p in held], [p.rejected for p in held])
    allsc = np.concatenate([sc, sr], axis=1)
    for k, m in enumerate(manifest.members):  # statistics were measured on the unmerged adapter
        assert m.standardization["mean"] == pytest.approx(allsc[k].mean(), abs=1e-5)
    assert not np.allclose(sc[0], sc[1], atol=1e-6)  # seeds give different members
    again = train_lora_ensemble(pairs[:32], pairs[32:], tmp_path / "ens", tiny_backbone, cfg, seeds=(0, 1),
                                progress=False)
    assert again.members == manifest.members  # resumed: nothing retrained


def test_unmerged_training_needs_lora(tiny_backbone, tmp_path):
    pairs = rule_labelled_pairs(4)
    with pytest.raises(ValueError, match="lora_r"):
        train_member(MemberSpec(str(tiny_backbone), 0), pairs, pairs, tmp_path / "m", name="m",
                     config=TrainConfig(), merge_lora=False)
    with pytest.raises(ValueError, match="lora_r"):
        train_lora_ensemble(pairs, pairs, tmp_path / "e", tiny_backbone, TrainConfig())
