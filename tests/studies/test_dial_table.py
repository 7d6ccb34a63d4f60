"""The error-sharing sweep's table and text (studies/dial.py) on hand-written level results."""

import json

import pandas as pd
import pytest

from rewardherd.studies import dial


def _kinds_row(kind, method, gain, peak_gain, noise=0.0):
    return {"noise": noise, "kind": kind, "method": method, "gain_vs_own": gain, "gain_vs_own_low": gain - 0.1,
            "gain_vs_own_high": gain + 0.1, "verdict_vs_own": "reproduced" if gain > 0.1 else "inconclusive",
            "gain_vs_own_peak": peak_gain, "gain_vs_own_peak_low": peak_gain - 0.05,
            "gain_vs_own_peak_high": peak_gain + 0.05,
            "verdict_vs_own_peak": "reproduced" if peak_gain > 0.05 else "inconclusive",
            "own_peak_n": 2, "ensemble_peak_n": 4, "covers": "2 seeds x 4 prompts"}


def _level(out, level, rho, accuracy, gain, dial_name="markers", residual=None):
    """One level's results: pool rho_bar (and, given ``residual``, residual rho = rho_bar - residual) per seed,
    held-out rows, members, and kinds rows."""
    res = dial.level_dir(out, level, dial_name) / "results"
    res.mkdir(parents=True)
    sharing = []
    for kind, rhos in (("pretrain", rho), ("finetune", [0.9, 0.9])):
        for seed, r in enumerate(rhos):
            extra = {} if residual is None else {"residual_rho_bar": r - residual}
            sharing.append({"kind": kind, "noise": 0.0, "seed": seed, "where": "pool", "rho_bar": r,
                            "shared_fraction": r + 0.05, **extra})
    sharing.append({"kind": "pretrain", "noise": 0.0, "seed": 0, "where": "heldout", "rho_bar": 0.11,
                    "shared_fraction": 0.0})
    pd.DataFrame(sharing).to_parquet(res / "sharing.parquet")
    pd.DataFrame([{"kind": "pretrain", "noise": 0.0, "unit": f"u{i}", "heldout_accuracy": a}
                  for i, a in enumerate(accuracy)]
                 + [{"kind": "finetune", "noise": 0.0, "unit": "f", "heldout_accuracy": 0.5}]).to_parquet(
        res / "members.parquet")
    rows = [_kinds_row("pretrain", "mean", gain, gain / 2), _kinds_row("finetune", "mean", 0.0, 0.0),
            _kinds_row("multi_head", "mean", 9.0, 9.0)]  # extra kinds are not on the dial
    (res / "kinds.json").write_text(json.dumps(rows))


@pytest.fixture()
def sweep(tmp_path):
    _level(tmp_path, 0.0, rho=[0.2, 0.4], accuracy=[0.6, 0.7, 0.8], gain=0.3)
    _level(tmp_path, 0.5, rho=[0.7, 0.9], accuracy=[0.6, 0.6, 0.6], gain=0.05)
    return tmp_path


def test_level_dir_names_a_level_by_its_value():
    assert dial.level_dir("out", 0.5).as_posix() == "out/markers0.5"
    assert dial.level_dir("out", 1.0).as_posix() == "out/markers1"
    assert dial.level_dir("out", 0.25, "tail_and_data").as_posix() == "out/level0.25"
    assert dial.level_dir("out", 1.0, "tail").as_posix() == "out/level1"


def test_a_level_of_either_dial_sets_only_that_dial():
    from rewardherd.studies.config import resolve_config

    markers = resolve_config(None, "smoke", ["sweep.markers=[0,0.5]"])
    assert dial.sweep_dial(markers) == ("markers", (0.0, 0.5))
    m = dial.level_config(markers, "markers", 0.5)
    assert m.world.preferences.markers == 0.5 and m.sweep.markers == () and m.world.gold.shared_error == 1.0
    tail = resolve_config(None, "smoke", ["sweep.levels=[0,0.25,1]", "dial=tail_and_data", "train.subsample=40"])
    assert dial.sweep_dial(tail) == ("tail_and_data", (0.0, 0.25, 1.0))
    t = dial.level_config(tail, "tail_and_data", 0.25)
    assert (t.world.gold.shared_error, t.train.subsample_shared, t.sweep.levels) == (0.25, 0.25, ())
    assert t.world.preferences.markers == 0.0
    only_tail = dial.level_config(resolve_config(None, "smoke", ["sweep.levels=[0.5]"]), "tail", 0.5)
    assert (only_tail.world.gold.shared_error, only_tail.train.subsample_shared) == (0.5, 0.0)


