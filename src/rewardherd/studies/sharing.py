"""Error sharing of a study's ensembles, from a stored per-sample table.

The study's ``samples.parquet`` (one row per pool sample) holds a prompt id, gold,
and member score columns; which columns belong to which ensemble is the caller's
knowledge, so it is passed in. The math is :func:`rewardherd.core.error_sharing`;
this module only selects columns and tabulates. Member columns may be raw or
standardized scores: errors are z-scored on the table itself (within each prompt by
default, as the world prototype's notes measured the built-in world), so both give the same
result. Plot the table with :func:`rewardherd.studies.plots.sharing`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from rewardherd import core


def decompose_pool(
    samples: pd.DataFrame,
    members: Sequence[str],
    *,
    gold: str = "gold",
    group: str | None = "prompt_id",
    degenerate: core.sharing.Degenerate = "error",
    residual: bool = False,
) -> core.ErrorSharing:
    """Shared / idiosyncratic error of the members whose score columns are ``members``.

    ``members``: K >= 2 score columns (raw or standardized); ``group``: the column to
    z-score within (None: over all rows); ``degenerate``: ``"error"`` or ``"drop"`` for
    groups with one sample or a constant member/gold (:func:`rewardherd.core.member_errors`);
    ``residual``: decompose what the members share beyond tracking gold
    (:func:`rewardherd.core.residual_error_sharing`) instead of their errors.
    """
    members = list(members)
    if len(set(members)) != len(members):
        raise ValueError(f"member columns repeat: {members}")
    needed = members + [gold] + ([group] if group is not None else [])
    missing = [c for c in needed if c not in samples.columns]
    if missing:
        raise ValueError(f"samples table has no column(s) {missing}; it has {list(samples.columns)}")
    values = samples[members + [gold]].apply(pd.to_numeric, errors="coerce")
    bad = [c for c in values.columns if not np.all(np.isfinite(values[c].to_numpy(dtype=np.float64)))]
    if bad:
        raise ValueError(f"column(s) {bad} hold missing, non-numeric or infinite values")
    scores = values[members].to_numpy(dtype=np.float64).T  # (K, b)
    groups = samples[group].to_numpy() if group is not None else None
    decompose = core.residual_error_sharing if residual else core.error_sharing
    return decompose(scores, values[gold].to_numpy(dtype=np.float64), groups=groups, degenerate=degenerate)


def sharing_table(
    samples: pd.DataFrame,
    ensembles: Mapping[str, Sequence[str]],
    *,
    gold: str = "gold",
    group: str | None = "prompt_id",
    degenerate: core.sharing.Degenerate = "error",
) -> pd.DataFrame:
    """One row per ensemble (kind -> its member columns): its :func:`decompose_pool` result.

    Columns ``kind``, ``members`` (the column names), every
    :class:`~rewardherd.core.ErrorSharing` field (``member_variance`` as a list) and
    ``residual_rho_bar``, the members' error correlation with gold's part regressed out
    (``decompose_pool(..., residual=True)``; NaN where members are gold up to scale and
    sign, so no residual is left). Add study axes (noise, seed) with ``.assign``
    and concatenate.
    """
    rows = []
    for kind, cols in ensembles.items():
        r = decompose_pool(samples, cols, gold=gold, group=group, degenerate=degenerate)
        try:
            residual = decompose_pool(samples, cols, gold=gold, group=group, degenerate=degenerate,
                                      residual=True).rho_bar
        except ValueError:  # members that are an exact function of gold leave no residual to correlate
            residual = float("nan")
        rows.append({"kind": kind, "members": list(cols), **r.as_dict(), "residual_rho_bar": residual})
    return pd.DataFrame(rows)
