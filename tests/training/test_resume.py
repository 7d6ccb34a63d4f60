"""Resumable ensemble training: a killed run resumes without retraining finished members;
the same directory with a different plan is an error unless overwrite=True."""

import shutil

import pytest

from rewardherd.models import Ensemble, Manifest, ManifestError
from rewardherd.training import EnsembleConfig, PlanMismatchError, TrainConfig, train_ensemble
from rewardherd.training import ensemble as training_ensemble

#: Cheap config: accuracy does not matter here, only which members get trained. One member at
#: a time (TRL), so a kill can fall between two members' training.
QUICK = TrainConfig(lr=2e-3, epochs=1, batch_size=16, max_length=64, batched=False)


@pytest.fixture(scope="module")
def small_split(rule_split):
    train, heldout = rule_split
    return train[:48], heldout[:16]


def _mtimes(directory):
    return {p: p.stat().st_mtime_ns for p in directory.rglob("*")}


def _recorder(monkeypatch, *, kill_on=None, kill_after_write=False):
    """Patch train_member: record member names; simulate a kill on call number ``kill_on``
    (before training, or after the member directory was written when kill_after_write)."""
    real = training_ensemble.train_member
    calls = []

    def wrapper(spec, *args, name, **kwargs):
        calls.append(name)
        if len(calls) == kill_on and not kill_after_write:
            raise KeyboardInterrupt
        info = real(spec, *args, name=name, **kwargs)
        if len(calls) == kill_on:
            raise KeyboardInterrupt
        return info

    monkeypatch.setattr(training_ensemble, "train_member", wrapper)
    return calls


def test_killed_run_resumes_without_retraining_finished_members(tmp_path, backbones, small_split, monkeypatch):
    out = tmp_path / "ens"
    cfg = EnsembleConfig(kind="finetune", backbones=(str(backbones[0]),), n_members=3)
    done = []

    calls = _recorder(monkeypatch, kill_on=2)
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(*small_split, out, cfg, QUICK, progress=False, on_member_done=done.append)
    assert calls == ["member_0", "member_1"]
    assert [i.name for i in done] == ["member_0"]

    # The finished member and its manifest entry were written the moment it finished.
    partial = Manifest.read(out)
    assert partial.complete is False
    assert [m.name for m in partial.members] == ["member_0"]
    assert partial.members[0].heldout_accuracy is not None
    assert partial.config_hash
    assert sorted(p.name for p in out.iterdir()) == ["ensemble.json", "member_0"]
    with pytest.raises(ManifestError, match="not complete"):
        Ensemble.load(out)
    first = Ensemble.load(out, allow_incomplete=True, device="cpu")
    probe = (["item 1: ", "item 2: "], ["good kind warm", "sad cold"])
    first_scores = first.score(*probe)
    mtimes = _mtimes(out / "member_0")

    # Rerun the same call: only the missing members are trained.
    calls = _recorder(monkeypatch)
    manifest = train_ensemble(*small_split, out, cfg, QUICK, progress=False, on_member_done=done.append)
    assert calls == ["member_1", "member_2"]
    assert [i.name for i in done] == ["member_0", "member_1", "member_2"]
    assert _mtimes(out / "member_0") == mtimes
    assert manifest.complete
    assert [m.name for m in manifest.members] == ["member_0", "member_1", "member_2"]
    assert manifest.members[0] == partial.members[0]
    assert manifest.config_hash == partial.config_hash
    ens = Ensemble.load(out, device="cpu")
    assert len(ens) == 3
    assert (ens.score(*probe)[0] == first_scores[0]).all()

    # A third run of a complete ensemble trains nothing and changes nothing.
    calls = _recorder(monkeypatch)
    all_mtimes = _mtimes(out)
    again = train_ensemble(*small_split, out, cfg, QUICK, progress=False)
    assert calls == []
    assert again.members == manifest.members
    assert {p: t for p, t in _mtimes(out).items() if p.name != "ensemble.json"} == {
        p: t for p, t in all_mtimes.items() if p.name != "ensemble.json"
    }


def test_member_written_but_not_recorded_is_retrained(tmp_path, backbones, small_split, monkeypatch):
    """Killed between the member's rename into place and the manifest write: the
    unrecorded directory is never trusted; it is retrained and the stale copy removed."""
    out = tmp_path / "ens"
    cfg = EnsembleConfig(kind="finetune", backbones=(str(backbones[0]),), n_members=2)
    calls = _recorder(monkeypatch, kill_on=2, kill_after_write=True)
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(*small_split, out, cfg, QUICK, progress=False)
    assert calls == ["member_0", "member_1"]
    assert (out / "member_1").is_dir()
    assert [m.name for m in Manifest.read(out).members] == ["member_0"]

    calls = _recorder(monkeypatch)
    manifest = train_ensemble(*small_split, out, cfg, QUICK, progress=False)
    assert calls == ["member_1"]
    assert manifest.complete and [m.name for m in manifest.members] == ["member_0", "member_1"]
    assert sorted(p.name for p in out.iterdir()) == ["ensemble.json", "member_0", "member_1"]
    assert len(Ensemble.load(out, device="cpu")) == 2


def test_kill_inside_the_trainer_leaves_no_partial_member(tmp_path, backbones, small_split, monkeypatch):
    from trl import RewardTrainer

    out = tmp_path / "ens"
    cfg = EnsembleConfig(kind="finetune", backbones=(str(backbones[0]),), n_members=1)

    entered = []

    def killed(self, *args, **kwargs):
        entered.append(self.args.output_dir)
        raise KeyboardInterrupt

    monkeypatch.setattr(RewardTrainer, "train", killed)
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(*small_split, out, cfg, QUICK, progress=False)
    assert len(entered) == 1 and entered[0].startswith(str(out))  # the trainer's scratch dir was inside out/
    assert sorted(p.name for p in out.iterdir()) == ["ensemble.json"]  # no member_0, no temp dirs
    assert Manifest.read(out).members == []


