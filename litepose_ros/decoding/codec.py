"""What the network's outputs mean, in one place for both directions: the training targets
(encode) and the decoder's reading of the outputs (decode).

LitePose has two outputs, in this order (``OUTPUT_STRIDES``): at stride 4, K keypoint heatmaps
followed by K associative-embedding tag maps (``TAG_STRIDE``); at stride 2, K heatmaps. A keypoint
is a Gaussian of ``sigma`` output pixels on its heatmap at both strides; a person's tags are pulled
together and pushed from other people's at stride 4 (the joint index lists below). The decoder
(``litepose_ros.decoding``) reads the same outputs back: heatmaps merged on the stride-2 grid,
tags from the stride-4 output. ``OutputCodec`` carries the encode settings a training recipe
states (``data.sigma``, ``data.max_people``).

Coordinates are output-map pixels with pixel centres at integers (see training/augment.py). A
joint is used when it is labelled (v > 0) and its nearest output pixel lies inside the map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Strides of the network's two outputs, in the order the network returns them.
OUTPUT_STRIDES = (4, 2)
# The output that carries the tag maps (after its K heatmaps).
TAG_STRIDE = 4


@dataclass(frozen=True)
class OutputCodec:
    """The encode settings: Gaussian sigma (output pixels, both strides) and the people per image
    the tag loss sees. ``targets`` renders every training target of one sample."""

    sigma: float = 2.0
    max_people: int = 30

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise ValueError(f"the heatmap sigma must be > 0 output pixels, got {self.sigma}")
        if self.max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {self.max_people}")

    def targets(
        self, points_by_stride: dict[int, np.ndarray], visible: np.ndarray, input_size: int
    ) -> dict[str, np.ndarray]:
        """``heatmaps_s{stride}`` (K, S, S) for each output and ``joints`` (the tag loss's index
        lists at TAG_STRIDE) from the joints (P, K, 2) already mapped to each output's pixels."""
        targets: dict[str, np.ndarray] = {}
        for stride in OUTPUT_STRIDES:
            points, size = points_by_stride[stride], (input_size // stride, input_size // stride)
            targets[f"heatmaps_s{stride}"] = render_heatmaps(points, visible, size, self.sigma)
            if stride == TAG_STRIDE:
                targets["joints"] = joint_index_lists(points, visible, size, self.max_people)
        return targets


def _nearest_pixels(
    joints_xy: np.ndarray, visible: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest integer pixel of each joint and whether it is usable (labelled and inside)."""
    height, width = size
    pixel = np.floor(np.asarray(joints_xy, dtype=np.float64) + 0.5).astype(np.int64)
    inside = (pixel[..., 0] >= 0) & (pixel[..., 0] < width) & (pixel[..., 1] >= 0) & (pixel[..., 1] < height)
    return pixel, np.asarray(visible, dtype=bool) & inside


def render_heatmaps(
    joints_xy: np.ndarray, visible: np.ndarray, size: tuple[int, int], sigma: float = 2.0
) -> np.ndarray:
    """Heatmaps (K, H, W), the per-pixel maximum over people of a Gaussian at each joint.

    joints_xy: (P, K, 2) joint positions in output pixels; visible: (P, K) booleans.
    The Gaussian exp(-d^2 / (2 sigma^2)) is centred on the exact (sub-pixel) position and cut
    off beyond 3 sigma + 1 pixels; it peaks at 1 when the joint sits on a pixel centre.
    """
    joints_xy = np.asarray(joints_xy, dtype=np.float64).reshape(-1, np.shape(joints_xy)[-2], 2)
    visible = np.asarray(visible, dtype=bool).reshape(joints_xy.shape[:2])
    num_joints = joints_xy.shape[1]
    height, width = size
    heatmaps = np.zeros((num_joints, height, width), dtype=np.float32)
    pixel, usable = _nearest_pixels(joints_xy, visible, size)
    radius = int(np.ceil(3 * sigma)) + 1
    for person, joint in zip(*np.nonzero(usable), strict=True):
        cx, cy = pixel[person, joint]
        x0, x1 = max(0, cx - radius), min(width, cx + radius + 1)
        y0, y1 = max(0, cy - radius), min(height, cy + radius + 1)
        xs = np.arange(x0, x1) - joints_xy[person, joint, 0]
        ys = np.arange(y0, y1) - joints_xy[person, joint, 1]
        gaussian = np.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2.0 * sigma * sigma))
        patch = heatmaps[joint, y0:y1, x0:x1]
        np.maximum(patch, gaussian.astype(np.float32), out=patch)
    return heatmaps


def joint_index_lists(
    joints_xy: np.ndarray, visible: np.ndarray, size: tuple[int, int], max_people: int = 30
) -> np.ndarray:
    """Index lists for the associative-embedding loss, int64 (max_people, K, 2).

    Row [p, k] = (k * H * W + y * W + x, 1) for a usable joint of person p (an index into the
    flattened (K, H, W) tag maps), (0, 0) otherwise. People beyond max_people are left out.
    """
    joints_xy = np.asarray(joints_xy, dtype=np.float64).reshape(-1, np.shape(joints_xy)[-2], 2)
    visible = np.asarray(visible, dtype=bool).reshape(joints_xy.shape[:2])
    num_joints = joints_xy.shape[1]
    height, width = size
    lists = np.zeros((max_people, num_joints, 2), dtype=np.int64)
    pixel, usable = _nearest_pixels(joints_xy[:max_people], visible[:max_people], size)
    count = pixel.shape[0]
    flat = np.arange(num_joints)[None, :] * height * width + pixel[..., 1] * width + pixel[..., 0]
    lists[:count, :, 0] = np.where(usable, flat, 0)
    lists[:count, :, 1] = usable.astype(np.int64)
    return lists
