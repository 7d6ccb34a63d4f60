"""Evaluate an ensemble on preference pairs: accuracy per member and per method,
and how much members agree."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from rewardherd import core


def evaluate_ensemble(ens, pairs: Sequence, *, methods=None, standardize: bool = True, batch_size: int = 64) -> dict:
    """Held-out preference accuracy of each member and each aggregation method.

    Returns a dict with ``member_accuracy``, ``method_accuracy`` (default params),
    ``direction_agreement`` (mean over member pairs of the share of preference pairs
    on which both members prefer the same response) and ``kendall_tau`` (mean pairwise
    Kendall tau of member scores over all responses).
    """
    if len(pairs) == 0:
        raise ValueError("no pairs to evaluate")
    b = len(pairs)
    prompts = [p.prompt for p in pairs] * 2
    responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    raw = ens.score(prompts, responses, batch_size=batch_size)  # (m, 2b)
    scores = ens.standardize(raw) if standardize else raw
    member_acc = {
        name: core.preference_accuracy(scores[i, :b], scores[i, b:]) for i, name in enumerate(ens.names)
    }
    method_acc = {}
    for m in methods or core.METHODS:
        agg = core.aggregate(scores, m)
        method_acc[m] = core.preference_accuracy(agg[:b], agg[b:])
    margins = scores[:, :b] - scores[:, b:]  # (m, b)
    pairs_idx = list(itertools.combinations(range(len(ens)), 2))
    agree = [float(np.mean(np.sign(margins[i]) == np.sign(margins[j]))) for i, j in pairs_idx]
    return {
        "n_pairs": b,
        "member_accuracy": member_acc,
        "method_accuracy": method_acc,
        "direction_agreement": float(np.mean(agree)) if agree else float("nan"),
        "kendall_tau": core.pairwise_kendall(scores),
        "standardized": standardize,
    }
