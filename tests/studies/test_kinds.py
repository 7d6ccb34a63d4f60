"""kind_results on synthetic best-of-n cells where every kind's gain and cost is known."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from rewardherd.studies.analysis import kind_results

S, P, K = 4, 6, 2
SEEDS, NOISE = list(range(S)), 0.25
GOLD = {"finetune": 0.1, "pretrain": 0.2, "multi_head": 0.3, "warm": 0.15}  # ensembles, at n_max
MEMBER_GOLD = {"full": 0.0, "multi_head": 0.05}  # every member optimized alone, at n_max


def _rows(kind, member, method, size, seed, gold, rng, n_max_only=False):
    return [{"kind": kind, "member": member, "method": method, "size": size, "seed": seed, "noise": NOISE,
             "prompt_id": p, "n": n, "gold": (gold if n == 4 else 0.0) + rng.normal(0, 0.01)}
            for p in range(P) for n in ((4,) if n_max_only else (1, 4))]


@pytest.fixture()
def study():
    rng = np.random.default_rng(0)
    cells, kcells, members = [], [], []
    for s in SEEDS:
        full = {"finetune": [f"bb0__ft{1000 * s + i}__s{s}" for i in range(K)],
                "pretrain": [f"bb0__ft{1000 * s}__s{s}", f"bb3__ft{1000 * s + 1}__s{s}"]}  # member 0 shared
        for unit in sorted(set(full["finetune"]) | set(full["pretrain"])):
            cells += _rows("single", unit, "mean", 1, s, MEMBER_GOLD["full"], rng)
        for kind in ("finetune", "pretrain"):
            cells += _rows(kind, "", "mean", K, s, GOLD[kind], rng)
        heads = [f"mh__s{s}__h{i}" for i in range(K)]
        kcells += _rows("multi_head", "", "mean", K, s, GOLD["multi_head"], rng)
        for h in heads:
            kcells += _rows("multi_head", h, "mean", 1, s, MEMBER_GOLD["multi_head"], rng)
        kcells += _rows("warm", "", "mean", 1, s, GOLD["warm"], rng)
        units = {**full, "multi_head": heads, "warm": [f"warm__s{s}"]}
        seconds = {"multi_head": (3.0, 1.0), "warm": (0.5, 1.0)}
        for kind, us in units.items():
            for slot, u in enumerate(us):
                train, score = seconds.get(kind, (2.0, 1.0))
                members.append({"kind": kind, "noise": NOISE, "seed": s, "slot": slot, "unit": u,
                                "trained": f"mh__s{s}" if kind == "multi_head" else u,
                                "train_seconds": train, "score_seconds": score})
    sweep = SimpleNamespace(seeds=SEEDS, noise=[NOISE], methods=["mean"],
                            kinds=("finetune", "pretrain", "multi_head", "warm"))
    config = SimpleNamespace(ensemble_size=K, sweep=sweep)
    return pd.DataFrame(cells), pd.DataFrame(kcells), config, pd.DataFrame(members)


def test_gains_against_the_single_baseline_own_members_and_finetune(study):
    cells, kcells, config, members = study
    rows, claims = kind_results(cells, kcells, config, members)
    got = {r["kind"]: r for r in rows}
    assert set(got) == {"finetune", "pretrain", "multi_head", "warm"}
    for kind, gold in GOLD.items():
        r = got[kind]
        assert r["gain_vs_single"] == pytest.approx(gold - MEMBER_GOLD["full"], abs=0.01)
        assert r["gain_vs_single_low"] < r["gain_vs_single"] < r["gain_vs_single_high"]
        assert r["verdict_vs_single"] == "reproduced"
    assert got["multi_head"]["gain_vs_own"] == pytest.approx(0.3 - 0.05, abs=0.01)  # its heads, not full members
    assert got["warm"]["gain_vs_own"] == pytest.approx(0.15 - 0.0, abs=0.01)  # the finetune members it averages
    assert got["warm"]["gain_vs_finetune"] == pytest.approx(0.15 - 0.1, abs=0.01)
    assert got["pretrain"]["gain_vs_finetune"] == pytest.approx(0.1, abs=0.01)
    assert "gain_vs_finetune" not in got["finetune"]
    assert got["warm"]["method"] == "weights averaged"
    # the extra kinds' own-member comparisons are claims (C3); finetune and pretrain are the main claims'
    assert sorted(c["comparison"].split(" ")[0] for c in claims) == ["WARM", "multi_head"]
    assert all(c["claim"] == "ensemble_vs_own_members" for c in claims)


def test_costs_count_each_trained_model_once_and_warm_includes_its_members(study):
    cells, kcells, config, members = study
    got = {r["kind"]: r for r in kind_results(cells, kcells, config, members)[0]}
    assert [got[k]["forward_passes"] for k in ("finetune", "pretrain", "multi_head", "warm")] == [K, K, 1, 1]
    assert got["finetune"]["train_seconds"] == pytest.approx(2.0 * K)
    assert got["multi_head"]["train_seconds"] == pytest.approx(3.0)  # one joint training for K heads
    assert got["multi_head"]["score_seconds"] == pytest.approx(1.0)  # one pass scores every head
    assert got["warm"]["train_seconds"] == pytest.approx(0.5 + 2.0 * K)


def test_units_run_with_the_heap_frozen_and_unfreeze_it_even_on_error():
    import gc

    from rewardherd.studies.executors import frozen_heap

    seen = []

    @frozen_heap
    def unit(fail):
        seen.append(gc.get_freeze_count())
        if fail:
            raise RuntimeError("unit failed")

    unit(False)
    with pytest.raises(RuntimeError):
        unit(True)
    assert all(n > 0 for n in seen) and gc.get_freeze_count() == 0
