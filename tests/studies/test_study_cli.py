"""End-to-end study runs through the CLI on tiny user components (smoke profile):
a local run, a resume after a simulated kill, a Ray run, and `report` rebuilding."""

import json
import os
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rewardherd.cli import app
from rewardherd.data import split_by_prompt, write_preferences
from rewardherd.models.tiny import build_saved_backbones, rule_labelled_pairs

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def components(tmp_path_factory):
    root = tmp_path_factory.mktemp("components")
    bbs = build_saved_backbones(root, [0, 1, 7])
    pairs = rule_labelled_pairs(160, seed=3)
    train, held = split_by_prompt(pairs, heldout_fraction=0.25)
    write_preferences(train, root / "train.jsonl")
    write_preferences(held, root / "heldout.jsonl")
    (root / "prompts.txt").write_text("\n".join(f"item {i}: " for i in range(500, 540)) + "\n")
    (root / "train_prompts.txt").write_text("\n".join(f"item {i}: " for i in range(20)) + "\n")
    cfg = {
        "profile": "smoke",
        "user": {
            "policy": str(bbs[2]), "preferences": str(root / "train.jsonl"),
            "heldout_preferences": str(root / "heldout.jsonl"), "backbones": [str(bbs[0]), str(bbs[1])],
            "prompts": str(root / "prompts.txt"), "train_prompts": str(root / "train_prompts.txt"),
            "gold": "rewardherd.models.tiny:rule_gold", "max_new_tokens": 6,
        },
        "train": {"epochs": 1.0, "lr": 2e-3, "batch_size": 16, "max_length": 64},
    }
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(args):
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    return res


