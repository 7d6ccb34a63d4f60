"""Train K same-architecture reward members in one loop: an ensemble for about the
price of one model's setup.

The K members (fine-tune seeds on one backbone, pretrain seeds on same-shape
backbones, or LoRA adapters) step together: one tokenization, one schedule, one
optimizer over every member's parameters, and on CUDA one vmapped forward and
backward over the stacked parameters (:func:`torch.func.functional_call` under
:func:`torch.func.vmap`, eager attention). On CPU a plain loop over the members is
faster than vmap (measured: benchmarks/batched_training.py), so ``auto`` loops there,
as the scorer does (:func:`rewardherd.models.vectorized.resolve_scoring`).

Each member keeps its own seed: its head initialization (``torch.manual_seed`` before
the backbone loads, as in the TRL path), its data order (a
``numpy.random.default_rng(seed)`` permutation per epoch), its resample
(``TrainConfig.bootstrap`` or ``subsample``) and its LoRA initialization. Dropout: in the loop each
member draws from its own torch RNG stream seeded by its fine-tune seed; under vmap the
members draw different masks from one stream (the first member's), so a member with
dropout trained by vmap is not the one trained alone. The built-in world's backbones
have no dropout.

The loss is TRL RewardTrainer's (:func:`rewardherd.core.bradley_terry_loss`: the
Bradley-Terry loss with the per-pair margin and the centring term), AdamW with
weight decay on the parameters the HF Trainer decays, the same schedule and warm-up,
and each member's gradient clipped to norm 1 on its own (TRL's ``max_grad_norm``).
A member trained here is the same function of its seed whether it is trained alone
or beside others (the loop path: bit for bit; vmap: to float rounding), but not the
same member as TRL trains from that seed: TRL draws its data order from torch's
global RNG through the HF Trainer's sampler. Members come out as standard HF
directories, exactly like :func:`rewardherd.training.member.train_member`'s.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rewardherd import core
from rewardherd.models.ensemble import tokenizer_fingerprint
from rewardherd.models.scoring import pad_right
from rewardherd.models.vectorized import architecture_signature, resolve_scoring
from rewardherd.training.config import TrainConfig

log = logging.getLogger(__name__)

#: Each member's gradient is clipped to this norm (TRL's and the HF Trainer's max_grad_norm).
MAX_GRAD_NORM = 1.0


def schedule(optimizer: torch.optim.Optimizer, config: TrainConfig, total: int):
    """``config``'s learning-rate schedule over ``total`` steps, warm-up ``ceil(warmup_ratio * total)``
    steps (the HF Trainer's reading of a ratio); shared with the multi-head loop."""
    from transformers import get_scheduler

    return get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=math.ceil(config.warmup_ratio * total),
                         num_training_steps=total)


#: Whether :func:`adamw` uses torch's fused kernel where it has one (benchmarks/batched_training.py
#: turns it off to time the difference).
FUSED_ADAMW = True


def adamw(groups: list, lr: float) -> torch.optim.AdamW:
    """AdamW over parameter groups (dicts with ``params`` and ``weight_decay``), with torch's fused
    kernel when every parameter is a float tensor on CPU or CUDA. It computes the same update as the
    per-parameter loop to float rounding and is several times faster a step on small models, whose
    step is launch overhead (docs/performance.md)."""
    params = [p for g in groups for p in g["params"]]
    fused = FUSED_ADAMW and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.AdamW(groups, lr=lr, fused=True if fused else None)


def total_steps(n_pairs: int, config: TrainConfig) -> int:
    """Optimizer steps for ``config.epochs`` passes over ``n_pairs`` pairs (the last batch of an epoch may be short)."""
    return max(1, math.ceil(config.epochs * math.ceil(n_pairs / config.batch_size)))


def decay_mask(model: torch.nn.Module) -> dict[str, bool]:
    """Per parameter name: whether AdamW decays it (the HF Trainer's rule: not biases, not norm layers)."""
    from transformers.trainer_pt_utils import get_parameter_names

    decay = set(get_parameter_names(model, [torch.nn.LayerNorm], ["bias", "layernorm", "rmsnorm"]))
    return {n: n in decay for n, _ in model.named_parameters()}


