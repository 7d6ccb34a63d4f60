"""Configuration of the built-in world: one frozen dataclass per component.

The docstring under each field is its help text (the CLI reuses it). Profiles
(:data:`PROFILES`) are override sets. Each artifact's cache key holds the section that
produced it (:mod:`.world`). Label noise is not part of the world: the study applies it
per seed. Why the defaults look the way they do: docs/world.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from rewardherd.config import check, from_dict, key_fields, resolve_profile

DEFAULT_FORTUNES_DIR = "/usr/share/games/fortunes"

# Categories of Debian's fortunes that are not prose (ASCII art) or not English.
# The offensive collection lives under ``off/`` and is always excluded by path.
DEFAULT_EXCLUDED_CATEGORIES = ("art", "ascii-art", "translate-me", "perl", "pratchett")


@dataclass(frozen=True)
class CorpusConfig:
    """Where the text comes from, how it is cleaned and how it is partitioned."""

    path: str | None = None
    """A text file (items separated by blank lines or by lines holding only '%') or a
    directory of fortune files. None means Debian's fortunes (`fortunes_dir`)."""

    fortunes_dir: str = DEFAULT_FORTUNES_DIR
    """Directory of the Debian `fortunes` package, used when `path` is None."""

    exclude_categories: tuple[str, ...] = DEFAULT_EXCLUDED_CATEGORIES
    """Fortune files to skip (ASCII art, non-English, code). Files under an `off`
    directory (the offensive set) are always skipped."""

    strip_attribution: bool = True
    """Drop trailing attribution lines ("-- Author") so items are plain prose."""

    min_words: int = 3
    """Items with fewer words are dropped. (Prompt items need more: see PromptConfig.)"""

    max_words: int = 250
    """Items with more words are dropped (long lists, poems, transcripts)."""

    max_items: int | None = None
    """Keep at most this many items (chosen by stable hash); None keeps all. For tests."""

    val_fraction: float = 0.03
    """Share of items held out from pretraining to measure perplexity."""

    pref_train_fraction: float = 0.12
    """Share of items whose openings are preference-data (RM training) prompts."""

    pref_heldout_fraction: float = 0.04
    """Share of items whose openings are held-out preference prompts (RM accuracy)."""

    eval_fraction: float = 0.06
    """Share of items whose openings are evaluation prompts (best-of-n, RL)."""

    def __post_init__(self) -> None:
        check(self.min_words >= 2, "corpus.min_words must be >= 2")
        check(self.max_words >= self.min_words, "corpus.max_words must be >= corpus.min_words")
        check(self.max_items is None or self.max_items > 0, "corpus.max_items must be > 0")
        fracs = (self.val_fraction, self.pref_train_fraction, self.pref_heldout_fraction,
                 self.eval_fraction)
        check(all(0.0 < f < 1.0 for f in fracs), "corpus fractions must be in (0, 1)")
        check(sum(fracs) < 0.9, "corpus fractions must leave >= 10% of items for pretraining")


@dataclass(frozen=True)
class TokenizerConfig:
    """Byte-level BPE trained on the pretraining partition."""

    vocab_size: int = 4096
    """Target vocabulary size, special tokens included."""

    min_frequency: int = 2
    """Minimum pair frequency for a BPE merge."""

    def __post_init__(self) -> None:
        check(self.vocab_size >= 300, "tokenizer.vocab_size must be >= 300 (256 bytes + specials)")
        check(self.min_frequency >= 1, "tokenizer.min_frequency must be >= 1")


