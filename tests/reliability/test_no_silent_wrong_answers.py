"""Issue 11, "No silent wrong answers": one parametrized regression test per class of
failure. Each CLI case asserts exit code 2, a message naming the file and line and
field (or the member and file/field), no traceback, and that nothing was written.
Cases are hostile-but-realistic edits of a valid ensemble directory or of input files.
"""

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from rewardherd import core
from rewardherd.cli import app
from rewardherd.models import Ensemble, ManifestError
from rewardherd.training import ensemble as training_ensemble


def invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"TERMINAL_WIDTH": "200", "NO_COLOR": "1"})


def tree(path: Path) -> dict:
    """Every file under ``path`` with its bytes (empty when ``path`` is absent)."""
    if not path.exists():
        return {}
    if path.is_file():
        return {path: path.read_bytes()}
    return {p: p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def assert_clean_exit_2(result, *needles):
    """Exit code 2, a one-line ``error:`` naming every needle, and no traceback."""
    out = result.output
    assert result.exit_code == 2, (result.exit_code, out, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in out
    assert "error: " in out, out
    for n in needles:
        assert str(n) in out, (n, out)


def _edit_manifest(d: Path, fn) -> None:
    m = json.loads((d / "ensemble.json").read_text())
    fn(m)
    (d / "ensemble.json").write_text(json.dumps(m))


def _score(ens, items, out, *extra):
    return invoke(["score", ens, "-i", items, "-o", out, *extra])


# --------------------------------------------------- 1. random score heads
def _base_weights(d: Path, work) -> None:
    shutil.copy(work["backbone"] / "model.safetensors", d / "member_1" / "model.safetensors")


def _drop_checksums(d: Path) -> None:
    _edit_manifest(d, lambda m: [x.pop("files") for x in m["members"]])


@pytest.mark.parametrize("case, extra, needles", [
    ("verified", [], ["member 'member_1'", "member_1/model.safetensors", "checksum mismatch"]),
    ("no_verify", ["--no-verify"], ["member 'member_1'", "score.weight", "newly initialized"]),
    ("old_manifest", [], ["member 'member_1'", "score.weight", "newly initialized"]),
])
def test_1_member_without_a_score_head_is_refused(work, ens_copy, tmp_path, case, extra, needles):
    """The base model's weights copied into a member would load with a random head."""
    _base_weights(ens_copy, work)
    if case == "old_manifest":
        _drop_checksums(ens_copy)
    out = tmp_path / "s.jsonl"
    assert_clean_exit_2(_score(ens_copy, work["items"], out, *extra), *needles)
    assert not out.exists()


def test_1_multihead_heads_file_without_the_head_tensor_is_refused(work, tmp_path):
    from transformers import AutoTokenizer

    from rewardherd.models import Manifest, MemberInfo
    from rewardherd.models.multihead import HEADS_FILE, MultiHeadRewardModel

    d = tmp_path / "mh"
    model = MultiHeadRewardModel.from_backbone(work["backbone"], 2, [1, 2])
    tok = AutoTokenizer.from_pretrained(work["backbone"])
    model.save(d / "backbone", tok)
    infos = [MemberInfo(name=f"head_{k}", path="backbone", backbone="b", finetune_seed=k, format="multi_head", head=k,
                        standardization={"mean": 0.0, "std": 1.0}) for k in range(2)]
    Manifest(kind="multi_head", members=infos, max_length=64).write(d)
    assert len(Ensemble.load(d, device="cpu")) == 2
    heads = load_file(d / HEADS_FILE)
    save_file({"other.weight": heads["score.weight"]}, str(d / HEADS_FILE),
              metadata={"format": "rewardherd-multi-head-v1", "n_heads": "2", "architecture": "GPT2ForSequenceClassification"})
    with pytest.raises(ManifestError, match=r"head_0.*heads.safetensors.*checksum"):
        Ensemble.load(d, device="cpu")
    with pytest.raises(ManifestError, match=r"head_0.*heads.safetensors.*score.weight"):
        Ensemble.load(d, device="cpu", verify=False)


# -------------------------------------------------- 2. corrupt member files
def _truncate(d: Path) -> None:
    with open(d / "member_1" / "model.safetensors", "r+b") as f:
        f.truncate(2000)


def _flip(d: Path) -> None:
    p = d / "member_1" / "model.safetensors"
    b = bytearray(p.read_bytes())
    b[-100] ^= 0xFF  # inside the last tensor: loads fine, scores change
    p.write_bytes(bytes(b))


@pytest.mark.parametrize("damage, cmd, extra, needles", [
    (_truncate, "score", [], ["member 'member_1'", "member_1/model.safetensors", "checksum mismatch"]),
    (_truncate, "score", ["--no-verify"], ["member 'member_1'", "cannot load its files", "SafetensorError"]),
    (_flip, "score", [], ["member 'member_1'", "member_1/model.safetensors", "checksum mismatch"]),
    (_truncate, "serve", [], ["member 'member_1'", "member_1/model.safetensors", "checksum mismatch"]),
    (_truncate, "eval", [], ["member 'member_1'", "member_1/model.safetensors", "checksum mismatch"]),
], ids=["truncate", "truncate-no-verify", "flip", "serve-truncate", "eval-truncate"])
def test_2_corrupt_weights_name_the_member_and_file(work, ens_copy, tmp_path, damage, cmd, extra, needles):
    damage(ens_copy)
    out = tmp_path / "s.jsonl"
    before = tree(ens_copy)
    if cmd == "score":
        result = _score(ens_copy, work["items"], out, *extra)
    elif cmd == "serve":
        result = invoke(["serve", ens_copy, "--port", "0", *extra])
    else:
        result = invoke(["eval", ens_copy, "--data", work["data"], *extra])
    assert_clean_exit_2(result, *needles)
    assert not out.exists() and tree(ens_copy) == before


def test_2_old_manifest_without_checksums_loads_with_a_warning(ens_copy, caplog):
    _drop_checksums(ens_copy)
    with caplog.at_level(logging.WARNING, logger="rewardherd"):
        ens = Ensemble.load(ens_copy, device="cpu")
    assert len(ens) == 3
    assert "records no checksums" in caplog.text and "member_0" in caplog.text


# ------------------------------------------------ 3. manifest field checks
def _set(key, value):
    return lambda m: m.__setitem__(key, value)


def _set_member(i, key, value):
    return lambda m: m["members"][i].__setitem__(key, value)


def _set_mean(value):
    return lambda m: m["members"][0]["standardization"].__setitem__("mean", value)


@pytest.mark.parametrize("edit, field", [
    (_set_member(1, "name", "member_0"), "members[1].name: duplicate member name"),
    (_set("max_length", -5), "field 'max_length'"),
    (_set("max_length", "64"), "field 'max_length'"),
    (_set_mean("x"), "members[0].standardization.mean"),
    (_set("complete", "no"), "field 'complete'"),
    (_set_member(2, "path", "../../.."), "member 'member_2': field 'path'"),
    (_set_member(0, "heldout_accuracy", 3.0), "members[0].heldout_accuracy"),
    (_set("kind", "best"), "field 'kind'"),
], ids=["dup-name", "max_length-neg", "max_length-str", "mean-str", "complete-str", "path-escape", "acc-range", "kind"])
@pytest.mark.parametrize("cmd", ["score", "serve"])
def test_3_invalid_manifest_fields_are_refused_naming_the_field(work, ens_copy, tmp_path, edit, field, cmd):
    _edit_manifest(ens_copy, edit)
    out = tmp_path / "s.jsonl"
    if cmd == "score":
        result = _score(ens_copy, work["items"], out)
    else:  # the server never starts on an invalid ensemble
        result = invoke(["serve", ens_copy, "--port", "0"])
    assert_clean_exit_2(result, ens_copy / "ensemble.json", field)
    assert not out.exists()


def test_3_shared_member_paths_outside_the_directory_still_load(work, tmp_path):
    """Study manifests point at members under ../../members/: that stays allowed."""
    shutil.copytree(work["ens"] / "member_0", tmp_path / "members" / "m0" / "model")
    d = tmp_path / "ensembles" / "e"
    d.mkdir(parents=True)
    m = json.loads((work["ens"] / "ensemble.json").read_text())
    m["members"] = [{**m["members"][0], "path": "../../members/m0/model"}]
    m["members"][0].pop("files")
    (d / "ensemble.json").write_text(json.dumps(m))
    from rewardherd.models import Manifest

    Manifest.read(d).write(d)  # records checksums of the shared files
    assert Ensemble.load(d, device="cpu").names == ["member_0"]


# ------------------------------------------- 4. a failed first run blocks nothing
@pytest.mark.parametrize("content, needle", [("", "no preference pairs"), ("\n\n", "no preference pairs")],
                         ids=["empty", "blank-lines"])
def test_4_failed_first_run_writes_nothing(work, tmp_path, content, needle):
    data = tmp_path / "empty.jsonl"
    data.write_text(content)
    out = tmp_path / "o"
    result = invoke(["train", "--data", data, "--backbone", work["backbone"], "--out", out, "--no-progress"])
    assert_clean_exit_2(result, data, needle)
    assert not out.exists()


def test_4_leftover_of_a_run_that_trained_nothing_does_not_block_a_rerun(work, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "ensemble.json").write_text(json.dumps({"format_version": 1, "kind": "finetune_seeds", "members": [],
                                                   "complete": False, "config_hash": "another-plan"}))
    (out / ".member_0.tmp-abc").mkdir()
    result = invoke(["train", "--data", work["data"], "--backbone", work["backbone"], "--out", out, "--members", "1",
                     "--epochs", "1", "--batch-size", "16", "--max-length", "48", "--heldout-fraction", "0.34",
                     "--no-progress"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["ensemble.json", "member_0"]


# ---------------------------------------------------- 5. lone surrogates
SURROGATE = '"\\ud800"'  # valid JSON, invalid Unicode


def test_5_lone_surrogates_in_training_data_and_score_items(work, tmp_path):
    data = tmp_path / "sur.jsonl"
    data.write_text('{"prompt": "p ", "chosen": "a", "rejected": "b"}\n'
                    f'{{"prompt": "p ", "chosen": {SURROGATE}, "rejected": "b"}}\n')
    out = tmp_path / "o"
    result = invoke(["train", "--data", data, "--backbone", work["backbone"], "--out", out, "--no-progress"])
    assert_clean_exit_2(result, f"{data}:2:", "field 'chosen'", "lone surrogate")
    assert not out.exists()
    items = tmp_path / "items.jsonl"
    items.write_text(f'{{"prompt": "p", "response": "r"}}\n{{"prompt": "p", "response": "r", "id": {SURROGATE}}}\n')
    s = tmp_path / "s.jsonl"
    assert_clean_exit_2(_score(work["ens"], items, s), f"{items}:line 2", "field 'id'", "lone surrogate")
    assert not s.exists()


@pytest.fixture(scope="module")
def client(work):
    from fastapi.testclient import TestClient

    from rewardherd.serve import ServeConfig, create_app

    app = create_app(Ensemble.load(work["ens"], device="cpu"), ServeConfig(max_text_chars=1000,
                                                                           max_body_bytes=16 * 1024 * 1024))
    with TestClient(app) as c:
        yield c


def _post(client, path, body: str):
    return client.post(path, content=body.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize("path, body, where", [
    ("/v1/score", f'{{"items": [{{"prompt": "p", "response": "r", "id": {SURROGATE}}}, '
                  '{"prompt": "p", "response": "r", "id": "ok"}]}', "items[0].id"),
    ("/v1/score", f'{{"items": [{{"prompt": [{{"role": "user", "content": {SURROGATE}}}], "response": "r"}}]}}',
     "items[0].prompt[0].content"),
    ("/get_reward", f'{{"query": ["fine", {SURROGATE}]}}', "query[1]"),
    ("/get_reward", f'{{"query": ["q"], "prompts": [{SURROGATE}]}}', "prompts[0]"),
], ids=["score-id", "score-content", "get_reward-query", "get_reward-prompt"])
def test_5_lone_surrogates_on_the_server_are_422(client, path, body, where):
    r = _post(client, path, body)
    if path == "/get_reward":
        assert r.status_code == 422 and where in r.json()["detail"] and "lone surrogate" in r.json()["detail"]
        return
    assert r.status_code == 200  # /v1/score: the item's own error, the other items are scored
    res = r.json()["results"]
    assert where in res[0]["error"] and "lone surrogate" in res[0]["error"] and "id" not in res[0]
    if len(res) > 1:
        assert res[1]["id"] == "ok" and "reward" in res[1]


# ----------------------------------------------- 6. messages, not tracebacks
def _deep(key_after: str) -> str:
    return '{"prompt": ' + "[" * 100_000 + "]" * 100_000 + f', {key_after}}}\n'


def _cases_6(work, tmp_path):
    missing = tmp_path / "missing.jsonl"
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "state.json").write_text("{bad")
    deep = tmp_path / "deep.jsonl"
    deep.write_text(_deep('"chosen": "a", "rejected": "b"'))
    deep_items = tmp_path / "deep_items.jsonl"
    deep_items.write_text(_deep('"response": "a"'))
    rows = {"not_object": "[1, 2]", "int_prompt": '{"prompt": 5, "response": "a"}',
            "bad_message": '{"prompt": [{"role": "user"}], "response": "a"}',
            "list_id": '{"prompt": "p", "response": "a", "id": [1]}', "bad_json": '{"prompt": '}
    for name, row in rows.items():
        (tmp_path / f"{name}.jsonl").write_text('{"prompt": "p", "response": "a"}\n' + row + "\n")
    garbage = tmp_path / "garbage"
    shutil.copytree(work["ens"], garbage)
    (garbage / "member_0" / "config.json").write_text("garbage{")
    b, d, out, scored = work["backbone"], work["data"], tmp_path / "out", tmp_path / "out.jsonl"
    train = ["train", "--backbone", b, "--out", out, "--no-progress"]
    return {
        "train-missing-data": (["train", "--data", missing, "--backbone", b, "--out", out], [missing, "not found"]),
        "train-missing-heldout": ([*train, "--data", d, "--heldout-data", missing], [missing, "not found"]),
        "eval-missing-data": (["eval", work["ens"], "--data", missing], [missing, "not found"]),
        "out-is-a-file": (["train", "--data", d, "--backbone", b, "--out", a_file], [a_file, "is a file"]),
        "out-under-a-file": (["train", "--data", d, "--backbone", b, "--out", a_file / "ens"], [a_file, "not a directory"]),
        "missing-backbone": (["train", "--data", d, "--backbone", tmp_path / "nope", "--out", out],
                             [tmp_path / "nope", "not found"]),
        "bad-datasets-dir": ([*train, "--data", ds], [ds, "cannot read `datasets` directory"]),
        "deep-json-train": ([*train, "--data", deep], [f"{deep}:1:", "nested too deeply"]),
        "deep-json-score": (["score", work["ens"], "-i", deep_items, "-o", scored],
                            [f"{deep_items}:line 1", "nested"]),
        **{f"score-{n}": (["score", work["ens"], "-i", tmp_path / f"{n}.jsonl", "-o", scored],
                          [f"{tmp_path / f'{n}.jsonl'}:line 2"]) for n in rows},
        "garbage-config": (["score", garbage, "-i", work["items"], "-o", scored, "--no-verify"],
                           ["member 'member_0'", garbage / "member_0" / "config.json", "not a valid JSON config"]),
    }


CASES_6 = ["train-missing-data", "train-missing-heldout", "eval-missing-data", "out-is-a-file", "out-under-a-file",
           "missing-backbone", "bad-datasets-dir", "deep-json-train", "deep-json-score", "score-not_object",
           "score-int_prompt", "score-bad_message", "score-list_id", "score-bad_json", "garbage-config"]


@pytest.mark.parametrize("case", CASES_6)
def test_6_user_mistakes_are_messages_not_tracebacks(work, tmp_path, case):
    args, needles = _cases_6(work, tmp_path)[case]
    before = tree(tmp_path)
    result = invoke(args)
    assert_clean_exit_2(result, *needles)
    assert tree(tmp_path) == before  # nothing written, nothing touched
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.jsonl").exists()


# ------------------------------------------------------ 7. server limits
@pytest.mark.parametrize("prompt, needle", [
    ([{"role": "r" * 5000, "content": ""}], "characters (roles, contents and one per message)"),
    ([{"role": "user", "content": ""}] * 200_000, "200000 messages"),
    ([{"role": "user", "content": ""}] * 300, "characters"),  # 300 * (1 + 4) > 1000
    ([{"role": "wizard", "content": "hi"}], "role is 'wizard'; allowed roles: system, user, assistant"),
], ids=["long-role", "many-messages", "empty-messages-count", "unknown-role"])
def test_7_every_character_and_message_counts_against_the_limit(client, prompt, needle):
    r = client.post("/v1/score", json={"items": [{"prompt": prompt, "response": "b"}]})
    assert r.status_code == 200
    (res,) = r.json()["results"]
    assert "items[0].prompt" in res["error"] and needle in res["error"], res


def test_7_roles_named_by_a_chat_template_are_allowed():
    from rewardherd.serve.protocol import template_roles

    tpl = "{% for m in messages %}{% if m['role'] == 'tool' %}T{% elif message.role == \"ipython\" %}{% endif %}"
    assert template_roles([tpl, None]) == ("system", "user", "assistant", "tool", "ipython")


# ---------------------------------------- 8. the library refuses what it cannot mean
@pytest.mark.parametrize("call, exc, needle", [
    (lambda e: core.aggregate(np.array([[1.0, np.nan], [2.0, 3.0]]), "mean"), ValueError, "(member 0, sample 1)"),
    (lambda e: core.aggregate(np.array([[1.0], [np.inf]]), "min"), ValueError, "(member 1, sample 0)"),
    (lambda e: core.spread(np.array([[1.0, np.nan]])), ValueError, "(member 0, sample 1)"),
    (lambda e: core.aggregate(np.ones((2, 2)), "mean_minus_std", k=float("inf")), ValueError, "parameter k"),
    (lambda e: core.aggregate(np.ones((2, 2)), "uncertainty_weighted", lam=float("nan")), ValueError, "parameter lam"),
    (lambda e: core.aggregate(np.ones((2, 2)), "soft_min", temperature=float("inf")), ValueError, "temperature"),
    (lambda e: e.reward("hello", "world"), TypeError, "prompts must be a sequence of texts, not a single string"),
    (lambda e: e.reward(["hello"], "w"), TypeError, "responses must be a sequence"),
    (lambda e: e.best_of_n(["p"], ["abc"]), TypeError, "candidates[0] must be a sequence"),
    (lambda e: e.best_of_n(["p"], "abc"), TypeError, "candidates must be a sequence"),
    (lambda e: e.score(["p"], ["\ud800"]), ValueError, "responses[0]: invalid Unicode"),
    (lambda e: e.score(["p"], [[{"role": "user"}]]), ValueError, "responses[0][0]"),
], ids=["nan", "inf", "spread-nan", "k-inf", "lam-nan", "temperature-inf", "reward-str", "reward-str-2",
        "bon-str-candidates", "bon-str", "surrogate", "bad-message"])
def test_8_library_refuses_inputs_it_cannot_mean(work, call, exc, needle):
    ens = Ensemble.load(work["ens"], device="cpu")
    with pytest.raises(exc) as e:
        call(ens)
    assert needle in str(e.value)


# ------------------------------------------- 9. leftovers of a killed run
@pytest.mark.parametrize("batched", [False, True])
def test_9_resume_removes_temporary_member_directories(work, tmp_path, monkeypatch, batched):
    from rewardherd.training import member as training_member

    out = tmp_path / "o"
    # One at a time the kill comes while member_1 trains; batched, while member_1 is being written.
    owner, attr = (training_member, "_finish_member") if batched else (training_ensemble, "train_member")
    real, calls = getattr(owner, attr), []

    def killed_on_second(*args, name, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            (out / f".{name}.tmp-killed").mkdir()  # what SIGKILL leaves mid-member
            raise KeyboardInterrupt
        return real(*args, name=name, **kwargs)

    monkeypatch.setattr(owner, attr, killed_on_second)
    cmd = ["train", "--data", work["data"], "--backbone", work["backbone"], "--out", out, "--members", "2",
           "--epochs", "1", "--batch-size", "16", "--max-length", "48", "--heldout-fraction", "0.34", "--no-progress",
           "--batched" if batched else "--no-batched"]
    assert invoke(cmd).exit_code != 0
    assert (out / ".member_1.tmp-killed").is_dir()
    monkeypatch.setattr(owner, attr, real)
    result = invoke(cmd)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["ensemble.json", "member_0", "member_1"]


# ------------------------------------------------------- 10. small ones
def test_10_score_output_follows_its_suffix(work, tmp_path):
    import pandas as pd

    bad = tmp_path / "x.txt"
    assert_clean_exit_2(_score(work["ens"], work["items"], bad), bad, "unsupported output suffix '.txt'")
    assert not bad.exists()
    for suffix, read in ((".csv", pd.read_csv), (".parquet", pd.read_parquet),
                         (".json", lambda p: pd.read_json(p, lines=True))):
        out = tmp_path / f"x{suffix}"
        assert _score(work["ens"], work["items"], out).exit_code == 0
        assert read(out)["id"].tolist() == ["a", "b"]


@pytest.mark.parametrize("case", ["unclosed-csv-quote", "score-bom", "few-heldout"])
def test_10_small_ones(work, tmp_path, case, caplog):
    out = tmp_path / "o"
    if case == "unclosed-csv-quote":
        data = tmp_path / "d.csv"
        data.write_text('prompt,chosen,rejected\np,good,bad\nq,"good,bad\nr,c2,r2\n')
        result = invoke(["train", "--data", data, "--backbone", work["backbone"], "--out", out, "--no-progress"])
        assert_clean_exit_2(result, f"{data}:3:", "unclosed quote")
        assert not out.exists()
    elif case == "score-bom":
        items = tmp_path / "bom.jsonl"
        items.write_bytes(b"\xef\xbb\xbf" + work["items"].read_bytes())
        result = _score(work["ens"], items, tmp_path / "s.jsonl")
        assert result.exit_code == 0, result.output
    else:
        heldout = tmp_path / "h.jsonl"
        heldout.write_text("".join(work["data"].read_text().splitlines(keepends=True)[:1]))
        with caplog.at_level(logging.WARNING, logger="rewardherd"):
            result = invoke(["train", "--data", work["data"], "--heldout-data", heldout, "--backbone",
                             work["backbone"], "--out", out, "--members", "1", "--epochs", "1", "--batch-size", "16",
                             "--max-length", "48", "--no-progress"])
        assert result.exit_code == 0, result.output
        assert "only 1 held-out pair(s) (< 20)" in caplog.text and "unreliable" in caplog.text
