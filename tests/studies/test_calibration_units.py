"""The calibration's parts on tiny sizes: the simulator's worlds, the curves, the verdict
shares and their errors, the summary, and the cell keys (studies/calibration.py)."""

import dataclasses
import json
from itertools import cycle

import numpy as np
import pytest

from rewardherd.studies import calibration as cal
from rewardherd.studies import claims as cl

TINY = cal.Size(seeds=2, prompts=4, pool=8, members=3, max_n_fraction=0.5)


def _sim(**world):
    return cal.simulate(cal.World(**world), TINY, np.random.default_rng(0))


# ------------------------------------------------------------------ simulate
def test_noise_free_members_of_a_rising_world_are_standardized_gold():
    """gold = c, and with no noise, jitter or hack every member scores z(c) over the whole pool."""
    sim = _sim(gold="rising", sigma=0.0, jitter=0.0)
    g = sim["gold"]
    assert g.shape == (4, 8) and sim["pretrain"].shape == sim["finetune"].shape == (2, 4, 3, 8)
    want = (g - g.mean()) / g.std()  # ddof 0, over every prompt and sample at once
    for kind in ("pretrain", "finetune"):
        for s in range(2):
            for k in range(3):
                np.testing.assert_allclose(sim[kind][s, :, k], want, atol=1e-12)


def test_saturating_gold_is_capped_and_linear_below_the_cap():
    sim = _sim(gold="saturating", cap=0.25, sigma=0.0, jitter=0.0)
    g, z = sim["gold"], sim["pretrain"][0, :, 0]
    assert g.max() == pytest.approx(0.25) and (g == 0.25).any()
    below = g < 0.25
    # below the cap gold is c itself, an affine function of the member's z(c)
    slope, intercept = np.polyfit(z[below], g[below], 1)
    np.testing.assert_allclose(slope * z[below] + intercept, g[below], atol=1e-12)


def test_every_member_of_a_seed_is_z_scored_on_the_whole_pool():
    sim = _sim(gold="shared_hack", b_shared=1.0, b_idio=0.5, sigma=1.0, noise_df=5.0, quality_df=4.0,
               spike_rate=0.1)
    for kind in ("pretrain", "finetune"):
        z = sim[kind].transpose(0, 2, 1, 3).reshape(2, 3, -1)  # (S, K, P * N)
        np.testing.assert_allclose(z.mean(axis=-1), 0.0, atol=1e-12)
        np.testing.assert_allclose(z.std(axis=-1), 1.0, atol=1e-12)


def test_fine_tune_members_share_their_seeds_hack_when_told():
    """No quality weight differences, no noise: a member is z(c + H_f) for its feature f. Fine-tune
    members sharing one feature per seed score identically; pretrain members' distinct features differ."""
    sim = _sim(gold="idio_hacks", b_idio=1.0, sigma=0.0, jitter=0.0, ft_shares_hack=True)
    ft, pre = sim["finetune"], sim["pretrain"]
    for s in range(2):
        np.testing.assert_allclose(ft[s, :, 0], ft[s, :, 1], atol=1e-12)
        np.testing.assert_allclose(ft[s, :, 0], ft[s, :, 2], atol=1e-12)
        assert not np.allclose(pre[s, :, 0], pre[s, :, 1])
    both = _sim(gold="idio_hacks", b_idio=1.0, sigma=0.0, jitter=0.0, pre_shares_hack=True)["pretrain"]
    np.testing.assert_allclose(both[0, :, 0], both[0, :, 2], atol=1e-12)


def test_unknown_gold_is_an_error():
    with pytest.raises(ValueError, match="unknown gold 'nope'"):
        _sim(gold="nope")