@dataclass(frozen=True)
class LMConfig:
    """A tiny GPT-2 causal LM and its pretraining schedule (AdamW, warmup + cosine)."""

    n_layer: int = 2
    """Transformer blocks."""

    n_embd: int = 64
    """Model width."""

    n_head: int = 2
    """Attention heads (must divide n_embd)."""

    block_size: int = 128
    """Context length (tokens) for pretraining and the model's maximum position."""

    steps: int = 300
    """Optimizer steps."""

    batch_size: int = 32
    """Sequences per step (each block_size tokens)."""

    lr: float = 3e-3
    """Peak learning rate."""

    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of the peak (cosine decay)."""

    warmup_steps: int = 30
    """Linear warmup steps."""

    weight_decay: float = 0.1
    """AdamW weight decay on matrices (not on biases, norms or embeddings)."""

    grad_clip: float = 1.0
    """Global gradient-norm clip."""

    eval_batches: int = 16
    """Held-out batches used for the perplexity estimate."""

    def __post_init__(self) -> None:
        check(self.n_layer >= 1 and self.n_embd >= 8, "lm: n_layer >= 1 and n_embd >= 8")
        check(self.n_head >= 1 and self.n_embd % self.n_head == 0, "lm.n_head must divide n_embd")
        check(self.block_size >= 16, "lm.block_size must be >= 16")
        check(self.steps >= 1 and self.batch_size >= 1, "lm.steps and lm.batch_size must be >= 1")
        check(self.lr > 0.0, "lm.lr must be > 0")
        check(0.0 <= self.min_lr_ratio <= 1.0, "lm.min_lr_ratio must be in [0, 1]")
        check(0 <= self.warmup_steps <= self.steps, "lm.warmup_steps must be in [0, steps]")
        check(self.weight_decay >= 0.0 and self.grad_clip > 0.0, "lm: weight_decay >= 0, grad_clip > 0")
        check(self.eval_batches >= 1, "lm.eval_batches must be >= 1")


@dataclass(frozen=True)
class BackbonesConfig:
    """The proxy backbones: one tiny LM per pretraining seed (the pretrain-seed axis)."""

    lm: LMConfig = field(default_factory=lambda: LMConfig(n_layer=2, n_embd=64, n_head=2,
                                                          steps=150, warmup_steps=15))
    """Architecture and schedule shared by all backbones."""

    seeds: tuple[int, ...] = tuple(range(8))
    """One backbone per seed; the seed sets initialization and data order. A study draws
    each seed's ensembles from this pool, so it should hold more backbones than an
    ensemble has members (backbones are a random unit of the study, not a fixed set)."""

    def __post_init__(self) -> None:
        check(len(self.seeds) >= 1, "backbones.seeds must not be empty")
        check(len(set(self.seeds)) == len(self.seeds), "backbones.seeds must be distinct")


@dataclass(frozen=True)
class PolicyConfig:
    """The base ("SFT") policy: a tiny LM pretrained on the same corpus."""

    lm: LMConfig = field(default_factory=lambda: LMConfig(n_layer=3, n_embd=128, n_head=4,
                                                          steps=450, lr=2e-3, warmup_steps=30))
    """Architecture and schedule of the policy."""

    seed: int = 1000
    """Seed for initialization and data order."""


@dataclass(frozen=True)
class PromptConfig:
    """Prompts are openings of held-out corpus items."""

    min_words: int = 4
    """Fewest words in a prompt (an item's opening)."""

    max_words: int = 8
    """Most words in a prompt; the count is drawn per item by stable hash."""

    min_continuation_words: int = 4
    """Items whose remainder after the opening is shorter are not used as prompts."""

    def __post_init__(self) -> None:
        check(1 <= self.min_words <= self.max_words, "prompts: 1 <= min_words <= max_words")
        check(self.min_continuation_words >= 1, "prompts.min_continuation_words must be >= 1")


@dataclass(frozen=True)
class SamplingConfig:
    """How the policy is sampled in one setting (preference data or best-of-n pool)."""

    max_new_tokens: int = 48
    """Most tokens per response (generation also stops at end-of-text)."""

    min_new_tokens: int = 1
    """End-of-text is forbidden before this many tokens."""

    temperature: float = 1.0
    """Softmax temperature; 0 means greedy."""

    top_p: float = 1.0
    """Nucleus sampling mass; 1 disables it."""

    def __post_init__(self) -> None:
        check(self.max_new_tokens >= 1, "sampling.max_new_tokens must be >= 1")
        check(0 <= self.min_new_tokens <= self.max_new_tokens,
               "sampling.min_new_tokens must be in [0, max_new_tokens]")
        check(self.temperature >= 0.0, "sampling.temperature must be >= 0")
        check(0.0 < self.top_p <= 1.0, "sampling.top_p must be in (0, 1]")


@dataclass(frozen=True)
class PreferenceConfig:
    """Gold-labelled preference pairs from the "older" short-output policy setting.

    The distribution shift is on purpose: `sampling.max_new_tokens` here (short,
    the older policy) is below `WorldConfig.pool.max_new_tokens` (the policy being
    optimized), so the reward models never see the long responses that selection
    favours. Without it the prototype showed no over-optimization (the prototype's notes, WORLD_NOTES.md in the project's shared docs).
    """

    sampling: SamplingConfig = field(default_factory=lambda: SamplingConfig(max_new_tokens=16))
    """Sampling setting of the older policy that produced the preference data."""

    samples_per_prompt: int = 4
    """Responses per prompt; they are paired disjointly (0-1, 2-3, ... or by length, see
    ``pairing``), so an even count."""

    pairing: Literal["order", "equal_length", "all"] = "order"
    """order: pair a prompt's samples in sample order. equal_length: pair only samples with
    the same word count (in sample order within each count; the rest are unused), so no
    pair shows a length difference: the preference data cannot teach "longer is better"
    (docs/world.md). all: every pair of a prompt's samples, not disjoint (how gold's teacher
    is trained)."""

    max_pairs_per_prompt: int | None = None
    """Cap on pairs formed from one prompt's samples (None: as many as the pairing allows)."""

    label: Literal["argmax", "bradley_terry"] = "argmax"
    """argmax: chosen = higher gold. bradley_terry: chosen drawn with probability
    sigmoid((g_a - g_b) / label_temperature)."""

    label_temperature: float = 0.25
    """Temperature of the Bradley-Terry labels (only for label='bradley_terry')."""

    min_gold_gap: float = 0.0
    """Pairs whose gold rewards differ by no more than this are dropped (0 drops exact ties)."""

    max_train_pairs: int | None = None
    """Cap on training pairs (None: one per prompt pair). Fewer pairs, weaker proxies."""

    max_heldout_pairs: int | None = None
    """Cap on held-out pairs (None: all)."""

    seed: int = 2000
    """Sampling and labelling seed."""

    markers: float = 0.0
    """Error-sharing dial (docs/sharing_dial.md): share of train and held-out pairs given redundant markers
    (rewardherd.data.plant_markers) as they are loaded, so a level rebuilds nothing; 0 is off."""

    def __post_init__(self) -> None:
        check(0.0 <= self.markers <= 1.0, f"preferences.markers must be in [0, 1]; got {self.markers}")
        check(self.samples_per_prompt >= 2 and self.samples_per_prompt % 2 == 0,
               "preferences.samples_per_prompt must be even and >= 2")
        check(self.label in ("argmax", "bradley_terry"), "preferences.label: argmax|bradley_terry")
        check(self.pairing in ("order", "equal_length", "all"),
              f"preferences.pairing: order|equal_length|all; got {self.pairing!r}")
        check(self.max_pairs_per_prompt is None or self.max_pairs_per_prompt > 0,
              "preferences.max_pairs_per_prompt must be > 0")
        check(self.label_temperature > 0.0, "preferences.label_temperature must be > 0")
        check(self.min_gold_gap >= 0.0, "preferences.min_gold_gap must be >= 0")
        check(self.max_train_pairs is None or self.max_train_pairs > 0, "max_train_pairs > 0")
        check(self.max_heldout_pairs is None or self.max_heldout_pairs > 0, "max_heldout_pairs > 0")

    def key_fields(self) -> dict:
        """The fields the preference data's cache key covers: all but ``markers`` (applied as
        pairs are loaded), and the pairing fields only when they differ from the pairing that
        came before them, so worlds built before they existed keep their keys."""
        d = key_fields(self, {"pairing": "order", "max_pairs_per_prompt": None})
        del d["markers"]
        return d


#: Gold designs (docs/world.md): each sets the weights a GoldConfig leaves at None.
#: - ``herding``: the original world. VADER compound and MiniLM relevance, which the
#:   ~0.4M-parameter proxies barely learn (within-prompt r ~ 0.27 on the pool), so their
#:   errors are dominated by what they all miss: the herding end.
#: - ``lexical``: word-level terms the proxies can read off tokens (lexicon valence,
#:   prompt overlap), with the same repetition and length terms.
GOLD_DESIGNS: dict[str, dict[str, float]] = {
    "herding": {"sentiment_weight": 1.0, "relevance_weight": 1.0, "valence_weight": 0.0, "overlap_weight": 0.0,
                "repetition_weight": 2.0, "teacher_weight": 0.0},
    "lexical": {"sentiment_weight": 0.0, "relevance_weight": 0.0, "valence_weight": 1.0, "overlap_weight": 1.0,
                "repetition_weight": 2.0, "teacher_weight": 0.0},
    "teacher": {"sentiment_weight": 0.0, "relevance_weight": 0.0, "valence_weight": 0.0, "overlap_weight": 0.0,
                "repetition_weight": 0.0, "teacher_weight": 1.0},
}
#: Terms whose weight is ``<name>_weight`` (the gold module's TERMS, less ``n_words``).
WEIGHTED_TERMS = ("sentiment", "relevance", "valence", "overlap", "repetition", "teacher")


@dataclass(frozen=True)
class TeacherConfig:
    """Gold's teacher (design ``teacher``): a reward model trained offline on the labels of a
    formula design, as Gao et al. and Coste et al. train proxies on a larger gold RM's labels.

    It starts from a backbone like the proxies' but pretrained ``steps`` steps with its own
    ``seed`` (no proxy's), and learns from every pair of ``samples_per_prompt`` preference-setting
    samples of each training prompt, labelled by ``learns`` at no shared error. Its score is
    mapped linearly onto that formula's mean and spread over its own training samples."""

    learns: Literal["herding", "lexical"] = "lexical"
    """The formula design whose labels (at shared_error 0) the teacher is trained on."""

    steps: int = 600
    """Pretraining steps of the teacher's backbone (the proxies' architecture otherwise)."""

    seed: int = 10_000
    """Pretraining seed of the teacher's backbone: outside every proxy backbone's seed range."""

    samples_per_prompt: int = 8
    """Preference-setting samples per training prompt; every pair of them is a training pair."""

    sampling_seed: int = 101
    """Seed of those samples (the preference data's own draws use preferences.seed)."""

    epochs: float = 2.0
    """Training epochs over the teacher's pairs (batch 16, cosine schedule; TrainConfig's other defaults)."""

    lr: float = 1e-3
    """Peak learning rate of the teacher's training (the quick study's members' rate)."""

    max_length: int = 128
    """Tokens of prompt + response the teacher reads (the quick study's members' limit)."""

    def __post_init__(self) -> None:
        check(self.learns in ("herding", "lexical"), f"gold.teacher.learns must be herding or lexical; got {self.learns!r}")
        check(self.steps >= 1, "gold.teacher.steps must be >= 1")
        check(self.samples_per_prompt >= 2, "gold.teacher.samples_per_prompt must be >= 2")
        check(self.epochs > 0, "gold.teacher.epochs must be > 0")
        check(self.lr > 0, "gold.teacher.lr must be > 0")
        check(self.max_length >= 8, "gold.teacher.max_length must be >= 8")


@dataclass(frozen=True)
class GoldConfig:
    """The gold reward: "continue the opening so that it is uplifting, on topic, brief".

    gold = sum of sign * weight * term (sentiment, relevance, valence, overlap: +; repetition: -)
         - short_weight * max(0, min_words - words)
         - shared_error * long_weight * max(0, words - max_words)
    (tail='valence': the last line is - shared_error * valence_tail_weight * max(0, valence - max_valence);
    definitions: rewardherd.world.gold). A weight left at None takes the design's value.
    """

    design: Literal["herding", "lexical", "teacher"] = "herding"
    """Named gold design (docs/world.md): herding (VADER compound + MiniLM relevance, the
    original world), lexical (word-level valence + prompt overlap, learnable by the proxies)
    or teacher (a reward model trained on a formula's labels: ``teacher``; the short hinge is
    then part of what it learned, and only the shared-error tail is added)."""

    sentiment_weight: float | None = None
    """Weight of VADER's compound score of the response (in [-1, 1]); None: the design's."""

    relevance_weight: float | None = None
    """Weight of the cosine between all-MiniLM-L6-v2 embeddings of prompt and response; None: the design's."""

    valence_weight: float | None = None
    """Weight of the response's summed VADER lexicon valences / 4; None: the design's."""

    overlap_weight: float | None = None
    """Weight of the share of the response's words found in the prompt; None: the design's."""

    repetition_weight: float | None = None
    """Weight of the fraction of repeated word bigrams in the response; None: the design's."""

    teacher_weight: float | None = None
    """Weight of the teacher reward model's calibrated score (``teacher``); None: the design's."""

    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    """The teacher reward model (used where teacher_weight > 0, as in design ``teacher``)."""

    min_words: int = 10
    """Responses with fewer words are penalized per missing word (the preference data's
    responses are mostly shorter: there, longer is better, a learnable signal)."""

    short_weight: float = 0.1
    """Penalty per word below min_words."""

    max_words: int = 15
    """Responses with more words are penalized per extra word (inside the pool's range,
    beyond the preference data's: the tail the proxies cannot see)."""

    long_weight: float = 0.05
    """Penalty per word above max_words at full shared error."""

    tail: Literal["length", "valence"] = "length"
    """What the shared-error tail charges: ``length`` (words beyond max_words, which the
    short preference responses never reach) or ``valence`` (summed lexicon valence / 4
    beyond max_valence: over-the-top positivity, which short responses rarely reach;
    docs/world.md)."""

    max_valence: float = 1.0
    """Summed lexicon valence / 4 beyond which the valence tail charges (tail='valence')."""

    valence_tail_weight: float = 2.0
    """Penalty per unit of valence above max_valence at full shared error (tail='valence')."""

    shared_error: float = 1.0
    """Strength of the tail in [0, 1] (the long penalty is shared_error * long_weight, or
    shared_error * valence_tail_weight with tail='valence'):
    the error every member shares, since no preference pair shows it (docs/world.md)."""

    encoder_max_tokens: int = 64
    """MiniLM inputs are truncated to this many word pieces (throughput)."""

    encoder_dtype: Literal["float32", "bfloat16"] = "bfloat16"
    """MiniLM weights' dtype. bfloat16 is ~3-4x faster on CPUs with AVX512-BF16 and
    agrees with float32 to a cosine of 0.9999; float32 is exact across machines."""

    encoder_rows: int = 32
    """Every MiniLM forward pass has exactly this many rows (short batches are padded with
    empty rows): CPU kernels choose their blocking by shape, so a fixed shape keeps a
    text's embedding independent of its batch mates and of the batch size."""

    encoder_threads: int = 2
    """torch intra-op threads inside every MiniLM forward pass (restored afterwards): a
    reduction split across another thread count rounds differently."""

    def __post_init__(self) -> None:
        check(self.design in GOLD_DESIGNS, f"gold.design must be one of {sorted(GOLD_DESIGNS)}; got {self.design!r}")
        for name in (*(f"{t}_weight" for t in WEIGHTED_TERMS), "short_weight", "long_weight"):
            check(getattr(self, name) is None or getattr(self, name) >= 0.0, f"gold.{name} must be >= 0")
        check(self.tail in ("length", "valence"), f"gold.tail must be length or valence; got {self.tail!r}")
        check(self.valence_tail_weight >= 0.0, "gold.valence_tail_weight must be >= 0")
        check(0.0 <= self.shared_error <= 1.0, f"gold.shared_error must be in [0, 1]; got {self.shared_error}")
        check(0 <= self.min_words <= self.max_words, "gold: 0 <= min_words <= max_words")
        check(8 <= self.encoder_max_tokens <= 256, "gold.encoder_max_tokens must be in [8, 256]")
        check(self.encoder_dtype in ("float32", "bfloat16"), "gold.encoder_dtype: float32|bfloat16")
        check(1 <= self.encoder_rows <= 1024, "gold.encoder_rows must be in [1, 1024]")
        check(1 <= self.encoder_threads <= 256, "gold.encoder_threads must be in [1, 256]")

    def weight(self, term: str) -> float:
        """The weight of a term of :data:`WEIGHTED_TERMS`: its field, or the design's value
        where the field is None (so changing the design of a saved config changes its weights)."""
        value = getattr(self, f"{term}_weight")
        return float(GOLD_DESIGNS[self.design][f"{term}_weight"] if value is None else value)

    def active_terms(self) -> tuple[str, ...]:
        """The weighted terms gold computes: those of nonzero weight."""
        return tuple(t for t in WEIGHTED_TERMS if self.weight(t) > 0.0)

    def computed_terms(self) -> tuple[str, ...]:
        """Every term gold needs: ``n_words`` (the hinges), the active terms, and ``valence``
        when the tail charges it."""
        extra = ("valence",) if self.tail == "valence" and "valence" not in self.active_terms() else ()
        return ("n_words", *self.active_terms(), *extra)

    def key_fields(self) -> dict:
        """The fields gold's cache key covers: the valence tail's settings only when the tail
        is ``valence``, the teacher's only when it has weight (they change nothing otherwise,
        and worlds built before they existed keep their keys)."""
        later: dict = {"teacher_weight": None}
        if self.tail != "valence":
            later.update(tail="length", max_valence=self.max_valence, valence_tail_weight=self.valence_tail_weight)
        if self.weight("teacher") == 0.0:
            later["teacher"] = dataclasses.asdict(self.teacher)
        return key_fields(self, later)


@dataclass(frozen=True)
class WorldConfig:
    """The whole built-in world."""

    name: str = "quick"
    """Profile name (informational; not part of any cache key)."""

    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    """Corpus source, cleaning and partitions."""

    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    """Tokenizer training."""

    backbones: BackbonesConfig = field(default_factory=BackbonesConfig)
    """Proxy backbones (pretrain seeds)."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Base policy."""

    prompts: PromptConfig = field(default_factory=PromptConfig)
    """Prompt extraction."""

    preferences: PreferenceConfig = field(default_factory=PreferenceConfig)
    """Preference data (short-output "older" policy setting)."""

    pool: SamplingConfig = field(default_factory=lambda: SamplingConfig(max_new_tokens=48))
    """Sampling setting of the policy being optimized (best-of-n pools, RL rollouts)."""

    gold: GoldConfig = field(default_factory=GoldConfig)
    """Gold reward."""

    summary_prompts: int = 256
    """Evaluation prompts sampled (pool setting) for the summary's gold statistics."""

    summary_samples_per_prompt: int = 4
    """Pool-setting samples per summary prompt."""

    sample_batch_size: int = 256
    """Rows per generation batch while building."""

    num_threads: int | None = None
    """torch threads while building (None: leave torch's setting alone)."""

    def __post_init__(self) -> None:
        check(self.summary_prompts >= 1 and self.summary_samples_per_prompt >= 1,
               "summary_prompts and summary_samples_per_prompt must be >= 1")
        check(self.sample_batch_size >= 1, "sample_batch_size must be >= 1")
        check(self.num_threads is None or self.num_threads >= 1, "num_threads must be >= 1")
        check(self.preferences.sampling.max_new_tokens <= self.policy.lm.block_size,
               "preferences.sampling.max_new_tokens must fit the policy's block_size")
        check(self.pool.max_new_tokens + self.prompts.max_words * 4 <= self.policy.lm.block_size,
               "pool.max_new_tokens plus a prompt must fit the policy's block_size")
        shift = self.length_shift()
        check(shift["preference_tokens"] < shift["pool_tokens"] and shift["max_words"] < shift["pool_tokens"],
              f"the length shift needs preferences.sampling.max_new_tokens and gold.max_words below "
              f"pool.max_new_tokens (the pool must reach the tail the preference data does not); got {shift}")

    def length_shift(self) -> dict[str, int]:
        """The numbers the world's shared error rests on, in one place (docs/world.md).

        A response has at most as many words as tokens (the byte-level BPE splits at
        spaces), so preference responses have at most ``preference_tokens`` words and pool
        responses up to ``pool_tokens``: gold's tail beyond ``max_words`` is reachable in
        the pool, and absent from the preference data whenever preference_tokens <=
        max_words (the world summary reports the share of preference responses beyond it)."""
        return {"preference_tokens": self.preferences.sampling.max_new_tokens,
                "pool_tokens": self.pool.max_new_tokens, "min_words": self.gold.min_words,
                "max_words": self.gold.max_words}


_TINY_LM = {"n_layer": 1, "n_embd": 32, "n_head": 2, "block_size": 96, "steps": 20, "batch_size": 8,
            "warmup_steps": 2, "eval_batches": 2}

#: Named worlds, each a set of overrides of the defaults (which are ``quick``):
#: - ``smoke``: a few hundred corpus items, 2 backbones of 1x32, a 1x32 policy, tens of
#:   steps; builds in seconds (tests).
#: - ``quick``: all of the corpus, 8 backbones of 2x64, a 3x128 policy; a few minutes on
#:   2 cores. The default study world.
#: - ``full``: 10 backbones of 2x128 and a 4x192 policy trained several times longer.
PROFILES: dict[str, dict] = {
    "smoke": {
        "name": "smoke",
        "corpus": {"max_items": 600, "val_fraction": 0.05, "pref_train_fraction": 0.1,
                   "pref_heldout_fraction": 0.05, "eval_fraction": 0.05},
        "tokenizer": {"vocab_size": 512},
        "backbones": {"lm": _TINY_LM, "seeds": [0, 1]},
        "policy": {"lm": {**_TINY_LM, "lr": 3e-3}},
        "preferences": {"sampling": {"max_new_tokens": 8}},
        "pool": {"max_new_tokens": 16},
        "summary_prompts": 8, "summary_samples_per_prompt": 2, "sample_batch_size": 64,
    },
    "quick": {"name": "quick"},
    "full": {
        "name": "full",
        "tokenizer": {"vocab_size": 8192},
        "backbones": {"lm": {"n_embd": 128, "n_head": 4, "steps": 1500, "warmup_steps": 100},
                      "seeds": list(range(10))},
        "policy": {"lm": {"n_layer": 4, "n_embd": 192, "steps": 4000, "warmup_steps": 200}},
        "summary_prompts": 512,
    },
}


def world_config(profile: str = "quick", overrides: list[str] | dict = ()) -> WorldConfig:
    """The named profile (:data:`PROFILES`) with dotted ``overrides`` applied; a
    :class:`~rewardherd.config.ConfigError` for an unknown profile or key, or an invalid value."""
    return from_dict(WorldConfig, resolve_profile(PROFILES, profile, overrides=overrides, where="world"), "world")


#: Replicate r's backbone seeds are shifted by r * REPLICATE_SEED_STRIDE, so replicates
#: never share a backbone while a pool holds fewer backbones than this.
REPLICATE_SEED_STRIDE = 100


def world_replicate(config: WorldConfig, replicate: int) -> WorldConfig:
    """The same world design built again from other random draws.

    Replicate 0 is ``config``; replicate r redraws the policy (``policy.seed + r``), the
    backbones (seeds shifted by ``r * REPLICATE_SEED_STRIDE``) and the preference data
    (``preferences.seed + r``). The corpus, its prompts and gold's definition are the design and
    stay; a teacher gold keeps its backbone but is retrained on the replicate's policy samples,
    so world builds also cover the teacher's own draw."""
    check(isinstance(replicate, int) and replicate >= 0, "world replicate must be an integer >= 0")
    if replicate == 0:
        return config
    return dataclasses.replace(
        config,
        policy=dataclasses.replace(config.policy, seed=config.policy.seed + replicate),
        backbones=dataclasses.replace(config.backbones, seeds=tuple(
            s + replicate * REPLICATE_SEED_STRIDE for s in config.backbones.seeds)),
        preferences=dataclasses.replace(config.preferences, seed=config.preferences.seed + replicate),
    )
