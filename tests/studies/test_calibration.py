"""A fast subset of the claim rules' calibration (benchmarks/claims_calibration.py runs it all,
200 replicates per cell at the quick profile's size)."""

import numpy as np
import pytest

from rewardherd.studies import calibration as cal

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
    cal.calibrate(size, 1, cache_dir=tmp_path)  # the studies' scenarios: another file, not these rows
    assert len(list((tmp_path / "calibration").glob("*.json"))) == 2


def test_calibrate_caches_by_size(tmp_path):
    size = cal.Size(seeds=1, prompts=16, pool=16, members=2)
    a = cal.calibrate(size, 1, cache_dir=tmp_path)
    files = list((tmp_path / "calibration").glob("*.json"))
    assert len(files) == 1 and len(a) == len(cal.scenarios())
    assert cal.calibrate(size, 1, cache_dir=tmp_path) == a
    summary = cal.summarize(a)
    assert set(summary) == {sc.claim for sc in cal.scenarios()}
    assert all(0 <= s["false_positive"] <= 1 for s in summary.values())


def test_target_met():
    row = {"truth": "null", "replicates": 200, "reproduced": 0.03, "reproduced se": 0.012,
           "not reproduced": 0.0, "not reproduced se": 0.0}
    assert cal.target_met(row)
    assert not cal.target_met({**row, "reproduced": 0.2, "reproduced se": float(np.sqrt(0.2 * 0.8 / 200))})
