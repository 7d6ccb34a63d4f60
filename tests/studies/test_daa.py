"""The study's direct-alignment arm: config, the RL-form fit with its pigeonhole interval, C7 applied
alike by the study and its calibration, the calibration's verdict directions, and a smoke run on tiny
local models end to end (units, tables, fits, claim, figure, paragraph)."""

import json

import numpy as np
import pandas as pd
import pytest

from rewardherd import core
from rewardherd.config import ConfigError
from rewardherd.studies import calibration as cal
from rewardherd.studies import claims as cl
from rewardherd.studies import daa
from rewardherd.studies.config import PROFILES, resolve_config
from rewardherd.studies.runner import DAAUnit, plan_daa

from .conftest import rule_params

# ------------------------------------------------------------------ config


def test_daa_is_off_by_default_and_the_profile_turns_it_on():
    assert plan_daa(resolve_config(profile="quick")) == []
    cfg = resolve_config(profile="daa")
    units = plan_daa(cfg)
    sw = cfg.daa_sweep
    assert sw.enabled and len(units) == len(sw.objectives) * len(sw.betas) * len(sw.data) * len(sw.seeds)
    assert len({u.name for u in units}) == len(units)
    assert PROFILES["full"]["daa_sweep"]["enabled"] is True
    assert cfg.daa_sweep.loss("rpo") == (("sigmoid", "sft"), (1.0, cfg.daa_sweep.rpo_weight))


@pytest.mark.parametrize(("override", "match"), [
    ("daa_sweep.objectives=[slic]", "is not one of"),
    ("daa_sweep.relabel_drop=1", "relabel_drop must be in"),
    ("daa_sweep.betas=[0]", "betas must be > 0"),
    ("dpo.kl_coef=0.2", "set per DAA unit"),
])
def test_bad_daa_settings_fail_clearly(override, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config(profile="quick", overrides=[override])


def test_relabel_pairs_by_hand():
    from rewardherd.cleaning import relabel_pairs
    from rewardherd.models.tiny import rule_labelled_pairs

    pairs = rule_labelled_pairs(5, seed=0)
    table = pd.DataFrame({"id": [p.id for p in pairs], "mean": [1.0, -2.0, -0.5, 0.3, 2.0],
                          "std": [0.1, 0.2, 5.0, 0.3, 4.0], "in_sample": False})
    out, summary = relabel_pairs(pairs, table, drop_uncertain=0.4)  # drops the two largest std: pairs 2 and 4
    assert [p.id for p in out] == [pairs[i].id for i in (0, 1, 3)]
    assert (out[1].chosen, out[1].rejected) == (pairs[1].rejected, pairs[1].chosen)  # negative vote: swapped
    assert out[0] is pairs[0] and out[2] is pairs[3]
    assert summary["n_flipped"] == 1 and summary["n_dropped"] == 2 and summary["dropped_std_min"] == 4.0
    with pytest.raises(KeyError, match="no row"):
        relabel_pairs(pairs, table.iloc[1:], drop_uncertain=0.0)


# ------------------------------------------------------------------ fit


def _rl_curves(alpha, beta, S=3, P=40, T=8, noise=0.02, seed=0):
    rng = np.random.default_rng(seed)
    d = np.linspace(0.0, 4.0, T)
    gao = core.gao_curve(d, alpha, beta, "rl")
    gold = gao[None, None, :] + noise * rng.standard_normal((S, P, T)) + rng.standard_normal((1, P, 1))
    kl = d ** 2 * (1 + 0.05 * rng.standard_normal((S, P, T)))  # sampled KL: noisy, exactly 0 at the reference
    return gold, kl


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.8), (0.6, 0.2)])
def test_the_rl_form_fit_recovers_alpha_and_beta_with_an_interval_around_them(alpha, beta):
    gold, kl = _rl_curves(alpha, beta)
    f = core.fit_gao_pigeonhole(gold, kl, "rl", n_boot=200)
    assert f["alpha"] == pytest.approx(alpha, abs=0.03) and f["beta"] == pytest.approx(beta, abs=0.03)
    assert f["alpha_low"] <= alpha <= f["alpha_high"] and f["beta_low"] <= beta <= f["beta_high"]
    assert f["peak_d"] == pytest.approx(np.exp(alpha / beta - 1), rel=0.1)
    assert f["beta_high"] - f["beta_low"] < 0.1


