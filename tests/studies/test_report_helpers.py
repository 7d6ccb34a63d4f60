"""The study report's helpers on hand-written inputs: interval text, tables, verdict and
calibration sentences, the kinds and sharing sections."""

import json

import numpy as np
import pandas as pd
import pytest

from rewardherd.studies import kinds as ks
from rewardherd.studies import report as rp


# ------------------------------------------------------------------ formatting
@pytest.mark.parametrize(("args", "text"), [
    ((0.1234, -0.01, 0.2567), "+0.123 [-0.010, +0.257]"),
    ((-1.0, -2.0004, 0.0), "-1.000 [-2.000, +0.000]"),  # 3 decimals; a plus sign on zero
    ((0.0, 0.0, 0.0), "+0.000 [+0.000, +0.000]"),
])
def test_interval_text(args, text):
    assert rp.interval_text(*args) == text


# ------------------------------------------------------------------ claims table and summary
def _claim(label="C3", claim="ensemble_vs_own_members", verdict="reproduced", estimate=0.123456, **extra):
    return {"label": label, "claim": claim, "comparison": f"{claim} here", "estimate": estimate, "low": 0.01,
            "high": 0.2, "verdict": verdict, "direction": "positive", "rule": "r", "covers": "2 seeds x 4 prompts",
            "interval": "crossed_t", "df": 3.0, **extra}


CALIBRATION = {"size": {"seeds": 2, "prompts": 4, "pool": 8, "members": 2}, "replicates": 20,
               "summary": {"ensemble_vs_own_members": {"false_positive": 0.05, "power": 0.5, "power_strong": 0.95},
                           "pretrain_vs_finetune": {"false_positive": 0.0, "power": 0.9, "power_strong": 1.0},
                           "underspecification": {"false_positive": 0.1, "power": None, "power_strong": None}},
               "rows": []}


def test_claims_table_formats_each_column():
    claims = [_claim(best_member_gold=0.5, members_gold=1 / 3, member_slots=[0.1, 0.2], top=4),
              _claim("C1", "underspecification", "inconclusive", -0.5),
              _claim("C2", "cross_rm_transfer", "not reproduced", 2.0)]
    t = rp._claims_table(claims, CALIBRATION)
    assert t["claim"].tolist() == ["C3", "C1", "C2"] and t["rule"].tolist()[0] == "ensemble_vs_own_members"
    assert t["estimate"].tolist() == [0.1235, -0.5, 2.0]  # rounded to 4 places
    assert t["95% CI"].tolist() == ["[0.0100, 0.2000]"] * 3
    assert t["false positive at this size"].tolist() == ["5%", "10%", "-"]  # C2 is not in the calibration
    assert t["power at this size (weakest / strongest effect)"].tolist() == ["50% / 95%", "-", "-"]
    # the extras that are not the core fields nor lists, floats at 3 significant digits
    assert t["details"].tolist() == ["best_member_gold=0.5, members_gold=0.333, top=4", "", ""]


def test_summary_counts_verdicts_per_label_and_says_when_power_is_low():
    claims = [_claim(), _claim(verdict="inconclusive"), _claim(claim="pretrain_vs_finetune"),
              _claim("C1", "underspecification", "not reproduced")]
    config = {"profile": "quick", "ensemble_size": 2, "sweep": {"seeds": [0, 1], "noise": [0.0]},
              "pool": {"prompts": 4, "size": 8}, "world_seed": 1}
    lines = rp._summary(claims, config, {"pool": 1.5, "train": 20}, CALIBRATION, precision="float32 for all 3 members")
    assert lines[0] == f"- **C1** ({rp.CLAIM_NAMES['C1']}): 1 not reproduced of 1 comparison(s)."  # no power known
    # C3: two rules; the lower of their powers (50%, 90%) is stated, and below 80% it is called low
    assert lines[1].startswith(f"- **C3** ({rp.CLAIM_NAMES['C3']}): 2 reproduced, 1 inconclusive of 3 comparison(s). "
                               "At this size the rule detects the calibration's weakest simulated effect 50% of the time")
    assert "(low power" in lines[1]
    assert lines[2] == ("- Profile `quick`: K=2 members, seeds [0, 1], label noise [0.0], pool 4 prompts x 8 samples, "
                        "world replicate 1.")
    assert lines[3] == "- Every interval covers: 2 seeds x 4 prompts."
    assert lines[4] == "- Pool scores: float32 for all 3 members."
    assert lines[5] == "- Wall time by stage (s): pool 1.5, train 20."
    strong = {**CALIBRATION, "summary": {"ensemble_vs_own_members": {"power": 0.8}}}
    assert rp._summary([_claim()], config, {}, strong)[0].endswith("80% of the time (decidable).")


