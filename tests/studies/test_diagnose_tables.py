"""The diagnostics' tables and text (studies/diagnose.py) on a hand-written result, and the
readers that put members' pool scores in (prompts, pool) order."""

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from rewardherd.data import PreferencePair
from rewardherd.studies import diagnose as dg
from rewardherd.studies.runner import MemberUnit
from rewardherd.training.config import TrainConfig


def _row(level, members, curve, features):
    return {"level": level, "noise": 0.0, "members": members, "seeds": 2, "residual_rho": 0.5, "rho_bar": 0.9,
            "curve": curve, "per_seed_peak_n": [2, 4],
            "shared_residual_features": {f: {"shared_residual": s, "gold": g} for f, (s, g) in features.items()}}


RESULT = {
    "design": "lexical", "world": "smoke", "bootstrap_members": True, "seeds": [0, 1], "ensemble_size": 2,
    "levels": [0.0, 1.0], "members_shared_by_levels": {"0": [0.0, 1.0]}, "seconds": {"0": 1.5},
    "rows": [_row(0.0, "finetune", {1: 0.0, 2: 0.1234}, {"n_words": (0.3, -0.5), "exclamations": (0.1, 0.0)}),
             _row(0.0, "pretrain", {1: 0.0, 2: -0.05}, {"n_words": (0.2, -0.5), "exclamations": (0.0, 0.0)}),
             _row(1.0, "pretrain", {1: 0.0, 2: 0.5}, {"n_words": (0.7, -0.9), "exclamations": (0.05, 0.01)})],
    "pretrain_vs_finetune": [{"level": 0.0, "noise": 0.0, "prompts_kept": 7, "pretrain_minus_finetune_residual_rho":
                              {"estimate": -0.0123, "low": -0.05, "high": 0.0251}}],
}


def test_diagnostics_table_prints_each_curve_and_drops_the_nested_columns():
    df = dg.diagnostics_table(RESULT)
    assert df["curve"].tolist() == ["+0.000 +0.123", "+0.000 -0.050", "+0.000 +0.500"]
    assert "per_seed_peak_n" not in df and "shared_residual_features" not in df
    assert df["members"].tolist() == ["finetune", "pretrain", "pretrain"]


def test_shared_features_table_has_golds_column_per_level_and_one_per_group():
    t = dg.shared_features_table(RESULT)
    assert list(t.columns) == ["feature", "gold at 0", "gold at 1", "0 / 0 / finetune", "0 / 0 / pretrain",
                               "1 / 0 / pretrain"]
    assert t["feature"].tolist() == ["n_words", "exclamations"]
    assert t["gold at 0"].tolist() == [-0.5, 0.0]  # the first row of each level gives gold's
    assert t["gold at 1"].tolist() == [-0.9, 0.01]
    assert t["1 / 0 / pretrain"].tolist() == [0.7, 0.05]
    assert dg.shared_features_table({"rows": [{"level": 0.0}]}).empty


def test_diagnostics_report(tmp_path):
    doc = dg.diagnostics_document(RESULT)
    md = doc.markdown()
    assert md.startswith("# Single-member diagnostics: gold design `lexical`, world `smoke`, members on bootstrap "
                         "resamples\n")
    assert "levels of the `tail` dial [0.0, 1.0] (gold.shared_error)" in md and "best-of-n gold at n = 1, 2 (members" in md
    assert "| 0.0 | 0.0 | 7 | -0.012 [-0.050, +0.025] |" in md
    assert "| n_words | -0.5 | -0.9 | 0.3 | 0.2 | 0.7 |" in md
    assert md.rstrip().endswith("Levels sharing trained members (identical preference data): {'0': [0.0, 1.0]}. "
                                "Seconds per level: {'0': 1.5}.")
    assert ", members on bootstrap" not in dg.diagnostics_document({**RESULT, "bootstrap_members": 0}).markdown()
    html = doc.write(tmp_path, stem="diagnostics").read_text()  # the same blocks as HTML, beside the Markdown
    assert (tmp_path / "diagnostics.md").read_text() == md
    assert "<h1>Single-member diagnostics: gold design <code>lexical</code>" in html and "<td>-0.012 [-0.050, +0.025]</td>" in html


def test_matrix_reshapes_a_pool_column_to_prompts_by_samples():
    pool = pd.DataFrame({"prompt_id": [0, 0, 0, 5, 5, 5], "sample_id": [0, 1, 2, 0, 1, 2]})
    np.testing.assert_array_equal(dg._matrix(pool, range(6)), [[0, 1, 2], [3, 4, 5]])


def test_group_scores_read_each_members_scores_in_pool_order(tmp_path):
    pool = pd.DataFrame({"prompt_id": [0, 0, 1, 1], "sample_id": [0, 1, 0, 1]})
    units = [MemberUnit(0, 1000, 0.0, 0), MemberUnit(3, 1001, 0.0, 0)]
    for u, acc, base in zip(units, (0.6, 0.8), (10, 20), strict=True):
        d = tmp_path / "members" / u.name
        d.mkdir(parents=True)
        # stored in reverse: the reader must look each (prompt, sample) up
        pd.DataFrame({"prompt_id": [1, 1, 0, 0], "sample_id": [1, 0, 1, 0],
                      "score": [base + 3, base + 2, base + 1, base]}).to_parquet(d / "scores.parquet")
        (d / "info.json").write_text(json.dumps({"heldout_accuracy": acc}))
    scores, accs = dg._group_scores(tmp_path, pool, units)
    assert scores.shape == (2, 2, 2) and accs == [0.6, 0.8]
    np.testing.assert_array_equal(scores[1], [[20, 21], [22, 23]])


def test_data_key_changes_with_the_pairs_and_the_training_config_only():
    pairs = [PreferencePair(id="1", prompt="p", chosen="a", rejected="b")]
    inputs = SimpleNamespace(train_pairs=pairs, heldout_pairs=pairs, eval_prompts=["ignored"])
    config = SimpleNamespace(train=TrainConfig())
    key = dg._data_key(inputs, config)
    assert dg._data_key(SimpleNamespace(**{**vars(inputs), "eval_prompts": ["other"]}), config) == key
    flipped = [PreferencePair(id="1", prompt="p", chosen="b", rejected="a")]
    assert dg._data_key(SimpleNamespace(**{**vars(inputs), "heldout_pairs": flipped}), config) != key
    assert dg._data_key(inputs, SimpleNamespace(train=replace(TrainConfig(), lr=TrainConfig().lr * 2))) != key


@pytest.mark.parametrize(("unit", "label"), [
    ("bb3__ft1002__noise0__seed1", "backbone 3, fine-tune seed 1002"),
    ("lora__bb3__ft1002__noise0__seed1", "lora__bb3__ft1002__noise0__seed1"),  # not a plain member: as is
    ("average", "average"),
])
def test_member_label(unit, label):
    from rewardherd.studies.plots import member_label

    assert member_label(unit) == label