def test_the_interval_widens_with_prompt_noise_and_refuses_bad_shapes():
    tight = core.fit_gao_pigeonhole(*_rl_curves(1.0, 0.8, noise=0.01), "rl", n_boot=200)
    wide = core.fit_gao_pigeonhole(*_rl_curves(1.0, 0.8, noise=0.5), "rl", n_boot=200)
    assert wide["beta_high"] - wide["beta_low"] > 3 * (tight["beta_high"] - tight["beta_low"])
    with pytest.raises(ValueError, match="one shape"):
        core.fit_gao_pigeonhole(np.zeros((2, 3, 4)), np.zeros((2, 3, 5)))


# ------------------------------------------------------------------ C7, study vs calibration


def _samples(rng, S=2, P=8, T=4, objectives=("dpo", "rpo")):
    """A synthetic table of DAA samples: what daa_samples reads from the units."""
    rows = []
    for obj in objectives:
        for s in range(S):
            for p in range(P):
                for t in range(T):
                    for j in range(2):
                        rows.append({"objective": obj, "beta": 0.1, "data": "noisy", "noise": 0.25, "seed": s,
                                     "prompt_id": p, "sample_id": j, "step": 3 * t, "point": t,
                                     "kl": 0.1 * t + 0.01 * rng.random(), "gold": rng.standard_normal()})
    return pd.DataFrame(rows)


def test_the_study_and_the_calibration_apply_c7_with_its_specs_parameters(rule_calls):
    results = daa.daa_claims(_samples(np.random.default_rng(0)))
    assert len(results) == 1 and results[0]["claim"] == "rpo_vs_dpo_drop"
    study_calls = list(rule_calls.pop("rpo_vs_dpo_drop"))
    for sc in cal.daa_scenarios():
        cal.run_once(sc, cal.DAASize(seeds=2, prompts=8, points=4), np.random.default_rng(0))
    calibration_calls = rule_calls["rpo_vs_dpo_drop"]
    assert study_calls and len(calibration_calls) == len(cal.daa_scenarios())
    spec = cl.SPECS["rpo_vs_dpo_drop"]
    for kw in study_calls + calibration_calls:
        assert rule_params(kw) == spec.params
    r = results[0]
    assert (r["label"], r["direction"], r["rule"]) == (spec.label, spec.direction, spec.rule)
    assert {sc.kind for sc in cal.daa_scenarios()} == set(spec.kinds)


def test_c7_needs_both_objectives():
    assert daa.daa_claims(_samples(np.random.default_rng(0), objectives=("dpo", "ipo"))) == []


def test_c7_by_hand():
    """Peaks chosen on the selection prompts; drops on the others; DPO's minus RPO's."""
    select = cl.split_prompts(4, seed=0)
    dpo = np.zeros((1, 4, 3))
    dpo[..., 1] = 2.0  # peak at point 1, ends at 0: drop 2
    rpo = np.zeros((1, 4, 3))
    rpo[..., 1], rpo[..., 2] = 1.0, 0.5  # peak at point 1: drop 0.5
    r = cl.apply("rpo_vs_dpo_drop", dpo, rpo, np.arange(3), select)
    assert r.estimate == pytest.approx(1.5) and r.extra["dpo_peak"] == r.extra["rpo_peak"] == 1


@pytest.mark.parametrize(("truth", "verdict", "at_least"), [
    ("null", "reproduced", None), ("effect", "reproduced", 4), ("opposite", "not reproduced", 4)])
def test_calibration_scenarios_give_the_expected_verdict_direction(truth, verdict, at_least):
    size = cal.DAASize(seeds=4, prompts=64, points=6)  # the direction, at a size where the strong cells have power
    for sc in [sc for sc in cal.daa_scenarios() if sc.truth == truth][:1]:
        row = cal.run_scenario(sc, size, replicates=6, seed=3)
        if at_least is None:  # a null: almost never reproduced
            assert row["reproduced"] <= 1 / 6
        else:
            assert row[verdict] >= at_least / 6
            assert row["reproduced" if truth == "opposite" else "not reproduced"] == 0


