"""studies/evaluation.py and the user-gold loader on a stand-in ensemble whose scores are
written by hand, so every accuracy and agreement can be counted on paper."""

import sys

import numpy as np
import pytest

from rewardherd.data import PreferencePair
from rewardherd.studies.evaluation import (
    call_gold,
    evaluate_ensemble,
    format_sharing,
    sharing_record,
)
from rewardherd.studies.inputs import load_gold

#: (3 members, 2b = 8): columns 0-3 score the chosen responses, 4-7 the rejected ones
RAW = np.array([
    [1, 2, 3, 4, 0, 0, 0, 0],  # a: margins +1 +2 +3 +4 -> 4/4 right
    [1, 0, 3, 0, 0, 1, 0, 1],  # b: margins +1 -1 +3 -1 -> 2/4
    [0, 0, 0, 5, 1, 1, 1, 1],  # c: margins -1 -1 -1 +4 -> 1/4
], dtype=float)


class Ensemble:
    """What evaluate_ensemble needs of an ensemble: names, len, score and standardize."""

    names = ["a", "b", "c"]

    def __len__(self):
        return 3

    def score(self, prompts, responses, batch_size):
        assert len(prompts) == len(responses) == 8 and responses[:4] == [f"good {i}" for i in range(4)]
        return RAW.copy()

    def standardize(self, raw):
        return raw * np.array([[1.0], [1.0], [-1.0]])  # flips member c's order


PAIRS = [PreferencePair(id=str(i), prompt=f"p{i}", chosen=f"good {i}", rejected=f"bad {i}") for i in range(4)]


def test_accuracies_and_agreement_by_hand():
    r = evaluate_ensemble(Ensemble(), PAIRS, methods=["mean", "min"], standardize=False)
    assert r["n_pairs"] == 4 and r["standardized"] is False
    assert r["member_accuracy"] == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.25})
    # mean: chosen (2/3, 2/3, 2, 3) vs rejected (1/3, 2/3, 1/3, 2/3): right, tie (half), right, right
    # min: chosen (0, 0, 0, 0) vs rejected (0, 0, 0, 0): four ties, half each
    assert r["method_accuracy"] == pytest.approx({"mean": 3.5 / 4, "min": 0.5})
    # margin signs a ++++, b +-+-, c ---+: a/b agree on 2 of 4, a/c on 1, b/c on 1
    assert r["direction_agreement"] == pytest.approx((0.5 + 0.25 + 0.25) / 3)
    assert "error_sharing" not in r


def test_standardized_scores_are_what_is_evaluated():
    r = evaluate_ensemble(Ensemble(), PAIRS, methods=["mean"])
    assert r["standardized"] is True
    assert r["member_accuracy"]["c"] == pytest.approx(0.75)  # -(margins) = +1 +1 +1 -4
    # c's signs are now +++-: a (++++) agrees with it on 3 of 4 pairs, b (+-+-) on 3, a/b still on 2
    assert r["direction_agreement"] == pytest.approx((0.5 + 0.75 + 0.75) / 3)
    with pytest.raises(ValueError, match="no pairs"):
        evaluate_ensemble(Ensemble(), [])


def test_error_sharing_against_gold_names_members_and_predicts_variance():
    def gold(prompts, responses):
        return [float(len(r)) + (1.0 if r.startswith("good") else 0.0) + i % 3 for i, r in enumerate(responses)]

    r = evaluate_ensemble(Ensemble(), PAIRS, methods=["mean"], gold=gold)
    for basis in ("responses", "margins"):
        rec = r["error_sharing"][basis]
        assert rec["basis"] == basis and rec["members"] == ["a", "b", "c"] and rec["k"] == 3
        assert list(rec["member_variance"]) == ["a", "b", "c"]
        assert list(rec["predicted_variance"]) == ["1", "2", "3", "4", "8", "inf"]
        # one member's predicted variance is the mean member variance V; infinitely many leave C
        assert rec["predicted_variance"]["1"] == pytest.approx(rec["mean_member_variance"])
        assert rec["predicted_variance"]["inf"] == pytest.approx(rec["shared_variance"])
        assert rec["predicted_variance"]["3"] == pytest.approx(rec["mean_error_variance"])
    assert r["error_sharing"]["responses"]["n_samples"] == 8 and r["error_sharing"]["margins"]["n_samples"] == 4


