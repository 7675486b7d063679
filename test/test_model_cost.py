"""MACs / params counter vs the LITEPOSE.md table and vs an independent count on the torch model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from litepose_ros.model.cost import count_cost
from litepose_ros.model.network import build_model

# LITEPOSE.md section 2 (CrowdPose, 14 joints): params (M), true GMACs, published GMACs.
TABLE = {"XS": (1.68, 0.88, 1.2), "S": (2.73, 3.61, 5.0), "M": (3.53, 5.26, 7.8), "L": (5.74, 9.96, 13.7)}


@pytest.mark.parametrize("variant", sorted(TABLE))
def test_table_reproduced(variant):
    params_m, true_g, published_g = TABLE[variant]
    cost = count_cost(variant, 14)
    assert abs(cost.paper_gmacs - published_g) / published_g < 0.02
    assert cost.true_gmacs == pytest.approx(true_g, abs=0.006)
    assert cost.mparams == pytest.approx(params_m, abs=0.006)


def test_cost_scales_with_input_and_defaults_to_img_size():
    base = count_cost("S", 17)
    assert (base.height, base.width) == (448, 448)
    small = count_cost("S", 17, 224, 224)
    assert small.true_macs * 4 == base.true_macs
    assert small.paper_macs * 4 == base.paper_macs
    assert small.params == base.params
    with pytest.raises(ValueError, match="multiples of 16"):
        count_cost("XS", 17, 100, 128)


def hooked_conv_macs(model: nn.Module, height: int, width: int) -> int:
    """Count convolution MACs by observing real tensor shapes during a forward pass."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        if isinstance(module, nn.ConvTranspose2d):
            # Each input pixel scatters a (Cout x kh x kw) patch per input channel.
            total += inputs[0][0].numel() * module.out_channels * kh * kw
        else:
            total += output[0].numel() * (module.in_channels // module.groups) * kh * kw

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    with torch.inference_mode():
        model.eval()(torch.zeros(1, 3, height, width))
    for handle in handles:
        handle.remove()
    return total


@pytest.mark.torch
def test_true_macs_and_params_match_the_torch_model():
    model = build_model("XS", 17)
    cost = count_cost("XS", 17, 128, 192)
    assert cost.true_macs == hooked_conv_macs(model, 128, 192)
    assert cost.params == sum(p.numel() for p in model.parameters())
    layer_names = {layer.name.rsplit(".conv.", 1)[0] for layer in cost.layers}
    assert "deconv_raw.2" in layer_names and "final_raw.1" in layer_names