def test_daa_calibration_is_its_own_cells(tmp_path):
    size = cal.DAASize(seeds=1, prompts=8, points=3)
    rows = cal.calibrate(size, 1, cache_dir=tmp_path, cells=cal.daa_scenarios())
    assert [r["claim"] for r in rows] == ["rpo_vs_dpo_drop"] * len(cal.daa_scenarios())
    assert {r["truth"] for r in rows} == {"null", "effect", "opposite"}
    assert len(list((tmp_path / "calibration").glob("*.json"))) == len(rows)


def test_arm_band_by_hand():
    """2 seeds x 3 prompts x 2 evaluations, 2 samples per (seed, prompt, evaluation): the band's
    estimate is the mean per-(seed, prompt) gain over step 0, and its interval is the crossed t
    interval of exactly those gains; step 0 has gain 0 and a zero-width interval."""
    rows = []
    gain = np.array([[0.1, 0.3, 0.2], [0.0, 0.4, 0.5]])  # (seed, prompt) at the second evaluation
    for seed in (0, 1):
        for p in range(3):
            for point, step in enumerate((0, 8)):
                base = 0.05 * p + 0.01 * seed
                for sample, jitter in enumerate((-0.02, 0.02)):
                    rows.append({"objective": "dpo", "beta": 0.1, "data": "noisy", "noise": 0.25, "seed": seed,
                                 "prompt_id": f"p{p}", "sample_id": sample, "step": step, "point": point,
                                 "kl": [0.0, 0.25 if seed == 0 else 1.0][point] + jitter * point,
                                 "gold": base + gain[seed, p] * point + jitter})
    band = daa.arm_band(daa.arm_grids(pd.DataFrame(rows)))
    assert list(band["point"]) == [0, 1] and set(band["seeds"]) == {2} and set(band["prompts"]) == {3}
    first, second = band.iloc[0], band.iloc[1]
    assert first["estimate"] == pytest.approx(0.0) and first["low"] == first["high"] == pytest.approx(0.0)
    assert second["estimate"] == pytest.approx(gain.mean())
    iv = core.crossed_interval(gain)
    assert (second["low"], second["high"]) == (pytest.approx(iv.low), pytest.approx(iv.high))
    assert second["low"] < gain.mean() < second["high"]
    assert second["sqrt_kl"] == pytest.approx((0.5 + 1.0) / 2)  # each seed's sqrt(mean KL), then averaged


def test_paragraph_is_generated_from_the_results():
    table = pd.DataFrame({"objective": "dpo", "beta": 0.1, "data": "noisy", "noise": 0.25, "seed": 0,
                          "step": [0, 2, 4], "epoch": [0.0, 0.5, 1.0], "kl": [0.0, 1.0, 4.0],
                          "sqrt_kl": [0.0, 1.0, 2.0], "gold": [0.0, 0.3, 0.1], "proxy": np.nan})
    text = daa.daa_paragraph(table, [], [])
    assert "highest (0.300) at epoch 0.5" in text and "peaks before the end" in text
    rising = daa.daa_paragraph(table.assign(gold=[0.0, 0.1, 0.3]), [], [])
    assert "rises to the end" in rising and "peaks before" not in rising
    curves = pd.DataFrame({"noise": [0.25, 0.25, 0.0], "kind": "pretrain", "method": "mean", "n": [1, 4, 4],
                           "kl": [0.0, 0.64, 0.64], "gold_delta": [0.0, 0.2, 0.9]})
    beside = daa.beside_text(curves, None, table)
    assert "largest gold gain +0.200 (mean, n=4, sqrt KL 0.80)" in beside  # the DAA arm's noise, not 0's +0.9
    assert "Direct alignment: largest gold gain +0.300 (DPO (beta 0.1, noisy data); its end sqrt KL 2.00)" in beside
    flat = daa.daa_paragraph(table.assign(gold=0.0), [], [])
    assert "never rises above its step-0 gold" in flat and "rises to the end" not in flat
    falling = daa.daa_paragraph(table.assign(gold=[0.0, -0.1, -0.2], epoch=[0.0, 0.512821, 1.0]), [], [])
    assert "never rises above its step-0 gold" in falling and "peaks before" not in falling
    assert "epoch 0.513" in daa.daa_paragraph(table.assign(epoch=[0.0, 0.512821, 1.0]), [], [])
    fit = {"objective": "rpo", "kl_coef": 0.2, "data": "cleaned", "alpha": 1.0, "alpha_low": 0.5, "alpha_high": 1.5,
           "beta": 0.7, "beta_low": 0.1, "beta_high": 0.9, "r2": 0.9}
    assert "Gao's RL form on RPO (beta 0.2, cleaned data): alpha 1 [0.5, 1.5], beta 0.7" in daa.daa_paragraph(
        table, [fit], [])


