"""The papers' claims as named decision rules over tidy arrays.

Each function takes plain arrays (seeds first, then prompts), computes one quantity
per (seed, prompt), and returns a :class:`ClaimResult`: the estimate, its interval,
the verdict, the rule in words, and which sources of variance the interval covers.
"C1".."C6" are report labels only.

Intervals: :func:`rewardherd.core.crossed_interval` (seeds x prompts, crossed) for
means, :func:`rewardherd.core.pigeonhole_bootstrap` for the curve fit. Verdicts:
:func:`rewardherd.core.decide` (reproduced when the interval excludes 0 in the claimed
direction, not reproduced when it excludes 0 the other way, else inconclusive).

Every rule has a valid null, checked by simulation at the study's size
(``benchmarks/claims_calibration.py``, :mod:`rewardherd.studies.calibration`):

- Agreement under selection is compared with what a Gaussian copula with the same
  whole-pool rank agreement predicts under the same selection (selecting on the
  members' own mean lowers their agreement by itself: Berkson's paradox).
- Cross-member transfer is compared with what each pair's whole-pool regression
  slope predicts (members gain in proportion to their correlation under the null).
- Peaks are chosen on one half of the prompts and tested on the other, never on the
  data they are tested on (an argmax peak minus the end is >= 0 by construction).
- Ensembles are compared with the average of their own members.
- The Gao form needs alpha > 0, beta > 0, a fitted peak inside the tested range, and a
  real turn-down on held-out prompts (a saturating gold fits beta > 0 too).

Shape notation: S seeds, P prompts, K members, N pool samples per prompt, G points of
the best-of-n grid.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field

import numpy as np

from rewardherd import core


@dataclass(frozen=True)
class ClaimSpec:
    """One claim rule: what the study applies and its calibration simulates, read by both.

    The study (:func:`rewardherd.studies.analysis.claim_results`) and the calibration
    (:func:`rewardherd.studies.calibration.run_once`) call a rule only through
    :func:`apply`, which passes ``params``; so the false-positive rate next to a verdict is
    measured for exactly the rule that gave it. ``version`` keys this rule's cached
    calibration cells alone: bump it when the rule's meaning changes.
    """

    name: str
    """The claim function's name in this module."""
    label: str
    """Report label (C1..C6)."""
    direction: str
    """The claimed sign of the estimate: "positive" or "negative"."""
    rule: str
    """The rule in words (printed in the report)."""
    kinds: tuple[str, ...] = ("pretrain",)
    """The ensemble kinds whose members the study applies it to; its calibration simulates each."""
    params: dict = field(default_factory=dict)
    """Keyword parameters of the rule (e.g. simulation or bootstrap draws), the same in study and calibration."""
    version: int = 1


@dataclass(frozen=True)
class ClaimResult:
    """One claim's outcome on one comparison."""

    label: str
    """Report label (C1..C6)."""
    claim: str
    """Name of the claim function (its spec is SPECS[claim])."""
    comparison: str
    """What was compared, in words."""
    estimate: float
    low: float
    high: float
    verdict: str
    direction: str
    rule: str
    covers: str
    """Which sources of variance the interval covers, and which it does not."""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = asdict(self)
        extra = d.pop("extra")
        return {**d, **extra}


