"""Study configuration: one YAML, validated, with dotted overrides and named profiles.

Definitions used throughout (and printed in the report):

- A *seed* redraws the backbones, the label-noise flips, the members' fine-tuning
  seeds and the RL seed. The best-of-n pool is sampled once per world and shared by
  every cell, so cells differ only in their reward.
- Backbones are a random unit: each seed draws K backbones without replacement from
  the world's pool (more than K of them). Ensembles of size K: *pretrain* = member i
  on the seed's i-th drawn backbone, fine-tune seed 1000*seed + i; *finetune* = K
  members on the seed's first drawn backbone, fine-tune seeds 1000*seed + i. Member 0
  is the same model in both and is trained once.
- Each ensemble is compared with the average of *its own* K members, each optimized
  alone (Coste et al. report the average single RM); the best and worst member are
  shown in the figures. The figures' grey "single RM" curve averages every distinct
  member of the seed.
- Member scores are standardized with their held-out statistics before aggregation.
- Intervals: 95% t intervals over seeds x prompts (crossed random effects), or a
  pigeonhole bootstrap for curve fits; they cover seeds and prompts, not the world
  build (compare world replicates, ``world_seed``, for that).
- RL trains on the world's training prompts and is evaluated on held-out prompts with
  the policy in eval mode; its 'single' arm optimizes member (seed mod K).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from rewardherd.config import ConfigError, check, from_dict, load_yaml, resolve_profile, to_dict
from rewardherd.core import Aggregation
from rewardherd.policy.config import DPOConfig, PoolSampling, RLConfig
from rewardherd.schema import STUDY_KINDS, RLKind, StudyKind
from rewardherd.training.config import TrainConfig
from rewardherd.world.config import PROFILES as WORLD_PROFILES
from rewardherd.world.config import WorldConfig


@dataclass(frozen=True)
class UserSource:
    """The user's own components instead of the built-in world."""

    policy: str
    """Policy directory (HF causal LM + tokenizer) whose samples are optimized."""
    preferences: str
    """Training preference pairs (JSONL/Parquet/CSV/datasets dir)."""
    heldout_preferences: str
    """Held-out pairs labelled by gold, for member accuracy and standardization."""
    backbones: tuple[str, ...]
    """Reward backbones: backbone 0 for the finetune ensemble, all K for the pretrain ensemble."""
    prompts: str
    """Evaluation prompts: a text file, one prompt per line, or JSONL with a `prompt` field."""
    gold: str
    """Gold reward: `package.module:function` taking (prompts, responses) -> floats, or an HF reward-model directory."""
    train_prompts: str | None = None
    """RL training prompts (same format as prompts). Required when RL is enabled: RL never trains on the evaluation prompts."""
    max_new_tokens: int = 48
    """Most tokens per sampled response."""


@dataclass(frozen=True)
class PoolConfig(PoolSampling):
    """The best-of-n pool, sampled once per world and shared by every cell."""

    prompts: int = 128
    """Evaluation prompts in the pool."""
    size: int = 128
    """Samples per prompt (N)."""
    score_dtype: Literal["float32", "bfloat16", "auto"] = "float32"
    """Precision of the members' pool scores. bfloat16 is about 2.5x faster on CPUs with
    AVX512-BF16 or AMX and is kept only if it ranks a probe of the pool like float32
    (Spearman >= 0.999, else that member is rescored in float32); auto picks bfloat16
    where it runs natively. Each member's info.json records what was used."""

    def __post_init__(self):
        check(self.prompts >= 2 and self.size >= 2, "pool.prompts and pool.size must be >= 2")
        check(0 < self.max_n_fraction <= 1, "pool.max_n_fraction must be in (0, 1]")


@dataclass(frozen=True)
class CleanConfig:
    """How the cleaned kind's training data is cleaned (Secrets of RLHF II): cross-fitted
    ensemble-vote strength of every noisy training pair, then a rule fixed in advance."""

    folds: int = 3
    """Cross-fitting folds: each fold's members score only pairs they were not trained on."""
    members: int = 2
    """Members per fold (fine-tune seeds on the seed's first backbone); their margins are the votes."""
    flip_below: float = 0.1
    """Share of pairs, weakest mean strength first, whose labels are flipped."""
    drop_between: tuple[float, float] = (0.1, 0.3)
    """Band of strength ranks (shares of the pairs) dropped as ambiguous."""

    def __post_init__(self):
        lo, hi = self.drop_between
        check(self.folds >= 2 and self.members >= 1,
              f"clean.folds must be >= 2 and clean.members >= 1; got {self.folds}, {self.members}")
        check(0 <= self.flip_below <= lo <= hi < 1,
              f"need 0 <= clean.flip_below <= clean.drop_between[0] <= clean.drop_between[1] < 1; "
              f"got {self.flip_below}, {list(self.drop_between)}")


