"""Score K members on one batch at once: the fastest correct path per device.

Shape notation: ``k`` members (of one tokenizer group), ``b`` sequences of one
length bucket, ``t`` padded length; scores are (k, b), ensemble axis first.

:class:`GroupScorer` pads each length bucket once for all members and runs scoring
units on it: ``loop`` (one forward per member), ``vmap`` (same-architecture members
stacked, their parameters kept as views, under one :func:`torch.func.vmap`), or a
shared-backbone parent (multi-head, LoRA; :class:`SharedView`) scoring its members in
one pass where its ``one_pass_on_cpu`` or the device says that pays. ``auto`` is loop
on CPU (vmap measured slower there; docs/performance.md), vmap on CUDA.
Departure: opt-in CUDA graphs pad buckets to static shapes (masked, so scores do not
change) and replay one capture per shape; a failed capture runs eagerly.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from rewardherd.models.scoring import length_buckets, pad_right

log = logging.getLogger(__name__)

Scoring = Literal["auto", "loop", "vmap"]
SCORING: tuple[str, ...] = ("auto", "loop", "vmap")
_MAX_PLANS = 8  # cached plans per scorer (one per tokenizer group in use)

# Config keys that name or date a checkpoint but do not change its forward pass.
_IGNORED_CONFIG_KEYS = {"_name_or_path", "transformers_version", "architectures", "_commit_hash", "name_or_path"}


def resolve_scoring(scoring: str, device: torch.device) -> Literal["loop", "vmap"]:
    """The path ``scoring`` means on ``device``: auto is loop on CPU, vmap on CUDA."""
    if scoring not in SCORING:
        raise ValueError(f"scoring must be one of {SCORING}; got {scoring!r}")
    if scoring == "auto":
        return "vmap" if torch.device(device).type == "cuda" else "loop"
    return scoring  # type: ignore[return-value]


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


# ----------------------------------------------------------------- shared views
class SharedView(torch.nn.Module):
    """One member that lives inside a shared-backbone model (a head, an adapter).

    Calling it scores with that member alone, like an HF sequence classifier with
    ``num_labels=1`` (``.logits`` is (b, 1)), so code written for standalone members
    (``score_ids``, evaluation) works unchanged. :class:`GroupScorer` instead groups
    views by ``parent`` and calls ``parent.score_views(input_ids, attention_mask,
    keys)`` once, which returns (k, b).
    """

    def __init__(self, parent: torch.nn.Module, key):
        # parent.one_pass_on_cpu: whether ``auto`` on CPU scores all views in one call.
        super().__init__()
        self.parent = parent
        self.key = key

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        from transformers.modeling_outputs import SequenceClassifierOutput

        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        scores = self.parent.score_views(input_ids, attention_mask, [self.key])  # (1, b)
        return SequenceClassifierOutput(logits=scores[0][:, None])


# ------------------------------------------------------------ stacked members
def architecture_signature(model: torch.nn.Module) -> str | None:
    """Members with equal signatures can be stacked and vmapped; None: never stack.

    The signature is the class, every parameter and buffer (name, shape, dtype,
    device) and the config minus checkpoint names, so two members with the same
    signature run the same function of their parameters.
    """
    config = getattr(model, "config", None)
    if config is None or isinstance(model, SharedView) or not hasattr(config, "to_dict"):
        return None
    cfg = {k: v for k, v in config.to_dict().items() if k not in _IGNORED_CONFIG_KEYS}
    tensors = [(n, tuple(t.shape), str(t.dtype), str(t.device))
               for n, t in [*model.named_parameters(), *model.named_buffers()]]
    return json.dumps([type(model).__qualname__, tensors, cfg], sort_keys=True, default=str)


class StackedMembers:
    """K same-architecture HF sequence classifiers scored by one vmapped call.

    After construction each member's parameters and buffers are views into the
    stacked (K, ...) tensors: memory stays at one copy, and in-place updates of a
    member (``load_state_dict``) are seen here. :meth:`is_current` tells whether that
    tie still holds (it breaks if a member is moved or re-materialized).
    """

    def __init__(self, models: Sequence[torch.nn.Module]):
        from torch.func import stack_module_state

        if len(models) < 2:
            raise ValueError("stacking needs at least two members")
        sigs = {architecture_signature(m) for m in models}
        if len(sigs) != 1 or None in sigs:
            raise ValueError("members differ in architecture; they cannot be stacked")
        self.models = list(models)
        with torch.no_grad():
            params, buffers = stack_module_state(self.models)
        self.params = {k: v.detach() for k, v in params.items()}  # each (K, ...)
        self.buffers = {k: v.detach() for k, v in buffers.items()}
        # A parameter-free skeleton of one member: functional_call supplies the tensors.
        self.skeleton = copy.deepcopy(self.models[0]).to("meta")
        self._tie()

    def _tie(self) -> None:
        with torch.no_grad():
            for i, m in enumerate(self.models):
                for name, p in m.named_parameters():
                    p.data = self.params[name][i]
                for name, _ in m.named_buffers():
                    owner, _, leaf = name.rpartition(".")
                    m.get_submodule(owner)._buffers[leaf] = self.buffers[name][i]

    def is_current(self) -> bool:
        """True while every member's tensors are still the views made at stacking."""
        for i, m in enumerate(self.models):
            for name, p in m.named_parameters():
                if p.data_ptr() != self.params[name][i].data_ptr() or p.device != self.params[name].device:
                    return False
        return True

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(K, b) scores of ids (b, t) under every member."""
        from torch.func import functional_call, vmap

        def one(params, buffers):
            out = functional_call(self.skeleton, (params, buffers), (),
                                  {"input_ids": input_ids, "attention_mask": attention_mask})
            return out.logits[:, 0]  # (b,)

        with warnings.catch_warnings():
            # CPU attention has no batching rule; vmap falls back to a loop there (why auto loops on CPU).
            warnings.filterwarnings("ignore", message=".*batching rule.*")
            return vmap(one, in_dims=(0, 0))(self.params, self.buffers)


# ---------------------------------------------------------------- scoring units
class _Unit:
    """Some members of a group (``rows``, positions in the group) scored together."""

    rows: list[int]
    device: torch.device

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:  # (k, b)
        raise NotImplementedError


class _ModelUnit(_Unit):
    def __init__(self, row: int, model: torch.nn.Module):
        self.rows, self.model, self.device = [row], model, model_device(model)

    def __call__(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0][None]  # (1, b)


class _StackedUnit(_Unit):
    def __init__(self, rows: list[int], stacked: StackedMembers):
        self.rows, self.stacked = rows, stacked
        self.device = model_device(stacked.models[0])

    def __call__(self, input_ids, attention_mask):
        return self.stacked(input_ids, attention_mask)


class _SharedUnit(_Unit):
    def __init__(self, rows: list[int], parent: torch.nn.Module, keys: list):
        self.rows, self.parent, self.keys = rows, parent, keys
        self.device = model_device(parent)

    def __call__(self, input_ids, attention_mask):
        return self.parent.score_views(input_ids, attention_mask, self.keys)


class _ConcatUnit(_Unit):
    """Several units on one device run back to back: one CUDA graph captures them all."""

    def __init__(self, units: Sequence[_Unit]):
        self.units = list(units)
        self.rows = [r for u in self.units for r in u.rows]
        self.device = self.units[0].device

    def __call__(self, input_ids, attention_mask):
        return torch.cat([u(input_ids, attention_mask) for u in self.units])  # (k, b)


class _GraphedUnit(_Unit):
    """A unit replayed from CUDA graphs captured once per static (rows, length) shape."""

    def __init__(self, unit: _Unit):
        self.unit, self.rows, self.device = unit, unit.rows, unit.device
        self.graphs: dict[tuple[int, int], tuple] = {}
        self.failed = False

    def __call__(self, input_ids, attention_mask):
        if self.failed:
            return self.unit(input_ids, attention_mask)
        shape = tuple(input_ids.shape)
        if shape not in self.graphs:
            try:
                self.graphs[shape] = self._capture(input_ids, attention_mask)
            except Exception as e:  # capture is best effort; eager is always correct
                log.warning("CUDA graph capture failed (%s: %s); scoring this unit eagerly", type(e).__name__, e)
                self.failed = True
                return self.unit(input_ids, attention_mask)
        graph, static_ids, static_mask, static_out = self.graphs[shape]
        static_ids.copy_(input_ids)
        static_mask.copy_(attention_mask)
        graph.replay()
        return static_out.clone()

    def _capture(self, input_ids, attention_mask):
        static_ids, static_mask = input_ids.clone(), attention_mask.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm-up outside the graph (allocator, lazy init)
                self.unit(static_ids, static_mask)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.unit(static_ids, static_mask)
        return graph, static_ids, static_mask, static_out


# ---------------------------------------------------------------- padding
def round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


# ---------------------------------------------------------------- the scorer
class GroupScorer:
    """Scores the members of one tokenizer group on shared, length-bucketed batches.

    ``scoring``: "auto" (loop on CPU, vmap on CUDA), "loop" or "vmap". ``cuda_graphs``
    captures CUDA graphs over static length buckets (CUDA only); ``static_shapes`` pads
    every bucket to (batch_size, a multiple of ``graph_length_multiple``) even without
    graphs, so the padding can be checked on CPU. Plans (units, stacked parameters,
    graphs) are cached per tuple of member modules and rebuilt when a member is moved or
    replaced; call :meth:`clear` after changing members in other ways."""

    def __init__(self, scoring: Scoring = "auto", *, cuda_graphs: bool = False, static_shapes: bool = False,
                 graph_length_multiple: int = 32):
        if scoring not in SCORING:
            raise ValueError(f"scoring must be one of {SCORING}; got {scoring!r}")
        if graph_length_multiple < 1:
            raise ValueError(f"graph_length_multiple must be >= 1; got {graph_length_multiple}")
        self.scoring = scoring
        self.cuda_graphs = cuda_graphs
        self.static_shapes = static_shapes
        self.graph_length_multiple = graph_length_multiple
        self._plans: dict[tuple, list[_Unit]] = {}

    def clear(self) -> None:
        self._plans.clear()

    def plan(self, models: Sequence[torch.nn.Module]) -> list[_Unit]:
        """The scoring units for ``models`` (cached)."""
        key = tuple(id(m) for m in models) + (tuple(str(model_device(m)) for m in models),)
        units = self._plans.get(key)
        if units is not None and all(u.stacked.is_current() for u in _stacked_units(units)):
            return units
        if len(self._plans) >= _MAX_PLANS:  # plans keep their models alive: bound them
            self._plans.pop(next(iter(self._plans)))
        units = build_units(models, self.scoring)
        if self.cuda_graphs:  # one graph per CUDA device replays every unit on it
            by_device: dict[torch.device, list[_Unit]] = {}
            for u in units:
                by_device.setdefault(u.device, []).append(u)
            units = [_GraphedUnit(_ConcatUnit(us)) if d.type == "cuda" else u
                     for d, us in by_device.items() for u in (us[:1] if d.type == "cuda" else us)]
        self._plans[key] = units
        return units

    @torch.inference_mode()
    def score(self, models: Sequence[torch.nn.Module], ids: Sequence[Sequence[int]], pad_id: int,
              batch_size: int = 64) -> np.ndarray:
        """(k, b) float64 scores of every id sequence under every model, input order."""
        if len(ids) == 0:
            return np.zeros((len(models), 0), dtype=np.float64)
        if any(len(x) == 0 for x in ids):
            raise ValueError("cannot score an empty token sequence")
        units = self.plan(models)
        order = [r for u in units for r in u.rows]  # rows of the concatenated unit outputs
        static = self.static_shapes or any(isinstance(u, _GraphedUnit) for u in units)
        out = np.empty((len(models), len(ids)), dtype=np.float64)
        for batch in length_buckets([len(x) for x in ids], batch_size):
            seqs = [ids[i] for i in batch]
            if static:
                t = round_up(max(len(x) for x in seqs), self.graph_length_multiple)
                input_ids, mask = pad_right(seqs, pad_id, length=t, rows=batch_size)
            else:
                input_ids, mask = pad_right(seqs, pad_id)
            on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
            parts = []
            for u in units:
                if u.device not in on_device:
                    on_device[u.device] = (input_ids.to(u.device, non_blocking=True), mask.to(u.device, non_blocking=True))
                parts.append(u(*on_device[u.device])[:, : len(batch)].float().cpu())
            out[np.ix_(order, batch)] = torch.cat(parts).numpy()  # (k, len(batch))
        return out


def _stacked_units(units):
    for u in units:
        inner = u.unit if isinstance(u, _GraphedUnit) else u
        for v in inner.units if isinstance(inner, _ConcatUnit) else [inner]:
            if isinstance(v, _StackedUnit):
                yield v


def build_units(models: Sequence[torch.nn.Module], scoring: Scoring) -> list[_Unit]:
    """Partition members into scoring units for the path ``scoring`` resolves to.

    Shared-backbone views are grouped by parent (one unit per parent) when the path
    is ``vmap``, and under ``auto`` on CPU too when the parent says a single pass is
    never slower there (``one_pass_on_cpu``: multi-head yes, LoRA no). Under ``vmap``
    plain HF members are grouped by :func:`architecture_signature` and every group of
    two or more is stacked.
    """
    units: list[_Unit] = []
    pending: dict[tuple, list[int]] = {}  # grouping key -> rows, in first-seen order
    for row, m in enumerate(models):
        mode = resolve_scoring(scoring, model_device(m))
        if isinstance(m, SharedView) and (mode == "vmap" or getattr(m.parent, "one_pass_on_cpu", False)) \
                and scoring != "loop":
            pending.setdefault(("shared", id(m.parent)), []).append(row)
        elif mode == "loop" or isinstance(m, SharedView):
            pending.setdefault(("row", row), []).append(row)
        else:
            sig = architecture_signature(m)
            pending.setdefault(("row", row) if sig is None else ("stack", sig), []).append(row)
    for key, rows in pending.items():
        if key[0] == "shared":
            parent = models[rows[0]].parent
            units.append(_SharedUnit(rows, parent, [models[r].key for r in rows]))
        elif key[0] == "stack" and len(rows) > 1:
            units.append(_StackedUnit(rows, StackedMembers([models[r] for r in rows])))
        else:
            units.extend(_ModelUnit(r, models[r]) for r in rows)
    return units


def score_members(models: Sequence[torch.nn.Module], ids: Sequence[Sequence[int]], pad_id: int,
                  batch_size: int = 64, scoring: Scoring = "auto") -> np.ndarray:
    """One-off (k, b) scores of ``ids`` under ``models`` (no plan cache kept)."""
    return GroupScorer(scoring).score(models, ids, pad_id, batch_size)

