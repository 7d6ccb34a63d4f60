"""End to end through the CLI (typer CliRunner, in process): train, score, eval, --help,
malformed input, a simulated kill and resume, and plan changes with --overwrite."""

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from rewardherd.cli import app
from rewardherd.config import field_docs
from rewardherd.data import write_preferences
from rewardherd.models import Ensemble, Manifest
from rewardherd.models.tiny import build_saved_backbones, rule_labelled_pairs
from rewardherd.policy.config import BonConfig, RLConfig
from rewardherd.training import EnsembleConfig, TrainConfig
from rewardherd.training import ensemble as training_ensemble

pytestmark = pytest.mark.integration

HYPER = ["--lr", "2e-3", "--batch-size", "16", "--max-length", "64", "--heldout-fraction", "0.2", "--no-progress"]


def invoke(args):
    # Wide terminal so rich does not wrap help texts mid-word. COLUMNS too: typer reads
    # TERMINAL_WIDTH once, when its rich helpers are first imported (maybe by an earlier test).
    return CliRunner().invoke(app, [str(a) for a in args],
                              env={"TERMINAL_WIDTH": "200", "COLUMNS": "200", "NO_COLOR": "1"})


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    (backbone,) = build_saved_backbones(root, [0])
    data = write_preferences(rule_labelled_pairs(120, seed=0), root / "prefs.jsonl")
    return {"root": root, "backbone": backbone, "data": data}


@pytest.fixture(scope="module")
def trained(work):
    """`rewardherd train` of a 2-member finetune-seed ensemble; returns (result, out dir)."""
    out = work["root"] / "ens"
    result = invoke(["train", "--data", work["data"], "--backbone", work["backbone"], "--out", out,
                     "--members", "2", "--epochs", "3", *HYPER])
    return result, out


