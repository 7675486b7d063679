"""BatchNorm folding gives the same outputs as the unfolded network."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from litepose_ros.model.folding import fold_batch_norm
from litepose_ros.model.network import build_model

pytestmark = pytest.mark.torch


def randomise_batch_norm(model: nn.Module, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.running_mean.copy_(torch.rand(c, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(c, generator=generator) * 0.6 - 0.3)


def test_folded_outputs_equal_unfolded():
    torch.manual_seed(0)
    model = build_model("XS", 17)
    randomise_batch_norm(model)
    model.eval()
    folded = fold_batch_norm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "the original must stay unfolded"
    x = torch.randn(2, 3, 128, 192)
    with torch.inference_mode():
        reference = model(x)
        ours = folded(x)
    for a, b in zip(reference, ours, strict=True):
        assert a.shape == b.shape
        assert a.abs().max() > 1e-3  # the comparison is not between near-zero maps
        assert torch.allclose(a, b, atol=1e-5, rtol=0)


def test_folding_a_non_litepose_module_is_rejected():
    with pytest.raises(TypeError, match="LitePoseNet"):
        fold_batch_norm(nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)))