class MemberOrder:
    """One member's stream of training batches: its resample of the pairs (all of them, or
    pair i ``counts[i]`` times: its bootstrap or subsample), reshuffled every epoch by ``numpy.random.default_rng(seed)``, and the pairs whose
    labels this member sees swapped (``flipped``: its own label noise,
    ``TrainConfig.member_label_noise``; None: none)."""

    def __init__(self, n: int, seed: int, counts: np.ndarray | None = None, flipped: set[int] | None = None):
        self.pool = np.arange(n) if counts is None else np.repeat(np.arange(n), counts)
        self.rng = np.random.default_rng(seed)
        self.left = np.empty(0, dtype=np.int64)
        self.flipped = np.zeros(n, dtype=bool)
        self.flipped[sorted(flipped or ())] = True

    def pairs(self, idx: np.ndarray, c_ids, r_ids) -> list:
        """The (2b,) sequences of batch ``idx``: what this member sees as chosen, then as rejected."""
        sw = self.flipped[idx]
        return ([r_ids[i] if s else c_ids[i] for i, s in zip(idx, sw, strict=True)]
                + [c_ids[i] if s else r_ids[i] for i, s in zip(idx, sw, strict=True)])

    def next(self, batch_size: int) -> np.ndarray:
        if len(self.left) == 0:
            self.left = self.pool[self.rng.permutation(len(self.pool))]
        out, self.left = self.left[:batch_size], self.left[batch_size:]
        return out

    @property
    def n_distinct(self) -> int:
        return len(np.unique(self.pool))


def _member_loss(scores: torch.Tensor, margin: torch.Tensor | None, config: TrainConfig) -> torch.Tensor:
    """TRL's reward loss on one member's (2b,) scores: chosen first, then rejected."""
    b = scores.shape[0] // 2
    return core.bradley_terry_loss(scores[:b], scores[b:], margin=margin, center_coef=config.center_coef)


class RngStreams:
    """One torch RNG stream per member (its dropout), swapped in around the member's forward and
    backward, so a member draws the same masks whether it trains alone or beside others."""

    def __init__(self, seeds: Sequence[int], device: torch.device):
        self.devices = [device] if device.type == "cuda" else []
        self.states = []
        for s in seeds:
            with torch.random.fork_rng(devices=self.devices):
                torch.manual_seed(int(s))
                self.states.append(self._capture())

    def _capture(self):
        return (torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in self.devices])

    @contextlib.contextmanager
    def member(self, k: int):
        with torch.random.fork_rng(devices=self.devices):
            cpu, cuda = self.states[k]
            torch.set_rng_state(cpu)
            for d, st in zip(self.devices, cuda, strict=True):
                torch.cuda.set_rng_state(st, d)
            yield
            self.states[k] = self._capture()


class _LoopStepper:
    """One forward and backward per member (each on its own RNG stream), one AdamW step over all of them."""

    def __init__(self, models: Sequence[torch.nn.Module], config: TrainConfig, streams: RngStreams):
        self.models, self.streams = list(models), streams
        groups: dict[bool, list] = {True: [], False: []}
        for m in self.models:
            mask = decay_mask(m)
            for n, p in m.named_parameters():
                if p.requires_grad:
                    groups[mask[n]].append(p)
        self.optimizer = adamw(
            [{"params": groups[True], "weight_decay": config.weight_decay}, {"params": groups[False], "weight_decay": 0.0}],
            lr=config.lr)

    def __call__(self, batches: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]],
                 config: TrainConfig) -> list[float]:
        self.optimizer.zero_grad(set_to_none=True)
        losses = []
        for k, (m, (ids, mask, margin)) in enumerate(zip(self.models, batches, strict=True)):
            with self.streams.member(k):
                loss = _member_loss(m(input_ids=ids, attention_mask=mask).logits[:, 0], margin, config)
                loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in m.parameters() if p.requires_grad], MAX_GRAD_NORM)
            losses.append(float(loss.detach()))
        self.optimizer.step()
        return losses

    def finish(self) -> None:
        pass


class _VmapStepper:
    """The members' parameters stacked (K, ...) and one vmapped forward and backward per step.
    Dropout (if the architecture has any) draws different masks per member from one stream,
    the first member's."""

    def __init__(self, models: Sequence[torch.nn.Module], config: TrainConfig, streams: RngStreams):
        self.streams = streams
        from torch.func import stack_module_state

        self.models = list(models)
        params, buffers = stack_module_state(self.models)
        self.trainable = {n for n, p in self.models[0].named_parameters() if p.requires_grad}
        self.params = {n: p.detach().requires_grad_(n in self.trainable) for n, p in params.items()}
        self.buffers = {n: b.detach() for n, b in buffers.items()}
        self.skeleton = copy.deepcopy(self.models[0]).to("meta")
        self.skeleton.config._attn_implementation = "eager"  # SDPA's mask logic cannot run under vmap
        mask = decay_mask(self.models[0])
        self.optimizer = adamw(
            [{"params": [p for n, p in self.params.items() if n in self.trainable and mask[n]],
              "weight_decay": config.weight_decay},
             {"params": [p for n, p in self.params.items() if n in self.trainable and not mask[n]],
              "weight_decay": 0.0}], lr=config.lr)

    def __call__(self, batches, config: TrainConfig) -> list[float]:
        from torch.func import functional_call, vmap

        t = max(ids.shape[1] for ids, _, _ in batches)  # one padded length for every member's batch
        pad_id = self.models[0].config.pad_token_id
        ids = torch.stack([torch.nn.functional.pad(i, (0, t - i.shape[1]), value=pad_id) for i, _, _ in batches])
        mask = torch.stack([torch.nn.functional.pad(a, (0, t - a.shape[1])) for _, a, _ in batches])
        margin = None if batches[0][2] is None else torch.stack([m for _, _, m in batches])

        def one(params, buffers, i, a, mg):
            scores = functional_call(self.skeleton, (params, buffers), (), {"input_ids": i, "attention_mask": a})
            return _member_loss(scores.logits[:, 0], mg, config)

        self.optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings(), self.streams.member(0):
            warnings.filterwarnings("ignore", message=".*batching rule.*")
            losses = vmap(one, in_dims=(0, 0, 0, 0, None if margin is None else 0), randomness="different")(
                self.params, self.buffers, ids, mask, margin)
            losses.sum().backward()
        grads = [p.grad for n, p in self.params.items() if n in self.trainable and p.grad is not None]
        norms = torch.sqrt(sum(g.pow(2).flatten(1).sum(1) for g in grads))  # (K,) each member's norm
        scale = (MAX_GRAD_NORM / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))
        self.optimizer.step()
        return losses.detach().tolist()

    def finish(self) -> None:
        """Copy the trained stacked parameters back into each member model."""
        with torch.no_grad():
            for k, m in enumerate(self.models):
                for n, p in m.named_parameters():
                    p.copy_(self.params[n][k])


