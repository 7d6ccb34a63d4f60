"""Single-member diagnostics of a world: how well each proxy tracks gold, and what the
members' errors share beyond tracking it (docs/world.md, "Choosing a design").

Inputs are one rectangular pool: member scores (K, p, N) and gold (p, N) for p prompts
with N samples each. Nothing here aggregates members into an ensemble: every number is
a property of single members (or of pairs of them, for error sharing), so a world can be
chosen and its levels preregistered before any ensemble result exists.

- ``spearman``: per member, the mean over prompts of the within-prompt Spearman
  correlation with gold (prompts whose gold is constant are skipped).
- ``pool_accuracy``: per member, the share of disjoint within-prompt pairs (samples
  0-1, 2-3, ...) with different gold that the member orders like gold (score ties
  count one half): accuracy out of the preference data's distribution.
- ``curve``: per member, the unbiased best-of-n estimate of gold (:func:`.bon.bon_estimate`)
  at each n, averaged over prompts.
- ``residual`` and ``sharing``: :func:`.sharing.residual_error_sharing` and
  :func:`.sharing.error_sharing` within prompts (degenerate prompts dropped).

Departure: the peak of a curve is read from the same data as its drop, so the drop from
the peak is biased upwards a little (a maximum of noisy means); :func:`curve_shape`
reports its interval over prompts, which does not cover that selection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import rankdata

from rewardherd.core.aggregate import to_numpy
from rewardherd.core.bon import bon_estimate
from rewardherd.core.sharing import (
    ErrorSharing,
    error_sharing,
    mean_pairwise_correlation,
    residual_error_sharing,
    zscored,
)
from rewardherd.core.stats import Interval, paired_bootstrap, pigeonhole_bootstrap


@dataclass(frozen=True)
class MemberDiagnostics:
    """Single-member diagnostics of K members on one pool (definitions: module docstring)."""

    k: int
    n_prompts: int
    pool_size: int
    n_dropped_prompts: int  # prompts left out of the error decompositions (constant gold or member)
    spearman: tuple[float, ...]  # (K,)
    pool_accuracy: tuple[float, ...]  # (K,)
    ns: tuple[int, ...]
    curve: tuple[tuple[float, ...], ...]  # (K, len(ns))
    residual: ErrorSharing
    sharing: ErrorSharing

    @property
    def mean_spearman(self) -> float:
        return float(np.mean(self.spearman))

    @property
    def mean_curve(self) -> np.ndarray:
        """(len(ns),): the single-member curve, averaged over members."""
        return np.asarray(self.curve, dtype=np.float64).mean(axis=0)

    @property
    def peak_n(self) -> int:
        """The n at which the members' mean curve is highest (the smallest such n)."""
        return int(self.ns[int(np.argmax(self.mean_curve))])

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(residual=self.residual.as_dict(), sharing=self.sharing.as_dict(),
                 mean_spearman=self.mean_spearman, peak_n=self.peak_n,
                 mean_curve=self.mean_curve.tolist())
        return d


def _check_pool(scores, gold) -> tuple[np.ndarray, np.ndarray]:
    s, g = to_numpy(scores), to_numpy(gold)
    if s.ndim != 3:
        raise ValueError(f"member scores must have shape (members, prompts, pool); got {s.shape}")
    if g.shape != s.shape[1:]:
        raise ValueError(f"gold must have shape (prompts, pool) = {s.shape[1:]}; got {g.shape}")
    if s.shape[0] < 2 or s.shape[2] < 2:
        raise ValueError(f"diagnostics need >= 2 members and >= 2 samples per prompt; got shape {s.shape}")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(g))):
        raise ValueError("member scores or gold contain NaN or infinite values")
    return s, g


def within_prompt_spearman(scores, gold) -> np.ndarray:
    """(K,): each member's mean within-prompt Spearman correlation with gold over the
    prompts where gold and the member are not constant (average ranks for ties)."""
    s, g = _check_pool(scores, gold)
    rs = rankdata(s, axis=2)
    rg = rankdata(g, axis=1)[None]
    rs, rg = rs - rs.mean(axis=2, keepdims=True), rg - rg.mean(axis=2, keepdims=True)
    den = np.sqrt((rs * rs).sum(axis=2) * (rg * rg).sum(axis=2))  # (K, p)
    ok = den > 0
    rho = np.where(ok, (rs * rg).sum(axis=2) / np.where(ok, den, 1.0), np.nan)
    if not ok.any(axis=1).all():
        raise ValueError("a member or gold is constant within every prompt")
    return np.nanmean(rho, axis=1)