def test_the_shared_error_dial_reads_gains_against_the_residual_correlation(tmp_path):
    _level(tmp_path, 0.0, rho=[0.4, 0.6], accuracy=[0.7], gain=0.3, dial_name="tail", residual=0.2)
    _level(tmp_path, 1.0, rho=[0.9, 0.95], accuracy=[0.7], gain=-0.1, dial_name="tail", residual=0.05)
    t = dial.sharing_dial_table(tmp_path, [0.0, 1.0], "tail")
    pre = t[t["kind"] == "pretrain"].to_dict("records")
    assert set(t["dial"]) == {"tail"}
    # residual = rho_bar - 0.2 at level 0 (0.2, 0.4) and - 0.05 at level 1 (0.85, 0.9)
    assert (pre[0]["residual_rho"], pre[0]["residual_rho_min"], pre[0]["residual_rho_max"]) == pytest.approx(
        (0.3, 0.2, 0.4))
    assert pre[1]["residual_rho"] == pytest.approx(0.875)
    levels, gains = dial._display(t)
    assert list(levels.columns[:4]) == ["level", "noise", "kind", "residual rho pool [min, max]"]
    assert levels["residual rho pool [min, max]"].iloc[0] == "0.300 [0.200, 0.400]"
    assert "residual rho" in gains and gains["residual rho"].iloc[0] == pytest.approx(0.3)
    lines = dial.summary_lines(t)
    assert lines[2].startswith("pretrain mean, noise 0, from residual rho 0.88 to 0.30: gain at n_max "
                               "-0.100 [-0.200, +0.000] -> +0.300 [+0.200, +0.400]")
    assert "shared-error dial (world.gold.shared_error" in dial.dial_text("tail")
    assert "residual error correlation" in dial.dial_text("tail_and_data")
    from rewardherd.studies.plots import sharing_dial

    assert sharing_dial(t, tmp_path / "fig.png", *dial.X_AXIS["tail"]).stat().st_size > 1000


def test_a_study_written_before_the_residual_column_still_tabulates(sweep):
    t = dial.sharing_dial_table(sweep, [0.0, 0.5])
    assert t["residual_rho"].isna().all() and set(t["dial"]) == {"markers"}
    levels, gains = dial._display(t)
    assert "residual rho pool [min, max]" not in levels and "rho_bar" in gains


def test_sharing_dial_table_puts_each_gain_beside_its_members_sharing(sweep):
    t = dial.sharing_dial_table(sweep, [0.0, 0.5])
    assert [(r["level"], r["kind"]) for r in t.to_dict("records")] == [
        (0.0, "pretrain"), (0.0, "finetune"), (0.5, "pretrain"), (0.5, "finetune")]
    pre0 = t.iloc[0].to_dict()
    # pool rho_bar over seeds 0.2, 0.4: mean 0.3, min 0.2, max 0.4; shared fraction (0.25 + 0.45) / 2
    assert (pre0["rho_bar"], pre0["rho_bar_min"], pre0["rho_bar_max"]) == pytest.approx((0.3, 0.2, 0.4))
    assert pre0["shared_fraction"] == pytest.approx(0.35) and pre0["seeds"] == 2
    assert pre0["rho_bar_heldout"] == pytest.approx(0.11)
    assert (pre0["heldout_accuracy"], pre0["heldout_accuracy_min"], pre0["heldout_accuracy_max"]) == pytest.approx(
        (0.7, 0.6, 0.8))
    assert (pre0["gain"], pre0["gain_low"], pre0["gain_high"], pre0["verdict"]) == pytest.approx(
        (0.3, 0.2, 0.4, "reproduced"))
    assert (pre0["peak_gain"], pre0["peak_verdict"]) == pytest.approx((0.15, "reproduced"))
    assert pre0["own_peak_n"] == 2 and pre0["ensemble_peak_n"] == 4
    fin0 = t.iloc[1].to_dict()
    assert fin0["rho_bar_heldout"] != fin0["rho_bar_heldout"]  # NaN: no held-out rows for finetune
    assert fin0["heldout_accuracy"] == pytest.approx(0.5)


