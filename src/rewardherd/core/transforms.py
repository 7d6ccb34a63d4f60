"""Reward transforms applied before aggregation.

Shape notation: ``m`` members, ``b`` samples; scores are (m, b), per-member
statistics are (m,), per-sample references are (b,) or (m, b).

- :func:`standardize`: z_i = (r_i - mu_i) / sigma_i with each member's mean and
  std measured on the held-out responses of its training data (stored in the
  ensemble manifest). Makes members comparable before min / mean-minus-std /
  uncertainty-weighted aggregation.
- :func:`zscore`: the same with each row's own mean and std (ddof=0), for series
  standardized on themselves (gold over a pool, members within a prompt).
- :func:`log_sigmoid_centre`: u = log sigmoid(r - r_ref) (Wang et al., "Transforming
  and Combining Rewards", arXiv 2402.00742). ``r_ref`` is a per-prompt reference
  reward, e.g. the mean or a quantile of base-policy samples' rewards; choosing it
  is the caller's job.
- :func:`clip_reward`: r' = min(r - eta, 0) (Gao et al., arXiv 2410.15115, "Clip").
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_expit

from rewardherd.core.aggregate import as_scores, to_numpy


def standardize(scores, mean, std) -> np.ndarray:
    """``(scores - mean[:, None]) / std[:, None]``: (m, b) scores standardized with each
    member's stored (m,) statistics; every std must be > 0."""
    s = as_scores(scores)
    mu = np.asarray(mean, dtype=np.float64).reshape(-1)
    sd = np.asarray(std, dtype=np.float64).reshape(-1)
    if mu.shape[0] != s.shape[0] or sd.shape[0] != s.shape[0]:
        raise ValueError(
            f"standardization statistics have {mu.shape[0]} means and {sd.shape[0]} stds "
            f"for {s.shape[0]} members"
        )
    if not np.all(sd > 0) or not np.all(np.isfinite(sd)):
        raise ValueError(f"standardization stds must be finite and > 0; got {sd.tolist()}")
    return (s - mu[:, None]) / sd[:, None]


def member_statistics(scores, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-member ``(mean, std)``, each (m,), over the samples of (m, b) scores on a
    reference set (the statistics :func:`standardize` uses)."""
    s = as_scores(scores)
    if s.shape[1] < 2:
        raise ValueError("need at least 2 samples to measure a member's spread")
    return s.mean(axis=1), s.std(axis=1, ddof=ddof)


def zscore(scores) -> np.ndarray:
    """z-score each row of (m, b) on itself: :func:`standardize` with :func:`member_statistics`.

    Raises ValueError if a row is constant (its std is 0): there is no scale to divide by.
    A 1-D input is one row and comes back 1-D.
    """
    arr = to_numpy(scores)
    s = as_scores(arr)
    z = standardize(s, *member_statistics(s, ddof=0))
    return z[0] if arr.ndim == 1 else z


def log_sigmoid_centre(scores, reference) -> np.ndarray:
    """u = log sigmoid(r - r_ref) (always <= 0), computed stably; ``reference`` broadcasts
    to ``scores``: (b,) per-prompt references or (m, b)."""
    r = to_numpy(scores)
    ref = to_numpy(reference)
    return log_expit(r - ref)


def clip_reward(scores, eta: float) -> np.ndarray:
    """r' = min(r - eta, 0): rewards above ``eta`` earn nothing more."""
    r = to_numpy(scores)
    return np.minimum(r - float(eta), 0.0)
