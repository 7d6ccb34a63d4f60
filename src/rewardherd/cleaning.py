"""Preference strength from ensemble votes, and cleaning preference data with it.

Following Wang et al., "Secrets of RLHF in Large Language Models Part II" (arXiv
2401.06080): the members' margins ``d_i = z_i(x, y_c) - z_i(x, y_r)`` give a pair's
strength (their mean) and the members' disagreement (their std); formulas in
:mod:`rewardherd.core.strength`. The weakest pairs are flipped, the next band dropped,
and the mean can become a per-pair Bradley-Terry ``margin``. The strength table's
columns: docs/schema.md.

Departures from the paper: it scores in-sample with ten models trained on all the data,
which hides exactly the mislabeled pairs (a member has fitted their labels); we
cross-fit by default (:func:`cross_fit_strength`) and flag in-sample strengths from an
existing ensemble. We also standardize member scores before taking margins, and choose
bands by rank (exact counts) rather than by quantiles of the mean.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rewardherd import core
from rewardherd.data.schema import PreferencePair, canonical_json
from rewardherd.data.splits import prompt_unit_hash
from rewardherd.io import write_atomic

log = logging.getLogger(__name__)

STRENGTH_PREFIX = "strength/"
IN_SAMPLE_WARNING = (
    "strengths come from an existing ensemble and are treated as in-sample: members score pairs they were "
    "trained on as agreeing with their labels, which hides mislabeled pairs; cross-fit (--folds) to clean data"
)


# ------------------------------------------------------------------ strength
def strength_table(ids: Sequence[str], chosen, rejected, names: Sequence[str], *, in_sample: bool,
                   fold=-1) -> pd.DataFrame:
    """The strength table of b pairs from (m, b) standardized member scores of the chosen
    and rejected responses; ``names`` are the m members, ``fold`` an int or (b,) ints
    (-1: not cross-fitted)."""
    st = core.preference_strength(chosen, rejected)
    if len(names) != st.margins.shape[0] or len(ids) != st.margins.shape[1]:
        raise ValueError(f"{len(names)} names and {len(ids)} ids for margins of shape {st.margins.shape}")
    df = pd.DataFrame({"id": list(ids), "mean": st.mean, "std": st.std})
    for name, row in zip(names, st.margins, strict=True):
        df[STRENGTH_PREFIX + name] = row
    df["in_sample"] = bool(in_sample)
    df["fold"] = np.broadcast_to(np.asarray(fold, dtype=np.int64), (len(ids),))
    return df


def _pair_scores(ens, pairs: Sequence[PreferencePair], batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(m, b) standardized scores of the chosen and of the rejected responses."""
    b = len(pairs)
    prompts = [p.prompt for p in pairs] * 2
    responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    z = ens.score(prompts, responses, batch_size=batch_size, standardize=True)  # (m, 2b)
    return z[:, :b], z[:, b:]


def ensemble_strength(ens, pairs: Sequence[PreferencePair], *, batch_size: int = 64) -> pd.DataFrame:
    """Strengths of ``pairs`` under an existing :class:`rewardherd.models.Ensemble`.

    Flagged ``in_sample`` (with a logged warning): the ensemble may have been trained on
    these pairs. Prefer :func:`cross_fit_strength` for cleaning.
    """
    if len(pairs) == 0:
        raise ValueError("no pairs to score")
    log.warning("%s", IN_SAMPLE_WARNING)
    chosen, rejected = _pair_scores(ens, pairs, batch_size)
    return strength_table([p.id for p in pairs], chosen, rejected, ens.names, in_sample=True)


