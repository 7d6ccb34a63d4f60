"""Preference data of the world: gold-labelled pairs of base-policy responses.

Each prompt's ``samples_per_prompt`` responses, drawn in the short-output *preference*
setting (the "older policy" of the distribution shift), are paired in sample order,
(0, 1), (2, 3), ... (``pairing="order"``), or only with a sample of the same word count
(``pairing="equal_length"``, in sample order within each count), and labelled by gold:
``argmax`` (as Gao et al. and Coste et al. label from their gold RM) or ``bradley_terry``
(chosen drawn with probability sigmoid(gap / label_temperature)). Pairs with an empty or identical response, repeats,
and gold gaps <= ``min_gold_gap`` are dropped. Labels are noise-free (the study adds
noise per seed) and files use the user-facing format (:func:`write_pairs`).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .config import PreferenceConfig

logger = logging.getLogger(__name__)


def make_pairs(samples: pd.DataFrame, config: PreferenceConfig, *, max_pairs: int | None = None,
               seed: int = 0) -> pd.DataFrame:
    """Pair and label samples (``prompt_id``, ``prompt``, ``sample_id``, ``response``,
    ``gold``, optionally ``n_words``); ``max_pairs`` keeps the first pairs by prompt order,
    ``seed`` draws Bradley-Terry labels.

    Returns one row per pair: ``id``, ``prompt_id``, ``prompt``, ``chosen``, ``rejected``,
    ``gold_chosen``, ``gold_rejected`` (and ``words_chosen``/``words_rejected`` with
    ``n_words``)."""
    if config.pairing == "equal_length" and "n_words" not in samples:
        raise ValueError("preferences.pairing=equal_length needs the samples' n_words column")
    rng = np.random.default_rng(seed)
    rows = []
    seen: set[tuple[str, str, str]] = set()
    df = samples.sort_values(["prompt_id", "sample_id"], kind="stable")
    for pid, group in df.groupby("prompt_id", sort=False):
        made = 0
        for k, (a, b) in enumerate(_candidates(group.to_dict("records"), config.pairing)):
            if config.max_pairs_per_prompt is not None and made >= config.max_pairs_per_prompt:
                break
            diff = a["gold"] - b["gold"]
            triple = (a["prompt"], *sorted((a["response"], b["response"])))
            empty = not a["response"].strip() or not b["response"].strip()
            if (empty or a["response"] == b["response"] or abs(diff) <= config.min_gold_gap
                    or triple in seen):
                continue
            seen.add(triple)
            made += 1
            if config.label == "argmax":
                a_wins = diff > 0
            else:
                p = 1.0 / (1.0 + np.exp(-diff / config.label_temperature))
                a_wins = bool(rng.random() < p)
            c, r = (a, b) if a_wins else (b, a)
            row = {"id": f"{pid}-{k}", "prompt_id": pid, "prompt": a["prompt"],
                   "chosen": c["response"], "rejected": r["response"],
                   "gold_chosen": c["gold"], "gold_rejected": r["gold"]}
            if "n_words" in a:
                row["words_chosen"], row["words_rejected"] = c["n_words"], r["n_words"]
            rows.append(row)
    out = pd.DataFrame(rows)
    if max_pairs is not None:
        out = out.head(max_pairs)
    return out.reset_index(drop=True)


def _candidates(samples: list[dict], pairing: str) -> list[tuple[dict, dict]]:
    """A prompt's candidate pairs in sample order: every pair (``all``), or disjoint ones:
    consecutive samples (``order``), or consecutive samples of each word count, counts in order of first
    appearance (``equal_length``; needs ``n_words``)."""
    if pairing == "order":
        return [(samples[k], samples[k + 1]) for k in range(0, len(samples) - 1, 2)]
    if pairing == "all":
        return list(itertools.combinations(samples, 2))
    by_len: dict[int, list[dict]] = {}
    for s in samples:
        by_len.setdefault(int(s["n_words"]), []).append(s)
    return [(same[k], same[k + 1]) for same in by_len.values() for k in range(0, len(same) - 1, 2)]


def write_pairs(pairs: pd.DataFrame, path: Path) -> Path:
    """Write pairs as user-format JSONL via ``rewardherd.data.write_preferences``."""
    from rewardherd.data import PreferencePair, write_preferences

    return write_preferences(
        [PreferencePair(id=str(r.id), prompt=r.prompt, chosen=r.chosen, rejected=r.rejected)
         for r in pairs.itertuples(index=False)],
        path, overwrite=True,
    )


def pair_summary(pairs: pd.DataFrame) -> dict[str, float]:
    """Sizes and the length signal of a pair table."""
    out: dict[str, float] = {"pairs": int(len(pairs))}
    if len(pairs) == 0:
        return out
    gap = pairs["gold_chosen"] - pairs["gold_rejected"]
    out["gold_gap_mean"] = float(gap.mean())
    if "words_chosen" in pairs:
        longer = pairs["words_chosen"] != pairs["words_rejected"]
        out["chosen_longer_frac"] = float(
            (pairs["words_chosen"] > pairs["words_rejected"])[longer].mean()) if longer.any() else 0.5
        out["words_mean"] = float(pd.concat([pairs["words_chosen"], pairs["words_rejected"]]).mean())
    return out
