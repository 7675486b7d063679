"""Training augmentation: one random affine (rotation, scale, translation, optional flip).

All coordinates follow the project convention: the centre of the top-left pixel is (0, 0).
The whole augmentation is a single 2x3 matrix from source pixels to crop pixels; the matrices
for the stride-2 and stride-4 outputs are derived from it, so image, masks and joints always agree.
A stride-s output pixel u covers crop pixels [u*s, (u+1)*s), so crop x maps to (x + 0.5) / s - 0.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from litepose_ros.layouts import KeypointLayout


@dataclass(frozen=True)
class AffineParams:
    """One draw of the augmentation; identity-like values give a centred full-image crop."""

    rotation_deg: float = 0.0
    scale: float = 1.0  # crop side = reference side (short or long) x scale
    translate: tuple[float, float] = (0.0, 0.0)  # crop centre shift in source pixels
    flip: bool = False


def sample_affine_params(
    rng: np.random.Generator,
    image_size: tuple[int, int],
    *,
    max_rotation: float,
    min_scale: float,
    max_scale: float,
    scale_type: str,
    max_translate: float,
    flip_probability: float,
) -> AffineParams:
    """Draw rotation, scale, translation and flip with the recipe's ranges from ``rng``."""
    width, height = image_size
    scale = float(rng.uniform(min_scale, max_scale))
    crop_side = _reference_side(width, height, scale_type) * scale
    # max_translate is in pixels per 200 pixels of crop side (the reference's scale unit).
    limit = max_translate * crop_side / 200.0
    tx, ty = (float(v) for v in rng.uniform(-limit, limit, size=2))
    rotation = float(rng.uniform(-max_rotation, max_rotation))
    flip = bool(rng.random() < flip_probability)
    return AffineParams(rotation_deg=rotation, scale=scale, translate=(tx, ty), flip=flip)


def _reference_side(width: int, height: int, scale_type: str) -> float:
    if scale_type == "short":
        return float(min(width, height))
    if scale_type == "long":
        return float(max(width, height))
    raise ValueError(f"scale_type must be 'short' or 'long', got {scale_type!r}")


def crop_matrix(
    image_size: tuple[int, int], output_size: int, params: AffineParams, scale_type: str = "short"
) -> np.ndarray:
    """2x3 matrix mapping source pixel coordinates to the square crop of side ``output_size``.

    The crop is a square of side (reference side x scale) centred on the image centre plus the
    translation; its content is turned counter-clockwise (as displayed) by rotation_deg, then
    mirrored left-right when params.flip.
    """
    width, height = image_size
    crop_side = _reference_side(width, height, scale_type) * params.scale
    zoom = output_size / crop_side
    # Work in pixel-edge coordinates (pixel centres at +0.5), where scaling is exact.
    centre = np.array([width / 2.0 + params.translate[0], height / 2.0 + params.translate[1]])
    angle = math.radians(params.rotation_deg)
    cos, sin = math.cos(angle), math.sin(angle)
    # With y pointing down this turns the content counter-clockwise as displayed.
    rotation = np.array([[cos, sin], [-sin, cos]])
    linear = zoom * rotation
    offset = output_size / 2.0 - linear @ centre
    edge = np.concatenate([linear, offset[:, None]], axis=1)
    if params.flip:
        edge = np.array([[-1.0, 0.0, output_size], [0.0, 1.0, 0.0]]) @ np.vstack([edge, [0, 0, 1]])
    return _edge_to_centre(edge)


def _edge_to_centre(edge: np.ndarray) -> np.ndarray:
    """Convert an affine map between pixel-edge coordinates to pixel-centre coordinates."""
    # x_centre' = A (x_centre + 0.5) + b - 0.5
    linear, offset = edge[:, :2], edge[:, 2]
    return np.concatenate([linear, (offset + linear @ np.array([0.5, 0.5]) - 0.5)[:, None]], axis=1)


def downscale_matrix(matrix: np.ndarray, stride: int) -> np.ndarray:
    """The same map onto an output of stride ``stride``: crop x -> (x + 0.5) / stride - 0.5."""
    out = matrix / stride
    out[:, 2] += 0.5 / stride - 0.5
    return out


def apply_to_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Transform (..., 2) points with a 2x3 affine matrix."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def flip_joints(joints: np.ndarray, layout: KeypointLayout) -> np.ndarray:
    """Swap left and right joints (axis -2 of a (..., K, C) array) after a mirror."""
    return joints[..., list(layout.flip_index), :]


def warp_image(image: np.ndarray, matrix: np.ndarray, output_size: int) -> np.ndarray:
    """Warp an HxWx3 image into the square crop; outside the image is black."""
    return cv2.warpAffine(
        image,
        matrix,
        (output_size, output_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def warp_mask(mask: np.ndarray, matrix: np.ndarray, output_size: int) -> np.ndarray:
    """Warp a loss mask (1 = use, 0 = ignore) and threshold it at 0.5.

    Outside the image counts as valid background: the estimator pads images at inference, so
    the network should learn that padding holds no people.
    """
    warped = cv2.warpAffine(
        mask.astype(np.float32),
        matrix,
        (output_size, output_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=1.0,
    )
    return (warped > 0.5).astype(np.float32)


def jitter_colours(
    image_rgb: np.ndarray,
    brightness: float,
    contrast: float,
    saturation: float,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 RGB image with saturation, contrast and brightness scaled by these factors (1 = same).

    Saturation blends each pixel with its grey, contrast blends with the mean grey (of the
    ``valid`` pixels when given: a crop's black border must not pull the mean), brightness
    scales. The three are one linear map, applied in a single saturating OpenCV pass (fast).
    """
    grey = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
    mask = None if valid is None or not valid.any() else valid.astype(np.uint8)
    mean = cv2.mean(grey, mask=mask)[0]
    # b * (c * (s * x + (1 - s) * grey) + (1 - c) * mean)
    grey_rgb = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(
        image_rgb,
        brightness * contrast * saturation,
        grey_rgb,
        brightness * contrast * (1.0 - saturation),
        brightness * (1.0 - contrast) * mean,
    )


def sample_photometric(
    rng: np.random.Generator,
    *,
    brightness: float,
    contrast: float,
    saturation: float,
    blur_probability: float,
    max_blur_sigma: float,
) -> tuple[tuple[float, float, float], float]:
    """Draw the colour factors (brightness, contrast, saturation) and a blur sigma (0 = no blur)."""
    factors = tuple(
        float(rng.uniform(1.0 - amount, 1.0 + amount)) for amount in (brightness, contrast, saturation)
    )
    blur = bool(rng.random() < blur_probability)
    sigma = float(rng.uniform(0.3, max_blur_sigma))
    return factors, (sigma if blur else 0.0)  # type: ignore[return-value]


def apply_photometric(
    crop_rgb: np.ndarray, inside: np.ndarray, factors: tuple[float, float, float], blur_sigma: float
) -> np.ndarray:
    """Colour jitter and blur of a warped crop; ``inside`` marks the pixels that show the image
    (the black border stays black, like the estimator's padding)."""
    if factors != (1.0, 1.0, 1.0):
        crop_rgb = jitter_colours(crop_rgb, *factors, valid=inside)
        crop_rgb[~inside] = 0
    if blur_sigma > 0:
        crop_rgb = cv2.GaussianBlur(crop_rgb, (0, 0), blur_sigma)
    return crop_rgb