def pool_pair_accuracy(scores, gold) -> np.ndarray:
    """(K,): share of disjoint within-prompt pairs (0-1, 2-3, ...) with different gold that
    each member orders like gold; a tied score counts one half."""
    s, g = _check_pool(scores, gold)
    m = (s.shape[2] // 2) * 2
    dg = g[:, 0:m:2] - g[:, 1:m:2]  # (p, m/2)
    ds = s[:, :, 0:m:2] - s[:, :, 1:m:2]  # (K, p, m/2)
    keep = dg != 0
    if not keep.any():
        raise ValueError("every pool pair has equal gold")
    agree = np.where(ds == 0, 0.5, (np.sign(ds) == np.sign(dg)[None]).astype(np.float64))
    return agree[:, keep].mean(axis=1)


def _prompt_residuals(s: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residuals (p', K, N) of the z-scored members on z-scored gold within each kept
    prompt, slopes fitted on all kept prompts together; and kept (p,) bool."""
    k, p, n = s.shape
    blocks, kept = [], np.zeros(p, dtype=bool)
    for j in range(p):
        try:
            blocks.append(zscored(s[:, j], g[j])[0])  # (K + 1, N)
        except ValueError:
            continue
        kept[j] = True
    if not blocks:
        raise ValueError("no prompt could be z-scored (constant gold or member in every prompt)")
    z = np.stack(blocks)  # (p', K + 1, N)
    members, zg = z[:, :-1], z[:, -1:]
    beta = (members * zg).sum(axis=(0, 2)) / (zg * zg).sum()  # (K,)
    return members - beta[None, :, None] * zg, kept


def prompt_residual_covariances(scores, gold) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt sums of outer products of the members' residual errors, the sufficient
    statistics of :func:`.sharing.residual_error_sharing` within prompts.

    Returns ``(cov, kept)``: cov (p', K, K), each prompt's R R^T / (p' N) so that their
    sum is the residuals' covariance; kept (p,) bool, the prompts that could be z-scored
    (gold and every member non-constant). Members' slopes on gold are fitted on all kept
    prompts together, as in :func:`.sharing.residual_error_sharing`."""
    s, g = _check_pool(scores, gold)
    r, kept = _prompt_residuals(s, g)
    return np.einsum("pkn,pln->pkl", r, r) / (r.shape[0] * r.shape[2]), kept


def _within_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pooled within-prompt correlation of two (p, N) arrays (each centred per prompt)."""
    a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def shared_residual_features(scores, gold, features) -> dict[str, dict[str, float]]:
    """What the members' shared residual error is made of: for each named feature (p, N)
    of the pool, the pooled within-prompt correlation of the members' mean residual (the
    residuals of :func:`prompt_residual_covariances`, averaged over members: the part
    averaging cannot cancel) with the feature (``shared_residual``), beside gold's
    (``gold``), over the prompts that could be z-scored. A feature constant everywhere
    gives NaN. E.g. members over-rewarding length show a positive ``shared_residual`` on
    the response length whatever gold's own correlation with it."""
    s, g = _check_pool(scores, gold)
    r, kept = _prompt_residuals(s, g)
    shared, gk = r.mean(axis=1), g[kept]  # (p', N)
    out = {}
    for name, values in features.items():
        f = to_numpy(values)
        if f.shape != g.shape:
            raise ValueError(f"feature {name!r} must have shape (prompts, pool) = {g.shape}; got {f.shape}")
        if not np.all(np.isfinite(f)):
            raise ValueError(f"feature {name!r} contains NaN or infinite values")
        out[name] = {"shared_residual": _within_correlation(shared, f[kept]), "gold": _within_correlation(gk, f[kept])}
    return out


def member_diagnostics(scores, gold, ns) -> MemberDiagnostics:
    """Every single-member diagnostic of K members on one pool (module docstring)."""
    s, g = _check_pool(scores, gold)
    k, p, n = s.shape
    groups = np.repeat(np.arange(p), n)
    flat, gflat = s.reshape(k, -1), g.reshape(-1)
    residual = residual_error_sharing(flat, gflat, groups=groups, degenerate="drop")
    sharing = error_sharing(flat, gflat, groups=groups, degenerate="drop")
    curve = np.stack([bon_estimate(s[i], g, ns).mean(axis=0) for i in range(k)])
    return MemberDiagnostics(
        k=k, n_prompts=p, pool_size=n, n_dropped_prompts=residual.n_dropped // n,
        spearman=tuple(float(x) for x in within_prompt_spearman(s, g)),
        pool_accuracy=tuple(float(x) for x in pool_pair_accuracy(s, g)),
        ns=tuple(int(x) for x in ns), curve=tuple(tuple(float(v) for v in row) for row in curve),
        residual=residual, sharing=sharing)


@dataclass(frozen=True)
class CurveShape:
    """Where the members' mean best-of-n gold curve peaks, and how far it rises and falls."""

    peak_n: int
    gain: Interval  # curve(peak) - curve(n = 1), over prompts
    drop: Interval  # curve(peak) - curve(n_max), over prompts

    def as_dict(self) -> dict:
        return {"peak_n": self.peak_n, "gain": self.gain.as_dict(), "drop": self.drop.as_dict()}


def curve_shape(scores, gold, ns, n_boot: int = 1000, seed: int = 0) -> CurveShape:
    """Peak, rise and fall of the single-member curve (members averaged), with percentile
    bootstrap intervals over prompts (they do not cover the choice of the peak)."""
    s, g = _check_pool(scores, gold)
    ns = [int(x) for x in ns]
    if ns[0] != 1:
        raise ValueError(f"the n grid must start at 1; got {ns[:3]}")
    per_prompt = np.mean([bon_estimate(s[i], g, ns) for i in range(s.shape[0])], axis=0)  # (p, g)
    j = int(np.argmax(per_prompt.mean(axis=0)))
    return CurveShape(peak_n=ns[j],
                      gain=paired_bootstrap(per_prompt[:, j] - per_prompt[:, 0], n_boot=n_boot, seed=seed),
                      drop=paired_bootstrap(per_prompt[:, j] - per_prompt[:, -1], n_boot=n_boot, seed=seed))


def residual_correlation_difference(a, b, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> Interval:
    """Mean over seeds of residual rho_bar(a_s) - rho_bar(b_s), with a pigeonhole bootstrap
    over seeds and prompts (seeds and prompts resampled independently).

    ``a``, ``b``: per seed s, the (p, K, K) per-prompt covariances of
    :func:`prompt_residual_covariances` for two groups of members (e.g. pretrain- and
    fine-tune-seed) on the same p prompts (pass the prompts kept in both). The interval
    covers seeds (backbone draws and fine-tuning seeds) and prompts, not world builds, and
    keeps each member's slope on gold fixed (a second-order omission)."""
    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if va.ndim != 4 or va.shape[:2] != vb.shape[:2]:
        raise ValueError(f"a and b must be (seeds, prompts, K, K) on the same seeds and prompts; got {va.shape}, "
                         f"{vb.shape}")
    ka = va.shape[2]
    both = np.concatenate([va.reshape(*va.shape[:2], -1), vb.reshape(*vb.shape[:2], -1)], axis=2)

    def stat(v: np.ndarray) -> float:
        ca = v[..., :ka * ka].sum(axis=1).reshape(v.shape[0], ka, ka)
        cb = v[..., ka * ka:].sum(axis=1).reshape(v.shape[0], vb.shape[2], vb.shape[2])
        return float(np.mean(mean_pairwise_correlation(ca) - mean_pairwise_correlation(cb)))

    boots = pigeonhole_bootstrap(both, stat, n_boot=n_boot, seed=seed)
    q = (1.0 - level) / 2.0
    lo, hi = np.quantile(boots, [q, 1.0 - q])
    return Interval(stat(both), float(lo), float(hi), level, n_boot, "pigeonhole_bootstrap")
