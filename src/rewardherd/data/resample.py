"""Bootstrap resamples of preference pairs (bagging, Breiman 1996).

One definition serves both ensemble paths: a multi-head ensemble weights each head's
loss by :func:`bootstrap_counts`, and a member trained with ``TrainConfig.bootstrap``
trains on :func:`bootstrap_pairs`, which repeats each pair as often as the same counts
say. So a member and a head with the same seed see the same resample of the same pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewardherd.data.schema import PreferencePair


def bootstrap_counts(n: int, seeds: Sequence[int]) -> np.ndarray:
    """(K, n) int64: how often each resample holds each of ``n`` pairs.

    Resample k draws n pairs with replacement using ``numpy.random.default_rng(seeds[k])``.
    """
    out = np.empty((len(seeds), n), dtype=np.int64)
    for k, s in enumerate(seeds):
        out[k] = np.bincount(np.random.default_rng(int(s)).integers(0, n, size=n), minlength=n)
    return out


def bootstrap_pairs(pairs: Sequence[PreferencePair], seed: int) -> list[PreferencePair]:
    """A bootstrap resample of ``pairs`` (same size, with replacement), in input order:
    pair i appears ``bootstrap_counts(len(pairs), [seed])[0, i]`` times. Same inputs,
    same output; the input is not modified."""
    pairs = list(pairs)
    counts = bootstrap_counts(len(pairs), [seed])[0]
    return [p for p, c in zip(pairs, counts.tolist(), strict=True) for _ in range(c)]
