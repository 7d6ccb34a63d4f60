"""Preference data: schema, loading and validation, splits, label noise, bootstrap resamples.

Pairs follow TRL's conventions (explicit ``prompt``/``chosen``/``rejected``; also
implicit-prompt and conversational inputs) so that :func:`to_trl_records` feeds
TRL's ``RewardTrainer`` directly.

Example::

    pairs, report = load_preferences("prefs.jsonl", skip_invalid=True, max_chars=4000)
    print(report.summary())
    train, heldout = split_by_prompt(pairs, heldout_fraction=0.1)
    noisy_train, flipped = inject_label_noise(train, rate=0.25, seed=0)

Importing this package does not import ``datasets`` or ``pyarrow``; they are loaded
when a Parquet file or dataset directory is read or written.
"""

from rewardherd.data.loading import load_preferences, write_preferences
from rewardherd.data.markers import plant_markers
from rewardherd.data.noise import inject_label_noise
from rewardherd.data.records import to_trl_records
from rewardherd.data.resample import bootstrap_counts, bootstrap_pairs
from rewardherd.data.schema import (
    SKIP_REASONS,
    LoadReport,
    PreferenceDataError,
    PreferencePair,
    make_pair_id,
)
from rewardherd.data.splits import split_by_prompt

__all__ = [
    "SKIP_REASONS",
    "LoadReport",
    "PreferenceDataError",
    "PreferencePair",
    "bootstrap_counts",
    "bootstrap_pairs",
    "inject_label_noise",
    "load_preferences",
    "make_pair_id",
    "plant_markers",
    "split_by_prompt",
    "to_trl_records",
    "write_preferences",
]
