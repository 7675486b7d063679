"""Image preprocessing: the aspect-preserving resize of the reference test pipeline, its exact
inverse, and ImageNet normalisation to a float32 NCHW batch.

Coordinate conventions (everything in this module, and everything the project outputs):

* Pixel-centre coordinates: the centre of the top-left pixel of an image is (0.0, 0.0), x grows to
  the right and y downwards (OpenCV and sensor_msgs/CameraInfo convention). The top-left *corner*
  of the image is therefore (-0.5, -0.5) and the image covers [-0.5, width - 0.5].
* The resize is area-exact: a uniform scale ``r`` of the image *area* about its corner, plus a
  translation that centres the content in the network input. In pixel-centre coordinates
  ``input = r * source + offset`` with ``offset = 0.5 * r - 0.5 + pad`` and ``pad`` the (possibly
  fractional) empty margin on that axis. This is the mapping cv2.resize and a bilinear
  ``align_corners=False`` resize use, so image content and coordinates stay registered.
* Output maps: a map of stride ``s`` (network input pixels per map pixel) has map pixel ``u``
  covering input pixels ``[s*u, s*u + s)``, so its centre is input coordinate ``s*u + (s-1)/2``.

The reference implementation (HigherHRNet's resize) places the image centre with integer rounding
and reads map positions as corner coordinates (its "+0.5"); coordinates produced here equal the
reference's minus half a source pixel, i.e. the same points in the pixel-centre convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# ImageNet statistics the network was trained with, RGB order, for pixel values scaled to [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The reference rounds the long side of the network input up to a multiple of this.
SIZE_MULTIPLE = 64
# The network's output stride: the short side (the input size) must be a multiple of it.
NETWORK_MULTIPLE = 16

COLOR_ORDERS = ("bgr", "rgb")
# Images whose long side is more than this many times their short side are refused: the network
# input keeps the aspect ratio with the short side at the input size, so a 640x1 frame (line-scan
# camera, bad ROI, driver glitch) would become an enormous input (seconds per frame, GiB of memory).
# 8:1 covers every camera aspect in use (ultra-wide 32:9 and stitched panoramas included).
MAX_ASPECT_RATIO = 8


class ImageSizeError(ValueError):
    """An image the network cannot take: its aspect ratio would make the network input too large."""


def max_network_side(input_size: int, size_multiple: int = SIZE_MULTIPLE) -> int:
    """The longest network input side accepted for a network input short side of ``input_size``:
    ``MAX_ASPECT_RATIO`` times it, rounded up to a multiple of ``size_multiple``."""
    return _round_up(MAX_ASPECT_RATIO * int(input_size), int(size_multiple)) * int(size_multiple)


def check_aspect_ratio(width: int, height: int, input_size: int | None = None) -> None:
    """Raise ImageSizeError when a ``width`` x ``height`` image is too thin for the network
    (long side more than ``MAX_ASPECT_RATIO`` times the short side); cheap, no pixels needed."""
    width, height = int(width), int(height)
    long_side, short_side = max(width, height), min(width, height)
    if short_side >= 1 and long_side <= MAX_ASPECT_RATIO * short_side:
        return
    ratio = f"{long_side / short_side:.0f}:1" if short_side >= 1 else "infinite"
    bound = (
        f" (the network input long side would exceed {max_network_side(input_size)} px for input "
        f"size {input_size})"
        if input_size
        else ""
    )
    raise ImageSizeError(
        f"image is {width} x {height} pixels: aspect ratio {ratio}, above the limit of {MAX_ASPECT_RATIO}:1"
        f"{bound}; crop or bin the image to at most {MAX_ASPECT_RATIO}:1 (check the camera's region of "
        f"interest and driver settings: a line-scan or glitched frame is not a camera image)"
    )


@dataclass(frozen=True)
class ResizeTransform:
    """Source image to network input: ``input = scale * source + offset`` (pixel centres).

    ``source_size`` and ``input_size`` are (width, height) in pixels; ``offset`` is (x, y) in
    network-input pixels. The same scale applies to both axes, so the aspect ratio is kept.
    """

    source_size: tuple[int, int]
    input_size: tuple[int, int]
    scale: float
    offset: tuple[float, float]

    @property
    def matrix(self) -> np.ndarray:
        """2x3 affine matrix (float64) from source to network-input pixel coordinates."""
        return np.array([[self.scale, 0.0, self.offset[0]], [0.0, self.scale, self.offset[1]]])

    @property
    def inverse_matrix(self) -> np.ndarray:
        """2x3 affine matrix (float64) from network-input to source pixel coordinates."""
        inv = 1.0 / self.scale
        return np.array([[inv, 0.0, -self.offset[0] * inv], [0.0, inv, -self.offset[1] * inv]])

    def source_to_input(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2) source pixel coordinates to network-input pixel coordinates."""
        points = _as_points(points)
        return points * self.scale + np.asarray(self.offset)

    def input_to_source(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2) network-input pixel coordinates back to source pixel coordinates."""
        points = _as_points(points)
        return (points - np.asarray(self.offset)) / self.scale

    def map_to_source(self, points: np.ndarray, stride: int) -> np.ndarray:
        """Map (..., 2) pixel-centre coordinates of an output map of the given stride to source
        pixels (fractional map positions, e.g. after the quarter-pixel adjust, are allowed)."""
        return self.input_to_source(map_to_input(points, stride))

    def source_to_map(self, points: np.ndarray, stride: int) -> np.ndarray:
        """Map (..., 2) source pixel coordinates to pixel-centre coordinates of a map of the given
        stride (the inverse of map_to_source)."""
        return input_to_map(self.source_to_input(points), stride)


def map_to_input(points: np.ndarray, stride: int) -> np.ndarray:
    """Pixel-centre coordinates on a stride-``stride`` map to network-input pixel coordinates."""
    _check_stride(stride)
    return _as_points(points) * stride + (stride - 1) / 2.0


def input_to_map(points: np.ndarray, stride: int) -> np.ndarray:
    """Network-input pixel coordinates to pixel-centre coordinates on a stride-``stride`` map."""
    _check_stride(stride)
    return (_as_points(points) - (stride - 1) / 2.0) / stride


def network_input_size(
    width: int, height: int, input_size: int, size_multiple: int = SIZE_MULTIPLE
) -> tuple[int, int]:
    """(width, height) of the network input for a source image of the given size.

    The short side becomes ``input_size`` (a multiple of 16, the network's stride; the released
    sizes 256, 448 and 512 are multiples of 64); the long side is scaled by the same factor and
    rounded up to a multiple of ``size_multiple`` (exact integer arithmetic, no float surprises).
    Images thinner than ``MAX_ASPECT_RATIO``:1 raise ImageSizeError (``check_aspect_ratio``), so the
    long side is at most ``max_network_side(input_size)``.
    """
    _check_sizes(width, height, input_size, size_multiple)
    check_aspect_ratio(width, height, input_size)
    if width <= height:
        return input_size, _round_up(input_size * height, width * size_multiple) * size_multiple
    return _round_up(input_size * width, height * size_multiple) * size_multiple, input_size


def make_transform(
    width: int, height: int, input_size: int, size_multiple: int = SIZE_MULTIPLE
) -> ResizeTransform:
    """The resize transform for a ``width`` x ``height`` source image (see the module docstring)."""
    input_w, input_h = network_input_size(width, height, input_size, size_multiple)
    scale = input_size / min(width, height)
    # Centre the scaled image area in the input; the margin is only on the long axis.
    offset_x = 0.5 * scale - 0.5 + (input_w - scale * width) / 2.0
    offset_y = 0.5 * scale - 0.5 + (input_h - scale * height) / 2.0
    return ResizeTransform(
        source_size=(int(width), int(height)),
        input_size=(input_w, input_h),
        scale=float(scale),
        offset=(float(offset_x), float(offset_y)),
    )


def check_image(image: np.ndarray) -> None:
    """Raise a clear error unless ``image`` is an (H, W, 3) uint8 array with H, W >= 1."""
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"image must be a numpy array (H, W, 3) of uint8, got {type(image).__name__}; "
            "read images with cv2.imread or convert with np.asarray"
        )
    if image.dtype != np.uint8:
        raise TypeError(
            f"image must have dtype uint8, got {image.dtype}; convert 0..1 float images "
            "with (image * 255).round().astype(np.uint8)"
        )
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        raise ValueError(
            f"image has shape {image.shape} (one channel); the network needs 3 colour "
            "channels: convert with cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)"
        )
    if image.ndim == 3 and image.shape[2] == 4:
        raise ValueError(
            f"image has shape {image.shape} (4 channels); drop the alpha channel with "
            "cv2.cvtColor(image, cv2.COLOR_BGRA2BGR) (or RGBA2RGB)"
        )
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image is empty: shape {image.shape}")


def resize_image(image: np.ndarray, transform: ResizeTransform) -> np.ndarray:
    """Warp an (H, W, C) image into the network input frame; the margin is filled with black
    (zeros), bilinear interpolation, as the reference does."""
    if (image.shape[1], image.shape[0]) != transform.source_size:
        raise ValueError(
            f"image size {image.shape[1]}x{image.shape[0]} does not match the transform's "
            f"source size {transform.source_size[0]}x{transform.source_size[1]}"
        )
    return cv2.warpAffine(
        image,
        transform.matrix,
        transform.input_size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def _normalisation_table() -> np.ndarray:
    """(3, 256) float32: the normalised value of each uint8 level, per RGB channel, computed in
    float64 once (within half a float32 ulp of ``(x / 255 - mean) / std``)."""
    levels = np.arange(256, dtype=np.float64) / 255.0
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float64)[:, None]
    std = np.asarray(IMAGENET_STD, dtype=np.float64)[:, None]
    return np.ascontiguousarray(((levels[None] - mean) / std).astype(np.float32))


# One (1, 256) row per RGB channel, the layout cv2.LUT takes.
_NORMALISATION_TABLE = _normalisation_table()[:, None, :]


def normalize_image(image: np.ndarray, color_order: str = "bgr") -> np.ndarray:
    """(H, W, 3) uint8 image in ``color_order`` -> (1, 3, H, W) float32 RGB with ImageNet
    mean/std normalisation.

    One pass per channel: the image is split into its planes (uint8) and each plane is looked up
    in a 256-entry table straight into its place in the output batch (the channel reversal for
    BGR is in which plane goes where); about 10x faster than float arithmetic over the image.
    """
    check_image(image)
    bgr = _check_color_order(color_order) == "bgr"
    height, width = image.shape[:2]
    batch = np.empty((1, 3, height, width), dtype=np.float32)
    planes = cv2.split(image if image.flags.c_contiguous else np.ascontiguousarray(image))
    for channel in range(3):
        cv2.LUT(planes[2 - channel if bgr else channel], _NORMALISATION_TABLE[channel], dst=batch[0, channel])
    return batch


def preprocess_image(
    image: np.ndarray, input_size: int, color_order: str = "bgr", size_multiple: int = SIZE_MULTIPLE
) -> tuple[np.ndarray, ResizeTransform]:
    """Resize and normalise one image for the network.

    Returns the (1, 3, H, W) float32 RGB batch and the transform that maps network-input (and,
    with its stride, output-map) coordinates back to the pixels of ``image``.
    """
    check_image(image)
    _check_color_order(color_order)
    transform = make_transform(image.shape[1], image.shape[0], input_size, size_multiple)
    return normalize_image(resize_image(image, transform), color_order), transform


def _round_up(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _as_points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim == 0 or points.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2) holding (x, y), got {points.shape}")
    return points


def _check_stride(stride: int) -> None:
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")


def _check_sizes(width: int, height: int, input_size: int, size_multiple: int) -> None:
    if int(width) < 1 or int(height) < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if int(size_multiple) < 1 or int(size_multiple) % NETWORK_MULTIPLE:
        raise ValueError(
            f"size_multiple must be a positive multiple of {NETWORK_MULTIPLE}, got {size_multiple!r}"
        )
    if int(input_size) < NETWORK_MULTIPLE or int(input_size) % NETWORK_MULTIPLE:
        raise ValueError(
            f"input size {input_size} must be a positive multiple of {NETWORK_MULTIPLE} "
            f"(e.g. 256 for XS, 448 for S and M, 512 for L)"
        )


def _check_color_order(color_order: str) -> str:
    if color_order not in COLOR_ORDERS:
        raise ValueError(f"color_order must be 'bgr' (OpenCV) or 'rgb', got {color_order!r}")
    return color_order
