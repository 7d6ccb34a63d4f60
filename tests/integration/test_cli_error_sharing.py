"""`rewardherd eval --gold` and `rewardherd score --gold` report the members' error sharing
(end to end through the CLI, in process, with a toy gold function in a tmp module)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from rewardherd import core
from rewardherd.cli import app
from rewardherd.data import load_preferences, write_preferences
from rewardherd.models import Ensemble, Manifest, Member, MemberInfo
from rewardherd.models.tiny import build_saved_backbones, rule_labelled_pairs

pytestmark = pytest.mark.integration

GOLD_MODULE = '''
def score(prompts, responses):
    return [len(r.split()) + 2.0 * r.count("good") - r.count("bad") for r in responses]

def short(prompts, responses):
    return [1.0]

def broken(prompts, responses):
    raise RuntimeError("no judge today")
'''


def invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"TERMINAL_WIDTH": "200", "NO_COLOR": "1"})


def _member(backbone, i: int) -> Member:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    tok = AutoTokenizer.from_pretrained(backbone)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "score.weight newly initialized" is expected: heads differ by seed
    try:
        torch.manual_seed(200 + i)
        model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=1, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = tok.pad_token_id
    info = MemberInfo(name=f"member_{i}", path=f"member_{i}", backbone=str(backbone), finetune_seed=i,
                      pretrain_seed=0, heldout_accuracy=0.5, n_heldout_pairs=20,
                      standardization={"mean": 0.1 * i, "std": 1.0 + i, "n": 20}, train_config={})
    return Member(info, model.eval(), tok)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharing_cli")
    (backbone,) = build_saved_backbones(root, [0])
    members = [_member(backbone, i) for i in range(3)]
    ens_dir = Ensemble(members, Manifest(kind="finetune", members=[m.info for m in members],
                                         max_length=64)).save(root / "ens")
    one_dir = Ensemble(members[:1], Manifest(kind="explicit", members=[members[0].info],
                                             max_length=64)).save(root / "one")
    data = write_preferences(rule_labelled_pairs(24, seed=1), root / "heldout.jsonl")
    (root / "toygold_sharing.py").write_text(GOLD_MODULE)
    items = root / "items.jsonl"
    rows = [{"id": i, "prompt": f"item {i // 3}: ", "response": r} for i, r in enumerate(
        ["good kind warm", "bad cruel", "happy sad bright good", "good good", "cold dark bad", "warm",
         "bad", "kind good warm happy", "sad"])] + [{"id": 9, "prompt": "lonely: ", "response": "good"}]
    items.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"root": root, "ens": ens_dir, "one": one_dir, "data": data, "items": items, "rows": rows}


@pytest.fixture(autouse=True)
def _gold_on_path(work, monkeypatch):
    monkeypatch.syspath_prepend(str(work["root"]))


def test_eval_gold_prints_and_writes_the_decomposition(work):
    from toygold_sharing import score as gold

    out = work["root"] / "eval.json"
    result = invoke(["eval", work["ens"], "--data", work["data"], "--gold", "toygold_sharing:score", "--json", out])
    assert result.exit_code == 0, result.output
    res = json.loads(out.read_text())["error_sharing"]
    assert set(res) == {"responses", "margins"}
    # the same numbers from Python, on both sides of every pair
    pairs, _ = load_preferences(work["data"])
    ens = Ensemble.load(work["ens"], device="cpu")
    prompts = [p.prompt for p in pairs] * 2
    responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    want = ens.error_sharing(prompts, responses, gold)
    got = res["responses"]
    assert got["n_samples"] == 2 * len(pairs) and got["k"] == 3
    assert got["shared_fraction"] == pytest.approx(want.shared_fraction)
    assert got["rho_bar"] == pytest.approx(want.rho_bar)
    assert list(got["member_variance"]) == ens.names
    assert list(got["member_variance"].values()) == pytest.approx(list(want.member_variance))
    assert got["predicted_variance"]["3"] == pytest.approx(want.mean_error_variance)
    b = len(pairs)
    raw = ens.score(prompts, responses)
    g = np.asarray(gold(prompts, responses))
    m = core.margin_error_sharing(raw[:, :b], raw[:, b:], g[:b], g[b:])
    assert res["margins"]["rho_bar"] == pytest.approx(m.rho_bar)
    assert res["margins"]["n_samples"] == b
    text = " ".join(result.output.split())
    assert f"error sharing vs gold on {2 * b} responses, K=3:" in text
    assert f"error sharing vs gold on {b} margins, K=3:" in text
    assert f"shared fraction var(mean error)/mean var: {want.shared_fraction:.3f} rho_bar: {want.rho_bar:.3f}" in text
    assert f"member_0 {want.member_variance[0]:.3f}" in text


def test_eval_without_gold_is_unchanged(work):
    result = invoke(["eval", work["ens"], "--data", work["data"]])
    assert result.exit_code == 0, result.output
    assert "error sharing" not in result.output


def test_score_gold_writes_gold_column_and_sharing_json(work):
    from toygold_sharing import score as gold

    out = work["root"] / "scores.parquet"
    result = invoke(["score", work["ens"], "-i", work["items"], "-o", out, "--gold", "toygold_sharing:score",
                     "--overwrite"])
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(out)
    rows = work["rows"]
    np.testing.assert_allclose(df["gold"], gold(None, [r["response"] for r in rows]))
    rec = json.loads((work["root"] / "scores.sharing.json").read_text())
    want = core.error_sharing(df[[f"score/raw/member_{i}" for i in range(3)]].to_numpy().T, df["gold"].to_numpy())
    assert rec["shared_fraction"] == pytest.approx(want.shared_fraction)
    assert rec["n_groups"] is None and rec["n_samples"] == len(rows)
    assert "error sharing -> " in result.output


def test_score_within_prompt_drops_and_counts_single_response_prompts(work):
    out = work["root"] / "scores_wp.jsonl"
    result = invoke(["score", work["ens"], "-i", work["items"], "-o", out, "--gold", "toygold_sharing:score",
                     "--within-prompt"])
    assert result.exit_code == 0, result.output
    rec = json.loads((work["root"] / "scores_wp.sharing.json").read_text())
    assert (rec["n_groups"], rec["n_samples"], rec["n_dropped"]) == (3, 9, 1)  # "lonely: " has one response
    assert "in 3 groups, z-scored within each (1 dropped)" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gold", "toygold_sharing:missing"], "cannot import"),
        (["--gold", "no_such_module_xyz:score"], "cannot import"),
        (["--gold", "toygold_sharing:short"], "returned shape (1,)"),
        (["--gold", "toygold_sharing:broken"], "RuntimeError: no judge today"),
        (["--within-prompt"], "--within-prompt needs --gold"),
    ],
)
def test_score_gold_mistakes_exit_2(work, args, message):
    out = work["root"] / "bad.jsonl"
    result = invoke(["score", work["ens"], "-i", work["items"], "-o", out, *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not out.exists()


def test_eval_gold_needs_two_members(work):
    result = invoke(["eval", work["one"], "--data", work["data"], "--gold", "toygold_sharing:score"])
    assert result.exit_code == 2, result.output
    assert "at least 2 members" in result.output