@dataclass(frozen=True)
class Sweep:
    """The best-of-n axes crossed: kind x method x noise level x seed (x size). RL's axes are `rl_sweep`."""

    kinds: tuple[StudyKind, ...] = ("finetune", "pretrain")
    """Ensemble kinds on the best-of-n curves, each with its cost (finetune and pretrain are
    required: the papers' claims compare them); add multi_head, lora, warm (rewardherd.schema)."""
    methods: tuple[str, ...] = ("mean", "min", "uncertainty_weighted(lam=0.5)")
    """Aggregations, as name or name(k=v,...) (see rewardherd.core.aggregate)."""
    noise: tuple[float, ...] = (0.0, 0.25)
    """Label-noise levels (share of training labels flipped)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds (each redraws label noise, member seeds and the RL seed)."""
    sizes: tuple[int, ...] = ()
    """Ensemble sizes to sweep (full profile: 1..5); empty = only ensemble_size."""
    markers: tuple[float, ...] = ()
    """Levels of the world's error-sharing dial, world.preferences.markers (docs/sharing_dial.md): each runs the
    study in <out>/markers<level>/, then one report plots each ensemble's gain against its members' rho_bar."""
    levels: tuple[float, ...] = ()
    """Levels of the study's shared-error dial (``dial``: gold's tail, world.gold.shared_error, and with
    tail_and_data the pairs every member shares, train.subsample_shared; docs/world.md): each runs the study
    in <out>/level<level>/, then one report plots each ensemble's gain against its members' residual error
    correlation. Exclusive with ``markers``."""

    def __post_init__(self):
        check({"finetune", "pretrain"} <= set(self.kinds) and len(set(self.kinds)) == len(self.kinds),
              f"kinds must hold finetune and pretrain once each (the claims compare them); got {list(self.kinds)}")
        for m in self.methods:
            Aggregation.parse(m)
        for p in self.noise:
            check(0 <= p < 0.5, f"noise levels must be in [0, 0.5); got {p}")
        check(len(self.seeds) >= 1, "at least one seed")
        check(len(set(self.markers)) == len(self.markers) and all(0 <= v <= 1 for v in self.markers),
              f"markers levels must be distinct and in [0, 1]; got {list(self.markers)}")
        check(len(set(self.levels)) == len(self.levels) and all(0 <= v <= 1 for v in self.levels),
              f"sweep.levels must be distinct and in [0, 1]; got {list(self.levels)}")
        check(not (self.markers and self.levels), "sweep.markers and sweep.levels are two dials: sweep one of them")


@dataclass(frozen=True)
class RLSweep:
    """Which RL cells run: the axes crossed (each cell's hyperparameters are the `rl` section)."""

    enabled: bool = True
    """Run RL cells at all."""
    kinds: tuple[RLKind, ...] = ("single", "pretrain")
    """Ensemble kinds optimized with RL (single = member seed mod K of the seed's pretrain ensemble, `runner.rl_single_slot`)."""
    methods: tuple[str, ...] = ("uncertainty_weighted(lam=0.1)",)
    """Aggregations the ensembles are optimized with (single members always use their own score)."""
    noise: tuple[float, ...] = (0.25,)
    """Label-noise levels with RL cells."""
    seeds: tuple[int, ...] = (0,)
    """Seeds with RL cells."""
    kl_coefs: tuple[float, ...] = (0.01,)
    """KL penalty coefficients (TRL's beta)."""


#: DAA objectives of the study's ``daa`` arm: TRL loss terms (RPO's second weight is ``daa_sweep.rpo_weight``).
DAA_OBJECTIVES = {"dpo": ("sigmoid",), "ipo": ("ipo",), "rpo": ("sigmoid", "sft")}
#: Training data of the ``daa`` arm (see :class:`DAASweep`).
DAA_DATA = ("noisy", "cleaned", "relabelled")


