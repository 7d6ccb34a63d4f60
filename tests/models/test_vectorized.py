"""Vectorized (vmap) scoring is the loop, to fp32 rounding; dispatch per device.

Tolerance: atol 1e-5 (fp32 on CPU). vmap runs the same ops per member but through
batched kernels, so results agree to rounding, not bitwise.
"""

import logging

import numpy as np
import pytest
import torch

from rewardherd.models import Ensemble, Manifest, Member, MemberInfo
from rewardherd.models.formatting import encode_batch, pad_token_id
from rewardherd.models.scoring import pad_right
from rewardherd.models.vectorized import (
    GroupScorer,
    StackedMembers,
    _ConcatUnit,
    _GraphedUnit,
    _ModelUnit,
    _StackedUnit,
    architecture_signature,
    build_units,
    resolve_scoring,
    score_members,
)

ATOL = 1e-5


def _ids(ens, prompts, responses):
    tok = ens.members[0].tokenizer
    ids, _ = encode_batch(tok, prompts, responses, ens.max_length)
    return ids, pad_token_id(tok)


def _odd_member(tok, name="odd", n_layer=1) -> Member:
    """A member with a different architecture (layer count) but the same tokenizer."""
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(7)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=32, n_layer=n_layer, n_head=2, num_labels=1,
                     pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = GPT2ForSequenceClassification(cfg).eval()
    info = MemberInfo(name=name, path=name, backbone="none", finetune_seed=0)
    return Member(info, model, tok)


def test_auto_is_loop_on_cpu_and_vmap_on_cuda():
    assert resolve_scoring("auto", torch.device("cpu")) == "loop"
    assert resolve_scoring("auto", torch.device("cuda")) == "vmap"
    assert resolve_scoring("vmap", torch.device("cpu")) == "vmap"
    assert resolve_scoring("loop", torch.device("cuda")) == "loop"
    with pytest.raises(ValueError, match="scoring"):
        resolve_scoring("fast", torch.device("cpu"))
    with pytest.raises(ValueError, match="scoring"):
        GroupScorer("fast")


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_vmap_equals_loop(make_ensemble, texts, batch_size):
    ens = make_ensemble(3)
    ids, pad = _ids(ens, *texts)
    models = [m.model for m in ens.members]
    loop = score_members(models, ids, pad, batch_size, scoring="loop")
    vmapped = score_members(models, ids, pad, batch_size, scoring="vmap")
    assert vmapped.shape == (3, len(ids))
    np.testing.assert_allclose(vmapped, loop, atol=ATOL, rtol=0)
    assert not np.allclose(vmapped[0], vmapped[1], atol=1e-4)  # members really differ


def test_ensemble_vmap_scoring_equals_loop_end_to_end(make_ensemble, texts):
    base = make_ensemble(3)
    loop = Ensemble(base.members, base.manifest, scoring="loop")
    vm = Ensemble(make_ensemble(3).members, base.manifest, scoring="vmap")
    assert vm.scoring == "vmap" and Ensemble(base.members, base.manifest).scoring == "auto"
    np.testing.assert_allclose(vm.score(*texts), loop.score(*texts), atol=ATOL, rtol=0)
    # duplicates and reordering go through the same dedup path
    p, r = texts
    np.testing.assert_allclose(vm.score(p[::-1] + p, r[::-1] + r), loop.score(p[::-1] + p, r[::-1] + r), atol=ATOL,
                               rtol=0)


def test_load_with_vmap_scoring(make_ensemble, tmp_path, texts):
    d = make_ensemble(2).save(tmp_path / "ens")
    a = Ensemble.load(d, device="cpu", scoring="vmap")
    b = Ensemble.load(d, device="cpu")
    assert a.scoring == "vmap" and b.scoring == "auto"
    np.testing.assert_allclose(a.score(*texts), b.score(*texts), atol=ATOL, rtol=0)