def test_calibration_table_and_text():
    row = {"claim": "gao_bon_form", "truth": "null", "scenario": "flat gold", "reproduced": 0.034,
           "reproduced se": 0.0126, "not reproduced": 0.5, "not reproduced se": 0.05, "inconclusive": 0.466,
           "target_met": True}
    t = rp.calibration_table({"rows": [row, {**row, "kind": "finetune", "target_met": False}]})
    assert t.to_dict("records")[0] == {"rule": "gao_bon_form", "members": "pretrain", "truth": "null",
                                       "scenario": "flat gold", "reproduced": "0.03 ± 0.01",
                                       "not reproduced": "0.50 ± 0.05", "inconclusive": "0.47", "target met": "yes"}
    assert t["members"].tolist() == ["pretrain", "finetune"] and t["target met"].tolist() == ["yes", "NO"]
    assert rp.calibration_table({}).empty
    assert rp._calibration_text({}).startswith("Not calibrated at this size")
    assert rp._calibration_text({**CALIBRATION, "rows": [row]}).startswith(
        "Each rule was run on 20 simulated studies per scenario at this study's size (2 seeds x 4 prompts, pool 8, K=2)")


def test_plain_summary_from_the_curves():
    rows = [{"noise": 0.0, "kind": "single", "method": "mean", "size": 1, "n": n, "gold_delta": g, "proxy": px}
            for n, g, px in ((4, 0.1, 3.0), (1, 0.0, 1.0), (2, 0.3, 2.0))]  # unsorted on purpose
    rows += [{"noise": 0.0, "kind": k, "method": "mean", "size": 2, "n": 4, "gold_delta": g, "proxy": 0.0}
             for k, g in (("pretrain", 0.25), ("finetune", -0.05))]
    rows += [{"noise": 0.0, "kind": "pretrain", "method": "mean", "size": 1, "n": 4, "gold_delta": 9.0, "proxy": 0.0}]
    rl = pd.DataFrame({"cell": ["rl__pretrain_s0"] * 2, "step": [10, 0], "kl": [0.5, 0.0], "gold": [0.7, 0.5]})
    lines = rp.plain_summary(pd.DataFrame(rows), rl)
    assert lines == [
        "- Label noise 0: best-of-n against the average single RM raises gold by +0.300 up to n=2, then gold falls "
        "to +0.100 at n=4 (relative to n=1) while the proxy keeps rising (1.00 -> 3.00). At n=4 the best ensemble "
        "is pretrain mean (+0.250), the worst finetune mean (-0.050).",  # size 1 (9.0) is not the ensemble size
        "- RL pretrain_s0: after 10 steps KL = 0.50, gold +0.200 vs the start."]


# ------------------------------------------------------------------ members' precision
def test_precision_text(tmp_path):
    assert rp._precision_text(tmp_path) == ""
    m = pd.DataFrame({"unit": ["a", "a", "b", "c"], "score_dtype": ["float32"] * 4})
    m.to_parquet(tmp_path / "members.parquet")
    assert rp._precision_text(tmp_path) == "float32 for all 3 members"  # each unit once
    m.assign(score_dtype=["bfloat16", "bfloat16", "bfloat16", "float32"],
             score_spearman_vs_float32=[0.9995, 0.9995, 0.99991, np.nan]).to_parquet(tmp_path / "members.parquet")
    text = rp._precision_text(tmp_path)
    assert text.startswith("bfloat16 for 2 of 3 members, each accepted because a 1,024-sample probe")
    assert "lowest seen 0.99950" in text and text.endswith("; float32 for the other 1 (probe disagreed or bfloat16 "
                                                           "is not native here)")


# ------------------------------------------------------------------ kinds section
def _kind_row(kind, method, passes, gain, verdict, noise=0.0, **more):
    row = {"noise": noise, "kind": kind, "method": method, "forward_passes": passes, "train_seconds": 12.34,
           "score_seconds": 5.06, "gain_vs_single": gain, "gain_vs_single_low": gain - 0.1,
           "gain_vs_single_high": gain + 0.1, "verdict_vs_single": verdict, "gain_vs_own": 0.01,
           "gain_vs_own_low": -0.02, "gain_vs_own_high": 0.04, "verdict_vs_own": "inconclusive"}
    return {**row, **more}