@dataclass(frozen=True)
class DAASweep:
    """Which direct-alignment (DAA) units run: one per objective x beta x data x seed, each a
    `rewardherd dpo` run on the world's training pairs (hyperparameters: the `dpo` section)."""

    enabled: bool = False
    """Run the DAA arm at all."""
    objectives: tuple[Literal["dpo", "ipo", "rpo"], ...] = ("dpo", "rpo")
    """dpo (TRL sigmoid), ipo, rpo (sigmoid + rpo_weight x the NLL of the chosen responses)."""
    rpo_weight: float = 1.0
    """Weight of RPO's SFT term (TRL loss_weights [1, rpo_weight])."""
    betas: tuple[float, ...] = (0.1,)
    """KL regularization strengths (TRL's beta; DPOConfig.kl_coef)."""
    data: tuple[Literal["noisy", "cleaned", "relabelled"], ...] = ("noisy",)
    """noisy: the world's training pairs with `noise` of labels flipped; cleaned: those pairs cleaned as the
    cleaned kind cleans them (`clean` section, rewardherd.cleaning); relabelled: those pairs labelled by the
    sign of the same cross-fitted ensemble vote, the relabel_drop share with the largest vote std dropped."""
    relabel_drop: float = 0.2
    """relabelled data: share of the pairs, most uncertain (largest std of the members' votes) first, dropped."""
    noise: float = 0.25
    """Label-noise level of the training pairs (the seed's flips, as the members see them)."""
    seeds: tuple[int, ...] = (0,)
    """Seeds (each redraws the label flips, the data order and the evaluation samples)."""
    max_pairs: int | None = None
    """Train on at most this many of the noisy pairs (a random subset fixed by the seed, drawn before
    cleaning); None: all of them."""

    def __post_init__(self):
        check(self.max_pairs is None or self.max_pairs >= 2, f"daa_sweep.max_pairs must be >= 2; got {self.max_pairs}")
        check(len(self.objectives) >= 1 and len(set(self.objectives)) == len(self.objectives),
              f"daa_sweep.objectives must be distinct, from {sorted(DAA_OBJECTIVES)}; got {list(self.objectives)}")
        bad = [o for o in self.objectives if o not in DAA_OBJECTIVES]
        check(not bad, f"daa_sweep.objectives: unknown {bad}; choose from {sorted(DAA_OBJECTIVES)}")
        bad = [d for d in self.data if d not in DAA_DATA]
        check(not bad, f"daa_sweep.data: unknown {bad}; choose from {list(DAA_DATA)}")
        check(0 <= self.relabel_drop < 1, f"daa_sweep.relabel_drop must be in [0, 1); got {self.relabel_drop}")
        check(len(self.data) >= 1 and len(set(self.data)) == len(self.data), "daa_sweep.data must be distinct, >= 1")
        check(len(self.betas) >= 1 and all(b > 0 for b in self.betas), f"daa_sweep.betas must be > 0; got {list(self.betas)}")
        check(self.rpo_weight >= 0, f"daa_sweep.rpo_weight must be >= 0; got {self.rpo_weight}")
        check(0 <= self.noise < 0.5, f"daa_sweep.noise must be in [0, 0.5); got {self.noise}")
        check(len(self.seeds) >= 1 and len(set(self.seeds)) == len(self.seeds), "daa_sweep.seeds: distinct, >= 1")

    def loss(self, objective: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """TRL ``loss_type`` and ``loss_weights`` of an objective."""
        losses = DAA_OBJECTIVES[objective]
        return losses, (1.0, self.rpo_weight) if objective == "rpo" else (1.0,)


#: The study's DAA runs evaluate only at step 0 and at their checkpoints (eval_every above any run's
#: length), so every seed's curve has the same points, in epochs, whatever its number of pairs.
_DAA_DPO = DPOConfig(epochs=1.0, lr=5e-6, batch_size=8, max_length=128, eval_every=10 ** 9,
                     checkpoint_fractions=(0.125, 0.25, 0.5, 0.75, 1.0), eval_prompts=64, eval_samples=2)


@dataclass(frozen=True)
class StudyConfig:
    """The over-optimization study."""

    profile: str = "quick"
    """Profile name (smoke, quick, kinds, sharing, markers, daa, full); informational once resolved."""
    world_seed: int = 0
    """Built-in world replicate: 0 is the canonical build; another value redraws the policy,
    the backbone pool and the preference data (rewardherd.world.world_replicate). Verdicts
    cover one world build; compare replicates to see whether they hold across builds."""
    world_seeds: tuple[int, ...] = ()
    """World builds to run the whole study on, each in <out>/build<seed>/ (a level sweep too, when
    sweep.levels or sweep.markers is set), with a verdict table across builds
    (rewardherd.studies.builds); empty: the one build world_seed."""
    dial: Literal["tail", "tail_and_data"] = "tail"
    """What a level of the shared-error dial sets (:func:`at_dial_level`; `rewardherd diagnose
    --levels`; docs/world.md): tail, gold's tail strength world.gold.shared_error; tail_and_data,
    that and the share of each member's subsample that all members hold, train.subsample_shared
    (needs train.subsample): a blind spot of gold no pair shows, and finite-data error every member shares."""
    world: WorldConfig = field(default_factory=WorldConfig)
    """The built-in world (ignored when `user` is given): `world.name` picks its profile (smoke, quick,
    full) and the other keys override it, e.g. world.policy.lm.steps=100."""
    user: UserSource | None = None
    """Your own policy, data, backbones and gold reward instead of the built-in world."""
    ensemble_size: int = 3
    """K, members per ensemble."""
    sweep: Sweep = field(default_factory=Sweep)
    """The best-of-n axes: kinds, methods, noise levels, seeds, sizes."""
    lora_r: int = 8
    """LoRA rank of the lora kind's adapters (alpha: train.lora_alpha)."""
    clean: CleanConfig = field(default_factory=CleanConfig)
    """How the cleaned kind's data is cleaned."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """How members are trained."""
    pool: PoolConfig = field(default_factory=PoolConfig)
    """Best-of-n pool."""
    # The study's RL runs longer and with a larger learning rate than the `rl` command's defaults.
    rl: RLConfig = field(default_factory=lambda: RLConfig(steps=60, lr=3e-5, eval_every=15))
    """Hyperparameters of every RL cell; each cell sets method, params, kl_coef and seed from `rl_sweep`,
    and max_new_tokens is the world's (or user's) pool setting."""
    rl_sweep: RLSweep = field(default_factory=RLSweep)
    """Which RL cells run."""
    dpo: DPOConfig = field(default_factory=lambda: _DAA_DPO)
    """Hyperparameters of every DAA unit; each unit sets loss_type, loss_weights, kl_coef and seed from
    `daa_sweep`, and max_new_tokens is the world's (or user's) pool setting."""
    daa_sweep: DAASweep = field(default_factory=DAASweep)
    """Which direct-alignment units run (off by default)."""
    executor: Literal["local", "ray"] = "local"
    """local: sequential with progress bars; ray: cells and member trainings as Ray tasks."""
    ray_address: str | None = None
    """Attach to this Ray cluster (else a local ray.init)."""
    ray_num_cpus: int | None = None
    """CPUs for a local Ray instance (None: all)."""
    workers: int = 1
    """local executor: train and score members in this many processes at once, each with
    (CPU cores // workers) torch threads; 1 runs them in this process. Tiny members scale
    poorly across threads, so 2 x 1 thread can beat 1 x 2 (benchmarks/study_profile.py)."""
    bootstrap: int = 2000
    """Bootstrap resamples for confidence intervals."""
    calibration_replicates: int = 40
    """Simulated studies per calibration scenario at this study's size (0: no calibration in the report;
    benchmarks/claims_calibration.py runs 200). Cached in the cache directory by size."""
    cache_dir: str | None = None
    """World cache directory (default ~/.cache/rewardherd)."""

    def __post_init__(self):
        check(self.ensemble_size >= 2, "ensemble_size must be >= 2")
        check(self.dial in DIALS, f"dial must be one of {list(DIALS)}; got {self.dial!r}")
        check(self.dial != "tail_and_data" or self.train.subsample is not None,
              "dial=tail_and_data moves train.subsample_shared: set train.subsample (pairs per member)")
        check(self.lora_r >= 1, f"lora_r must be >= 1; got {self.lora_r}")
        check(self.workers >= 1, f"workers must be >= 1; got {self.workers}")
        check(self.user is None or self.user.train_prompts is not None or not self.rl_sweep.enabled,
              "user.train_prompts is required for RL (RL never trains on the evaluation prompts); "
              "give a train_prompts file or set rl_sweep.enabled=false")
        for m in self.rl_sweep.methods:
            Aggregation.parse(m)
        for p in self.rl_sweep.noise:
            check(0 <= p < 0.5, f"rl_sweep.noise levels must be in [0, 0.5); got {p}")
        check(self.calibration_replicates >= 0 and self.world_seed >= 0,
              "calibration_replicates and world_seed must be >= 0")
        check(not self.world_seeds or (len(self.world_seeds) >= 2 and self.user is None),
              "world_seeds lists at least 2 builds of the built-in world to compare (one build: set world_seed)")
        check(len(set(self.world_seeds)) == len(self.world_seeds) and all(s >= 0 for s in self.world_seeds),
              f"world_seeds must be distinct and >= 0; got {list(self.world_seeds)}")
        check(not self.world_seeds or self.world_seed == 0,
              "world_seeds lists the builds to run; leave world_seed at its default 0")
        check(not (self.sweep.markers or self.sweep.levels) or self.user is None,
              "sweep.markers and sweep.levels need the built-in world (its dials)")
        check(all(1 <= s <= self.ensemble_size for s in self.sweep.sizes),
              f"sweep.sizes must be in [1, ensemble_size={self.ensemble_size}]")
        check(not (self.train.member_label_noise and "multi_head" in self.sweep.kinds),
              "train.member_label_noise: multi-head heads share every batch and cannot see different labels; "
              "drop multi_head from sweep.kinds or set train.member_label_noise=0")
        check(self.train.subsample is None or "multi_head" not in self.sweep.kinds,
              "train.subsample: multi-head heads share every batch and cannot train on different pairs; "
              "drop multi_head from sweep.kinds or set train.subsample=null")


#: What a level of the shared-error dial may set (StudyConfig.dial).
DIALS = ("tail", "tail_and_data")


def at_dial_level(config: StudyConfig, level: float) -> StudyConfig:
    """``config`` at ``level`` in [0, 1] of its shared-error dial (``config.dial``): gold's tail
    strength ``world.gold.shared_error = level``, and with ``tail_and_data`` also
    ``train.subsample_shared = level``."""
    check(0.0 <= level <= 1.0, f"a dial level must be in [0, 1]; got {level}")
    if config.world is None:
        raise ValueError("the shared-error dial needs the built-in world (the study config has a user source)")
    cfg = replace(config, world=replace(config.world, gold=replace(config.world.gold, shared_error=float(level))))
    if config.dial == "tail_and_data":
        cfg = replace(cfg, train=replace(cfg.train, subsample_shared=float(level)))
    return cfg


#: The teacher world (docs/world.md, "Preregistration"): the quick world with gold a reward model trained on the
#: lexical formula's labels, 16 samples per prompt for the preference data, and the length tail at 0.085 per word
#: (chosen on single-member diagnostics so that the full level's curve peaks and falls; 0.05, 0.075 and 0.1 measured).
TEACHER_WORLD: dict = {"name": "quick", "gold": {"design": "teacher", "long_weight": 0.085},
                       "preferences": {"samples_per_prompt": 16}}

#: The quick study (the default profile of `make demo`).
_QUICK: dict = {
    # 6 seeds: the calibration's power against its strong simulated effects rises from
    # 0.78-0.80 at 3 seeds to 0.95-0.98 at 6 for the weakest rules (underspecification,
    # residual over-optimization, Gao's form); 9 seeds adds little and moderate effects
    # stay undecidable at either size (README, "What the quick profile can decide").
    "profile": "quick", "world": {"name": "quick"}, "ensemble_size": 5, "sweep": {"seeds": [0, 1, 2, 3, 4, 5]},
    # member training as measured on the quick world (held-out accuracy 0.73-0.75)
    "train": {"epochs": 1.0, "lr": 1e-3, "batch_size": 16, "max_length": 128, "lr_scheduler": "cosine"},
    "pool": {"prompts": 256, "size": 128, "score_dtype": "auto"},
}

#: Named studies, each a set of overrides of StudyConfig's defaults.
PROFILES: dict[str, dict] = {
    # Tests: a miniature world, one seed, tiny pool; RL a few steps.
    "smoke": {
        "profile": "smoke", "world": {"name": "smoke"}, "ensemble_size": 2, "sweep": {"seeds": [0], "noise": [0.0, 0.25]},
        "train": {"epochs": 1.0, "lr": 1e-3, "batch_size": 16, "max_length": 96},
        "pool": {"prompts": 12, "size": 16},
        "rl": {"steps": 2, "eval_every": 1, "eval_prompts": 8, "eval_samples": 1, "num_generations": 2,
               "prompts_per_step": 2},
        "bootstrap": 200, "calibration_replicates": 2,
    },
    "quick": _QUICK,
    # The quick study with every ensemble kind: multi-head, LoRA and WARM on the same curves and
    # intervals as fine-tune- and pretrain-seed ensembles, each with its cost.
    "kinds": {**_QUICK, "profile": "kinds", "sweep": {**_QUICK["sweep"], "kinds": list(STUDY_KINDS)}},
    # Issue 23's sweep of the shared-error dial on the teacher world, no RL: members that learn gold on their own
    # subsamples, with gold's tail and the pairs they share moved together. World, members and the five levels
    # preregistered 2026-12-07 17:24 UTC from single-member diagnostics only (docs/world.md, "Preregistration").
    "sharing": {**_QUICK, "profile": "sharing", "world": TEACHER_WORLD, "dial": "tail_and_data",
                "train": {**_QUICK["train"], "subsample": 2600},
                "sweep": {**_QUICK["sweep"], "noise": [0.0], "levels": [0, 0.25, 0.5, 0.75, 1]},
                "rl_sweep": {"enabled": False}},
    # Issue 13's error-sharing sweep on the quick world, no RL; levels fixed from single-member diagnostics
    # (docs/sharing_dial.md; the `sharing` profile until 2026-12-07).
    "markers": {**_QUICK, "profile": "markers",
                "sweep": {**_QUICK["sweep"], "noise": [0.0], "markers": [0, 0.75, 0.9, 1]},
                "rl_sweep": {"enabled": False}},
    # Issue 26's direct-alignment arm beside best-of-n and RL: the quick study at noise 0.25 only (its members, pool,
    # RL and claims) plus DPO and RPO at beta 0.1 on noisy and cleaned pairs over 2 seeds (8 DAA units).
    # Estimate, not run: one DAA unit (384 pairs, batch 8 -> 48 steps, 6 evaluations of 48 prompts x 2 samples)
    # took 187 s in a timed smoke run on the quick world (/tmp script around train_dpo, gold 0.125 epoch peak) while
    # another study used ~1.3 of the 2 cores, so 8 units <= 25 min (about 15 min idle); the quick study's other
    # stages at one noise level ~8-11 min (README: members 494-677 s at two levels, pool 54-76 s, RL 89-118 s); the
    # cross-fitted cleaning of 2 x 384 pairs and C7's calibration (5 cells) under a minute: 25-37 min in all.
    # Measured 2026-12-07 (fresh clone, world cached): the 8-unit grid (dpo, rpo x beta 0.1 x noisy, cleaned x 2 seeds)
    # ran in 8 min 27 s, its 8 DAA units in 70 s (~9 s each, far under the estimate above), so the profile runs
    # the whole grid: 3 objectives x 3 betas x 3 data x 2 seeds = 54 units.
    # 2026-12-08: 4 seeds and 96 evaluation prompts (108 units), chosen from C7's simulated power by size before the
    # run (docs/dpo.md, "C7's power by size"): moderate-effect power 0.16 at 2 x 48 -> 0.40 at 4 x 96, strong 0.64 -> 1.0.
    "daa": {**_QUICK, "profile": "daa", "sweep": {**_QUICK["sweep"], "noise": [0.25]},
            "dpo": {"lr": 5e-5, "eval_prompts": 96},
            "daa_sweep": {"enabled": True, "objectives": ["dpo", "ipo", "rpo"], "betas": [0.03, 0.1, 0.3],
                          "data": ["noisy", "cleaned", "relabelled"], "noise": 0.25, "seeds": [0, 1, 2, 3],
                          "max_pairs": 384}},
    # The largest grid that runs end to end in <= 2.5 h on 2 CPU cores (issue 15). It keeps the quick world and
    # size: the paper-scale world (world.name=full: 10 backbones of 2x128 at 1500 steps, a 4x192 policy at 4000)
    # needs about 3 h of training steps alone here (0.5 s and 0.85 s per step measured), and at 9 seeds the
    # calibration finds no rule whose power reaches 0.8 that does not already at 6. It adds every kind, six aggregations, ensemble sizes 1..5, 100 calibration replicates
    # and RL with 3 seeds per arm at 200 steps. Spread wider grids over machines with executor=ray.
    "full": {
        **_QUICK, "profile": "full",
        "sweep": {**_QUICK["sweep"], "kinds": list(STUDY_KINDS), "sizes": [1, 2, 3, 4, 5],
                  "methods": ["mean", "median", "min", "mean_minus_std(k=1.0)", "uncertainty_weighted(lam=0.5)",
                              "soft_min(temperature=1.0)"]},
        "calibration_replicates": 100,
        "rl": {"steps": 200},
        "rl_sweep": {"kinds": ["single", "finetune", "pretrain"], "methods": ["mean", "uncertainty_weighted(lam=0.1)"],
                     "noise": [0.25], "seeds": [0, 1, 2], "kl_coefs": [0.01]},
        # DPO, IPO and RPO at one beta on noisy and cleaned pairs with a third seed: 18 DAA units (~9 s each measured
        # in the daa profile; the daa profile itself runs the three betas and relabelled pairs)
        "dpo": {"lr": 5e-5, "eval_prompts": 48},
        "daa_sweep": {"enabled": True, "objectives": ["dpo", "ipo", "rpo"], "betas": [0.1], "data": ["noisy", "cleaned"],
                      "noise": 0.25, "seeds": [0, 1, 2], "max_pairs": 384},
    },
}

#: RL settings each cell sets itself (see StudyConfig.rl).
PER_CELL_DPO = {"loss_type": "daa_sweep.objectives", "loss_weights": "daa_sweep.rpo_weight",
                "kl_coef": "daa_sweep.betas", "seed": "daa_sweep.seeds", "max_new_tokens": "world.pool.max_new_tokens"}
PER_CELL_RL = {"method": "rl_sweep.methods", "params": "rl_sweep.methods", "kl_coef": "rl_sweep.kl_coefs",
               "seed": "rl_sweep.seeds", "max_new_tokens": "world.pool.max_new_tokens"}
#: Keys a study config refuses (older names, per-cell RL settings), each with what to write instead.
REFUSED = {
    "world_profile": "is now world.name",
    "world_overrides": "is now world (e.g. world.policy.lm.steps=100)",
    **{k: f"is now sweep.{k}" for k in ("kinds", "methods", "noise", "seeds", "sizes")},
    **{f"rl.{k}": f"is now rl_sweep.{k}" for k in ("enabled", "kinds", "methods", "noise", "seeds", "kl_coefs")},
    **{f"rl.{k}": f"is set per RL cell; use {new!r}" for k, new in PER_CELL_RL.items()},
    **{f"dpo.{k}": f"is set per DAA unit; use {new!r}" for k, new in PER_CELL_DPO.items()},
}


def resolve_config(path=None, profile: str | None = None, overrides: list[str] | None = None) -> StudyConfig:
    """Profile <- YAML file <- dotted overrides, validated; `world.name` picks the world's profile,
    which the rest of the `world` section overrides."""
    where = str(path) if path else "study config"
    file_data = load_yaml(path) if path else {}
    name = profile or file_data.get("profile") or "quick"
    data = resolve_profile(PROFILES, name, file_data, {"profile": name}, overrides=overrides or [], where=where)
    for key, why in REFUSED.items():
        if _has(data, key):
            raise ConfigError(f"{where}: {key!r} {why}")
    if isinstance(data.get("world"), dict):
        data["world"] = resolve_profile(WORLD_PROFILES, data["world"].get("name", "quick"), data["world"],
                                        where=f"{where}: world.name")
    return from_dict(StudyConfig, data, where)


def _has(data, dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    return isinstance(data, dict) and head in data and (not rest or _has(data[head], rest))


__all__ = ["StudyConfig", "CleanConfig", "Sweep", "RLSweep", "DAASweep", "PoolConfig", "UserSource", "PROFILES", "resolve_config",
           "to_dict", "replace"]
