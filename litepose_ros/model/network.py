"""The LitePose network in PyTorch, with the reference module names and tensor shapes.

Its ``state_dict`` keys and shapes equal those of the reference class (so released and reference-trained
weights load strictly), and ``forward`` returns the reference outputs in the reference order:

1. stride 4: ``(N, 2K, H/4, W/4)``, K heatmaps followed by K associative-embedding tag maps;
2. stride 2: ``(N, K, H/2, W/2)``, K heatmaps.

This module imports torch; it is the training / export side of the project.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from litepose_ros.model.architecture import (
    DECONV_KERNEL,
    HEAD_KERNEL,
    INPUT_MULTIPLE,
    STEM_WIDTH,
    ArchitectureSpec,
    expanded_channels,
    resolve_architecture,
)


def _conv_bn_relu6(
    in_channels: int, out_channels: int, kernel: int, stride: int, groups: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(inplace=True),
    )


class InvertedBottleneck(nn.Module):
    """MobileNetV2-style block: 1x1 expand (``inv``), k x k depthwise (``depth_conv``), 1x1 project."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: float, kernel: int):
        super().__init__()
        hidden = expanded_channels(in_channels, expansion)
        self.inv = _conv_bn_relu6(in_channels, hidden, 1, 1)
        self.depth_conv = _conv_bn_relu6(hidden, hidden, kernel, stride, groups=hidden)
        self.point_conv = nn.Sequential(
            nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False), nn.BatchNorm2d(out_channels)
        )
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.point_conv(self.depth_conv(self.inv(x)))
        return x + y if self.use_residual else y


class SeparableOutput(nn.Module):
    """Output layer of the head: depthwise 5x5, BN, ReLU, 1x1 to the output channels (``conv.0..3``)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(
                in_channels, in_channels, HEAD_KERNEL, 1, HEAD_KERNEL // 2, groups=in_channels, bias=False
            ),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _deconv(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    # 4x4, stride 2, padding 1: exactly doubles height and width.
    return nn.ConvTranspose2d(in_channels, out_channels, DECONV_KERNEL, 2, 1, bias=False)


class LitePoseNet(nn.Module):
    """LitePose: single-branch MobileNetV2-like backbone with large kernels + fusion deconv head."""

    def __init__(self, spec: ArchitectureSpec, num_joints: int):
        super().__init__()
        if not isinstance(spec, ArchitectureSpec):
            raise TypeError(
                f"spec must be an ArchitectureSpec (see build_model for names/files), got "
                f"{type(spec).__name__}"
            )
        if isinstance(num_joints, bool) or not isinstance(num_joints, int) or num_joints <= 0:
            raise ValueError(
                f"num_joints must be a positive integer (17 for COCO, 14 for CrowdPose), got {num_joints!r}"
            )
        self.spec = spec
        self.num_joints = num_joints
        stem_out = spec.input_channel

        self.first = nn.Sequential(
            _conv_bn_relu6(3, STEM_WIDTH, 3, 2),
            _conv_bn_relu6(STEM_WIDTH, STEM_WIDTH, 3, 1, groups=STEM_WIDTH),
            nn.Conv2d(STEM_WIDTH, stem_out, 1, 1, 0, bias=False),
            nn.BatchNorm2d(stem_out),
        )

        stages = []
        in_channels = stem_out
        for stage in spec.backbone_setting:
            blocks = []
            for index, (expansion, kernel) in enumerate(stage.block_setting):
                stride = stage.stride if index == 0 else 1
                blocks.append(InvertedBottleneck(in_channels, stage.channel, stride, expansion, kernel))
                in_channels = stage.channel
            stages.append(nn.Sequential(*blocks))
        self.stage = nn.ModuleList(stages)

        # Backbone feature channels [stem, s0, s1, s2, s3]; the head fuses them from the deepest up.
        feature_channels = [stem_out, *spec.stage_channels]
        widths = spec.deconv_setting
        refined_in = [feature_channels[-1], widths[0], widths[1]]
        raw_in = [feature_channels[-2], feature_channels[-3], feature_channels[-4]]
        self.deconv_refined = nn.ModuleList(_deconv(refined_in[i], widths[i]) for i in range(3))
        self.deconv_raw = nn.ModuleList(_deconv(raw_in[i], widths[i]) for i in range(3))
        self.deconv_bnrelu = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(widths[i]), nn.ReLU(inplace=True)) for i in range(3)
        )

        # Outputs after upsampling steps 1 (stride 4: heatmaps + tags) and 2 (stride 2: heatmaps).
        output_channels = [2 * num_joints, num_joints]
        self.final_refined = nn.ModuleList(
            SeparableOutput(widths[1 + j], output_channels[j]) for j in range(2)
        )
        self.final_raw = nn.ModuleList(
            SeparableOutput(feature_channels[1 - j], output_channels[j]) for j in range(2)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: (N, 3, H, W), H and W multiples of 16. Returns (stride-4 maps, stride-2 maps)."""
        features = [self.first(x)]
        for stage in self.stage:
            features.append(stage(features[-1]))
        refined, raw = features[-1], features[-2]
        outputs = []
        for i in range(3):
            refined = self.deconv_bnrelu[i](self.deconv_refined[i](refined) + self.deconv_raw[i](raw))
            raw = features[-i - 3]
            if i >= 1:
                outputs.append(self.final_refined[i - 1](refined) + self.final_raw[i - 1](raw))
        return outputs[0], outputs[1]

    def extra_repr(self) -> str:
        return f"variant={self.spec.released_name() or 'custom'}, num_joints={self.num_joints}"


def build_model(
    variant_or_spec: str | Path | Mapping[str, Any] | ArchitectureSpec = "XS", num_joints: int = 17
) -> LitePoseNet:
    """Build a randomly initialised LitePose network.

    ``variant_or_spec``: a released variant name ("XS", "S", "M", "L"), a path to an architecture
    JSON file, a dict in that format or an :class:`ArchitectureSpec`. ``num_joints``: 17 (COCO) or 14
    (CrowdPose), or any other positive count.
    """
    return LitePoseNet(resolve_architecture(variant_or_spec), num_joints)


def check_input_size(height: int, width: int) -> None:
    """Raise ValueError unless both sides are positive multiples of the backbone's output stride."""
    if height <= 0 or width <= 0 or height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
        raise ValueError(
            f"input height and width must be positive multiples of {INPUT_MULTIPLE} "
            f"(the pipeline pads to multiples of 64), got {height}x{width}"
        )
