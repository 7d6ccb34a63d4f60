"""Preference data of the world: gold-labelled pairs of base-policy responses.

For each prompt, ``samples_per_prompt`` responses are drawn from the policy in the
*preference* sampling setting (short outputs: the "older policy" of the distribution
shift) and paired disjointly in sample order: (0, 1), (2, 3), ... Each pair is labelled
by the gold reward:

- ``argmax`` (default): chosen = the response with the higher gold reward. This is
  how Gao et al. and Coste et al. label their synthetic data from the gold RM.
- ``bradley_terry``: chosen = response a with probability
  sigmoid((gold_a - gold_b) / label_temperature), drawn with a seeded generator.

Pairs with an empty (whitespace-only) response, identical responses, repeated pairs, or
pairs whose gold rewards differ by no more than ``min_gold_gap`` (exact ties with the default 0) are dropped. Labels are noise-free:
the study injects label noise per seed (``rewardherd.data.inject_label_noise``).
Files use the user-facing format (``rewardherd.data.write_preferences``: JSONL rows
``id``, ``prompt``, ``chosen``, ``rejected``), so the rest of the pipeline treats them
like any user data.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .config import PreferenceConfig

logger = logging.getLogger(__name__)


def make_pairs(samples: pd.DataFrame, config: PreferenceConfig, *, max_pairs: int | None = None,
               seed: int = 0) -> pd.DataFrame:
    """Pair and label samples.

    Args:
        samples: Rows with ``prompt_id``, ``prompt``, ``sample_id``, ``response``, ``gold``
            (and optionally ``n_words``).
        config: Labelling rule.
        max_pairs: Keep the first this many pairs (by prompt order), None keeps all.
        seed: Seed of Bradley-Terry labels.

    Returns:
        One row per pair: ``id``, ``prompt_id``, ``prompt``, ``chosen``, ``rejected``,
        ``gold_chosen``, ``gold_rejected`` (and ``words_chosen``/``words_rejected``
        when ``n_words`` is given).
    """
    rng = np.random.default_rng(seed)
    rows = []
    seen: set[tuple[str, str, str]] = set()
    df = samples.sort_values(["prompt_id", "sample_id"], kind="stable")
    for pid, group in df.groupby("prompt_id", sort=False):
        g = group.to_dict("records")
        for k in range(0, len(g) - 1, 2):
            a, b = g[k], g[k + 1]
            diff = a["gold"] - b["gold"]
            triple = (a["prompt"], *sorted((a["response"], b["response"])))
            empty = not a["response"].strip() or not b["response"].strip()
            if (empty or a["response"] == b["response"] or abs(diff) <= config.min_gold_gap
                    or triple in seen):
                continue
            seen.add(triple)
            if config.label == "argmax":
                a_wins = diff > 0
            else:
                p = 1.0 / (1.0 + np.exp(-diff / config.label_temperature))
                a_wins = bool(rng.random() < p)
            c, r = (a, b) if a_wins else (b, a)
            row = {"id": f"{pid}-{k // 2}", "prompt_id": pid, "prompt": a["prompt"],
                   "chosen": c["response"], "rejected": r["response"],
                   "gold_chosen": c["gold"], "gold_rejected": r["gold"]}
            if "n_words" in a:
                row["words_chosen"], row["words_rejected"] = c["n_words"], r["n_words"]
            rows.append(row)
    out = pd.DataFrame(rows)
    if max_pairs is not None:
        out = out.head(max_pairs)
    return out.reset_index(drop=True)


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
