"""The study applies each claim rule exactly as its calibration simulates it (one ClaimSpec)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from rewardherd.studies import analysis
from rewardherd.studies import claims as cl

from .conftest import rule_params

S, P, K, N, NS = 2, 8, 3, 8, (1, 2)


def _tables(rng):
    """Synthetic study tables: S seeds x P prompts, K members per kind, an n grid of NS."""
    units, cells, members = {}, [], []
    for s in range(S):
        for kind in ("finetune", "pretrain"):
            for slot in range(K):
                u = f"{kind}{s}{slot}"
                units[u] = rng.standard_normal(P * N)
                members.append({"kind": kind, "noise": 0.0, "seed": s, "slot": slot, "unit": u})
                for p in range(P):
                    for n in NS:
                        cells.append({"noise": 0.0, "seed": s, "kind": "single", "method": "", "size": 1, "n": n,
                                      "prompt_id": p, "member": u, "gold": rng.standard_normal(), "kl": 0.1 * n})
            for method in ("mean", "min"):
                for p in range(P):
                    for n in NS:
                        cells.append({"noise": 0.0, "seed": s, "kind": kind, "method": method, "size": K, "n": n,
                                      "prompt_id": p, "member": "", "gold": rng.standard_normal(), "kl": 0.1 * n})
    zt = pd.DataFrame({"prompt_id": np.repeat(np.arange(P), N), "sample_id": np.tile(np.arange(N), P),
                       "gold": rng.standard_normal(P * N), **units})
    config = SimpleNamespace(sweep=SimpleNamespace(methods=["mean", "min"], noise=[0.0], seeds=list(range(S))),
                             ensemble_size=K)
    return pd.DataFrame(cells), config, zt, pd.DataFrame(members)


def test_the_study_applies_each_rule_with_its_specs_parameters(rule_calls):
    seen = rule_calls
    results = analysis.claim_results(*_tables(np.random.default_rng(0)))
    # ensemble_vs_own_members_at_peak is applied by kind_results, rpo_vs_dpo_drop by the DAA arm (test_daa.py)
    study_rules = set(cl.SPECS) - {"ensemble_vs_own_members_at_peak", "rpo_vs_dpo_drop"}
    assert set(seen) == study_rules
    for name, calls in seen.items():
        for kw in calls:
            assert rule_params(kw) == cl.SPECS[name].params, name
    # every result carries its spec's label, direction and rule text
    for r in results:
        spec = cl.SPECS[r["claim"]]
        assert (r["label"], r["direction"], r["rule"]) == (spec.label, spec.direction, spec.rule)
    # and the kinds each rule is applied to are its spec's kinds
    c5 = [r["comparison"].split(":")[0] for r in results if r["claim"] == "conservative_aggregation"]
    assert set(c5) == set(cl.SPECS["conservative_aggregation"].kinds)


def test_a_rule_parameter_cannot_be_overridden_at_the_call():
    with pytest.raises(TypeError, match="fixed by its ClaimSpec"):
        cl.apply("gao_bon_form", np.zeros((2, 8, 2)), [1, 2], cl.split_prompts(8), n_boot=10)


def test_a_toy_claim_needs_only_its_spec_and_function(monkeypatch):
    """A new rule is one ClaimSpec plus its function; apply() and the calibration key pick it up."""
    from rewardherd.studies import calibration as cal

    def toy(values, *, scale, comparison=""):
        return cl._result("C0", "toy", comparison or "toy", np.asarray(values) * scale, "positive")

    monkeypatch.setattr(cl, "toy", toy, raising=False)
    monkeypatch.setitem(cl.SPECS, "toy", cl.ClaimSpec("toy", "C0", "positive", "toy rule.", params={"scale": 2.0}))
    r = cl.apply("toy", np.ones((3, 4)))
    assert r.estimate == pytest.approx(2.0) and r.rule == "toy rule."
    sc = cal.Scenario("toy", "null", "toy", cal.World())
    assert cal.cell_key(sc, cal.Size(), 1) != cal.cell_key(cal.Scenario("toy", "null", "toy2", cal.World()),
                                                           cal.Size(), 1)
