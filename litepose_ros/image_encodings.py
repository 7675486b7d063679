"""ROS image payloads to numpy colour images, without ROS and without cv_bridge.

Two entry points, both pure numpy/OpenCV so the node runs on any ROS 2 distribution without
cv_bridge (whose numpy/OpenCV pins break newer systems):

- ``raw_image_to_array``: the fields of a sensor_msgs/Image (data, encoding, height, width,
  step, is_bigendian) to an ``(H, W, 3)`` uint8 array;
- ``compressed_image_to_array``: the fields of a sensor_msgs/CompressedImage (data, format),
  JPEG or PNG, to the same.

Both return the array together with its channel order ("bgr" or "rgb"). With
``color_order=None`` the order that costs no conversion is returned (an rgb8 image stays RGB, a
view of the message buffer when rows are unpadded), so a consumer that accepts either order (the
estimator does) never pays for a channel swap.

Supported raw encodings (names as in sensor_msgs/image_encodings.hpp):

- ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8`` (alpha dropped), ``mono8``;
- ``mono16``: scaled to 8 bit by stretching the image's own minimum..maximum to 0..255 (16-bit
  infrared and grey cameras rarely use the full 16-bit range, so a fixed division by 256 would
  leave a nearly black image); a constant image becomes black;
- YUV 4:2:2 packings (ITU-R BT.601, as OpenCV converts them): ``yuv422`` and ``uyvy`` (byte
  order U Y0 V Y1), ``yuv422_yuy2`` and ``yuyv`` (Y0 U Y1 V);
- ``8UC3`` (taken as bgr8, OpenCV's convention) and ``8UC1`` (taken as mono8).

Everything else (depth ``16UC1``/``32FC1``, Bayer patterns, 16-bit colour, ...) raises
``ImageFormatError`` naming the encoding. So do empty images, rows shorter than the pixels they
must hold, a data length that disagrees with ``step * height``, images larger than ``max_pixels``
(default ``DEFAULT_MAX_PIXELS``, 4096 x 4096) and corrupt or truncated JPEG/PNG data. The size of
a compressed image is read from its header before it is decoded, so an oversized JPEG or PNG
("decompression bomb") is refused without allocating it.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np

# Largest image (width x height) accepted by default: 4096 x 4096 = 16.8 megapixels, above 4K UHD
# (3840 x 2160 = 8.3 MP) and common 12 MP machine-vision sensors. Pose estimation resizes every
# image to the network input (256-512 px), so more pixels only cost conversion time and memory.
DEFAULT_MAX_PIXELS = 4096 * 4096

COLOR_ORDERS = ("bgr", "rgb")

# Raw encodings: name -> (bytes per pixel, channels in the message, native colour order).
_RAW_LAYOUTS: dict[str, tuple[int, int, str]] = {
    "rgb8": (3, 3, "rgb"),
    "bgr8": (3, 3, "bgr"),
    "8UC3": (3, 3, "bgr"),
    "rgba8": (4, 4, "rgb"),
    "bgra8": (4, 4, "bgr"),
    "mono8": (1, 1, "mono"),
    "8UC1": (1, 1, "mono"),
    "mono16": (2, 1, "mono"),
    "yuv422": (2, 2, "uyvy"),
    "uyvy": (2, 2, "uyvy"),
    "yuv422_yuy2": (2, 2, "yuyv"),
    "yuyv": (2, 2, "yuyv"),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_RAW_LAYOUTS)

# What people most often send by mistake, with the fix to suggest.
_UNSUPPORTED_HINTS = {
    "16UC1": "a depth image: subscribe the node to the colour (or infrared) image topic instead",
    "32FC1": "a depth image: subscribe the node to the colour (or infrared) image topic instead",
    "rgb16": "16-bit colour: publish rgb8/bgr8 (e.g. with image_proc) instead",
    "bgr16": "16-bit colour: publish rgb8/bgr8 (e.g. with image_proc) instead",
    "rgba16": "16-bit colour: publish rgba8/bgra8 instead",
    "bgra16": "16-bit colour: publish rgba8/bgra8 instead",
}

# OpenCV conversions to 3-channel colour: (source kind, wanted order) -> cv2 code.
_TO_COLOR = {
    ("mono", "bgr"): cv2.COLOR_GRAY2BGR,
    ("mono", "rgb"): cv2.COLOR_GRAY2RGB,
    ("uyvy", "bgr"): cv2.COLOR_YUV2BGR_UYVY,
    ("uyvy", "rgb"): cv2.COLOR_YUV2RGB_UYVY,
    ("yuyv", "bgr"): cv2.COLOR_YUV2BGR_YUYV,
    ("yuyv", "rgb"): cv2.COLOR_YUV2RGB_YUYV,
}


# File name endings read as still images and as videos (OpenCV decodes both), for every tool that
# takes a folder or a file: infer, label, training backgrounds, INT8 calibration.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


class ImageFormatError(ValueError):
    """An image message that cannot be turned into a colour image (the message says why)."""


def _check_color_order(color_order: str | None) -> None:
    if color_order is not None and color_order not in COLOR_ORDERS:
        raise ValueError(f"color_order must be one of {COLOR_ORDERS} or None, got {color_order!r}")


def _check_size(width: int, height: int, max_pixels: int, what: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageFormatError(f"{what} is empty ({width} x {height} pixels)")
    if width * height > max_pixels:
        raise ImageFormatError(
            f"{what} is {width} x {height} = {width * height} pixels, above the limit of {max_pixels} "
            f"pixels: downscale it before sending it (e.g. image_proc resize), or raise the limit "
            f"(node parameter max_image_pixels)"
        )


def unsupported_encoding_message(encoding: str) -> str:
    """The error text for an encoding this module cannot convert (with a hint when known)."""
    hint = _UNSUPPORTED_HINTS.get(encoding)
    if hint is None and encoding.startswith("bayer_"):
        hint = "a raw Bayer pattern: debayer it first (image_proc) and send rgb8/bgr8"
    text = f"unsupported image encoding {encoding!r}"
    if hint:
        text += f" ({hint})"
    return text + f"; supported: {', '.join(SUPPORTED_ENCODINGS)}"


def raw_image_to_array(
    data,
    encoding: str,
    height: int,
    width: int,
    step: int,
    *,
    is_bigendian: bool = False,
    color_order: str | None = "bgr",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, str]:
    """Convert sensor_msgs/Image fields to an ``(height, width, 3)`` uint8 colour image.

    ``data`` is any buffer (bytes, array.array as rclpy delivers it, numpy array). Returns
    ``(pixels, order)``: ``order`` is ``color_order`` when given, else the cheapest of "bgr" and
    "rgb" for this encoding. The result may be a read-only view of ``data``; copy it before
    writing to it. Raises ImageFormatError for anything that is not a valid supported image.
    """
    _check_color_order(color_order)
    if encoding not in _RAW_LAYOUTS:
        raise ImageFormatError(unsupported_encoding_message(encoding))
    bytes_per_pixel, channels, kind = _RAW_LAYOUTS[encoding]
    _check_size(width, height, max_pixels, f"{encoding} image")
    row_bytes = width * bytes_per_pixel
    if step < row_bytes:
        raise ImageFormatError(
            f"{encoding} image of width {width} needs step >= {row_bytes} bytes per row, but step is {step}"
        )
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size != step * height:
        raise ImageFormatError(
            f"{encoding} image data holds {buffer.size} bytes, but step x height = {step} x {height} "
            f"= {step * height}: the message is truncated or its step/height fields are wrong"
        )
    if kind in ("uyvy", "yuyv") and width % 2:
        raise ImageFormatError(f"{encoding} image has odd width {width}; YUV 4:2:2 needs an even width")

    rows = buffer.reshape(height, step)[:, :row_bytes]  # drops row padding, still a view
    if kind == "mono" and bytes_per_pixel == 2:
        dtype = np.dtype(">u2" if is_bigendian else "<u2")
        # A padded row cannot be reinterpreted in place: copy to contiguous bytes first.
        wide = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
        pixels = _stretch_to_uint8(wide)
    else:
        pixels = rows.reshape(height, width, channels) if channels > 1 else rows.reshape(height, width)

    if kind in ("bgr", "rgb"):
        if channels == 4:
            pixels = pixels[:, :, :3]
        if color_order is None or color_order == kind:
            return (pixels if pixels.flags.c_contiguous else np.ascontiguousarray(pixels)), kind
        return np.ascontiguousarray(pixels[:, :, ::-1]), color_order
    order = color_order or "bgr"
    return cv2.cvtColor(np.ascontiguousarray(pixels), _TO_COLOR[kind, order]), order


def _stretch_to_uint8(image: np.ndarray) -> np.ndarray:
    """Map the image's own min..max linearly to 0..255 (a constant image becomes 0)."""
    low, high = int(image.min()), int(image.max())
    if high == low:
        return np.zeros(image.shape, dtype=np.uint8)
    scaled = (image.astype(np.float32) - low) * (255.0 / (high - low))
    return np.rint(scaled).astype(np.uint8)