def test_kinds_section_states_a_cheap_kinds_share_only_of_a_significant_benefit(tmp_path):
    lines, table = rp._kinds(tmp_path)  # no kinds.json: no section
    assert lines == [] and table.empty
    rows = [_kind_row("pretrain", "mean", 2, 0.2, "reproduced"),
            _kind_row("pretrain", "min", 2, 0.3, "reproduced"),  # only each kind's first row is read
            _kind_row("multi_head", "mean", 1, 0.15, "reproduced", gain_vs_finetune=0.05, gain_vs_finetune_low=0.0,
                      gain_vs_finetune_high=0.1, verdict_vs_finetune="inconclusive"),
            _kind_row("finetune", "mean", 2, 0.1, "reproduced"),  # as many passes as pretrain: no sentence
            _kind_row("pretrain", "mean", 2, 0.05, "inconclusive", noise=0.5),
            _kind_row("warm", "weights averaged", 1, 0.04, "inconclusive", noise=0.5)]
    (tmp_path / "kinds.json").write_text(json.dumps(rows))
    lines, table = rp._kinds(tmp_path)
    # first what each kind in the table is (its registry description), then the cheap kinds' sentences
    assert lines[:4] == [f"- {k}: {ks.spec(k).description}" for k in ("pretrain", "multi_head", "finetune", "warm")]
    assert lines[4:] == [
        "- noise 0: multi_head (mean) at 1 forward pass(es) gains +0.150 [+0.050, +0.250] gold over the average "
        "single member; the pretrain ensemble (mean) at 2 gains +0.200 [+0.100, +0.300]: 75% of its benefit.",
        "- noise 0.5: warm (weights averaged) at 1 forward pass(es) gains +0.040 [-0.060, +0.140] gold over the "
        "average single member; the pretrain ensemble (mean) at 2 gains +0.050 [-0.050, +0.150], which is not a "
        "significant benefit, so no share of it is stated."]
    assert table["train s"].tolist() == [12.3] * 6 and table["score s"].tolist() == [5.1] * 6
    assert table["vs single [95% CI]"].iloc[0] == "+0.200 [+0.100, +0.300] reproduced"
    assert table["vs own members [95% CI]"].iloc[0] == "+0.010 [-0.020, +0.040] inconclusive"
    # only multi_head was compared with the finetune ensemble: the others' cells are blank
    assert table["vs finetune ensemble [95% CI]"].tolist() == ["", "", "+0.050 [+0.000, +0.100] inconclusive",
                                                               "", "", ""]


# ------------------------------------------------------------------ sharing section
def test_sharing_table_summarizes_seeds_per_where_noise_and_kind(tmp_path):
    assert rp._sharing_table(tmp_path).empty
    t = pd.DataFrame({"kind": ["pretrain", "pretrain", "finetune"], "noise": [0.0, 0.0, 0.0],
                      "rho_bar": [0.2, 0.4, 0.9], "shared_fraction": [0.5, 0.7, 0.95], "seed": [0, 1, 0]})
    t.to_parquet(tmp_path / "sharing.parquet")  # a run from before the held-out rows: no 'where' column
    got = rp._sharing_table(tmp_path).to_dict("records")
    assert got == [{"errors on": rp.WHERE["pool"], "label noise": 0.0, "kind": "pretrain", "seeds": 2,
                    "rho_bar": "0.300 [0.200, 0.400]", "shared fraction": "0.600 [0.500, 0.700]"},
                   {"errors on": rp.WHERE["pool"], "label noise": 0.0, "kind": "finetune", "seeds": 1,
                    "rho_bar": "0.900 [0.900, 0.900]", "shared fraction": "0.950 [0.950, 0.950]"}]
    t.assign(where=["heldout", "pool", "pool"]).to_parquet(tmp_path / "sharing.parquet")
    assert [r["errors on"] for r in rp._sharing_table(tmp_path).to_dict("records")] == [
        rp.WHERE["heldout"], rp.WHERE["pool"], rp.WHERE["pool"]]


def test_sharing_text_places_a_builtin_world_study_on_the_dial():
    assert rp._sharing_text({"user": {"policy": "p"}}) == rp.SHARING_TEXT
    default = rp._sharing_text({"world": {"preferences": {"markers": 0.0}}})
    assert default.startswith(rp.SHARING_TEXT) and "world.preferences.markers = 0 (the default)," in default
    assert "shared-error dial at world.gold.shared_error = 1;" in default  # GoldConfig's default
    assert "world.preferences.markers = 0.25," in rp._sharing_text({"world": {"preferences": {"markers": 0.25}}})
    level = rp._sharing_text({"dial": "tail_and_data", "train": {"subsample_shared": 0.5},
                              "world": {"gold": {"shared_error": 0.5}, "preferences": {"markers": 0.0}}})
    assert "world.gold.shared_error = 0.5 and train.subsample_shared = 0.5;" in level


def test_can_decide_has_a_sentence_for_every_study_profile():
    from rewardherd.studies.config import PROFILES

    assert set(PROFILES) <= set(rp.CAN_DECIDE)
    assert set(rp.CLAIM_NAMES) == {spec.label for spec in __import__(
        "rewardherd.studies.claims", fromlist=["SPECS"]).SPECS.values()}