SPECS: dict[str, ClaimSpec] = {s.name: s for s in (
    ClaimSpec("underspecification", "C1", "negative", (
        "mean Kendall tau between the ensemble's members on each prompt's top samples (top N/n_max by the "
        "members' mean), minus the same statistic expected under a Gaussian copula with the members' "
        "whole-pool rank agreement and the same selection; claimed negative (members disagree on optimized "
        "outputs more than selection alone explains)."), params={"null_draws": 16}),
    ClaimSpec("cross_rm_transfer", "C2", "positive", (
        "optimize member i by best-of-n_max; for every other member j, the gain j's whole-pool regression on i "
        "predicts (slope x i's own gain) minus j's actual gain; claimed positive (optimizing one RM improves "
        "the others less than their correlation predicts).")),
    ClaimSpec("ensemble_vs_own_members", "C3", "positive", (
        "gold at n_max (fixed in advance) of the ensemble minus the average gold of its own K members, each "
        "optimized alone; claimed positive."), kinds=("finetune", "pretrain")),
    ClaimSpec("ensemble_vs_own_members_at_peak", "C3", "positive", (
        "each curve's peak n chosen on one half of the prompts (over every n, n_max included); on the other half, "
        "the ensemble's gold at its peak minus the average gold of its own K members (each optimized alone) at "
        "theirs; claimed positive."), kinds=("finetune", "pretrain")),
    ClaimSpec("pretrain_vs_finetune", "C3", "positive", (
        "gold at n_max of the pretrain-seed ensemble minus the fine-tune-seed ensemble (same method, seed, "
        "noise); claimed positive.")),
    ClaimSpec("residual_overoptimization", "C4", "positive", (
        "peak n chosen on one half of the prompts (among n < n_max), then on the other half gold at that n "
        "minus gold at n_max; claimed positive (the ensemble is still over-optimized).")),
    ClaimSpec("conservative_aggregation", "C5", "positive", (
        "peak-to-end gold drop of the ensemble's own members (average curve) minus that of the conservative "
        "ensemble, each peak chosen on one half of the prompts and the drops measured on the other; claimed "
        "positive."), kinds=("finetune", "pretrain")),
    ClaimSpec("gao_bon_form", "C6", "positive", (
        "fit R(d) = d (alpha - beta d) to the average member's re-centred gold vs d = sqrt(KL_bon); reproduced "
        "when the 95% pigeonhole-bootstrap intervals give alpha > 0, beta > 0 and a peak d* inside the tested "
        "range, and the held-out peak-to-end drop is significant; not reproduced when beta < 0 or gold "
        "significantly rises to the end."), params={"n_boot": 1000}),
    ClaimSpec("rpo_vs_dpo_drop", "C7", "positive", (
        "direct alignment at one beta on one training data: each objective's peak evaluation chosen on one half of "
        "the evaluation prompts (among evaluations before the last), then on the other half DPO's gold drop from "
        "its peak to the end minus RPO's; claimed positive (RPO's SFT term makes it drop less)."), kinds=("daa",)),
)}

#: The rule of each claim function, in words (printed in the report).
RULES: dict[str, str] = {name: spec.rule for name, spec in SPECS.items()}


def apply(name: str, *args, **kwargs) -> ClaimResult:
    """Apply claim rule ``name`` with its spec's parameters (:data:`SPECS`).

    The one way the study and the calibration call a rule. ``kwargs`` carry the call's
    own context (``comparison``, random ``seed``), never a rule parameter.
    """
    spec = SPECS[name]
    clash = sorted(set(kwargs) & set(spec.params))
    if clash:
        raise TypeError(f"{name}: {clash} are fixed by its ClaimSpec; change them there, for study and calibration")
    return getattr(sys.modules[__name__], name)(*args, **spec.params, **kwargs)


def covers(seeds: int, prompts: int, world: str = "one world build") -> str:
    """The sentence that says what an interval over (seeds, prompts) covers."""
    if seeds <= 1:
        return (f"{prompts} prompts only: one seed, so backbone draw, fine-tune seed and label-flip variance are "
                f"NOT covered; {world} (policy, preference data, pool) is fixed")
    return (f"{seeds} seeds x {prompts} prompts, crossed (each seed redraws backbones, fine-tune seeds and label "
            f"flips; prompts are shared by every seed); {world} (policy, preference data, pool) is fixed")


def _grid(values, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"{name} must have shape (seeds, prompts); got {v.shape}")
    return v


