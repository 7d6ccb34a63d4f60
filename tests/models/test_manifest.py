"""The ensemble directory format: ensemble.json, atomic save, refusals on bad input."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rewardherd.models import Ensemble, Manifest, ManifestError, MemberInfo, load_member_model
from rewardherd.models.manifest import FORMAT_VERSION, MANIFEST


def _read(directory) -> dict:
    return json.loads((directory / MANIFEST).read_text())


def _write(directory, d: dict) -> None:
    (directory / MANIFEST).write_text(json.dumps(d))


def _siblings(directory) -> list[str]:
    return sorted(p.name for p in directory.parent.iterdir())


# --------------------------------------------------------------- contents
def test_saved_directory_layout_and_manifest_contents(saved_ensemble):
    d = _read(saved_ensemble)
    assert d["format_version"] == FORMAT_VERSION == 1
    assert d["kind"] == "finetune"
    assert d["complete"] is True
    assert d["text_format"] == "plain-v1"
    assert d["max_length"] == 64
    assert d["created"]
    assert {"torch", "transformers", "trl"} <= set(d["package_versions"])
    assert len(d["members"]) == 2
    for i, m in enumerate(d["members"]):
        assert m["name"] == m["path"] == f"member_{i}"
        assert m["format"] == "hf"
        assert m["finetune_seed"] == i and m["pretrain_seed"] == 0
        assert m["backbone"]
        assert {"mean", "std", "n"} <= set(m["standardization"])
        assert m["heldout_accuracy"] == 0.5
        assert m["train_config"] == {"lr": 1e-3}
        member_dir = saved_ensemble / m["path"]
        assert (member_dir / "model.safetensors").is_file()
        assert (member_dir / "config.json").is_file()
        assert (member_dir / "tokenizer.json").is_file()
        assert not list(member_dir.glob("*.bin")) and not list(member_dir.glob("*.pt"))
    assert _siblings(saved_ensemble) == ["ens"]  # no temp directory left behind


def test_manifest_dict_round_trip():
    info = MemberInfo(name="member_0", path="member_0", backbone="b", finetune_seed=3, standardization={"mean": 0.0, "std": 1.0})
    m = Manifest(kind="explicit", members=[info], config_hash="abc")
    again = Manifest.from_dict(json.loads(json.dumps(m.to_dict())), "x")
    assert again == m


@pytest.mark.parametrize("old, new", [("finetune_seeds", "finetune"), ("pretrain_seeds", "pretrain")])
def test_manifest_with_an_old_kind_name_loads_and_is_written_back_with_the_new(saved_ensemble, old, new):
    d = _read(saved_ensemble)
    d["kind"] = old
    (saved_ensemble / MANIFEST).write_text(json.dumps(d))
    m = Manifest.read(saved_ensemble)
    assert m.kind == new
    m.write(saved_ensemble)
    assert _read(saved_ensemble)["kind"] == new
    assert Manifest(kind=old, members=[]).kind == new


def test_save_load_round_trip_gives_identical_scores(make_ensemble, tmp_path, texts):
    ens = make_ensemble(2)
    before = ens.score(*texts)
    ens.save(tmp_path / "ens")
    loaded = Ensemble.load(tmp_path / "ens", device="cpu")
    assert loaded.names == ["member_0", "member_1"]
    assert loaded.directory == tmp_path / "ens"
    np.testing.assert_array_equal(loaded.score(*texts), before)
    # save records a checksum of every member file; the rest of each entry round-trips
    assert [replace(m.info, files=None) for m in loaded.members] == [m.info for m in ens.members]
    for m in loaded.members:
        assert {f"{m.name}/model.safetensors", f"{m.name}/config.json"} <= set(m.info.files)


# ------------------------------------------------------------- overwrite
def test_save_refuses_an_existing_directory(make_ensemble, saved_ensemble):
    before = (saved_ensemble / MANIFEST).read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_ensemble(1).save(saved_ensemble)
    assert (saved_ensemble / MANIFEST).read_bytes() == before
    assert _siblings(saved_ensemble) == ["ens"]


def test_save_refuses_even_an_empty_existing_directory(make_ensemble, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileExistsError):
        make_ensemble(1).save(tmp_path / "empty")


def test_save_with_overwrite_replaces_the_ensemble(make_ensemble, saved_ensemble):
    (saved_ensemble / "stray.txt").write_text("from the old ensemble")
    make_ensemble(1).save(saved_ensemble, overwrite=True)
    d = _read(saved_ensemble)
    assert [m["name"] for m in d["members"]] == ["member_0"]
    assert not (saved_ensemble / "member_1").exists()
    assert not (saved_ensemble / "stray.txt").exists()
    assert _siblings(saved_ensemble) == ["ens"]  # old copy and temp directory removed
    assert len(Ensemble.load(saved_ensemble, device="cpu")) == 1


def test_failed_save_leaves_nothing_behind(make_ensemble, tmp_path, monkeypatch):
    ens = make_ensemble(1)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Manifest, "write", boom)
    with pytest.raises(OSError, match="disk full"):
        ens.save(tmp_path / "ens")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- refusals
def test_incomplete_manifest_refuses_to_load(saved_ensemble):
    d = _read(saved_ensemble)
    d["complete"] = False
    _write(saved_ensemble, d)
    with pytest.raises(ManifestError, match="not complete") as e:
        Ensemble.load(saved_ensemble)
    assert str(saved_ensemble / MANIFEST) in str(e.value)
    assert len(Ensemble.load(saved_ensemble, allow_incomplete=True, device="cpu")) == 2


def test_missing_manifest_names_the_file(tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ManifestError, match="not found") as e:
        Ensemble.load(tmp_path / "nothing")
    assert str(tmp_path / "nothing" / MANIFEST) in str(e.value)


def test_truncated_json_names_the_file_and_line(saved_ensemble):
    text = (saved_ensemble / MANIFEST).read_text()
    (saved_ensemble / MANIFEST).write_text(text[: len(text) // 2])
    with pytest.raises(ManifestError, match="invalid JSON") as e:
        Ensemble.load(saved_ensemble)
    assert f"{saved_ensemble / MANIFEST}:" in str(e.value)


def _drop(key):
    def edit(d):
        del d[key]

    return edit


def _drop_member(key):
    def edit(d):
        del d["members"][0][key]

    return edit


def _set(key, value):
    def edit(d):
        d[key] = value

    return edit


def _set_member(key, value):
    def edit(d):
        d["members"][1][key] = value

    return edit


@pytest.mark.parametrize(
    "edit, field",
    [
        (_drop("format_version"), "format_version"),
        (_set("format_version", 99), "format_version"),
        (_drop("members"), "members"),
        (_set("members", {"member_0": {}}), "members"),
        (_set("colour", "blue"), "colour"),
        (_drop_member("backbone"), "backbone"),
        (_drop_member("finetune_seed"), "finetune_seed"),
        (_drop_member("name"), "name"),
        (_drop_member("path"), "path"),
        (_set_member("colour", "blue"), "colour"),
        (_set_member("standardization", {"mean": 0.0}), "standardization"),
        (_set_member("standardization", 1.5), "standardization"),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_corrupt_or_missing_field_names_file_and_field(saved_ensemble, edit, field):
    d = _read(saved_ensemble)
    edit(d)
    _write(saved_ensemble, d)
    with pytest.raises(ManifestError) as e:
        Ensemble.load(saved_ensemble)
    msg = str(e.value)
    assert str(saved_ensemble / MANIFEST) in msg
    assert field in msg


def test_member_entry_of_wrong_type_names_file_and_field(saved_ensemble):
    """A hand-edited manifest with a non-string member path is a ManifestError naming the field."""
    d = _read(saved_ensemble)
    d["members"][1]["path"] = 1
    _write(saved_ensemble, d)
    with pytest.raises(ManifestError) as e:
        Ensemble.load(saved_ensemble)
    assert str(saved_ensemble / MANIFEST) in str(e.value)
    assert "path" in str(e.value)


def test_member_directory_missing(saved_ensemble):
    import shutil

    shutil.rmtree(saved_ensemble / "member_1")
    with pytest.raises(ManifestError, match="member_1") as e:
        Ensemble.load(saved_ensemble)
    assert "does not exist" in str(e.value)


def test_unknown_member_format_is_refused(saved_ensemble):
    d = _read(saved_ensemble)
    d["members"][0]["format"] = "lora"
    _write(saved_ensemble, d)
    with pytest.raises(ManifestError, match="lora"):
        Ensemble.load(saved_ensemble)


def test_pickle_only_member_is_refused(saved_ensemble):
    member = saved_ensemble / "member_0"
    weights = load_file(member / "model.safetensors")
    torch.save(weights, member / "pytorch_model.bin")
    (member / "model.safetensors").unlink()
    with pytest.raises(ManifestError, match="safetensors") as e:
        Ensemble.load(saved_ensemble)
    assert str(member) in str(e.value)
    with pytest.raises(ManifestError, match="pickle"):
        load_member_model(member)


def test_load_member_model_alone(saved_ensemble):
    model, tok = load_member_model(saved_ensemble / "member_0", device="cpu")
    assert model.config.num_labels == 1
    assert model.config.pad_token_id == tok.pad_token_id is not None
    assert not model.training
