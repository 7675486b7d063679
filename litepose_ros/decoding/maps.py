"""Step 1: network outputs to heatmaps and tags at stride 2 (upsampling, flip merge, padding)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from litepose_ros.decoding.memory import Workspace
from litepose_ros.layouts import KeypointLayout


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
            raise ValueError(
                f"tags must have shape (K, H, W, L) with L = 1 or 2 (or (K, H, W)) at the "
                f"heatmap size {full} or half of it {half}, got {tags.shape}"
            )
        if not np.issubdtype(tags.dtype, np.floating):
            raise TypeError(f"tags must be floating point, got {tags.dtype}")
        if tags.shape[:3] != full and (height % 2 or width % 2):
            raise ValueError(
                f"half-resolution tags need an even heatmap size, got {height}x{width}: "
                f"give the tags at the heatmap size"
            )
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
        return self.buffer[:, m : height - m, m : width - m]

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


def merge_outputs(
    out4: np.ndarray,
    out2: np.ndarray,
    layout: KeypointLayout,
    flipped_out4: np.ndarray | None = None,
    flipped_out2: np.ndarray | None = None,
    *,
    workspace: Workspace | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Combine the network outputs of one image into heatmaps on the stride-2 grid and tags.

    ``out4`` is (2K, h, w) or (1, 2K, h, w): K heatmaps then K tag maps at stride 4; ``out2`` is
    (K, 2h, 2w) or (1, K, 2h, 2w). The flipped outputs, when given, are the network's outputs
    for the horizontally mirrored input. Returns heatmaps (K, 2h, 2w) float32 and the stride-4
    tags (K, h, w, L) float32 with L = 1, or 2 with the flip test (``decode_maps`` upsamples
    tags only where it reads them, which gives the same values as upsampling them all). With a
    ``workspace`` the results live in its buffers (valid until its next use); without the flip
    test the tags are a view of ``out4``.
    """
    heatmaps, tags = merge_padded(
        out4, out2, layout, flipped_out4, flipped_out2, workspace=workspace or Workspace(), margin=0
    )
    return heatmaps.buffer, tags.transpose(1, 2, 3, 0)


def merge_padded(
    out4: np.ndarray,
    out2: np.ndarray,
    layout: KeypointLayout,
    flipped_out4: np.ndarray | None,
    flipped_out2: np.ndarray | None,
    *,
    workspace: Workspace,
    margin: int,
) -> tuple[PaddedHeatmaps, np.ndarray]:
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
        raise ValueError(
            f"flipped outputs {flipped_out4.shape}, {flipped_out2.shape} differ in shape "
            f"from the outputs {out4.shape}, {out2.shape}"
        )
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


def merge_full_resolution(
    out4: np.ndarray,
    out2: np.ndarray,
    layout: KeypointLayout,
    flipped_out4: np.ndarray | None = None,
    flipped_out2: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (K, H, W) and tags (K, H, W, L) at the network input resolution (stride 1), as
    the reference's evaluation builds them: each output (averaged with the mirrored one's, joints
    swapped, under the flip test) upsampled bilinearly (half-pixel centres) to the input size,
    the stride-4 and stride-2 heatmaps averaged, and the tags stacked (L = 2 with the flip test).
    """
    k = layout.num_keypoints
    out4, out2 = _check_outputs(out4, out2, k, "")
    if (flipped_out4 is None) != (flipped_out2 is None):
        raise ValueError("give both flipped outputs (stride 4 and stride 2) or neither")
    _, height, width = out4.shape
    size = (4 * width, 4 * height)
    tag_count = 1 if flipped_out4 is None else 2
    heatmaps = np.empty((k, 4 * height, 4 * width), np.float32)
    tags = np.empty((k, 4 * height, 4 * width, tag_count), np.float32)
    heat4, heat2 = out4[:k], out2
    tag_sources = [out4[k:]]
    if flipped_out4 is not None:
        flipped_out4, flipped_out2 = _check_outputs(flipped_out4, flipped_out2, k, "flipped ")
        if flipped_out4.shape != out4.shape or flipped_out2.shape != out2.shape:
            raise ValueError(
                f"flipped outputs {flipped_out4.shape}, {flipped_out2.shape} differ in shape "
                f"from the outputs {out4.shape}, {out2.shape}"
            )
        flip = np.asarray(layout.flip_index)
        # Mirror back and swap left/right: the mirrored input's channel flip[j] is joint j.
        heat4 = (heat4 + flipped_out4[flip][..., ::-1]) / 2
        heat2 = (heat2 + flipped_out2[flip][..., ::-1]) / 2
        tag_sources.append(np.ascontiguousarray(flipped_out4[k:][flip][..., ::-1]))
    heat4, heat2 = np.ascontiguousarray(heat4), np.ascontiguousarray(heat2)
    for j in range(k):
        up4 = cv2.resize(heat4[j], size, interpolation=cv2.INTER_LINEAR)
        up2 = cv2.resize(heat2[j], size, interpolation=cv2.INTER_LINEAR)
        cv2.addWeighted(up4, 0.5, up2, 0.5, 0.0, dst=heatmaps[j])
        for slot, source in enumerate(tag_sources):
            tags[j, :, :, slot] = cv2.resize(source[j], size, interpolation=cv2.INTER_LINEAR)
    return heatmaps, tags


def _check_outputs(out4: np.ndarray, out2: np.ndarray, k: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, given, channels in (
        (f"{what}stride-4 output", out4, 2 * k),
        (f"{what}stride-2 output", out2, k),
    ):
        array = np.asarray(given)
        if array.ndim == 4:
            if array.shape[0] != 1:
                raise ValueError(f"{name} has batch size {array.shape[0]}; decode one image at a time")
            array = array[0]
        if array.ndim != 3 or array.shape[0] != channels:
            raise ValueError(
                f"{name} must have shape ({channels}, H, W) (or with a batch of 1) for "
                f"{k} joints, got {np.shape(array)}; is the model for another layout?"
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"{name} must be floating point, got {array.dtype}")
        arrays.append(np.ascontiguousarray(array, dtype=np.float32))  # OpenCV needs plain rows
    out4, out2 = arrays
    if out2.shape[1:] != (2 * out4.shape[1], 2 * out4.shape[2]):
        raise ValueError(f"stride-2 maps {out2.shape[1:]} must be twice the stride-4 maps {out4.shape[1:]}")
    return out4, out2