# ------------------------------------------------------------ plan changes
def _plans(backbones, split):
    train, heldout = split
    base = EnsembleConfig(kind="finetune", backbones=(str(backbones[0]),), n_members=3)
    return {
        "lr": (split, base, TrainConfig(lr=1e-3, epochs=3, batch_size=16, max_length=64)),
        "n_members": (split, EnsembleConfig(backbones=base.backbones, n_members=2), None),
        "seeds": (split, EnsembleConfig(backbones=base.backbones, n_members=3, seeds=(0, 1, 7)), None),
        "backbone": (split, EnsembleConfig(backbones=(str(backbones[1]),), n_members=3), None),
        "data": ((train[:-1], heldout), base, None),
    }


@pytest.mark.parametrize("change", ["lr", "n_members", "seeds", "backbone", "data"])
def test_same_directory_with_a_different_plan_is_refused(finetune_ensemble, backbones, rule_split, fast,
                                                         monkeypatch, change):
    out, _, _ = finetune_ensemble
    split, cfg, tc = _plans(backbones, rule_split)[change]
    calls = _recorder(monkeypatch)
    before = (out / "ensemble.json").read_bytes()
    mtimes = _mtimes(out)
    with pytest.raises(PlanMismatchError) as e:
        train_ensemble(*split, out, cfg, tc or fast, progress=False)
    assert str(out) in str(e.value) and "--overwrite" in str(e.value)
    assert calls == []
    assert (out / "ensemble.json").read_bytes() == before
    assert _mtimes(out) == mtimes


def test_same_plan_resumes_the_finished_fixture_without_training(finetune_ensemble, rule_split, fast, monkeypatch):
    out, manifest, cfg = finetune_ensemble
    calls = _recorder(monkeypatch)
    assert train_ensemble(*rule_split, out, cfg, fast, progress=False).members == manifest.members
    assert calls == []


def test_overwrite_replaces_an_ensemble_with_a_different_plan(finetune_ensemble, backbones, small_split, tmp_path):
    out = tmp_path / "ens"
    shutil.copytree(finetune_ensemble[0], out)
    old_hash = Manifest.read(out).config_hash
    cfg = EnsembleConfig(kind="finetune", backbones=(str(backbones[1]),), n_members=1, seeds=(5,))
    manifest = train_ensemble(*small_split, out, cfg, QUICK, progress=False, overwrite=True)
    assert manifest.config_hash != old_hash
    assert [(m.name, m.finetune_seed, m.backbone) for m in manifest.members] == [("member_0", 5, str(backbones[1]))]
    assert sorted(p.name for p in out.iterdir()) == ["ensemble.json", "member_0"]
    assert len(Ensemble.load(out, device="cpu")) == 1


def test_non_ensemble_directory_is_refused(tmp_path, backbones, small_split, monkeypatch):
    out = tmp_path / "stuff"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    calls = _recorder(monkeypatch)
    cfg = EnsembleConfig(backbones=(str(backbones[0]),), n_members=1)
    with pytest.raises(FileExistsError, match="not an ensemble directory"):
        train_ensemble(*small_split, out, cfg, QUICK, progress=False)
    assert calls == []
    assert (out / "notes.txt").read_text() == "mine"


def test_corrupt_manifest_in_output_is_an_error_without_overwrite(tmp_path, backbones, small_split, monkeypatch):
    out = tmp_path / "ens"
    out.mkdir()
    (out / "ensemble.json").write_text("{not json")
    calls = _recorder(monkeypatch)
    cfg = EnsembleConfig(backbones=(str(backbones[0]),), n_members=1)
    with pytest.raises(ManifestError, match="invalid JSON"):
        train_ensemble(*small_split, out, cfg, QUICK, progress=False)
    assert calls == []
    assert (out / "ensemble.json").read_text() == "{not json"


def test_killed_batched_run_keeps_members_written_before_the_kill(tmp_path, backbones, small_split, monkeypatch):
    """Batched members are written one by one after training together; a kill between two
    writes keeps the written member (recorded in the manifest) and retrains only the rest."""
    from rewardherd.training import member as training_member

    out = tmp_path / "ens"
    cfg = EnsembleConfig(kind="finetune", backbones=(str(backbones[0]),), n_members=3)
    batched = TrainConfig(lr=2e-3, epochs=1, batch_size=16, max_length=64)
    real_finish, real_members = training_member._finish_member, training_ensemble.train_members
    finished, batches = [], []

    def finish(*args, name, **kwargs):
        if name == "member_1" and not finished:
            finished.append(name)
            raise KeyboardInterrupt
        return real_finish(*args, name=name, **kwargs)

    def members(specs, *args, names, **kwargs):
        batches.append(list(names))
        return real_members(specs, *args, names=names, **kwargs)

    monkeypatch.setattr(training_member, "_finish_member", finish)
    monkeypatch.setattr(training_ensemble, "train_members", members)
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(*small_split, out, cfg, batched, progress=False)
    partial = Manifest.read(out)
    assert [m.name for m in partial.members] == ["member_0"]
    assert partial.members[0].train_config["batched_with"] == 3
    mtimes = _mtimes(out / "member_0")
    manifest = train_ensemble(*small_split, out, cfg, batched, progress=False)
    assert batches == [["member_0", "member_1", "member_2"], ["member_1", "member_2"]]
    assert _mtimes(out / "member_0") == mtimes
    assert manifest.complete and [m.name for m in manifest.members] == ["member_0", "member_1", "member_2"]
    assert manifest.members[0] == partial.members[0]
