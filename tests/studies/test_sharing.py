"""rewardherd.studies.sharing on a synthetic samples table, and its figure."""

import math

import numpy as np
import pandas as pd
import pytest

from rewardherd import core
from rewardherd.studies.plots import sharing
from rewardherd.studies.sharing import decompose_pool, sharing_table


def _samples(prompts=40, per_prompt=50, seed=0, offset_scale=5.0) -> pd.DataFrame:
    """A pool: gold, and two 3-member ensembles whose errors share var a of var a + b.

    Each member also carries a large per-prompt offset (BT rewards are defined only up
    to one), which within-prompt z-scoring must remove.
    """
    rng = np.random.default_rng(seed)
    n = prompts * per_prompt
    pid = np.repeat(np.arange(prompts), per_prompt)
    gold = rng.normal(size=n)
    df = pd.DataFrame({"prompt_id": pid, "sample_id": np.tile(np.arange(per_prompt), prompts), "gold": gold})
    for kind, a, b in (("finetune", 0.9, 0.1), ("pretrain", 0.5, 0.5)):
        s = rng.normal(scale=math.sqrt(a), size=n)
        for i in range(3):
            offset = rng.normal(scale=offset_scale, size=prompts)[pid]
            df[f"score/raw/{kind}_{i}"] = 2.0 * (gold + s + rng.normal(scale=math.sqrt(b), size=n)) + offset
    return df


def test_decompose_pool_is_core_error_sharing_within_prompts():
    df = _samples()
    cols = ["score/raw/pretrain_0", "score/raw/pretrain_1", "score/raw/pretrain_2"]
    got = decompose_pool(df, cols)
    want = core.error_sharing(df[cols].to_numpy().T, df["gold"].to_numpy(), groups=df["prompt_id"].to_numpy())
    assert got == want
    assert got.n_groups == 40 and got.n_samples == 2000
    # member_i = gold + s + u_i: shared part of the error dominated by s; finetune shares more
    fine = decompose_pool(df, ["score/raw/finetune_0", "score/raw/finetune_1", "score/raw/finetune_2"])
    assert fine.rho_bar > got.rho_bar
    # within-prompt z-scoring removes the per-prompt offsets exactly; pooled z-scoring does not
    plain = _samples(offset_scale=0.0)
    assert decompose_pool(plain, cols).rho_bar == pytest.approx(got.rho_bar)
    assert decompose_pool(plain, cols).shared_fraction == pytest.approx(got.shared_fraction)
    assert abs(decompose_pool(df, cols, group=None).rho_bar - got.rho_bar) > 0.03


def test_residual_sharing_is_what_members_share_beyond_gold():
    df = _samples()
    for kind, q in (("finetune", 0.9), ("pretrain", 0.5)):
        cols = [f"score/raw/{kind}_{i}" for i in range(3)]
        got = decompose_pool(df, cols, residual=True)
        want = core.residual_error_sharing(df[cols].to_numpy().T, df["gold"].to_numpy(),
                                           groups=df["prompt_id"].to_numpy())
        assert got == want
        # member = gold + s + u_i with var(s) = q, var(u_i) = 1 - q: gold regressed out, they share q
        assert got.rho_bar == pytest.approx(q, abs=0.05)
    # today's rho_bar mixes in the shared "misses gold" (members track gold with r < 1): above q
    pre = [f"score/raw/pretrain_{i}" for i in range(3)]
    assert decompose_pool(df, pre).rho_bar > 0.55


def test_row_order_and_raw_vs_standardized_do_not_matter():
    df = _samples(prompts=10, per_prompt=20)
    cols = ["score/raw/pretrain_0", "score/raw/pretrain_1", "score/raw/pretrain_2"]
    base = decompose_pool(df, cols)
    shuffled = df.sample(frac=1.0, random_state=3)
    assert decompose_pool(shuffled, cols).rho_bar == pytest.approx(base.rho_bar)
    z = df.assign(**{f"score/z/{c}": (df[c] - 1.5) / 3.0 for c in cols})
    assert decompose_pool(z, [f"score/z/{c}" for c in cols]).shared_fraction == pytest.approx(base.shared_fraction)


def test_sharing_table_and_figure(tmp_path):
    df = _samples(prompts=8, per_prompt=20)
    ens = {k: [f"score/raw/{k}_{i}" for i in range(3)] for k in ("finetune", "pretrain")}
    frames = [sharing_table(df, ens).assign(noise=0.0, seed=0), sharing_table(df, ens).assign(noise=0.25, seed=0)]
    table = pd.concat(frames, ignore_index=True)
    assert list(table["kind"]) == ["finetune", "pretrain"] * 2
    assert {"shared_fraction", "rho_bar", "shared_variance", "idiosyncratic_variance", "member_variance"} <= set(table)
    row = table.iloc[0]
    assert row["residual_rho_bar"] == decompose_pool(df, ens["finetune"], residual=True).rho_bar
    assert row["shared_variance"] + row["idiosyncratic_variance"] == pytest.approx(row["mean_member_variance"])
    path = sharing(table, tmp_path / "sharing.png")
    assert path.exists() and path.stat().st_size > 1000
    assert sharing(sharing_table(df, ens), tmp_path / "no_noise.png").exists()


def test_bad_tables_raise():
    df = _samples(prompts=4, per_prompt=5)
    with pytest.raises(ValueError, match=r"no column\(s\) \['score/raw/nope'\]"):
        decompose_pool(df, ["score/raw/pretrain_0", "score/raw/nope"])
    with pytest.raises(ValueError, match="repeat"):
        decompose_pool(df, ["score/raw/pretrain_0", "score/raw/pretrain_0"])
    with pytest.raises(ValueError, match="at least 2 members"):
        decompose_pool(df, ["score/raw/pretrain_0"])
    bad = df.copy()
    bad.loc[3, "gold"] = np.nan
    with pytest.raises(ValueError, match=r"\['gold'\] hold missing"):
        decompose_pool(bad, ["score/raw/pretrain_0", "score/raw/pretrain_1"])
    single = pd.concat([df, df.iloc[[0]].assign(prompt_id=99)], ignore_index=True)
    with pytest.raises(ValueError, match="group 99 has a single sample"):
        decompose_pool(single, ["score/raw/pretrain_0", "score/raw/pretrain_1"])
    assert decompose_pool(single, ["score/raw/pretrain_0", "score/raw/pretrain_1"], degenerate="drop").n_dropped == 1
