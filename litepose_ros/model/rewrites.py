"""Export-time graph rewrites: the same network, cheaper to run in ONNX Runtime.

The checkpoint format and :class:`LitePoseNet` are untouched; :func:`rewritten_for_export` builds a
module with the same weights (rearranged) and the same outputs (float rounding apart), which
``export_onnx`` traces instead of the network.

Rewrites (names as ``litepose export --rewrites`` takes them; the first two are on by default):

``fuse-deconv``
    Each step of the fusion head sums two 4x4 stride-2 transposed convolutions of inputs with the
    same size (``deconv_refined[i]`` and ``deconv_raw[i]``); that sum is one transposed convolution
    over the channel-concatenated inputs, with the weights stacked along the input channels and
    the biases added.
``deconv-as-conv``
    A 4x4 stride-2 padding-1 transposed convolution is, per output phase (row parity ``a``,
    column parity ``b``), a 2x2 convolution of the input: output row ``2m`` reads input rows
    ``m - 1`` and ``m`` (kernel rows 3 and 1), row ``2m + 1`` reads rows ``m`` and ``m + 1``
    (kernel rows 2 and 0); the same for columns. All four phases together are one 3x3 convolution
    (padding 1) with ``4 * C_out`` output channels (each phase's unused taps zero), followed by a
    depth-to-space rearrangement (``pixel_shuffle`` / ONNX ``DepthToSpace`` CRD). It costs 2.25x
    the multiply-adds, but runs in ONNX Runtime's blocked (NCHWc) convolution kernels, where the
    transposed convolution does not.
``fuse-outputs``
    Each output sums two separable output layers (``final_refined`` and ``final_raw``) that end in
    1x1 convolutions of same-sized inputs: one 1x1 convolution over the concatenated inputs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from litepose_ros.model.network import LitePoseNet

REWRITES = ("fuse-deconv", "deconv-as-conv", "fuse-outputs")
# On by default: the two that measured faster (docs/benchmarks/model.md). ``fuse-outputs`` measured
# no faster on ONNX Runtime's CPU provider (its Concat costs what the saved convolution gains, and
# it stops ONNX Runtime from fusing the Add into the convolution), so it is there to be chosen.
DEFAULT_REWRITES = ("fuse-deconv", "deconv-as-conv")

# Kernel row (column) of the 4x4 transposed convolution that output phase a reads through tap t
# of the 3x3 convolution (tap t reads input offset t - 1); absent pairs are zero.
_PHASE_TAPS = {(0, 0): 3, (0, 1): 1, (1, 1): 2, (1, 2): 0}


def parse_rewrites(names: str | None) -> tuple[str, ...]:
    """``None`` / ``"default"`` -> DEFAULT_REWRITES, ``"all"`` -> every rewrite, ``"none"`` /
    ``""`` -> none, else a comma-separated list (returned in REWRITES order)."""
    if names is None or names.strip().lower() == "default":
        return DEFAULT_REWRITES
    if names.strip().lower() == "all":
        return REWRITES
    if names.strip().lower() in ("", "none"):
        return ()
    chosen = tuple(name.strip() for name in names.split(",") if name.strip())
    unknown = sorted(set(chosen) - set(REWRITES))
    if unknown:
        raise ValueError(f"unknown rewrite(s) {unknown}; known: {list(REWRITES)} (or default / all / none)")
    return tuple(name for name in REWRITES if name in chosen)


def deconv_as_conv_weight(weight: torch.Tensor) -> torch.Tensor:
    """(C_in, C_out, 4, 4) transposed-convolution weight -> (4 C_out, C_in, 3, 3) convolution
    weight whose output channel ``4 c + 2 a + b`` is output channel ``c`` at phase (a, b)."""
    c_in, c_out = weight.shape[:2]
    conv = weight.new_zeros(c_out, 2, 2, c_in, 3, 3)
    per_out = weight.permute(1, 0, 2, 3)  # (C_out, C_in, 4, 4)
    for (a, ty), ky in _PHASE_TAPS.items():
        for (b, tx), kx in _PHASE_TAPS.items():
            conv[:, a, b, :, ty, tx] = per_out[:, :, ky, kx]
    return conv.reshape(c_out * 4, c_in, 3, 3)


class Upsample2x(nn.Module):
    """A 4x4 stride-2 padding-1 transposed convolution, as itself or as conv + depth-to-space."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, as_conv: bool):
        super().__init__()
        self.as_conv = as_conv
        if as_conv:
            weight = deconv_as_conv_weight(weight)
            bias = None if bias is None else bias.repeat_interleave(4)
        self.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.as_conv:
            return functional.pixel_shuffle(functional.conv2d(x, self.weight, self.bias, padding=1), 2)
        return functional.conv_transpose2d(x, self.weight, self.bias, stride=2, padding=1)


