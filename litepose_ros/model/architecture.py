"""LitePose architecture descriptions: the JSON files of the reference search space, as data.

A file looks like ``{"img_size": 256, "input_channel": 16, "deconv_setting": [16, 24, 24],
"backbone_setting": [{"num_blocks": 6, "stride": 2, "channel": 16, "block_setting": [[6, 7], ...]},
...]}``. The four released "LitePose-Auto" variants ship in ``architectures/search-{XS,S,M,L}.json``.

This module needs no torch: the cost counter and the ONNX engine use it too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RELEASED_VARIANTS: tuple[str, ...] = ("XS", "S", "M", "L")

ARCHITECTURES_DIR = Path(__file__).resolve().parent / "architectures"

# The fusion head walks back through the backbone features [stem, s0, s1, s2, s3] and needs s2 and s3
# at the same resolution (1/16) and every earlier feature at twice the resolution of the next one.
REQUIRED_STAGE_STRIDES: tuple[int, ...] = (2, 2, 2, 1)
NUM_DECONV_LAYERS = 3
# Stem output channels before the 1x1 projection to `input_channel` (fixed in the reference).
STEM_WIDTH = 32
# Input height and width must be multiples of this so that every upsampled map lines up with the
# backbone feature it is added to (the test pipeline pads the long side to a multiple of 64).
INPUT_MULTIPLE = 16
# Head kernels of every LitePose variant: the fusion deconvolutions (4x4, stride 2) and the
# depthwise convolution of the final separable layers (5x5).
DECONV_KERNEL = 4
HEAD_KERNEL = 5


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor`` the way the reference does.

    ``max(divisor, int(value + divisor / 2) // divisor * divisor)``, plus one ``divisor`` if that
    rounding lost more than 10 % of ``value``.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def expanded_channels(in_channels: int, expansion: float) -> int:
    """Hidden width of an inverted bottleneck: ``make_divisible(round(in * t), 8)``."""
    return make_divisible(round(in_channels * expansion), 8)


@dataclass(frozen=True)
class StageSpec:
    """One backbone stage: ``num_blocks`` inverted bottlenecks, the first with ``stride``."""

    num_blocks: int
    stride: int
    channel: int
    # Per block (expansion t, depthwise kernel size k).
    block_setting: tuple[tuple[float, int], ...]


@dataclass(frozen=True)
class ArchitectureSpec:
    """A LitePose network description (one file of the reference search space)."""

    img_size: int
    input_channel: int
    deconv_setting: tuple[int, ...]
    backbone_setting: tuple[StageSpec, ...]

    def __post_init__(self) -> None:
        _validate(self)

    # --- conversions -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArchitectureSpec:
        """Build from the reference JSON structure; raises ValueError naming what is wrong."""
        if not isinstance(data, Mapping):
            raise TypeError(f"architecture must be a JSON object (dict), got {type(data).__name__}")
        required = ("img_size", "input_channel", "deconv_setting", "backbone_setting")
        missing = [key for key in required if key not in data]
        if missing:
            raise ValueError(
                f"architecture is missing {missing}; a LitePose architecture file has the keys "
                f"{list(required)}"
            )
        unknown = sorted(set(data) - set(required))
        if unknown:
            raise ValueError(f"architecture has unknown keys {unknown}; expected only {list(required)}")
        stages_data = data["backbone_setting"]
        if not isinstance(stages_data, (list, tuple)):
            raise ValueError("architecture 'backbone_setting' must be a list of stage objects")
        stages = []
        for index, stage in enumerate(stages_data):
            if not isinstance(stage, Mapping):
                raise ValueError(
                    f"backbone_setting[{index}] must be an object with num_blocks, stride, "
                    f"channel, block_setting"
                )
            stage_keys = ("num_blocks", "stride", "channel", "block_setting")
            stage_missing = [key for key in stage_keys if key not in stage]
            if stage_missing:
                raise ValueError(f"backbone_setting[{index}] is missing {stage_missing}")
            blocks = stage["block_setting"]
            if not isinstance(blocks, (list, tuple)) or not all(
                isinstance(block, (list, tuple)) and len(block) == 2 for block in blocks
            ):
                raise ValueError(
                    f"backbone_setting[{index}].block_setting must be a list of [expansion, "
                    f"kernel] pairs, got {blocks!r}"
                )
            stages.append(
                StageSpec(
                    num_blocks=_as_int(stage["num_blocks"], f"backbone_setting[{index}].num_blocks"),
                    stride=_as_int(stage["stride"], f"backbone_setting[{index}].stride"),
                    channel=_as_int(stage["channel"], f"backbone_setting[{index}].channel"),
                    block_setting=tuple(
                        (
                            _as_expansion(t, f"backbone_setting[{index}].block_setting[{b}][0]"),
                            _as_int(k, f"backbone_setting[{index}].block_setting[{b}][1]"),
                        )
                        for b, (t, k) in enumerate(blocks)
                    ),
                )
            )
        deconv = data["deconv_setting"]
        if not isinstance(deconv, (list, tuple)):
            raise ValueError("architecture 'deconv_setting' must be a list of 3 channel counts")
        return cls(
            img_size=_as_int(data["img_size"], "img_size"),
            input_channel=_as_int(data["input_channel"], "input_channel"),
            deconv_setting=tuple(_as_int(c, f"deconv_setting[{i}]") for i, c in enumerate(deconv)),
            backbone_setting=tuple(stages),
        )

    @classmethod
    def from_json(cls, source: str | Path) -> ArchitectureSpec:
        """Read a JSON architecture file (path) or parse a JSON string (starting with '{')."""
        if isinstance(source, str) and source.lstrip().startswith("{"):
            text, origin = source, "JSON string"
        else:
            path = Path(source)
            if not path.is_file():
                raise ValueError(
                    f"architecture file {path} does not exist; give a search-*.json file or one "
                    f"of the released variant names {list(RELEASED_VARIANTS)}"
                )
            text, origin = path.read_text(), str(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"architecture {origin} is not valid JSON: {error}") from error
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as error:
            raise ValueError(f"architecture {origin}: {error}") from error

    def to_dict(self) -> dict[str, Any]:
        """The reference JSON structure (round-trips through from_dict)."""
        return {
            "img_size": self.img_size,
            "input_channel": self.input_channel,
            "deconv_setting": list(self.deconv_setting),
            "backbone_setting": [
                {
                    "num_blocks": s.num_blocks,
                    "stride": s.stride,
                    "channel": s.channel,
                    "block_setting": [[t, k] for t, k in s.block_setting],
                }
                for s in self.backbone_setting
            ],
        }

    def to_json(self) -> str:
        """Compact JSON text in the reference layout."""
        return json.dumps(self.to_dict())

    # --- derived facts -----------------------------------------------------------------------
    @property
    def stage_channels(self) -> tuple[int, ...]:
        return tuple(stage.channel for stage in self.backbone_setting)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(stage.num_blocks for stage in self.backbone_setting)

    def same_network(self, other: ArchitectureSpec) -> bool:
        """True when both describe the same weights (everything but the nominal input size)."""
        return (self.input_channel, self.deconv_setting, self.backbone_setting) == (
            other.input_channel,
            other.deconv_setting,
            other.backbone_setting,
        )

    def with_img_size(self, img_size: int) -> ArchitectureSpec:
        return ArchitectureSpec(
            img_size=img_size,
            input_channel=self.input_channel,
            deconv_setting=self.deconv_setting,
            backbone_setting=self.backbone_setting,
        )

    def released_name(self) -> str | None:
        """The released variant name (XS/S/M/L) whose network this is, or None (img_size ignored)."""
        for name in RELEASED_VARIANTS:
            if self.same_network(released_architecture(name)):
                return name
        return None


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return int(value)


def _as_expansion(value: Any, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} (expansion ratio) must be a number, got {value!r}")
    return int(value) if float(value).is_integer() else float(value)


def _validate(spec: ArchitectureSpec) -> None:
    if spec.img_size <= 0 or spec.img_size % INPUT_MULTIPLE:
        raise ValueError(
            f"img_size must be a positive multiple of {INPUT_MULTIPLE} (the backbone's output "
            f"stride), got {spec.img_size}"
        )
    if spec.input_channel <= 0:
        raise ValueError(f"input_channel must be positive, got {spec.input_channel}")
    if len(spec.deconv_setting) != NUM_DECONV_LAYERS or any(c <= 0 for c in spec.deconv_setting):
        raise ValueError(
            f"deconv_setting must list {NUM_DECONV_LAYERS} positive channel counts (one per "
            f"upsampling step), got {list(spec.deconv_setting)}"
        )
    strides = tuple(stage.stride for stage in spec.backbone_setting)
    if strides != REQUIRED_STAGE_STRIDES:
        raise ValueError(
            f"backbone_setting must have {len(REQUIRED_STAGE_STRIDES)} stages with strides "
            f"{list(REQUIRED_STAGE_STRIDES)} (the fusion head relies on it), got strides "
            f"{list(strides)}"
        )
    for index, stage in enumerate(spec.backbone_setting):
        where = f"backbone_setting[{index}]"
        if stage.channel <= 0:
            raise ValueError(f"{where}.channel must be positive, got {stage.channel}")
        if stage.num_blocks <= 0:
            raise ValueError(f"{where}.num_blocks must be at least 1, got {stage.num_blocks}")
        if len(stage.block_setting) != stage.num_blocks:
            raise ValueError(
                f"{where}: num_blocks is {stage.num_blocks} but block_setting lists "
                f"{len(stage.block_setting)} blocks"
            )
        for b, (t, k) in enumerate(stage.block_setting):
            if t <= 0:
                raise ValueError(f"{where}.block_setting[{b}]: expansion must be positive, got {t}")
            if k <= 0 or k % 2 == 0:
                raise ValueError(
                    f"{where}.block_setting[{b}]: kernel size must be odd and positive "
                    f"(padding k//2 keeps the size), got {k}"
                )


def released_architecture(name: str) -> ArchitectureSpec:
    """The architecture of a released variant: ``"XS"``, ``"S"``, ``"M"`` or ``"L"`` (case-insensitive)."""
    if not isinstance(name, str) or name.upper() not in RELEASED_VARIANTS:
        raise ValueError(
            f"unknown LitePose variant {name!r}; released variants are {list(RELEASED_VARIANTS)} "
            f"(or give an architecture JSON file)"
        )
    return ArchitectureSpec.from_json(ARCHITECTURES_DIR / f"search-{name.upper()}.json")


def resolve_architecture(variant: str | Path | Mapping[str, Any] | ArchitectureSpec) -> ArchitectureSpec:
    """Accept a variant name, an architecture JSON path or string, a dict, or a spec."""
    if isinstance(variant, ArchitectureSpec):
        return variant
    if isinstance(variant, Mapping):
        return ArchitectureSpec.from_dict(variant)
    if isinstance(variant, str) and variant.upper() in RELEASED_VARIANTS:
        return released_architecture(variant)
    if isinstance(variant, (str, Path)):
        return ArchitectureSpec.from_json(variant)
    raise TypeError(
        f"expected a variant name {list(RELEASED_VARIANTS)}, an architecture JSON file, a dict or "
        f"an ArchitectureSpec, got {type(variant).__name__}"
    )


# ImageNet statistics the network was trained with (RGB, applied to pixel values scaled to [0, 1]).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def model_facts(spec: ArchitectureSpec, num_joints: int, input_size: int | None = None) -> dict[str, str]:
    """Model facts as strings, shared by the ONNX metadata and the engines' ``metadata``.

    Keys: variant, num_joints, layout (coco17 / crowdpose14 / custom), input_size (nominal short side),
    architecture (JSON), input_normalisation (JSON), outputs (JSON: what each output holds).
    """
    from litepose_ros.layouts import LAYOUTS

    input_size = int(input_size or spec.img_size)
    layout = next((name for name, lay in LAYOUTS.items() if lay.num_keypoints == num_joints), "custom")
    k = int(num_joints)
    return {
        "variant": spec.released_name() or "custom",
        "num_joints": str(k),
        "layout": layout,
        "input_size": str(input_size),
        "architecture": spec.with_img_size(input_size).to_json(),
        "input_normalisation": json.dumps(
            {
                "channels": "RGB",
                "layout": "NCHW",
                "scale": "x / 255",
                "mean": list(IMAGENET_MEAN),
                "std": list(IMAGENET_STD),
            }
        ),
        "outputs": json.dumps({"stride4": f"{k} heatmaps then {k} tag maps", "stride2": f"{k} heatmaps"}),
    }
