"""World-build replicates (studies/builds.py) on hand-written claims files."""

import json

import numpy as np
import pytest

from rewardherd.config import ConfigError
from rewardherd.studies import builds
from rewardherd.studies.config import resolve_config


def _claim(label, claim, comparison, estimate, half, verdict):
    return {"label": label, "claim": claim, "comparison": comparison, "estimate": estimate,
            "low": estimate - half, "high": estimate + half, "verdict": verdict, "rule": "r", "covers": "c"}


def _write(study, where, claims, name="claims.json"):
    res = (study / where if where else study) / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / name).write_text(json.dumps({"rules": {}, "claims": claims}))


@pytest.fixture()
def two_builds(tmp_path):
    """Two builds of a level sweep: C4's text names each build's own peak n, C6's its own fit."""
    for seed, (gain, peak, r2, c4) in {0: (0.10, 16, "1.00", "reproduced"), 3: (0.02, 8, "0.97", "inconclusive")}.items():
        study = builds.build_dir(tmp_path, seed)
        for where, shift in (("level0", 0.0), ("level1", -0.1)):
            _write(study, where, [
                _claim("C3", "ensemble_vs_own_members", "finetune ensemble (mean) - its own 5 members, n=32",
                       gain + shift, 0.01, "reproduced" if gain + shift > 0.01 else "not reproduced"),
                _claim("C3", "ensemble_vs_own_members", "finetune ensemble (uncertainty_weighted(lam=0.5)) - its own",
                       0.3, 0.01, "reproduced"),
                _claim("C3", "ensemble_vs_own_members", "finetune ensemble (uncertainty_weighted(lam=0.1)) - its own",
                       0.4, 0.01, "reproduced"),
                _claim("C4", "residual_overoptimization", f"gold at held-out peak n={peak} - gold at n=32",
                       0.05, 0.04, c4),
                _claim("C6", "gao_bon_form", f"Gao fit; R^2={r2}, peak d*=1.58 (tested d <= 1.{peak})",
                       float("nan"), float("nan"), "inconclusive"),
            ])
        _write(study, "level0", [_claim("C7", "rpo_vs_dpo_drop", "rpo - dpo drop, beta=0.1", 0.0, 0.1,
                                        "inconclusive")], name="daa_claims.json")
    return tmp_path


def test_rows_line_up_across_builds_though_their_text_names_each_builds_numbers(two_builds):
    t = builds.builds_table(two_builds, [0, 3])
    assert len(t) == 2 * (2 * 5 + 1) and set(t["where"]) == {"level0", "level1"}
    wide = builds.agreement(t)
    assert len(wide) == 11  # every comparison once, none unmatched
    assert not (wide[["verdict 0", "verdict 3"]] == "missing").any().any()
    c4 = wide[(wide["claim"] == "C4") & (wide["level"] == "level0")].iloc[0]
    assert c4["comparison"] == "gold at held-out peak n=16 - gold at n=32"  # the first build's text
    assert (c4["verdict 0"], c4["verdict 3"], c4["agree"]) == ("reproduced", "inconclusive", "no")
    mean1 = wide[wide["comparison"].str.contains(r"\(mean\)") & (wide["level"] == "level1")].iloc[0]
    assert (mean1["verdict 0"], mean1["verdict 3"], mean1["agree"]) == ("not reproduced", "not reproduced", "yes")
    assert mean1["spread"] == pytest.approx(0.08) and mean1["half-width"] == pytest.approx(0.01)
    assert mean1["build 3"] == "-0.080 [-0.090, -0.070]"
    # the two lam values mask to one signature and still pair with their own rows (by order)
    lam = wide[wide["comparison"].str.contains("lam=0.1")]
    assert len(lam) == 2 and (lam["spread"] == 0).all()
    gao = wide[wide["claim"] == "C6"]
    assert gao["spread"].isna().all() and gao["half-width"].isna().all()  # no finite estimate to spread


def test_a_comparison_one_build_lacks_is_shown_missing(two_builds):
    _write(builds.build_dir(two_builds, 3), "level1", [])  # build 3's level 1 holds no claims at all
    wide = builds.agreement(builds.builds_table(two_builds, [0, 3]))
    lv1 = wide[wide["level"] == "level1"]
    assert len(lv1) == 5 and (lv1["verdict 3"] == "missing").all() and (lv1["agree"] == "no").all()
    assert np.isnan(lv1["spread"]).all()


def test_summary_counts_agreement_overall_and_per_claim(two_builds):
    wide = builds.agreement(builds.builds_table(two_builds, [0, 3]))
    lines = builds.summary_lines(wide, [0, 3])
    # level0 mean: reproduced in both; level1 mean: not reproduced in both; 4 lam rows reproduced in both;
    # C4 split at both levels; C6 inconclusive in both levels; C7 inconclusive
    assert lines[0] == ("All comparisons over builds 0, 3: 9 of 11 agree (5 reproduced in every build, 1 not "
                        "reproduced in every build, 3 inconclusive in every build); 2 split.")
    assert "C4: 0 of 2 agree" in lines[2] and lines[2].endswith("2 split.")
    assert lines[-1].startswith("2 of 11 estimates move")  # the two mean rows: spread 0.08 > 2 x 0.01


def test_report_is_written_and_links_every_build(two_builds):
    table = builds.builds_table(two_builds, [0, 3])
    html = builds.write_builds_report(two_builds, table, {"build0": 10.0, "build3": 12.0})
    md = (two_builds / "report.md").read_text()
    assert html.exists() and "build0/report.html, build3/report.html" in md
    assert "| level | claim | comparison | build 0 | verdict 0 | build 3 | verdict 3 | agree | spread |" in md
    assert "build0 10 s, build3 12 s" in md


def test_a_bad_claims_file_names_the_file_and_field(tmp_path):
    study = builds.build_dir(tmp_path, 0)
    _write(study, "", [{"label": "C3", "claim": "x", "comparison": "y", "estimate": 0.1, "low": 0, "high": 0.2}])
    with pytest.raises(ValueError, match=r"build0/results/claims.json: a claim row has no 'verdict' field"):
        builds.study_claims(study, 0)
    empty = builds.build_dir(tmp_path, 1)
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no results/claims.json"):
        builds.study_claims(empty, 1)


@pytest.mark.parametrize("overrides, message", [
    ({"world_seeds": [1]}, "at least 2 builds"),
    ({"world_seeds": [1, 1]}, "distinct"),
    ({"world_seeds": [0, 1], "world_seed": 2}, "leave world_seed"),
])
def test_world_seeds_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(None, "smoke", [f"{k}={json.dumps(v)}" for k, v in overrides.items()])


def test_a_build_is_the_study_at_its_world_seed_and_hashes_like_one():
    from rewardherd.config import to_dict
    from rewardherd.studies.runner import study_keys

    sweep = resolve_config(None, "smoke", ["world_seeds=[0,2]"])
    one = builds.build_config(sweep, 2)
    assert one.world_seeds == () and one.world_seed == 2
    plain = resolve_config(None, "smoke", ["world_seed=2"])
    assert study_keys(one, to_dict(one)) == study_keys(plain, to_dict(plain))
