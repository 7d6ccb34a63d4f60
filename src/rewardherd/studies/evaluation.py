"""Evaluate an ensemble on preference pairs: accuracy per member and per method,
how much members agree, and (given a gold reward) how much of their error they share."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from rewardherd import core


def evaluate_ensemble(ens, pairs: Sequence, *, methods=None, standardize: bool = True, batch_size: int = 64,
                      gold=None) -> dict:
    """Held-out preference accuracy of each member and each aggregation method.

    ``methods``: aggregations (:class:`~rewardherd.core.Aggregation` or their text,
    e.g. ``"uncertainty_weighted(lam=0.5)"``); default: every method with its default
    parameters.

    Returns a dict with ``member_accuracy``, ``method_accuracy`` (keyed by label),
    ``direction_agreement`` (mean over member pairs of the share of preference pairs
    on which both members prefer the same response) and ``kendall_tau`` (mean pairwise
    Kendall tau of member scores over all responses).

    With ``gold`` (a ``(prompts, responses) -> scores`` function), also
    ``error_sharing``: :func:`sharing_record` of the members' errors vs gold on both
    responses of every pair (``responses``: z-scored over all 2b responses) and on
    the pairs' margins (``margins``; see :func:`rewardherd.core.margin_error_sharing`).
    Needs at least 2 members.
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
    for spec in _aggregations(methods or core.METHODS):
        agg = spec.apply(scores)
        method_acc[spec.label] = core.preference_accuracy(agg[:b], agg[b:])
    margins = scores[:, :b] - scores[:, b:]  # (m, b)
    pairs_idx = list(itertools.combinations(range(len(ens)), 2))
    agree = [float(np.mean(np.sign(margins[i]) == np.sign(margins[j]))) for i, j in pairs_idx]
    sharing = {}
    if gold is not None:
        g = call_gold(gold, prompts, responses)  # (2b,)
        sharing = {"error_sharing": {
            "responses": sharing_record(core.error_sharing(raw, g), ens.names, "responses"),
            "margins": sharing_record(core.margin_error_sharing(raw[:, :b], raw[:, b:], g[:b], g[b:]), ens.names,
                                      "margins"),
        }}
    return {
        "n_pairs": b,
        "member_accuracy": member_acc,
        "method_accuracy": method_acc,
        "direction_agreement": float(np.mean(agree)) if agree else float("nan"),
        "kendall_tau": core.pairwise_kendall(scores),
        "standardized": standardize,
        **sharing,
    }


def _aggregations(methods: Sequence) -> list[core.Aggregation]:
    """Each method as an Aggregation: given as one, or as text (``name`` or ``name(k=v)``)."""
    return [m if isinstance(m, core.Aggregation) else core.Aggregation.parse(m) for m in methods]


def call_gold(gold, prompts: Sequence, responses: Sequence) -> np.ndarray:
    """Call a user's gold reward and check what it returns: (b,) finite floats.

    Anything the function raises becomes a ValueError naming it (it is user code).
    """
    name = getattr(gold, "__name__", repr(gold))
    try:
        g = np.asarray(gold(list(prompts), list(responses)), dtype=np.float64)
    except Exception as e:  # noqa: BLE001 - a plug-in's failure is reported, not re-raised as a traceback
        raise ValueError(f"gold reward {name} failed: {type(e).__name__}: {e}") from e
    if g.shape != (len(prompts),):
        raise ValueError(f"gold reward {name} returned shape {g.shape} for {len(prompts)} responses; "
                         f"expected ({len(prompts)},)")
    if not np.all(np.isfinite(g)):
        raise ValueError(f"gold reward {name} returned {int((~np.isfinite(g)).sum())} NaN or infinite value(s)")
    return g


def sharing_record(result: core.ErrorSharing, names: Sequence[str], basis: str) -> dict:
    """JSON-ready record of an :class:`~rewardherd.core.ErrorSharing`, members named,
    with the predicted error variance of a K'-member mean for K' = 1, 2, 4, 8, K, and
    the limit K' -> inf (the shared variance)."""
    ks = sorted({1, 2, 4, 8, result.k})
    return {
        "basis": basis,
        **result.as_dict(),
        "members": list(names),
        "member_variance": dict(zip(names, result.member_variance, strict=True)),
        "predicted_variance": {**{str(k): result.predicted_variance(k) for k in ks}, "inf": result.shared_variance},
    }


def format_sharing(record: dict) -> list[str]:
    """Lines that print a :func:`sharing_record`."""
    r = record
    where = f"{r['n_samples']} {r['basis']}"
    if r.get("n_groups") is not None:
        where += f" in {r['n_groups']} groups, z-scored within each ({r['n_dropped']} dropped)"
    per = ", ".join(f"{n} {v:.3f}" for n, v in r["member_variance"].items())
    pred = ", ".join(f"K'={k} {v:.3f}" for k, v in r["predicted_variance"].items())
    return [
        f"error sharing vs gold on {where}, K={r['k']}:",
        f"  shared fraction var(mean error)/mean var: {r['shared_fraction']:.3f}   rho_bar: {r['rho_bar']:.3f}",
        f"  shared covariance fraction C/V: {r['shared_covariance_fraction']:.3f}   "
        f"(shared {r['shared_variance']:.3f} + idiosyncratic {r['idiosyncratic_variance']:.3f} = "
        f"{r['mean_member_variance']:.3f})",
        f"  per-member error variance: {per}",
        f"  predicted error variance of a K'-member mean: {pred}",
    ]
