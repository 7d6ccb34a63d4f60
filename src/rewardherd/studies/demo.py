"""The README's first command until the full study runs: a small end-to-end path.

Builds a tiny tokenizer and two tiny backbones locally, writes rule-labelled
preference data, trains a 3-member fine-tune-seed ensemble with TRL, reloads it,
and prints per-member scores, aggregates and spread for a few responses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rewardherd import core


def run_demo(out: Path) -> None:
    from rewardherd.data import split_by_prompt, write_preferences
    from rewardherd.models import Ensemble
    from rewardherd.models.tiny import build_saved_backbones, rule_labelled_pairs
    from rewardherd.training import EnsembleConfig, TrainConfig, train_ensemble

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = rule_labelled_pairs(600, seed=0)
    data = out / "prefs.jsonl"
    if not data.exists():
        write_preferences(pairs, data)
    train, heldout = split_by_prompt(pairs, heldout_fraction=0.15)
    backbone = out / "backbone_seed0"
    if not backbone.exists():
        build_saved_backbones(out, [0])
    manifest = train_ensemble(
        train, heldout, out / "ensemble",
        EnsembleConfig(kind="finetune_seeds", backbones=(str(backbone),), n_members=3),
        TrainConfig(epochs=3, lr=2e-3, batch_size=16),
    )
    print(f"\nensemble: {out / 'ensemble'}")
    for m in manifest.members:
        print(f"  {m.name}: held-out accuracy {m.heldout_accuracy:.3f} on {m.n_heldout_pairs} pairs")
    ens = Ensemble.load(out / "ensemble")
    responses = ["good happy kind", "good bad happy", "sad dark cold", "wonderful", "awful"]
    prompts = ["item 9999: "] * len(responses)
    raw = ens.score(prompts, responses)
    print("\nper-member raw scores (rows: members):")
    print(np.array2string(raw, precision=3))
    print(f"\n{'response':<20}" + "".join(f"{m:>22}" for m in core.METHODS) + f"{'spread std':>12}")
    outs = {m: ens.aggregate_scores(raw, m) for m in core.METHODS}
    for j, r in enumerate(responses):
        row = "".join(f"{outs[m].reward[j]:>22.3f}" for m in core.METHODS)
        print(f"{r:<20}{row}{outs['mean'].spread.std[j]:>12.3f}")
