"""Build (or load from the cache) the built-in world, and the :class:`World` handle.

Each artifact is written by one function from explicit inputs; :class:`World` wraps each
in the cache (:func:`.cache.cached_artifact`) as a lazy handle, built or loaded on first
use. An artifact's cache key holds its config section, a format version and the keys of
its inputs, so a change rebuilds only what lies downstream (a changed
``policy.lm.steps`` rebuilds the policy, the preference data and the base samples):

=============  ===================  ===============================================
artifact       built by             inputs (their keys are part of its key)
=============  ===================  ===============================================
corpus         build_corpus         the source files (name, size, hash)
tokenizer      build_tokenizer      corpus
backbone (K)   build_lm             tokenizer, corpus (keyed through the tokenizer)
policy         build_lm             tokenizer, corpus (keyed through the tokenizer)
prompts        build_prompts        corpus
teacher        build_teacher        its backbone (build_lm), policy, prompts, formula gold
preferences    build_preferences    policy, prompts, gold
base_samples   build_base_samples   policy, prompts, gold
=============  ===================  ===============================================

The gold reward is a formula over named terms, keyed by its config (:mod:`.gold`); only
the ``teacher`` design's gold holds a model, the ``teacher`` artifact (built only there),
whose key then joins gold's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import corpus
from .cache import cached_artifact, default_cache_dir, read_marker
from .config import (
    CorpusConfig,
    LMConfig,
    PreferenceConfig,
    PromptConfig,
    SamplingConfig,
    TokenizerConfig,
    WorldConfig,
    world_config,
)
from .preferences import make_pairs, pair_summary, write_pairs

WORLD_FORMAT_VERSION = 1
# Versions of the code that writes sampled artifacts (bumped when sampling or pairing
# changes), so that only those artifacts rebuild.
SAMPLES_FORMAT_VERSION = 2
PROMPT_SPLITS = {"train": "pref_train", "heldout": "pref_heldout", "eval": "eval"}
# Preference split s samples with seed ``preferences.seed + SPLIT_SEED_OFFSET[s]`` and
# pairs with that seed + PAIRING_SEED_OFFSET, so no two of the four draws share a seed.
SPLIT_SEED_OFFSET = {"train": 0, "heldout": 1}
PAIRING_SEED_OFFSET = 10
#: Seeds of ``preferences.markers`` per split (docs/sharing_dial.md measured with these).
MARKER_SEEDS = {"train": 11, "heldout": 12}
BASE_SAMPLES_SEED = 0


def _section(obj: Any) -> Any:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def _texts(items: Sequence[corpus.CorpusItem], split: str) -> list[str]:
    return [it.text for it in items if it.split == split]


def extract_prompts(items: Sequence[Any], config: PromptConfig) -> pd.DataFrame:
    """Openings of corpus items as prompts: columns ``id``, ``prompt``, ``reference`` (the
    item's true continuation).

    The opening's word count is drawn in [min_words, max_words] from a stable hash of the
    item; items whose remainder is shorter than ``min_continuation_words`` are skipped, and
    so are repeated openings (sampling is seeded by the prompt text)."""
    rows = []
    seen: set[str] = set()
    span = config.max_words - config.min_words + 1
    for it in items:
        ws = it.text.split()
        k = config.min_words + int(hashlib.sha256(("prompt" + it.text).encode()).hexdigest()[:8],
                                   16) % span
        if len(ws) - k < config.min_continuation_words or " ".join(ws[:k]) in seen:
            continue
        seen.add(" ".join(ws[:k]))
        rows.append({"id": it.id, "prompt": " ".join(ws[:k]), "reference": " " + " ".join(ws[k:])})
    return pd.DataFrame(rows, columns=["id", "prompt", "reference"])


# One function per artifact: each writes its files into the empty directory ``out`` and
# returns the metadata kept in the cache marker.

def build_corpus(config: CorpusConfig, out: Path) -> dict:
    """``items.jsonl``: the cleaned, partitioned corpus (:mod:`.corpus`)."""
    items = corpus.load_corpus(config)
    corpus.write_corpus(items, out / "items.jsonl")
    return {"items": len(items), "splits": dict(Counter(it.split for it in items))}


def build_tokenizer(items: Sequence[corpus.CorpusItem], config: TokenizerConfig,
                    out: Path) -> dict:
    """The BPE tokenizer, trained on the ``pretrain`` partition."""
    from .lm import train_tokenizer

    tok = train_tokenizer(_texts(items, "pretrain"), config)
    tok.save_pretrained(str(out))
    return {"vocab_size": len(tok)}


def build_lm(config: LMConfig, seed: int, tokenizer: Any, items: Sequence[corpus.CorpusItem],
             out: Path, *, progress: bool = False, desc: str = "pretrain") -> dict:
    """A tiny GPT-2 pretrained on ``pretrain`` (perplexity on ``val``): a backbone or the policy."""
    from .lm import pretrain_lm

    return pretrain_lm(config, tokenizer, _texts(items, "pretrain"), _texts(items, "val"), seed,
                       out, progress=progress, desc=desc)


def build_prompts(items: Sequence[corpus.CorpusItem], config: PromptConfig, out: Path) -> dict:
    """``train.jsonl``, ``heldout.jsonl``, ``eval.jsonl``: prompts of each split."""
    counts = {}
    for name, split in PROMPT_SPLITS.items():
        df = extract_prompts([it for it in items if it.split == split], config)
        df.to_json(out / f"{name}.jsonl", orient="records", lines=True, force_ascii=False)
        counts[name] = len(df)
    return counts


def sample_in(setting: SamplingConfig, policy: Any, tokenizer: Any, prompts: Sequence[str], n: int,
              **kw: Any) -> pd.DataFrame:
    """:func:`rewardherd.policy.sampling.sample_continuations` in one sampling setting."""
    from rewardherd.policy.sampling import sample_continuations

    return sample_continuations(policy, tokenizer, prompts, n, max_new_tokens=setting.max_new_tokens,
                                min_new_tokens=setting.min_new_tokens, temperature=setting.temperature,
                                top_p=setting.top_p, **kw)


def sample_with_gold(policy: Any, tokenizer: Any, gold: Any, prompts: pd.DataFrame, n: int,
                     setting: SamplingConfig, *, seed: int, batch_size: int,
                     progress: bool = False) -> pd.DataFrame:
    """``n`` samples of each prompt (``id``, ``prompt`` columns), with gold's components."""
    df = sample_in(setting, policy, tokenizer, prompts["prompt"].tolist(), n, batch_size=batch_size,
                   seed=seed, prompt_ids=prompts["id"].tolist(), progress=progress,
                   ).drop(columns=["response_ids"])
    comps = gold.components(df["prompt"].tolist(), df["response"].tolist())
    return pd.concat([df, comps], axis=1)


def build_preferences(policy: Any, tokenizer: Any, gold: Any, prompts: dict[str, pd.DataFrame],
                      config: PreferenceConfig, out: Path, *, batch_size: int,
                      progress: bool = False) -> dict:
    """Gold-labelled pairs of ``train`` and ``heldout`` prompts (short-output setting).

    Writes ``<split>.jsonl`` (user format), ``<split>_pairs.parquet`` and
    ``samples.parquet`` (every sample with its gold terms and split).
    """
    meta: dict[str, Any] = {}
    all_samples = []
    for name, cap in (("train", config.max_train_pairs), ("heldout", config.max_heldout_pairs)):
        seed = config.seed + SPLIT_SEED_OFFSET[name]
        samples = sample_with_gold(policy, tokenizer, gold, prompts[name],
                                   config.samples_per_prompt, config.sampling, seed=seed,
                                   batch_size=batch_size, progress=progress)
        pairs = make_pairs(samples, config, max_pairs=cap, seed=seed + PAIRING_SEED_OFFSET)
        if len(pairs) == 0:
            raise ValueError(f"no {name} preference pairs could be formed")
        write_pairs(pairs, out / f"{name}.jsonl")
        pairs.to_parquet(out / f"{name}_pairs.parquet", index=False)
        all_samples.append(samples.assign(split=name))
        # The tail gold charges must be (almost) absent here: docs/world.md.
        meta[name] = {**pair_summary(pairs),
                      "over_max_words_frac": float((samples["n_words"] > gold.config.max_words).mean())}
        if gold.config.tail == "valence":
            meta[name]["over_max_valence_frac"] = float((samples["valence"] > gold.config.max_valence).mean())
    pd.concat(all_samples, ignore_index=True).to_parquet(out / "samples.parquet", index=False)
    return meta


TEACHER_FORMAT_VERSION = 2  # 2: pairs through preferences.make_pairs (pairing='all')


def build_teacher(policy: Any, tokenizer: Any, formula_gold: Any, prompts: dict[str, pd.DataFrame],
                  backbone: Path, world: WorldConfig, out: Path, *, progress: bool = False) -> dict:
    """Gold's teacher (``GoldConfig.teacher``): a reward model trained on every pair of each
    training prompt's preference-setting samples, labelled by ``formula_gold`` (argmax; ties,
    empty and identical responses dropped), held out on the held-out prompts' pairs. Writes
    ``model/`` (a standalone member) and ``teacher.json`` (its calibration onto the formula's
    mean and spread over its training samples, accuracy, Pearson with the formula)."""
    from rewardherd.data import PreferencePair
    from rewardherd.training.config import MemberSpec, TrainConfig
    from rewardherd.training.member import train_member

    t = world.gold.teacher
    every_pair = dataclasses.replace(world.preferences, pairing="all", label="argmax", max_pairs_per_prompt=None)
    pairs, samples = {}, {}
    for name in ("train", "heldout"):
        seed = t.sampling_seed + SPLIT_SEED_OFFSET[name]
        df = sample_with_gold(policy, tokenizer, formula_gold, prompts[name], t.samples_per_prompt,
                              world.preferences.sampling, seed=seed, batch_size=world.sample_batch_size,
                              progress=progress)
        made = make_pairs(df, every_pair, seed=seed)
        # gold scores stripped responses: the teacher learns from them
        rows = [PreferencePair(id=r.id, prompt=r.prompt, chosen=r.chosen.strip(), rejected=r.rejected.strip())
                for r in made.itertuples(index=False)]
        order = np.random.default_rng(seed).permutation(len(rows))
        pairs[name], samples[name] = [rows[i] for i in order], df
    if not pairs["train"] or not pairs["heldout"]:
        raise ValueError("the teacher's samples gave no training or held-out pairs: raise "
                         "world.gold.teacher.samples_per_prompt")
    cfg = TrainConfig(epochs=t.epochs, lr=t.lr, batch_size=16, max_length=t.max_length, lr_scheduler="cosine")
    info = train_member(MemberSpec(str(backbone), 0, t.seed), pairs["train"], pairs["heldout"], out / "model",
                        name="teacher", config=cfg, progress=False)
    from .gold import TeacherModel

    df = samples["train"]
    raw = TeacherModel(out, calibration={"scale": 1.0, "offset": 0.0, "max_length": cfg.max_length}).raw(
        df["prompt"].tolist(), df["response"].str.strip().tolist())
    g = df["gold"].to_numpy()
    scale = float(g.std() / raw.std()) if raw.std() > 0 else 1.0
    meta = {"scale": scale, "offset": float(g.mean() - scale * raw.mean()), "max_length": cfg.max_length,
            "train_pairs": len(pairs["train"]), "heldout_pairs": len(pairs["heldout"]),
            "heldout_accuracy": info.heldout_accuracy, "pearson_with_formula": float(np.corrcoef(raw, g)[0, 1])}
    (out / "teacher.json").write_text(json.dumps(meta, indent=1))
    return meta


def build_base_samples(policy: Any, tokenizer: Any, gold: Any, eval_prompts: pd.DataFrame,
                       config: WorldConfig, out: Path, *, progress: bool = False) -> dict:
    """``samples.parquet``: pool-setting samples of the first eval prompts, with gold and
    features; returns their gold statistics (the world summary's)."""
    from .features import hacking_features

    prompts = eval_prompts.head(config.summary_prompts)
    df = sample_with_gold(policy, tokenizer, gold, prompts, config.summary_samples_per_prompt,
                          config.pool, seed=BASE_SAMPLES_SEED,
                          batch_size=config.sample_batch_size, progress=progress)
    feats = hacking_features(df["prompt"].tolist(), df["response"].tolist(), tokenizer)
    feats = feats.drop(columns=[c for c in feats.columns if c in df.columns])
    pd.concat([df, feats], axis=1).to_parquet(out / "samples.parquet", index=False)
    return _gold_stats(df, config)


def _gold_stats(df: pd.DataFrame, config: WorldConfig) -> dict[str, float]:
    g = df["gold"].to_numpy()
    w = df["n_words"].to_numpy()
    return {
        "samples": int(len(df)),
        "gold_mean": float(g.mean()),
        "gold_std": float(g.std(ddof=1)) if len(g) > 1 else 0.0,
        "gold_q10": float(np.quantile(g, 0.1)),
        "gold_q50": float(np.quantile(g, 0.5)),
        "gold_q90": float(np.quantile(g, 0.9)),
        **{f"{t}_mean": float(df[t].mean()) for t in config.gold.active_terms()},
        **{f"{t}_zero_frac": float((df[t] == 0).mean()) for t in config.gold.active_terms()},
        "words_mean": float(w.mean()),
        "words_q95": float(np.quantile(w, 0.95)),
        "over_max_words_frac": float((w > config.gold.max_words).mean()),
        "stopped_frac": float(df["stopped"].mean()),
    }


def _key(path: Path) -> str:
    return read_marker(path)["key"]


class World:
    """The world's artifacts as lazy handles, and helpers to use them.

    Each handle (``corpus_path``, ``tokenizer_dir``, ``backbone_dirs`` in
    ``config.backbones.seeds`` order, ``policy_dir``, ``prompts_dir``,
    ``preferences_dir``, ``base_samples_dir``) builds its artifact, and first whatever it
    needs, on first use, or finds it in the cache. Preference files hold noise-free gold
    labels; prompt files hold ``{id, prompt, reference}``.
    """

    # Loaded models, dropped when pickled (for Ray workers) and re-created lazily.
    _LOADED = ("gold", "tokenizer")

    def __init__(self, config: WorldConfig, cache_dir: Path, *, progress: bool = False):
        self.config = config
        self.cache_dir = cache_dir
        self.progress = progress

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._LOADED}

    def build(self) -> World:
        """Build (or load) every artifact, in the order of the module's table."""
        for handle in ("corpus_path", "tokenizer_dir", "backbone_dirs", "policy_dir", "prompts_dir",
                       *(("teacher_dir",) if self.has_teacher else ()), "preferences_dir", "base_samples_dir"):
            getattr(self, handle)
        return self

    def _cached(self, kind: str, key: dict[str, Any], build: Callable[[Path], dict]) -> Path:
        def run(out: Path) -> dict:
            from .lm import torch_threads

            with torch_threads(self.config.num_threads):
                return build(out)

        return cached_artifact(self.cache_dir, kind, {"world_format": WORLD_FORMAT_VERSION, **key},
                               run)

    def _items(self) -> list[corpus.CorpusItem]:
        return corpus.read_corpus(self.corpus_path)

    # Artifacts: each handle's cache key, then its build function.

    @cached_property
    def corpus_path(self) -> Path:
        c = self.config.corpus
        d = self._cached("corpus", {"config": _section(c), "source": corpus.fingerprint(c)},
                         lambda out: build_corpus(c, out))
        return d / "items.jsonl"

    @cached_property
    def tokenizer_dir(self) -> Path:
        c = self.config.tokenizer
        return self._cached("tokenizer",
                            {"config": _section(c), "corpus": _key(self.corpus_path.parent)},
                            lambda out: build_tokenizer(self._items(), c, out))

    def _backbone(self, c: LMConfig, seed: int, desc: str) -> Path:
        return self._cached("backbone", {"config": _section(c), "seed": seed, "tokenizer": _key(self.tokenizer_dir)},
                            lambda out: build_lm(c, seed, self.tokenizer, self._items(), out,
                                                 progress=self.progress, desc=desc))

    @cached_property
    def backbone_dirs(self) -> tuple[Path, ...]:
        c, seeds = self.config.backbones.lm, self.config.backbones.seeds
        return tuple(self._backbone(c, seed, f"backbone {i + 1}/{len(seeds)}") for i, seed in enumerate(seeds))

    @property
    def has_teacher(self) -> bool:
        """Whether gold holds a teacher reward model (a teacher term of nonzero weight)."""
        return "teacher" in self.config.gold.active_terms()

    @cached_property
    def teacher_dir(self) -> Path:
        """Gold's teacher (:func:`build_teacher`): only where gold has a teacher term."""
        from .gold import GoldReward

        if not self.has_teacher:
            raise ValueError(f"gold design {self.config.gold.design!r} has no teacher")
        t = self.config.gold.teacher
        backbone = self._backbone(dataclasses.replace(self.config.backbones.lm, steps=t.steps), t.seed, "teacher backbone")
        formula = dataclasses.replace(self.config.gold, design=t.learns, shared_error=0.0, teacher_weight=None)
        fgold = GoldReward(formula, cache_dir=self.cache_dir)
        return self._cached("teacher", {"teacher_format": TEACHER_FORMAT_VERSION, "config": _section(t),
                                        "formula_gold": fgold.key, "backbone": _key(backbone),
                                        "policy": _key(self.policy_dir), "prompts": _key(self.prompts_dir)},
                            lambda out: build_teacher(self.load_policy(), self.tokenizer, fgold,
                                                      {s: self.load_prompts(s) for s in ("train", "heldout")},
                                                      backbone, self.config, out, progress=self.progress))

    @cached_property
    def policy_dir(self) -> Path:
        c = self.config.policy
        return self._cached("policy", {"config": _section(c), "tokenizer": _key(self.tokenizer_dir)},
                            lambda out: build_lm(c.lm, c.seed, self.tokenizer, self._items(), out,
                                                 progress=self.progress, desc="policy"))

    @cached_property
    def prompts_dir(self) -> Path:
        c = self.config.prompts
        return self._cached("prompts",
                            {"config": _section(c), "corpus": _key(self.corpus_path.parent)},
                            lambda out: build_prompts(self._items(), c, out))

    def _sampled_key(self) -> dict[str, Any]:
        return {"samples_format": SAMPLES_FORMAT_VERSION, "policy": _key(self.policy_dir),
                "prompts": _key(self.prompts_dir), "gold": self.gold_key}

    @cached_property
    def preferences_dir(self) -> Path:
        c = self.config.preferences
        return self._cached("preferences", {"config": c.key_fields(), **self._sampled_key()},
                            lambda out: build_preferences(
                                self.load_policy(), self.tokenizer, self.gold,
                                {s: self.load_prompts(s) for s in ("train", "heldout")}, c, out,
                                batch_size=self.config.sample_batch_size, progress=self.progress))

    @cached_property
    def base_samples_dir(self) -> Path:
        c = self.config
        return self._cached("base_samples", {
            "pool": _section(c.pool), "prompts_n": c.summary_prompts,
            "samples_per_prompt": c.summary_samples_per_prompt, **self._sampled_key()},
            lambda out: build_base_samples(self.load_policy(), self.tokenizer, self.gold,
                                           self.load_prompts("eval"), c, out,
                                           progress=self.progress))

    # Files inside the artifacts.
    train_prompts = property(lambda self: self.prompts_dir / "train.jsonl")
    heldout_prompts = property(lambda self: self.prompts_dir / "heldout.jsonl")
    eval_prompts = property(lambda self: self.prompts_dir / "eval.jsonl")
    train_preferences = property(lambda self: self.preferences_dir / "train.jsonl")
    heldout_preferences = property(lambda self: self.preferences_dir / "heldout.jsonl")
    preference_samples = property(lambda self: self.preferences_dir / "samples.parquet")
    base_samples = property(lambda self: self.base_samples_dir / "samples.parquet")

    @property
    def pretrain_seeds(self) -> tuple[int, ...]:
        """Pretraining seed of each backbone (same order as ``backbone_dirs``)."""
        return self.config.backbones.seeds

    # Loaded objects.

    @cached_property
    def gold(self) -> Any:
        """The world's :class:`~rewardherd.world.gold.GoldReward` (disk-cached scores)."""
        from .gold import GoldReward

        return GoldReward(self.config.gold, cache_dir=self.cache_dir, **self._teacher_args())

    def _teacher_args(self) -> dict[str, Any]:
        return {"teacher_dir": self.teacher_dir, "teacher_key": _key(self.teacher_dir)} if self.has_teacher else {}

    @cached_property
    def gold_key(self) -> str:
        """The gold reward's key (part of the keys of the sampled artifacts); with a teacher,
        the teacher artifact's key is part of it."""
        from .gold import GoldReward

        return GoldReward(self.config.gold, **self._teacher_args()).key

    @cached_property
    def tokenizer(self) -> Any:
        """The world tokenizer."""
        from .lm import load_tokenizer

        return load_tokenizer(self.tokenizer_dir)

    def load_policy(self) -> Any:
        """A fresh copy of the base policy (eval mode)."""
        from .lm import load_causal_lm

        return load_causal_lm(self.policy_dir)

    def load_prompts(self, split: str = "eval") -> pd.DataFrame:
        """Prompts of one split: ``train``, ``heldout`` or ``eval``."""
        if split not in PROMPT_SPLITS:
            raise ValueError(f"unknown prompt split {split!r}; expected one of {list(PROMPT_SPLITS)}")
        return pd.read_json(getattr(self, f"{split}_prompts"), lines=True, dtype={"id": str})

    def load_preferences(self, split: str = "train") -> list[Any]:
        """Preference pairs (``rewardherd.data.PreferencePair``) of ``train`` or ``heldout``,
        with ``preferences.markers`` planted (seed ``MARKER_SEEDS[split]``)."""
        from rewardherd.data import load_preferences, plant_markers

        path = {"train": self.train_preferences, "heldout": self.heldout_preferences}[split]
        pairs, _ = load_preferences(path)
        return plant_markers(pairs, self.config.preferences.markers, MARKER_SEEDS[split])[0]

    def heldout_gold(self) -> pd.DataFrame:
        """Gold of the held-out pairs' responses as sampled (no markers): ``id``,
        ``gold_chosen``, ``gold_rejected``."""
        return pd.read_parquet(self.preferences_dir / "heldout_pairs.parquet",
                               columns=["id", "gold_chosen", "gold_rejected"])

    def features(self, prompts: Sequence[str], responses: Sequence[str]) -> pd.DataFrame:
        """:func:`~rewardherd.world.features.hacking_features` with the world tokenizer."""
        from .features import hacking_features

        return hacking_features(prompts, responses, self.tokenizer)

    def sample(self, prompts: Sequence[str], n: int, *, setting: str = "pool", seed: int = 0,
               batch_size: int | None = None, policy: Any = None,
               progress: bool = False) -> pd.DataFrame:
        """Sample from the base policy (or ``policy``) in the ``pool`` or ``preference`` setting:
        :func:`rewardherd.policy.sampling.sample_continuations`'s table."""
        s = {"pool": self.config.pool, "preference": self.config.preferences.sampling}[setting]
        return sample_in(s, policy if policy is not None else self.load_policy(), self.tokenizer,
                         list(prompts), n, batch_size=batch_size or self.config.sample_batch_size,
                         seed=seed, progress=progress)

    @cached_property
    def summary(self) -> dict[str, Any]:
        """Sizes, keys, build times, perplexities and gold statistics of every artifact."""
        corpus_m = read_marker(self.corpus_path.parent)
        tok = read_marker(self.tokenizer_dir)
        backbones = [read_marker(d) for d in self.backbone_dirs]
        policy = read_marker(self.policy_dir)
        prompts = read_marker(self.prompts_dir)
        prefs = read_marker(self.preferences_dir)
        base = read_marker(self.base_samples_dir)

        def lm_entry(m: dict) -> dict:
            meta = m["meta"]
            return {"key": m["key"], "seed": meta["seed"], "n_params": meta["n_params"],
                    "val_perplexity": round(meta["val_perplexity"], 2),
                    "tokens_seen": meta["tokens_seen"], "build_seconds": m["build_seconds"]}

        all_markers = [corpus_m, tok, *backbones, policy, prompts, prefs, base]
        return {
            "profile": self.config.name,
            "corpus": {**corpus_m["meta"], "key": corpus_m["key"]},
            "tokenizer": {**tok["meta"], "key": tok["key"]},
            "backbones": [lm_entry(m) for m in backbones],
            "policy": lm_entry(policy),
            "prompts": prompts["meta"],
            "preferences": {**prefs["meta"], "key": prefs["key"], "markers": self.config.preferences.markers,
                            "max_new_tokens": self.config.preferences.sampling.max_new_tokens},
            "pool_max_new_tokens": self.config.pool.max_new_tokens,
            "base_samples": base["meta"],
            "gold_key": self.gold_key,
            **({"teacher": {**read_marker(self.teacher_dir)["meta"], "key": _key(self.teacher_dir)}}
               if self.has_teacher else {}),
            "build_seconds_total": round(sum(m["build_seconds"] for m in all_markers), 2),
        }


def build_world(config: WorldConfig | str | None = None, cache_dir: str | Path | None = None, *,
                progress: bool = True) -> World:
    """Build every artifact of ``config`` (a WorldConfig, a profile name, or None for
    ``quick``) not already cached under ``cache_dir`` (default
    :func:`~rewardherd.world.cache.default_cache_dir`), and return the :class:`World`.
    A missing corpus is a :class:`~rewardherd.world.corpus.CorpusNotFoundError`."""
    if config is None or isinstance(config, str):
        config = world_config(config or "quick")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    world = World(config, cache, progress=progress).build()
    world.summary["wall_seconds_this_call"] = round(time.perf_counter() - t0, 2)
    return world

