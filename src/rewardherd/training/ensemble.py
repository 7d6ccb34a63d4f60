"""Train an ensemble of reward members, resumably.

Layout of an output directory while training (the finished one is a normal ensemble
directory, see :mod:`rewardherd.models.manifest`)::

    out/
      ensemble.json        # "complete": false until the last member is written
      member_0/            # each member is renamed into place when finished
      ...

The manifest's ``config_hash`` pins the plan (members, training config, data
fingerprint). Rerunning the same command with the same directory resumes: finished
members are kept, not retrained. The same directory with a different plan is an
error unless ``overwrite=True``. A member directory that exists but is not in the
manifest (killed between the rename and the manifest write) is retrained after
moving it aside, never silently trusted.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from rewardherd.config import config_hash
from rewardherd.models.manifest import Manifest, ManifestError, MemberInfo
from rewardherd.training.config import EnsembleConfig, MemberSpec, TrainConfig
from rewardherd.training.member import is_main_process, train_member

log = logging.getLogger(__name__)


class PlanMismatchError(RuntimeError):
    """The output directory holds an ensemble trained with a different plan."""


def data_fingerprint(pairs: Sequence) -> str:
    """Hash of the training data contents (order-sensitive)."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(repr((p.id, p.prompt, p.chosen, p.rejected, p.margin)).encode())
    return h.hexdigest()[:16]


def plan_hash(specs: Sequence[MemberSpec], config: TrainConfig, data_fp: str, kind: str) -> str:
    return config_hash({"kind": kind, "members": [asdict(s) for s in specs], "train": asdict(config), "data": data_fp})


def train_ensemble(
    train_pairs: Sequence,
    heldout_pairs: Sequence,
    out_dir: str | Path,
    ensemble: EnsembleConfig,
    config: TrainConfig = TrainConfig(),
    *,
    overwrite: bool = False,
    progress: bool = True,
    on_member_done: Callable[[MemberInfo], None] | None = None,
) -> Manifest:
    """Train every member of ``ensemble`` into ``out_dir`` (resumable).

    Args:
        train_pairs, heldout_pairs: :class:`rewardherd.data.PreferencePair` lists; the
            held-out pairs give each member's accuracy and standardization statistics.
        out_dir: the ensemble directory to create or resume.
        ensemble: which members to train.
        config: how to train each member.
        overwrite: replace an ensemble trained with a different plan.
        on_member_done: called with each finished member's manifest entry.

    Returns:
        The complete manifest (also written to ``out_dir/ensemble.json``).
    """
    out_dir = Path(out_dir)
    specs = ensemble.member_specs()
    fp = data_fingerprint(list(train_pairs) + list(heldout_pairs))
    phash = plan_hash(specs, config, fp, ensemble.kind)
    main = is_main_process()  # under `accelerate launch`, only rank 0 writes files
    manifest = _open_or_start(out_dir, phash, ensemble.kind, config, overwrite, write=main)
    done = {m.name: m for m in manifest.members}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(specs), initial=len(done), desc="members", unit="member")
    for i, spec in enumerate(specs):
        name = f"member_{i}"
        if name in done:
            log.info("member %s already trained (held-out accuracy %.3f); keeping it", name, done[name].heldout_accuracy)
            continue
        target = out_dir / name
        if target.exists() and main:  # killed after the rename, before the manifest write
            stale = out_dir / f".{name}.unrecorded"
            shutil.rmtree(stale, ignore_errors=True)
            target.rename(stale)
            log.warning("member %s was on disk but not in the manifest; retraining it", name)
        info = train_member(spec, train_pairs, heldout_pairs, target, name=name, config=config, progress=progress)
        manifest.members.append(info)
        if main:
            manifest.write(out_dir)
        if on_member_done is not None:
            on_member_done(info)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(acc=f"{info.heldout_accuracy:.3f}")
    if bar is not None:
        bar.close()
    manifest.complete = True
    if main:
        manifest.write(out_dir)
        for stale in out_dir.glob(".member_*.unrecorded"):
            shutil.rmtree(stale, ignore_errors=True)
    return manifest


def _open_or_start(out_dir: Path, phash: str, kind: str, config: TrainConfig, overwrite: bool,
                   write: bool = True) -> Manifest:
    if out_dir.exists() and (out_dir / "ensemble.json").exists():
        try:
            existing = Manifest.read(out_dir)
        except ManifestError:
            if not overwrite:
                raise
            existing = None
        if existing is not None and existing.config_hash == phash:
            return existing
        if not overwrite:
            raise PlanMismatchError(
                f"{out_dir} holds an ensemble trained with a different configuration "
                f"(plan {existing.config_hash if existing else '?'} != {phash}); "
                "choose another --out or pass --overwrite to replace it"
            )
        log.warning("--overwrite: replacing the ensemble in %s", out_dir)
        if write:
            shutil.rmtree(out_dir)
    elif out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out_dir} exists and is not an ensemble directory; choose another --out")
        if write:
            shutil.rmtree(out_dir)
    manifest = Manifest(kind=kind, members=[], max_length=config.max_length, complete=False, config_hash=phash)
    if write:
        out_dir.mkdir(parents=True, exist_ok=True)
        manifest.write(out_dir)
    return manifest
