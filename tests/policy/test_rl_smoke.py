"""RL smoke test: TRL RLOO on a tiny policy against a 3-member ensemble for a few steps."""

import numpy as np
import pandas as pd
import pytest

from rewardherd.data import split_by_prompt
from rewardherd.models import Ensemble
from rewardherd.models.tiny import build_saved_backbones, rule_gold, rule_labelled_pairs
from rewardherd.policy.rl import RLConfig, measure_kl, run_rl
from rewardherd.training import EnsembleConfig, TrainConfig, train_ensemble

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("rl")
    bb, policy = build_saved_backbones(root, [0, 5])
    train, held = split_by_prompt(rule_labelled_pairs(120, seed=1), heldout_fraction=0.25)
    train_ensemble(train, held, root / "ens", EnsembleConfig(kind="finetune", backbones=(str(bb),), n_members=3),
                   TrainConfig(epochs=1, lr=2e-3, batch_size=16), progress=False)
    return root, policy, Ensemble.load(root / "ens")


def test_rloo_run_logs_members_spread_and_growing_kl(tiny):
    root, policy, ens = tiny
    cfg = RLConfig(steps=4, eval_every=2, lr=5e-3, kl_coef=0.05, max_new_tokens=6, eval_prompts=12,
                   eval_samples=2, num_generations=4, prompts_per_step=2, method="uncertainty_weighted",
                   params={"lam": 0.1})
    table = run_rl(policy, ens, [f"item {i}: " for i in range(30)], [f"item {i}: " for i in range(200, 212)],
                   root / "run", cfg, gold=rule_gold, progress=False)
    assert list(table["step"]) == [0, 2, 4]
    assert table["kl"].iloc[0] == pytest.approx(0.0, abs=1e-9)  # policy == reference at step 0
    assert (table["kl"] >= -3 * table["kl_se"].clip(lower=1e-6)).all()
    assert table["kl"].iloc[-1] > 0
    # rows follow docs/schema.md: one column per member (raw and z), the aggregate, the spread
    for name in ens.names:
        assert f"score/z/{name}" in table and f"score/raw/{name}" in table
    assert {"gold", "ens/uncertainty_weighted(lam=0.1)", "ens/std"} <= set(table.columns)
    assert not [c for c in table.columns if c.startswith(("member/", "member_raw/", "proxy/", "rm/", "ens_"))]
    log = pd.read_parquet(root / "run" / "rl_train_log.parquet")
    assert {"score/z/member_0", "score/z/member_1", "score/z/member_2", "ens/std"} <= set(log.columns)
    assert (root / "run" / "checkpoints" / "step_4" / "model.safetensors").exists()
    samples = pd.read_parquet(root / "run" / "rl_samples.parquet")
    assert {"score/raw/member_0", "gold", "kl", "step"} <= set(samples.columns)


def test_measure_kl_is_zero_for_identical_models(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, policy, _ = tiny
    m = AutoModelForCausalLM.from_pretrained(policy).eval()
    tok = AutoTokenizer.from_pretrained(policy)
    kl = measure_kl(m, m, tok, ["item 1: ", "item 2: "], [[5, 6, 7], [8]])
    np.testing.assert_allclose(kl, 0.0, atol=1e-12)


def test_reward_function_drops_into_trl_grpo(tiny, tmp_path):
    """The adapter is a plain TRL reward function: GRPOTrainer accepts it unchanged."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    _, policy, ens = tiny
    tok = AutoTokenizer.from_pretrained(policy)
    tok.padding_side = "left"
    args = GRPOConfig(output_dir=str(tmp_path), beta=0.0, num_generations=2, per_device_train_batch_size=4,
                      max_completion_length=4, max_steps=1, report_to="none", save_strategy="no", use_cpu=True,
                      bf16=False, gradient_checkpointing=False, logging_steps=1, disable_tqdm=True)
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(policy), args=args,
                          reward_funcs=[ens.as_reward_function("min")],
                          train_dataset=Dataset.from_list([{"prompt": f"item {i}: "} for i in range(8)]),
                          processing_class=tok)
    trainer.train()
    keys = set().union(*[h.keys() for h in trainer.state.log_history])
    assert "ens/std" in keys and "rewards/ensemble_min/mean" in keys


def test_rl_rollouts_come_from_the_kv_sampler_and_are_seeded(tiny, monkeypatch):
    """With kv_sampler (the default) TRL's generate is never called; the same seed gives the same run."""
    import torch
    from transformers import GenerationMixin

    from rewardherd.policy import sampling

    root, policy, ens = tiny
    calls = []
    real = sampling.generate_ids
    monkeypatch.setattr(sampling, "generate_ids", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))

    def no_generate(*a, **k):
        raise AssertionError("TRL's generate was called")

    monkeypatch.setattr(GenerationMixin, "generate", no_generate)
    cfg = RLConfig(steps=2, eval_every=2, lr=5e-3, kl_coef=0.05, max_new_tokens=6, eval_prompts=4, eval_samples=2,
                   num_generations=4, prompts_per_step=2, save_checkpoints=False)
    prompts = [f"item {i}: " for i in range(30)]
    runs = [run_rl(policy, ens, prompts, [f"item {i}: " for i in range(200, 204)], root / f"kv{i}", cfg,
                   gold=rule_gold, progress=False) for i in range(2)]
    assert calls == [8, 8, 8, 8]  # 2 steps x (2 prompts x 4 generations), twice
    pd.testing.assert_frame_equal(runs[0], runs[1])
    assert runs[0]["kl"].iloc[-1] > 0
    assert torch.get_default_dtype() == torch.float32
