"""Shared and idiosyncratic error of ensemble members (SCIENCE.md section 10).

Member and gold scores (K, b) and (b,) are z-scored on one reference set (optionally
within groups, e.g. prompts); member i's error is e_i = z_i - z_gold, and the K x K
error covariance splits into a shared part C (mean pairwise covariance) and an
idiosyncratic part V - C. Definitions, identities and the preference-pair variants:
docs/error_sharing.md. Departure: population (ddof=0) statistics throughout.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from rewardherd.core.aggregate import as_scores, to_numpy
from rewardherd.core.transforms import zscore

Degenerate = Literal["error", "drop"]

#: A z-scored series whose std is at most this times its largest magnitude is treated
#: as constant (rounding makes the std of equal floats tiny rather than 0).
CONSTANT_RTOL = 1e-12


@dataclass(frozen=True)
class ErrorSharing:
    """Decomposition of K members' errors into shared and idiosyncratic variance
    (definitions and identities: docs/error_sharing.md)."""

    k: int  # members
    n_samples: int  # samples (or pairs) measured, after any dropped groups
    n_groups: int | None  # groups measured (None: z-scored over all samples at once)
    n_dropped: int  # samples in dropped groups (degenerate="drop")
    member_variance: tuple[float, ...]  # (K,) Sigma_ii
    mean_member_variance: float  # V
    shared_variance: float  # C = mean pairwise covariance
    idiosyncratic_variance: float  # V - C
    shared_covariance_fraction: float  # C / V
    rho_bar: float  # mean pairwise correlation of errors
    mean_error_variance: float  # var(e_bar) = C + (V - C) / K
    shared_fraction: float  # var(e_bar) / V = C/V + (1 - C/V) / K

    def predicted_variance(self, k: int) -> float:
        """Predicted error variance of the mean of ``k`` members: C + (V - C) / k."""
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer; got {k!r}")
        return self.shared_variance + self.idiosyncratic_variance / int(k)

    def predicted_shared_fraction(self, k: int) -> float:
        """``shared_fraction`` an ensemble of ``k`` such members would show."""
        return self.predicted_variance(k) / self.mean_member_variance

    def as_dict(self) -> dict:
        """Plain-python dict (JSON-ready); ``member_variance`` as a list."""
        d = asdict(self)
        d["member_variance"] = list(self.member_variance)
        return d


def _is_constant(x: np.ndarray, scale=None) -> np.ndarray:
    """Per row of (r, n): True where the row's spread is zero up to rounding.

    ``scale``: the magnitude the spread is compared with; default each row's max |x|.
    """
    if scale is None:
        scale = np.max(np.abs(x), axis=1)
    return x.std(axis=1) <= CONSTANT_RTOL * np.maximum(scale, np.finfo(np.float64).tiny)


def _check_inputs(scores, gold, name: str) -> tuple[np.ndarray, np.ndarray]:
    p = f"{name} " if name else ""
    s = as_scores(scores)
    g = to_numpy(gold)
    if g.ndim != 1:
        raise ValueError(f"{p}gold must be 1-D (b,); got shape {g.shape}")
    if s.shape[1] != g.shape[0]:
        raise ValueError(f"{p}scores have {s.shape[1]} samples but gold has {g.shape[0]}")
    if s.shape[0] < 2:
        raise ValueError(f"error sharing needs at least 2 members; got K={s.shape[0]}")
    if s.shape[1] < 2:
        raise ValueError(f"error sharing needs at least 2 samples; got {s.shape[1]}")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{p}member scores contain NaN or infinite values")
    if not np.all(np.isfinite(g)):
        raise ValueError(f"{p}gold scores contain NaN or infinite values")
    return s, g


def member_errors(scores, gold, *, groups=None, degenerate: Degenerate = "error"):
    """Per-member errors e_i = z_i - z_gold on one reference set.

    ``scores`` (K, b) may be raw or standardized (z-scoring makes them equal); ``gold`` is
    (b,). With ``groups`` (b,) every member and gold are z-scored within each group, and a
    group that cannot be (one sample, or a constant member or gold) raises
    (``degenerate="error"``) or is left out and counted (``"drop"``). Without groups a
    constant member or gold is always an error.

    Returns ``(errors, n_groups, n_dropped)``: errors (K, b') over the kept samples in group
    order (input order without groups), groups kept (None without groups), samples dropped."""
    z, n_groups, n_dropped = zscored(scores, gold, groups=groups, degenerate=degenerate)
    return z[:-1] - z[-1], n_groups, n_dropped


def zscored(scores, gold, *, groups=None, degenerate: Degenerate = "error"):
    """Members and gold z-scored on one reference set, stacked (K + 1, b'): members, then gold.

    Arguments and the returned ``(z, n_groups, n_dropped)`` as in :func:`member_errors`."""
    s, g = _check_inputs(scores, gold, "")
    if degenerate not in ("error", "drop"):
        raise ValueError(f"degenerate must be 'error' or 'drop'; got {degenerate!r}")
    block = np.vstack([s, g[None, :]])  # (K + 1, b): members, then gold
    names = [f"member {i}" for i in range(s.shape[0])] + ["gold"]
    if groups is None:
        const = _is_constant(block)
        if const.any():
            bad = [n for n, c in zip(names, const, strict=True) if c]
            raise ValueError(f"cannot z-score: {', '.join(bad)} constant over all {s.shape[1]} samples")
        return zscore(block), None, 0  # (K + 1, b)
    gid = np.asarray(groups)
    if gid.ndim != 1 or gid.shape[0] != s.shape[1]:
        raise ValueError(f"groups must be 1-D with one id per sample ({s.shape[1]}); got shape {gid.shape}")
    if gid.dtype.kind == "f" and not np.all(np.isfinite(gid)):
        raise ValueError("groups contain NaN or infinite ids")
    _, inverse, counts = np.unique(gid, return_inverse=True, return_counts=True)
    order = np.argsort(inverse.reshape(-1), kind="stable")  # samples of group 0, then group 1, ...
    errs, kept, dropped = [], 0, 0
    for idx in np.split(order, np.cumsum(counts)[:-1]):
        sub = block[:, idx]
        why = None
        if idx.size < 2:
            why = "has a single sample"
        else:
            const = _is_constant(sub)
            if const.any():
                why = "has constant " + ", ".join(n for n, c in zip(names, const, strict=True) if c)
        if why is not None:
            if degenerate == "error":
                label = gid[idx[0]].item() if hasattr(gid[idx[0]], "item") else gid[idx[0]]
                raise ValueError(f"group {label!r} {why}, so it cannot be z-scored within the group; "
                                 "pass degenerate='drop' to leave such groups out")
            dropped += idx.size
            continue
        errs.append(zscore(sub))
        kept += 1
    if not errs:
        raise ValueError(f"no group could be z-scored ({dropped} samples dropped: single-sample or constant groups)")
    return np.hstack(errs), kept, dropped


def mean_pairwise_correlation(cov) -> np.ndarray:
    """Mean over pairs i < j of cov_ij / sqrt(cov_ii cov_jj) for (..., K, K) covariances, K >= 2."""
    c = np.asarray(cov, dtype=np.float64)
    if c.ndim < 2 or c.shape[-1] != c.shape[-2] or c.shape[-1] < 2:
        raise ValueError(f"covariances must have shape (..., K, K) with K >= 2; got {c.shape}")
    d = np.sqrt(np.diagonal(c, axis1=-2, axis2=-1))  # (..., K)
    i, j = np.triu_indices(c.shape[-1], k=1)
    return (c[..., i, j] / (d[..., i] * d[..., j])).mean(axis=-1)


def decompose_errors(errors, *, scale: float | None = None, n_groups: int | None = None,
                     n_dropped: int = 0) -> ErrorSharing:
    """Shared / idiosyncratic decomposition of a (K, b) error matrix (no z-scoring).

    ``errors``: K >= 2, b >= 2, finite, no member's errors constant (spread <= 1e-12 *
    ``scale``; default scale the largest |error|, z-scored errors use 1).
    ``n_groups``, ``n_dropped``: bookkeeping copied into the result."""
    e = as_scores(errors)
    k, b = e.shape
    if k < 2:
        raise ValueError(f"error sharing needs at least 2 members; got K={k}")
    if b < 2:
        raise ValueError(f"error sharing needs at least 2 samples; got {b}")
    if not np.all(np.isfinite(e)):
        raise ValueError("errors contain NaN or infinite values")
    cov = np.cov(e, ddof=0)  # (K, K)
    var = np.diag(cov).copy()
    flat = _is_constant(e, float(np.max(np.abs(e))) if scale is None else float(scale)) | (var <= 0)
    if flat.any():
        raise ValueError(f"member(s) {np.flatnonzero(flat).tolist()} have constant errors on these samples (e.g. a "
                         "member equal to gold up to an affine map, or one never wrong), so error correlations are "
                         "undefined")
    v = float(var.mean())
    pairs = list(itertools.combinations(range(k), 2))
    c = float(np.mean([cov[i, j] for i, j in pairs]))
    rho = float(mean_pairwise_correlation(cov))
    mean_var = float(e.mean(axis=0).var())
    return ErrorSharing(
        k=k, n_samples=b, n_groups=n_groups, n_dropped=int(n_dropped),
        member_variance=tuple(float(x) for x in var), mean_member_variance=v,
        shared_variance=c, idiosyncratic_variance=v - c, shared_covariance_fraction=c / v, rho_bar=rho,
        mean_error_variance=mean_var, shared_fraction=mean_var / v,
    )


def error_sharing(scores, gold, *, groups=None, degenerate: Degenerate = "error") -> ErrorSharing:
    """How much of the members' error vs gold is shared by all of them.

    ``scores`` (K, b), K >= 2, raw or standardized alike; ``gold`` (b,); ``groups`` and
    ``degenerate`` as in :func:`member_errors`."""
    e, n_groups, n_dropped = member_errors(scores, gold, groups=groups, degenerate=degenerate)
    return decompose_errors(e, scale=1.0, n_groups=n_groups, n_dropped=n_dropped)  # z units


def residual_error_sharing(scores, gold, *, groups=None, degenerate: Degenerate = "error") -> ErrorSharing:
    """Error sharing with gold's part regressed out of each member: what members share
    beyond tracking gold.

    With z-scored members z_i and gold z_g (as in :func:`error_sharing`), member i's residual
    is z_i - beta_i z_g with beta_i = mean(z_i z_g) (its least-squares slope on gold; z_g
    has mean 0 and variance 1). The decomposition of these residuals separates the two
    things that :func:`error_sharing`'s rho_bar mixes: members that barely track gold share
    the error "misses gold" whatever else they do (for within-prompt z-scores,
    rho_bar = (c - 2r + 1) / (2 - 2r) with c the members' mutual and r their gold
    correlation), while the residual rho_bar is their correlation once gold is removed.
    Example: z_i = r g + sqrt(1 - r^2) (sqrt(q) s + sqrt(1 - q) u_i) with s shared and u_i
    private noise gives a residual rho_bar of q whatever r is. Returns an
    :class:`ErrorSharing` of the residuals."""
    z, n_groups, n_dropped = zscored(scores, gold, groups=groups, degenerate=degenerate)
    members, g = z[:-1], z[-1]
    beta = (members * g).mean(axis=1, keepdims=True) / (g * g).mean()  # (K, 1)
    return decompose_errors(members - beta * g, scale=1.0, n_groups=n_groups, n_dropped=n_dropped)


def margin_error_sharing(chosen, rejected, gold_chosen, gold_rejected) -> ErrorSharing:
    """Error sharing on preference pairs when gold scores exist for both sides.

    Each pair is one sample scored by its margin, d_i = r_i(chosen) - r_i(rejected) and
    d_gold likewise, z-scored across pairs as in :func:`error_sharing`. ``chosen`` and
    ``rejected`` are (K, b) member scores, ``gold_chosen`` and ``gold_rejected`` (b,)."""
    c, gc = _check_inputs(chosen, gold_chosen, "chosen")
    r, gr = _check_inputs(rejected, gold_rejected, "rejected")
    if c.shape != r.shape:
        raise ValueError(f"chosen scores have shape {c.shape} but rejected {r.shape}")
    return error_sharing(c - r, gc - gr)


def label_error_sharing(chosen, rejected) -> ErrorSharing:
    """Error sharing on preference pairs with labels only (no gold scores).

    Member i's error on a pair is 1 if it scores the labelled-rejected response higher,
    1/2 on a tie, else 0: a 0/1 error, so ``mean_member_variance`` is the mean of
    p_i (1 - p_i) with p_i member i's error rate. ``chosen``, ``rejected``: (K, b)."""
    c = as_scores(chosen)
    r = as_scores(rejected)
    if c.shape != r.shape:
        raise ValueError(f"chosen scores have shape {c.shape} but rejected {r.shape}")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(r))):
        raise ValueError("member scores contain NaN or infinite values")
    d = c - r
    wrong = np.where(d < 0, 1.0, np.where(d == 0, 0.5, 0.0))
    return decompose_errors(wrong, scale=1.0)
