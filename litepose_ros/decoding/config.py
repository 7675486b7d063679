"""Decoder settings and its result: every constant of the decoding in one configuration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from litepose_ros.decoding.codec import OUTPUT_STRIDES
from litepose_ros.layouts import KeypointLayout

# Stride of the maps that grouping runs on (the network's finest output, stride 2).
DECODE_STRIDE = min(OUTPUT_STRIDES)
# The strides grouping can run at: the network's stride 2, or 1 (maps upsampled to the input).
DECODE_STRIDES = (1, 2)
# Joint order of the grouping: the reference visits the head and torso (most reliable tags) before
# the limbs for COCO; other layouts are visited in their own order.
GROUPING_JOINT_ORDER: dict[str, tuple[int, ...]] = {
    "coco17": (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)
}
# Quarter-pixel adjust step (map pixels).
ADJUST_STEP = 0.25


@dataclass(frozen=True)
class DecoderConfig:
    """Every constant of the decoding, with the reference test pipeline's defaults.

    ``DecoderConfig.fast()`` is the authors' real-time setting: no flip test, adjust or refine.
    """

    flip_test: bool = True  # also decode the mirrored input (the caller runs it)
    nms_kernel: int = 5  # max-pool window of the peak NMS (odd)
    top_k: int = 30  # candidates kept per joint
    detection_threshold: float = 0.1  # a candidate needs a heatmap value above this
    tag_threshold: float = 1.0  # a match this far (tag distance) or more starts a new person
    tag_cost_weight: float = 100.0  # cost = round(tag distance) * weight - candidate score
    # ... + a tie-break of this size: the rounded cost often has several optimal assignments (a
    # permutation of matched rows keeps the score sum). Among those it picks the one with the
    # fewest matches at or beyond tag_threshold (each would start a new person), then the one
    # with the closest tags (grouping.tie_break_cost). It never fragments a person where another
    # optimal assignment would not; where the rounded optimum is unique the result is the
    # reference's. 0 gives the reference's cost exactly, with ties left to the solver (munkres
    # there, scipy here), which in crowds can split people.
    tag_tie_break: float = 1e-6
    max_matched_people: int = 30  # only the first this many people take part in matching
    adjust: bool = True  # quarter-pixel shift towards the higher neighbour
    refine: bool = True  # fill missing joints from the whole heatmap
    joint_order: tuple[int, ...] | None = None  # None: GROUPING_JOINT_ORDER or the layout order
    # Resolution of the maps grouping runs on: 2, the network's stride-2 output (default), or 1,
    # the maps upsampled to the network input as the reference's evaluation script does (a little
    # more AP, about 4x the decoding work; see docs/decoding.md).
    decode_stride: int = DECODE_STRIDE
    min_person_score: float = 0.0  # drop people scoring below this (0 keeps everyone)
    oks_nms_threshold: float | None = None  # drop people with OKS above this to a better one

    def __post_init__(self) -> None:
        if self.nms_kernel < 1 or self.nms_kernel % 2 == 0:
            raise ValueError(f"nms_kernel must be a positive odd number, got {self.nms_kernel}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.max_matched_people < 1:
            raise ValueError(f"max_matched_people must be >= 1, got {self.max_matched_people}")
        if self.decode_stride not in DECODE_STRIDES:
            raise ValueError(f"decode_stride must be one of {DECODE_STRIDES}, got {self.decode_stride!r}")
        if self.tag_tie_break < 0:
            raise ValueError(f"tag_tie_break must be >= 0, got {self.tag_tie_break}")
        if self.tag_threshold <= 0:
            raise ValueError(f"tag_threshold must be > 0, got {self.tag_threshold}")
        if self.oks_nms_threshold is not None and not 0.0 < self.oks_nms_threshold <= 1.0:
            raise ValueError(f"oks_nms_threshold must be in (0, 1] or None, got {self.oks_nms_threshold}")
        if self.joint_order is not None:
            object.__setattr__(self, "joint_order", tuple(int(j) for j in self.joint_order))

    @classmethod
    def fast(cls, **overrides) -> DecoderConfig:
        """The real-time preset of the authors' demo: flip test, adjust and refine off."""
        settings = {"flip_test": False, "adjust": False, "refine": False}
        settings.update(overrides)
        return cls(**settings)

    def replace(self, **changes) -> DecoderConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def joint_order_for(self, layout: KeypointLayout) -> tuple[int, ...]:
        """The grouping order for ``layout`` (validated to be a permutation of its joints)."""
        order = (
            self.joint_order or GROUPING_JOINT_ORDER.get(layout.name) or tuple(range(layout.num_keypoints))
        )
        if sorted(order) != list(range(layout.num_keypoints)):
            raise ValueError(
                f"joint_order {order} is not a permutation of the {layout.num_keypoints} "
                f"joints of layout {layout.name}"
            )
        return order


@dataclass(frozen=True)
class DecodedPeople:
    """People found in one image.

    ``keypoints`` (N, K, 3) float32 holds x, y, score. A joint neither grouped nor refined has
    score 0 and sits at the mean position of the person's found joints (a harmless best guess).
    ``scores`` (N,) float32 are the person scores; people are sorted by descending score.
    """

    keypoints: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])
