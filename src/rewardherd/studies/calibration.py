"""Calibration of the claim rules: simulated studies where each effect is absent or present.

A simulated study has the real study's shape: S seeds, P prompts, a pool of N samples
per prompt shared by every seed, and per seed a pretrain-seed and a fine-tune-seed
ensemble of K members. Samples carry a true quality ``c`` and F "hack" features H
(H[..., 0] is the shared one, e.g. length). Member k of a seed scores

    z_k = a_k c + b_shared H_0 + b_idio H_{f_k} + sigma u_k      (then z-scored)

(plus, on a share ``spike_rate`` of samples, a private error of ``spike_size``)
with a_k = 1 + jitter (seed-to-seed skill variation), f_k a feature the member latched
on to (pretrain members: distinct features; fine-tune members: one feature per seed
when ``ft_shares_hack``), and u_k noise (Gaussian or Student t). Gold is one of:

- ``flat``: independent of everything (no effect can exist);
- ``rising``: gold = c (no over-optimization);
- ``saturating``: gold = min(c, cap) (rises, then never falls);
- ``shared_hack``: gold = c - gamma * relu(H_0) (every member's shared error);
- ``idio_hacks``: gold = c - gamma * sum_{f >= 1} relu(H_f) (each member's own error).

Scenarios name, for one claim, the truth they encode: ``null`` (effect absent),
``effect`` (present, the claimed direction), ``opposite`` (present, the other way).
:func:`run_scenario` runs the real claim function on simulated data and returns the
verdict counts. Numbers in the scenarios are design choices stated here, chosen before
running the rules; the calibration table reports whatever comes out.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from rewardherd import core
from rewardherd.studies import claims

GOLDS = ("flat", "rising", "saturating", "shared_hack", "idio_hacks")


@dataclass(frozen=True)
class World:
    """Parameters of a simulated study's pool and members (see the module docstring)."""

    gold: str = "rising"
    gamma: float = 1.0
    cap: float = 0.5
    b_shared: float = 0.0
    b_idio: float = 0.0
    sigma: float = 1.0
    noise_df: float | None = None
    """Student-t degrees of freedom of the members' noise u (None: Gaussian)."""
    quality_df: float | None = None
    """Student-t degrees of freedom of the true quality c (None: Gaussian)."""
    spike_rate: float = 0.0
    """Share of samples on which a member has its own large error (a rare, private hack)."""
    spike_size: float = 4.0
    """Size of such an error, in units of the quality's sd."""
    jitter: float = 0.1
    features: int = 12
    ft_shares_hack: bool = False
    """Fine-tune-seed members share one idiosyncratic feature per seed (one backbone)."""
    pre_shares_hack: bool = False


@dataclass(frozen=True)
class Size:
    """The study's size: the quick profile's by default."""

    seeds: int = 3
    prompts: int = 256
    pool: int = 128
    members: int = 5
    max_n_fraction: float = 0.25


@dataclass(frozen=True)
class Scenario:
    claim: str
    truth: str
    name: str
    world: World
    method: str = "mean"
    extra: dict = field(default_factory=dict)
    kind: str = "pretrain"
    """Whose simulated members the rule is applied to: "pretrain" or "finetune" (each kind
    the study applies the rule to, :attr:`rewardherd.studies.claims.ClaimSpec.kinds`)."""


def _t_or_normal(rng, shape, df):
    if df is None:
        return rng.standard_normal(shape)
    return rng.standard_t(df, shape) / np.sqrt(df / (df - 2)) if df > 2 else rng.standard_t(df, shape)


