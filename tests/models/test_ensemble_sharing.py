"""Ensemble.error_sharing: scores the samples, then core.error_sharing on raw scores."""

import numpy as np
import pytest

from rewardherd import core
from rewardherd.models.tiny import rule_gold


def test_error_sharing_matches_core_on_raw_and_standardized_scores(ensemble, texts):
    prompts, responses = texts
    gold = rule_gold(prompts, responses) + 0.1 * np.arange(len(responses))  # no ties
    got = ensemble.error_sharing(prompts, responses, gold)
    raw = ensemble.score(prompts, responses)
    assert got == core.error_sharing(raw, gold)
    # z-scoring on the samples makes the manifest standardization irrelevant
    assert core.error_sharing(ensemble.standardize(raw), gold).rho_bar == pytest.approx(got.rho_bar)
    assert ensemble.error_sharing(prompts, responses, rule_gold).k == len(ensemble)  # gold as a function


def test_error_sharing_groups_and_degenerate(ensemble, texts):
    prompts, responses = texts
    gold = rule_gold(prompts, responses) + 0.1 * np.arange(len(responses))
    groups = [0, 0, 0, 1, 1, 1, 2, 2, 3]
    with pytest.raises(ValueError, match="group 3 has a single sample"):
        ensemble.error_sharing(prompts, responses, gold, groups=groups)
    r = ensemble.error_sharing(prompts, responses, gold, groups=groups, degenerate="drop")
    assert (r.n_groups, r.n_samples, r.n_dropped) == (3, 8, 1)