def _deconv_parts(deconv: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor | None]:
    if (
        deconv.kernel_size != (4, 4)
        or deconv.stride != (2, 2)
        or deconv.padding != (1, 1)
        or deconv.groups != 1
        or deconv.output_padding != (0, 0)
        or deconv.dilation != (1, 1)
    ):
        raise ValueError(f"expected a 4x4 stride-2 padding-1 transposed convolution, got {deconv}")
    return deconv.weight, deconv.bias


def _sum_bias(*biases: torch.Tensor | None) -> torch.Tensor | None:
    present = [b for b in biases if b is not None]
    return None if not present else torch.stack(present).sum(0)


class FusedOutput(nn.Module):
    """``final_refined(refined) + final_raw(raw)`` with the two closing 1x1 convolutions as one."""

    def __init__(self, refined: nn.Module, raw: nn.Module):
        super().__init__()
        # SeparableOutput.conv: depthwise, BN (or Identity once folded), ReLU, 1x1.
        self.refined = nn.Sequential(*list(refined.conv)[:-1])
        self.raw = nn.Sequential(*list(raw.conv)[:-1])
        last_refined, last_raw = refined.conv[-1], raw.conv[-1]
        weight = torch.cat([last_refined.weight, last_raw.weight], dim=1)
        self.project = nn.Conv2d(weight.shape[1], weight.shape[0], 1, bias=False)
        self.project.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
        bias = _sum_bias(last_refined.bias, last_raw.bias)
        if bias is not None:
            self.project.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, refined: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([self.refined(refined), self.raw(raw)], dim=1))


class RewrittenLitePose(nn.Module):
    """A LitePoseNet's forward with the chosen rewrites (see the module docstring)."""

    def __init__(self, network: LitePoseNet, rewrites: tuple[str, ...]):
        super().__init__()
        self.rewrites = tuple(rewrites)
        self.spec, self.num_joints = network.spec, network.num_joints
        self.first, self.stage = network.first, network.stage
        self.deconv_bnrelu = network.deconv_bnrelu
        fuse, as_conv = "fuse-deconv" in rewrites, "deconv-as-conv" in rewrites
        self.fused_deconv = fuse
        if fuse:
            self.up = nn.ModuleList()
            for refined, raw in zip(network.deconv_refined, network.deconv_raw, strict=True):
                (w_refined, b_refined), (w_raw, b_raw) = _deconv_parts(refined), _deconv_parts(raw)
                self.up.append(
                    Upsample2x(torch.cat([w_refined, w_raw], dim=0), _sum_bias(b_refined, b_raw), as_conv)
                )
        else:
            self.up_refined = nn.ModuleList(
                Upsample2x(*_deconv_parts(d), as_conv) for d in network.deconv_refined
            )
            self.up_raw = nn.ModuleList(Upsample2x(*_deconv_parts(d), as_conv) for d in network.deconv_raw)
        self.fused_outputs = "fuse-outputs" in rewrites
        if self.fused_outputs:
            self.outputs = nn.ModuleList(
                FusedOutput(r, w) for r, w in zip(network.final_refined, network.final_raw, strict=True)
            )
        else:
            self.final_refined, self.final_raw = network.final_refined, network.final_raw

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = [self.first(x)]
        for stage in self.stage:
            features.append(stage(features[-1]))
        refined, raw = features[-1], features[-2]
        outputs = []
        for i in range(3):
            if self.fused_deconv:
                summed = self.up[i](torch.cat([refined, raw], dim=1))
            else:
                summed = self.up_refined[i](refined) + self.up_raw[i](raw)
            refined = self.deconv_bnrelu[i](summed)
            raw = features[-i - 3]
            if i >= 1:
                if self.fused_outputs:
                    outputs.append(self.outputs[i - 1](refined, raw))
                else:
                    outputs.append(self.final_refined[i - 1](refined) + self.final_raw[i - 1](raw))
        return outputs[0], outputs[1]


def rewritten_for_export(network: LitePoseNet, rewrites: tuple[str, ...] = DEFAULT_REWRITES) -> nn.Module:
    """``network`` itself when ``rewrites`` is empty, else a :class:`RewrittenLitePose` (eval mode,
    sharing the backbone's modules, with its own head weights)."""
    rewrites = parse_rewrites(",".join(rewrites) or "none")
    if not rewrites:
        return network
    return RewrittenLitePose(network, rewrites).eval()