def check_batchable(models: Sequence[torch.nn.Module], tokenizers: Sequence, names: Sequence[str]) -> None:
    """Raise ValueError naming the first member whose architecture or tokenizer differs from the first member's."""
    sig0, tok0 = architecture_signature(models[0]), tokenizer_fingerprint(tokenizers[0])
    for m, t, name in zip(models[1:], tokenizers[1:], names[1:], strict=True):
        if architecture_signature(m) != sig0:
            raise ValueError(f"member {name}: its architecture differs from member {names[0]}'s; members trained "
                             "together must share one shape (train them one at a time: batched=False)")
        if tokenizer_fingerprint(t) != tok0:
            raise ValueError(f"member {name}: its tokenizer differs from member {names[0]}'s; members trained "
                             "together must share one tokenizer (train them one at a time: batched=False)")


def backbones_batchable(backbones: Sequence) -> bool:
    """Whether ``backbones`` share one architecture and tokenizer, from their config and
    tokenizer files only (no weights are read); members that do not train one at a time."""
    from transformers import AutoConfig

    from rewardherd.models.multihead import quiet_transformers

    def signature(backbone: str) -> str:
        with quiet_transformers():
            cfg = AutoConfig.from_pretrained(backbone).to_dict()
        path = Path(backbone)
        tok = (sorted((p.name, p.read_bytes()) for p in path.iterdir()
                      if "token" in p.name or p.name in ("vocab.json", "merges.txt")) if path.is_dir() else backbone)
        return repr(({k: v for k, v in cfg.items() if k not in ("_name_or_path", "transformers_version")}, tok))

    same = len({signature(str(b)) for b in dict.fromkeys(backbones)}) == 1
    if not same:
        log.info("the members' backbones differ in architecture or tokenizer; training them one at a time")
    return same


def run_steps(models, orders: Sequence[MemberOrder], c_ids, r_ids, margins: torch.Tensor | None, pad: int,
              config: TrainConfig, device: torch.device, *, seeds: Sequence[int], stepping: str = "auto",
              progress: bool = False) -> list[list[float]]:
    """Train ``models`` in place for :func:`total_steps` steps, member k on ``orders[k]``'s batches
    of the pairs (``c_ids``/``r_ids``: token ids per pair; ``margins``: (n,) or None); returns each
    member's loss per step. ``seeds[k]`` seeds member k's dropout stream. ``stepping``: auto (loop
    on CPU, vmap on CUDA), loop or vmap."""
    from tqdm.auto import tqdm

    mode = resolve_scoring(stepping, device)
    for m in models:
        m.to(device).train()
    streams = RngStreams(seeds, device)
    stepper = (_VmapStepper if mode == "vmap" and len(models) > 1 else _LoopStepper)(models, config, streams)
    total = total_steps(len(c_ids), config)
    sched = schedule(stepper.optimizer, config, total)
    losses: list[list[float]] = [[] for _ in models]
    for _ in tqdm(range(total), desc="members", unit="step", disable=not progress):
        batches = []
        for order in orders:
            idx = order.next(config.batch_size)
            ids, mask = pad_right(order.pairs(idx, c_ids, r_ids), pad)
            batches.append((ids.to(device), mask.to(device),
                            None if margins is None else margins[torch.from_numpy(idx)].to(device)))
        for k, loss in enumerate(stepper(batches, config)):
            losses[k].append(loss)
        sched.step()
    stepper.finish()
    return losses
