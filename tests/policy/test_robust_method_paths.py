"""`robust(lam)` is accepted wherever an aggregation method is: best-of-n specs and
curves, RL configs, the server's config and request validation, study configs.

Every path validates through :class:`rewardherd.core.Aggregation`; these tests pin that
none of them keeps its own list of methods that would leave `robust` out."""

import pandas as pd
import pytest

from rewardherd.config import ConfigError
from rewardherd.core import Aggregation
from rewardherd.policy.bon import bon_curves
from rewardherd.policy.rl import RLConfig
from rewardherd.serve.config import ServeConfig
from rewardherd.serve.protocol import RequestError, check_method, parse_score
from rewardherd.studies.config import resolve_config


def test_aggregation_parses_robust():
    s = Aggregation.parse("robust(lam=0.3)")
    assert (s.method, s.params, s.label) == ("robust", {"lam": 0.3}, "robust(lam=0.3)")
    assert Aggregation.parse("robust").params == {}
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Aggregation.parse("robust(lam=1.5)")


def test_bon_curve_under_robust_picks_by_mean_and_min():
    # One prompt, 3 samples, members A and B:
    #   A: [3, 0, 2]  B: [0, 3, 1.5]
    #   mean [1.5, 1.5, 1.75], min [0, 0, 1.5]
    #   robust(lam=0.5) = [0.75, 0.75, 1.625] -> best-of-3 is sample 2 (gold -5)
    pool = pd.DataFrame({"prompt_id": [0, 0, 0], "sample_id": [0, 1, 2], "score/raw/A": [3.0, 0.0, 2.0],
                         "score/raw/B": [0.0, 3.0, 1.5], "gold": [10.0, 20.0, -5.0]})
    c = bon_curves(pool, ["score/raw/A", "score/raw/B"], [Aggregation.parse("robust(lam=0.5)")], [3], values=["gold"])
    assert c["method"].iloc[0] == "robust(lam=0.5)"
    assert c["proxy"].iloc[0] == pytest.approx(1.625)
    assert c["gold"].iloc[0] == pytest.approx(-5.0)


def test_rl_config_accepts_robust():
    assert RLConfig(method="robust", params={"lam": 0.2}).params == {"lam": 0.2}
    with pytest.raises(ValueError):
        RLConfig(method="robust", params={"lam": -0.2})


def test_serve_accepts_robust():
    assert ServeConfig(method="robust", params={"lam": 0.7}).method == "robust"
    check_method("robust", {"lam": 0.7}, n_members=3)
    with pytest.raises(RequestError) as e:
        check_method("robust", {"lam": 2.0}, n_members=3)
    assert e.value.status == 422
    req = parse_score({"items": [], "method": "robust", "params": {"lam": 0.25}}, default_method="mean",
                      default_params={}, n_members=2, max_items=4, max_text_chars=20)
    assert (req.method, req.params) == ("robust", {"lam": 0.25})


def test_study_config_accepts_robust():
    cfg = resolve_config(None, "smoke", ["sweep.methods=[mean, 'robust(lam=0.5)']", "rl_sweep.methods=['robust(lam=0.1)']"])
    assert "robust(lam=0.5)" in cfg.sweep.methods and cfg.rl_sweep.methods == ("robust(lam=0.1)",)
    with pytest.raises((ConfigError, ValueError)):
        resolve_config(None, "smoke", ["sweep.methods=['robust(lam=3)']"])