def simulate(world: World, size: Size, rng: np.random.Generator) -> dict:
    """One simulated study: gold (P, N), member scores (S, P, K, N) for both kinds."""
    P, N, K, S, F = size.prompts, size.pool, size.members, size.seeds, world.features
    c = _t_or_normal(rng, (P, N), world.quality_df)
    H = rng.standard_normal((F, P, N))
    if world.gold == "flat":
        gold = rng.standard_normal((P, N))
    elif world.gold == "rising":
        gold = c.copy()
    elif world.gold == "saturating":
        gold = np.minimum(c, world.cap)
    elif world.gold == "shared_hack":
        gold = c - world.gamma * np.maximum(H[0], 0.0)
    elif world.gold == "idio_hacks":
        gold = c - world.gamma * np.maximum(H[1:], 0.0).sum(axis=0)
    else:
        raise ValueError(f"unknown gold {world.gold!r}; choose from {GOLDS}")

    def members(shared_feature: bool) -> np.ndarray:
        out = np.empty((S, P, K, N))
        for s in range(S):
            feats = rng.choice(np.arange(1, F), size=K, replace=False)
            if shared_feature:
                feats[:] = feats[0]
            for k in range(K):
                a = 1.0 + world.jitter * rng.standard_normal()
                z = (a * c + world.b_shared * H[0] + world.b_idio * H[feats[k]]
                     + world.sigma * _t_or_normal(rng, (P, N), world.noise_df)
                     + world.spike_size * (rng.random((P, N)) < world.spike_rate))
                out[s, :, k] = core.zscore(z.reshape(1, -1)).reshape(P, N)  # standardized over the whole pool
        return out

    return {"gold": gold, "pretrain": members(world.pre_shares_hack), "finetune": members(world.ft_shares_hack)}


def curves(member_z: np.ndarray, gold: np.ndarray, ns, method: str | None) -> np.ndarray:
    """Expected gold of best-of-n per (seed, prompt, n): of the aggregate when ``method``
    is given, (S, P, G); else of each member alone, (S, K, P, G)."""
    S, P, K, N = member_z.shape
    if method is None:
        return np.stack([np.stack([core.bon_estimate(member_z[s, :, k], gold, ns) for k in range(K)])
                         for s in range(S)])
    spec = core.Aggregation.parse(method)
    out = []
    for s in range(S):
        scores = member_z[s].transpose(1, 0, 2).reshape(K, P * N)  # (K, P*N)
        agg = spec.apply(scores).reshape(P, N)
        out.append(core.bon_estimate(agg, gold, ns))
    return np.stack(out)


@dataclass(frozen=True)
class DAAWorld:
    """A simulated direct-alignment arm pair (DPO and RPO at one beta and data).

    The mean gold of an objective at training progress x in [0, 1] rises linearly by ``rise``
    up to ``peak`` and then falls linearly by its drop to the end; each seed scales both by
    ``1 + seed_sd * N(0, 1)`` (its own draw per objective), each prompt adds one offset shared
    by both objectives and every evaluation (sd ``prompt_sd``), and each (seed, prompt,
    evaluation) adds independent noise of sd ``noise_sd`` (a handful of samples' gold).
    """

    rise: float = 1.0
    dpo_drop: float = 1.0
    rpo_drop: float = 1.0
    peak: float = 0.3
    seed_sd: float = 0.2
    prompt_sd: float = 1.0
    noise_sd: float = 1.0


@dataclass(frozen=True)
class DAASize:
    """The DAA arm's size: seeds, evaluation prompts and evaluations per run (step 0 included)."""

    seeds: int = 1
    prompts: int = 64
    points: int = 6


def _daa_hump(x: np.ndarray, rise: float, drop: float, peak: float) -> np.ndarray:
    return rise * np.minimum(x / peak, 1.0) - drop * np.clip((x - peak) / (1.0 - peak), 0.0, None)