def test_save_after_vmap_scoring_round_trips(make_ensemble, tmp_path, texts):
    """Stacking turns member parameters into views of the stack; saving must still
    write each member's own tensors."""
    vm = Ensemble(make_ensemble(2).members, make_ensemble(2).manifest, scoring="vmap")
    raw = vm.score(*texts)
    back = Ensemble.load(vm.save(tmp_path / "ens"), device="cpu")
    np.testing.assert_allclose(back.score(*texts), raw, atol=ATOL, rtol=0)


def test_vmap_plan_stacks_same_architecture_members(make_ensemble):
    ens = make_ensemble(3)
    models = [m.model for m in ens.members]
    units = build_units(models, "vmap")
    assert len(units) == 1 and isinstance(units[0], _StackedUnit) and units[0].rows == [0, 1, 2]
    assert all(isinstance(u, _ModelUnit) for u in build_units(models, "loop"))
    assert all(isinstance(u, _ModelUnit) for u in build_units(models, "auto"))  # CPU


def test_heterogeneous_members_fall_back_to_the_loop(make_ensemble, texts):
    ens = make_ensemble(2)
    tok = ens.members[0].tokenizer
    odd = _odd_member(tok)
    models = [ens.members[0].model, odd.model, ens.members[1].model]
    assert architecture_signature(odd.model) != architecture_signature(models[0])
    units = build_units(models, "vmap")
    kinds = sorted((type(u).__name__, tuple(u.rows)) for u in units)
    assert kinds == [("_ModelUnit", (1,)), ("_StackedUnit", (0, 2))]
    ids, pad = _ids(ens, *texts)
    np.testing.assert_allclose(score_members(models, ids, pad, 4, "vmap"), score_members(models, ids, pad, 4, "loop"),
                               atol=ATOL, rtol=0)
    # through the Ensemble too (rows come back in member order)
    members = [ens.members[0], odd, ens.members[1]]
    manifest = Manifest(kind="explicit", members=[m.info for m in members], max_length=64)
    np.testing.assert_allclose(Ensemble(members, manifest, scoring="vmap").score(*texts),
                               Ensemble(members, manifest, scoring="loop").score(*texts), atol=ATOL, rtol=0)


def test_single_member_never_stacks(make_ensemble, texts):
    ens = make_ensemble(1)
    units = build_units([ens.members[0].model], "vmap")
    assert len(units) == 1 and isinstance(units[0], _ModelUnit)


def test_stacking_shares_memory_and_sees_in_place_updates(make_ensemble, texts):
    ens = make_ensemble(2)
    models = [m.model for m in ens.members]
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in models]
    stacked = StackedMembers(models)
    for i, m in enumerate(models):  # values unchanged, storage now in the stack
        for k, v in m.state_dict().items():
            torch.testing.assert_close(v, before[i][k], atol=0, rtol=0)
        assert m.score.weight.data_ptr() == stacked.params["score.weight"][i].data_ptr()
    assert stacked.is_current()
    ids, pad = _ids(ens, *texts)
    input_ids, mask = pad_right(ids, pad)
    with torch.no_grad():
        models[1].score.weight.mul_(2.0)  # an in-place update of one member
        ref = models[1](input_ids=input_ids, attention_mask=mask).logits[:, 0]
        torch.testing.assert_close(stacked(input_ids, mask)[1], ref, atol=ATOL, rtol=0)
    models[0].score.weight.data = models[0].score.weight.data.clone()  # re-materialized: the tie is gone
    assert not stacked.is_current()


def test_scorer_rebuilds_its_plan_when_a_member_changes(make_ensemble, texts):
    ens = make_ensemble(2)
    vm = Ensemble(ens.members, ens.manifest, scoring="vmap")
    first = vm.score(*texts)
    with torch.no_grad():
        w = ens.members[0].model.score.weight
        w.data = w.data.clone() * -1.0  # breaks the view; the next call must not use stale stacks
    again = vm.score(*texts)
    np.testing.assert_allclose(again[0], -first[0], atol=ATOL, rtol=0)
    np.testing.assert_allclose(again[1], first[1], atol=ATOL, rtol=0)


