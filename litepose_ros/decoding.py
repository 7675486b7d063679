"""Multi-person decoding: network outputs to people (associative-embedding grouping).

Reproduces the reference test pipeline (LITEPOSE.md section 5), vectorised:

1. ``merge_outputs``: bilinearly upsample the stride-4 heatmaps to the stride-2 size and average
   them with the stride-2 heatmaps; tags come from the stride-4 output, upsampled the same way
   (lazily: only at the pixels and joints grouping and refine read).
   With the flip test, the mirrored input's maps are mirrored back, their channels permuted with
   the layout's flip index, heatmaps averaged and tags stacked as 2-D vectors.
2. ``find_candidates``: peaks by 5x5 max-pool equality, then the top 30 per joint above the
   detection threshold (the equality is tested only at pixels above the threshold, on heatmaps
   padded with -inf: the same peaks as a max-pool of every map).
3. ``group_candidates``: joint by joint, candidates are matched to the people found so far with
   the Hungarian algorithm (scipy's linear_sum_assignment) on the cost
   ``round(tag distance) * 100 - score`` (plus 1e-6 x tag distance to break the frequent exact
   ties towards the closest tags); a match at tag distance >= 1.0 starts a new person.
4. Quarter-pixel adjust towards the higher neighbour, refine of missing joints at
   ``argmax(heatmap - round(|tag - person tag|))``, person score = mean of the K grouped joint
   scores (missing joints count as 0, computed before refine, as the reference does).
5. Optional: minimum person score and OKS-based NMS of duplicate people.

All map coordinates here are pixel centres of the stride-2 maps; ``decode_people`` maps them to
source-image pixels with a ``preprocess.ResizeTransform`` (conventions in preprocess.py). Where the
reference reads a map position ``j`` as ``j + 0.5`` (corner coordinates), this module keeps ``j``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from litepose_ros.layouts import KeypointLayout
from litepose_ros.preprocess import ResizeTransform, map_to_input

# Stride of the maps that grouping runs on (the network's stride-2 output).
DECODE_STRIDE = 2
# Joint order of the grouping: the reference visits the head and torso (most reliable tags) before
# the limbs for COCO; other layouts are visited in their own order.
GROUPING_JOINT_ORDER: dict[str, tuple[int, ...]] = {
    "coco17": (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16),
}
# Quarter-pixel adjust step (map pixels).
ADJUST_STEP = 0.25


@dataclass(frozen=True)
class DecoderConfig:
    """Every constant of the decoding, with the reference test pipeline's defaults.

    ``DecoderConfig.fast()`` is the authors' real-time setting: no flip test, adjust or refine.
    """

    flip_test: bool = True            # also decode the mirrored input (the caller runs it)
    nms_kernel: int = 5               # max-pool window of the peak NMS (odd)
    top_k: int = 30                   # candidates kept per joint
    detection_threshold: float = 0.1  # a candidate needs a heatmap value above this
    tag_threshold: float = 1.0        # a match this far (tag distance) or more starts a new person
    tag_cost_weight: float = 100.0    # cost = round(tag distance) * weight - candidate score
    # ... + tie_break * tag distance: the rounded cost often has several optimal assignments (a
    # permutation of matched rows keeps the score sum); this picks the closest-tag one. 0 gives
    # the reference's cost exactly, with ties left to the solver (munkres there, scipy here).
    tag_tie_break: float = 1e-6
    max_matched_people: int = 30      # only the first this many people take part in matching
    adjust: bool = True               # quarter-pixel shift towards the higher neighbour
    refine: bool = True               # fill missing joints from the whole heatmap
    joint_order: tuple[int, ...] | None = None  # None: GROUPING_JOINT_ORDER or the layout order
    min_person_score: float = 0.0     # drop people scoring below this (0 keeps everyone)
    oks_nms_threshold: float | None = None  # drop people with OKS above this to a better one

    def __post_init__(self) -> None:
        if self.nms_kernel < 1 or self.nms_kernel % 2 == 0:
            raise ValueError(f"nms_kernel must be a positive odd number, got {self.nms_kernel}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.max_matched_people < 1:
            raise ValueError(f"max_matched_people must be >= 1, got {self.max_matched_people}")
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
        order = self.joint_order or GROUPING_JOINT_ORDER.get(layout.name) or tuple(
            range(layout.num_keypoints))
        if sorted(order) != list(range(layout.num_keypoints)):
            raise ValueError(f"joint_order {order} is not a permutation of the {layout.num_keypoints} "
                             f"joints of layout {layout.name}")
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


@dataclass(frozen=True)
class Candidates:
    """Peaks kept for grouping, sorted by joint, then by descending score within a joint."""

    joint: np.ndarray   # (M,) int64
    y: np.ndarray       # (M,) int64 map row
    x: np.ndarray       # (M,) int64 map column
    score: np.ndarray   # (M,) float32 heatmap value
    tag: np.ndarray     # (M, L) float32 tag vector
    starts: np.ndarray  # (K + 1,) candidates of joint j are [starts[j], starts[j + 1])


@dataclass(frozen=True)
class Grouping:
    """People after grouping: integer map positions and scores of their joints."""

    y: np.ndarray           # (P, K) int64 (meaningless where missing)
    x: np.ndarray           # (P, K) int64
    score: np.ndarray       # (P, K) float32, 0 where the joint is missing
    found: np.ndarray       # (P, K) bool
    tag: np.ndarray         # (P, L) float32 mean tag of the grouped joints


class Workspace:
    """Scratch arrays reused from one image to the next (one per thread).

    Decoding needs a handful of map-sized temporaries; allocating them afresh for every image costs
    page faults (the allocator hands megabyte blocks back to the kernel) that can take longer than
    the arithmetic. Arrays handed out stay valid until the same name is requested again.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}
        # (address, shape, margin) of the padded heatmaps whose -inf margin is in place.
        self.margin_ready: tuple | None = None

    def array(self, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
        """An uninitialised array of ``shape``, reusing the storage kept under ``name``."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != np.dtype(dtype):
            buffer = np.empty(max(size, 1), dtype=dtype)
            self._buffers[name] = buffer
        return buffer[:size].reshape(shape)


_THREAD_STATE = threading.local()


def thread_workspace() -> Workspace:
    """The calling thread's decoding workspace."""
    workspace = getattr(_THREAD_STATE, "workspace", None)
    if workspace is None:
        workspace = _THREAD_STATE.workspace = Workspace()
    return workspace


class TagMaps:
    """Tag maps (L, K, h, w) at the heatmap resolution or at half of it (the network's stride-4
    output). Half-resolution maps are upsampled (bilinear, half-pixel centres, as ``upsample2x``)
    only at the pixels and joints that are read."""

    def __init__(self, tags: np.ndarray, heatmap_shape: tuple[int, int, int]):
        """``tags`` is (K, h, w, L) or (K, h, w) with (h, w) the heatmap size or half of it."""
        tags = np.asarray(tags)
        if tags.ndim == 3:
            tags = tags[..., None]
        k, height, width = heatmap_shape
        full, half = (k, height, width), (k, height // 2, width // 2)
        if tags.ndim != 4 or tags.shape[:3] not in (full, half) or tags.shape[3] not in (1, 2):
            raise ValueError(f"tags must have shape (K, H, W, L) with L = 1 or 2 (or (K, H, W)) at the "
                             f"heatmap size {full} or half of it {half}, got {tags.shape}")
        if not np.issubdtype(tags.dtype, np.floating):
            raise TypeError(f"tags must be floating point, got {tags.dtype}")
        if tags.shape[:3] != full and (height % 2 or width % 2):
            raise ValueError(f"half-resolution tags need an even heatmap size, got {height}x{width}: "
                             f"give the tags at the heatmap size")
        self._set(np.ascontiguousarray(tags.transpose(3, 0, 1, 2), dtype=np.float32), heatmap_shape)

    @classmethod
    def from_stacked(cls, maps: np.ndarray, heatmap_shape: tuple[int, int, int]) -> TagMaps:
        """Tag maps from checked (L, K, h, w) float32 maps (no copy when contiguous)."""
        tags = cls.__new__(cls)
        tags._set(np.ascontiguousarray(maps, dtype=np.float32), heatmap_shape)
        return tags

    def _set(self, maps: np.ndarray, heatmap_shape: tuple[int, int, int]) -> None:
        self.maps = maps
        self.upsample = maps.shape[2:] != heatmap_shape[1:]
        self.dim = maps.shape[0]

    def at(self, joint: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Tags (M, L) at heatmap pixels (joint, y, x)."""
        return self.stacked_at(joint, y, x).T

    def stacked_at(self, joint: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Tags (L, M) at heatmap pixels (joint, y, x)."""
        dim, joints, height, width = self.maps.shape
        flat = self.maps.reshape(-1)
        planes = np.arange(dim)[:, None] * (joints * height * width)
        if not self.upsample:
            return flat.take((joint * height + y) * width + x + planes)
        rows, row_weights = _source_table(height, width)  # (2, 2h): offsets of rows y0, y1; 1 - wy, wy
        cols, col_weights = _source_table(width, 1)
        start = (joint * (height * width) + rows[:, y])[:, None, :] + cols[:, x][None, :, :]
        corners = flat.take(start + planes[:, :, None, None])  # (L, row y0/y1, column x0/x1, M)
        col_weights, row_weights = col_weights[:, x], row_weights[:, y]
        across = corners[:, :, 0] * col_weights[0] + corners[:, :, 1] * col_weights[1]  # (L, 2, M)
        return across[:, 0] * row_weights[0] + across[:, 1] * row_weights[1]

    def full(self, joints: np.ndarray, workspace: Workspace) -> np.ndarray:
        """Whole tag maps (L, len(joints), H, W) of the given joints at the heatmap resolution."""
        dim, _, height, width = self.maps.shape
        if not self.upsample:
            return self.maps[:, joints]
        out = workspace.array("tag_maps", (dim, joints.size, 2 * height, 2 * width))
        for d in range(dim):
            for slot, j in enumerate(joints.tolist()):
                _resize2x(self.maps[d, j], out[d, slot])
        return out


@functools.lru_cache(maxsize=16)
def _source_table(size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel of a 2x-upsampled ``size``-pixel axis (half-pixel centres, clamped at the
    border): its two low-resolution neighbours times ``stride`` (2, 2 size), and their weights
    1 - w and w (2, 2 size) float32. Read-only (shared through the cache)."""
    source = np.maximum((np.arange(2 * size) + 0.5) / 2.0 - 0.5, 0.0)
    low = np.minimum(source.astype(np.int64), size - 1)
    weight = (source - low).astype(np.float32)
    table = (np.stack([low, np.minimum(low + 1, size - 1)]) * stride, np.stack([1 - weight, weight]))
    for array in table:
        array.flags.writeable = False
    return table


# --------------------------------------------------------------------------------------------
# 1. Network outputs to heatmaps and tags at stride 2


@dataclass(frozen=True)
class PaddedHeatmaps:
    """Heatmaps (K, H, W) stored inside a buffer with a ``margin`` of -inf around every map.

    A neighbour up to ``margin`` pixels away from any map pixel is then a fixed offset into the
    flat buffer (no bounds checks, no wrap-around into the next row or map), and a margin pixel
    never wins a max: the same as clipping a window at the map border.
    """

    buffer: np.ndarray  # (K, H + 2 margin, W + 2 margin) float32
    margin: int

    @property
    def maps(self) -> np.ndarray:
        """The (K, H, W) heatmaps (a view into the buffer)."""
        m = self.margin
        _, height, width = self.buffer.shape
        return self.buffer[:, m:height - m, m:width - m]

    @classmethod
    def allocate(cls, workspace: Workspace, shape: tuple[int, int, int], margin: int) -> PaddedHeatmaps:
        """Workspace storage for heatmaps of ``shape`` with the margin set to -inf (the maps are
        left to the caller)."""
        k, height, width = shape
        buffer = workspace.array("heatmaps", (k, height + 2 * margin, width + 2 * margin))
        # Heatmaps are written only inside the margin, so a buffer reused with the same geometry
        # keeps it; margin-free storage (merge_outputs) is written whole and spoils it.
        ready = (buffer.__array_interface__["data"][0], buffer.shape, margin) if margin else None
        if margin and workspace.margin_ready != ready:
            buffer[:, :margin] = -np.inf
            buffer[:, -margin:] = -np.inf
            buffer[:, :, :margin] = -np.inf
            buffer[:, :, -margin:] = -np.inf
        workspace.margin_ready = ready
        return cls(buffer, margin)


def _resize2x(image: np.ndarray, out: np.ndarray) -> None:
    cv2.resize(image, (out.shape[1], out.shape[0]), dst=out, interpolation=cv2.INTER_LINEAR)


def upsample2x(maps: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Bilinear 2x upsampling of (C, H, W) float32 maps (half-pixel centres, edge clamping: the
    same numbers as torch's ``interpolate(..., mode='bilinear', align_corners=False)``)."""
    channels, height, width = maps.shape
    if out is None:
        out = np.empty((channels, 2 * height, 2 * width), dtype=np.float32)
    for c in range(channels):  # cv2 resizes one 2-D map per call; the loop is over channels only
        _resize2x(maps[c], out[c])
    return out


def merge_outputs(out4: np.ndarray, out2: np.ndarray, layout: KeypointLayout,
                  flipped_out4: np.ndarray | None = None, flipped_out2: np.ndarray | None = None, *,
                  workspace: Workspace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Combine the network outputs of one image into heatmaps on the stride-2 grid and tags.

    ``out4`` is (2K, h, w) or (1, 2K, h, w): K heatmaps then K tag maps at stride 4; ``out2`` is
    (K, 2h, 2w) or (1, K, 2h, 2w). The flipped outputs, when given, are the network's outputs
    for the horizontally mirrored input. Returns heatmaps (K, 2h, 2w) float32 and the stride-4
    tags (K, h, w, L) float32 with L = 1, or 2 with the flip test (``decode_maps`` upsamples
    tags only where it reads them, which gives the same values as upsampling them all). With a
    ``workspace`` the results live in its buffers (valid until its next use); without the flip
    test the tags are a view of ``out4``.
    """
    heatmaps, tags = _merge(out4, out2, layout, flipped_out4, flipped_out2,
                            workspace=workspace or Workspace(), margin=0)
    return heatmaps.buffer, tags.transpose(1, 2, 3, 0)


def _merge(out4: np.ndarray, out2: np.ndarray, layout: KeypointLayout, flipped_out4: np.ndarray | None,
           flipped_out2: np.ndarray | None, *, workspace: Workspace,
           margin: int) -> tuple[PaddedHeatmaps, np.ndarray]:
    """``merge_outputs`` into padded heatmaps; tags come back as (L, K, h, w)."""
    k = layout.num_keypoints
    out4, out2 = _check_outputs(out4, out2, k, "")
    if (flipped_out4 is None) != (flipped_out2 is None):
        raise ValueError("give both flipped outputs (stride 4 and stride 2) or neither")
    _, height, width = out4.shape
    padded = PaddedHeatmaps.allocate(workspace, (k, 2 * height, 2 * width), margin)
    heatmaps = padded.maps
    if flipped_out4 is None:
        for j in range(k):  # channel by channel: each map's intermediate results stay in the cache
            _resize2x(out4[j], heatmaps[j])
            cv2.addWeighted(heatmaps[j], 0.5, out2[j], 0.5, 0.0, dst=heatmaps[j])
        return padded, out4[k:][None]
    flipped_out4, flipped_out2 = _check_outputs(flipped_out4, flipped_out2, k, "flipped ")
    if flipped_out4.shape != out4.shape or flipped_out2.shape != out2.shape:
        raise ValueError(f"flipped outputs {flipped_out4.shape}, {flipped_out2.shape} differ in shape "
                         f"from the outputs {out4.shape}, {out2.shape}")
    flip = np.asarray(layout.flip_index)
    tags = workspace.array("tags4", (2, k, height, width))
    tags[0] = out4[k:]
    heat4 = workspace.array("heat4", (height, width))
    mirrored2 = workspace.array("mirrored2", (2 * height, 2 * width))
    for j, source in enumerate(flip.tolist()):
        # Mirror back and swap left/right: the mirrored input's channel flip[j] is joint j.
        cv2.flip(flipped_out4[source], 1, dst=heat4)
        cv2.flip(flipped_out4[k + source], 1, dst=tags[1, j])
        cv2.addWeighted(heat4, 0.25, out4[j], 0.25, 0.0, dst=heat4)
        _resize2x(heat4, heatmaps[j])  # upsampling is linear: average at stride 4, resize once
        cv2.flip(flipped_out2[source], 1, dst=mirrored2)
        cv2.addWeighted(mirrored2, 0.25, out2[j], 0.25, 0.0, dst=mirrored2)
        cv2.add(heatmaps[j], mirrored2, dst=heatmaps[j])  # OpenCV: much faster than numpy on padded rows
    return padded, tags


def _check_outputs(out4: np.ndarray, out2: np.ndarray, k: int,
                   what: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, given, channels in ((f"{what}stride-4 output", out4, 2 * k),
                                  (f"{what}stride-2 output", out2, k)):
        array = np.asarray(given)
        if array.ndim == 4:
            if array.shape[0] != 1:
                raise ValueError(f"{name} has batch size {array.shape[0]}; decode one image at a time")
            array = array[0]
        if array.ndim != 3 or array.shape[0] != channels:
            raise ValueError(f"{name} must have shape ({channels}, H, W) (or with a batch of 1) for "
                             f"{k} joints, got {np.shape(array)}; is the model for another layout?")
        if not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"{name} must be floating point, got {array.dtype}")
        arrays.append(np.ascontiguousarray(array, dtype=np.float32))  # OpenCV needs plain rows
    out4, out2 = arrays
    if out2.shape[1:] != (2 * out4.shape[1], 2 * out4.shape[2]):
        raise ValueError(f"stride-2 maps {out2.shape[1:]} must be twice the stride-4 maps {out4.shape[1:]}")
    return out4, out2


# --------------------------------------------------------------------------------------------
# 2. Peaks


def max_pool(maps: np.ndarray, kernel: int, out: np.ndarray | None = None) -> np.ndarray:
    """Max over a ``kernel`` x ``kernel`` window around each pixel of (C, H, W) maps (windows
    clipped at the border, like a max-pool with stride 1 and -inf padding)."""
    out = np.empty_like(maps) if out is None else out
    element = np.ones((kernel, kernel), dtype=np.uint8)
    for c in range(maps.shape[0]):  # cv2.dilate is a vectorised max filter over one 2-D map
        cv2.dilate(maps[c], element, dst=out[c], borderType=cv2.BORDER_REPLICATE)
    return out


def find_candidates(heatmaps: np.ndarray, tags: TagMaps, config: DecoderConfig,
                    workspace: Workspace | None = None) -> Candidates:
    """Local maxima (max-pool equality) above the detection threshold, top ``config.top_k`` per
    joint by score. Selecting above the threshold first gives the same set as the reference's
    top-k followed by the threshold, without partitioning whole maps."""
    workspace = workspace or Workspace()
    padded = PaddedHeatmaps.allocate(workspace, heatmaps.shape, config.nms_kernel // 2)
    padded.maps[...] = heatmaps
    return _find_candidates(padded, tags, config, workspace)


@functools.lru_cache(maxsize=16)
def _window_offsets(radius: int, row_stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat offsets of the (2 radius + 1)^2 window around a pixel, without the pixel itself:
    its four direct neighbours, then the others."""
    near = [(0, 1), (0, -1), (1, 0), (-1, 0)] if radius else []
    far = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
           if (dy, dx) != (0, 0) and (dy, dx) not in near]
    offsets = (np.array([dy * row_stride + dx for dy, dx in near], dtype=np.int64),
               np.array([dy * row_stride + dx for dy, dx in far], dtype=np.int64))
    for array in offsets:
        array.flags.writeable = False  # shared by every caller through the cache
    return offsets


def _find_candidates(heatmaps: PaddedHeatmaps, tags: TagMaps, config: DecoderConfig,
                     workspace: Workspace) -> Candidates:
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
    return Candidates(joint=joint, y=y, x=x, score=score, tag=tags.at(joint, y, x),
                      starts=np.searchsorted(joint, np.arange(num_joints + 1)))


# --------------------------------------------------------------------------------------------
# 3. Grouping


def group_candidates(candidates: Candidates, num_joints: int, config: DecoderConfig,
                     joint_order: tuple[int, ...]) -> Grouping:
    """Assign candidates to people joint by joint (Hungarian matching on tag distance)."""
    tag_dim = candidates.tag.shape[1]
    capacity = int(candidates.joint.size)  # each candidate joins a person or starts one
    member = np.full((capacity, num_joints), -1, dtype=np.int64)  # candidate index per joint
    # Per person: the sum of its grouped tags, then their count (one array: one update per joint).
    totals = np.zeros((capacity, tag_dim + 1), dtype=np.float64)
    all_tags = np.ones((capacity, tag_dim + 1), dtype=np.float64)  # each candidate's tag, then 1
    all_tags[:, :tag_dim] = candidates.tag
    # The tags again, one row per tag dimension: distances come out as (L, detections, people)
    # with the people innermost (numpy's loops are slow over a length-L innermost axis).
    stacked_tags = np.ascontiguousarray(candidates.tag.T, dtype=np.float64)
    all_scores = candidates.score[:, None].astype(np.float64)
    starts = candidates.starts.tolist()
    weight, tie_break = config.tag_cost_weight, config.tag_tie_break
    threshold, most = config.tag_threshold, config.max_matched_people
    people = 0
    # Arrays are small here: the time goes into numpy calls, so the loop keeps them few.
    for j in joint_order:
        first, stop = starts[j], starts[j + 1]
        if first == stop:
            continue
        tags = all_tags[first:stop]
        matchable = people if people < most else most
        if matchable:
            person_tags = totals[:matchable, :tag_dim] / totals[:matchable, tag_dim:]
            difference = stacked_tags[:, first:stop, None] - person_tags.T[:, None, :]
            np.square(difference, out=difference)
            squared = difference[0]
            for d in range(1, tag_dim):
                squared = squared + difference[d]
            distance = np.sqrt(squared)
            cost = np.rint(distance)  # round half to even, as np.round
            cost *= weight
            cost -= all_scores[first:stop]
            if tie_break:
                cost += tie_break * distance
            rows, cols = linear_sum_assignment(cost)
            matched = distance[rows, cols]
            if max(matched.tolist()) >= threshold:
                accepted = matched < threshold
                rows, cols = rows[accepted], cols[accepted]
            member[cols, j] = rows + first
            if rows.size == stop - first:  # all matched: rows are 0, 1, ...
                totals[cols] += tags
                continue
            totals[cols] += tags[rows]
            unmatched = np.ones(stop - first, dtype=bool)
            unmatched[rows] = False
            new_rows = np.flatnonzero(unmatched)
            tags = tags[new_rows]
            new_members = new_rows + first
        else:
            new_members = range(first, stop)
        # Unmatched candidates start new people, in candidate (descending score) order.
        count = tags.shape[0]
        member[people:people + count, j] = new_members
        totals[people:people + count] = tags
        people += count
    member = member[:people]
    found = member >= 0
    index = np.where(found, member, 0)
    return Grouping(
        y=candidates.y[index] if people else np.zeros((0, num_joints), np.int64),
        x=candidates.x[index] if people else np.zeros((0, num_joints), np.int64),
        score=np.where(found, candidates.score[index], 0.0).astype(np.float32) if people
        else np.zeros((0, num_joints), np.float32),
        found=found,
        tag=(totals[:people, :tag_dim] / np.maximum(totals[:people, tag_dim:], 1)).astype(np.float32),
    )


# --------------------------------------------------------------------------------------------
# 4. Adjust and refine


def quarter_offsets(heatmaps: np.ndarray, joint: np.ndarray, y: np.ndarray,
                    x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy): +0.25 towards the higher of the two neighbours along each axis, -0.25 when the
    lower (or equal) one is ahead; neighbours are clamped at the map border, as the reference."""
    _, height, width = heatmaps.shape
    right = heatmaps[joint, y, np.minimum(x + 1, width - 1)]
    left = heatmaps[joint, y, np.maximum(x - 1, 0)]
    below = heatmaps[joint, np.minimum(y + 1, height - 1), x]
    above = heatmaps[joint, np.maximum(y - 1, 0), x]
    return (np.where(right > left, ADJUST_STEP, -ADJUST_STEP),
            np.where(below > above, ADJUST_STEP, -ADJUST_STEP))


def _rounded_tag_distance(tag_maps: np.ndarray, person_tags: np.ndarray) -> np.ndarray:
    """round(|tag - person tag|) for tags (L, ...) against person tags (L, ...) broadcastable to
    them, in float32 with one fixed order of operations (results compared across code paths must
    be bit-identical)."""
    squared = np.square(tag_maps[0] - person_tags[0])
    for d in range(1, tag_maps.shape[0]):
        squared += np.square(tag_maps[d] - person_tags[d])
    return np.rint(np.sqrt(squared))


def _refine_near_peaks(heatmaps: np.ndarray, joint_tags: np.ndarray, person_tags: np.ndarray, *,
                       joint: np.ndarray, slot: np.ndarray, candidates: Candidates,
                       best: np.ndarray) -> None:
    """Fill ``best`` (flat pixel indices) for the pairs whose answer is provably among the pixels
    above their joint's weakest candidate (see refine_missing); other entries are left alone."""
    num_joints, _, width = heatmaps.shape
    slot_of_joint = np.full(num_joints, -1, dtype=np.int64)
    slot_of_joint[joint] = slot
    useful = np.flatnonzero(slot_of_joint[candidates.joint] >= 0)
    if useful.size == 0:
        return
    c_joint, c_y, c_x = candidates.joint[useful], candidates.y[useful], candidates.x[useful]
    c_tags = joint_tags[:, slot_of_joint[c_joint], c_y * width + c_x]  # (L, C)
    # Exact values of every pair at the peaks of its joint (-inf at other joints' peaks).
    values = heatmaps[c_joint, c_y, c_x][None, :] - _rounded_tag_distance(c_tags[:, None, :],
                                                                          person_tags[:, :, None])
    values[joint[:, None] != c_joint[None, :]] = -np.inf
    bound = values.max(axis=1)
    # The weakest candidate of each joint: the last of its run (candidates are sorted by score).
    floor = np.full(num_joints, np.inf, dtype=np.float32)
    has_candidates = candidates.starts[1:] > candidates.starts[:-1]
    floor[has_candidates] = candidates.score[candidates.starts[1:][has_candidates] - 1]
    narrow = np.flatnonzero(bound > floor[joint])
    for j in np.unique(joint[narrow]).tolist():  # rare: joints with a strong unclaimed peak
        pairs = narrow[joint[narrow] == j]
        heat = heatmaps[j].reshape(-1)
        region = np.flatnonzero(heat > floor[j])  # holds every pixel >= the bound
        region_values = heat[region][None, :] - _rounded_tag_distance(
            joint_tags[:, slot[pairs[0]], region][:, None, :], person_tags[:, pairs, None])
        best[pairs] = region[np.argmax(region_values, axis=1)]


def refine_missing(heatmaps: np.ndarray, tags: TagMaps, grouping: Grouping,
                   workspace: Workspace | None = None,
                   candidates: Candidates | None = None) -> tuple[np.ndarray, ...]:
    """For every missing (person, joint): the pixel maximising ``heatmap - round(tag distance to
    the person's mean tag)`` (the first such pixel in row-major order, as an argmax over the whole
    map). Returns (person, joint, y, x, heatmap value) of those pairs as (M,) arrays; the caller
    keeps the ones with a positive value.

    With the joint's ``candidates`` (peaks) a pair often needs only a few pixels: their exact
    values give a lower bound ``b`` of the answer, and since a pixel's value never exceeds its
    heatmap value, only pixels with heatmap >= b can win. When ``b`` is above the smallest
    candidate score, those pixels are all above that score and are searched alone; otherwise
    the whole map is, one pair at a time (a map-sized buffer stays in the CPU cache).
    """
    workspace = workspace or Workspace()
    _, height, width = heatmaps.shape
    person, joint = np.nonzero(~grouping.found)
    if person.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty, np.zeros(0, np.float32)
    best = np.full(person.size, -1, dtype=np.int64)
    needed, slot = np.unique(joint, return_inverse=True)
    joint_tags = tags.full(needed, workspace).reshape(tags.dim, needed.size, height * width)
    person_tags = grouping.tag[person].T  # (L, pairs)
    if candidates is not None and candidates.joint.size:
        _refine_near_peaks(heatmaps, joint_tags, person_tags, joint=joint, slot=slot,
                           candidates=candidates, best=best)
    rest = np.flatnonzero(best < 0).tolist()
    if rest:
        joint_tags = joint_tags.reshape(tags.dim, needed.size, height, width)
        value = workspace.array("refine_value", (height, width))
        term = workspace.array("refine_term", (height, width))
        slots, joints = slot.tolist(), joint.tolist()
        pair_tags = person_tags.T.tolist()  # Python floats: float32 values, exactly
        for i in rest:  # the same float32 operations as _rounded_tag_distance
            s, tag = slots[i], pair_tags[i]
            np.subtract(joint_tags[0, s], tag[0], out=value)
            np.square(value, out=value)
            for d in range(1, tags.dim):
                np.subtract(joint_tags[d, s], tag[d], out=term)
                np.square(term, out=term)
                np.add(value, term, out=value)
            np.sqrt(value, out=value)
            np.rint(value, out=value)
            np.subtract(heatmaps[joints[i]], value, out=value)
            best[i] = value.argmax()
    y, x = np.divmod(best, width)
    return person, joint, y, x, heatmaps[joint, y, x]


# --------------------------------------------------------------------------------------------
# 5. Whole pipeline


def decode_maps(heatmaps: np.ndarray, tags: np.ndarray, layout: KeypointLayout,
                config: DecoderConfig | None = None, workspace: Workspace | None = None) -> DecodedPeople:
    """Group people from stride-2 heatmaps (K, H, W) and tags (K, H, W, L) (or (K, H, W) for
    L = 1), the tags at the heatmap resolution or at half of it (stride 4, upsampled where read).
    Keypoints are returned in pixel-centre coordinates of the heatmaps."""
    config = config or DecoderConfig()
    workspace = workspace or thread_workspace()
    heatmaps = _check_heatmaps(heatmaps, layout)
    tag_maps = TagMaps(tags, heatmaps.shape)
    padded = PaddedHeatmaps.allocate(workspace, heatmaps.shape, config.nms_kernel // 2)
    padded.maps[...] = heatmaps
    return _decode(padded, tag_maps, layout, config, workspace)


def _decode(heatmaps: PaddedHeatmaps, tags: TagMaps, layout: KeypointLayout, config: DecoderConfig,
            workspace: Workspace) -> DecodedPeople:
    """``decode_maps`` on padded heatmaps."""
    num_joints = layout.num_keypoints
    candidates = _find_candidates(heatmaps, tags, config, workspace)
    grouping = group_candidates(candidates, num_joints, config, config.joint_order_for(layout))
    people = grouping.score.shape[0]
    # Person score as the reference: mean over all K joints of the grouped scores, before refine.
    scores = np.add.reduce(grouping.score, axis=1) / num_joints  # = mean, without its overhead

    maps = heatmaps.maps
    keypoints = np.zeros((people, num_joints, 3), dtype=np.float32)
    person, joint = np.nonzero(grouping.found)
    y, x = grouping.y[person, joint], grouping.x[person, joint]
    dx, dy = quarter_offsets(maps, joint, y, x) if config.adjust else (0.0, 0.0)
    keypoints[person, joint, 0] = x + dx
    keypoints[person, joint, 1] = y + dy
    keypoints[person, joint, 2] = grouping.score[person, joint]

    placed = grouping.found.copy()
    if config.refine and people:
        r_person, r_joint, r_y, r_x, r_value = refine_missing(maps, tags, grouping, workspace, candidates)
        keep = r_value > 0
        r_person, r_joint, r_y, r_x, r_value = (a[keep] for a in (r_person, r_joint, r_y, r_x, r_value))
        # Refined joints always get the quarter-pixel adjust in the reference.
        r_dx, r_dy = quarter_offsets(maps, r_joint, r_y, r_x)
        keypoints[r_person, r_joint, 0] = r_x + r_dx
        keypoints[r_person, r_joint, 1] = r_y + r_dy
        keypoints[r_person, r_joint, 2] = r_value
        placed[r_person, r_joint] = True
    return _finish(keypoints, scores.astype(np.float32), placed, config, layout)


def _finish(keypoints: np.ndarray, scores: np.ndarray, placed: np.ndarray, config: DecoderConfig,
            layout: KeypointLayout) -> DecodedPeople:
    """Put joints without a position at the mean of the person's placed joints, filter people by
    score and OKS, sort by descending score."""
    if keypoints.shape[0]:
        counts = np.maximum(placed.sum(axis=1, keepdims=True), 1)
        centre = (keypoints[..., :2] * placed[..., None]).sum(axis=1) / counts
        keypoints[..., :2] = np.where(placed[..., None], keypoints[..., :2], centre[:, None, :])
    keep = scores >= config.min_person_score
    if not keep.all():
        keypoints, scores = keypoints[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")
    keypoints, scores = keypoints[order], scores[order]
    if config.oks_nms_threshold is not None and scores.size > 1:
        kept = oks_nms(keypoints, scores, layout.sigmas_array(), config.oks_nms_threshold)
        keypoints, scores = keypoints[kept], scores[kept]
    return DecodedPeople(keypoints=np.ascontiguousarray(keypoints, dtype=np.float32),
                         scores=np.ascontiguousarray(scores, dtype=np.float32))


def decode_people(out4: np.ndarray, out2: np.ndarray, layout: KeypointLayout, *,
                  config: DecoderConfig | None = None, transform: ResizeTransform | None = None,
                  flipped_out4: np.ndarray | None = None,
                  flipped_out2: np.ndarray | None = None) -> DecodedPeople:
    """Decode one image's network outputs into people.

    ``out4`` (2K, h, w) and ``out2`` (K, 2h, 2w) (a leading batch of 1 is accepted) are the
    outputs for the network input; ``flipped_out4``/``flipped_out2`` those for the mirrored
    input, required exactly when ``config.flip_test`` is on. Keypoints come back in source-image
    pixels when ``transform`` (from ``preprocess.make_transform``) is given, else in
    network-input pixels; pixel centres in both cases.
    """
    config = config or DecoderConfig()
    has_flipped = flipped_out4 is not None or flipped_out2 is not None
    if config.flip_test and not has_flipped:
        raise ValueError("flip_test is on but no flipped outputs were given: run the network on the "
                         "mirrored input too, or decode with flip_test=False (DecoderConfig.fast())")
    if has_flipped and not config.flip_test:
        raise ValueError("flipped outputs were given but flip_test is off; enable flip_test to use them")
    workspace = thread_workspace()
    heatmaps, tags = _merge(out4, out2, layout, flipped_out4, flipped_out2, workspace=workspace,
                            margin=config.nms_kernel // 2)
    maps_shape = heatmaps.maps.shape
    if transform is not None:
        expected = (transform.input_size[1] // DECODE_STRIDE, transform.input_size[0] // DECODE_STRIDE)
        if maps_shape[1:] != expected:
            raise ValueError(f"stride-2 maps are {maps_shape[2]}x{maps_shape[1]} but the transform's "
                             f"network input {transform.input_size[0]}x{transform.input_size[1]} needs "
                             f"{expected[1]}x{expected[0]}")
    people = _decode(heatmaps, TagMaps.from_stacked(tags, maps_shape), layout, config, workspace)
    keypoints = people.keypoints.copy()
    points = keypoints[..., :2].astype(np.float64)
    points = (transform.map_to_source(points, DECODE_STRIDE) if transform is not None
              else map_to_input(points, DECODE_STRIDE))
    keypoints[..., :2] = points
    return DecodedPeople(keypoints=keypoints, scores=people.scores)


# --------------------------------------------------------------------------------------------
# OKS


def keypoint_areas(keypoints: np.ndarray) -> np.ndarray:
    """Area of the box around each person's keypoints with a positive score, (N,)."""
    placed = keypoints[..., 2] > 0
    big = np.finfo(np.float64).max
    xy = keypoints[..., :2].astype(np.float64)
    low = np.where(placed[..., None], xy, big).min(axis=1)
    high = np.where(placed[..., None], xy, -big).max(axis=1)
    size = np.where(placed.any(axis=1)[:, None], high - low, 0.0)
    return size[:, 0] * size[:, 1]


def oks(reference: np.ndarray, others: np.ndarray, sigmas: np.ndarray,
        reference_area: float, other_areas: np.ndarray) -> np.ndarray:
    """Object keypoint similarity of one person (K, 3) to others (M, K, 3), over the joints with a
    positive score in both; people sharing no such joint have similarity 0."""
    variances = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
    squared = ((others[..., :2] - reference[None, :, :2]).astype(np.float64) ** 2).sum(axis=-1)
    scale = (reference_area + np.asarray(other_areas, dtype=np.float64)) / 2.0 + np.spacing(1)
    similarity = np.exp(-squared / variances[None, :] / scale[:, None] / 2.0)
    shared = (reference[None, :, 2] > 0) & (others[..., 2] > 0)
    count = shared.sum(axis=1)
    return np.where(count > 0, (similarity * shared).sum(axis=1) / np.maximum(count, 1), 0.0)


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, sigmas: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS: keep the best person, drop the others with OKS > threshold to it, repeat.
    Returns indices of the kept people in descending score order."""
    areas = keypoint_areas(keypoints)
    order = np.argsort(-scores, kind="stable")
    kept = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(best)
        similarity = oks(keypoints[best], keypoints[rest], sigmas, areas[best], areas[rest])
        order = rest[similarity <= threshold]
    return np.asarray(kept, dtype=np.int64)


def _check_heatmaps(heatmaps: np.ndarray, layout: KeypointLayout) -> np.ndarray:
    heatmaps = np.asarray(heatmaps)
    k = layout.num_keypoints
    if heatmaps.ndim != 3 or heatmaps.shape[0] != k:
        raise ValueError(f"heatmaps must have shape ({k}, H, W) for layout {layout.name}, "
                         f"got {heatmaps.shape}")
    if not np.issubdtype(heatmaps.dtype, np.floating):
        raise TypeError(f"heatmaps must be floating point, got {heatmaps.dtype}")
    return np.ascontiguousarray(heatmaps, dtype=np.float32)
