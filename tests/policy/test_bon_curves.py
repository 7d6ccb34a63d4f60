"""Best-of-n curves in rewardherd.policy: gold travels with its sample, pools are reused."""

import numpy as np
import pandas as pd
import pytest

from rewardherd import core
from rewardherd.core import Aggregation
from rewardherd.policy.bon import MethodSpec, bon_curves, member_columns, pool_matrix, summarize


def _planted_pool():
    # One prompt, 3 samples. Member A loves sample 0, member B loves sample 1, both rate
    # sample 2 second-best, so the MEAN ranks sample 2 first:
    #   A: [3, 0, 2]  B: [0, 3, 2]  mean: [1.5, 1.5, 2.0] -> argmax 2.
    # Gold disagrees with the mean ranking: gold = [10, 20, -5].
    return pd.DataFrame({
        "prompt_id": [0, 0, 0], "sample_id": [0, 1, 2], "prompt": ["p"] * 3, "response": ["a", "b", "c"],
        "score/raw/A": [3.0, 0.0, 2.0], "score/raw/B": [0.0, 3.0, 2.0], "gold": [10.0, 20.0, -5.0],
    })


def test_gold_follows_the_aggregated_ranking():
    pool = _planted_pool()
    c = bon_curves(pool, ["score/raw/A", "score/raw/B"], [Aggregation("mean")], [1, 3], values=["gold", "score/raw/A"])
    at_n3 = c[c["n"] == 3].iloc[0]
    # best-of-3 under the mean always picks sample 2: its gold (-5), not member A's favourite's (10)
    assert at_n3["gold"] == pytest.approx(-5.0)
    assert at_n3["proxy"] == pytest.approx(2.0)
    assert at_n3["score/raw/A"] == pytest.approx(2.0)
    # n=1 is the pool average of gold
    assert c[c["n"] == 1]["gold"].iloc[0] == pytest.approx(25.0 / 3)
    # a single member's own curve follows that member
    a = bon_curves(pool, ["score/raw/A"], [Aggregation("mean")], [3], values=["gold"])
    assert a["gold"].iloc[0] == pytest.approx(10.0)


def test_row_order_of_the_pool_does_not_matter():
    rng = np.random.default_rng(0)
    p, n = 5, 16
    pool = pd.DataFrame({"prompt_id": np.repeat(np.arange(p), n), "sample_id": np.tile(np.arange(n), p),
                         "score/raw/A": rng.normal(size=p * n), "score/raw/B": rng.normal(size=p * n), "gold": rng.normal(size=p * n)})
    specs = [Aggregation("mean"), Aggregation("uncertainty_weighted", {"lam": 0.5})]
    a = bon_curves(pool, ["score/raw/A", "score/raw/B"], specs, [1, 2, 4])
    b = bon_curves(pool.sample(frac=1.0, random_state=1), ["score/raw/A", "score/raw/B"], specs, [1, 2, 4])
    pd.testing.assert_frame_equal(a, b)
    # and matches core.bon_estimate on the matrices directly
    proxy = core.aggregate(np.stack([pool_matrix(pool, "score/raw/A").ravel(), pool_matrix(pool, "score/raw/B").ravel()]), "mean")
    est = core.bon_estimate(proxy.reshape(p, n), pool_matrix(pool, "gold"), [1, 2, 4])
    got = a[a["method"] == "mean"].sort_values(["prompt_id", "n"])["gold"].to_numpy().reshape(p, 3)
    np.testing.assert_allclose(got, est, rtol=1e-12)


def test_standardization_changes_min_not_mean_ranking():
    pool = _planted_pool()
    pool["score/raw/B"] = pool["score/raw/B"] * 100.0  # B on a much larger scale
    st = (np.array([0.0, 0.0]), np.array([1.0, 100.0]))
    c = bon_curves(pool, ["score/raw/A", "score/raw/B"], [Aggregation("min")], [3], standardization=st, values=["gold"])
    raw = bon_curves(pool, ["score/raw/A", "score/raw/B"], [Aggregation("min")], [3], values=["gold"])
    assert c["gold"].iloc[0] == pytest.approx(-5.0)  # standardized: min = [0, 0, 2] -> sample 2
    assert raw["gold"].iloc[0] == pytest.approx(-5.0)  # raw min = [0, 0, 2] too, but proxy scales differ
    assert c["proxy"].iloc[0] == pytest.approx(2.0)


def test_aggregation_parse_and_label():
    s = Aggregation.parse("uncertainty_weighted(lam=0.5, ddof=1)")
    assert s.method == "uncertainty_weighted" and s.params == {"lam": 0.5, "ddof": 1}
    assert s.label == "uncertainty_weighted(ddof=1,lam=0.5)"
    assert Aggregation.parse("min").label == "min"
    with pytest.raises(ValueError):
        Aggregation.parse("nope")
    with pytest.raises(ValueError):
        Aggregation.parse("mean(lam=1)")


def test_summarize_reports_standard_errors():
    pool = _planted_pool()
    c = bon_curves(pool, ["score/raw/A", "score/raw/B"], [Aggregation("mean")], [1, 2])
    s = summarize(c)
    assert {"proxy", "proxy_se", "gold", "gold_se"} <= set(s.columns)
    assert member_columns(pool) == ["score/raw/A", "score/raw/B"]


def test_method_spec_is_a_deprecated_alias_of_aggregation():
    assert MethodSpec is Aggregation
    assert MethodSpec.parse("uncertainty_weighted(lam=0.5)") == Aggregation("uncertainty_weighted", {"lam": 0.5})