# ------------------------------------------------------------------ smoke run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    import yaml

    from rewardherd.data import split_by_prompt, write_preferences
    from rewardherd.models.tiny import build_saved_backbones, rule_labelled_pairs

    root = tmp_path_factory.mktemp("daa")
    bbs = build_saved_backbones(root, [0, 1, 7])
    train, held = split_by_prompt(rule_labelled_pairs(64, seed=3), heldout_fraction=0.25)
    write_preferences(train, root / "train.jsonl")
    write_preferences(held, root / "heldout.jsonl")
    (root / "prompts.txt").write_text("".join(f"item {i}: \n" for i in range(500, 508)))
    cfg = {"profile": "smoke", "rl_sweep": {"enabled": False},
           "user": {"policy": str(bbs[2]), "preferences": str(root / "train.jsonl"),
                    "heldout_preferences": str(root / "heldout.jsonl"), "backbones": [str(bbs[0]), str(bbs[1])],
                    "prompts": str(root / "prompts.txt"), "gold": "rewardherd.models.tiny:rule_gold",
                    "max_new_tokens": 6},
           "train": {"epochs": 1.0, "lr": 2e-3, "batch_size": 16, "max_length": 64},
           "clean": {"folds": 2, "members": 1},
           "dpo": {"batch_size": 8, "lr": 5e-3, "max_length": 64, "eval_prompts": 8, "eval_samples": 2,
                   "checkpoint_fractions": [0.5, 1.0]},
           "daa_sweep": {"enabled": True, "objectives": ["dpo", "rpo"], "data": ["noisy", "cleaned", "relabelled"],
                         "seeds": [0, 1]}}
    (root / "study.yaml").write_text(yaml.safe_dump(cfg))
    return resolve_config(root / "study.yaml"), root