def assign_folds(pairs: Sequence[PreferencePair], folds: int, seed: int = 0) -> np.ndarray:
    """Fold index in [0, folds) of every pair; pairs that share a prompt share a fold.

    Distinct prompts are ordered by a hash salted with ``seed`` and dealt round robin, so
    folds hold equal numbers of prompts whatever the row order."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2; got {folds!r}")
    keys = {canonical_json(p.prompt): p.prompt for p in pairs}
    if len(keys) < folds:
        raise ValueError(f"{len(keys)} distinct prompts cannot fill {folds} folds; use fewer folds")
    order = sorted(keys, key=lambda k: (prompt_unit_hash(keys[k], salt=f"rewardherd-folds-{seed}"), k))
    fold_of = {k: i % folds for i, k in enumerate(order)}
    return np.array([fold_of[canonical_json(p.prompt)] for p in pairs], dtype=np.int64)


def cross_fit_strength(
    pairs: Sequence[PreferencePair],
    ensemble,
    folds: int,
    config,
    work_dir: str | Path,
    *,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Out-of-fold strengths: K-fold members score only pairs they were not trained on.

    For each fold k the members of ``ensemble`` (an EnsembleConfig, the same for every
    fold) are trained with ``config`` (a TrainConfig) on the other K-1 folds into
    ``work_dir/fold_k`` (resumable, like ``rewardherd train``; ``overwrite`` replaces a
    fold trained with another plan), then score fold k. Fold k is also each member's
    held-out set, so the standardization statistics pool chosen and rejected responses and
    never see the labels. ``seed`` salts :func:`assign_folds`; pair ids must be unique.

    Returns the strength table in input order, ``in_sample`` False, ``fold`` set."""
    from rewardherd.models import Ensemble
    from rewardherd.training import train_ensemble

    pairs = list(pairs)
    ids = [p.id for p in pairs]
    if len(set(ids)) != len(ids):
        raise ValueError("pair ids must be unique to join strengths to pairs")
    fold_of = assign_folds(pairs, folds, seed)
    work_dir = Path(work_dir)
    parts = []
    for k in range(folds):
        held = [p for p, f in zip(pairs, fold_of, strict=True) if f == k]
        train = [p for p, f in zip(pairs, fold_of, strict=True) if f != k]
        log.info("fold %d/%d: training on %d pairs, scoring %d", k + 1, folds, len(train), len(held))
        train_ensemble(train, held, work_dir / f"fold_{k}", ensemble, config, overwrite=overwrite, progress=progress)
        ens = Ensemble.load(work_dir / f"fold_{k}")
        chosen, rejected = _pair_scores(ens, held, config.eval_batch_size)
        parts.append(strength_table([p.id for p in held], chosen, rejected, ens.names, in_sample=False, fold=k))
        del ens
    table = pd.concat(parts, ignore_index=True).set_index("id").loc[ids].reset_index()
    return table


