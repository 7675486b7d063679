"""MACs and parameter counts of a LitePose network, computed from its architecture (no torch needed).

Two MAC conventions are reported side by side:

- ``true``: multiply-accumulates of the convolutions only; a transposed convolution costs
  ``Cin * Cout * k * k`` per *input* pixel (each input pixel scatters one k x k kernel).
- ``paper``: the convention of the ptflops version the LitePose authors used for their table:
  transposed convolutions counted over their *output* pixels (4x the true cost for stride 2), plus
  one op per element of every BatchNorm and every ReLU / ReLU6 output. This reproduces the
  published 1.2 / 5.0 / 7.8 / 13.7 G within about 2 %.

Residual additions and the head's feature sums are not counted in either convention (ptflops does not
see functional additions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litepose_ros.model.architecture import (
    DECONV_KERNEL,
    HEAD_KERNEL,
    INPUT_MULTIPLE,
    STEM_WIDTH,
    ArchitectureSpec,
    expanded_channels,
    resolve_architecture,
)


@dataclass(frozen=True)
class LayerCost:
    """Cost of one weight layer together with the BN / activation that follow it."""

    name: str
    kind: str  # "conv", "depthwise", "deconv"
    true_macs: int
    paper_macs: int
    params: int
    weights: int = 0  # elements of the convolution kernel alone (what an exported graph holds)


@dataclass(frozen=True)
class ModelCost:
    """Totals for one architecture, joint count and input size, plus the per-layer breakdown."""

    height: int
    width: int
    num_joints: int
    true_macs: int
    paper_macs: int
    params: int
    layers: tuple[LayerCost, ...]

    @property
    def true_gmacs(self) -> float:
        return self.true_macs / 1e9

    @property
    def paper_gmacs(self) -> float:
        return self.paper_macs / 1e9

    @property
    def mparams(self) -> float:
        return self.params / 1e6

    def summary(self) -> str:
        return (
            f"{self.height}x{self.width}, K={self.num_joints}: {self.mparams:.2f} M params, "
            f"{self.true_gmacs:.2f} GMACs true (convolutions only), "
            f"{self.paper_gmacs:.2f} GMACs paper convention (ptflops: deconv over output pixels, "
            f"+1 per BN and ReLU element)"
        )


class _Counter:
    def __init__(self) -> None:
        self.layers: list[LayerCost] = []

    def conv(
        self,
        name: str,
        in_c: int,
        out_c: int,
        kernel: int,
        out_hw: int,
        *,
        groups: int = 1,
        bn: bool = True,
        relu: bool = True,
        bn_relu_channels: int | None = None,
    ) -> None:
        macs = out_hw * out_c * (in_c // groups) * kernel * kernel
        weights = out_c * (in_c // groups) * kernel * kernel
        post = self._post_ops(out_hw, bn_relu_channels or out_c, bn, relu)
        params = weights + (2 * out_c if bn else 0)
        kind = "depthwise" if groups > 1 else "conv"
        self.layers.append(LayerCost(name, kind, macs, macs + post, params, weights))

    def deconv(self, name: str, in_c: int, out_c: int, in_hw: int) -> None:
        per_pixel = in_c * out_c * DECONV_KERNEL * DECONV_KERNEL
        # Stride 2 doubles both sides: 4x the pixels.
        self.layers.append(
            LayerCost(name, "deconv", in_hw * per_pixel, 4 * in_hw * per_pixel, per_pixel, per_pixel)
        )

    def bn_relu(self, name: str, channels: int, hw: int) -> None:
        self.layers.append(
            LayerCost(name, "bn_relu", 0, self._post_ops(hw, channels, True, True), 2 * channels)
        )

    @staticmethod
    def _post_ops(hw: int, channels: int, bn: bool, relu: bool) -> int:
        return hw * channels * (int(bn) + int(relu))


def count_cost(
    variant_or_spec: str | Path | Mapping[str, Any] | ArchitectureSpec = "XS",
    num_joints: int = 17,
    height: int | None = None,
    width: int | None = None,
) -> ModelCost:
    """MACs (both conventions) and parameters for a variant/spec at ``height`` x ``width``.

    Height and width default to the architecture's ``img_size`` (square input) and must be multiples of 16.
    """
    spec = resolve_architecture(variant_or_spec)
    height = spec.img_size if height is None else int(height)
    width = height if width is None else int(width)
    if height <= 0 or width <= 0 or height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
        raise ValueError(
            f"input height and width must be positive multiples of {INPUT_MULTIPLE}, got {height}x{width}"
        )
    if num_joints <= 0:
        raise ValueError(f"num_joints must be positive, got {num_joints}")

    def pixels(stride: int) -> int:
        return (height // stride) * (width // stride)

    counter = _Counter()
    stem = spec.input_channel
    counter.conv("first.0", 3, STEM_WIDTH, 3, pixels(2))
    counter.conv("first.1", STEM_WIDTH, STEM_WIDTH, 3, pixels(2), groups=STEM_WIDTH)
    counter.conv("first.2", STEM_WIDTH, stem, 1, pixels(2), relu=False)

    in_c, stride = stem, 2
    for s, stage in enumerate(spec.backbone_setting):
        for b, (expansion, kernel) in enumerate(stage.block_setting):
            out_stride = stride * (stage.stride if b == 0 else 1)
            hidden = expanded_channels(in_c, expansion)
            name = f"stage.{s}.{b}"
            counter.conv(f"{name}.inv", in_c, hidden, 1, pixels(stride))
            counter.conv(f"{name}.depth_conv", hidden, hidden, kernel, pixels(out_stride), groups=hidden)
            counter.conv(f"{name}.point_conv", hidden, stage.channel, 1, pixels(out_stride), relu=False)
            in_c, stride = stage.channel, out_stride

    features = [stem, *spec.stage_channels]  # strides 2, 4, 8, 16, 16
    feature_strides = [2, 4, 8, 16, 16]
    widths = spec.deconv_setting
    refined_c, refined_stride = features[-1], 16
    raw_index = len(features) - 2
    output_channels = [2 * num_joints, num_joints]
    for i in range(3):
        counter.deconv(f"deconv_refined.{i}", refined_c, widths[i], pixels(refined_stride))
        counter.deconv(f"deconv_raw.{i}", features[raw_index], widths[i], pixels(feature_strides[raw_index]))
        refined_c, refined_stride = widths[i], refined_stride // 2
        counter.bn_relu(f"deconv_bnrelu.{i}", widths[i], pixels(refined_stride))
        raw_index -= 1
        if i >= 1:
            j = i - 1
            raw_c = features[raw_index]
            hw = pixels(refined_stride)
            for prefix, channels in ((f"final_refined.{j}", refined_c), (f"final_raw.{j}", raw_c)):
                counter.conv(f"{prefix}.conv.0", channels, channels, HEAD_KERNEL, hw, groups=channels)
                counter.conv(f"{prefix}.conv.3", channels, output_channels[j], 1, hw, bn=False, relu=False)

    layers = tuple(counter.layers)
    return ModelCost(
        height=height,
        width=width,
        num_joints=num_joints,
        true_macs=sum(layer.true_macs for layer in layers),
        paper_macs=sum(layer.paper_macs for layer in layers),
        params=sum(layer.params for layer in layers),
        layers=layers,
    )


def variants_table(num_joints: int = 14) -> str:
    """Markdown table of the released variants at their own input size (used in docs/model.md)."""
    from litepose_ros.model.architecture import RELEASED_VARIANTS, released_architecture
    from litepose_ros.summaries import markdown_table

    header = [
        "variant",
        "input",
        "stem C",
        "stage channels",
        "depths",
        "head widths",
        "params",
        "GMACs true",
        "GMACs paper convention",
    ]
    rows = []
    for name in RELEASED_VARIANTS:
        spec = released_architecture(name)
        cost = count_cost(spec, num_joints)
        rows.append(
            (
                name,
                spec.img_size,
                spec.input_channel,
                ", ".join(map(str, spec.stage_channels)),
                ", ".join(map(str, spec.depths)),
                ", ".join(map(str, spec.deconv_setting)),
                f"{cost.mparams:.2f} M",
                f"{cost.true_gmacs:.2f}",
                f"{cost.paper_gmacs:.2f}",
            )
        )
    return markdown_table(header, rows)
