"""fused_gelu: GPT-2's gelu_new swapped for transformers' fused GELUTanh, same function."""

import copy

import torch
from transformers.activations import GELUTanh, NewGELUActivation

from rewardherd.models.common import fused_gelu
from rewardherd.models.tiny import build_backbone, build_tokenizer


def _acts(model, cls):
    return [m for m in model.modules() if type(m) is cls]


def test_fused_gelu_swaps_every_gelu_new_and_keeps_outputs_and_weights():
    tok = build_tokenizer()
    model = build_backbone(tok, seed=0).eval()
    assert len(_acts(model, NewGELUActivation)) == 2  # one per block
    fused = fused_gelu(copy.deepcopy(model))
    assert not _acts(fused, NewGELUActivation) and len(_acts(fused, GELUTanh)) == 2
    assert fused.config.activation_function == "gelu_new"  # a saved member keeps the standard config
    assert fused.state_dict().keys() == model.state_dict().keys()
    ids = torch.randint(0, len(tok), (4, 17), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = model(ids).logits, fused(ids).logits
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_fused_gelu_leaves_other_activations_alone():
    x = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.GELU(), torch.nn.Tanh())
    assert [type(m) for m in fused_gelu(x)] == [torch.nn.Linear, torch.nn.GELU, torch.nn.Tanh]