# ------------------------------------------------------------------ reading
def read_strength(path: str | Path) -> pd.DataFrame:
    """Read and check a strength table (Parquet or JSONL). Errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: strength table not found")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_json(path, lines=True,
                                                                                 dtype={"id": str})
    except (ValueError, OSError) as e:
        raise ValueError(f"{path}: cannot read a strength table: {e}") from None
    missing = [c for c in ("id", "mean", "std", "in_sample") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; write it with `rewardherd strength`")
    df["id"] = df["id"].astype(str)
    dup = df["id"][df["id"].duplicated()].unique().tolist()
    if dup:
        raise ValueError(f"{path}: duplicate id(s) {dup[:5]}{' ...' if len(dup) > 5 else ''}")
    bad = df["id"][~np.isfinite(df["mean"].to_numpy(dtype=np.float64))].tolist()
    if bad:
        raise ValueError(f"{path}: field 'mean' is not finite for id(s) {bad[:5]}")
    return df


# ------------------------------------------------------------------ cleaning

def _strength_rows(strength, pairs, where: str):
    """``strength`` indexed by pair id, and the ids of ``pairs``; KeyError naming ``where``
    if a pair has no row."""
    by_id = strength.set_index("id")
    ids = [p.id for p in pairs]
    missing = [i for i in ids if i not in by_id.index]
    if missing:
        raise KeyError(f"{where}: no row for {len(missing)} of {len(ids)} pair id(s), e.g. {missing[:5]}; "
                       "was it measured on this data?")
    return by_id, ids

def clean_pairs(
    pairs: Sequence[PreferencePair],
    strength: pd.DataFrame,
    *,
    flip_below: float | None = None,
    drop_between: tuple[float, float] | None = None,
    margin_scale: float | None = None,
    where: str = "strength table",
) -> tuple[list[PreferencePair], dict]:
    """Flip the weakest pairs, drop the ambiguous band, optionally set adaptive margins.

    Bands (fractions of the pairs) are by rank of the mean strength
    (:func:`rewardherd.core.clean_selection`). A flipped pair swaps chosen and rejected,
    keeps its id, and its strength becomes ``-mean``. With ``margin_scale`` every kept
    pair's ``margin`` becomes ``margin_scale * strength``, replacing any it had. Every pair
    id needs a row in ``strength``; ``where`` names the table in errors; ``pairs`` are not
    modified.

    Returns ``(cleaned, summary)``: cleaned pairs in input order and a JSON-able summary
    (counts, strength cut-offs, ids flipped and dropped)."""
    pairs = list(pairs)
    by_id, ids = _strength_rows(strength, pairs, where)
    unused = len(by_id) - len(set(ids))
    if unused > 0:
        log.warning("%s: %d row(s) match no pair of the data and are ignored", where, unused)
    mean = by_id.loc[ids, "mean"].to_numpy(dtype=np.float64)
    flip, drop = core.clean_selection(mean, flip_below, drop_between)
    signed = np.where(flip, -mean, mean)  # a flipped pair's strength
    margins = core.strength_margin(signed, margin_scale) if margin_scale is not None else None
    in_sample = bool(by_id.loc[ids, "in_sample"].astype(bool).any())
    if in_sample:
        log.warning("%s: %s", where, IN_SAMPLE_WARNING)
    cleaned, replaced = [], 0
    for i, p in enumerate(pairs):
        if drop[i]:
            continue
        q = dataclasses.replace(p, chosen=p.rejected, rejected=p.chosen) if flip[i] else p
        if margins is not None:
            replaced += p.margin is not None
            q = dataclasses.replace(q, margin=float(margins[i]))
        cleaned.append(q)
    if replaced:
        log.warning("replaced the existing margin of %d pair(s) with the strength margin", replaced)
    n_pos_flipped = int(np.sum(flip & (mean > 0)))
    if n_pos_flipped:
        log.warning("%d flipped pair(s) have a positive mean strength (the ensemble agreed with their label); "
                    "flip_below may be too large", n_pos_flipped)
    summary = {
        "n_pairs": len(pairs),
        "n_written": len(cleaned),
        "n_flipped": int(flip.sum()),
        "n_dropped": int(drop.sum()),
        "flip_below": flip_below,
        "drop_between": list(drop_between) if drop_between is not None else None,
        "flipped_mean_strength_max": float(mean[flip].max()) if flip.any() else None,
        "dropped_mean_strength_range": [float(mean[drop].min()), float(mean[drop].max())] if drop.any() else None,
        "n_flipped_with_positive_strength": n_pos_flipped,
        "n_negative_strength": int(np.sum(mean < 0)),
        "margin_scale": margin_scale,
        "n_margins_replaced": replaced,
        "in_sample": in_sample,
        "n_strength_rows_unused": unused,
        "ids_flipped": [i for i, f in zip(ids, flip, strict=True) if f],
        "ids_dropped": [i for i, d in zip(ids, drop, strict=True) if d],
    }
    return cleaned, summary


def relabel_pairs(pairs: Sequence[PreferencePair], strength: pd.DataFrame, *, drop_uncertain: float,
                  where: str = "strength table") -> tuple[list[PreferencePair], dict]:
    """Relabel every pair by its ensemble's mean strength, after dropping the most uncertain share.

    The ``drop_uncertain`` share of the pairs (rounded down) with the largest strength
    ``std`` (the members' disagreement) is dropped; each kept pair whose mean strength is
    negative swaps chosen and rejected (its id kept), so every kept label is the ensemble's.
    Every pair id needs a row in ``strength``; ``pairs`` are not modified.

    Returns ``(relabelled, summary)``: pairs in input order and a JSON-able summary."""
    if not 0 <= drop_uncertain < 1:
        raise ValueError(f"drop_uncertain must be in [0, 1); got {drop_uncertain}")
    pairs = list(pairs)
    by_id, ids = _strength_rows(strength, pairs, where)
    mean = by_id.loc[ids, "mean"].to_numpy(dtype=np.float64)
    std = by_id.loc[ids, "std"].to_numpy(dtype=np.float64)
    drop = np.zeros(len(ids), dtype=bool)
    drop[np.argsort(-std, kind="stable")[: int(drop_uncertain * len(ids))]] = True
    flip = (mean < 0) & ~drop
    out = [dataclasses.replace(p, chosen=p.rejected, rejected=p.chosen) if flip[i] else p
           for i, p in enumerate(pairs) if not drop[i]]
    return out, {"n_pairs": len(pairs), "n_written": len(out), "n_flipped": int(flip.sum()),
                 "n_dropped": int(drop.sum()), "drop_uncertain": drop_uncertain,
                 "dropped_std_min": float(std[drop].min()) if drop.any() else None,
                 "in_sample": bool(by_id.loc[ids, "in_sample"].astype(bool).any()),
                 "ids_flipped": [i for i, f in zip(ids, flip, strict=True) if f],
                 "ids_dropped": [i for i, d in zip(ids, drop, strict=True) if d]}


# ------------------------------------------------------------------ figure
def strength_histogram(table: pd.DataFrame, path: str | Path) -> Path:
    """Histogram of the mean strength, and std against mean, as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    mean, std = table["mean"].to_numpy(), table["std"].to_numpy()
    in_sample = bool(table["in_sample"].any())
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.hist(mean, bins=min(50, max(10, len(mean) // 10)), color="#1f77b4")
    a.axvline(0.0, color="k", lw=0.8, ls="--")
    a.set_xlabel("mean preference strength (standardized)")
    a.set_ylabel("pairs")
    a.set_title(f"{len(mean)} pairs, {np.mean(mean < 0):.1%} below 0")
    b.scatter(mean, std, s=4, alpha=0.5, color="#1f77b4")
    b.axvline(0.0, color="k", lw=0.8, ls="--")
    b.set_xlabel("mean preference strength")
    b.set_ylabel("std across members")
    b.set_title("in-sample (members may have seen these pairs)" if in_sample else "cross-fitted (out of fold)")
    fig.tight_layout()
    try:
        return write_atomic(path, lambda t: fig.savefig(t, dpi=110, format="png"))
    finally:
        plt.close(fig)
