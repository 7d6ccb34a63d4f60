"""A fast subset of the claim rules' calibration (benchmarks/claims_calibration.py runs it all,
200 replicates per cell at the quick profile's size)."""

import dataclasses

import numpy as np
import pytest

from rewardherd.studies import calibration as cal
from rewardherd.studies import claims as cl

from .conftest import rule_params

SMALL = cal.Size(seeds=3, prompts=128, pool=128, members=4)


def _cell(claim, truth, index=0):
    return [sc for sc in cal.scenarios() if sc.claim == claim and sc.truth == truth][index]


@pytest.mark.parametrize("claim", ["ensemble_vs_own_members", "pretrain_vs_finetune", "residual_overoptimization",
                                   "conservative_aggregation", "cross_rm_transfer"])
def test_nulls_rarely_reproduce_and_effects_do(claim):
    null = cal.run_scenario(_cell(claim, "null"), SMALL, replicates=12, seed=1)  # the first null, the strong effect
    effect = cal.run_scenario(_cell(claim, "effect"), SMALL, replicates=6, seed=2)
    assert null["reproduced"] <= 2 / 12
    assert effect["reproduced"] >= 4 / 6 and effect["not reproduced"] == 0


def test_every_claim_has_a_null_an_effect_and_an_opposite():
    cells = {(sc.claim, sc.truth) for sc in cal.scenarios()}
    for claim in {c for c, _ in cells}:
        assert {(claim, "null"), (claim, "effect"), (claim, "opposite")} <= cells


def test_the_sweeps_peak_rule_has_nulls_and_effects_and_its_own_cache(tmp_path):
    cells = cal.peak_scenarios()
    assert {sc.truth for sc in cells} == {"null", "effect"}
    assert {sc.claim for sc in cells} == {"ensemble_vs_own_members_at_peak"}
    null = cal.run_scenario(cells[0], SMALL, replicates=12, seed=1)  # flat gold
    effect = cal.run_scenario(next(sc for sc in cells if sc.truth == "effect"), SMALL, replicates=6, seed=2)
    assert null["reproduced"] <= 2 / 12
    assert effect["reproduced"] >= 4 / 6 and effect["not reproduced"] == 0
    size = cal.Size(seeds=1, prompts=16, pool=16, members=2)
    rows = cal.calibrate(size, 1, cache_dir=tmp_path, cells=cells)
    assert [r["scenario"] for r in rows] == [sc.name for sc in cells]
    cal.calibrate(size, 1, cache_dir=tmp_path)  # the studies' scenarios: their own cells, not these rows
    assert len(list((tmp_path / "calibration").glob("*.json"))) == len(cells) + len(cal.scenarios())


def test_calibrate_caches_each_cell_and_the_cache_equals_a_recomputation(tmp_path, monkeypatch):
    size = cal.Size(seeds=1, prompts=16, pool=16, members=2)
    a = cal.calibrate(size, 1, cache_dir=tmp_path)
    files = list((tmp_path / "calibration").glob("*.json"))
    assert len(files) == len(a) == len(cal.scenarios())
    assert cal.calibrate(size, 1) == a  # recomputed from nothing (same seeds): the same rows
    with monkeypatch.context() as m:  # a second call reads every cell from the cache, simulating none
        m.setattr(cal, "run_scenario", lambda *a, **k: pytest.fail("simulated a cached cell"))
        assert cal.calibrate(size, 1, cache_dir=tmp_path) == a
    assert len({r["key"] for r in a}) == len(a)
    summary = cal.summarize(a)
    assert set(summary) == {sc.claim for sc in cal.scenarios()}


def test_changing_one_rule_recomputes_only_its_cells(tmp_path, monkeypatch):
    size = cal.Size(seeds=1, prompts=16, pool=16, members=2)
    before = cal.calibrate(size, 1, cache_dir=tmp_path)
    spec = cl.SPECS["underspecification"]
    monkeypatch.setitem(cl.SPECS, spec.name, dataclasses.replace(spec, params={"null_draws": 2}))
    simulated = []
    real = cal.run_scenario
    monkeypatch.setattr(cal, "run_scenario", lambda sc, *a, **k: simulated.append(sc.claim) or real(sc, *a, **k))
    after = cal.calibrate(size, 1, cache_dir=tmp_path)
    n_c1 = sum(sc.claim == spec.name for sc in cal.scenarios())
    assert simulated == [spec.name] * n_c1
    changed = [x["claim"] for x, y in zip(before, after, strict=True) if x["key"] != y["key"]]
    assert changed == [spec.name] * n_c1


def test_known_rows_are_reused_without_simulating(monkeypatch):
    size = cal.Size(seeds=1, prompts=16, pool=16, members=2)
    rows = cal.calibrate(size, 1)
    monkeypatch.setattr(cal, "run_scenario", lambda *a, **k: pytest.fail("simulated a known cell"))
    assert cal.calibrate(size, 1, known=rows) == rows


def test_each_rule_is_calibrated_on_every_kind_it_is_applied_to():
    cells = cal.scenarios() + cal.peak_scenarios() + cal.daa_scenarios()
    for name, spec in cl.SPECS.items():
        kinds = {sc.kind for sc in cells if sc.claim == name}
        assert kinds == set(spec.kinds), name
    c5 = {(sc.truth, sc.kind) for sc in cells if sc.claim == "conservative_aggregation"}
    assert {("null", "finetune"), ("effect", "finetune"), ("opposite", "finetune")} <= c5


def test_calibration_applies_each_rule_with_its_specs_parameters(rule_calls):
    """run_once passes every rule exactly its ClaimSpec.params (and only call context besides)."""
    size, daa_size = cal.Size(seeds=2, prompts=16, pool=16, members=3), cal.DAASize(seeds=2, prompts=16, points=4)
    for sc in cal.scenarios() + cal.peak_scenarios() + cal.daa_scenarios():
        if sc.claim not in rule_calls:
            cal.run_once(sc, daa_size if sc.claim == "rpo_vs_dpo_drop" else size, np.random.default_rng(0))
    assert set(rule_calls) == set(cl.SPECS)
    for name, calls in rule_calls.items():
        for kw in calls:
            assert rule_params(kw) == cl.SPECS[name].params, name


def test_target_met():
    row = {"truth": "null", "replicates": 200, "reproduced": 0.03, "reproduced se": 0.012,
           "not reproduced": 0.0, "not reproduced se": 0.0}
    assert cal.target_met(row)
    assert not cal.target_met({**row, "reproduced": 0.2, "reproduced se": float(np.sqrt(0.2 * 0.8 / 200))})


def test_cells_simulated_in_processes_equal_cells_simulated_in_order(tmp_path):
    cells = [_cell("pretrain_vs_finetune", "null"), _cell("cross_rm_transfer", "effect"),
             _cell("ensemble_vs_own_members", "null")]
    tiny = cal.Size(seeds=2, prompts=32, pool=32, members=3)
    here = cal.calibrate(tiny, 2, cells=cells, workers=1)
    spawned = cal.calibrate(tiny, 2, cells=cells, workers=2)
    assert [r["key"] for r in spawned] == [r["key"] for r in here]
    assert spawned == here  # every share, estimate and key: a cell's draws depend on its key alone
