"""Names shared by every part of rewardherd: ensemble kinds, result columns, logged metrics.

One vocabulary and one column schema, so that best-of-n tables, RL logs, study tables
and the server's ``extra_logs`` can be joined on their names. docs/schema.md describes
them for users; this module is where code gets them. It imports nothing from
rewardherd, so every layer (models, training, policy, studies, serve) may use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

# ------------------------------------------------------------------ ensemble kinds
EnsembleKind = Literal["single", "finetune", "pretrain", "explicit", "multi_head"]
"""Where an ensemble's members differ (the manifest's ``kind``; table in docs/schema.md)."""
KINDS: tuple[str, ...] = get_args(EnsembleKind)

TrainKind = Literal["finetune", "pretrain", "explicit"]
"""The kinds ``rewardherd train`` builds from an ensemble plan."""
TRAIN_KINDS: tuple[str, ...] = get_args(TrainKind)

RLKind = Literal["single", "finetune", "pretrain"]
"""The kinds a study's RL cells optimize."""
StudyKind = Literal["finetune", "pretrain", "multi_head", "lora", "warm", "cleaned"]
"""The ensemble kinds a study compares on its best-of-n curves (finetune and pretrain always;
the others are described in docs/schema.md)."""
STUDY_KINDS: tuple[str, ...] = get_args(StudyKind)

#: Names used before the vocabulary was unified, still read from manifests and configs.
KIND_ALIASES = {"finetune_seeds": "finetune", "pretrain_seeds": "pretrain"}
TrainKindOrAlias = Literal["finetune", "pretrain", "explicit", "finetune_seeds", "pretrain_seeds"]
"""What a training config accepts: a train kind or an old alias (mapped on load)."""
#: Training-plan hashes keep the old names, so ensembles trained before the rename
#: still resume and still match their plan.
_HASHED_KIND = {new: old for old, new in KIND_ALIASES.items()}


def canonical_kind(kind: str) -> str:
    """The current name of a kind (an old alias maps to its new name; others pass through)."""
    return KIND_ALIASES.get(kind, kind)


def hashed_kind(kind: str) -> str:
    """The name under which a kind enters a training-plan hash (the pre-rename name)."""
    return _HASHED_KIND.get(canonical_kind(kind), kind)


# ------------------------------------------------------------- columns and metrics
GOLD = "gold"
"""The gold reward of a sample."""
RAW = "score/raw/"
"""Prefix: ``score/raw/<member>`` is a member's raw score."""
Z = "score/z/"
"""Prefix: ``score/z/<member>`` is a member's standardized score (its held-out mean and std)."""
ENS = "ens/"
"""Prefix: ``ens/<method label>`` is the ensemble aggregate under a method (``Aggregation.label``)."""
SPREAD = "ens/std"
"""The spread across members (std of the aggregated scores)."""
SPREAD_VAR = "ens/var"
SPREAD_RANGE = "ens/range"
SPREAD_COLUMNS = (SPREAD, SPREAD_VAR, SPREAD_RANGE)
FEATURE = "feature/"
"""Prefix: ``feature/<name>`` is a hacking feature of a sample (length, repetition, ...)."""
PROXY = "proxy"
"""In long tables with a ``method`` column (best-of-n curves): the aggregate under that row's method."""


def raw_col(member: str) -> str:
    return f"{RAW}{member}"


def z_col(member: str) -> str:
    return f"{Z}{member}"


def score_col(member: str, standardized: bool) -> str:
    """``score/z/<member>`` when the scores are standardized, else ``score/raw/<member>``."""
    return z_col(member) if standardized else raw_col(member)


def ens_col(label: str) -> str:
    """``ens/<label>``; ``label`` is :attr:`rewardherd.core.Aggregation.label`."""
    col = f"{ENS}{label}"
    if col in SPREAD_COLUMNS:
        raise ValueError(f"method label {label!r} would collide with the spread column {col!r}")
    return col


def feature_col(name: str) -> str:
    return f"{FEATURE}{name}"


def columns(prefix: str, names: Iterable[str]) -> list[str]:
    """The names that start with ``prefix``, in order."""
    return [c for c in names if c.startswith(prefix)]


def aggregate_columns(names: Iterable[str]) -> list[str]:
    """The ``ens/<label>`` columns among ``names`` (the spread columns excluded)."""
    return [c for c in names if c.startswith(ENS) and c not in SPREAD_COLUMNS]


def strip(prefix: str, col: str) -> str:
    """The member, method or feature name in ``col`` (``strip(Z, "score/z/m0") == "m0"``)."""
    if not col.startswith(prefix):
        raise ValueError(f"column {col!r} does not start with {prefix!r}")
    return col[len(prefix):]


#: Prefixes written by rewardherd before this schema (study pools and cells); a table
#: holding them comes from an older version.
LEGACY_PREFIXES = ("f/", "z/", "rm/")
