"""Build (or load from the cache) the built-in world, and the :class:`World` handle.

Artifacts and what each one's cache key includes (besides its kind and a format
version):

=============  ==========================================================
corpus         corpus config, fingerprint (name, size, hash) of the source files
tokenizer      tokenizer config, corpus key
backbone (K)   backbone LM config, its seed, tokenizer key
policy         policy config, tokenizer key
prompts        prompt config, corpus key
preferences    preference config, policy key, prompts key, gold key
base_samples   pool setting, summary sizes, policy key, prompts key, gold key
=============  ==========================================================

so e.g. a changed ``policy.lm.steps`` rebuilds the policy, the preference data and the
base samples, and nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .cache import cached_artifact, default_cache_dir, read_marker
from .config import PromptConfig, WorldConfig, world_config

logger = logging.getLogger(__name__)

WORLD_FORMAT_VERSION = 1
# Versions of the code that writes sampled artifacts (bumped when sampling or pairing
# changes), so that only those artifacts rebuild.
SAMPLES_FORMAT_VERSION = 2
PROMPT_SPLITS = {"train": "pref_train", "heldout": "pref_heldout", "eval": "eval"}


def _section(obj: Any) -> Any:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj


def extract_prompts(items: Sequence[Any], config: PromptConfig) -> pd.DataFrame:
    """Openings of corpus items as prompts.

    The number of words in an item's opening is drawn in [min_words, max_words] from a
    stable hash of the item; items whose remainder would be shorter than
    ``min_continuation_words`` are skipped, and so are repeated openings (sampling is
    seeded by the prompt text, so a repeated prompt would repeat its samples).

    Returns:
        Columns ``id``, ``prompt``, ``reference`` (the item's true continuation).
    """
    import hashlib

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


class World:
    """Paths and handles of a built world.

    Attributes:
        config: The world's config.
        cache_dir: The cache root.
        tokenizer_dir: Saved tokenizer (``AutoTokenizer.from_pretrained``).
        policy_dir: Base policy (``AutoModelForCausalLM``; tokenizer saved alongside).
        backbone_dirs: One pretrained backbone per seed, in ``config.backbones.seeds``
            order (``AutoModelForSequenceClassification.from_pretrained(d, num_labels=1)``).
        train_preferences: JSONL pairs for RM training (noise-free gold labels).
        heldout_preferences: JSONL pairs from held-out prompts (accuracy, statistics).
        train_prompts / heldout_prompts / eval_prompts: JSONL ``{id, prompt, reference}``.
        preference_samples: Parquet of every preference-setting sample with gold terms.
        base_samples: Parquet of pool-setting samples on eval prompts, with gold and
            features (the summary's statistics).
        summary: Sizes, build times, perplexities and gold statistics.
    """

    def __init__(self, config: WorldConfig, cache_dir: Path, paths: dict[str, Any],
                 summary: dict[str, Any]):
        self.config = config
        self.cache_dir = cache_dir
        self.corpus_path: Path = paths["corpus"]
        self.tokenizer_dir: Path = paths["tokenizer"]
        self.policy_dir: Path = paths["policy"]
        self.backbone_dirs: tuple[Path, ...] = tuple(paths["backbones"])
        self.train_prompts: Path = paths["prompts"] / "train.jsonl"
        self.heldout_prompts: Path = paths["prompts"] / "heldout.jsonl"
        self.eval_prompts: Path = paths["prompts"] / "eval.jsonl"
        self.train_preferences: Path = paths["preferences"] / "train.jsonl"
        self.heldout_preferences: Path = paths["preferences"] / "heldout.jsonl"
        self.preference_samples: Path = paths["preferences"] / "samples.parquet"
        self.base_samples: Path = paths["base_samples"] / "samples.parquet"
        self.summary = summary
        self._gold: Any = None
        self._tokenizer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for Ray workers: loaded models are re-created lazily.
        state = dict(self.__dict__)
        state["_gold"] = None
        state["_tokenizer"] = None
        return state

    @property
    def pretrain_seeds(self) -> tuple[int, ...]:
        """Pretraining seed of each backbone (same order as ``backbone_dirs``)."""
        return self.config.backbones.seeds

    @property
    def gold(self) -> Any:
        """The world's :class:`~rewardherd.world.gold.GoldReward` (disk-cached scores)."""
        if self._gold is None:
            from .gold import GoldReward

            self._gold = GoldReward(self.config.gold, cache_dir=self.cache_dir)
        return self._gold

    @property
    def tokenizer(self) -> Any:
        """The world tokenizer."""
        if self._tokenizer is None:
            from .lm import load_tokenizer

            self._tokenizer = load_tokenizer(self.tokenizer_dir)
        return self._tokenizer

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
        """Preference pairs (``rewardherd.data.PreferencePair``) of ``train`` or ``heldout``."""
        from rewardherd.data import load_preferences

        path = {"train": self.train_preferences, "heldout": self.heldout_preferences}[split]
        pairs, _ = load_preferences(path)
        return pairs

    def features(self, prompts: Sequence[str], responses: Sequence[str]) -> pd.DataFrame:
        """:func:`~rewardherd.world.features.hacking_features` with the world tokenizer."""
        from .features import hacking_features

        return hacking_features(prompts, responses, self.tokenizer)

    def sample(self, prompts: Sequence[str], n: int, *, setting: str = "pool", seed: int = 0,
               batch_size: int | None = None, policy: Any = None,
               progress: bool = False) -> pd.DataFrame:
        """Sample from the base policy (or ``policy``) in the ``pool`` or ``preference`` setting.

        Returns:
            :func:`rewardherd.policy.sampling.sample_continuations`'s table.
        """
        from rewardherd.policy.sampling import sample_continuations

        s = {"pool": self.config.pool, "preference": self.config.preferences.sampling}[setting]
        return sample_continuations(
            policy if policy is not None else self.load_policy(), self.tokenizer, list(prompts), n,
            max_new_tokens=s.max_new_tokens, min_new_tokens=s.min_new_tokens,
            temperature=s.temperature, top_p=s.top_p,
            batch_size=batch_size or self.config.sample_batch_size, seed=seed, progress=progress,
        )


def build_world(config: WorldConfig | str | None = None, cache_dir: str | Path | None = None, *,
                progress: bool = True) -> World:
    """Build every artifact of the world that is not already cached, and return it.

    Args:
        config: A :class:`WorldConfig`, a profile name, or None for ``quick``.
        cache_dir: Cache root (default :func:`~rewardherd.world.cache.default_cache_dir`).
        progress: Show progress bars.

    Returns:
        The :class:`World`.

    Raises:
        rewardherd.world.corpus.CorpusNotFoundError: if the corpus is not installed.
    """
    from .lm import torch_threads

    if config is None or isinstance(config, str):
        config = world_config(config or "quick")
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with torch_threads(config.num_threads):
        paths, keys = _build_all(config, cache, progress)
    summary = _summarize(config, paths, keys)
    summary["wall_seconds_this_call"] = round(time.perf_counter() - t0, 2)
    return World(config, cache, paths, summary)


def _key(path: Path) -> str:
    return read_marker(path)["key"]


def _build_all(config: WorldConfig, cache: Path, progress: bool) -> tuple[dict[str, Any], dict]:
    from . import corpus as corpus_mod
    from . import lm
    from .gold import GoldReward

    v = {"world_format": WORLD_FORMAT_VERSION}
    paths: dict[str, Any] = {}

    # Corpus.
    def build_corpus(tmp: Path) -> dict:
        items = corpus_mod.load_corpus(config.corpus)
        corpus_mod.write_corpus(items, tmp / "items.jsonl")
        counts: dict[str, int] = {}
        for it in items:
            counts[it.split] = counts.get(it.split, 0) + 1
        return {"items": len(items), "splits": counts}

    corpus_dir = cached_artifact(cache, "corpus", {**v, "config": _section(config.corpus),
                                                   "source": corpus_mod.fingerprint(config.corpus)},
                                 build_corpus)
    paths["corpus"] = corpus_dir / "items.jsonl"
    corpus_key = _key(corpus_dir)
    items_cache: list[Any] = []

    def items() -> list[Any]:
        if not items_cache:
            items_cache.extend(corpus_mod.read_corpus(paths["corpus"]))
        return items_cache

    def texts(split: str) -> list[str]:
        return [it.text for it in items() if it.split == split]

    # Tokenizer.
    def build_tokenizer(tmp: Path) -> dict:
        tok = lm.train_tokenizer(texts("pretrain"), config.tokenizer)
        tok.save_pretrained(str(tmp))
        return {"vocab_size": len(tok)}

    tok_dir = cached_artifact(cache, "tokenizer", {**v, "config": _section(config.tokenizer),
                                                   "corpus": corpus_key}, build_tokenizer)
    paths["tokenizer"] = tok_dir
    tok_key = _key(tok_dir)
    tok_cache: list[Any] = []

    def tokenizer() -> Any:
        if not tok_cache:
            tok_cache.append(lm.load_tokenizer(tok_dir))
        return tok_cache[0]

    # Backbones (one per pretraining seed) and the policy.
    def lm_builder(lm_cfg: Any, seed: int, desc: str) -> Any:
        def build(tmp: Path) -> dict:
            return lm.pretrain_lm(lm_cfg, tokenizer(), texts("pretrain"), texts("val"), seed, tmp,
                                  progress=progress, desc=desc)
        return build

    paths["backbones"] = []
    for i, seed in enumerate(config.backbones.seeds):
        d = cached_artifact(cache, "backbone", {**v, "config": _section(config.backbones.lm),
                                                "seed": seed, "tokenizer": tok_key},
                            lm_builder(config.backbones.lm, seed,
                                       f"backbone {i + 1}/{len(config.backbones.seeds)}"))
        paths["backbones"].append(d)
    policy_dir = cached_artifact(cache, "policy", {**v, "config": _section(config.policy),
                                                  "tokenizer": tok_key},
                                 lm_builder(config.policy.lm, config.policy.seed, "policy"))
    paths["policy"] = policy_dir
    policy_key = _key(policy_dir)

    # Prompts.
    def build_prompts(tmp: Path) -> dict:
        counts = {}
        for name, split in PROMPT_SPLITS.items():
            df = extract_prompts([it for it in items() if it.split == split], config.prompts)
            df.to_json(tmp / f"{name}.jsonl", orient="records", lines=True, force_ascii=False)
            counts[name] = len(df)
        return counts

    prompts_dir = cached_artifact(cache, "prompts", {**v, "config": _section(config.prompts),
                                                     "corpus": corpus_key}, build_prompts)
    paths["prompts"] = prompts_dir
    prompts_key = _key(prompts_dir)
    gold_key = GoldReward(config.gold).key
    gold_cache: list[Any] = []
    policy_cache: list[Any] = []

    def gold() -> Any:
        if not gold_cache:
            gold_cache.append(GoldReward(config.gold, cache_dir=cache))
        return gold_cache[0]

    def policy() -> Any:
        if not policy_cache:
            policy_cache.append(lm.load_causal_lm(policy_dir))
        return policy_cache[0]

    def read_prompts(name: str) -> pd.DataFrame:
        return pd.read_json(prompts_dir / f"{name}.jsonl", lines=True, dtype={"id": str})

    def sample_scored(prompts: pd.DataFrame, n: int, s: Any, seed: int) -> pd.DataFrame:
        from rewardherd.policy.sampling import sample_continuations

        df = sample_continuations(
            policy(), tokenizer(), prompts["prompt"].tolist(), n, max_new_tokens=s.max_new_tokens,
            min_new_tokens=s.min_new_tokens, temperature=s.temperature, top_p=s.top_p,
            batch_size=config.sample_batch_size, seed=seed, prompt_ids=prompts["id"].tolist(),
            progress=progress,
        ).drop(columns=["response_ids"])
        comps = gold().components(df["prompt"].tolist(), df["response"].tolist())
        return pd.concat([df, comps], axis=1)

    # Preference data (short-output setting: the distribution shift).
    def build_preferences(tmp: Path) -> dict:
        from .preferences import make_pairs, pair_summary, write_pairs

        pc = config.preferences
        meta: dict[str, Any] = {}
        all_samples = []
        for name, cap, off in (("train", pc.max_train_pairs, 0), ("heldout", pc.max_heldout_pairs, 1)):
            samples = sample_scored(read_prompts(name), pc.samples_per_prompt, pc.sampling,
                                    pc.seed + off)
            pairs = make_pairs(samples, pc, max_pairs=cap, seed=pc.seed + 10 + off)
            if len(pairs) == 0:
                raise ValueError(f"no {name} preference pairs could be formed")
            write_pairs(pairs, tmp / f"{name}.jsonl")
            pairs.to_parquet(tmp / f"{name}_pairs.parquet", index=False)
            all_samples.append(samples.assign(split=name))
            meta[name] = pair_summary(pairs)
        pd.concat(all_samples, ignore_index=True).to_parquet(tmp / "samples.parquet", index=False)
        return meta

    pref_dir = cached_artifact(cache, "preferences", {
        **v, "samples_format": SAMPLES_FORMAT_VERSION,
        "config": _section(config.preferences), "policy": policy_key,
        "prompts": prompts_key, "gold": gold_key}, build_preferences)
    paths["preferences"] = pref_dir

    # Base samples in the pool setting: the summary's gold statistics.
    def build_base(tmp: Path) -> dict:
        from .features import hacking_features

        prompts = read_prompts("eval").head(config.summary_prompts)
        df = sample_scored(prompts, config.summary_samples_per_prompt, config.pool, seed=0)
        feats = hacking_features(df["prompt"].tolist(), df["response"].tolist(), tokenizer())
        feats = feats.drop(columns=[c for c in feats.columns if c in df.columns])
        pd.concat([df, feats], axis=1).to_parquet(tmp / "samples.parquet", index=False)
        return _gold_stats(df, config)

    base_dir = cached_artifact(cache, "base_samples", {
        **v, "samples_format": SAMPLES_FORMAT_VERSION,
        "pool": _section(config.pool), "prompts_n": config.summary_prompts,
        "samples_per_prompt": config.summary_samples_per_prompt, "policy": policy_key,
        "prompts": prompts_key, "gold": gold_key}, build_base)
    paths["base_samples"] = base_dir
    keys = {"gold": gold_key}
    return paths, keys


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
        "sentiment_zero_frac": float((df["sentiment"] == 0).mean()),
        "relevance_mean": float(df["relevance"].mean()),
        "repetition_mean": float(df["repetition"].mean()),
        "words_mean": float(w.mean()),
        "words_q95": float(np.quantile(w, 0.95)),
        "over_max_words_frac": float((w > config.gold.max_words).mean()),
        "stopped_frac": float(df["stopped"].mean()),
    }


def _summarize(config: WorldConfig, paths: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    def marker(p: Path) -> dict:
        return read_marker(p)

    corpus = marker(paths["corpus"].parent)
    tok = marker(paths["tokenizer"])
    backbones = [marker(d) for d in paths["backbones"]]
    policy = marker(paths["policy"])
    prompts = marker(paths["prompts"])
    prefs = marker(paths["preferences"])
    base = marker(paths["base_samples"])

    def lm_entry(m: dict) -> dict:
        meta = m["meta"]
        return {"key": m["key"], "seed": meta["seed"], "n_params": meta["n_params"],
                "val_perplexity": round(meta["val_perplexity"], 2),
                "tokens_seen": meta["tokens_seen"], "build_seconds": m["build_seconds"]}

    all_markers = [corpus, tok, *backbones, policy, prompts, prefs, base]
    return {
        "profile": config.name,
        "corpus": {**corpus["meta"], "key": corpus["key"]},
        "tokenizer": {**tok["meta"], "key": tok["key"]},
        "backbones": [lm_entry(m) for m in backbones],
        "policy": lm_entry(policy),
        "prompts": prompts["meta"],
        "preferences": {**prefs["meta"], "key": prefs["key"],
                        "max_new_tokens": config.preferences.sampling.max_new_tokens},
        "pool_max_new_tokens": config.pool.max_new_tokens,
        "base_samples": base["meta"],
        "gold_key": keys["gold"],
        "build_seconds_total": round(sum(m["build_seconds"] for m in all_markers), 2),
    }


def summary_json(world: World) -> str:
    """The world's summary as indented JSON."""
    return json.dumps(world.summary, indent=1, sort_keys=False)
