"""The analysis tables (curves, member band, cross matrix, uncertainty, optimized
accuracy, claims) on tiny synthetic study tables whose answers are worked by hand."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student_t

from rewardherd.studies import analysis as an
from rewardherd.studies import claims as cl


def _config(seeds=(0, 1), noise=(0.0,), methods=("mean",), k=2, replicates=0):
    sweep = SimpleNamespace(seeds=list(seeds), noise=list(noise), methods=list(methods), kinds=("finetune", "pretrain"))
    return SimpleNamespace(ensemble_size=k, sweep=sweep, calibration_replicates=replicates, bootstrap=1000,
                           pool=SimpleNamespace(size=4, max_n_fraction=1.0), cache_dir=None, user="mine")


def _row(kind, method, size, member, seed, prompt, n, gold, **extra):
    return {"noise": 0.0, "seed": seed, "kind": kind, "method": method, "size": size, "member": member,
            "prompt_id": prompt, "n": n, "gold": gold, "kl": float(np.log(n) - (n - 1) / n), "proxy": float(n),
            **extra}


# ------------------------------------------------------------------ single_average, curves_table
#: gold at n = 1 per (seed, prompt): the same for every curve, as best-of-1 is a random pick
BASE = {(0, 0): 0.0, (0, 1): 1.0, (1, 0): 0.2, (1, 1): 1.2}
#: the finetune ensemble's gain at n = 2 per (seed, prompt): seed effects 0, 0.2 plus prompt effects 0.1, 0.3
FT_GAIN = {(0, 0): 0.1, (0, 1): 0.3, (1, 0): 0.3, (1, 1): 0.5}


def _curve_cells() -> pd.DataFrame:
    rows = []
    for (s, p), b in BASE.items():
        for n in (1, 2):
            rows.append(_row("pretrain", "mean", 2, "", s, p, n, b + (0.5 if n == 2 else 0.0), **{"feature/n_words": 3.0 * n}))
            rows.append(_row("finetune", "mean", 2, "", s, p, n, b + (FT_GAIN[s, p] if n == 2 else 0.0),
                             **{"feature/n_words": 1.0}))
            # two single members: +0.2 and -0.4 at n = 2, so their average gains -0.1
            rows.append(_row("single", "mean", 1, f"a{s}", s, p, n, b + (0.2 if n == 2 else 0.0), **{"feature/n_words": 2.0}))
            rows.append(_row("single", "mean", 1, f"b{s}", s, p, n, b - (0.4 if n == 2 else 0.0), **{"feature/n_words": 4.0}))
    return pd.DataFrame(rows)


def test_single_average_means_the_members_of_each_seed_prompt_and_n():
    cells = _curve_cells()
    avg = an.single_average(cells)
    assert set(avg["member"]) == {"average"} and set(avg["kind"]) == {"single"}
    assert set(avg["method"]) == {"mean"} and set(avg["size"]) == {1}
    assert len(avg) == 2 * 2 * 2  # seeds x prompts x n
    r = avg[(avg["seed"] == 1) & (avg["prompt_id"] == 1) & (avg["n"] == 2)].iloc[0]
    assert r["gold"] == pytest.approx(1.2 - 0.1)  # (1.4 + 0.8) / 2
    assert r["feature/n_words"] == pytest.approx(3.0)  # (2 + 4) / 2
    assert r["proxy"] == pytest.approx(2.0)


def test_curves_table_recentres_gold_on_n1_and_crosses_seeds_and_prompts():
    cells = _curve_cells()
    cells = pd.concat([cells, an.single_average(cells)], ignore_index=True)
    t = an.curves_table(cells, _config())
    # one row per (kind, method, size, n); the single members themselves are dropped, their average kept
    assert sorted(zip(t["kind"], t["n"], strict=True)) == [("finetune", 1), ("finetune", 2), ("pretrain", 1),
                                                          ("pretrain", 2), ("single", 1), ("single", 2)]
    row = {(r["kind"], r["n"]): SimpleNamespace(**{k.replace("/", "_"): v for k, v in r.items()})
           for r in t.to_dict("records")}
    pre = row["pretrain", 2]
    # every (seed, prompt) gains exactly 0.5: no variance, so the interval is the point
    assert (pre.gold_delta, pre.gold_delta_low, pre.gold_delta_high) == pytest.approx((0.5, 0.5, 0.5))
    assert pre.gold == pytest.approx((0.5 + 1.5 + 0.7 + 1.7) / 4)  # raw gold, not re-centred
    assert pre.kl == pytest.approx(np.log(2) - 0.5) and pre.proxy == pytest.approx(2.0)
    assert pre.feature_n_words == pytest.approx(6.0)  # 3n at n = 2
    # finetune at n=2: v = [[0.1, 0.3], [0.3, 0.5]] (seeds x prompts), mean 0.3;
    # seed means 0.2, 0.4 -> MS_seed = 2 * (0.1^2 + 0.1^2) / 1 = 0.04; prompt means likewise -> MS_prompt = 0.04;
    # var = (0.04 + 0.04) / 4 = 0.02; Satterthwaite df = 0.08^2 / (0.04^2 + 0.04^2) = 2
    ft = row["finetune", 2]
    half = student_t.ppf(0.975, 2) * np.sqrt(0.02)
    assert ft.gold_delta == pytest.approx(0.3)
    assert (ft.gold_delta_low, ft.gold_delta_high) == pytest.approx((0.3 - half, 0.3 + half))
    assert row["single", 2].gold_delta == pytest.approx(-0.1)  # the members' average: (0.2 - 0.4) / 2
    for kind in ("finetune", "pretrain", "single"):
        assert row[kind, 1].gold_delta == pytest.approx(0.0)  # n = 1 is the re-centring point


# ------------------------------------------------------------------ member_band, cross_matrix
def _member_cells() -> pd.DataFrame:
    """Seed 0: member A ends (n=2) at 1.0, B at 0.5; seed 1: C at 0.2, D at 0.8 (two prompts each)."""
    end = {(0, "A"): (0.8, 1.2), (0, "B"): (0.5, 0.5), (1, "C"): (0.0, 0.4), (1, "D"): (0.8, 0.8)}
    rows = []
    for (s, m), golds in end.items():
        for p, g in enumerate(golds):
            z = {"score/z/A": 1.0 + p, "score/z/B": np.nan} if s == 0 else {"score/z/C": -1.0, "score/z/D": 3.0 * p}
            rows.append(_row("single", "mean", 1, m, s, p, 1, 0.1 * s, **z))
            rows.append(_row("single", "mean", 1, m, s, p, 2, g, **z))
    rows.append(_row("single", "mean", 1, "average", 0, 0, 2, 99.0))  # never a member of the band
    rows.append(_row("pretrain", "mean", 2, "", 0, 0, 2, 99.0))  # nor an ensemble
    return pd.DataFrame(rows)


def test_member_band_is_the_best_and_worst_member_per_seed_averaged_over_seeds():
    band = an.member_band(_member_cells())
    got = {(r.which, r.n): r.gold for r in band.itertuples()}
    # best: A (seed 0, mean 1.0) and D (seed 1, 0.8); worst: B (0.5) and C (0.2)
    assert got["best", 2] == pytest.approx((1.0 + 0.8) / 2)
    assert got["worst", 2] == pytest.approx((0.5 + 0.2) / 2)
    assert got["best", 1] == pytest.approx((0.0 + 0.1) / 2) == got["worst", 1]
    assert set(band["noise"]) == {0.0} and len(band) == 4
    assert band.loc[band["n"] == 2, "kl"].tolist() == pytest.approx([np.log(2) - 0.5] * 2)


def test_cross_matrix_optimizes_each_member_and_reads_every_z_column_at_n_max():
    cross = an.cross_matrix(_member_cells(), _config())
    got = {(r["seed"], r["optimized"]): r for r in cross.to_dict("records")}
    assert set(got) == {(0, "A"), (0, "B"), (1, "C"), (1, "D")}  # no 'average' row
    assert got[0, "A"]["gold"] == pytest.approx(1.0)
    assert got[0, "A"]["A"] == pytest.approx(1.5)  # z of A over prompts 0, 1: (1 + 2) / 2
    assert "B" not in got[0, "A"] or np.isnan(got[0, "A"]["B"])  # an all-NaN column is not reported
    assert got[1, "D"]["D"] == pytest.approx(1.5) and got[1, "D"]["C"] == pytest.approx(-1.0)
    assert got[1, "C"]["gold"] == pytest.approx(0.2)


# ------------------------------------------------------------------ member_units, pool_member_z
def _members(seeds=(0, 1), accuracy=None) -> pd.DataFrame:
    """Seed s: finetune = [f{s}, g{s}], pretrain = [f{s}, p{s}] (slot 0 is the shared model)."""
    rows = []
    for s in seeds:
        for kind, units in (("finetune", [f"f{s}", f"g{s}"]), ("pretrain", [f"f{s}", f"p{s}"])):
            for slot, u in reversed(list(enumerate(units))):  # stored out of slot order on purpose
                rows.append({"kind": kind, "noise": 0.0, "seed": s, "slot": slot, "unit": u,
                             "heldout_accuracy": (accuracy or {}).get(u, 0.5), "mean": 0.0, "std": 1.0})
    return pd.DataFrame(rows)


def test_member_units_are_in_slot_order():
    m = _members()
    assert an.member_units(m, "pretrain", 0.0, 1) == ["f1", "p1"]
    assert an.member_units(m, "finetune", 0.0, 0) == ["f0", "g0"]
    assert an.member_units(m, "finetune", 0.5, 0) == []


def test_pool_member_z_is_seeds_prompts_members_samples():
    # value of unit u on (prompt p, sample n): 100 * code(u) + 10 * p + n
    code = {"f0": 1, "p0": 2, "f1": 3, "p1": 4, "g0": 5, "g1": 6}
    rows = [{"prompt_id": p, "sample_id": n, "gold": 0.0, **{u: 100 * c + 10 * p + n for u, c in code.items()}}
            for p in (1, 0) for n in (2, 0, 1)]  # shuffled: the function sorts by prompt, then sample
    z = an.pool_member_z(pd.DataFrame(rows), _members(), "pretrain", 0.0, [0, 1])
    assert z.shape == (2, 2, 2, 3)
    assert z[0, 0, 0].tolist() == [100, 101, 102]  # seed 0, prompt 0, f0
    assert z[0, 1, 1].tolist() == [210, 211, 212]  # seed 0, prompt 1, p0
    assert z[1, 1, 0, 2] == 312 and z[1, 0, 1, 0] == 400  # seed 1: f1, p1


# ------------------------------------------------------------------ uncertainty
def test_uncertainty_spearman_and_auroc_by_hand():
    """Gold 0..3 (below the median: samples 0, 1). Members m +/- s, so their mean is m and
    their spread (std, ddof 0) is s. m = 3 - gold, so gap = z(m) - z(gold) = -2 z(gold) falls
    with gold and |gap| is symmetric: ranks [3.5, 1.5, 1.5, 3.5].
    Seed 0, s = [4, 3, 2, 1]: spread ranks fall like gap's: rho(spread, gap) = 1; against |gap|
    the centred ranks [1.5, .5, -.5, -1.5] . [1, -1, -1, 1] = 0; AUROC 1 (the bad have the largest spread).
    Seed 1, s = [4, 3, 1, 2]: rho = 1 - 6 * 2 / (4 * 15) = 0.8; vs |gap|: [1.5, .5, -1.5, -.5] . [1, -1, -1, 1]
    = 2, / sqrt(5 * 4) = 0.4472; AUROC 1."""
    gold = np.array([0.0, 1.0, 2.0, 3.0])
    m = 3.0 - gold
    spreads = {0: np.array([4.0, 3.0, 2.0, 1.0]), 1: np.array([4.0, 3.0, 1.0, 2.0])}
    zt = pd.DataFrame({"prompt_id": 0, "sample_id": range(4), "gold": gold})
    for s, sp in spreads.items():
        zt[f"f{s}"], zt[f"p{s}"] = m + sp, m - sp
        zt[f"g{s}"] = m - sp
    rows = an.uncertainty(zt, _config(), _members())
    assert [r["kind"] for r in rows] == ["finetune", "pretrain"]
    for r in rows:  # both kinds hold one member at m + s and one at m - s
        assert r["spearman_spread_vs_gap"] == pytest.approx((1.0 + 0.8) / 2)
        assert r["spearman_spread_vs_abs_gap"] == pytest.approx((0.0 + 2 / np.sqrt(20)) / 2)
        assert r["auroc_spread_for_gold_below_median"] == pytest.approx(1.0)
        assert r["seeds"] == 2 and r["noise"] == 0.0


def test_uncertainty_floors_a_constant_golds_std():
    np.testing.assert_array_equal(an._z_floored(np.full(3, 2.5)), np.zeros(3))
    np.testing.assert_allclose(an._z_floored(np.array([1.0, 3.0])), [-1.0, 1.0])  # mean 2, std 1


# ------------------------------------------------------------------ optimized_accuracy
def test_optimized_accuracy_by_hand():
    """pretrain = [a, b], finetune = [a, c]. Each prompt's pick is the pretrain mean's argmax;
    a member is right on a pair (pick, other) when it orders the pair as gold does.
    Prompt 0: gold [0, 2, 1], a [3, 0, 1], b [1, 0, 0] -> mean [2, 0, .5], pick 0, which gold puts
    below both others: a and b put it above both (0/2 right), c [0, 5, 1] below both (2/2).
    Prompt 1: gold [1, 0, 2], a [0, 1, 2], b [0, 0, 3] -> pick 2, above both in gold: a, b 2/2,
    c [3, 0, 1] puts it below 3 and above 0 (1/2)."""
    zt = pd.DataFrame({"prompt_id": [0, 0, 0, 1, 1, 1], "sample_id": [0, 1, 2, 0, 1, 2],
                       "gold": [0, 2, 1, 1, 0, 2], "a": [3, 0, 1, 0, 1, 2], "b": [1, 0, 0, 0, 0, 3],
                       "c": [0, 5, 1, 3, 0, 1]}, dtype=float)
    members = pd.DataFrame([{"kind": k, "noise": 0.0, "seed": 0, "slot": i, "unit": u, "heldout_accuracy": acc}
                            for k, units in (("pretrain", "ab"), ("finetune", "ac"))
                            for i, (u, acc) in enumerate(zip(units, (0.7, 0.6), strict=True))])
    rows = an.optimized_accuracy(zt, _config(seeds=[0]), members)
    got = {r["member"]: r for r in rows}
    assert [r["member"] for r in rows] == ["a", "b", "c"]  # every distinct unit once, sorted
    assert got["a"]["optimized_accuracy"] == pytest.approx((0 + 1) / 2)
    assert got["b"]["optimized_accuracy"] == pytest.approx((0 + 1) / 2)
    assert got["c"]["optimized_accuracy"] == pytest.approx((1 + 0.5) / 2)
    assert got["a"]["heldout_accuracy"] == 0.7 and got["c"]["heldout_accuracy"] == 0.6


# ------------------------------------------------------------------ claim_results
NS = (1, 2, 4)
#: gold curves over NS, the same on every prompt and seed, so every mean-type interval is its point
CURVES = {
    ("single", "f"): (0.0, 1.0, 0.5), ("single", "g"): (0.0, 0.6, 0.2), ("single", "p"): (0.0, 0.8, 0.4),
    ("finetune", "mean"): (0.0, 1.0, 0.9), ("finetune", "min"): (0.0, 0.9, 0.85),
    ("pretrain", "mean"): (0.0, 1.2, 1.05), ("pretrain", "min"): (0.0, 1.1, 1.05),
}


def _claim_study():
    rows = []
    for s in (0, 1):
        for p in range(4):
            for i, n in enumerate(NS):
                for (kind, what), curve in CURVES.items():
                    if kind == "single":
                        rows.append(_row("single", "mean", 1, f"{what}{s}", s, p, n, curve[i]))
                    else:
                        rows.append(_row(kind, what, 2, "", s, p, n, curve[i], **{"feature/n_words": 2.0 * n}))
    cells = pd.DataFrame(rows)
    # pool z: 4 samples per prompt; the two pretrain members score alike (f = p), g differs
    zrows = []
    for p in range(4):
        for n in range(4):
            base = float((n * 7 + p * 3) % 5)
            zrows.append({"prompt_id": p, "sample_id": n, "gold": float((n * n + p) % 3),
                          **{f"f{s}": base for s in (0, 1)},
                          **{f"p{s}": base for s in (0, 1)}, **{f"g{s}": float(n) for s in (0, 1)}})
    return cells, pd.DataFrame(zrows)


def test_claim_results_by_hand():
    cells, zt = _claim_study()
    results = an.claim_results(cells, _config(methods=("mean", "min")), zt, _members())
    by = {}
    for r in results:
        by.setdefault(r["claim"], []).append(r)
    assert {k: len(v) for k, v in by.items()} == {
        "ensemble_vs_own_members": 4, "pretrain_vs_finetune": 2, "residual_overoptimization": 2,
        "conservative_aggregation": 2, "gao_bon_form": 1, "cross_rm_transfer": 1, "underspecification": 1}
    c3 = {r["comparison"].split(",")[0]: r for r in by["ensemble_vs_own_members"]}
    # at n_max = 4: finetune's own members f, g end at 0.5, 0.2 (average 0.35); pretrain's f, p at 0.5, 0.4 (0.45)
    assert c3["finetune ensemble (mean) - its own 2 members"]["estimate"] == pytest.approx(0.9 - 0.35)
    assert c3["finetune ensemble (min) - its own 2 members"]["estimate"] == pytest.approx(0.85 - 0.35)
    assert c3["pretrain ensemble (mean) - its own 2 members"]["estimate"] == pytest.approx(1.05 - 0.45)
    r = c3["pretrain ensemble (min) - its own 2 members"]
    assert (r["estimate"], r["low"], r["high"]) == pytest.approx((0.6, 0.6, 0.6)) and r["verdict"] == "reproduced"
    assert r["best_member_gold"] == pytest.approx(0.5) and r["worst_member_gold"] == pytest.approx(0.4)
    pvf = {r["comparison"].split(",")[0]: r["estimate"] for r in by["pretrain_vs_finetune"]}
    assert pvf == pytest.approx({"pretrain - finetune ensemble (mean)": 1.05 - 0.9,
                                 "pretrain - finetune ensemble (min)": 1.05 - 0.85})
    # C4: the pretrain curve peaks at n = 2 (among n < 4); the drop to n = 4 is 1.2 - 1.05 (mean), 1.1 - 1.05 (min)
    c4 = {r["comparison"].split(":")[0]: r for r in by["residual_overoptimization"]}
    assert c4["pretrain ensemble (mean)"]["estimate"] == pytest.approx(0.15)
    assert c4["pretrain ensemble (min)"]["estimate"] == pytest.approx(0.05)
    assert c4["pretrain ensemble (mean)"]["peak_n"] == 2
    # feature/n_words is 2n on the ensembles' rows: from n = 1 to n = 4 it grows by 8 - 2
    assert c4["pretrain ensemble (mean)"]["length_feature"] == "n_words"
    assert c4["pretrain ensemble (mean)"]["length_drift"] == pytest.approx(6.0)
    # C5 (min only): finetune members' average curve (0, .8, .35) drops .45 from n = 2; the min ensemble .05
    # pretrain members' (0, .9, .45) drops .45 too; its min ensemble 1.1 - 1.05 = .05
    c5 = {r["comparison"].split(":")[0]: r for r in by["conservative_aggregation"]}
    assert set(c5) == {"finetune", "pretrain"}
    for r in c5.values():
        assert r["estimate"] == pytest.approx(0.45 - 0.05)
        assert r["members_peak_n"] == r["ensemble_peak_n"] == 2
    # C2: the pretrain members score alike, so each predicts the other's gain exactly (slope 1): 0
    c2 = by["cross_rm_transfer"][0]
    assert c2["estimate"] == pytest.approx(0.0, abs=1e-12) and c2["verdict"] == "inconclusive"
    assert "n=4" in c2["comparison"]
    c1 = by["underspecification"][0]
    assert "top 2 of 4" in c1["comparison"] and c1["top"] == 2  # max(2, N // n_max) = max(2, 1)
    # C6 is the Gao rule on the pretrain members' average curve (0, .9, .45), tiled over seeds x prompts
    c6 = by["gao_bon_form"][0]
    want = cl.apply("gao_bon_form", np.tile([0.0, 0.9, 0.45], (2, 4, 1)), list(NS), cl.split_prompts(4, seed=0))
    assert c6["estimate"] == pytest.approx(want.estimate) and c6["verdict"] == want.verdict
    # two points beyond d = 0 fit R(d) = alpha d - beta d^2 exactly: solve the 2 x 2 system by hand
    d = np.sqrt(np.log(np.array([2.0, 4.0])) - np.array([0.5, 0.75]))
    alpha, beta = np.linalg.solve(np.stack([d, -d ** 2], axis=1), [0.9, 0.45])
    assert c6["alpha"] == pytest.approx(alpha, rel=1e-6) and c6["estimate"] == pytest.approx(beta, rel=1e-6)
    assert all(r["label"] == cl.SPECS[r["claim"]].label for r in results)
    assert all(r["comparison"].endswith("noise 0") for r in results)


# ------------------------------------------------------------------ tables on disk
def test_load_cells_concatenates_the_bon_cells_and_refuses_none(tmp_path):
    with pytest.raises(FileNotFoundError, match="no best-of-n cells"):
        an.load_cells(tmp_path)
    (tmp_path / "cells").mkdir()
    pd.DataFrame({"seed": [1], "gold": [0.5]}).to_parquet(tmp_path / "cells" / "bon__noise0__seed1.parquet")
    pd.DataFrame({"seed": [0, 0], "gold": [0.1, 0.2]}).to_parquet(tmp_path / "cells" / "bon__noise0__seed0.parquet")
    pd.DataFrame({"seed": [9]}).to_parquet(tmp_path / "cells" / "kinds__noise0__seed0.parquet")
    cells = an.load_cells(tmp_path)
    assert cells["seed"].tolist() == [0, 0, 1] and cells["gold"].tolist() == [0.1, 0.2, 0.5]
    assert an.load_kind_cells(tmp_path)["seed"].tolist() == [9]
    assert an.load_kind_cells(tmp_path / "nowhere").empty


def test_rl_tables_read_only_finished_cells_and_tag_them_with_their_unit(tmp_path):
    import json

    for name, done in (("rl__a", True), ("rl__b", False)):
        d = tmp_path / "cells" / name
        d.mkdir(parents=True)
        pd.DataFrame({"step": [0, 1], "kl": [0.0, 0.5], "gold": [0.0, 0.2]}).to_parquet(d / "rl_eval.parquet")
        if done:
            (d / "DONE").write_text(json.dumps({"kind": "pretrain", "seed": 3}))
    rl = an.rl_tables(tmp_path)
    assert set(rl["cell"]) == {"rl__a"} and len(rl) == 2
    assert set(rl["unit_kind"]) == {"pretrain"} and set(rl["unit_seed"]) == {3}
    assert an.rl_tables(tmp_path / "none").empty


def test_member_z_table_standardizes_each_units_scores_with_its_statistics(tmp_path):
    pool = pd.DataFrame({"prompt_id": [0, 0, 1], "sample_id": [0, 1, 0], "gold": [1.0, 2.0, 3.0]})
    members = pd.DataFrame({"unit": ["u", "v", "u"], "mean": [1.0, 10.0, 1.0], "std": [2.0, 5.0, 2.0]})
    for unit, scores in (("u", [1.0, 3.0, 5.0]), ("v", [10.0, 0.0, 20.0])):
        (tmp_path / "members" / unit).mkdir(parents=True)
        pool[["prompt_id", "sample_id"]].assign(score=scores).to_parquet(tmp_path / "members" / unit / "scores.parquet")
    zt = an.member_z_table(tmp_path, pool, members)
    assert list(zt.columns) == ["prompt_id", "sample_id", "gold", "u", "v"]
    assert zt["u"].tolist() == pytest.approx([0.0, 1.0, 2.0])  # (s - 1) / 2
    assert zt["v"].tolist() == pytest.approx([0.0, -2.0, 2.0])  # (s - 10) / 5


def test_study_calibration_with_no_replicates_simulates_nothing(monkeypatch):
    from rewardherd.studies import calibration as cal

    monkeypatch.setattr(cal, "calibrate", lambda *a, **k: pytest.fail("simulated"))
    cells = pd.DataFrame({"prompt_id": [0, 1, 2, 0]})
    got = an.study_calibration(_config(seeds=(0, 1, 2), k=3), cells)
    assert got["replicates"] == 0 and got["rows"] == [] and got["summary"] == {}
    assert got["size"] == {"seeds": 3, "prompts": 3, "pool": 4, "members": 3, "max_n_fraction": 1.0}


# ------------------------------------------------------------------ kind_costs, rl_arm_fits edges
def test_kind_costs_count_each_trained_model_once_and_add_warms_members():
    rows = []
    for s, (t_pre, t_ft) in enumerate(((2.0, 1.0), (4.0, 3.0))):
        # pretrain: slot 0 and 1 are one trained model (counted once); finetune: two models
        rows += [{"kind": "pretrain", "noise": 0.0, "seed": s, "trained": f"m{s}", "train_seconds": t_pre,
                  "score_seconds": 0.5} for _ in range(2)]
        rows += [{"kind": "finetune", "noise": 0.0, "seed": s, "trained": f"f{s}_{i}", "train_seconds": t_ft,
                  "score_seconds": 0.25} for i in range(2)]
        rows.append({"kind": "warm", "noise": 0.0, "seed": s, "trained": f"w{s}", "train_seconds": 0.5,
                     "score_seconds": 0.1})
    members = pd.DataFrame(rows)
    # pretrain: the shared model trained and scored once per seed: mean(2, 4) = 3, and 0.5
    assert an.kind_costs(members, "pretrain", 0.0, [0, 1]) == pytest.approx({"train_seconds": 3.0,
                                                                            "score_seconds": 0.5})
    # finetune: 2 x 1 and 2 x 3 -> mean(2, 6) = 4
    assert an.kind_costs(members, "finetune", 0.0, [0, 1])["train_seconds"] == pytest.approx(4.0)
    # warm: its own 0.5 plus the finetune members it averages: mean(0.5 + 2, 0.5 + 6) = 4.5
    assert an.kind_costs(members, "warm", 0.0, [0, 1]) == pytest.approx({"train_seconds": 4.5,
                                                                        "score_seconds": 0.1})


def test_rl_arm_fits_need_the_unit_columns_and_three_points():
    assert an.rl_arm_fits(pd.DataFrame({"step": [0], "kl": [0.0]})) == []  # no gold, no unit columns
    rows = [{"unit_kind": "single", "unit_method": "mean", "unit_noise": 0.0, "unit_kl_coef": 0.01,
             "unit_seed": 0, "step": step, "kl": kl, "gold": 0.0} for step, kl in enumerate((0.0, 1.0))]
    assert an.rl_arm_fits(pd.DataFrame(rows)) == []  # two points cannot fit two coefficients and a check


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")  # see the pretrain spread below
def test_analyze_writes_every_table_from_the_stored_study(tmp_path):
    """The claim study above stored as a runner leaves it; analyze's files hold what the
    functions give on the same tables (and the hand-worked C3 value)."""
    import json

    cells, zt = _claim_study()
    members = _members()
    (tmp_path / "cells").mkdir()
    for s in (0, 1):
        cells[cells["seed"] == s].to_parquet(tmp_path / "cells" / f"bon__noise0__seed{s}.parquet")
    zt[["prompt_id", "sample_id", "gold"]].to_parquet(tmp_path / "pool.parquet")
    (tmp_path / "results").mkdir()
    members.to_parquet(tmp_path / "results" / "members.parquet")
    for unit in members["unit"].unique():
        (tmp_path / "members" / unit).mkdir(parents=True)
        zt[["prompt_id", "sample_id"]].assign(score=zt[unit]).to_parquet(tmp_path / "members" / unit / "scores.parquet")
    config = _config(methods=("mean", "min"))
    result = an.analyze(tmp_path, config)
    res = tmp_path / "results"
    written = {p.name for p in res.iterdir()}
    assert {"curves.parquet", "member_band.parquet", "fits.json", "kinds.json", "claims.json",
            "uncertainty.json", "optimized_accuracy.parquet", "sharing.parquet", "cross.parquet"} <= written
    assert "calibration.json" not in written  # calibration is its own stage
    assert an.calibrate(tmp_path, config) == json.loads((res / "calibration.json").read_text())
    assert (tmp_path / "samples.parquet").exists() and "rl.parquet" not in written  # no RL cells
    claims = json.loads((res / "claims.json").read_text())
    assert claims["rules"] == cl.RULES
    c3 = [c for c in claims["claims"] if c["comparison"].startswith("pretrain ensemble (mean) - its own")]
    assert len(c3) == 1 and c3[0]["estimate"] == pytest.approx(1.05 - 0.45)
    assert json.loads((res / "calibration.json").read_text())["replicates"] == 0
    unc = {r["kind"]: r for r in json.loads((res / "uncertainty.json").read_text())}
    assert np.isnan(unc["pretrain"]["spearman_spread_vs_gap"])  # members alike: no spread, no rank correlation
    assert np.isfinite(unc["finetune"]["spearman_spread_vs_gap"])
    full = pd.concat([cells, an.single_average(cells)], ignore_index=True)
    pd.testing.assert_frame_equal(pd.read_parquet(res / "curves.parquet"), an.curves_table(full, config))
    # the typed results are what the files hold
    pd.testing.assert_frame_equal(pd.read_parquet(res / "curves.parquet"), result.curves)
    pd.testing.assert_frame_equal(pd.read_parquet(res / "sharing.parquet"), result.sharing)
    pd.testing.assert_frame_equal(pd.read_parquet(res / "cross.parquet"), result.cross)
    assert claims["claims"] == json.loads(json.dumps(result.claims, default=str))
    assert result.rl.empty and json.loads((res / "fits.json").read_text()) == json.loads(json.dumps(result.fits))
    # one Gao fit per curve: 2 kinds x 2 methods of size 2, and the single members' average
    fits = json.loads((res / "fits.json").read_text())
    assert sorted((f["kind"], f["method"]) for f in fits) == [("finetune", "mean"), ("finetune", "min"),
                                                             ("pretrain", "mean"), ("pretrain", "min"),
                                                             ("single", "mean")]
    kinds = json.loads((res / "kinds.json").read_text())
    assert {(r["kind"], r["method"]) for r in kinds} == {(k, m) for k in ("finetune", "pretrain")
                                                         for m in ("mean", "min")}
    sharing = pd.read_parquet(res / "sharing.parquet")
    assert sorted(zip(sharing["kind"], sharing["seed"], strict=True)) == [("finetune", 0), ("finetune", 1),
                                                                         ("pretrain", 0), ("pretrain", 1)]
    assert set(sharing["where"]) == {"pool"}  # no held-out gold stored: no held-out rows
    # the pretrain members score alike: all of their error is shared
    assert sharing.loc[sharing["kind"] == "pretrain", "rho_bar"].tolist() == pytest.approx([1.0, 1.0])