# --- compressed images -------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, ...) carry the image size;
# C4 (Huffman tables), C8 (reserved) and CC (arithmetic coding) share the range but do not.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_JPEG_STANDALONE = frozenset(range(0xD0, 0xDA)) | {0x01}


def compressed_image_size(data: bytes) -> tuple[str, int, int]:
    """Read ``(kind, width, height)`` from a JPEG or PNG header without decoding the image.

    kind is "jpeg" or "png". Raises ImageFormatError when the data is neither or the header is
    cut short.
    """
    data = bytes(data[:65536]) if not isinstance(data, bytes) else data
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageFormatError("corrupt PNG data: the IHDR header is missing or cut short")
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if data.startswith(b"\xff\xd8"):
        position = 2
        while position + 4 <= len(data):
            if data[position] != 0xFF:
                break
            marker = data[position + 1]
            if marker == 0xFF:  # fill byte
                position += 1
                continue
            if marker in _JPEG_STANDALONE:
                position += 2
                continue
            (length,) = struct.unpack(">H", data[position + 2 : position + 4])
            if marker in _JPEG_SOF_MARKERS:
                if position + 9 > len(data):
                    break
                height, width = struct.unpack(">HH", data[position + 5 : position + 9])
                return "jpeg", width, height
            if marker == 0xDA or length < 2:  # scan data started before any frame header
                break
            position += 2 + length
        raise ImageFormatError("corrupt JPEG data: no valid frame header (SOF marker) found")
    head = data[:8].hex(" ") if data else "nothing"
    raise ImageFormatError(f"compressed image data is neither JPEG nor PNG (starts with {head})")