# ------------------------------------------------------------------ curves
def test_curves_per_member_and_aggregated():
    sim = _sim(gold="rising", sigma=0.0, jitter=0.0)  # identical members
    ns = [1, 2, 4]
    each = cal.curves(sim["pretrain"], sim["gold"], ns, None)
    ens = cal.curves(sim["pretrain"], sim["gold"], ns, "mean")
    assert each.shape == (2, 3, 4, 3) and ens.shape == (2, 4, 3)
    # best-of-1 is a random pick: the prompt's mean gold, whatever the proxy
    np.testing.assert_allclose(each[..., 0], np.broadcast_to(sim["gold"].mean(axis=1), (2, 3, 4)), atol=1e-12)
    np.testing.assert_allclose(ens, each[:, 0], atol=1e-12)  # the mean of identical members is each of them
    # a member that is gold's own z picks the best of n by gold itself: the curve rises with n
    assert np.all(np.diff(each, axis=-1) >= -1e-12)
    np.testing.assert_allclose(cal.curves(sim["pretrain"], sim["gold"], [8], None)[..., 0],
                               np.broadcast_to(sim["gold"].max(axis=1), (2, 3, 4)), atol=1e-12)  # n = N: the max


# ------------------------------------------------------------------ verdict shares, target, summary
def test_run_scenario_counts_shares_and_their_monte_carlo_errors(monkeypatch):
    verdicts = cycle([("reproduced", 1.0), ("reproduced", 2.0), ("inconclusive", 3.0), ("reproduced", 6.0)])

    def fake(sc, size, rng):
        v, e = next(verdicts)
        return cl.ClaimResult("C3", sc.claim, "", e, e, e, v, "positive", "", "")

    monkeypatch.setattr(cal, "run_once", fake)
    sc = cal.Scenario("ensemble_vs_own_members", "null", "flat", cal.World(gold="flat"))
    row = cal.run_scenario(sc, TINY, replicates=4)
    assert (row["claim"], row["truth"], row["scenario"], row["replicates"]) == (
        "ensemble_vs_own_members", "null", "flat", 4)
    assert row["mean_estimate"] == pytest.approx(3.0)  # (1 + 2 + 3 + 6) / 4
    assert (row["reproduced"], row["inconclusive"], row["not reproduced"]) == (0.75, 0.25, 0.0)
    assert row["reproduced se"] == pytest.approx(np.sqrt(0.75 * 0.25 / 4))
    assert row["inconclusive se"] == pytest.approx(np.sqrt(0.25 * 0.75 / 4))
    assert row["not reproduced se"] == pytest.approx(np.sqrt(cal.SHARE_VARIANCE_FLOOR / 4))  # floored, not 0


def test_target_met_tests_the_right_share_with_a_floored_error():
    # 10 replicates: the SE floor is sqrt(0.05 * 0.95 / 10) = 0.0689, so the bar is 0.05 + 2 * 0.0689 = 0.188
    effect = {"truth": "effect", "replicates": 10, "reproduced": 0.0, "reproduced se": 0.0,
              "not reproduced": 0.18, "not reproduced se": 0.0}
    assert cal.target_met(effect)
    assert not cal.target_met({**effect, "not reproduced": 0.2})
    assert cal.target_met({**effect, "not reproduced": 0.2}, tolerance_se=3.0)  # 0.05 + 3 * 0.0689 = 0.257
    opposite = {**effect, "truth": "opposite", "reproduced": 0.2, "not reproduced": 1.0}
    assert not cal.target_met(opposite)  # an opposite effect is held to "reproduced", like a null
    assert cal.target_met({**opposite, "reproduced": 0.1})


def test_summarize_by_hand():
    def row(claim, truth, rep, notrep):
        return {"claim": claim, "truth": truth, "reproduced": rep, "not reproduced": notrep, "replicates": 50}

    rows = [row("a", "null", 0.02, 0.5), row("a", "opposite", 0.06, 0.9), row("a", "effect", 0.7, 0.01),
            row("a", "effect", 0.4, 0.03), row("b", "null", 0.0, 0.0)]
    assert cal.summarize(rows) == {
        "a": {"false_positive": 0.06, "power": 0.4, "power_strong": 0.7, "false_negative": 0.03, "replicates": 50},
        "b": {"false_positive": 0.0, "power": None, "power_strong": None, "false_negative": 0.0, "replicates": 50}}


