"""Run a study: pool -> member units -> best-of-n cells -> RL cells -> analysis -> report.

The stages live in their own modules: :mod:`~rewardherd.studies.plan` (the units and their
names), :mod:`~rewardherd.studies.pool` (the best-of-n pool and its token ids), this module (the
unit workers: members, group kinds, RL, DAA), :mod:`~rewardherd.studies.curves` (best-of-n
cells), :mod:`~rewardherd.studies.executors` (in process, spawned processes or Ray), then
:mod:`~rewardherd.studies.analysis` and :mod:`~rewardherd.studies.report`.

Output directory (stable, chosen by the user; a rerun resumes)::

    out/
      config.json  versions.json       resolved config, package versions, git SHA
      pool.parquet                     the shared best-of-n pool with gold and features
      members/<unit>/                  one trained member: model/ (HF dir), info.json, scores.parquet
                                       (multi_head: mh__<...>/model holds K heads, mh__<...>__h<k>/ their scores)
      ensembles/<kind>__noise<p>__seed<s>/ensemble.json   manifests over members/ (for RL)
      cells/bon__noise<p>__seed<s>.parquet                per-prompt best-of-n curves of every kind/method
      cells/kinds__noise<p>__seed<s>.parquet              the same for the extra kinds (multi_head, lora, warm)
      cells/rl__<kind>__<method>__noise<p>__seed<s>__kl<c>/  RL rows and samples
      samples.parquet curves.parquet fits.json claims.json  figures/*.png  report.md  report.html

Each unit writes its results atomically and last, so a killed run loses at most
the unit in flight; a rerun skips finished units. A different configuration in the
same directory is an error (results are never overwritten silently).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from rewardherd import core, schema
from rewardherd.config import config_hash, to_dict
from rewardherd.io import write_json_atomic, write_table_atomic, write_text_atomic
from rewardherd.models.manifest import Manifest, MemberInfo, package_versions
from rewardherd.studies import kinds
from rewardherd.studies.config import StudyConfig
from rewardherd.studies.curves import bon_cell, kinds_cell
from rewardherd.studies.executors import frozen_heap, run_units
from rewardherd.studies.inputs import resolve_inputs
from rewardherd.studies.plan import (  # noqa: F401  (runner.X names kept for callers)
    UNIT_CLASSES,
    DAAUnit,
    GroupUnit,
    LoraUnit,
    MemberBatch,
    MemberUnit,
    RLUnit,
    draw_backbones,
    ensemble_members,
    kind_member_units,
    kind_units,
    member_batches,
    plan_daa,
    plan_groups,
    plan_members,
    plan_rl,
)
from rewardherd.studies.pool import TOKENIZER_FILES, ensure_pool, heldout_gold, pool_token_ids  # noqa: F401

log = logging.getLogger(__name__)


class StudyConfigMismatch(RuntimeError):
    """The output directory holds a study run with another configuration."""


def members_table(config: StudyConfig, n_backbones: int, out: Path) -> pd.DataFrame:
    """One row per (kind, noise, seed, slot): which trained unit is that ensemble member.

    Columns: kind, noise, seed, slot, unit, backbone, finetune_seed, heldout_accuracy,
    mean, std (the member's standardization statistics), score_dtype and
    score_spearman_vs_float32 (the precision of its pool scores and the probe check). Analysis reads this table
    instead of re-deriving member names.
    """
    rows = []
    for noise in config.sweep.noise:
        for seed in config.sweep.seeds:
            for kind in config.sweep.kinds:
                for slot, unit in enumerate(kind_units(kind, noise, seed, config.ensemble_size, n_backbones)):
                    info = json.loads((out / "members" / unit / "info.json").read_text())
                    rows.append({"kind": kind, "noise": noise, "seed": seed, "slot": slot, "unit": unit,
                                 "backbone": info["unit"]["backbone"],
                                 "finetune_seed": info["unit"].get("finetune_seed", -1),
                                 "heldout_accuracy": info.get("heldout_accuracy"),
                                 "mean": info["standardization"]["mean"], "std": info["standardization"]["std"],
                                 "score_dtype": info.get("pool_scores", {}).get("dtype", "float32"),
                                 "score_spearman_vs_float32":
                                     info.get("pool_scores", {}).get("spearman_vs_float32", np.nan),
                                 "trained": info.get("trained", unit),
                                 "train_seconds": info.get("train_seconds", np.nan),
                                 "score_seconds": info.get("score_seconds", np.nan)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ helpers
def git_sha() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def noisy_train_pairs(pairs, noise: float, seed: int):
    from rewardherd.data import inject_label_noise

    if noise == 0:
        return list(pairs), []
    return inject_label_noise(pairs, noise, seed)


# ------------------------------------------------------------ unit workers
@frozen_heap
def run_member_unit(unit: MemberUnit, config: StudyConfig, backbone: str, train_pairs, heldout_pairs,
                    pool_path: str, out_dir: str) -> dict:
    """Train one member on (noisy) data and score the shared pool and the held-out pairs. Idempotent."""
    from rewardherd.models.common import cpu_batch_workers, load_member_model
    from rewardherd.models.formatting import pad_token_id
    from rewardherd.models.scoring import score_ids_checked
    from rewardherd.training.config import MemberSpec
    from rewardherd.training.member import train_member

    d = Path(out_dir) / "members" / unit.name
    info_path, scores_path = d / "info.json", d / "scores.parquet"
    if info_path.exists() and scores_path.exists():
        return json.loads(info_path.read_text())
    t0 = time.time()
    model_dir = d / "model"
    if model_dir.exists():  # trained but not recorded: retrain, never trust a half-finished unit
        shutil.rmtree(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    train, flipped = noisy_train_pairs(train_pairs, unit.noise, unit.seed)
    train_config = replace(config.train, lora_r=config.lora_r) if isinstance(unit, LoraUnit) else config.train
    info = train_member(MemberSpec(backbone, unit.finetune_seed, unit.backbone), train, heldout_pairs, model_dir,
                        name=unit.name, config=train_config, progress=False, heldout_scores=d / "heldout.parquet")
    t_train = time.time() - t0
    pool = pd.read_parquet(pool_path, columns=["prompt_id", "sample_id"])
    model, tok = load_member_model(model_dir)
    ids = pool_token_ids(Path(out_dir), Path(pool_path), model_dir, tok, config.train.max_length)
    scores, precision = score_ids_checked(model, ids, pad_token_id(tok), config.pool.score_dtype, batch_size=128,
                                          workers=cpu_batch_workers(next(model.parameters()).device))
    write_table_atomic(pd.DataFrame({"prompt_id": pool["prompt_id"], "sample_id": pool["sample_id"], "score": scores}),
                   scores_path)
    rec = {**info.__dict__, "unit": unit.__dict__, "n_flipped": len(flipped), "seconds": round(time.time() - t0, 2),
           "train_seconds": round(t_train, 2), "score_seconds": round(time.time() - t0 - t_train, 2),
           "pool_scores": precision}
    write_json_atomic(info_path, rec)
    return rec


def _unit_done(out: Path, unit) -> bool:
    d = out / "members" / unit.name
    return (d / "info.json").exists() and (d / "scores.parquet").exists()


def score_members(models, ids, pad: int, dtype: str) -> tuple[np.ndarray, list[dict]]:
    """(k, n) pool scores of ``models`` and each one's precision record: one bucketed pass for
    all members (:class:`~rewardherd.models.vectorized.GroupScorer`) in float32; in bfloat16
    each member alone, so each keeps its own float32 rank probe (:func:`score_ids_checked`)."""
    from rewardherd.models.common import cpu_batch_workers
    from rewardherd.models.scoring import resolve_score_dtype, score_ids_checked
    from rewardherd.models.vectorized import GroupScorer

    device = next(models[0].parameters()).device
    if resolve_score_dtype(dtype, device) == "float32":
        return GroupScorer("auto").score(models, ids, pad, 128), [{"dtype": "float32"}] * len(models)
    scores, precision = zip(*[score_ids_checked(m, ids, pad, dtype, batch_size=128, workers=cpu_batch_workers(device))
                              for m in models], strict=True)
    return np.stack(scores), list(precision)


@frozen_heap
def run_member_batch(batch: MemberBatch, config: StudyConfig, backbones: Sequence[str], train_pairs, heldout_pairs,
                     pool_path: str, out_dir: str) -> list[dict]:
    """Train the batch's unfinished member units together, then score the shared pool and the
    held-out pairs with all of them; writes what :func:`run_member_unit` writes per unit. Idempotent."""
    from rewardherd.models.common import load_member_model
    from rewardherd.models.formatting import pad_token_id
    from rewardherd.training.config import MemberSpec
    from rewardherd.training.member import train_members

    out = Path(out_dir)
    todo = [(u, b) for u, b in zip(batch.units, backbones, strict=True) if not _unit_done(out, u)]
    if todo:
        t0 = time.time()
        dirs = [out / "members" / u.name for u, _ in todo]
        for d in dirs:
            if (d / "model").exists():  # trained but not recorded: retrain, never trust a half-finished unit
                shutil.rmtree(d / "model")
            d.mkdir(parents=True, exist_ok=True)
        first = batch.units[0]
        train, flipped = noisy_train_pairs(train_pairs, first.noise, first.seed)
        train_config = replace(config.train, lora_r=config.lora_r) if isinstance(first, LoraUnit) else config.train
        infos = train_members([MemberSpec(b, u.finetune_seed, u.backbone) for u, b in todo], train, heldout_pairs,
                              [d / "model" for d in dirs], names=[u.name for u, _ in todo], config=train_config,
                              progress=False, heldout_scores=[d / "heldout.parquet" for d in dirs])
        t_train = time.time() - t0
        models, tok = zip(*[load_member_model(d / "model") for d in dirs], strict=True)
        ids = pool_token_ids(out, Path(pool_path), dirs[0] / "model", tok[0], config.train.max_length)
        scores, precision = score_members(list(models), ids, pad_token_id(tok[0]), config.pool.score_dtype)
        pool = pd.read_parquet(pool_path, columns=["prompt_id", "sample_id"])
        t_score = time.time() - t0 - t_train
        for k, ((unit, _), d, info) in enumerate(zip(todo, dirs, infos, strict=True)):
            write_table_atomic(pool.assign(score=scores[k]), d / "scores.parquet")
            write_json_atomic(d / "info.json", {
                **info.__dict__, "unit": unit.__dict__, "n_flipped": len(flipped), "batch": batch.name,
                "batched_with": len(todo), "seconds": round((t_train + t_score) / len(todo), 2),
                "train_seconds": round(t_train / len(todo), 2), "score_seconds": round(t_score / len(todo), 2),
                "pool_scores": precision[k]})
    return [json.loads((out / "members" / u.name / "info.json").read_text()) for u in batch.units]


def run_members(units: Sequence[MemberUnit], config: StudyConfig, backbones: Sequence[str], train_pairs,
                heldout_pairs, pool_path, out_dir, desc: str, progress: bool) -> None:
    """Train and score member units: in :class:`MemberBatch` groups with ``config.train.batched``,
    else one at a time through TRL (:func:`run_member_unit`)."""
    from rewardherd.training.batched import backbones_batchable

    if config.train.batched and backbones_batchable(backbones):
        run_units(run_member_batch, member_batches(units),
                  lambda b: (config, [str(backbones[u.backbone]) for u in b.units], train_pairs, heldout_pairs,
                             str(pool_path), str(out_dir)), config, desc, progress, processes=True)
    else:
        run_units(run_member_unit, units,
                  lambda u: (config, str(backbones[u.backbone]), train_pairs, heldout_pairs, str(pool_path),
                             str(out_dir)), config, desc, progress, processes=True)


def study_keys(config: StudyConfig, cfg_dict: dict) -> tuple[str, str]:
    """The hash a study directory is resumed under, and the one a study written on 2026-12-07
    before the teacher design carries: its config without the executor settings, and without
    the fields added after studies were first written while they hold the value that behaves
    as before (train, world gold and preferences, ``dial``, ``sweep.levels``, ``world_seeds``), so older studies
    still resume."""
    d = {k: v for k, v in cfg_dict.items() if k not in ("executor", "ray_address", "ray_num_cpus", "workers")}
    d["train"] = config.train.hashed()
    if not d["sweep"].get("levels"):  # sweep.levels came later; a level's own study has none
        d["sweep"] = {k: v for k, v in d["sweep"].items() if k != "levels"}
    if d.get("dial") == "tail":
        del d["dial"]
    if not d.get("world_seeds"):  # world_seeds came later; a build's own study has none
        d.pop("world_seeds", None)
    if config.world is None:
        return config_hash(d), config_hash(d)
    w, world = config.world, d["world"]
    legacy_gold = {k: v for k, v in world["gold"].items()
                   if not (k == "teacher_weight" and v is None or k == "teacher" and w.gold.weight("teacher") == 0)}
    key = config_hash({**d, "world": {**world, "gold": w.gold.key_fields(), "preferences": {
        **w.preferences.key_fields(), "markers": world["preferences"]["markers"]}}})
    return key, config_hash({**d, "world": {**world, "gold": legacy_gold}})


@frozen_heap
def run_group_unit(unit: GroupUnit, config: StudyConfig, backbone: str, n_backbones: int, train_pairs, heldout_pairs,
                   pool_path: str, out_dir: str) -> dict:
    """Make one ensemble of a group kind (see :class:`GroupUnit`) and score the pool with
    it (multi_head and warm: one forward pass per sample for all members). Idempotent."""
    from rewardherd.models import Ensemble
    from rewardherd.models.common import cpu_batch_workers
    from rewardherd.models.formatting import pad_token_id
    from rewardherd.models.scoring import score_ids_checked
    from rewardherd.models.vectorized import GroupScorer

    out, k = Path(out_dir), config.ensemble_size
    names = unit.units(k)
    if all((out / "members" / u / "info.json").exists() for u in names):
        return json.loads((out / "members" / names[0] / "info.json").read_text())
    t0 = time.time()
    d = out / "members" / unit.name
    model_dir = d / "model"
    if model_dir.exists():  # trained but not recorded: redo, never trust a half-finished unit
        shutil.rmtree(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    train, flipped = noisy_train_pairs(train_pairs, unit.noise, unit.seed)
    extra = {"n_flipped": len(flipped), **GROUP_TRAINERS[unit.kind](
        GroupJob(unit, config, backbone, n_backbones, train, flipped, heldout_pairs, out, d, model_dir))}
    t_train = time.time() - t0
    ens = Ensemble.load(model_dir)
    tok = ens.members[0].tokenizer
    tok_dir = next(p.parent for p in sorted(model_dir.rglob("tokenizer_config.json")))
    ids = pool_token_ids(out, Path(pool_path), tok_dir, tok, config.train.max_length)
    if kinds.spec(unit.kind).heads:  # one pass for every head (float32)
        scores = GroupScorer("auto").score([m.model for m in ens.members], ids, pad_token_id(tok), 128)
        precision = [{"dtype": "float32"}] * k
    else:  # standalone members, scored like the finetune members (pool.score_dtype)
        scores, precision = zip(*[score_ids_checked(m.model, ids, pad_token_id(tok), config.pool.score_dtype, batch_size=128,
                                                    workers=cpu_batch_workers(next(m.model.parameters()).device))
                                  for m in ens.members], strict=True)
    pool = pd.read_parquet(pool_path, columns=["prompt_id", "sample_id"])
    seconds = {"train_seconds": round(t_train, 2), "score_seconds": round(time.time() - t0 - t_train, 2),
               "seconds": round(time.time() - t0, 2)}
    for i, (name, member) in enumerate(zip(names, ens.members, strict=True)):
        ud = out / "members" / name
        ud.mkdir(parents=True, exist_ok=True)
        write_table_atomic(pool.assign(score=scores[i]), ud / "scores.parquet")
        rec = {"name": name, "heldout_accuracy": member.info.heldout_accuracy,
               "standardization": member.info.standardization, **extra,
               "unit": {**unit.__dict__, "slot": i}, "trained": unit.name, **seconds,
               "pool_scores": precision[i]}
        write_json_atomic(ud / "info.json", rec)
    return rec


@dataclass(frozen=True)
class GroupJob:
    """What a group kind's trainer gets: the unit, its noisy training pairs (``flipped``: the
    ids the study flipped), the held-out pairs, the study directory, the unit's directory and
    where the ensemble goes (``model_dir``, an ensemble directory)."""

    unit: GroupUnit
    config: StudyConfig
    backbone: str
    n_backbones: int
    train: list
    flipped: list
    heldout_pairs: list
    out: Path
    unit_dir: Path
    model_dir: Path

    @property
    def seeds(self) -> list[int]:
        """The members' fine-tune seeds: paired with the finetune kind's of the same seed."""
        return [ft for _, ft in ensemble_members("finetune", self.unit.seed, self.config.ensemble_size,
                                                 self.n_backbones)]


def _train_multi_head(job: GroupJob) -> dict:
    from rewardherd.training.multihead import train_multihead_ensemble

    train_multihead_ensemble(job.train, job.heldout_pairs, job.model_dir, job.backbone, job.config.ensemble_size,
                             job.config.train, seeds=job.seeds, progress=False)
    return {}


def _train_cleaned(job: GroupJob) -> dict:
    from rewardherd.training import EnsembleConfig, train_ensemble

    cleaned, summary = clean_for_study(job.train, job.flipped, job.backbone, job.unit, job.config,
                                       job.unit_dir / "strength")
    shutil.rmtree(job.unit_dir / "strength", ignore_errors=True)  # the fold ensembles; strength.parquet is kept
    train_ensemble(cleaned, job.heldout_pairs, job.model_dir,
                   EnsembleConfig(kind="finetune", backbones=(job.backbone,), n_members=job.config.ensemble_size,
                                  seeds=tuple(job.seeds)), job.config.train, progress=False)
    return {"cleaning": summary}


def _train_warm(job: GroupJob) -> dict:
    from rewardherd.training.warm import warm_average

    u = job.unit
    ens_dir = build_ensemble_dir(job.out, "finetune", u.noise, u.seed, job.config.ensemble_size, job.n_backbones)
    warm_average(ens_dir, job.model_dir, heldout_pairs=job.heldout_pairs)
    return {}


#: How each group kind (``kinds.KindSpec.units == "group"``) makes its ensemble; returns extra info.json fields.
GROUP_TRAINERS = {"multi_head": _train_multi_head, "cleaned": _train_cleaned, "warm": _train_warm}


def clean_for_study(train, flipped, backbone: str, unit: GroupUnit, config: StudyConfig,
                    work: Path) -> tuple[list, dict]:
    """Cross-fitted strength of the noisy training pairs, then ``config.clean``'s rule.

    Returns the cleaned pairs and a summary of the cleaning with how well it found the
    label flips the study injected. The strength table is kept beside the unit
    (``strength.parquet``).
    """
    from rewardherd.cleaning import clean_pairs

    c = config.clean
    table = study_strength(train, backbone, unit, config, work)
    cleaned, summary = clean_pairs(train, table, flip_below=c.flip_below, drop_between=c.drop_between)
    noisy = set(flipped)
    found, dropped = set(summary["ids_flipped"]), set(summary["ids_dropped"])
    return cleaned, {"n_pairs": summary["n_pairs"], "n_written": summary["n_written"],
            "n_flipped": summary["n_flipped"], "n_dropped": summary["n_dropped"],
            "flip_precision": len(found & noisy) / len(found) if found else None,
            "noise_flipped_back": len(found & noisy) / len(noisy) if noisy else None,
            "noise_dropped": len(dropped & noisy) / len(noisy) if noisy else None,
            "auroc_low_strength_for_noise": core.auroc(-table["mean"].to_numpy(),
                                                       table["id"].isin(noisy).to_numpy()) if noisy else None}


def study_strength(train, backbone: str, unit, config: StudyConfig, work: Path) -> pd.DataFrame:
    """Cross-fitted ensemble-vote strength of ``train`` (``config.clean``'s folds and members, on
    ``backbone``, seeded by ``unit.seed``), kept as ``work.parent / "strength.parquet"`` and read
    back from there on a rerun."""
    from rewardherd.cleaning import cross_fit_strength, read_strength
    from rewardherd.training import EnsembleConfig

    c = config.clean
    votes = EnsembleConfig(kind="finetune", backbones=(backbone,), n_members=c.members,
                           seeds=tuple(1000 * unit.seed + 500 + i for i in range(c.members)))  # not the members' seeds
    path = work.parent / "strength.parquet"
    if path.exists():  # a rerun after the members failed: the cross-fitting is done
        return read_strength(path)
    table = cross_fit_strength(train, votes, c.folds, config.train, work, seed=unit.seed)
    write_table_atomic(table, path)
    return table


def build_ensemble_dir(out: Path, kind: str, noise: float, seed: int, k: int, n_backbones: int) -> Path:
    """Write a manifest over already trained members (relative paths into members/)."""
    infos = []
    for b, ft in ensemble_members(kind, seed, k, n_backbones):
        unit = MemberUnit(b, ft, noise, seed)
        rec = json.loads((out / "members" / unit.name / "info.json").read_text())
        fields = {f: rec[f] for f in MemberInfo.__dataclass_fields__ if f in rec}
        fields["path"] = f"../../members/{unit.name}/model"
        infos.append(MemberInfo(**fields))
    d = out / "ensembles" / f"{kind}__noise{noise:g}__seed{seed}"
    Manifest(kind=kind, members=infos, max_length=None).write(d)
    return d


def rl_single_slot(seed: int, k: int) -> int:
    """The RL 'single' arm optimizes member (seed mod K) of the seed's pretrain ensemble,
    so across seeds it rotates over members instead of always using member 0."""
    return seed % k


def run_rl_unit(unit: RLUnit, config: StudyConfig, inputs, out_dir: str) -> str:
    from rewardherd.models import Ensemble
    from rewardherd.policy.rl import run_rl

    out = Path(out_dir)
    d = out / "cells" / unit.name
    if (d / "DONE").exists():
        return str(d)
    if d.exists():
        shutil.rmtree(d)
    k, n_backbones = config.ensemble_size, len(inputs.backbones)
    if unit.kind == "single":
        ens_dir = build_ensemble_dir(out, "pretrain", unit.noise, unit.seed, k, n_backbones)
        ens = Ensemble.load(ens_dir)
        slot = rl_single_slot(unit.seed, k)
        ens = Ensemble(ens.members[slot:slot + 1], ens.manifest, ens_dir)
    else:
        ens = Ensemble.load(build_ensemble_dir(out, unit.kind, unit.noise, unit.seed, k, n_backbones))
    spec = core.Aggregation.parse(unit.method)
    rl_cfg = replace(config.rl, method=spec.method, params=dict(spec.params), kl_coef=unit.kl_coef,
                     max_new_tokens=inputs.max_new_tokens, seed=unit.seed)
    run_rl(inputs.policy_dir, ens, inputs.train_prompts, inputs.eval_prompts, d, rl_cfg, gold=inputs.gold,
           features=inputs.features, progress=False)
    write_json_atomic(d / "DONE", unit.__dict__)
    return str(d)


def daa_train_pairs(unit: DAAUnit, config: StudyConfig, inputs, out: Path) -> tuple[list, dict]:
    """The unit's training pairs and a summary: the seed's noisy pairs (at most ``daa_sweep.max_pairs``
    of them, a subset fixed by the seed); those cleaned as the cleaned kind cleans them
    (:func:`clean_for_study`, on the seed's first backbone); or those relabelled by the sign of
    the same cross-fitted ensemble vote after dropping the ``daa_sweep.relabel_drop`` share with
    the largest vote std (:func:`rewardherd.cleaning.relabel_pairs`). With every pair, the
    cross-fitted strength is shared with the cleaned kind's unit of that noise and seed."""
    train, flipped = noisy_train_pairs(inputs.train_pairs, unit.noise, unit.seed)
    cap = config.daa_sweep.max_pairs
    if cap is not None and cap < len(train):
        keep = np.sort(np.random.default_rng([unit.seed, cap]).choice(len(train), size=cap, replace=False))
        train = [train[i] for i in keep]
        flipped = sorted(set(flipped) & {p.id for p in train})
    if unit.data == "noisy":
        return train, {"n_pairs": len(train), "n_flipped": len(flipped)}
    if unit.data not in ("cleaned", "relabelled"):
        raise ValueError(f"unknown DAA data {unit.data!r}")
    k, n_backbones = config.ensemble_size, len(inputs.backbones)
    group = GroupUnit("cleaned", draw_backbones(unit.seed, k, n_backbones)[0], unit.noise, unit.seed)
    # all pairs: the cleaned kind's strength table is the same one; a subset gets its own
    work = (out / "members" / group.name if cap is None else out / "cells" / f"daa_strength__{group.name}__pairs{cap}")
    work = work / "strength"
    work.parent.mkdir(parents=True, exist_ok=True)
    backbone = str(inputs.backbones[group.backbone])
    if unit.data == "cleaned":
        pairs, summary = clean_for_study(train, flipped, backbone, group, config, work)
    else:  # the same cross-fitted votes: each pair judged by members that never trained on it
        from rewardherd.cleaning import relabel_pairs

        pairs, summary = relabel_pairs(train, study_strength(train, backbone, group, config, work),
                                       drop_uncertain=config.daa_sweep.relabel_drop)
        noisy = set(flipped)
        summary = {**{k: v for k, v in summary.items() if not k.startswith("ids_")},
                   "noise_flipped_back": len(set(summary["ids_flipped"]) & noisy) / len(noisy) if noisy else None,
                   "noise_dropped": len(set(summary["ids_dropped"]) & noisy) / len(noisy) if noisy else None}
    shutil.rmtree(work, ignore_errors=True)  # the fold ensembles; strength.parquet is kept
    return pairs, {"n_flipped": len(flipped), "cleaning": summary, "n_pairs": len(pairs)}


def _daa_proxy(out: Path, unit: DAAUnit, config: StudyConfig, n_backbones: int):
    """The seed's pretrain ensemble as the DAA run's proxy, when the study trained its members; else None."""
    from rewardherd.models import Ensemble

    k = config.ensemble_size
    units = [MemberUnit(b, ft, unit.noise, unit.seed) for b, ft in ensemble_members("pretrain", unit.seed, k, n_backbones)]
    if not all(_unit_done(out, u) for u in units):
        return None
    return Ensemble.load(build_ensemble_dir(out, "pretrain", unit.noise, unit.seed, k, n_backbones))


@frozen_heap
def run_daa_unit(unit: DAAUnit, config: StudyConfig, inputs, out_dir: str) -> str:
    """Train one DAA unit (:func:`rewardherd.policy.dpo.train_dpo`) into ``cells/<unit>/``; idempotent
    (``DONE`` marks a finished unit; an unfinished one resumes from its latest checkpoint)."""
    from rewardherd.policy.dpo import train_dpo

    out = Path(out_dir)
    d = out / "cells" / unit.name
    if (d / "DONE").exists():
        return str(d)
    pairs, summary = daa_train_pairs(unit, config, inputs, out)
    losses, weights = config.daa_sweep.loss(unit.objective)
    cfg = replace(config.dpo, loss_type=losses, loss_weights=weights, kl_coef=unit.beta, seed=unit.seed,
                  max_new_tokens=inputs.max_new_tokens)
    t0 = time.time()
    train_dpo(inputs.policy_dir, pairs, inputs.eval_prompts, d, cfg, ensemble=_daa_proxy(out, unit, config,
              len(inputs.backbones)), gold=inputs.gold, gold_name="study", progress=False)
    shutil.rmtree(d / "checkpoints", ignore_errors=True)  # the evaluation tables keep every checkpoint's numbers
    shutil.rmtree(d / "policy", ignore_errors=True)
    write_json_atomic(d / "DONE", {**unit.__dict__, **summary, "seconds": round(time.time() - t0, 1)})
    return str(d)


# ------------------------------------------------------- stored studies
def check_study_columns(out: Path) -> None:
    """Refuse a study whose tables use the column names of an older rewardherd (``f/``,
    ``z/``, ``rm/``; now ``feature/``, ``score/z/``, ``score/raw/``, docs/schema.md)."""
    import pyarrow.parquet as pq

    files = [out / "pool.parquet", *sorted((out / "cells").glob("bon__*.parquet"))[:1]]
    for f in files:
        if not f.exists():
            continue
        old = [c for c in pq.read_schema(f).names if c.startswith(schema.LEGACY_PREFIXES)]
        if old:
            raise ValueError(f"{f}: column {old[0]!r} is named as by an older rewardherd (see docs/schema.md); "
                             "run the study again with `rewardherd study` into a new --out")


def reanalyze(out_dir: str | Path) -> Path:
    """Recompute the analysis and the calibration table from stored cells and rows (cheap: the
    rules are not simulated again) and rewrite the report."""
    from rewardherd.config import from_dict
    from rewardherd.studies.analysis import analyze, calibrate
    from rewardherd.studies.report import write_report

    out = Path(out_dir)
    if (out / "results" / "builds.parquet").exists():  # world-build replicates: each build, then the table
        from rewardherd.studies.builds import report_builds

        return report_builds(out, reanalyze)
    if (out / "results" / "sharing_dial.parquet").exists():  # an error-sharing sweep: each level, then the sweep
        from rewardherd.studies.dial import report_sharing

        return report_sharing(out, reanalyze)
    if not (out / "results" / "members.parquet").exists():
        raise FileNotFoundError(f"{out}: no results/members.parquet: this study was made by an older rewardherd; "
                                "run it again with `rewardherd study` into a new --out")
    check_study_columns(out)
    stored = json.loads((out / "config.json").read_text())
    stored.pop("_hash", None)
    config = from_dict(StudyConfig, stored, str(out / "config.json"))
    analyze(out, config)
    calibrate(out, config)  # the stored rows, by key: no simulation
    return write_report(out)


# --------------------------------------------------------------------- main


def run_study(config: StudyConfig, out_dir: str | Path, *, progress: bool = True, overwrite: bool = False) -> Path:
    """Run (or resume) the study and write its report. Returns the report path."""
    from rewardherd.studies.report import write_report

    if config.world_seeds:  # one study (or level sweep) per world build
        from rewardherd.studies.builds import run_builds

        return run_builds(config, out_dir, run_study, progress=progress, overwrite=overwrite)
    if config.sweep.markers or config.sweep.levels:  # one study per level of a sharing dial
        from rewardherd.studies.dial import run_sharing

        return run_sharing(config, out_dir, run_study, progress=progress, overwrite=overwrite)

    out = Path(out_dir)
    cfg_dict = to_dict(config)
    key, legacy = study_keys(config, cfg_dict)
    cfg_path = out / "config.json"
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        if old.get("_hash") not in (key, legacy):
            if not overwrite:
                older = " (written before the best-of-n axes moved under `sweep`)" if "seeds" in old else ""
                raise StudyConfigMismatch(f"{out} holds a study with another configuration{older}; "
                                          "choose another --out or pass --overwrite")
            log.warning("--overwrite: removing previous results in %s", out)
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(cfg_path, {**cfg_dict, "_hash": key})
    write_json_atomic(out / "versions.json", {"packages": package_versions(), "git_sha": git_sha()})
    check_study_columns(out)  # a run started by an older rewardherd cannot be resumed
    if (out / "results" / "DONE").exists():
        log.info("study already complete; rebuilding the report only")
        return write_report(out)
    timings = {}
    t0 = time.time()
    inputs = resolve_inputs(config, progress=progress)
    if inputs.world_summary is not None:
        write_json_atomic(out / "world.json", inputs.world_summary)
    if not (out / "heldout_gold.parquet").exists():  # for the in-distribution error decomposition
        write_table_atomic(heldout_gold(inputs), out / "heldout_gold.parquet")
    timings["world"] = time.time() - t0
    if config.rl_sweep.enabled and not inputs.train_prompts:
        raise ValueError("RL needs training prompts distinct from the evaluation prompts; the inputs have none")
    t = time.time()
    pool_path = ensure_pool(inputs, config, out, progress)
    timings["pool"] = time.time() - t
    t = time.time()
    n_backbones = len(inputs.backbones)
    run_members(plan_members(config, n_backbones), config, inputs.backbones, inputs.train_pairs, inputs.heldout_pairs,
                pool_path, out, "members", progress)
    groups = plan_groups(config, n_backbones)
    run_units(run_group_unit, groups,  # after the members: warm averages the finetune ones
              lambda u: (config, str(inputs.backbones[u.backbone]), n_backbones, inputs.train_pairs,
                         inputs.heldout_pairs, str(pool_path), str(out)), config, "kinds", progress)
    timings["members"] = time.time() - t
    t = time.time()
    pool = pd.read_parquet(pool_path)
    for noise in config.sweep.noise:
        for seed in config.sweep.seeds:
            bon_cell(out, config, noise, seed, pool, n_backbones)
            kinds_cell(out, config, noise, seed, pool, n_backbones)
    write_table_atomic(members_table(config, n_backbones, out), out / "results" / "members.parquet")
    timings["bon"] = time.time() - t
    t = time.time()
    run_units(run_rl_unit, plan_rl(config), lambda u: (config, inputs, str(out)), config, "rl", progress)
    timings["rl"] = time.time() - t
    t = time.time()
    run_units(run_daa_unit, plan_daa(config), lambda u: (config, inputs, str(out)), config, "daa", progress)
    timings["daa"] = time.time() - t
    t = time.time()
    from rewardherd.studies.analysis import analyze, calibrate

    analyze(out, config)
    timings["analysis"] = time.time() - t
    t = time.time()
    calibrate(out, config)  # its own stage: the rules' rates at this size (cached cells are read, not simulated)
    timings["calibration"] = time.time() - t
    write_json_atomic(out / "results" / "timings.json", {k: round(v, 1) for k, v in timings.items()})
    write_text_atomic(out / "results" / "DONE", "ok\n")
    return write_report(out)

