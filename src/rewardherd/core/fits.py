"""Over-optimization curve fits (Gao, Schulman, Hilton 2022, arXiv 2210.10760).

With d = sqrt(KL) and the gold reward re-centred so that R(0) = 0:

- best-of-n: R(d) = d (alpha - beta d),       peak d* = alpha / (2 beta)
- RL:        R(d) = d (alpha - beta log d),   peak d* = exp(alpha / beta - 1)

Both are linear in (alpha, beta); we still fit them with scipy's least squares (as
SCIENCE.md asks) so robust losses can be swapped in. The peak is ``None`` when
beta <= 0 (the fitted curve does not turn down). RL points with d = 0 contribute
R = 0 exactly (d log d -> 0).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy.optimize import least_squares

from rewardherd.core.aggregate import to_numpy

Form = Literal["bon", "rl"]


@dataclass(frozen=True)
class GaoFit:
    form: str
    alpha: float
    beta: float
    r2: float
    peak_d: float | None
    peak_reward: float | None
    n_points: int

    def predict(self, d) -> np.ndarray:
        return gao_curve(d, self.alpha, self.beta, self.form)

    def as_dict(self) -> dict:
        return asdict(self)


def gao_curve(d, alpha: float, beta: float, form: Form) -> np.ndarray:
    """R(d) for the best-of-n ("bon") or RL ("rl") functional form."""
    d = to_numpy(d)
    if np.any(d < 0):
        raise ValueError("d = sqrt(KL) must be >= 0")
    if form == "bon":
        return d * (alpha - beta * d)
    if form == "rl":
        with np.errstate(divide="ignore", invalid="ignore"):
            dlogd = np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)
        return alpha * d - beta * dlogd
    raise ValueError(f"unknown form {form!r}; choose 'bon' or 'rl'")


def fit_gao(d, reward, form: Form) -> GaoFit:
    """Least-squares fit of a Gao et al. curve to ``d`` (k,) sqrt(KL) >= 0 and ``reward`` (k,),
    re-centred so R(0) = 0; ``form`` is "bon" or "rl"."""
    d = to_numpy(d).reshape(-1)
    y = to_numpy(reward).reshape(-1)
    if d.shape != y.shape:
        raise ValueError(f"d {d.shape} and reward {y.shape} differ")
    if d.shape[0] < 2:
        raise ValueError("need at least 2 points to fit 2 coefficients")
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(y))):
        raise ValueError("d and reward must be finite")
    res = least_squares(lambda p: gao_curve(d, p[0], p[1], form) - y, x0=np.array([1.0, 0.1]))
    alpha, beta = (float(v) for v in res.x)
    pred = gao_curve(d, alpha, beta, form)
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    peak_d: float | None = None
    if beta > 0:
        with np.errstate(over="ignore"):
            peak_d = alpha / (2 * beta) if form == "bon" else float(np.exp(alpha / beta - 1.0))
    if peak_d is not None and not (np.isfinite(peak_d) and peak_d >= 0):
        peak_d = None  # the fitted curve has no finite turning point in d >= 0
    peak_r = float(gao_curve(np.array([peak_d]), alpha, beta, form)[0]) if peak_d is not None else None
    return GaoFit(form, alpha, beta, r2, peak_d, peak_r, int(d.shape[0]))


def fit_gao_batch(d, rewards, form: Form) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form least squares of many Gao curves at once (bootstraps): alpha, beta (B,).

    Both forms are linear in (alpha, beta): R = alpha * x1 - beta * x2 with x1 = d and
    x2 = d^2 (bon) or d log d (rl), so the normal equations give :func:`fit_gao`'s optimum
    (a test checks it). ``d`` (k,) >= 0; ``rewards`` (B, k) re-centred curves."""
    d = to_numpy(d).reshape(-1)
    y = to_numpy(rewards)
    if y.ndim == 1:
        y = y[None, :]
    if y.shape[1] != d.shape[0] or d.shape[0] < 2:
        raise ValueError(f"rewards must have shape (B, {d.shape[0]}) with >= 2 points; got {y.shape}")
    x1 = gao_curve(d, 1.0, 0.0, form)
    x2 = -gao_curve(d, 0.0, 1.0, form)  # d^2 or d log d
    X = np.stack([x1, -x2], axis=1)  # (k, 2)
    coef, *_ = np.linalg.lstsq(X, y.T, rcond=None)  # (2, B)
    return coef[0], coef[1]


def fit_gao_pigeonhole(gold, kl, form: Form = "rl", n_boot: int = 1000, seed: int = 0,
                       level: float = 0.95) -> dict:
    """Gao's curve fitted to per-(seed, prompt) evaluation curves, with a pigeonhole-bootstrap interval.

    ``gold`` and ``kl``: (S, P, T) gold and KL of each seed's run on each prompt at its T
    evaluation points (point 0: the reference policy). The fitted curve is the mean over
    seeds and prompts of gold re-centred on point 0 against d = sqrt(mean KL, clipped at
    0); seeds and prompts are resampled independently (:func:`rewardherd.core.stats.pigeonhole_bootstrap`)
    and the fit recomputed on each table. Returns :meth:`GaoFit.as_dict` plus ``alpha_low``,
    ``alpha_high``, ``beta_low``, ``beta_high``, ``peak_d_low``, ``peak_d_high`` (quantiles
    of the replicates; a replicate without a turning point has peak inf) and ``n_boot``.
    """
    from rewardherd.core.stats import pigeonhole_bootstrap

    g, k = to_numpy(gold), to_numpy(kl)
    if g.ndim != 3 or g.shape != k.shape or g.shape[2] < 2:
        raise ValueError(f"gold and kl must have one shape (seeds, prompts, T >= 2); got {g.shape} and {k.shape}")
    y = g - g[..., :1]

    def curve(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.sqrt(np.clip(v[..., 1].mean(axis=(0, 1)), 0.0, None)), v[..., 0].mean(axis=(0, 1))

    def stat(v: np.ndarray) -> np.ndarray:
        d, r = curve(v)
        a, b = fit_gao_batch(d, r[None, :], form)
        with np.errstate(over="ignore", divide="ignore"):
            peak = (a[0] / (2 * b[0]) if form == "bon" else np.exp(a[0] / b[0] - 1.0)) if b[0] > 0 else np.inf
        return np.array([a[0], b[0], peak])

    both = np.stack([y, k], axis=-1)  # (S, P, T, 2)
    fit = fit_gao(*curve(both), form)
    boots = pigeonhole_bootstrap(both, stat, n_boot=n_boot, seed=seed)
    q = [(1 - level) / 2, (1 + level) / 2]
    lo, hi = np.quantile(boots, q, axis=0, method="inverted_cdf")
    return {**fit.as_dict(), "alpha_low": float(lo[0]), "alpha_high": float(hi[0]), "beta_low": float(lo[1]),
            "beta_high": float(hi[1]), "peak_d_low": float(lo[2]), "peak_d_high": float(hi[2]), "n_boot": n_boot}