def test_study_runs_resumes_and_reports(components, tmp_path, monkeypatch):
    out = tmp_path / "study"
    # Simulated kill: the second batch of member units (noise 0.25) raises; the first batch's
    # three units (noise 0: finetune members 0 and 1, pretrain member 1) must survive.
    from rewardherd.studies import runner

    real = runner.run_member_batch
    calls = {"n": 0}

    def flaky(batch, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated kill")
        return real(batch, *a, **k)

    monkeypatch.setattr(runner, "run_member_batch", flaky)
    with pytest.raises(RuntimeError, match="simulated kill"):
        _run(["study", str(components), "--out", str(out), "--no-progress"])
    done = sorted(p.parent.name for p in (out / "members").glob("*/info.json"))
    assert len(done) == 3 and all("noise0__" in d for d in done)
    assert {json.loads((out / "members" / d / "info.json").read_text())["batched_with"] for d in done} == {3}
    mtimes = {d: (out / "members" / d / "info.json").stat().st_mtime_ns for d in done}

    monkeypatch.setattr(runner, "run_member_batch", real)
    res = _run(["study", str(components), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "report:" in res.output
    for d, t in mtimes.items():  # not retrained
        assert (out / "members" / d / "info.json").stat().st_mtime_ns == t
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "Claims" in html
    claims = json.loads((out / "results" / "claims.json").read_text())["claims"]
    assert {c["label"] for c in claims} >= {"C1", "C2", "C3", "C4", "C5", "C6"}
    assert all(c["covers"] and c["rule"] for c in claims)
    assert all(c["verdict"] in ("reproduced", "not reproduced", "inconclusive") for c in claims)
    assert all(c["low"] <= c["estimate"] + 1e-12 and c["estimate"] <= c["high"] + 1e-12 for c in claims)
    assert (out / "results" / "rl.parquet").exists()
    assert (out / "samples.parquet").exists() and (out / "results" / "fits.json").exists()

    # A finished study only rebuilds the report; `report` rebuilds without recomputing.
    before = (out / "results" / "claims.json").stat().st_mtime_ns
    res = _run(["study", str(components), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0
    assert (out / "results" / "claims.json").stat().st_mtime_ns == before
    (out / "report.html").unlink()
    # A user study has no cache: `report` must reuse the stored calibration cells.
    from rewardherd.studies import calibration

    cal_before = json.loads((out / "results" / "calibration.json").read_text())["rows"]
    assert cal_before
    monkeypatch.setattr(calibration, "run_scenario", lambda *a, **k: pytest.fail("report re-simulated a cell"))
    res = _run(["report", str(out)])
    assert res.exit_code == 0 and (out / "report.html").exists()
    assert json.loads((out / "results" / "calibration.json").read_text())["rows"] == cal_before

    # Every table follows docs/schema.md: no name of an older rewardherd, one schema for
    # best-of-n cells, the pool and the RL rows.
    pd = __import__("pandas")
    cells = pd.read_parquet(next((out / "cells").glob("bon__*.parquet")))
    rl = pd.read_parquet(out / "results" / "rl.parquet")
    pool = pd.read_parquet(out / "pool.parquet")
    for table in (cells, rl, pool):
        assert not [c for c in table.columns if c.startswith(("f/", "z/", "rm/", "member/", "member_raw/", "proxy/",
                                                              "ens_"))]
    assert [c for c in cells.columns if c.startswith("feature/")] == [c for c in pool if c.startswith("feature/")]
    units = {u for u in cells["member"] if u}
    assert {f"score/z/{u}" for u in units} <= set(cells.columns)
    assert "ens/std" in rl and [c for c in rl if c.startswith("ens/") and c != "ens/std"]
    # names inside results are bare feature names (the schema prefix is stripped, not cut by length)
    assert {c["length_feature"] for c in claims if "length_feature" in c} <= {"n_tokens", "n_words"}

    # Another configuration in the same directory is refused.
    res = _run(["study", str(components), "--out", str(out), "--no-progress", "--set", "pool.size=8"])
    assert res.exit_code != 0
    assert "another configuration" in res.output


def test_study_with_every_kind_reports_gain_and_cost(components, tmp_path):
    """multi_head, lora, warm and cleaned join finetune and pretrain on the same curves and
    intervals, each with its cost."""
    out = tmp_path / "kinds"
    res = _run(["study", str(components), "--out", str(out), "--no-progress", "--set", "rl_sweep.enabled=false",
                "--set", "sweep.kinds=[finetune,pretrain,multi_head,lora,warm,cleaned]", "--set", "lora_r=4",
                "--set", "clean.folds=2", "--set", "clean.members=1"])
    assert res.exit_code == 0, res.output
    members = (out / "members")
    # per noise level (K=2): 3 full members, 2 LoRA members, 1 multi-head model with 2 head units, 1 WARM
    for noise in ("0", "0.25"):
        assert len(list(members.glob(f"bb*__noise{noise}__seed0/info.json"))) == 3
        assert len(list(members.glob(f"lora__*__noise{noise}__seed0/info.json"))) == 2
        assert len(list(members.glob(f"mh__*__noise{noise}__seed0__h*/scores.parquet"))) == 2
        assert len(list(members.glob(f"warm__*__noise{noise}__seed0/scores.parquet"))) == 1
        assert len(list(members.glob(f"cleaned__*__noise{noise}__seed0__m*/scores.parquet"))) == 2
    lora = json.loads(next(members.glob("lora__*/info.json")).read_text())
    assert lora["train_config"]["lora_r"] == 4
    rows = json.loads((out / "results" / "kinds.json").read_text())
    got = {(r["noise"], r["kind"]): r for r in rows}
    assert {k for _, k in got} == {"finetune", "pretrain", "multi_head", "lora", "warm", "cleaned"}
    cleaning = json.loads(next(members.glob("cleaned__*__noise0.25__seed0__m0/info.json")).read_text())["cleaning"]
    # the rule flips the weakest 10% and drops the next 20% of the pairs
    assert cleaning["n_flipped"] == round(0.1 * cleaning["n_pairs"]) and cleaning["n_dropped"] > 0
    assert 0 <= cleaning["flip_precision"] <= 1 and 0 <= cleaning["auroc_low_strength_for_noise"] <= 1
    assert len([r for r in rows if r["kind"] == "warm"]) == 2  # one model: no methods, one row per noise
    for noise in (0.0, 0.25):
        assert got[noise, "multi_head"]["forward_passes"] == got[noise, "warm"]["forward_passes"] == 1
        assert got[noise, "lora"]["forward_passes"] == got[noise, "cleaned"]["forward_passes"] == 2
        assert "gain_vs_finetune" in got[noise, "warm"] and "gain_vs_finetune" not in got[noise, "finetune"]
        # WARM's training is its finetune members' plus the averaging
        assert got[noise, "warm"]["train_seconds"] >= got[noise, "finetune"]["train_seconds"] > 0
    for r in rows:
        assert r["gain_vs_single_low"] <= r["gain_vs_single"] <= r["gain_vs_single_high"]
        assert r["gain_vs_own_low"] <= r["gain_vs_own"] <= r["gain_vs_own_high"]
        assert r["verdict_vs_single"] in ("reproduced", "not reproduced", "inconclusive")
    claims = json.loads((out / "results" / "claims.json").read_text())["claims"]
    extra = [c for c in claims if c["comparison"].startswith(("multi_head", "lora", "cleaned", "WARM"))]
    assert {c["claim"] for c in extra} == {"ensemble_vs_own_members"} and len(extra) == 2 * (3 * 3 + 1)
    report = (out / "report.md").read_text()
    assert "## Every ensemble kind and its cost" in report and "figures/kinds.png" in report


def test_study_with_ray_executor(components, tmp_path):
    ray_tmp = Path("/tmp") / f"rh_ray_{os.getpid()}"
    os.environ["REWARDHERD_RAY_TMP"] = str(ray_tmp)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    out = tmp_path / "study_ray"
    res = _run(["study", str(components), "--out", str(out), "--no-progress", "--executor", "ray",
                "--set", "ray_num_cpus=2", "--set", "rl_sweep.enabled=false"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["executor"] == "ray"
    # K=2: finetune and pretrain share member 0 -> 3 members per noise level, 2 noise levels
    assert len(list((out / "members").glob("*/info.json"))) == 6
    assert (out / "report.html").exists()
    # the user's gold is constant within each prompt here, so only the held-out decomposition exists
    sharing = __import__("pandas").read_parquet(out / "results" / "sharing.parquet")
    assert set(sharing["where"]) == {"heldout"} and sharing["rho_bar"].between(-1, 1).all()
    assert "held-out pairs (in distribution)" in (out / "report.md").read_text()


def test_study_with_worker_processes_matches_one_process(components, tmp_path):
    """workers=2 trains and scores members in two pinned processes; the members and their
    pool scores match a one-process run (up to thread-count rounding)."""
    import numpy as np
    import pandas as pd

    outs = {}
    for w in (1, 2):
        outs[w] = tmp_path / f"w{w}"
        res = _run(["study", str(components), "--out", str(outs[w]), "--no-progress", "--set", f"workers={w}",
                    "--set", "rl_sweep.enabled=false"])
        assert res.exit_code == 0, res.output
    one = sorted(p.parent.name for p in (outs[1] / "members").glob("*/scores.parquet"))
    two = sorted(p.parent.name for p in (outs[2] / "members").glob("*/scores.parquet"))
    assert one == two and len(one) == 6
    for name in one:
        a = pd.read_parquet(outs[1] / "members" / name / "scores.parquet")
        b = pd.read_parquet(outs[2] / "members" / name / "scores.parquet")
        np.testing.assert_allclose(a["score"], b["score"], atol=1e-4)


@pytest.fixture(scope="module")
def builtin_cache(tmp_path_factory):
    """One smoke world cache for the built-in-world tests of this module."""
    return tmp_path_factory.mktemp("cache")


def test_default_study_on_the_builtin_world_smoke(tmp_path, builtin_cache):
    """The README's main path, miniature: `rewardherd study --profile smoke` on the built-in world
    (real fortunes corpus, real MiniLM+VADER gold), cache under a temporary folder."""
    out = tmp_path / "study"
    res = _run(["study", "--profile", "smoke", "--out", str(out), "--cache-dir", str(builtin_cache),
                "--no-progress"])
    assert res.exit_code == 0, res.output
    world = json.loads((out / "world.json").read_text())
    assert world["profile"] == "smoke"
    pool = __import__("pandas").read_parquet(out / "pool.parquet")
    assert pool["gold"].notna().all() and "feature/n_tokens" in pool
    claims = json.loads((out / "results" / "claims.json").read_text())["claims"]
    assert {c["label"] for c in claims} >= {"C1", "C3", "C6"}
    assert {c["length_feature"] for c in claims if "length_feature" in c} == {"n_tokens"}
    assert (out / "report.html").exists()
    sharing = __import__("pandas").read_parquet(out / "results" / "sharing.parquet")
    assert set(sharing["where"]) == {"pool", "heldout"}  # off and in distribution
    assert sharing["rho_bar"].between(-1, 1).all()
    report = (out / "report.md").read_text()
    assert "held-out pairs (in distribution)" in report and "world.preferences.markers = 0 (the default)" in report
    assert "its shared-error dial at world.gold.shared_error = 1;" in report


def test_sharing_sweep_on_the_builtin_world_smoke(tmp_path, builtin_cache):
    """`sweep.markers`: one study per level of the world's marker dial, then gain vs rho_bar."""
    import dataclasses

    import pandas as pd

    from rewardherd.data.markers import CHOSEN_MARKER, REJECTED_MARKER
    from rewardherd.world import build_world, world_config

    out = tmp_path / "sharing"
    res = _run(["study", "--profile", "smoke", "--out", str(out), "--cache-dir", str(builtin_cache), "--no-progress",
                "--set", "sweep.markers=[0,1]", "--set", "rl_sweep.enabled=false", "--set", "sweep.noise=[0.0]"])
    assert res.exit_code == 0, res.output
    t = pd.read_parquet(out / "results" / "sharing_dial.parquet")
    assert sorted(set(t["level"])) == [0.0, 1.0] and set(t["kind"]) == {"finetune", "pretrain"}
    assert len(t) == 2 * 2 * 3  # levels x kinds x the smoke profile's methods
    assert t[["rho_bar", "rho_bar_heldout", "gain", "heldout_accuracy"]].notna().all().all()
    assert ((t["gain_low"] <= t["gain"]) & (t["gain"] <= t["gain_high"])).all()
    assert ((t["rho_bar_min"] <= t["rho_bar"]) & (t["rho_bar"] <= t["rho_bar_max"])).all()
    pools = [pd.read_parquet(out / f"markers{lv}" / "pool.parquet") for lv in (0, 1)]
    pd.testing.assert_frame_equal(*pools)  # sampled once, shared by every level
    worlds = [json.loads((out / f"markers{lv}" / "world.json").read_text()) for lv in (0, 1)]
    assert [w["preferences"]["markers"] for w in worlds] == [0.0, 1.0]
    assert worlds[0]["preferences"]["key"] == worlds[1]["preferences"]["key"]  # a view: nothing rebuilt
    assert (out / "figures" / "sharing_dial.png").exists() and "markers1/report.html" in (out / "report.md").read_text()
    for prefix, where in (("", "at n_max"), ("peak_", "at each curve's peak")):
        n = {v: int((t[f"{prefix}verdict"] == v).sum()) for v in ("reproduced", "not reproduced", "inconclusive")}
        assert (f"Verdicts {where} over 12 (level, kind, method) cells: {n['reproduced']} reproduced, "
                f"{n['not reproduced']} not reproduced, {n['inconclusive']} inconclusive"
                in (out / "report.md").read_text())
    assert ((t["peak_gain_low"] <= t["peak_gain"]) & (t["peak_gain"] <= t["peak_gain_high"])).all()
    assert set(t["own_peak_n"]) | set(t["ensemble_peak_n"]) <= {1, 2, 4}  # the smoke pool's n grid (16 x 0.25)
    cal = json.loads((out / "results" / "calibration.json").read_text())
    assert {r["claim"] for r in cal["rows"]} == {"ensemble_vs_own_members", "ensemble_vs_own_members_at_peak"}
    assert cal["replicates"] == 2 and "The rules and their calibration" in (out / "report.md").read_text()
    stored = (out / "config.json").read_text()
    res = _run(["study", "--profile", "smoke", "--out", str(out), "--cache-dir", str(builtin_cache), "--no-progress",
                "--set", "sweep.markers=[0,1]", "--set", "rl_sweep.enabled=false", "--set", "sweep.seeds=[1]"])
    assert res.exit_code != 0 and "another configuration" in res.output  # refused, nothing overwritten
    assert (out / "config.json").read_text() == stored
    before = (out / "report.md").read_text()
    res = _run(["report", str(out)])  # rebuilds every level's analysis, then the sweep's table and report
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results" / "sharing_dial.parquet"), t)
    assert (out / "report.md").read_text() == before
    # the dial itself: markers on exactly half of the pairs, gold and the stored pairs unchanged
    base = world_config("smoke")
    half = dataclasses.replace(base, preferences=dataclasses.replace(base.preferences, markers=0.5))
    w0, w1 = build_world(base, cache_dir=builtin_cache), build_world(half, cache_dir=builtin_cache)
    assert w0.preferences_dir == w1.preferences_dir
    p0, p1 = w0.load_preferences("train"), w1.load_preferences("train")
    marked = [(a, b) for a, b in zip(p0, p1, strict=True) if a != b]
    assert len(marked) == round(0.5 * len(p0))
    assert all(b.chosen == a.chosen + CHOSEN_MARKER and b.rejected == a.rejected + REJECTED_MARKER for a, b in marked)


def test_shared_error_sweep_on_the_builtin_world_smoke(tmp_path, builtin_cache):
    """`sweep.levels` with dial=tail_and_data: one study per level of gold's tail and the members' shared
    pairs, each with its own pool gold, then the gains against the members' residual error correlation."""
    import pandas as pd

    out = tmp_path / "levels"
    args = ["study", "--profile", "smoke", "--out", str(out), "--cache-dir", str(builtin_cache), "--no-progress",
            "--set", "sweep.levels=[0,1]", "--set", "dial=tail_and_data", "--set", "train.subsample=40",
            "--set", "rl_sweep.enabled=false", "--set", "sweep.noise=[0.0]"]
    res = _run(args)
    assert res.exit_code == 0, res.output
    t = pd.read_parquet(out / "results" / "sharing_dial.parquet")
    assert sorted(set(t["level"])) == [0.0, 1.0] and set(t["dial"]) == {"tail_and_data"} and len(t) == 2 * 2 * 3
    assert t[["residual_rho", "rho_bar", "gain", "heldout_accuracy"]].notna().all().all()
    assert ((t["residual_rho_min"] <= t["residual_rho"]) & (t["residual_rho"] <= t["residual_rho_max"])).all()
    configs = [json.loads((out / f"level{lv}" / "config.json").read_text()) for lv in (0, 1)]
    assert [(c["world"]["gold"]["shared_error"], c["train"]["subsample_shared"]) for c in configs] == [(0, 0), (1, 1)]
    assert all(c["sweep"]["levels"] == [] for c in configs)
    pools = [pd.read_parquet(out / f"level{lv}" / "pool.parquet") for lv in (0, 1)]
    assert pools[0]["response"].tolist() == pools[1]["response"].tolist()  # the same policy samples ...
    worlds = [json.loads((out / f"level{lv}" / "world.json").read_text()) for lv in (0, 1)]
    assert worlds[0]["gold_key"] != worlds[1]["gold_key"]  # ... each scored by its level's gold
    report = (out / "report.md").read_text()
    assert "shared-error dial (world.gold.shared_error and train.subsample_shared" in report
    assert "level1/report.html" in report and "residual rho pool [min, max]" in report
    assert _run(["report", str(out)]).exit_code == 0  # a finished sweep re-reports from its table's dial
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results" / "sharing_dial.parquet"), t)


def test_diagnose_levels_of_the_shared_error_on_the_builtin_world_smoke(tmp_path, builtin_cache):
    """`rewardherd diagnose`: single-member diagnostics per level, no ensemble. With gold's limit at
    the preference data's token cap, no preference response reaches the tail, so both levels share
    their trained members, and the tail only lowers the pool's gold."""
    out = tmp_path / "diag"
    args = ["diagnose", "--profile", "smoke", "--levels", "0,1", "--out", str(out), "--no-progress",
            "--set", f"cache_dir={builtin_cache}", "--set", "world.gold.design=lexical",
            "--set", "world.gold.max_words=8", "--set", "world.gold.min_words=4", "--set", "sweep.noise=[0.0]",
            "--set", "train.bootstrap=true"]
    res = _run(args)
    assert res.exit_code == 0, res.output
    result = json.loads((out / "diagnostics.json").read_text())
    assert list(result["members_shared_by_levels"].values()) == [[0.0, 1.0]]
    rows = {(r["level"], r["members"]): r for r in result["rows"]}
    assert set(rows) == {(lv, g) for lv in (0.0, 1.0) for g in ("finetune", "pretrain")}
    for r in rows.values():
        assert -1 <= r["residual_rho"] <= 1 and -1 <= r["rho_bar"] <= 1 and -1 <= r["spearman"] <= 1
        assert 0 <= r["acc_in"] <= 1 and 0 <= r["acc_out"] <= 1 and str(r["peak_n"]) in r["curve"]
    for g in ("finetune", "pretrain"):
        assert rows[(0.0, g)]["acc_in"] == rows[(1.0, g)]["acc_in"]  # the same members
        pairs = list(zip(rows[(0.0, g)]["curve"].values(), rows[(1.0, g)]["curve"].values(), strict=True))
        assert all(b <= a for a, b in pairs) and any(b < a for a, b in pairs)
    diff = result["pretrain_vs_finetune"][0]["pretrain_minus_finetune_residual_rho"]
    assert diff["low"] <= diff["estimate"] <= diff["high"]
    feats = rows[(0.0, "finetune")]["shared_residual_features"]
    assert {"n_words", "prompt_overlap"} <= set(feats)
    assert all(-1 <= v["shared_residual"] <= 1 for v in feats.values() if v["shared_residual"] == v["shared_residual"])
    # the tail charges long responses, so gold's own correlation with length falls at level 1
    assert rows[(1.0, "finetune")]["shared_residual_features"]["n_words"]["gold"] < feats["n_words"]["gold"]
    infos = [json.loads(p.read_text()) for p in out.glob("data-*/members/*/info.json")]
    assert infos and all(i["train_config"]["bootstrap"] for i in infos)
    assert all(i["train_config"]["n_distinct_train_pairs"] < i["train_config"]["n_train_pairs"] for i in infos)
    assert result["bootstrap_members"] is True
    assert "No ensemble was formed" in (out / "diagnostics.md").read_text()
    assert not (out / "results").exists()  # no study tables, no ensemble curves
    bad = _run(["diagnose", "--profile", "smoke", "--levels", "0,2", "--out", str(out)])
    assert bad.exit_code != 0 and "--levels" in bad.output and "Traceback" not in bad.output


def test_world_build_replicates_on_the_builtin_world_smoke(tmp_path, builtin_cache):
    """`world_seeds`: the whole study on two builds of the world, then every verdict side by side."""
    import pandas as pd

    out = tmp_path / "builds"
    args = ["study", "--profile", "smoke", "--out", str(out), "--cache-dir", str(builtin_cache), "--no-progress",
            "--set", "world_seeds=[0,1]", "--set", "rl_sweep.enabled=false", "--set", "sweep.noise=[0.0]"]
    res = _run(args)
    assert res.exit_code == 0, res.output
    worlds = [json.loads((out / f"build{s}" / "world.json").read_text()) for s in (0, 1)]
    assert worlds[0]["preferences"]["key"] != worlds[1]["preferences"]["key"]  # two builds, not one twice
    configs = [json.loads((out / f"build{s}" / "config.json").read_text()) for s in (0, 1)]
    assert [(c["world_seed"], c["world_seeds"]) for c in configs] == [(0, []), (1, [])]
    t = pd.read_parquet(out / "results" / "builds.parquet")
    per_build = [len(json.loads((out / f"build{s}" / "results" / "claims.json").read_text())["claims"]) for s in (0, 1)]
    assert t.groupby("build").size().tolist() == per_build and per_build[0] == per_build[1]
    report = (out / "report.md").read_text()
    assert "build0/report.html, build1/report.html" in report and "Every comparison, build by build" in report
    assert "All comparisons over builds 0, 1: " in report
    res = _run([*args[:-2], "--set", "sweep.seeds=[1]"])  # another configuration: refused in build0
    assert res.exit_code != 0 and "another configuration" in res.output
    assert _run(["report", str(out)]).exit_code == 0  # re-analyses each build, then the table
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results" / "builds.parquet"), t)
    assert (out / "report.md").read_text() == report
