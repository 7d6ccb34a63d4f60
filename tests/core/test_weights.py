"""rewardherd.core.weights.average_weights: uniform weight averaging (WARM)."""

import pytest
import torch

from rewardherd.core import average_weights


def _sd(w, b, steps=(0, 1, 2)):
    return {"w": torch.tensor(w, dtype=torch.float32), "b": torch.tensor(b, dtype=torch.float32),
            "pos": torch.tensor(steps, dtype=torch.long)}


def test_average_hand():
    # w: mean of [1, 2] and [3, 6] is [2, 4]; b: mean of 0.5, 1.5, 4 is 2
    out = average_weights([_sd([1.0, 2.0], 0.5), _sd([3.0, 6.0], 1.5), _sd([2.0, 4.0], 4.0)])
    torch.testing.assert_close(out["w"], torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(out["b"], torch.tensor(2.0))
    assert out["w"].dtype == torch.float32
    assert torch.equal(out["pos"], torch.tensor([0, 1, 2]))  # integer buffers are copied, not averaged


def test_average_of_identical_models_is_bit_exact():
    g = torch.Generator().manual_seed(0)
    sd = {"w": torch.randn(7, 5, generator=g), "h": torch.randn(3, generator=g).to(torch.bfloat16)}
    for m in (1, 2, 3, 5):
        out = average_weights([sd] * m)
        assert all(torch.equal(out[k], sd[k]) for k in sd), m


def test_inputs_are_not_modified_and_outputs_are_new():
    a, b = _sd([1.0, 2.0], 0.0), _sd([3.0, 4.0], 1.0)
    a0 = {k: v.clone() for k, v in a.items()}
    out = average_weights([a, b])
    out["w"] += 100
    assert all(torch.equal(a[k], a0[k]) for k in a)


@pytest.mark.parametrize("other, match", [
    ({"w": torch.zeros(2), "b": torch.zeros(()), "extra": torch.zeros(1)}, "names"),
    ({"w": torch.zeros(3), "b": torch.zeros(()), "pos": torch.arange(3)}, "shape"),
    ({"w": torch.zeros(2, dtype=torch.float64), "b": torch.zeros(()), "pos": torch.arange(3)}, "dtype"),
    ({"w": torch.zeros(2), "b": torch.zeros(()), "pos": torch.tensor([0, 1, 3])}, "non-float buffer"),
])
def test_mismatched_models_are_refused(other, match):
    with pytest.raises(ValueError, match=match) as e:
        average_weights([_sd([1.0, 2.0], 0.0), other])
    assert "model 1" in str(e.value)


def test_no_models_is_an_error():
    with pytest.raises(ValueError):
        average_weights([])