def test_static_shape_padding_gives_the_same_scores(make_ensemble, texts):
    """CUDA graphs need static shapes: padding rows to batch_size and length to a
    multiple must not change any score (checked on CPU without graphs)."""
    ens = make_ensemble(2)
    ids, pad = _ids(ens, *texts)
    models = [m.model for m in ens.members]
    ref = GroupScorer("loop").score(models, ids, pad, 4)
    for mode in ("loop", "vmap"):
        static = GroupScorer(mode, static_shapes=True, graph_length_multiple=16).score(models, ids, pad, 4)
        np.testing.assert_allclose(static, ref, atol=ATOL, rtol=0)


def test_pad_right_static_shape_and_filler_rows():
    ids, mask = pad_right([[5, 6, 7], [8]], pad_id=1, length=5, rows=3)
    assert ids.tolist() == [[5, 6, 7, 1, 1], [8, 1, 1, 1, 1], [1, 1, 1, 1, 1]]
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 0, 0, 0, 0]]  # filler row never fully masked
    with pytest.raises(ValueError, match="static shape"):
        pad_right([[1, 2, 3]], pad_id=0, length=2)


def test_graph_capture_failure_falls_back_to_eager(make_ensemble, texts, caplog, monkeypatch):
    """CUDA graphs are best effort: a failed capture scores eagerly (logic checked on CPU)."""
    ens = make_ensemble(1)
    unit = _ModelUnit(0, ens.members[0].model)
    graphed = _GraphedUnit(unit)

    def boom(*a):
        raise RuntimeError("capture not supported")

    monkeypatch.setattr(graphed, "_capture", boom)
    ids, pad = _ids(ens, *texts)
    input_ids, mask = pad_right(ids, pad)
    with caplog.at_level(logging.WARNING, logger="rewardherd.models.vectorized"), torch.no_grad():
        out = graphed(input_ids, mask)
        torch.testing.assert_close(out, unit(input_ids, mask), atol=0, rtol=0)
    assert "capture failed" in caplog.text and graphed.failed


def test_concatenated_units_keep_their_rows(make_ensemble, texts):
    """With CUDA graphs every unit of a device runs inside one captured unit."""
    ens = make_ensemble(3)
    models = [m.model for m in ens.members]
    units = build_units([models[2], models[0], models[1]], "vmap")  # stacked rows 0,1,2 of this order
    cat = _ConcatUnit(units + [_ModelUnit(3, models[0])])
    assert cat.rows == [0, 1, 2, 3]
    ids, pad = _ids(ens, *texts)
    input_ids, mask = pad_right(ids, pad)
    with torch.no_grad():
        out = cat(input_ids, mask)
        ref = torch.stack([m(input_ids=input_ids, attention_mask=mask).logits[:, 0] for m in
                           (models[2], models[0], models[1], models[0])])
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)
    assert len(GroupScorer("vmap", cuda_graphs=True).plan(models)) == 1  # CPU: no graph, one stacked unit


def test_empty_and_invalid_inputs(make_ensemble):
    ens = make_ensemble(2)
    models = [m.model for m in ens.members]
    assert score_members(models, [], 1, 4, "vmap").shape == (2, 0)
    with pytest.raises(ValueError, match="empty"):
        score_members(models, [[1, 2], []], 1, 4, "vmap")
    with pytest.raises(ValueError, match="stack"):
        StackedMembers(models[:1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_vmap_and_graphs_equal_the_loop(make_ensemble, texts):
    ens = make_ensemble(3).to("cuda")
    ids, pad = _ids(ens, *texts)
    models = [m.model for m in ens.members]
    loop = GroupScorer("loop").score(models, ids, pad, 4)
    np.testing.assert_allclose(GroupScorer("auto").score(models, ids, pad, 4), loop, atol=1e-4, rtol=0)
    graphed = GroupScorer("vmap", cuda_graphs=True)
    for _ in range(2):  # capture, then replay
        np.testing.assert_allclose(graphed.score(models, ids, pad, 4), loop, atol=1e-4, rtol=0)
    graphed_loop = GroupScorer("loop", cuda_graphs=True)
    np.testing.assert_allclose(graphed_loop.score(models, ids, pad, 4), loop, atol=1e-4, rtol=0)
