"""Per-member resamples of preference pairs: bootstrap (bagging, Breiman 1996) and
subsamples without replacement (subagging, Buhlmann & Yu 2002).

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


#: Seed of the block of pairs every member's subsample shares (:func:`subsample_counts`).
SHARED_BLOCK_SEED = 2_147_483_647


def subsample_counts(n: int, seeds: Sequence[int], size: int, shared: float = 0.0) -> np.ndarray:
    """(K, n) int64 of 0s and 1s: resample k holds ``size`` distinct pairs of ``n``.

    ``round(shared * size)`` of them are one block every resample holds, drawn by
    ``numpy.random.default_rng(SHARED_BLOCK_SEED)``; the rest are drawn without replacement
    from the other pairs by ``numpy.random.default_rng(seeds[k])`` (``shared=0``: resamples
    independent, ``shared=1``: all the same)."""
    if not 1 <= size <= n:
        raise ValueError(f"subsample={size} must be in [1, {n}] (the number of training pairs)")
    if not 0.0 <= shared <= 1.0:
        raise ValueError(f"subsample_shared must be in [0, 1]; got {shared}")
    n_shared = int(round(shared * size))
    block = np.random.default_rng(SHARED_BLOCK_SEED).choice(n, size=n_shared, replace=False)
    rest = np.setdiff1d(np.arange(n), block)
    out = np.zeros((len(seeds), n), dtype=np.int64)
    out[:, block] = 1
    for k, s in enumerate(seeds):
        out[k, rest[np.random.default_rng(int(s)).choice(len(rest), size=size - n_shared, replace=False)]] = 1
    return out


def member_counts(n: int, seed: int, *, bootstrap: bool = False, subsample: int | None = None,
                  subsample_shared: float = 0.0) -> np.ndarray | None:
    """(n,) how often the member of fine-tune seed ``seed`` sees each of ``n`` pairs: its bootstrap
    resample, its subsample of ``subsample`` pairs (``subsample_shared`` of them common to every
    member), or None (every pair once)."""
    if bootstrap and subsample is not None:
        raise ValueError("bootstrap and subsample are exclusive: choose one resample per member")
    if bootstrap:
        return bootstrap_counts(n, [seed])[0]
    if subsample is not None:
        return subsample_counts(n, [seed], subsample, subsample_shared)[0]
    return None


def repeat_pairs(pairs: Sequence[PreferencePair], counts: np.ndarray | None) -> list[PreferencePair]:
    """``pairs`` in input order, pair i repeated ``counts[i]`` times (None: each once); the
    input is not modified."""
    pairs = list(pairs)
    if counts is None:
        return pairs
    return [p for p, c in zip(pairs, counts.tolist(), strict=True) for _ in range(c)]


def bootstrap_pairs(pairs: Sequence[PreferencePair], seed: int) -> list[PreferencePair]:
    """A bootstrap resample of ``pairs`` (same size, with replacement), in input order:
    pair i appears ``bootstrap_counts(len(pairs), [seed])[0, i]`` times. Same inputs,
    same output; the input is not modified."""
    return repeat_pairs(pairs, bootstrap_counts(len(pairs), [seed])[0])