def test_call_gold_checks_what_a_users_gold_returns():
    np.testing.assert_array_equal(call_gold(lambda p, r: [1, 2], ["x", "y"], ["a", "b"]), [1.0, 2.0])

    def broken(p, r):
        raise RuntimeError("boom")

    with pytest.raises(ValueError, match="gold reward broken failed: RuntimeError: boom"):
        call_gold(broken, ["x"], ["a"])
    with pytest.raises(ValueError, match=r"returned shape \(3,\) for 2 responses; expected \(2,\)"):
        call_gold(lambda p, r: [1, 2, 3], ["x", "y"], ["a", "b"])
    with pytest.raises(ValueError, match="returned 2 NaN or infinite value"):
        call_gold(lambda p, r: [np.nan, np.inf, 0.0], ["x"] * 3, ["a"] * 3)


def test_format_sharing_prints_a_record():
    class Result:
        k, n_samples, n_groups, n_dropped = 2, 10, 3, 1
        member_variance = (0.5, 1.5)
        mean_member_variance, shared_variance, idiosyncratic_variance = 1.0, 0.25, 0.75
        shared_covariance_fraction, rho_bar, mean_error_variance, shared_fraction = 0.25, 0.3, 0.625, 0.625

        def as_dict(self):
            return {k: getattr(self, k) for k in ("k", "n_samples", "n_groups", "n_dropped", "mean_member_variance",
                                                  "shared_variance", "idiosyncratic_variance",
                                                  "shared_covariance_fraction", "rho_bar", "mean_error_variance",
                                                  "shared_fraction")}

        def predicted_variance(self, k):
            return self.shared_variance + self.idiosyncratic_variance / k

    rec = sharing_record(Result(), ["x", "y"], "responses")
    # K' = 1, 2, 4, 8: 0.25 + 0.75 / K'
    assert rec["predicted_variance"] == pytest.approx({"1": 1.0, "2": 0.625, "4": 0.4375, "8": 0.34375, "inf": 0.25})
    assert format_sharing(rec) == [
        "error sharing vs gold on 10 responses in 3 groups, z-scored within each (1 dropped), K=2:",
        "  shared fraction var(mean error)/mean var: 0.625   rho_bar: 0.300",
        "  shared covariance fraction C/V: 0.250   (shared 0.250 + idiosyncratic 0.750 = 1.000)",
        "  per-member error variance: x 0.500, y 1.500",
        "  predicted error variance of a K'-member mean: K'=1 1.000, K'=2 0.625, K'=4 0.438, K'=8 0.344, K'=inf 0.250"]
    assert format_sharing({**rec, "n_groups": None})[0] == "error sharing vs gold on 10 responses, K=2:"


def test_load_gold_imports_module_function_and_names_bad_specs(tmp_path, monkeypatch):
    (tmp_path / "my_gold_mod.py").write_text("def score(p, r):\n    return [len(x) for x in r]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        g = load_gold("my_gold_mod:score")
        out = g(("a",), ("abc", "de"))
        assert out.dtype == np.float64 and out.tolist() == [3.0, 2.0]
    finally:
        sys.modules.pop("my_gold_mod", None)
    with pytest.raises(ValueError, match="my_gold_mod:nope': cannot import"):
        load_gold("my_gold_mod:nope")
    with pytest.raises(ValueError, match="neither `module:function` nor a model directory"):
        load_gold(str(tmp_path / "no_such_dir"))