def test_the_arm_runs_at_smoke_size_end_to_end(smoke, tmp_path, monkeypatch):
    from rewardherd.studies import plots, runner
    from rewardherd.studies.inputs import resolve_inputs

    config, _ = smoke
    inputs = resolve_inputs(config, progress=False)
    out = tmp_path / "study"
    units = plan_daa(config)
    assert len(units) == 12
    for u in units:
        runner.run_daa_unit(u, config, inputs, str(out))
    done = {u.name: json.loads((out / "cells" / u.name / "DONE").read_text()) for u in units}
    for data in ("cleaned", "relabelled"):
        rows = [r for r in done.values() if r["data"] == data]
        assert len(rows) == 4 and all(r["cleaning"]["n_pairs"] == len(inputs.train_pairs) for r in rows)
        assert all(r["n_pairs"] == r["cleaning"]["n_written"] < len(inputs.train_pairs) for r in rows)
    relabelled = [r for r in done.values() if r["data"] == "relabelled"]
    assert all(r["cleaning"]["n_dropped"] == int(0.2 * len(inputs.train_pairs)) for r in relabelled)
    # one cross-fitting per seed, shared by cleaned and relabelled (and by the cleaned kind)
    assert len(list((out / "members").glob("cleaned__*/strength.parquet"))) == 2
    mtime = (out / "cells" / units[0].name / "DONE").stat().st_mtime_ns
    runner.run_daa_unit(units[0], config, inputs, str(out))  # idempotent: nothing retrained
    assert (out / "cells" / units[0].name / "DONE").stat().st_mtime_ns == mtime

    (out / "results").mkdir()
    fits = daa.analyze_daa(out, config)
    table = pd.read_parquet(out / "results" / "daa.parquet")
    assert list(table.columns) == ["objective", "beta", "data", "noise", "seed", "step", "epoch", "kl", "sqrt_kl",
                                   "gold", "proxy"]
    assert len(table) == len(units) * 3  # step 0 and the two checkpoints
    assert (table.loc[table["step"] == 0, "kl"] == 0).all() and (table.loc[table["step"] > 0, "kl"] != 0).any()
    assert len(fits) == 6 and all(f["seeds"] == 2 and f["prompts"] == 8 and f["kl_coef"] == 0.1 for f in fits)
    # the tiny rule gold barely moves on tiny-policy text: the fit's plumbing, not its values (tested above)
    assert all(np.isfinite([f["alpha"], f["alpha_low"], f["beta_high"]]).all() and f["alpha_low"] <= f["alpha_high"]
               and f["n_points"] == 3 for f in fits)
    stored = json.loads((out / "results" / "daa_claims.json").read_text())
    assert [c["data"] for c in stored["claims"]] == ["cleaned", "noisy", "relabelled"]
    assert "calibration" not in stored and not (out / "results" / "daa_calibration.json").exists()
    calibration = daa.calibrate_daa(out, config)  # the calibration stage's part
    assert calibration == json.loads((out / "results" / "daa_calibration.json").read_text())
    assert calibration["size"] == {"seeds": 2, "prompts": 8, "points": 3}
    assert len(calibration["rows"]) == len(cal.daa_scenarios())
    # run again, it reuses the stored rows by key: no simulation
    monkeypatch.setattr(cal, "run_scenario", lambda *a, **k: pytest.fail("C7's calibration re-simulated a cell"))
    assert daa.calibrate_daa(out, config)["rows"] == calibration["rows"]

    bon = pd.DataFrame({"noise": 0.25, "kind": ["pretrain"] * 2 + ["single"] * 2, "method": "mean", "size": [2, 2, 1, 1],
                        "n": [1, 2, 1, 2], "kl": [0.0, 0.19, 0.0, 0.19], "gold_delta": [0.0, 0.1, 0.0, 0.05]})
    band = pd.read_parquet(out / "results" / "daa_band.parquet")
    assert len(band) == len(fits) * 3 and (band["low"] <= band["estimate"]).all()
    assert (band.loc[band["point"] == 0, "estimate"] == 0).all()
    path = plots.optimizers(bon, None, band, tmp_path / "optimizers.png")
    assert path.exists() and path.stat().st_size > 1000
    from rewardherd.studies.report import _daa_section

    text, claims_df, cal_df = _daa_section(out / "results")
    assert "DPO (beta 0.1, cleaned data)" in text and "C7" in text
    assert list(claims_df["claim"]) == ["C7"] * 3 and len(cal_df) == len(cal.daa_scenarios())


def test_an_older_studys_c7_calibration_is_kept_when_its_claims_are_rewritten(tmp_path):
    legacy = {"size": {"seeds": 2, "prompts": 8, "points": 3}, "replicates": 4, "rows": [{"key": "k", "claim": "c"}]}
    (tmp_path / "daa_claims.json").write_text(json.dumps({"claims": [], "calibration": legacy}))
    daa.keep_stored_calibration(tmp_path)
    assert json.loads((tmp_path / "daa_calibration.json").read_text()) == legacy
    assert daa.stored_daa_calibration(tmp_path) == legacy
    (tmp_path / "daa_claims.json").write_text(json.dumps({"claims": [], "calibration": {"rows": ["other"]}}))
    daa.keep_stored_calibration(tmp_path)  # a newer file is never replaced
    assert json.loads((tmp_path / "daa_calibration.json").read_text()) == legacy
    (tmp_path / "daa_calibration.json").unlink()
    assert daa.stored_daa_calibration(tmp_path) == {"rows": ["other"]}  # read where older studies kept it
    (tmp_path / "daa_claims.json").unlink()
    assert daa.stored_daa_calibration(tmp_path) == {}


def test_a_unit_is_named_by_all_of_its_axes():
    a = DAAUnit("dpo", 0.1, "noisy", 0.25, 0)
    assert len({a.name, DAAUnit("rpo", 0.1, "noisy", 0.25, 0).name, DAAUnit("dpo", 0.2, "noisy", 0.25, 0).name,
                DAAUnit("dpo", 0.1, "cleaned", 0.25, 0).name, DAAUnit("dpo", 0.1, "noisy", 0.25, 1).name}) == 5
