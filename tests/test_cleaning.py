"""Preference strength and data cleaning (rewardherd.cleaning, `rewardherd strength` and
`rewardherd clean`) on a tiny rule-labelled set with planted label flips.

One module fixture cross-fits strengths through the CLI (2 folds x 2 tiny members);
the other tests reuse its table, its fold ensembles and its data."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rewardherd import core
from rewardherd.cleaning import assign_folds, clean_pairs, cross_fit_strength, read_strength
from rewardherd.cli import app
from rewardherd.data import inject_label_noise, load_preferences, write_preferences
from rewardherd.models.tiny import build_saved_backbones, rule_labelled_pairs
from rewardherd.training import EnsembleConfig, TrainConfig

# epochs as a float, as the CLI parses it: TrainConfig(epochs=3) hashes differently from epochs=3.0
FAST = TrainConfig(lr=2e-3, epochs=3.0, batch_size=16, max_length=64)
HYPER = ["--lr", "2e-3", "--epochs", "3", "--batch-size", "16", "--max-length", "64", "--no-progress"]
NOISE = 0.2


def invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"TERMINAL_WIDTH": "200", "NO_COLOR": "1"})


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Rule-labelled pairs with 20% planted flips, cross-fitted strengths via the CLI."""
    root = tmp_path_factory.mktemp("cleaning")
    (backbone,) = build_saved_backbones(root, [0])
    noisy, flipped = inject_label_noise(rule_labelled_pairs(160, seed=0), NOISE, seed=0)
    data = write_preferences(noisy, root / "prefs.jsonl")
    out = root / "strength.parquet"
    result = invoke(["strength", "--data", data, "-o", out, "--backbone", backbone, "--folds", 2, "--members", 2,
                     *HYPER])
    assert result.exit_code == 0, result.output
    return {"root": root, "backbone": backbone, "data": data, "pairs": noisy, "flipped": set(flipped),
            "strength": out, "result": result}


def test_cross_fitted_strength_finds_the_planted_flips(planted):
    table = read_strength(planted["strength"])
    assert list(table["id"]) == [p.id for p in planted["pairs"]]  # input order, every pair once
    assert not table["in_sample"].any() and set(table["fold"]) == {0, 1}
    assert [c for c in table.columns if c.startswith("strength/")] == ["strength/member_0", "strength/member_1"]
    is_flipped = table["id"].isin(planted["flipped"]).to_numpy()
    auroc = core.auroc(-table["mean"].to_numpy(), is_flipped)  # low strength should mean "flipped"
    assert auroc > 0.8, auroc
    # mean and std are those of the member columns
    d = table[["strength/member_0", "strength/member_1"]].to_numpy().T
    np.testing.assert_allclose(table["mean"], d.mean(axis=0))
    np.testing.assert_allclose(table["std"], d.std(axis=0))
    assert planted["strength"].with_suffix(".png").stat().st_size > 0
    assert "cross-fitted (2 folds)" in planted["result"].output


def test_folds_keep_prompts_together_and_are_balanced(planted):
    pairs = planted["pairs"]
    folds = assign_folds(pairs, 2)
    by_prompt = {}
    for p, f in zip(pairs, folds, strict=True):
        assert by_prompt.setdefault(p.prompt, f) == f
    assert abs(int((folds == 0).sum()) - int((folds == 1).sum())) <= 1
    np.testing.assert_array_equal(assign_folds(pairs[::-1], 2)[::-1], folds)  # independent of row order
    with pytest.raises(ValueError):
        assign_folds(pairs, 1)


def test_cross_fit_resumes_and_reproduces_the_cli_table(planted):
    # Same data, plan and work dir as the CLI: the fold ensembles are reused, not retrained.
    work = planted["strength"].with_name("strength.folds")
    mtimes = {p: p.stat().st_mtime_ns for p in work.glob("fold_*/member_*/model.safetensors")}
    assert len(mtimes) == 4
    ens = EnsembleConfig(kind="finetune", backbones=(str(planted["backbone"]),), n_members=2)
    table = cross_fit_strength(planted["pairs"], ens, 2, FAST, work)
    pd.testing.assert_frame_equal(table, read_strength(planted["strength"]), check_dtype=False)
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_clean_flips_the_weakest_and_drops_the_next_band(planted, tmp_path):
    data, strength = planted["data"], planted["strength"]
    before = (sha(data), sha(strength))
    out = tmp_path / "cleaned.jsonl"
    r = invoke(["clean", "--data", data, "--strength", strength, "--flip-below", 0.2, "--drop-between", 0.2, 0.3,
                "-o", out])
    assert r.exit_code == 0, r.output
    assert (sha(data), sha(strength)) == before  # inputs untouched
    summary = json.loads((tmp_path / "cleaned.summary.json").read_text())
    assert summary["n_pairs"] == 160 and summary["n_flipped"] == 32 and summary["n_dropped"] == 16
    assert summary["n_written"] == 144 and summary["data_sha256"] == before[0]
    assert summary["in_sample"] is False
    cleaned, _ = load_preferences(out)
    by_id = {p.id: p for p in planted["pairs"]}
    flipped, dropped = set(summary["ids_flipped"]), set(summary["ids_dropped"])
    assert not flipped & dropped and {p.id for p in cleaned} == set(by_id) - dropped
    for p in cleaned:
        src = by_id[p.id]
        assert (p.chosen, p.rejected) == ((src.rejected, src.chosen) if p.id in flipped else (src.chosen, src.rejected))
    # flipping the weakest 20% repairs most of the 20% planted flips
    repaired = len(flipped & planted["flipped"]) / len(planted["flipped"])
    assert repaired > 0.6, repaired
    remaining = len((planted["flipped"] - flipped) - dropped) / len(cleaned)
    assert remaining < NOISE / 2, remaining


