"""analysis.sharing_rows and heldout_sharing: the error-sharing rows a study writes, on pools
and held-out pairs built so the decomposition is known (members that err identically share
all of their error; members that err independently share none)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from rewardherd.studies import analysis as an

#: z of [1, 2, 3, 4] (ddof 0): (x - 2.5) / sqrt(1.25)
Z4 = (np.arange(1.0, 5.0) - 2.5) / np.sqrt(1.25)


def _config(seeds=(0,)):
    return SimpleNamespace(sweep=SimpleNamespace(seeds=list(seeds), noise=[0.0]))


def _members(units):
    """units: {(kind, seed): [unit, ...]}"""
    return pd.DataFrame([{"kind": k, "noise": 0.0, "seed": s, "slot": i, "unit": u}
                         for (k, s), us in units.items() for i, u in enumerate(us)])


def test_identical_members_share_all_their_error_on_the_pool(tmp_path):
    """Two prompts, gold 4, 3, 2, 1 in each; finetune members both score 1, 2, 3, 4 (their error
    is 2 z in every prompt, the same for both: rho_bar 1, shared fraction 1); the pretrain members
    are the same but offset per member (within-prompt z-scoring removes an offset)."""
    gold = np.tile([4.0, 3.0, 2.0, 1.0], 2)
    up = np.tile([1.0, 2.0, 3.0, 4.0], 2)
    zt = pd.DataFrame({"prompt_id": np.repeat([0, 1], 4), "sample_id": np.tile(range(4), 2), "gold": gold,
                       "a": up, "b": 3 * up, "c": up + 10.0, "d": up - 7.0})
    members = _members({("finetune", 0): ["a", "b"], ("pretrain", 0): ["c", "d"]})
    t = an.sharing_rows(zt, _config(), members, tmp_path)  # no held-out gold there: pool rows only
    assert t["kind"].tolist() == ["finetune", "pretrain"] and set(t["where"]) == {"pool"}
    assert "members" not in t and "member_variance" not in t
    assert t["residual_rho_bar"].isna().all()  # members are -gold up to scale: nothing beyond gold to share
    for r in t.to_dict("records"):
        assert r["rho_bar"] == pytest.approx(1.0) and r["shared_fraction"] == pytest.approx(1.0)
        assert r["n_groups"] == 2 and r["n_samples"] == 8 and (r["noise"], r["seed"]) == (0.0, 0)
        # error = z(member) - z(gold) = 2 z: variance 4 in z units
        assert r["mean_member_variance"] == pytest.approx(4.0)
        assert r["idiosyncratic_variance"] == pytest.approx(0.0, abs=1e-12)


def test_a_seed_whose_gold_is_constant_in_every_prompt_is_skipped_with_a_warning(tmp_path, caplog):
    zt = pd.DataFrame({"prompt_id": [0, 0, 1, 1], "sample_id": [0, 1, 0, 1], "gold": [1.0, 1.0, 2.0, 2.0],
                       "a": [0.0, 1.0, 0.0, 1.0], "b": [1.0, 0.0, 1.0, 0.0]})
    members = _members({("finetune", 0): ["a", "b"], ("pretrain", 0): ["a", "b"]})
    with caplog.at_level("WARNING"):
        t = an.sharing_rows(zt, _config(), members, tmp_path)
    assert t.empty and list(t.columns) == ["kind", "noise", "seed", "where"]
    assert "error sharing not computed for noise 0, seed 0" in caplog.text


def _heldout(out, unit, chosen, rejected):
    d = out / "members" / unit
    d.mkdir(parents=True)
    pd.DataFrame({"id": [f"p{i}" for i in range(len(chosen))], "chosen": chosen, "rejected": rejected}).to_parquet(
        d / "heldout.parquet")


def test_heldout_sharing_decomposes_the_members_margins_against_golds(tmp_path, caplog):
    assert an.heldout_sharing(tmp_path, _config(), _members({})) == []  # no heldout_gold.parquet: nothing
    # gold margins 3, 1, -1, -3 (falling); the finetune members' margins rise, the pretrain kind
    # holds one member that orders the pairs exactly as gold does
    pd.DataFrame({"id": [f"p{i}" for i in range(4)] + ["extra"], "gold_chosen": [3.0, 1.0, -1.0, -3.0, 0.0],
                  "gold_rejected": [0.0] * 5}).to_parquet(tmp_path / "heldout_gold.parquet")
    _heldout(tmp_path, "f0", [1.0, 2.0, 3.0, 4.0], [0.0] * 4)
    _heldout(tmp_path, "f1", [2.0, 4.0, 6.0, 8.0], [1.0] * 4)  # margins 1, 3, 5, 7: the same z
    _heldout(tmp_path, "p1", [4.0, 3.0, 2.0, 1.0], [0.5] * 4)  # gold's z: its error is 0 on every pair
    members = _members({("finetune", 0): ["f0", "f1"], ("pretrain", 0): ["f0", "p1"]})
    with caplog.at_level("WARNING"):
        frames = an.heldout_sharing(tmp_path, _config(), members)
    assert len(frames) == 1  # the pretrain decomposition is undefined (a constant error) and skipped
    assert "held-out error sharing not computed for pretrain, noise 0, seed 0" in caplog.text
    ft = frames[0].iloc[0].to_dict()
    assert (ft["kind"], ft["where"], ft["noise"], ft["seed"]) == ("finetune", "heldout", 0.0, 0)
    assert "member_variance" not in ft
    # each finetune error is z(m) - z(gold) = Z4 - (-Z4) = 2 * Z4: identical, variance 4
    assert ft["n_samples"] == 4  # the pairs both tables know ("extra" has no member margins)
    assert ft["rho_bar"] == pytest.approx(1.0) and ft["shared_fraction"] == pytest.approx(1.0)
    assert ft["mean_member_variance"] == pytest.approx(4.0)
    assert ft["mean_error_variance"] == pytest.approx(float(np.var(2 * Z4)))  # = 4: nothing averages away