# libjpeg's warnings (jerror.h) as it prints them to stderr while still decoding the image.
_LIBJPEG_WARNINGS = (
    "Corrupt JPEG data",
    "Premature end of JPEG file",
    "Warning:",
    "Invalid SOS parameters",
    "Inconsistent progression sequence",
    "Unsupported marker type",
)
_STDERR_LOCK = threading.Lock()


@contextmanager
def _libjpeg_warnings_collected(warnings: list[str]) -> Iterator[None]:
    """Collect what libjpeg prints to stderr (file descriptor 2) while the block runs into
    ``warnings``; anything else written there meanwhile (another thread's log line) is passed on."""
    with _STDERR_LOCK, tempfile.TemporaryFile() as capture:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no stderr to take over: decode without collecting
            yield
            return
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            others = []
            for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True):
                if line.startswith(_LIBJPEG_WARNINGS):
                    warnings.append(line.strip())
                else:
                    others.append(line)
            if others:
                os.write(2, "".join(others).encode())


def compressed_image_to_array(
    data,
    format: str = "",
    *,
    color_order: str | None = "bgr",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    warnings: list[str] | None = None,
) -> tuple[np.ndarray, str]:
    """Decode sensor_msgs/CompressedImage fields (JPEG or PNG) to an ``(H, W, 3)`` uint8 image.

    ``format`` is the message's format string (e.g. "jpeg", "bgr8; jpeg compressed bgr8"); the
    data itself decides how it is decoded, the format only serves to refuse depth transports
    (compressedDepth). Returns ``(pixels, order)`` like ``raw_image_to_array`` (decoding yields
    BGR, so order is "bgr" unless "rgb" was asked for); pixels keep their stored orientation (an
    EXIF Orientation tag is ignored, as image_transport does). With a ``warnings`` list, what
    libjpeg says about corrupt but decodable data is appended there instead of printed to stderr.
    Raises ImageFormatError for empty,
    corrupt, oversized or non-JPEG/PNG data.
    """
    _check_color_order(color_order)
    if "compresseddepth" in format.lower().replace(" ", ""):
        raise ImageFormatError(
            f"compressed format {format!r} is a compressed depth image: subscribe the node to a "
            f"colour image instead"
        )
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size == 0:
        raise ImageFormatError("compressed image is empty (0 bytes)")
    kind, width, height = compressed_image_size(buffer[:65536].tobytes())
    _check_size(width, height, max_pixels, f"{kind.upper()} image")
    # The stored orientation, as image_transport decodes it: an EXIF Orientation tag would make
    # OpenCV rotate the pixels (keypoints would no longer match the stored image, nor its header's size).
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    if warnings is not None and kind == "jpeg":
        with _libjpeg_warnings_collected(warnings):
            pixels = cv2.imdecode(buffer, flags)
    else:
        pixels = cv2.imdecode(buffer, flags)
    if pixels is None or pixels.shape[:2] != (height, width):
        raise ImageFormatError(
            f"corrupt {kind.upper()} data ({buffer.size} bytes, header says {width} x {height}): "
            f"it could not be decoded"
        )
    if color_order == "rgb":
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB), "rgb"
    return pixels, "bgr"
