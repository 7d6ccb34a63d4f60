"""DPO through TRL on a tiny local policy: the step trains, evaluation is in eval mode,
RPO's SFT term is what TRL says it is, checkpoints resume, the CLI fails in one line."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from rewardherd.cli import app
from rewardherd.config import ConfigError, from_dict
from rewardherd.data import write_preferences
from rewardherd.io import file_sha256
from rewardherd.models.tiny import (
    build_backbone,
    build_saved_backbones,
    build_tokenizer,
    rule_gold,
    rule_labelled_pairs,
)
from rewardherd.policy import dpo as dpo_mod
from rewardherd.policy.dpo import DPOConfig, PlanMismatchError, dpo_schedule, dpo_trainer, train_dpo
from rewardherd.policy.rl import Evaluator, measure_kl

from .conftest import OneMember

EVAL_PROMPTS = [f"item {i}: " for i in range(200, 206)]  # training prompts are item 0..31
# 32 pairs / batch 8 = 4 steps per epoch; checkpoints at steps 2 and 4
SMALL = dict(batch_size=8, lr=5e-3, eval_every=2, eval_prompts=6, eval_samples=2, max_new_tokens=6,
             max_length=64, checkpoint_fractions=(0.5, 1.0))




@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("dpo")
    (policy,) = build_saved_backbones(root, [0])
    pairs = rule_labelled_pairs(32, seed=1)
    data = write_preferences(pairs, root / "prefs.jsonl")
    prompts = root / "eval_prompts.txt"
    prompts.write_text("".join(p + "\n" for p in EVAL_PROMPTS))
    return {"root": root, "policy": policy, "pairs": pairs, "data": data, "prompts": prompts}


@pytest.fixture(scope="module")
def run(world):
    """An uninterrupted 4-step DPO run with dropout kept on during training."""
    cfg = DPOConfig(**SMALL, disable_dropout=False)
    table = train_dpo(world["policy"], world["pairs"], EVAL_PROMPTS, world["root"] / "run", cfg,
                      ensemble=OneMember(), gold=rule_gold, progress=False)
    return table, world["root"] / "run", cfg


def _weights(model_dir):
    return load_file(str(model_dir / "model.safetensors"))


# ------------------------------------------------------------------ schedule
def test_checkpoints_fall_on_the_nearest_step_and_two_on_one_step_are_an_error():
    s = dpo_schedule(32, DPOConfig(batch_size=8, epochs=2.0, checkpoint_fractions=(0.25, 0.5, 1.5), eval_every=3))
    assert (s.steps_per_epoch, s.total_steps) == (4, 8)
    assert s.checkpoints == {1: 0.25, 2: 0.5, 6: 1.5}
    assert s.evals == {0, 1, 2, 3, 6, 8}
    with pytest.raises(ValueError, match="both fall on step 1"):
        dpo_schedule(8, DPOConfig(batch_size=8, checkpoint_fractions=(0.25, 0.5)))  # 1 step per epoch


@pytest.mark.parametrize("bad, message", [
    ({"loss_type": ["kto"]}, "'kto' is not one of"),
    ({"loss_type": ["sft"]}, "optionally followed by sft"),
    ({"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0]}, "loss_weights has 1 values for 2"),
    ({"kl_coef": 0}, "kl_coef must be > 0"),
    ({"checkpoint_fractions": [0.5, 1.5]}, "checkpoint_fractions must lie in"),
])
def test_bad_configs_name_the_key(bad, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(DPOConfig, bad, "command line")


# ---------------------------------------------------------- training, KL
@pytest.mark.slow  # a DPO run end to end
def test_a_dpo_step_changes_the_policy_and_not_the_reference(world, run):
    table, out, _ = run
    before, after = _weights(world["policy"]), _weights(out / "policy")
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2, changed  # the optimizer moved most tensors
    first = _weights(out / "checkpoints" / "epoch_0.5")
    assert any(not torch.equal(first[k], after[k]) for k in first)  # steps 3-4 trained on
    # the reference is the untouched input directory
    assert json.loads((out / "config.json").read_text())["plan"]["policy"]["model.safetensors"] == \
        file_sha256(world["policy"] / "model.safetensors")
    assert list(table["step"]) == [0, 2, 4]
    samples = pd.read_parquet(out / "dpo_samples.parquet")
    assert (samples.loc[samples["step"] == 4, "kl"].abs() > 1e-6).all()  # every log-ratio moved off 0


@pytest.mark.slow  # a DPO run end to end
def test_sampled_kl_is_exactly_zero_at_step_0_with_dropout_on(world, run):
    table, _, cfg = run
    assert not cfg.disable_dropout
    assert table["kl"].iloc[0] == 0.0 and table["kl_se"].iloc[0] == 0.0
    # the control: with this policy in train mode, dropout alone makes the KL positive
    tok = build_tokenizer()
    policy, ref = build_backbone(tok, seed=0).train(), build_backbone(tok, seed=0).eval()
    assert policy.config.resid_pdrop > 0
    kl = measure_kl(policy, ref, tok, EVAL_PROMPTS[:3], [[5, 6, 7, 8]] * 3)
    assert np.abs(kl).max() > 1e-3


@pytest.mark.slow  # a DPO run end to end
def test_the_evaluation_table_has_kl_proxy_gold_and_config(run):
    table, out, cfg = run
    assert {"step", "epoch", "kl", "kl_se", "ens/mean", "ens/std", "score/z/m0", "score/raw/m0", "gold",
            "gold_se", "config/loss_type", "config/kl_coef"} <= set(table.columns)
    np.testing.assert_allclose(table["epoch"], table["step"] / 4)
    assert (table["ens/mean"] > 0).all()  # mean response length in characters
    record = json.loads((out / "config.json").read_text())
    assert record["complete"] and record["config"]["loss_type"] == ["sigmoid"]
    samples = pd.read_parquet(out / "dpo_samples.parquet")
    assert len(samples) == 3 * cfg.eval_prompts * cfg.eval_samples
    assert not (out / "trainer").exists()  # TRL's scratch is gone


# ------------------------------------------------------------- RPO term
def _peaked(model):
    """Sharpen a random model's next-token distributions (scaled final layer norm), so token NLLs
    differ across positions and a per-token mean is told apart from a per-sequence one."""
    with torch.no_grad():
        model.transformer.ln_f.weight.mul_(20.0)
    return model


def test_rpo_sft_term_is_the_token_mean_nll_of_the_chosen_responses(tmp_path):
    tok = build_tokenizer()
    pairs = rule_labelled_pairs(8, seed=3)
    weight = 0.7
    one = dict(batch_size=8, checkpoint_fractions=(1.0,))
    configs = {"dpo": DPOConfig(**one), "rpo": DPOConfig(**one, loss_type=("sigmoid", "sft"), loss_weights=(1.0, weight))}
    trainers = {}
    for name, cfg in configs.items():  # one fresh, identical policy and reference per trainer
        policy, ref = _peaked(build_backbone(tok, seed=0)), _peaked(build_backbone(tok, seed=0)).eval()
        trainers[name] = dpo_trainer(policy, ref, tok, pairs, tmp_path / name, cfg, dpo_schedule(8, cfg),
                                     progress=False)
    rpo = trainers["rpo"]
    batch = rpo.data_collator([rpo.train_dataset[i] for i in range(8)])
    with torch.no_grad():
        loss = {n: float(t.compute_loss(t.model.eval(), batch)) for n, t in trainers.items()}
        # by hand: -log pi of every chosen-response token (the batch is [chosen; rejected])
        logits = rpo.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.double()
    logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
    mask = batch["completion_mask"][:, 1:].double()
    nll, m = -(logp * mask)[:8], mask[:8]
    per_token = float(nll.sum() / m.sum())
    per_sequence = float((nll.sum(1) / m.sum(1)).mean())
    assert loss["dpo"] == pytest.approx(math.log(2), abs=1e-6)  # policy == reference: -log sigmoid(0)
    assert loss["rpo"] - loss["dpo"] == pytest.approx(weight * per_token, rel=1e-5)
    # not RPO's per-sequence average: the chosen responses differ in length, and here it differs
    assert len(set(m.sum(1).tolist())) > 1
    assert loss["rpo"] - loss["dpo"] != pytest.approx(weight * per_sequence, rel=1e-3)


# ---------------------------------------------------------------- resume
@pytest.mark.slow  # a DPO run end to end
def test_a_killed_run_resumes_from_its_latest_checkpoint(world, run, monkeypatch):
    table, _, cfg = run
    out = world["root"] / "killed"
    calls = []
    real = Evaluator.__call__

    def kill_at_4(self, policy, step):
        calls.append(step)
        if step == 4:
            raise KeyboardInterrupt  # after the step-2 checkpoint, before the end
        return real(self, policy, step)

    monkeypatch.setattr(Evaluator, "__call__", kill_at_4)
    with pytest.raises(KeyboardInterrupt):
        train_dpo(world["policy"], world["pairs"], EVAL_PROMPTS, out, cfg, ensemble=OneMember(), gold=rule_gold,
                  progress=False)
    assert (out / "checkpoints" / "epoch_0.5").is_dir() and not (out / "checkpoints" / "epoch_1").exists()
    calls.clear()
    monkeypatch.setattr(Evaluator, "__call__", lambda self, policy, step: calls.append(step) or real(self, policy, step))
    resumed = train_dpo(world["policy"], world["pairs"], EVAL_PROMPTS, out, cfg, ensemble=OneMember(),
                        gold=rule_gold, progress=False)
    assert calls == [4]  # steps 1-2 and their evaluations were not redone
    cols = ["step", "epoch", "kl", "kl_se", "ens/mean", "gold"]
    pd.testing.assert_frame_equal(resumed[cols], table[cols], atol=1e-5)
    with pytest.raises(PlanMismatchError, match="different configuration"):
        train_dpo(world["policy"], world["pairs"], EVAL_PROMPTS, out, DPOConfig(**{**SMALL, "kl_coef": 0.5}),
                  progress=False)


# ------------------------------------------------------------------- CLI
def invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1"})


def _cli_args(world, out, *extra, fractions=("0.5", "1.0")):
    return ["dpo", "--data", world["data"], "--policy", world["policy"], "--eval-prompts", world["prompts"],
            "--out", out, "--batch-size", "8", "--lr", "5e-3", "--eval-every", "2", "--n-eval-prompts", "6",
            "--max-new-tokens", "6", "--max-length", "64", "--no-progress", *extra,
            *[a for f in fractions for a in ("--checkpoint-fraction", f)]]


def _assert_one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.mark.parametrize("case", ["missing_data", "bad_field", "bad_loss_type", "weights_mismatch", "no_policy"])
def test_cli_bad_input_is_a_one_line_error_and_writes_nothing(case, world, tmp_path):
    out = tmp_path / "out"
    data = tmp_path / "prefs.jsonl"
    rows = [{"prompt": "item 1: ", "chosen": "good", "rejected": "bad"}, {"prompt": "item 2: ", "chosen": "kind"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args, needles = {
        "missing_data": (["--data", tmp_path / "nope.jsonl"], ["nope.jsonl"]),
        "bad_field": (["--data", data], [f"{data}:2", "field 'rejected'"]),
        "bad_loss_type": (["--loss-type", "kto"], ["loss_type[0]", "'kto'"]),
        "weights_mismatch": (["--loss-type", "sigmoid", "--loss-type", "sft", "--loss-weight", "0.5"],
                             ["loss_weights has 1 values for 2"]),
        "no_policy": (["--policy", tmp_path / "no_policy"], ["no_policy", "policy directory not found"]),
    }[case]
    _assert_one_line_error(invoke(_cli_args(world, out, *args)), *needles)
    assert not out.exists()


@pytest.mark.slow  # a DPO run end to end
def test_cli_resuming_a_finished_run_does_no_training_and_another_plan_is_refused(world, tmp_path, monkeypatch):
    out = tmp_path / "rpo"
    rpo = ["--loss-type", "sigmoid", "--loss-type", "sft", "--loss-weight", "1", "--loss-weight", "0.5", "--epochs",
           "0.5", "--gold", "rewardherd.models.tiny:rule_gold"]
    args = _cli_args(world, out, *rpo, fractions=("0.25", "0.5"))
    first = invoke(args)
    assert first.exit_code == 0, first.output
    table = pd.read_parquet(out / "dpo_eval.parquet")
    assert list(table["step"]) == [0, 1, 2] and "gold" in first.output  # step 1: the 0.25 checkpoint
    assert json.loads((out / "config.json").read_text())["config"]["loss_weights"] == [1.0, 0.5]

    from trl import DPOTrainer

    def no_training(*a, **k):
        raise AssertionError("a finished run must not train again")

    monkeypatch.setattr(DPOTrainer, "__init__", no_training)
    monkeypatch.setattr(DPOTrainer, "train", no_training)
    mtime = (out / "dpo_eval.parquet").stat().st_mtime_ns
    again = invoke(args)
    assert again.exit_code == 0, again.output
    assert (out / "dpo_eval.parquet").stat().st_mtime_ns == mtime
    pd.testing.assert_frame_equal(pd.read_parquet(out / "dpo_eval.parquet"), table)
    _assert_one_line_error(invoke([*args, "--beta", "0.5"]), "different configuration",
                           "--overwrite")
    assert dpo_mod.EVAL_TABLE in {p.name for p in out.iterdir()}  # the refused rerun left the run as it was
