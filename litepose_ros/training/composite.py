"""Copy-paste compositing: labelled people cut out of training images and pasted onto a sample.

Everything happens in the source-image space of the sample, before the affine augmentation, so
the pasted pixels, the moved keypoints and the loss mask go through the same single warp.
Coordinates follow the project convention: the centre of the top-left pixel is (0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from litepose_ros.training.augment import jitter_colours

# Alpha above which a pasted pixel hides what was under it (joints there become invisible).
OPAQUE = 0.5


@dataclass(frozen=True)
class CutOut:
    """One person ready to paste: pixels, a soft alpha and the keypoints in cut-out pixels."""

    pixels: np.ndarray  # (h, w, 3) uint8 RGB
    alpha: np.ndarray  # (h, w) uint8, 255 = opaque (a quarter of float32's memory in the cache)
    joints: np.ndarray  # (K, 3): x, y, v
    height: float  # the person's box height in cut-out pixels

    @property
    def nbytes(self) -> int:
        return self.pixels.nbytes + self.alpha.nbytes + self.joints.nbytes


def person_box(joints: np.ndarray, bbox: np.ndarray | None) -> np.ndarray:
    """(x, y, w, h) of a person: the annotation's box, else the labelled keypoints' extent."""
    if bbox is not None and bbox[2] > 1 and bbox[3] > 1:
        return np.asarray(bbox, dtype=np.float64)
    labelled = joints[joints[:, 2] > 0, :2]
    x0, y0 = labelled.min(0)
    x1, y1 = labelled.max(0)
    return np.array([x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0)])


def cut_out(
    image: np.ndarray,
    joints: np.ndarray,
    box: np.ndarray,
    *,
    shape: str,
    margin: float,
    feather: float,
    max_height: float,
) -> CutOut:
    """Cut one person out of ``image`` (RGB), downscaled so its box is at most ``max_height`` tall.

    The alpha is 1 inside the shape (keypoints' convex hull or box) dilated by margin x size,
    falling linearly to 0 over feather x size around that line (size = the box's longer side).
    """
    height, width = image.shape[:2]
    x, y, w, h = box
    size = max(w, h)
    pad = (margin + feather) * size + 2.0
    ix0, iy0 = max(0, int(np.floor(x - pad))), max(0, int(np.floor(y - pad)))
    ix1, iy1 = min(width, int(np.ceil(x + w + pad))), min(height, int(np.ceil(y + h + pad)))
    region = image[iy0:iy1, ix0:ix1]
    # Downscale once here (cached) rather than at every paste: pastes are rarely larger.
    zoom = min(1.0, max_height / h)
    out_w, out_h = max(1, round((ix1 - ix0) * zoom)), max(1, round((iy1 - iy0) * zoom))
    if (out_w, out_h) != (ix1 - ix0, iy1 - iy0):
        region = cv2.resize(region, (out_w, out_h), interpolation=cv2.INTER_AREA)
    zx, zy = out_w / (ix1 - ix0), out_h / (iy1 - iy0)
    moved = joints.astype(np.float64).copy()
    moved[:, 0] = (moved[:, 0] - ix0 + 0.5) * zx - 0.5
    moved[:, 1] = (moved[:, 1] - iy0 + 0.5) * zy - 0.5
    moved[moved[:, 2] <= 0] = 0.0

    inside = np.zeros((out_h, out_w), dtype=np.uint8)
    if shape == "hull":
        points = moved[moved[:, 2] > 0, :2]
        hull = cv2.convexHull(np.round(points * 16).astype(np.int32))
        cv2.fillConvexPoly(inside, hull, 1, lineType=cv2.LINE_8, shift=4)
    else:
        corners = np.array([(x - ix0) * zx, (y - iy0) * zy, (x + w - ix0) * zx, (y + h - iy0) * zy])
        bx0, by0, bx1, by1 = np.round(corners).astype(int)
        inside[max(by0, 0) : max(by1, by0 + 1), max(bx0, 0) : max(bx1, bx0 + 1)] = 1
    # Distance to the shape (0 inside) gives the dilation and the feathered edge in one step.
    distance = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 3)
    reach, soft = margin * size * zoom, feather * size * zoom
    if soft > 0:
        alpha = np.clip((reach - distance) / soft + 0.5, 0.0, 1.0)
    else:
        alpha = (distance <= reach).astype(np.float32)
    return CutOut(
        pixels=np.ascontiguousarray(region),
        alpha=(alpha * 255.0 + 0.5).astype(np.uint8),
        joints=moved,
        height=float(h * zy),
    )


@dataclass(frozen=True)
class PasteDraw:
    """The random choices of one paste (drawn in a fixed order, whatever the settings)."""

    height: float  # target box height in pixels of the pasted-onto image
    flip: bool
    colour: tuple[float, float, float]  # brightness, contrast, saturation factors
    centre: tuple[float, float]  # fraction of the image width / height where the cut-out centre goes


def draw_paste(
    rng: np.random.Generator, height_range: tuple[float, float], flip_probability: float, colour_jitter: float
) -> PasteDraw:
    low, high = np.log(height_range[0]), np.log(height_range[1])
    height = float(np.exp(rng.uniform(low, high)))
    flip = bool(rng.random() < flip_probability)
    colour = tuple(float(f) for f in rng.uniform(1.0 - colour_jitter, 1.0 + colour_jitter, size=3))
    centre = tuple(float(c) for c in rng.random(2))
    return PasteDraw(height=height, flip=flip, colour=colour, centre=centre)  # type: ignore[arg-type]


def paste(
    image: np.ndarray, cut: CutOut, draw: PasteDraw, flip_index: tuple[int, ...]
) -> tuple[np.ndarray, tuple[slice, slice], np.ndarray]:
    """Blend ``cut`` into ``image`` (in place) as ``draw`` says.

    Returns the pasted person's joints (K, 3) in image pixels (outside the image: v = 0), and the
    image window and alpha of the paste (for occlusion and the loss mask).
    """
    img_h, img_w = image.shape[:2]
    zoom = min(draw.height, img_h) / cut.height
    src_h, src_w = cut.alpha.shape
    out_w, out_h = max(1, round(src_w * zoom)), max(1, round(src_h * zoom))
    interpolation = cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR
    pixels = cv2.resize(cut.pixels, (out_w, out_h), interpolation=interpolation)
    alpha = cv2.resize(cut.alpha, (out_w, out_h), interpolation=interpolation).astype(np.float32) / 255.0
    joints = cut.joints.copy()
    joints[:, 0] = (joints[:, 0] + 0.5) * (out_w / src_w) - 0.5
    joints[:, 1] = (joints[:, 1] + 0.5) * (out_h / src_h) - 0.5
    if draw.flip:
        pixels, alpha = pixels[:, ::-1], alpha[:, ::-1]
        joints[:, 0] = out_w - 1 - joints[:, 0]
        # A mirrored left wrist is a right wrist.
        joints = joints[list(flip_index)]
    if draw.colour != (1.0, 1.0, 1.0):
        pixels = jitter_colours(pixels, *draw.colour)
    ox = int(round(draw.centre[0] * img_w - out_w / 2))
    oy = int(round(draw.centre[1] * img_h - out_h / 2))
    joints[:, 0] += ox
    joints[:, 1] += oy
    labelled = joints[:, 2] > 0
    pixel = np.floor(joints[:, :2] + 0.5)
    inside = (pixel[:, 0] >= 0) & (pixel[:, 0] < img_w) & (pixel[:, 1] >= 0) & (pixel[:, 1] < img_h)
    joints[labelled & ~inside] = 0.0

    x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + out_w, img_w), min(oy + out_h, img_h)
    window = (slice(y0, y1), slice(x0, x1))
    if x1 <= x0 or y1 <= y0:
        return joints, window, np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), dtype=np.float32)
    part = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
    weight = alpha[part][..., None]
    under = image[window].astype(np.float32)
    image[window] = (under + weight * (pixels[part].astype(np.float32) - under) + 0.5).astype(np.uint8)
    return joints, window, alpha[part]


def occlude(joints: np.ndarray, window: tuple[slice, slice], alpha: np.ndarray) -> np.ndarray:
    """Joints (P, K, 3) with those under the opaque part of a paste set invisible (v = 0)."""
    if joints.size == 0 or alpha.size == 0:
        return joints
    pixel = np.floor(joints[..., :2] + 0.5).astype(np.int64)
    col = pixel[..., 0] - window[1].start
    row = pixel[..., 1] - window[0].start
    height, width = alpha.shape
    hit = (joints[..., 2] > 0) & (col >= 0) & (col < width) & (row >= 0) & (row < height)
    covered = np.zeros(hit.shape, dtype=bool)
    covered[hit] = alpha[row[hit], col[hit]] > OPAQUE
    if not covered.any():
        return joints
    joints = joints.copy()
    joints[covered, 2] = 0.0
    return joints
