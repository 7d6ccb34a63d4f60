"""Weight averaging of reward models (WARM, Ramé et al. 2024, arXiv 2401.12187).

Shape notation: ``m`` models; each is a state dict ``{name: tensor}`` with the same
names and shapes.

    theta_WARM = (1/m) sum_i theta_i        for every floating-point tensor

Averaging weights is only meaningful for models fine-tuned from one shared
initialization (the same pretrained backbone *and* the same head initialization, as
in WARM's linear-probe-then-fine-tune recipe): they stay in one linearly connected
basin, and the average's prediction approximates the prediction ensemble at the cost
of one model. Checking that the models qualify is the caller's job (see
:mod:`rewardherd.training.warm`); this module only checks that the dicts line up.

Departures: uniform weights only (WARM's default); integer and boolean buffers are
not averaged, they must be equal in every model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


def average_weights(state_dicts: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Uniform average of state dicts with the same tensor names, shapes and dtypes.

    Floating-point tensors are summed in float64 and cast back, so the average of
    identical models is bit-for-bit the model; other tensors (integer buffers such as
    position ids) must be equal across models and are copied. Returns a new dict on the
    first model's devices. A mismatch is a ValueError naming the model and the tensor."""
    if len(state_dicts) == 0:
        raise ValueError("need at least one state dict to average")
    ref = state_dicts[0]
    for i, sd in enumerate(state_dicts[1:], 1):
        missing, extra = sorted(set(ref) - set(sd)), sorted(set(sd) - set(ref))
        if missing or extra:
            raise ValueError(f"model {i} has different parameter names than model 0: "
                             f"missing {missing[:5]}, extra {extra[:5]}")
        for name, t in ref.items():
            u = sd[name]
            if tuple(u.shape) != tuple(t.shape):
                raise ValueError(f"model {i}: parameter {name!r} has shape {tuple(u.shape)}, "
                                 f"model 0 has {tuple(t.shape)}")
            if u.dtype != t.dtype:
                raise ValueError(f"model {i}: parameter {name!r} has dtype {u.dtype}, model 0 has {t.dtype}")
    m = len(state_dicts)
    out = {}
    for name, t in ref.items():
        if t.is_floating_point():
            acc = torch.zeros(t.shape, dtype=torch.float64, device=t.device)
            for sd in state_dicts:
                acc += sd[name].detach().to(device=t.device, dtype=torch.float64)
            out[name] = (acc / m).to(t.dtype)
        else:
            for i, sd in enumerate(state_dicts[1:], 1):
                if not torch.equal(sd[name].to(t.device), t):
                    raise ValueError(f"model {i}: non-float buffer {name!r} differs from model 0's; "
                                     "it cannot be averaged")
            out[name] = t.detach().clone()
    return out
