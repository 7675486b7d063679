"""Step 2: peaks (candidates) of the heatmaps."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from litepose_ros.decoding.config import DecoderConfig
from litepose_ros.decoding.maps import PaddedHeatmaps, TagMaps
from litepose_ros.decoding.memory import Workspace


@dataclass(frozen=True)
class Candidates:
    """Peaks kept for grouping, sorted by joint, then by descending score within a joint."""

    joint: np.ndarray  # (M,) int64
    y: np.ndarray  # (M,) int64 map row
    x: np.ndarray  # (M,) int64 map column
    score: np.ndarray  # (M,) float32 heatmap value
    tag: np.ndarray  # (M, L) float32 tag vector
    starts: np.ndarray  # (K + 1,) candidates of joint j are [starts[j], starts[j + 1])


def max_pool(maps: np.ndarray, kernel: int, out: np.ndarray | None = None) -> np.ndarray:
    """Max over a ``kernel`` x ``kernel`` window around each pixel of (C, H, W) maps (windows
    clipped at the border, like a max-pool with stride 1 and -inf padding)."""
    out = np.empty_like(maps) if out is None else out
    element = np.ones((kernel, kernel), dtype=np.uint8)
    for c in range(maps.shape[0]):  # cv2.dilate is a vectorised max filter over one 2-D map
        cv2.dilate(maps[c], element, dst=out[c], borderType=cv2.BORDER_REPLICATE)
    return out


def find_candidates(
    heatmaps: np.ndarray, tags: TagMaps, config: DecoderConfig, workspace: Workspace | None = None
) -> Candidates:
    """Local maxima (max-pool equality) above the detection threshold, top ``config.top_k`` per
    joint by score. Selecting above the threshold first gives the same set as the reference's
    top-k followed by the threshold, without partitioning whole maps."""
    workspace = workspace or Workspace()
    padded = PaddedHeatmaps.allocate(workspace, heatmaps.shape, config.nms_kernel // 2)
    padded.maps[...] = heatmaps
    return find_padded_candidates(padded, tags, config, workspace)


@functools.lru_cache(maxsize=16)
def _window_offsets(radius: int, row_stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat offsets of the (2 radius + 1)^2 window around a pixel, without the pixel itself:
    its four direct neighbours, then the others."""
    near = [(0, 1), (0, -1), (1, 0), (-1, 0)] if radius else []
    far = [
        (dy, dx)
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
        if (dy, dx) != (0, 0) and (dy, dx) not in near
    ]
    offsets = (
        np.array([dy * row_stride + dx for dy, dx in near], dtype=np.int64),
        np.array([dy * row_stride + dx for dy, dx in far], dtype=np.int64),
    )
    for array in offsets:
        array.flags.writeable = False  # shared by every caller through the cache
    return offsets


def find_padded_candidates(
    heatmaps: PaddedHeatmaps, tags: TagMaps, config: DecoderConfig, workspace: Workspace
) -> Candidates:
    """``find_candidates`` on padded heatmaps (margin >= nms_kernel // 2).

    The max-pool equality is checked only at pixels above the threshold (a few percent of the
    maps): a pixel is a peak when no pixel of its window is higher. The four direct neighbours
    reject most pixels of a blob, the rest of the window is read for the few left.
    """
    num_joints, padded_height, padded_width = heatmaps.buffer.shape
    radius = config.nms_kernel // 2
    if heatmaps.margin < radius:
        raise ValueError(f"heatmap margin {heatmaps.margin} is smaller than the NMS radius {radius}")
    flat = heatmaps.buffer.reshape(-1)
    above = workspace.array("above", flat.shape, bool)
    np.greater(flat, config.detection_threshold, out=above)
    index = np.flatnonzero(above)
    score = flat[index]
    near, far = _window_offsets(radius, padded_width)
    if near.size and index.size:
        keep = score >= flat[index + near[0]]
        for offset in near[1:].tolist():
            keep &= score >= flat[index + offset]
        index, score = index[keep], score[keep]
    if far.size and index.size:
        keep = (score[:, None] >= flat[index[:, None] + far[None, :]]).all(axis=1)
        index, score = index[keep], score[keep]
    joint, pixel = np.divmod(index, padded_height * padded_width)
    order = np.lexsort((-score, joint))  # stable: equal scores stay in row-major order
    joint, pixel, score = joint[order], pixel[order], score[order]
    starts = np.searchsorted(joint, np.arange(num_joints + 1))
    keep = np.arange(joint.size) - starts[joint] < config.top_k
    joint, pixel, score = joint[keep], pixel[keep], score[keep]
    y, x = np.divmod(pixel, padded_width)
    y -= heatmaps.margin
    x -= heatmaps.margin
    return Candidates(
        joint=joint,
        y=y,
        x=x,
        score=score,
        tag=tags.at(joint, y, x),
        starts=np.searchsorted(joint, np.arange(num_joints + 1)),
    )