def test_clean_refuses_to_overwrite_and_never_writes_over_its_inputs(planted, tmp_path):
    data, strength = planted["data"], planted["strength"]
    out = tmp_path / "cleaned.jsonl"
    out.write_text("mine\n")
    args = ["clean", "--data", data, "--strength", strength, "--flip-below", 0.1, "-o", out]
    r = invoke(args)
    assert r.exit_code == 2 and "exists" in r.output and "--overwrite" in r.output
    assert out.read_text() == "mine\n" and not (tmp_path / "cleaned.summary.json").exists()
    r = invoke([*args, "--overwrite"])
    assert r.exit_code == 0, r.output
    assert len(load_preferences(out)[0]) == 160
    before = sha(data)
    r = invoke(["clean", "--data", data, "--strength", strength, "--flip-below", 0.1, "-o", data, "--overwrite"])
    assert r.exit_code == 2 and "is also an input" in r.output and sha(data) == before


def test_clean_missing_id_is_a_clear_error(planted, tmp_path):
    table = read_strength(planted["strength"])
    partial = tmp_path / "partial.parquet"
    table.iloc[1:].to_parquet(partial)
    r = invoke(["clean", "--data", planted["data"], "--strength", partial, "--flip-below", 0.1,
                "-o", tmp_path / "c.jsonl"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert str(partial) in r.output and "1 of 160" in r.output and table["id"].iloc[0] in r.output
    assert not (tmp_path / "c.jsonl").exists()
    r = invoke(["clean", "--data", planted["data"], "--strength", partial, "-o", tmp_path / "c.jsonl"])
    assert r.exit_code == 2 and "nothing to do" in r.output


def test_clean_margin_from_strength(planted, tmp_path):
    out = tmp_path / "m.jsonl"
    r = invoke(["clean", "--data", planted["data"], "--strength", planted["strength"], "--flip-below", 0.1,
                "--margin-from-strength", "--margin-scale", 0.5, "-o", out])
    assert r.exit_code == 0, r.output
    table = read_strength(planted["strength"]).set_index("id")
    summary = json.loads((tmp_path / "m.summary.json").read_text())
    flipped = set(summary["ids_flipped"])
    cleaned, _ = load_preferences(out)
    for p in cleaned:
        sign = -1.0 if p.id in flipped else 1.0
        assert p.margin == pytest.approx(0.5 * sign * table.loc[p.id, "mean"])
    # flipped pairs now have positive strength, so a positive margin
    assert all(p.margin > 0 for p in cleaned if p.id in flipped)


def test_clean_pairs_library_keeps_ids_and_does_not_modify_inputs(planted):
    pairs = planted["pairs"][:20]
    table = read_strength(planted["strength"])
    copy = list(pairs)
    cleaned, summary = clean_pairs(pairs, table, flip_below=0.25, drop_between=(0.5, 0.75))
    assert pairs == copy
    assert summary["n_flipped"] == 5 and summary["n_dropped"] == 5 and len(cleaned) == 15
    assert summary["n_strength_rows_unused"] == 140


def test_in_sample_strengths_are_labelled_and_warned(planted, tmp_path):
    # fold_0's members were trained on fold 1: scoring everything mixes seen and unseen pairs
    ens = planted["strength"].with_name("strength.folds") / "fold_0"
    out = tmp_path / "s.jsonl"
    r = invoke(["strength", ens, "--data", planted["data"], "-o", out])
    assert r.exit_code == 0, r.output
    assert "in-sample" in r.output and "warning" in r.output
    table = read_strength(out)
    assert table["in_sample"].all() and (table["fold"] == -1).all() and len(table) == 160
    assert (tmp_path / "s.png").exists()
    r = invoke(["clean", "--data", planted["data"], "--strength", out, "--flip-below", 0.1, "-o", tmp_path / "c.jsonl"])
    assert r.exit_code == 0 and "in-sample" in r.output
    assert json.loads((tmp_path / "c.summary.json").read_text())["in_sample"] is True
    # refusals: existing output, both modes at once
    r = invoke(["strength", ens, "--data", planted["data"], "-o", out])
    assert r.exit_code == 2 and "exists" in r.output
    r = invoke(["strength", ens, "--data", planted["data"], "-o", tmp_path / "t.parquet", "--backbone",
                planted["backbone"]])
    assert r.exit_code == 2 and "not both" in r.output


def test_margins_from_strength_reach_the_bradley_terry_loss(planted, tmp_path):
    # TRL's RewardTrainer subtracts the per-pair margin: same seed and data, different first loss.
    import dataclasses
    import math

    from rewardherd.training import MemberSpec, train_member

    strength = read_strength(planted["strength"])
    with_margin, _ = clean_pairs(planted["pairs"][:48], strength, margin_scale=1.0)
    without = [dataclasses.replace(p, margin=None) for p in with_margin]
    cfg = TrainConfig(lr=2e-3, epochs=1.0, batch_size=16, max_length=64)
    spec = MemberSpec(str(planted["backbone"]), 0)
    losses = [train_member(spec, pairs, pairs[:8], tmp_path / name, name=name, config=cfg, progress=False)
              .train_config["first_loss"] for name, pairs in (("m", with_margin), ("plain", without))]
    assert all(math.isfinite(v) for v in losses) and losses[0] != pytest.approx(losses[1])
