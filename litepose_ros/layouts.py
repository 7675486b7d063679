"""Keypoint layouts: names, skeleton edges, flip permutation and OKS sigmas, as data.

One place for every consumer: decoding (flip test), training (flip augmentation), messages
(names and edges), markers and drawing (edges), evaluation (OKS sigmas).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KeypointLayout:
    name: str
    keypoint_names: tuple[str, ...]
    # Skeleton edges as (from, to) keypoint indices, 0-based.
    edges: tuple[tuple[int, int], ...]
    # flip_index[k] = the keypoint that k becomes in a horizontally mirrored image.
    flip_index: tuple[int, ...]
    # Per-keypoint OKS sigmas of the data set's evaluation.
    oks_sigmas: tuple[float, ...]

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    def sigmas_array(self) -> np.ndarray:
        return np.asarray(self.oks_sigmas, dtype=np.float64)

    def __post_init__(self) -> None:
        k = len(self.keypoint_names)
        if len(self.flip_index) != k or len(self.oks_sigmas) != k:
            raise ValueError(f"layout {self.name}: flip_index and oks_sigmas need {k} entries")
        if sorted(self.flip_index) != list(range(k)):
            raise ValueError(f"layout {self.name}: flip_index is not a permutation")
        for a, b in self.edges:
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"layout {self.name}: edge ({a}, {b}) out of range")


COCO_17 = KeypointLayout(
    name="coco17",
    keypoint_names=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),
    edges=(
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 12),
        (5, 11),
        (6, 12),
        (5, 6),
        (5, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (1, 2),
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ),
    flip_index=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    oks_sigmas=(
        0.026,
        0.025,
        0.025,
        0.035,
        0.035,
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
    ),
)

CROWDPOSE_14 = KeypointLayout(
    name="crowdpose14",
    keypoint_names=(
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
        "head",
        "neck",
    ),
    edges=(
        (12, 13),
        (13, 0),
        (13, 1),
        (0, 2),
        (2, 4),
        (1, 3),
        (3, 5),
        (0, 6),
        (1, 7),
        (6, 7),
        (6, 8),
        (8, 10),
        (7, 9),
        (9, 11),
    ),
    flip_index=(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13),
    oks_sigmas=(
        0.079,
        0.079,
        0.072,
        0.072,
        0.062,
        0.062,
        0.107,
        0.107,
        0.087,
        0.087,
        0.089,
        0.089,
        0.079,
        0.079,
    ),
)

LAYOUTS: dict[str, KeypointLayout] = {layout.name: layout for layout in (COCO_17, CROWDPOSE_14)}
# Data-set names people type, mapped to layouts.
_ALIASES = {"coco": "coco17", "crowdpose": "crowdpose14"}


def get_layout(key: str | int) -> KeypointLayout:
    """Layout by name ('coco17', 'coco', 'crowdpose14', 'crowdpose') or by keypoint count."""
    if isinstance(key, int) and not isinstance(key, bool):
        for layout in LAYOUTS.values():
            if layout.num_keypoints == key:
                return layout
        raise ValueError(
            f"no keypoint layout has {key} keypoints; known: "
            + ", ".join(f"{n} ({lay.num_keypoints})" for n, lay in LAYOUTS.items())
        )
    name = _ALIASES.get(str(key).lower(), str(key).lower())
    if name not in LAYOUTS:
        raise ValueError(f"unknown keypoint layout {key!r}; use one of {sorted(LAYOUTS)}")
    return LAYOUTS[name]