def _result(label: str, claim: str, comparison: str, values: np.ndarray, direction: str, **extra) -> ClaimResult:
    iv = core.crossed_interval(values)
    return ClaimResult(label, claim, comparison, iv.estimate, iv.low, iv.high, core.decide(iv, direction),
                       direction, SPECS[claim].rule, covers(*values.shape),
                       {"interval": iv.method, "df": iv.df, **extra})


def split_prompts(n_prompts: int, seed: int = 0) -> np.ndarray:
    """A fixed random half of the prompts, (P,) bool: True = the half that chooses peaks."""
    if n_prompts < 4:
        raise ValueError(f"need at least 4 prompts to split; got {n_prompts}")
    rng = np.random.default_rng(seed)
    mask = np.zeros(n_prompts, dtype=bool)
    mask[rng.permutation(n_prompts)[: n_prompts // 2]] = True
    return mask


# ------------------------------------------------------------------ C1
def _top_by_mean(z: np.ndarray, top: int) -> np.ndarray:
    """(..., K, N) -> (..., K, top): each prompt's top samples by the members' mean."""
    idx = np.argsort(-z.mean(axis=-2), axis=-1, kind="stable")[..., :top]  # (..., top)
    return np.take_along_axis(z, idx[..., None, :].repeat(z.shape[-2], axis=-2), axis=-1)


def underspecification(member_z, top: int, *, null_draws: int = 16, seed: int = 0,
                       comparison: str = "") -> ClaimResult:
    """C1: members agree less on optimized outputs than selection alone explains.

    Per (seed, prompt): tau on the top samples by the members' mean, minus its
    expectation under a Gaussian copula whose correlations reproduce the members'
    whole-pool Spearman correlations (R = 2 sin(pi rho_s / 6)), with the same selection, estimated
    from ``null_draws`` simulated pools. Prompts where a member is constant give 0.
    ``member_z``: (S, P, K, N) standardized pool scores; ``top``: samples kept per prompt
    (N // n_max).
    """
    z = np.asarray(member_z, dtype=np.float64)
    if z.ndim != 4 or z.shape[2] < 2:
        raise ValueError(f"member_z must have shape (seeds, prompts, K >= 2, N); got {z.shape}")
    S, P, K, N = z.shape
    if not 2 <= top <= N:
        raise ValueError(f"top must be in [2, N={N}]; got {top}")
    rng = np.random.default_rng(seed)
    out = np.zeros((S, P))
    undefined = 0
    for s in range(S):
        obs = core.mean_pairwise_kendall(_top_by_mean(z[s], top))  # (P,)
        R = core.gaussian_copula_correlation(z[s])  # (P, K, K)
        # PSD square root (an estimated R can be slightly indefinite; negative eigenvalues -> 0).
        w, V = np.linalg.eigh(R)
        root = V * np.sqrt(np.clip(w, 0.0, None))[..., None, :]  # (P, K, K)
        null = np.zeros(P)
        for _ in range(null_draws):
            x = root @ rng.standard_normal((P, K, N))  # (P, K, N)
            null += core.mean_pairwise_kendall(_top_by_mean(x, top)) / null_draws
        d = obs - null
        bad = ~np.isfinite(d)
        undefined += int(bad.sum())
        out[s] = np.where(bad, 0.0, d)
    return _result("C1", "underspecification", comparison or f"member agreement on top {top} of {N}, vs its "
                   "Gaussian-copula expectation", out, "negative", top=top, null_draws=null_draws,
                   undefined_cells=undefined)


# ------------------------------------------------------------------ C2
def cross_rm_transfer(member_z, n: int, *, comparison: str = "") -> ClaimResult:
    """C2: optimizing one member improves the others less than their correlation predicts.

    Per (seed, prompt), over ordered member pairs (i, j), i != j: with best-of-n
    weights w on the pool sorted by member i, own_i = sum w z_i - mean z_i and
    cross_ij = sum w z_j - mean z_j; the whole-pool slope b_ji = cov(z_i, z_j) / var(z_i)
    predicts cross_ij = b_ji own_i when j's mean given i is linear (e.g. Gaussian). The
    value is the mean of b_ji own_i - cross_ij. ``member_z``: (S, P, K, N) standardized
    pool scores; ``n``: the best-of-n size (n_max).
    """
    z = np.asarray(member_z, dtype=np.float64)
    if z.ndim != 4 or z.shape[2] < 2:
        raise ValueError(f"member_z must have shape (seeds, prompts, K >= 2, N); got {z.shape}")
    S, P, K, N = z.shape
    w = core.bon_weights(N, [n])[0]  # (N,) ascending ranks
    zc = z - z.mean(axis=-1, keepdims=True)
    cov = np.einsum("spin,spjn->spij", zc, zc) / N  # (S, P, K, K)
    var = np.einsum("spii->spi", cov)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = cov / var[..., :, None]  # slope[i, j] = cov(i, j) / var(i)
    order = np.argsort(z, axis=-1, kind="stable")  # (S, P, K, N) by each member
    # gained[s, p, i, j] = sum_r w_r zc_j[order_i[r]]
    gathered = np.take_along_axis(zc[:, :, None, :, :], order[:, :, :, None, :], axis=-1)  # (S,P,Ki,Kj,N)
    gained = gathered @ w  # (S, P, K, K)
    own = np.einsum("spii->spi", gained)
    pred = slope * own[..., :, None]
    off = ~np.eye(K, dtype=bool)
    diff = (pred - gained)[..., off]  # (S, P, K(K-1))
    bad = ~np.all(np.isfinite(diff), axis=-1)
    values = np.where(bad, 0.0, np.nan_to_num(diff).mean(axis=-1))
    return _result("C2", "cross_rm_transfer", comparison or f"predicted minus actual cross-member gain at n={n}",
                   values, "positive", n=n, own_gain=float(np.nanmean(own)),
                   cross_gain=float(np.nanmean(gained[..., off])), undefined_cells=int(bad.sum()))


# ------------------------------------------------------------------ C3
def ensemble_vs_own_members(ensemble, members, *, comparison: str = "") -> ClaimResult:
    """C3: an ensemble beats the average of its own members at a fixed n.

    ``ensemble``: (S, P) expected gold of its best-of-n_max pick; ``members``: (S, K, P)
    the same for each of its K members optimized alone.
    """
    e = _grid(ensemble, "ensemble")
    m = np.asarray(members, dtype=np.float64)
    if m.ndim != 3 or m.shape[0] != e.shape[0] or m.shape[2] != e.shape[1]:
        raise ValueError(f"members must have shape (seeds, K, prompts) matching {e.shape}; got {m.shape}")
    per_member = m.mean(axis=2).mean(axis=0)  # (K,) over seeds: member slot k
    return _result("C3", "ensemble_vs_own_members", comparison or "ensemble minus its own members' average",
                   e - m.mean(axis=1), "positive", ensemble_gold=float(e.mean()),
                   members_gold=float(m.mean()), best_member_gold=float(m.mean(axis=2).max(axis=1).mean()),
                   worst_member_gold=float(m.mean(axis=2).min(axis=1).mean()),
                   member_slots=[float(x) for x in per_member])


def pretrain_vs_finetune(pretrain, finetune, *, comparison: str = "") -> ClaimResult:
    """C3: a pretrain-seed ensemble beats a fine-tune-seed ensemble at a fixed n.

    ``pretrain``, ``finetune``: (S, P) gold at n_max of each ensemble (same method).
    """
    a, b = _grid(pretrain, "pretrain"), _grid(finetune, "finetune")
    if a.shape != b.shape:
        raise ValueError(f"pretrain {a.shape} and finetune {b.shape} differ")
    return _result("C3", "pretrain_vs_finetune", comparison or "pretrain minus finetune ensemble", a - b,
                   "positive", pretrain_gold=float(a.mean()), finetune_gold=float(b.mean()))


def ensemble_vs_own_members_at_peak(members_curve, ensemble_curve, ns, select, *, comparison: str = "") -> ClaimResult:
    """C3 at each curve's peak: an ensemble's best gold beats its own members' best.

    Curves (S, P, G): the average of the ensemble's own members (each optimized alone) and
    the ensemble's, at each n of ``ns``; ``select``: (P,) the prompts that choose each
    curve's peak (over every n, n_max included), which are then compared on the others.
    """
    m, e = _check_curve(members_curve, ns, "members_curve"), _check_curve(ensemble_curve, ns, "ensemble_curve")
    if m.shape != e.shape:
        raise ValueError(f"members_curve {m.shape} and ensemble_curve {e.shape} differ")
    sel = _check_select(select, m.shape[1])
    pm, pe = _peak(m, sel), _peak(e, sel)
    return _result("C3", "ensemble_vs_own_members_at_peak",
                   comparison or f"ensemble at its peak n={int(ns[pe])} minus its own members' average at theirs "
                                 f"(n={int(ns[pm])})", e[:, ~sel, pe] - m[:, ~sel, pm], "positive",
                   members_peak_n=int(ns[pm]), ensemble_peak_n=int(ns[pe]))


# -------------------------------------------------------------- C4, C5
def _check_curve(curve, ns, name: str) -> np.ndarray:
    c = np.asarray(curve, dtype=np.float64)
    if c.ndim != 3 or c.shape[2] != len(ns) or len(ns) < 2:
        raise ValueError(f"{name} must have shape (seeds, prompts, {len(ns)} n values >= 2); got {c.shape}")
    return c


def held_out_drop(curve, ns, select) -> tuple[np.ndarray, int]:
    """Gold at a peak chosen on the selection prompts minus gold at n_max, on the others.

    The peak is the argmax of the mean curve over seeds and selection prompts, among
    n < n_max, so a curve that keeps rising gives a negative drop. Returns the (S, P_test)
    drops and the chosen peak n.
    """
    c = _check_curve(curve, ns, "curve")
    sel = _check_select(select, c.shape[1])
    peak = _peak(c[..., :-1], sel)
    test = c[:, ~sel]
    return test[..., peak] - test[..., -1], int(ns[peak])


def _check_select(select, n_prompts: int) -> np.ndarray:
    sel = np.asarray(select, dtype=bool)
    if sel.shape != (n_prompts,) or sel.all() or not sel.any():
        raise ValueError("select must be a (prompts,) mask with both halves non-empty")
    return sel


def _peak(curve: np.ndarray, sel: np.ndarray) -> int:
    """Index of the (S, P, G) curve's peak: the argmax of its mean over seeds and the selection prompts."""
    return int(np.argmax(curve[:, sel].mean(axis=(0, 1))))


def residual_overoptimization(curve, ns, select, *, comparison: str = "") -> ClaimResult:
    """C4: an ensemble is still over-optimized (gold falls from its peak to n_max).

    ``curve``: (S, P, G) expected gold of best-of-n at each n of ``ns`` (ascending, the
    last is n_max); ``select``: (P,) the prompts that choose the peak (:func:`split_prompts`).
    """
    drop, peak = held_out_drop(curve, ns, select)
    return _result("C4", "residual_overoptimization",
                   comparison or f"gold at held-out peak n={peak} minus n={int(ns[-1])}", drop, "positive",
                   peak_n=peak)


def conservative_aggregation(members_curve, ensemble_curve, ns, select, *, comparison: str = "") -> ClaimResult:
    """C5: a conservative ensemble drops less from its peak than its own members do.

    Curves (S, P, G): the members' average and the conservative ensemble's; ``ns`` and
    ``select`` as in :func:`residual_overoptimization`.
    """
    d_single, p_single = held_out_drop(members_curve, ns, select)
    d_ens, p_ens = held_out_drop(ensemble_curve, ns, select)
    return _result("C5", "conservative_aggregation",
                   comparison or f"members' drop (peak n={p_single}) minus ensemble's drop (peak n={p_ens})",
                   d_single - d_ens, "positive", members_peak_n=p_single, ensemble_peak_n=p_ens,
                   members_drop=float(d_single.mean()), ensemble_drop=float(d_ens.mean()))


# ------------------------------------------------------------------ C6
def gao_bon_form(curve, ns, select, *, n_boot: int = 500, seed: int = 0, comparison: str = "") -> ClaimResult:
    """C6: gold follows Gao's best-of-n form d (alpha - beta d) and turns down in range.

    ``curve``: (S, P, G) the average member's expected gold at each n of ``ns`` (ascending,
    from 1); ``select``: (P,) the prompts that choose the peak for the held-out drop.
    """
    c = _check_curve(curve, ns, "curve")
    ns = np.asarray(ns)
    if ns[0] != 1:
        raise ValueError("the n grid must start at 1 (the re-centring point)")
    d = np.sqrt(core.bon_kl(ns))
    y = c - c[..., :1]  # re-centred: R(0) = 0

    def stat(v: np.ndarray) -> np.ndarray:
        al, be = core.fit_gao_batch(d, v.mean(axis=(0, 1))[None, :], "bon")
        peak = al[0] / (2 * be[0]) if be[0] > 0 else np.inf
        return np.array([al[0], be[0], peak])

    point = stat(y)
    boots = core.pigeonhole_bootstrap(y, stat, n_boot=n_boot, seed=seed)
    lo, hi = np.quantile(boots, [0.025, 0.975], axis=0, method="inverted_cdf")  # peaks may be inf
    fit = core.fit_gao(d, y.mean(axis=(0, 1)), "bon")
    drop = residual_overoptimization(c, ns, select)
    d_max = float(d[-1])
    if lo[0] > 0 and lo[1] > 0 and hi[2] < d_max and drop.verdict == "reproduced":
        verdict = "reproduced"
    elif hi[1] < 0 or drop.verdict == "not reproduced":
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    S, P = c.shape[:2]
    return ClaimResult(
        "C6", "gao_bon_form", comparison or "Gao best-of-n fit of the average member's gold",
        float(point[1]), float(lo[1]), float(hi[1]), verdict, "positive", SPECS["gao_bon_form"].rule, covers(S, P),
        {"interval": "pigeonhole_bootstrap", "n_boot": n_boot, "alpha": float(point[0]),
         "alpha_low": float(lo[0]), "alpha_high": float(hi[0]), "peak_d": float(point[2]),
         "peak_d_low": float(lo[2]), "peak_d_high": float(hi[2]), "d_max": d_max, "r2": fit.r2,
         "drop": drop.estimate, "drop_low": drop.low, "drop_high": drop.high,
         "drop_peak_n": drop.extra["peak_n"]})


# ------------------------------------------------------------------ C7
def rpo_vs_dpo_drop(dpo_curve, rpo_curve, points, select, *, comparison: str = "") -> ClaimResult:
    """C7: RPO's gold falls less from its peak to the end of training than DPO's.

    Curves (S, P, T): each objective's gold on each evaluation prompt at its T evaluations
    (``points``, ascending, e.g. steps or epochs; the last is the end of training), same seeds,
    beta and data; ``select``: (P,) the prompts that choose each curve's peak
    (:func:`split_prompts`); drops are measured on the others (:func:`held_out_drop`).
    """
    d_dpo, p_dpo = held_out_drop(dpo_curve, points, select)
    d_rpo, p_rpo = held_out_drop(rpo_curve, points, select)
    return _result("C7", "rpo_vs_dpo_drop",
                   comparison or f"DPO's drop (peak at {p_dpo}) minus RPO's drop (peak at {p_rpo})",
                   d_dpo - d_rpo, "positive", dpo_peak=p_dpo, rpo_peak=p_rpo, dpo_drop=float(d_dpo.mean()),
                   rpo_drop=float(d_rpo.mean()))
