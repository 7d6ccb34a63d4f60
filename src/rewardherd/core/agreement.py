"""Agreement between ensemble members, and whether the spread predicts error.

Shape notation: scores (m, b) for m members on b samples.

- :func:`pairwise_kendall`: mean Kendall tau-b over member pairs (rank agreement).
- :func:`top1_agreement`: share of prompts where two members pick the same best
  candidate, averaged over member pairs.
- :func:`spearman`, :func:`auroc`: does the per-sample spread predict the
  proxy-gold gap / a bad gold outcome? AUROC is the Mann-Whitney statistic with
  ties counted as 1/2.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.stats import kendalltau, rankdata, spearmanr

from rewardherd.core.aggregate import as_scores, to_numpy


def pairwise_kendall(scores) -> float:
    """Mean Kendall tau-b between every pair of members (NaN with one member)."""
    s = as_scores(scores)
    taus = [kendalltau(s[i], s[j]).statistic for i, j in itertools.combinations(range(s.shape[0]), 2)]
    return float(np.nanmean(taus)) if taus else float("nan")


def mean_pairwise_kendall(scores) -> np.ndarray:
    """Vectorized :func:`pairwise_kendall` of (..., m >= 2, N >= 2) scores: (...) mean tau-b,
    NaN where a member is constant.

    tau-b between members i and j is sum_{k<l} s_i s_j / sqrt(sum s_i^2 sum s_j^2) with
    s_i = sign(x_i[k] - x_i[l]); the mean is over member pairs i < j."""
    x = to_numpy(scores)
    if x.ndim < 2 or x.shape[-2] < 2 or x.shape[-1] < 2:
        raise ValueError(f"scores must have shape (..., m >= 2, N >= 2); got {x.shape}")
    m, n = x.shape[-2:]
    iu = np.triu_indices(n, 1)
    sg = np.sign(x[..., :, :, None] - x[..., :, None, :])[..., iu[0], iu[1]]  # (..., m, pairs)
    num = np.einsum("...ip,...jp->...ij", sg, sg)  # (..., m, m)
    norm = np.sqrt(np.einsum("...ii->...i", num))  # (..., m)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = num / (norm[..., :, None] * norm[..., None, :])
    a, b = np.triu_indices(m, 1)
    return tau[..., a, b].mean(axis=-1)


def gaussian_copula_correlation(scores) -> np.ndarray:
    """(..., m, m) correlation of the Gaussian copula that matches the members' Spearman rho.

    R_ij = 2 sin(pi rho_s,ij / 6), exact for a Gaussian copula (Kruskal 1958); ranks make
    it invariant to each member's monotone rescaling. A constant member gives rho_s = 0."""
    x = to_numpy(scores)
    r = rankdata(x, axis=-1)
    r = r - r.mean(axis=-1, keepdims=True)
    cov = np.einsum("...in,...jn->...ij", r, r)
    sd = np.sqrt(np.einsum("...ii->...i", cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho_s = np.nan_to_num(cov / (sd[..., :, None] * sd[..., None, :]))
    return 2.0 * np.sin(np.pi * rho_s / 6.0)


def top1_agreement(scores) -> float:
    """Share of (member pair, prompt) where both members pick the same candidate, from
    (m, p, n) member scores of n candidates for each of p prompts."""
    s = to_numpy(scores)
    if s.ndim != 3:
        raise ValueError(f"scores must have shape (members, prompts, candidates); got {s.shape}")
    picks = np.argmax(s, axis=2)  # (m, p)
    pairs = list(itertools.combinations(range(s.shape[0]), 2))
    if not pairs:
        return float("nan")
    return float(np.mean([np.mean(picks[i] == picks[j]) for i, j in pairs]))


def spearman(x, y) -> float:
    """Spearman rank correlation of two (b,) arrays."""
    return float(spearmanr(to_numpy(x), to_numpy(y)).statistic)


def auroc(score, label) -> float:
    """Area under the ROC curve of ``score`` for the binary ``label`` (1 = positive)."""
    sc = to_numpy(score).reshape(-1)
    lab = np.asarray(label).reshape(-1).astype(bool)
    n_pos, n_neg = int(lab.sum()), int((~lab).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(sc)  # average ranks: ties count 1/2
    return float((ranks[lab].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