@pytest.fixture
def items(tmp_path):
    rows = [
        {"id": "a", "prompt": "item 1: ", "response": "good kind warm"},
        {"id": "b", "prompt": "item 1: ", "response": "bad cruel cold"},
        {"id": "c", "prompt": "item 2: ", "response": "happy sad bright"},
        {"id": "d", "prompt": "item 1: ", "response": "good kind warm"},  # duplicate of a
    ]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def _normalize(text: str) -> str:
    """Help text without rich's box drawing and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


# ------------------------------------------------------------------- train
def test_train_writes_a_complete_ensemble(trained, work):
    result, out = trained
    assert result.exit_code == 0, result.output
    assert f"ensemble written to {out}" in result.output
    assert "120" in result.output  # the load report is printed
    manifest = Manifest.read(out)
    assert manifest.complete and manifest.kind == "finetune"
    assert [(m.name, m.finetune_seed, m.backbone) for m in manifest.members] == [
        ("member_0", 0, str(work["backbone"])), ("member_1", 1, str(work["backbone"]))
    ]
    for m in manifest.members:
        assert m.heldout_accuracy >= 0.8, (m.name, m.heldout_accuracy)
        assert re.search(rf"{m.name}: backbone=.* seed={m.finetune_seed} held-out accuracy={m.heldout_accuracy:.3f}",
                         result.output)
        assert m.train_config["lr"] == 2e-3 and m.train_config["epochs"] == 3.0


def test_train_requires_data_and_out(tmp_path):
    result = invoke(["train", "--backbone", "x"])
    assert result.exit_code != 0
    assert "--data and --out are required" in result.output


# ------------------------------------------------------------------- score
def test_score_writes_member_scores_aggregate_and_spread(trained, items, tmp_path):
    _, ens_dir = trained
    path, rows = items
    out = tmp_path / "scores.jsonl"
    result = invoke(["score", ens_dir, "-i", path, "-o", out, "--method", "uncertainty_weighted", "--param", "lam=0.5"])
    assert result.exit_code == 0, result.output
    assert "scored 4 pairs with 2 members" in result.output
    df = pd.read_json(out, lines=True)
    agg = "ens/uncertainty_weighted(lam=0.5)"
    assert list(df.columns) == ["id", "score/raw/member_0", "score/raw/member_1", agg, "method", "ens/std",
                                "ens/var", "ens/range"]
    assert df["id"].tolist() == ["a", "b", "c", "d"]
    assert set(df["method"]) == {"uncertainty_weighted"}

    ens = Ensemble.load(ens_dir, device="cpu")
    prompts, responses = [r["prompt"] for r in rows], [r["response"] for r in rows]
    expected = ens.reward(prompts, responses, "uncertainty_weighted", lam=0.5)
    members = ["score/raw/member_0", "score/raw/member_1"]
    np.testing.assert_allclose(df[members].to_numpy().T, expected.raw_scores, atol=1e-8, rtol=0)
    np.testing.assert_allclose(df[agg], expected.reward, atol=1e-8, rtol=0)
    np.testing.assert_allclose(df["ens/std"], expected.spread.std, atol=1e-8, rtol=0)
    np.testing.assert_allclose(df["ens/var"], expected.spread.var, atol=1e-8, rtol=0)
    np.testing.assert_allclose(df["ens/range"], expected.spread.range, atol=1e-8, rtol=0)
    # the aggregate is over standardized scores by default
    z = ens.standardize(expected.raw_scores)
    np.testing.assert_allclose(df[agg], z.mean(axis=0) - 0.5 * z.var(axis=0), atol=1e-8, rtol=0)
    assert df.loc[0, agg] == df.loc[3, agg]  # duplicate rows score identically
    assert df.loc[0, agg] > df.loc[1, agg]  # the rule: positive words win


def test_score_passes_ddof_through(trained, items, tmp_path):
    """`--param ddof=1` (documented for uncertainty_weighted) reaches the aggregate and the spread."""
    _, ens_dir = trained
    path, rows = items
    out = tmp_path / "scores.jsonl"
    result = invoke(["score", ens_dir, "-i", path, "-o", out, "--method", "uncertainty_weighted",
                     "--param", "lam=0.5", "--param", "ddof=1"])
    assert result.exit_code == 0, result.output
    df = pd.read_json(out, lines=True)
    z = Ensemble.load(ens_dir, device="cpu").standardize(df[["score/raw/member_0", "score/raw/member_1"]].to_numpy().T)
    np.testing.assert_allclose(df["ens/var"], z.var(axis=0, ddof=1), atol=1e-8, rtol=0)
    np.testing.assert_allclose(df["ens/uncertainty_weighted(ddof=1,lam=0.5)"],
                               z.mean(axis=0) - 0.5 * z.var(axis=0, ddof=1), atol=1e-8, rtol=0)


def test_score_method_spec_equals_its_param_alias(trained, items, tmp_path):
    """`--method 'name(k=v)'` is the one syntax; `--param k=v` is an alias merged into it."""
    _, ens_dir = trained
    path, _ = items
    outs = [tmp_path / "spec.jsonl", tmp_path / "alias.jsonl", tmp_path / "merged.jsonl"]
    for out, extra in zip(outs, [["--method", "uncertainty_weighted(lam=0.5, ddof=1)"],
                                 ["--method", "uncertainty_weighted", "--param", "lam=0.5", "--param", "ddof=1"],
                                 ["--method", "uncertainty_weighted(lam=0.5)", "--param", "ddof=1"]], strict=True):
        result = invoke(["score", ens_dir, "-i", path, "-o", out, *extra])
        assert result.exit_code == 0, result.output
    assert outs[0].read_bytes() == outs[1].read_bytes() == outs[2].read_bytes()


def test_eval_accepts_method_specs(trained, work, tmp_path):
    _, ens_dir = trained
    out = tmp_path / "eval.json"
    result = invoke(["eval", ens_dir, "--data", work["data"], "--method", "mean",
                     "--method", "uncertainty_weighted(lam=0.5)", "--json", out])
    assert result.exit_code == 0, result.output
    assert list(json.loads(out.read_text())["method_accuracy"]) == ["mean", "uncertainty_weighted(lam=0.5)"]
    result = invoke(["eval", ens_dir, "--data", work["data"], "--method", "mean(k=1)"])
    assert result.exit_code != 0 and "takes no parameter" in result.output


def test_score_refuses_to_overwrite_output(trained, items, tmp_path):
    _, ens_dir = trained
    path, _ = items
    out = tmp_path / "scores.jsonl"
    out.write_text("precious\n")
    result = invoke(["score", ens_dir, "-i", path, "-o", out])
    assert result.exit_code != 0
    assert "exists" in result.output and "--overwrite" in result.output
    assert out.read_text() == "precious\n"
    result = invoke(["score", ens_dir, "-i", path, "-o", out, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_json(out, lines=True)) == 4


def test_score_raw_and_parquet(trained, items, tmp_path):
    _, ens_dir = trained
    path, rows = items
    out = tmp_path / "scores.parquet"
    result = invoke(["score", ens_dir, "-i", path, "-o", out, "--method", "min", "--raw"])
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(out)
    raw = df[["score/raw/member_0", "score/raw/member_1"]].to_numpy()
    np.testing.assert_allclose(df["ens/min"], raw.min(axis=1), atol=1e-12, rtol=0)
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--param", "lam"], "name=value"),
        (["--method", "mean", "--param", "k=2"], "takes no parameter"),
        (["--method", "best"], "unknown aggregation method"),
        (["--method", "robust(lam=2)"], "[0, 1]"),
    ],
)
def test_score_bad_method_or_params_write_nothing(trained, items, tmp_path, extra, message):
    _, ens_dir = trained
    path, _ = items
    out = tmp_path / "scores.jsonl"
    result = invoke(["score", ens_dir, "-i", path, "-o", out, *extra])
    assert result.exit_code != 0
    assert message in result.output
    assert not out.exists()


def test_score_malformed_items_name_file_line_and_field(trained, tmp_path):
    _, ens_dir = trained
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps({"prompt": "a", "response": "b"}) + "\n" + json.dumps({"prompt": "a"}) + "\n")
    out = tmp_path / "scores.jsonl"
    result = invoke(["score", ens_dir, "-i", path, "-o", out])
    assert result.exit_code != 0
    assert f"{path}:line 2" in result.output and "'response'" in result.output
    assert not out.exists()


def test_score_an_incomplete_ensemble_fails_cleanly(trained, items, tmp_path):
    _, ens_dir = trained
    path, _ = items
    copy = tmp_path / "ens"
    shutil.copytree(ens_dir, copy)
    d = json.loads((copy / "ensemble.json").read_text())
    d["complete"] = False
    (copy / "ensemble.json").write_text(json.dumps(d))
    result = invoke(["score", copy, "-i", path, "-o", tmp_path / "s.jsonl"])
    assert result.exit_code != 0
    assert "not complete" in result.output
    assert not (tmp_path / "s.jsonl").exists()


# -------------------------------------------------------------------- eval
def test_eval_prints_member_and_method_accuracies(trained, work, tmp_path):
    _, ens_dir = trained
    js = tmp_path / "eval.json"
    result = invoke(["eval", ens_dir, "--data", work["data"], "--json", js])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "120 pairs" in out and "member accuracy:" in out and "aggregate accuracy:" in out
    res = json.loads(js.read_text())
    for name in ("member_0", "member_1"):
        acc = res["member_accuracy"][name]
        assert acc >= 0.8
        assert f"{name}: {acc:.3f}" in out
    for method in ("mean", "median", "min", "mean_minus_std", "uncertainty_weighted", "soft_min"):
        assert f"{method}: {res['method_accuracy'][method]:.3f}" in out
    assert "agreement" in out and "Kendall tau" in out
    assert 0.0 <= res["direction_agreement"] <= 1.0


def test_eval_selected_methods(trained, work):
    _, ens_dir = trained
    result = invoke(["eval", ens_dir, "--data", work["data"], "--method", "min", "--method", "mean"])
    assert result.exit_code == 0, result.output
    assert "min:" in result.output and "soft_min" not in result.output


# -------------------------------------------------------------------- help
def _commands():
    return sorted(typer.main.get_command(app).commands)


def test_every_command_has_help():
    names = _commands()
    assert {"train", "score", "eval"} <= set(names)
    result = invoke(["--help"])
    assert result.exit_code == 0
    for name in names:
        assert name in result.output
        r = invoke([name, "--help"])
        assert r.exit_code == 0, (name, r.output)
        assert "Usage:" in r.output


def test_train_help_shows_the_config_field_docs():
    text = _normalize(invoke(["train", "--help"]).output)
    train_docs = field_docs(TrainConfig)
    ens_docs = field_docs(EnsembleConfig)
    for key in ("lr", "epochs", "batch_size", "max_length", "center_coef", "heldout_fraction", "lora_r",
                "shared_head_init", "bootstrap"):
        assert train_docs[key] in text, key
        assert f"--{key.replace('_', '-')}" in text
    for key in ("backbones", "kind", "n_members", "seeds"):
        assert ens_docs[key] in text, key


@pytest.mark.parametrize("command, cls", [("rl", RLConfig), ("bon", BonConfig)])
def test_rl_and_bon_help_show_the_config_field_docs(command, cls):
    """Every hyperparameter of `rl` and `bon` is an option whose help is the field docstring."""
    text = _normalize(invoke([command, "--help"]).output)
    docs = field_docs(cls)
    for key in docs:
        if key in ("params", "methods", "eval_prompts"):  # inside --method ('name(k=v)'); --eval-prompts is a file
            continue
        assert docs[key] in text, key
        assert f"--{key.replace('_', '-')}" in text, key


def test_score_and_eval_help_describe_their_options():
    score = _normalize(invoke(["score", "--help"]).output)
    for opt in ("--input", "--out", "--method", "--param", "--raw", "--overwrite"):
        assert opt in score
    assert "uncertainty_weighted" in score
    ev = _normalize(invoke(["eval", "--help"]).output)
    for opt in ("--data", "--method", "--json"):
        assert opt in ev


# --------------------------------------------------------- malformed input
GOOD = [{"prompt": f"item {i}: ", "chosen": "good kind", "rejected": "bad sad"} for i in range(2)]
MALFORMED = {
    "missing_field": ({"prompt": "p ", "chosen": "a"}, "rejected"),
    "bad_json": ('{"prompt": "p", "chosen": ', None),
    "not_an_object": ("[1, 2]", None),
    "wrong_type": ({"prompt": "p ", "chosen": 5, "rejected": "b"}, "chosen"),
    "empty_text": ({"prompt": "p ", "chosen": "", "rejected": "b"}, "chosen"),
    "chosen_equals_rejected": ({"prompt": "p ", "chosen": "a", "rejected": "a"}, "rejected"),
    "duplicate_pair": (GOOD[0], None),
    "bad_margin": ({"prompt": "p ", "chosen": "a", "rejected": "b", "margin": "big"}, "margin"),
    "bad_message": ({"prompt": [{"role": "user", "content": "x"}], "chosen": [{"role": "assistant"}],
                     "rejected": [{"role": "assistant", "content": "b"}]}, "chosen"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_training_data_names_file_line_and_field_and_writes_nothing(case, tmp_path, work):
    bad, field = MALFORMED[case]
    data = tmp_path / "prefs.jsonl"
    lines = [json.dumps(r) for r in GOOD] + [bad if isinstance(bad, str) else json.dumps(bad)]
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "ens"
    result = invoke(["train", "--data", data, "--backbone", work["backbone"], "--out", out, "--members", "1",
                     "--epochs", "1", "--no-progress"])
    assert result.exit_code != 0
    assert f"{data}:3:" in result.output  # file and line
    if field is not None:
        assert f"field '{field}'" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefs.jsonl"]


def test_bad_config_file_names_the_key_and_writes_nothing(tmp_path, work):
    cfg = tmp_path / "run.yaml"
    out = tmp_path / "ens"
    cfg.write_text(f"data: {work['data']}\nout: {out}\nensemble:\n  backbones: [{work['backbone']}]\n"
                   "train:\n  learning_rate: 0.1\n")
    result = invoke(["train", "--config", cfg, "--no-progress"])
    assert result.exit_code != 0
    assert "learning_rate" in result.output and "train" in result.output
    assert not out.exists()
    cfg.write_text(f"data: {work['data']}\nout: {out}\nextra: 1\n")
    result = invoke(["train", "--config", cfg])
    assert result.exit_code != 0
    assert str(cfg) in result.output and "extra" in result.output
    assert not out.exists()


def test_flags_override_the_config_file_and_sections_must_be_mappings(tmp_path, work):
    cfg = tmp_path / "run.yaml"
    out = tmp_path / "ens"
    cfg.write_text(f"data: {work['data']}\nout: {out}\nensemble:\n  kind: finetune\n"
                   f"  backbones: [{work['backbone']}]\n")
    result = invoke(["train", "--config", cfg, "--kind", "bogus", "--no-progress"])  # the flag wins over the file
    assert result.exit_code != 0 and "bogus" in result.output and "Traceback" not in result.output
    cfg.write_text(f"data: {work['data']}\nout: {out}\ntrain: [1, 2]\n")
    result = invoke(["train", "--config", cfg, "--no-progress"])
    assert result.exit_code != 0 and "train: expected a mapping" in result.output and "Traceback" not in result.output
    assert not out.exists()


# ---------------------------------------------------------- kill and resume
def _recorder(monkeypatch, kill_on=None):
    real = training_ensemble.train_member
    calls = []

    def wrapper(spec, *args, name, **kwargs):
        calls.append(name)
        if len(calls) == kill_on:
            raise KeyboardInterrupt  # what Ctrl-C / a kill mid-run looks like in process
        return real(spec, *args, name=name, **kwargs)

    monkeypatch.setattr(training_ensemble, "train_member", wrapper)
    return calls


def test_train_killed_after_first_member_resumes_on_rerun(tmp_path, work, monkeypatch):
    out = tmp_path / "ens"
    # One member at a time (TRL), so the kill falls between two members' training; the batched
    # path's kill between two members' writes is tests/training/test_resume.py's.
    cmd = ["train", "--data", work["data"], "--backbone", work["backbone"], "--out", out, "--members", "3",
           "--epochs", "1", "--no-batched", *HYPER]

    calls = _recorder(monkeypatch, kill_on=2)
    result = invoke(cmd)
    assert result.exit_code != 0
    assert calls == ["member_0", "member_1"]
    partial = Manifest.read(out)
    assert not partial.complete and [m.name for m in partial.members] == ["member_0"]
    assert sorted(p.name for p in out.iterdir()) == ["ensemble.json", "member_0"]
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "member_0").rglob("*")}

    # scoring the half-trained ensemble is refused
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"prompt": "item 1: ", "response": "good"}) + "\n")
    r = invoke(["score", out, "-i", items, "-o", tmp_path / "s.jsonl"])
    assert r.exit_code != 0 and "not complete" in r.output

    calls = _recorder(monkeypatch)
    result = invoke(cmd)
    assert result.exit_code == 0, result.output
    assert calls == ["member_1", "member_2"]  # member_0 was not retrained
    assert {p: p.stat().st_mtime_ns for p in (out / "member_0").rglob("*")} == mtimes
    manifest = Manifest.read(out)
    assert manifest.complete
    assert manifest.members[0] == partial.members[0]
    assert [m.name for m in manifest.members] == ["member_0", "member_1", "member_2"]
    for m in manifest.members:
        assert f"{m.name}: backbone=" in result.output
    assert len(Ensemble.load(out, device="cpu")) == 3


def test_train_same_out_with_different_config_fails_then_overwrite_replaces(trained, work, tmp_path, monkeypatch):
    _, ens_dir = trained
    out = tmp_path / "ens"
    shutil.copytree(ens_dir, out)
    before = (out / "ensemble.json").read_bytes()
    calls = _recorder(monkeypatch)
    result = invoke(["train", "--data", work["data"], "--backbone", work["backbone"], "--out", out,
                     "--members", "2", "--epochs", "3", "--lr", "1e-3", "--batch-size", "16", "--max-length", "64",
                     "--heldout-fraction", "0.2", "--no-progress"])
    assert result.exit_code != 0
    assert "different configuration" in result.output and "--overwrite" in result.output
    assert calls == []
    assert (out / "ensemble.json").read_bytes() == before

    # --overwrite, with the new plan given as a YAML config (flags still override it)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"data: {work['data']}\nout: {out}\nensemble:\n  backbones: [{work['backbone']}]\n"
                   "  n_members: 1\n  seeds: [4]\ntrain:\n  lr: 0.002\n  epochs: 1\n  batch_size: 16\n"
                   "  max_length: 64\n")
    result = invoke(["train", "--config", cfg, "--overwrite", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert calls == ["member_0"]
    manifest = Manifest.read(out)
    assert [(m.name, m.finetune_seed) for m in manifest.members] == [("member_0", 4)]
    assert manifest.members[0].train_config["lr"] == 0.002
    assert sorted(p.name for p in out.iterdir()) == ["ensemble.json", "member_0"]
    assert len(Ensemble.load(out, device="cpu")) == 1
