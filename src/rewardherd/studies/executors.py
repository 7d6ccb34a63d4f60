"""How a study runs its units: in this process, in spawned processes (``workers`` > 1, one
thread each) or on Ray (``executor=ray``); every unit is idempotent, so a rerun resumes."""

from __future__ import annotations

import functools
import gc
import logging
import os

from rewardherd.studies.config import StudyConfig

log = logging.getLogger(__name__)


def frozen_heap(fn):
    """Run ``fn`` with the objects that exist when it starts frozen out of the garbage
    collector's view (``gc.freeze``), unfrozen again when it returns. Transformers' Trainer
    ends with ``gc.collect()``, which otherwise scans the study's whole heap (~0.3 s per unit)."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        gc.freeze()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.unfreeze()

    return run


def run_units(fn, units, args, config: StudyConfig, desc: str, progress: bool, *, processes: bool = False) -> list:
    """``fn(unit, *args(unit))`` for every unit, in order: on Ray with ``executor=ray``; in
    ``config.workers`` spawned processes when ``processes`` (member units, whose training is
    the study's cost) and workers > 1; else here, one after another."""
    if not units:
        return []
    if config.executor == "ray":
        return run_ray(fn, units, args, config, desc)
    if processes and config.workers > 1:
        return run_processes(fn, units, args, config.workers, desc, progress)
    from tqdm.auto import tqdm

    out = []
    bar = tqdm(units, desc=desc, unit="unit", disable=not progress)
    for u in bar:
        bar.set_postfix_str(u.name[:48])
        out.append(fn(u, *args(u)))
    return out


def pin_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_processes(fn, units, args, workers: int, desc: str, progress: bool) -> list:
    """Units in ``workers`` spawned processes, each pinned to cores // workers torch threads.

    Results come back in the order of ``units``. A failed unit raises here: units not yet
    started are cancelled, those in flight finish (finished units are kept on disk, so a
    rerun resumes)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=pin_threads, initargs=(threads,)) as pool:
        futures = [pool.submit(fn, u, *args(u)) for u in units]
        bar = tqdm(total=len(futures), desc=f"{desc} ({workers} processes x {threads} threads)", unit="unit",
                   disable=not progress)
        results = []
        try:
            for f in futures:
                results.append(f.result())
                bar.update(1)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            bar.close()
    return results


def run_ray(fn, units, args, config: StudyConfig, desc: str) -> list:
    import ray

    started = False
    if not ray.is_initialized():
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        kw = {"address": config.ray_address} if config.ray_address else {
            "num_cpus": config.ray_num_cpus, "include_dashboard": False,
            "_temp_dir": os.environ.get("REWARDHERD_RAY_TMP")}
        ray.init(**{k: v for k, v in kw.items() if v is not None}, log_to_driver=False)
        started = True
    try:
        remote = ray.remote(num_cpus=1)(fn)
        refs = [remote.remote(u, *args(u)) for u in units]
        results = []
        for i, ref in enumerate(refs):
            results.append(ray.get(ref))
            log.info("%s: %d/%d done", desc, i + 1, len(refs))
        return results
    finally:
        if started:
            ray.shutdown()