def simulate_daa(world: DAAWorld, size: DAASize, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(S, P, T) gold curves of DPO and RPO (see :class:`DAAWorld`)."""
    S, P, T = size.seeds, size.prompts, size.points
    x = np.linspace(0.0, 1.0, T)
    offset = world.prompt_sd * rng.standard_normal((1, P, 1))
    out = []
    for drop in (world.dpo_drop, world.rpo_drop):
        scale = 1.0 + world.seed_sd * rng.standard_normal((S, 1, 1))
        mean = scale * _daa_hump(x, world.rise, drop, world.peak)[None, None, :]
        out.append(mean + offset + world.noise_sd * rng.standard_normal((S, P, T)))
    return out[0], out[1]


def run_once(sc: Scenario, size: Size, rng: np.random.Generator) -> claims.ClaimResult:
    """Simulate one study and apply the scenario's claim rule through :func:`claims.apply`,
    with the parameters the study uses (its :class:`~rewardherd.studies.claims.ClaimSpec`)."""
    if sc.claim == "rpo_vs_dpo_drop":  # the DAA arm: its own simulator and size (DAAWorld, DAASize)
        dpo, rpo = simulate_daa(sc.world, size, rng)
        select = claims.split_prompts(size.prompts, seed=int(rng.integers(1 << 31)))
        return claims.apply(sc.claim, dpo, rpo, np.arange(size.points), select)
    sim = simulate(sc.world, size, rng)
    ns = core.n_grid(size.pool, size.max_n_fraction)
    nmax = ns[-1]
    select = claims.split_prompts(size.prompts, seed=int(rng.integers(1 << 31)))
    mem_z, gold = sim[sc.kind], sim["gold"]
    apply = claims.apply
    if sc.claim == "underspecification":
        return apply(sc.claim, mem_z, max(2, size.pool // nmax), seed=int(rng.integers(1 << 31)))
    if sc.claim == "cross_rm_transfer":
        return apply(sc.claim, mem_z, nmax)
    if sc.claim == "ensemble_vs_own_members":
        return apply(sc.claim, curves(mem_z, gold, [nmax], sc.method)[..., 0], curves(mem_z, gold, [nmax], None)[..., 0])
    if sc.claim == "pretrain_vs_finetune":
        return apply(sc.claim, curves(sim["pretrain"], gold, [nmax], sc.method)[..., 0],
                     curves(sim["finetune"], gold, [nmax], sc.method)[..., 0])
    if sc.claim == "residual_overoptimization":
        return apply(sc.claim, curves(mem_z, gold, ns, sc.method), ns, select)
    members = curves(mem_z, gold, ns, None).mean(axis=1)  # (S, P, G): the members' average curve
    if sc.claim in ("ensemble_vs_own_members_at_peak", "conservative_aggregation"):
        return apply(sc.claim, members, curves(mem_z, gold, ns, sc.method), ns, select)
    if sc.claim == "gao_bon_form":
        return apply(sc.claim, members, ns, select, seed=int(rng.integers(1 << 31)))
    raise ValueError(f"unknown claim {sc.claim!r}")


#: Floor on p(1 - p) in a verdict share's Monte Carlo SE: a share observed at 0% or
#: 100% is reported with a tiny nonzero SE rather than 0. :func:`target_met` floors the
#: SE it tests with at the 5% binomial SE, so the verdicts do not depend on this value.
SHARE_VARIANCE_FLOOR = 1e-12


def run_scenario(sc: Scenario, size: Size, replicates: int, seed: int = 0) -> dict:
    """Verdict shares of the claim rule over ``replicates`` simulated studies: the counts,
    shares and Monte Carlo standard errors of each verdict."""
    rng = np.random.default_rng(seed)
    counts: Counter = Counter()
    estimates = []
    for _ in range(replicates):
        r = run_once(sc, size, rng)
        counts[r.verdict] += 1
        estimates.append(r.estimate)
    out = {"claim": sc.claim, "truth": sc.truth, "scenario": sc.name, "replicates": replicates,
           "mean_estimate": float(np.mean(estimates))}
    for v in ("reproduced", "not reproduced", "inconclusive"):
        p = counts[v] / replicates
        out[v] = p
        out[f"{v} se"] = float(np.sqrt(max(p * (1 - p), SHARE_VARIANCE_FLOOR) / replicates))
    return out


def target_met(row: dict, tolerance_se: float = 2.0) -> bool:
    """Whether a calibration row meets its target, within ``tolerance_se`` Monte Carlo SEs.

    null and opposite: "reproduced" <= 5%; effect: "not reproduced" <= 5%. Power (the
    share reproduced under the effect) is reported, not required.
    """
    key = "not reproduced" if row["truth"] == "effect" else "reproduced"
    se = max(row[f"{key} se"], float(np.sqrt(0.05 * 0.95 / row["replicates"])))
    return row[key] <= 0.05 + tolerance_se * se


def by_kind(cells: list[Scenario]) -> list[Scenario]:
    """Each cell once per ensemble kind its rule is applied to (``ClaimSpec.kinds``).

    In this simulator the two kinds' members are drawn alike unless a world sets
    ``ft_shares_hack`` or ``pre_shares_hack``, so a rule's rows for the two kinds differ by
    their independent draws; they are there so that each applied rule has a measured rate.
    """
    return [dataclasses.replace(sc, kind=kind) for sc in cells for kind in claims.SPECS[sc.claim].kinds]


def scenarios() -> list[Scenario]:
    """Every (claim, truth, kind) cell of the calibration table."""
    gauss = World(gold="rising", sigma=1.0, jitter=0.0)  # equicorrelated members, rho = 0.5
    # C1 (agreement on optimized outputs) and C2 (transfer between members) share their worlds.
    spikes = ("effect", "rare private errors (3% of samples, +4 sd, per member)",
              World(gold="rising", sigma=1.0, spike_rate=0.03, jitter=0.0))
    weak_spikes = ("effect", "moderate: rare private errors (1% of samples, +3 sd)",
                   World(gold="rising", sigma=1.0, spike_rate=0.01, spike_size=3.0, jitter=0.0))
    heavy_tail = ("opposite", "heavy-tailed shared quality (t, 3 df)",
                  World(gold="rising", sigma=1.0, quality_df=3.0, jitter=0.0))
    return by_kind([
        Scenario("underspecification", "null", "equicorrelated Gaussian members, rho=0.5", gauss),
        Scenario("underspecification", "null", "equicorrelated Gaussian members, rho=0.9",
                 World(gold="rising", sigma=1 / 3, jitter=0.0)),
        *(Scenario("underspecification", *sc) for sc in (spikes, weak_spikes, heavy_tail)),
        Scenario("cross_rm_transfer", "null", "Gaussian members, rho=0.99 (gain in proportion to rho)",
                 World(gold="rising", sigma=0.1, jitter=0.0)),
        Scenario("cross_rm_transfer", "null", "Gaussian members, rho=0.5", gauss),
        *(Scenario("cross_rm_transfer", *sc) for sc in (spikes, weak_spikes, heavy_tail)),
        # C3: ensemble vs its own members (mean)
        Scenario("ensemble_vs_own_members", "null", "flat gold", World(gold="flat", sigma=1.0)),
        Scenario("ensemble_vs_own_members", "null", "identical members (no idiosyncratic part)",
                 World(gold="shared_hack", b_shared=1.0, sigma=0.0, jitter=0.0)),
        Scenario("ensemble_vs_own_members", "effect", "idiosyncratic hacks, one per member",
                 World(gold="idio_hacks", gamma=0.3, b_idio=0.6, sigma=0.5)),
        Scenario("ensemble_vs_own_members", "opposite", "herding: shared hack sharpened by averaging",
                 World(gold="shared_hack", gamma=2.0, b_shared=1.0, sigma=1.0)),
        # C3: pretrain vs finetune (mean)
        Scenario("pretrain_vs_finetune", "null", "both kinds alike (distinct hacks)",
                 World(gold="idio_hacks", gamma=0.3, b_idio=0.6, sigma=0.5)),
        Scenario("pretrain_vs_finetune", "effect", "fine-tune members share their backbone's hack",
                 World(gold="idio_hacks", gamma=0.3, b_idio=0.6, sigma=0.5, ft_shares_hack=True)),
        Scenario("pretrain_vs_finetune", "effect", "moderate: fine-tune members share a weaker hack",
                 World(gold="idio_hacks", gamma=0.05, b_idio=0.3, sigma=0.5, ft_shares_hack=True)),
        Scenario("pretrain_vs_finetune", "opposite", "pretrain members share a hack",
                 World(gold="idio_hacks", gamma=0.3, b_idio=0.6, sigma=0.5, pre_shares_hack=True)),
        # C4: residual over-optimization of the ensemble (mean)
        Scenario("residual_overoptimization", "null", "flat gold", World(gold="flat", sigma=1.0)),
        Scenario("residual_overoptimization", "null", "saturating gold", World(gold="saturating", cap=0.5)),
        Scenario("residual_overoptimization", "effect", "shared hack", World(gold="shared_hack", gamma=1.4,
                                                                            b_shared=1.0, sigma=0.5)),
        Scenario("residual_overoptimization", "effect", "moderate: weaker shared hack",
                 World(gold="shared_hack", gamma=1.2, b_shared=1.0, sigma=0.5)),
        Scenario("residual_overoptimization", "opposite", "gold keeps rising", World(gold="rising", sigma=1.0)),
        # C5: conservative aggregation (min) vs own members
        Scenario("conservative_aggregation", "null", "flat gold", World(gold="flat", sigma=1.0), method="min"),
        Scenario("conservative_aggregation", "null", "identical members",
                 World(gold="shared_hack", b_shared=1.0, gamma=1.5, sigma=0.0, jitter=0.0), method="min"),
        Scenario("conservative_aggregation", "effect", "idiosyncratic hacks",
                 World(gold="idio_hacks", gamma=0.3, b_idio=0.6, sigma=0.5), method="min"),
        Scenario("conservative_aggregation", "effect", "moderate: weaker idiosyncratic hacks",
                 World(gold="idio_hacks", gamma=0.1, b_idio=0.3, sigma=0.5), method="min"),
        Scenario("conservative_aggregation", "opposite", "herding: shared hack",
                 World(gold="shared_hack", gamma=2.0, b_shared=1.0, sigma=1.0), method="min"),
        # C6: Gao form with a turn-down in range
        Scenario("gao_bon_form", "null", "flat gold", World(gold="flat", sigma=1.0)),
        Scenario("gao_bon_form", "null", "saturating gold (never falls)", World(gold="saturating", cap=0.5)),
        Scenario("gao_bon_form", "effect", "shared hack (inverted U)",
                 World(gold="shared_hack", gamma=1.4, b_shared=1.0, sigma=0.5)),
        Scenario("gao_bon_form", "effect", "moderate: weaker shared hack",
                 World(gold="shared_hack", gamma=1.2, b_shared=1.0, sigma=0.5)),
        Scenario("gao_bon_form", "opposite", "gold keeps rising", World(gold="rising", sigma=1.0)),
    ])


def peak_scenarios() -> list[Scenario]:
    """The cells of the error-sharing sweep's own rule, C3 at each curve's peak
    (:func:`rewardherd.studies.claims.ensemble_vs_own_members_at_peak`). Kept apart from
    :func:`scenarios`, whose rules every study reports, so that adding this rule does not
    recompute every cached study calibration. In these worlds gold either keeps rising (both
    peaks at n_max) or falls from n <= 2 on (both peaks near n = 1); no simple world puts the
    ensemble's peak below its members' (every curve starts at the same gold at n = 1), so
    there is no opposite cell, and the herding world is a null here."""
    rule = "ensemble_vs_own_members_at_peak"
    c3 = {sc.name: sc.world for sc in scenarios() if sc.claim == "ensemble_vs_own_members" and sc.kind == "pretrain"}  # C3's worlds, reused
    reused = [("flat gold", "null", ""), ("identical members (no idiosyncratic part)", "null", ""),
              ("herding: shared hack sharpened by averaging", "null", "herding: shared hack, both curves peak at n <= 2"),
              ("idiosyncratic hacks, one per member", "effect", "")]
    return by_kind([*(Scenario(rule, truth, new or name, c3[name]) for name, truth, new in reused),
                    Scenario(rule, "effect", "moderate: shared hack, noisy members (gamma 0.7)",
                             World(gold="shared_hack", gamma=0.7, b_shared=1.0, sigma=1.0))])


def daa_scenarios() -> list[Scenario]:
    """The cells of the DAA arm's rule (:func:`rewardherd.studies.claims.rpo_vs_dpo_drop`), simulated
    at the arm's own size (:class:`DAASize`). Kept apart from :func:`scenarios` like
    :func:`peak_scenarios`. Drops are in units of the per-(seed, prompt, evaluation) noise sd."""
    rule = "rpo_vs_dpo_drop"
    return by_kind([
        Scenario(rule, "null", "flat gold (neither objective moves)", DAAWorld(rise=0.0, dpo_drop=0.0, rpo_drop=0.0)),
        Scenario(rule, "null", "same hump: both drop by 1 after the peak", DAAWorld()),
        Scenario(rule, "effect", "RPO does not drop (DPO drops by 2)", DAAWorld(dpo_drop=2.0, rpo_drop=0.0)),
        Scenario(rule, "effect", "moderate: RPO drops by 0.5, DPO by 1", DAAWorld(rpo_drop=0.5)),
        Scenario(rule, "opposite", "RPO drops by 2, DPO does not", DAAWorld(dpo_drop=0.0, rpo_drop=2.0)),
    ])


def cell_key(sc: Scenario, size: Size, replicates: int, seed: int = 0) -> str:
    """The content key of one calibration cell: its scenario, the size, the replicate count,
    the seed, its rule's parameters and version (:class:`~rewardherd.studies.claims.ClaimSpec`)
    and the simulator's version. Changing one rule changes only its own cells' keys."""
    from rewardherd.world.cache import hash_key

    spec = claims.SPECS[sc.claim]
    return hash_key({"scenario": repr(sc), "size": dataclasses.asdict(size), "replicates": replicates, "seed": seed,
                     "params": spec.params, "rule_version": spec.version, "simulator": SIMULATOR_VERSION})


def cell_seed(key: str) -> int:
    """A cell's random seed, from its key: the same cell draws the same worlds whatever else is calibrated."""
    return int(key[:8], 16)


def calibrate(size: Size, replicates: int, *, seed: int = 0, cache_dir=None, progress: bool = False,
              cells: list[Scenario] | None = None, known: list[dict] | None = None,
              workers: int = 1) -> list[dict]:
    """Every scenario (``cells``; default :func:`scenarios`) at ``size``, ``replicates``
    simulated studies each; each row carries its :func:`cell_key`.

    A cell is simulated only if neither ``known`` (rows of an earlier calibration, e.g. a
    finished study's ``results/calibration.json``) nor ``<cache_dir>/calibration/<key>.json``
    has its key, and then stored there. So rows are shared by studies of the same size, and
    changing one rule recomputes that rule's cells alone. Cells to simulate run in ``workers``
    spawned processes (1: in this process, where a patched :data:`claims.SPECS` is seen); each
    cell's seed comes from its key, so the rows do not depend on how many run at once or in
    which order.
    """
    import json
    from pathlib import Path

    from rewardherd.io import write_json_atomic

    cells = scenarios() if cells is None else cells
    have = {r["key"]: r for r in (known or []) if "key" in r}
    folder = Path(cache_dir).expanduser() / "calibration" if cache_dir is not None else None
    keys = [cell_key(sc, size, replicates, seed) for sc in cells]
    rows: dict[str, dict] = {}
    todo = []
    for sc, key in zip(cells, keys, strict=True):
        path = folder / f"{key}.json" if folder is not None else None
        if key in have:
            rows[key] = have[key]
        elif path is not None and path.exists():
            rows[key] = json.loads(path.read_text())
        elif key not in {k for _, k in todo}:
            todo.append((sc, key))
    for i, (sc, key, row) in enumerate(_simulate_cells(todo, size, replicates, workers)):
        row.update(kind=sc.kind, key=key, target_met=target_met(row))
        if folder is not None:
            write_json_atomic(folder / f"{key}.json", row)
        rows[key] = row
        if progress:
            print(f"calibration {i + 1}/{len(todo)}: {sc.claim} {sc.truth} ({sc.kind})", flush=True)
    return [rows[k] for k in keys]


def _run_cell(sc: Scenario, size: Size, replicates: int, key: str) -> dict:
    return run_scenario(sc, size, replicates, seed=cell_seed(key))


def _simulate_cells(todo: list[tuple[Scenario, str]], size: Size, replicates: int, workers: int):
    """Yield (scenario, key, row) for each cell of ``todo``, in order, simulated in ``workers`` processes."""
    workers = min(len(todo), max(1, workers))
    if workers <= 1:
        for sc, key in todo:
            yield sc, key, _run_cell(sc, size, replicates, key)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_run_cell, sc, size, replicates, key) for sc, key in todo]
        for (sc, key), f in zip(todo, futures, strict=True):
            yield sc, key, f.result()


def summarize(rows: list[dict]) -> dict[str, dict]:
    """Per claim function: worst false-positive share over its nulls and opposite effects,
    the share reproduced under its weakest simulated effect (power) and strongest
    (power_strong), the worst share not reproduced under an effect, and the replicates."""
    out: dict[str, dict] = {}
    for r in rows:
        s = out.setdefault(r["claim"], {"false_positive": 0.0, "power": None, "power_strong": None,
                                        "false_negative": 0.0, "replicates": r["replicates"]})
        if r["truth"] == "effect":  # power: the weakest effect simulated (moderate where there is one)
            s["power"] = r["reproduced"] if s["power"] is None else min(s["power"], r["reproduced"])
            s["power_strong"] = max(s["power_strong"] or 0.0, r["reproduced"])
            s["false_negative"] = max(s["false_negative"], r["not reproduced"])
        else:
            s["false_positive"] = max(s["false_positive"], r["reproduced"])
    return out


#: Bump when the simulator (:func:`simulate`, :func:`curves`, :func:`run_scenario`) changes
#: meaning: it invalidates every cached cell. A rule's own change bumps its ClaimSpec.version.
SIMULATOR_VERSION = 3