# ------------------------------------------------------------------ cells and keys
def test_by_kind_repeats_each_cell_for_every_kind_its_rule_is_applied_to():
    cells = [cal.Scenario("conservative_aggregation", "null", "x", cal.World()),
             cal.Scenario("gao_bon_form", "null", "y", cal.World())]
    got = cal.by_kind(cells)
    assert [(sc.claim, sc.kind) for sc in got] == [
        ("conservative_aggregation", "finetune"), ("conservative_aggregation", "pretrain"), ("gao_bon_form", "pretrain")]
    assert got[0].world == cells[0].world and got[0].name == "x"


def test_a_cell_key_changes_with_what_changes_its_result_and_nothing_else(monkeypatch):
    sc = cal.scenarios()[0]
    assert sc.claim == "underspecification"
    key = cal.cell_key(sc, TINY, 5)
    assert cal.cell_key(sc, TINY, 5) == key and cal.cell_seed(key) == int(key[:8], 16)
    others = {cal.cell_key(sc, dataclasses.replace(TINY, seeds=3), 5), cal.cell_key(sc, TINY, 6),
              cal.cell_key(sc, TINY, 5, seed=1), cal.cell_key(dataclasses.replace(sc, kind="finetune"), TINY, 5),
              cal.cell_key(dataclasses.replace(sc, world=cal.World(sigma=0.5)), TINY, 5)}
    assert key not in others and len(others) == 5
    spec = cl.SPECS["underspecification"]
    with monkeypatch.context() as m:  # another rule's change leaves this cell alone
        m.setitem(cl.SPECS, "gao_bon_form", dataclasses.replace(cl.SPECS["gao_bon_form"], version=99))
        assert cal.cell_key(sc, TINY, 5) == key
    with monkeypatch.context() as m:
        m.setitem(cl.SPECS, spec.name, dataclasses.replace(spec, params={"null_draws": 3}))
        assert cal.cell_key(sc, TINY, 5) != key
    with monkeypatch.context() as m:
        m.setitem(cl.SPECS, spec.name, dataclasses.replace(spec, version=spec.version + 1))
        assert cal.cell_key(sc, TINY, 5) != key
    with monkeypatch.context() as m:
        m.setattr(cal, "SIMULATOR_VERSION", cal.SIMULATOR_VERSION + 1)
        assert cal.cell_key(sc, TINY, 5) != key


def test_a_cached_cell_holds_the_rates_of_its_scenario_run_at_its_own_seed(tmp_path):
    sc = next(s for s in cal.scenarios() if s.claim == "ensemble_vs_own_members" and s.truth == "effect")
    size = cal.Size(seeds=2, prompts=8, pool=8, members=2)
    [row] = cal.calibrate(size, 3, cache_dir=tmp_path, cells=[sc])
    key = cal.cell_key(sc, size, 3)
    stored = json.loads((tmp_path / "calibration" / f"{key}.json").read_text())
    fresh = cal.run_scenario(sc, size, 3, seed=cal.cell_seed(key))
    assert stored == row
    for v in ("reproduced", "not reproduced", "inconclusive"):
        assert row[v] == fresh[v] and row[f"{v} se"] == fresh[f"{v} se"]
    assert row["mean_estimate"] == fresh["mean_estimate"]
    assert (row["key"], row["kind"], row["target_met"]) == (key, sc.kind, cal.target_met(fresh))


def test_calibrate_reports_progress_only_for_the_cells_it_simulates(tmp_path, capsys):
    cells = [next(s for s in cal.scenarios() if s.claim == "pretrain_vs_finetune")]
    size = cal.Size(seeds=1, prompts=4, pool=4, members=2)
    cal.calibrate(size, 1, cache_dir=tmp_path, cells=cells, progress=True)
    assert capsys.readouterr().out == "calibration 1/1: pretrain_vs_finetune null (pretrain)\n"
    cal.calibrate(size, 1, cache_dir=tmp_path, cells=cells, progress=True)
    assert capsys.readouterr().out == ""