def test_display_and_summary_lines(sweep):
    t = dial.sharing_dial_table(sweep, [0.0, 0.5])
    levels, gains = dial._display(t)
    assert levels["rho_bar pool [min, max]"].tolist() == ["0.300 [0.200, 0.400]", "0.900 [0.900, 0.900]",
                                                          "0.800 [0.700, 0.900]", "0.900 [0.900, 0.900]"]
    assert levels["member held-out accuracy [min, max]"].iloc[0] == "0.700 [0.600, 0.800]"
    assert gains["gain vs own members at n_max [95% CI]"].iloc[0] == "+0.300 [+0.200, +0.400]"
    assert gains["gain at each curve's peak [95% CI]"].iloc[2] == "+0.025 [-0.025, +0.075]"
    assert gains["peak n (ensemble / members)"].tolist() == ["4 / 2"] * 4
    lines = dial.summary_lines(t)
    assert lines[0] == ("Verdicts at n_max over 4 (level, kind, method) cells: 1 reproduced, 0 not reproduced, "
                        "3 inconclusive (reproduced = the ensemble beats its own members).")
    assert lines[1].startswith("Verdicts at each curve's peak over 4 (level, kind, method) cells: 1 reproduced, ")
    # pretrain mean from its highest rho_bar (0.8, level 0.5) to its lowest (0.3, level 0)
    assert lines[2] == ("pretrain mean, noise 0, from rho_bar 0.80 to 0.30: gain at n_max +0.050 [-0.050, +0.150] -> "
                        "+0.300 [+0.200, +0.400]; at peaks +0.025 [-0.025, +0.075] -> +0.150 [+0.100, +0.200].")
    assert lines[3].startswith("finetune mean, noise 0, from rho_bar 0.90 to 0.90")


def test_sweep_calibration_without_replicates_is_empty(sweep):
    level = {"size": {"seeds": 2}, "replicates": 0, "rows": [{"claim": "ensemble_vs_own_members"}]}
    (dial.level_dir(sweep, 0.0) / "results" / "calibration.json").write_text(json.dumps(level))
    assert dial.sweep_calibration(sweep, [0.0, 0.5]) == {**level, "rows": []}


def test_sweep_calibration_keeps_the_levels_c3_rows_and_adds_the_peak_rule(sweep, monkeypatch):
    from rewardherd.studies import calibration as cal

    size = {"seeds": 1, "prompts": 4, "pool": 8, "members": 2, "max_n_fraction": 0.25}
    level = {"size": size, "replicates": 3,
             "rows": [{"claim": "ensemble_vs_own_members", "k": 1}, {"claim": "gao_bon_form", "k": 2}]}
    (dial.level_dir(sweep, 0.0) / "results" / "calibration.json").write_text(json.dumps(level))
    (sweep / "config.json").write_text(json.dumps({"cache_dir": str(sweep / "cache")}))
    seen = {}

    def calibrate(sz, replicates, *, cache_dir, cells):
        seen.update(size=sz, replicates=replicates, cache_dir=cache_dir, claims={c.claim for c in cells})
        return [{"claim": "ensemble_vs_own_members_at_peak", "k": 3}]

    monkeypatch.setattr(cal, "calibrate", calibrate)
    got = dial.sweep_calibration(sweep, [0.0, 0.5])
    assert got == {"size": size, "replicates": 3, "rows": [{"claim": "ensemble_vs_own_members", "k": 1},
                                                           {"claim": "ensemble_vs_own_members_at_peak", "k": 3}]}
    assert seen == {"size": cal.Size(**size), "replicates": 3, "cache_dir": str(sweep / "cache"),
                    "claims": {"ensemble_vs_own_members_at_peak"}}
