"""Train an ensemble of reward members, resumably.

The output directory is an ensemble directory (docs/ensemble_format.md) whose manifest
says ``"complete": false`` until the last member is written; each member is renamed
into place when finished. The manifest's ``config_hash`` pins the plan (members,
training config, data fingerprint): rerunning the same command resumes, keeping
finished members; another plan is an error unless ``overwrite=True`` (or the directory
holds no trained member yet). A member directory missing from the manifest (killed
between the rename and the manifest write) is retrained, never trusted. Inputs are
checked before anything is written (:func:`check_inputs`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from rewardherd.config import config_hash
from rewardherd.models.manifest import Manifest, ManifestError, MemberInfo
from rewardherd.schema import hashed_kind
from rewardherd.training.batched import backbones_batchable
from rewardherd.training.config import EnsembleConfig, MemberSpec, TrainConfig
from rewardherd.training.member import is_main_process, train_member, train_members

log = logging.getLogger(__name__)


MIN_HELDOUT_PAIRS = 20
"""Below this many held-out pairs, training warns that held-out accuracy is unreliable."""

# What a run leaves before its first member is recorded: nothing worth keeping.
_SCRATCH = ("ensemble.json", "backbone")


class PlanMismatchError(RuntimeError):
    """The output directory holds an ensemble trained with a different plan."""


def check_output_dir(out_dir: Path) -> None:
    """Raise (FileExistsError, PermissionError, NotADirectoryError) unless ``out_dir`` is
    an existing directory or can be created; creates nothing that stays."""
    import tempfile

    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {out_dir} is a file, not a directory; choose another --out")
    probe_in = out_dir if out_dir.is_dir() else out_dir.parent
    while not probe_in.exists():
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise NotADirectoryError(f"--out {out_dir}: {probe_in} is a file, not a directory")
    try:
        Path(tempfile.mkdtemp(prefix=".rewardherd-probe-", dir=probe_in)).rmdir()
    except OSError as e:
        raise PermissionError(f"--out {out_dir}: cannot write in {probe_in} ({e.strerror or e})") from None


def check_inputs(train_pairs: Sequence, heldout_pairs: Sequence, out_dir: Path, backbones: Sequence[str]) -> None:
    """Everything :func:`train_ensemble` checks before it writes anything."""
    from rewardherd.training.member import check_backbone

    if len(train_pairs) == 0:
        raise ValueError("no training pairs (the data is empty after the held-out split); nothing to train")
    if len(heldout_pairs) == 0:
        raise ValueError("no held-out pairs: give --heldout-data, more data, or a larger --heldout-fraction")
    check_output_dir(out_dir)
    for b in dict.fromkeys(backbones):
        check_backbone(b)
    if len(heldout_pairs) < MIN_HELDOUT_PAIRS:
        log.warning("only %d held-out pair(s) (< %d): each member's held-out accuracy and standardization statistics "
                    "are unreliable; give --heldout-data or more data", len(heldout_pairs), MIN_HELDOUT_PAIRS)


def holds_no_member(out_dir: Path) -> bool:
    """True when ``out_dir`` holds only what a run leaves before its first member is
    recorded (an incomplete manifest without members, temporary directories)."""
    if not out_dir.is_dir():
        return False
    try:
        m = Manifest.read(out_dir)
    except ManifestError:
        return False
    if m.complete or m.members:
        return False
    return all(p.name in _SCRATCH or (p.name.startswith(".member_") and (".tmp-" in p.name or p.name.endswith(
        ".unrecorded"))) for p in out_dir.iterdir())


def remove_scratch(out_dir: Path) -> None:
    """Remove temporary member directories a killed run left behind."""
    for p in list(out_dir.glob(".member_*.tmp-*")):
        shutil.rmtree(p, ignore_errors=True)


def data_fingerprint(pairs: Sequence) -> str:
    """Hash of the training data contents (order-sensitive)."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(repr((p.id, p.prompt, p.chosen, p.rejected, p.margin)).encode())
    return h.hexdigest()[:16]


def plan_hash(specs: Sequence[MemberSpec], config: TrainConfig, data_fp: str, kind: str) -> str:
    # hashed_kind: the pre-rename name, so plans hashed before the kinds were renamed still match;
    # TrainConfig.hashed leaves out later fields at their old behaviour, so older ensembles still resume.
    return config_hash({"kind": hashed_kind(kind), "members": [asdict(s) for s in specs], "train": config.hashed(),
                        "data": data_fp})


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
    """Train every member of ``ensemble`` with ``config`` into ``out_dir`` (resumable).

    The held-out pairs give each member's accuracy and standardization statistics;
    ``overwrite`` replaces an ensemble trained with another plan; ``on_member_done`` is
    called with each finished member's manifest entry. Returns the complete manifest
    (also written to ``out_dir/ensemble.json``)."""
    out_dir = Path(out_dir)
    specs = ensemble.member_specs()
    check_inputs(train_pairs, heldout_pairs, out_dir, [s.backbone for s in specs])
    fp = data_fingerprint(list(train_pairs) + list(heldout_pairs))
    phash = plan_hash(specs, config, fp, ensemble.kind)
    main = is_main_process()  # under `accelerate launch`, only rank 0 writes files
    manifest = _open_or_start(out_dir, phash, ensemble.kind, config, overwrite, write=main)
    if main and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        # a killed run's half-trained members (under a distributed launch another rank
        # may already be writing its own; those are removed when the run completes)
        remove_scratch(out_dir)
    done = {m.name: m for m in manifest.members}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(specs), initial=len(done), desc="members", unit="member")
    todo = []
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
        todo.append((name, spec, target))

    def record(info: MemberInfo) -> None:
        manifest.members.append(info)
        if main:
            manifest.write(out_dir)
        if on_member_done is not None:
            on_member_done(info)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(acc=f"{info.heldout_accuracy:.3f}")

    if (config.batched and len(todo) > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1
            and backbones_batchable([s.backbone for _, s, _ in todo])):
        train_members([s for _, s, _ in todo], train_pairs, heldout_pairs, [t for _, _, t in todo],
                      names=[n for n, _, _ in todo], config=config, progress=progress, on_member_done=record)
    else:
        for name, spec, target in todo:
            record(train_member(spec, train_pairs, heldout_pairs, target, name=name, config=config, progress=progress))
    if bar is not None:
        bar.close()
    manifest.complete = True
    if main:
        manifest.write(out_dir)
        for stale in out_dir.glob(".member_*.unrecorded"):
            shutil.rmtree(stale, ignore_errors=True)
        remove_scratch(out_dir)
    return manifest


def _open_or_start(out_dir: Path, phash: str, kind: str, config: TrainConfig, overwrite: bool,
                   write: bool = True) -> Manifest:
    if holds_no_member(out_dir) and Manifest.read(out_dir).config_hash != phash:
        log.warning("%s holds no trained member (a failed or killed earlier run); starting it afresh", out_dir)
        if write:
            shutil.rmtree(out_dir)
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
