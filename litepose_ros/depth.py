"""3D keypoints from a depth image registered to the colour camera (numpy only, no ROS).

Three steps, each usable on its own:

- ``depth_to_metres``: the fields of a sensor_msgs/Image holding depth (``16UC1`` millimetres or
  ``32FC1`` metres, as REP 118 defines them) to a float32 image in metres, NaN where the sensor
  measured nothing;
- ``registration_problem``: whether a depth image can be read at colour-image keypoints at all
  (same optical frame, same aspect ratio; any scale);
- ``keypoint_positions``: each keypoint's 3D position in the depth camera's optical frame (x right,
  y down, z forward), from a small window of depth pixels around it.

Why a window and a fit rather than the single nearest pixel: depth images have holes and noisy,
quantised values, and a keypoint lies between pixel centres. The window's median rejects holes and
a minority of background (or foreground) pixels; fitting *inverse* depth 1/z as a linear function
of the pixel offsets then gives the depth at the keypoint's exact sub-pixel position, exactly for
any plane, because a plane n . X = d seen through a pinhole camera has 1/z = (n . ray(u, v)) / d,
which is linear in (u, v). A joint that still lands on the background (a wrist beside the body,
its window all wall) is caught by comparing it with the person's median depth.

Coordinates follow the project's pixel-centre convention (``litepose_ros.preprocess``): the centre
of the top-left pixel is (0, 0), so a colour pixel u maps to depth pixel (u + 0.5) * Wd / Wc - 0.5,
and camera intrinsics rescale the same way (c' = (c + 0.5) * s - 0.5, f' = f * s).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# 16UC1: millimetres, 0 = no measurement; 32FC1: metres, 0, NaN, +-inf or negative = no measurement.
DEPTH_ENCODINGS = ("16UC1", "32FC1")
_BYTES_PER_PIXEL = {"16UC1": 2, "32FC1": 4}
_ALIGNED_DEPTH_HINT = (
    "use the depth image registered (aligned) to the colour camera, e.g. RealSense "
    "align_depth.enable:=true and its aligned_depth_to_color/image_raw"
)
# Normal distribution: standard deviation = 1.4826 * median absolute deviation.
_MAD_TO_SIGMA = 1.4826
# Offsets of a window's inliers whose covariance determinant (px^4) is below this lie on a line:
# the plane fit is undetermined across it. On the integer pixel grid, n points not all on one line
# give at least (n - 1)(n - 2) / (2 n^3), above 0.002 for the 225 pixels of the largest window.
_MIN_OFFSET_SPREAD = 1e-3


class DepthFormatError(ValueError):
    """A depth image message that cannot be read as depth (the message says why and what to do)."""


def depth_to_metres(  # noqa: PLR0917 - the sensor_msgs/Image fields in message order, the agreed interface
    data, encoding: str, height: int, width: int, step: int, is_bigendian: bool = False
) -> np.ndarray:
    """sensor_msgs/Image fields of a depth image to ``(height, width)`` float32 metres, NaN where
    there is no measurement.

    ``data``: bytes, bytearray, memoryview, array.array (as rclpy delivers it) or a numpy array of
    the message's data field; rows may be padded (``step >= width * bytes per pixel``). The result
    is a new array (never a view of ``data``). Raises DepthFormatError for an encoding other than
    ``DEPTH_ENCODINGS``, an empty image, a step too short for a row or a data length other than
    ``step * height``.
    """
    if encoding not in _BYTES_PER_PIXEL:
        hint = ""
        if encoding == "mono16":
            hint = " (mono16 is a 16-bit grey or infrared image, not depth)"
        raise DepthFormatError(
            f"depth encoding {encoding!r} is not a depth image{hint}: use 16UC1 (millimetres) or 32FC1 "
            f"(metres), e.g. the driver's aligned_depth_to_color/image_raw"
        )
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise DepthFormatError(
            f"{encoding} depth image is empty ({width} x {height} pixels): "
            f"check that the depth camera is streaming"
        )
    row_bytes = width * _BYTES_PER_PIXEL[encoding]
    if step < row_bytes:
        raise DepthFormatError(
            f"{encoding} depth image of width {width} needs step >= {row_bytes} bytes per row, but step "
            f"is {step}: the publisher fills in the step field wrongly"
        )
    if isinstance(data, np.ndarray):
        buffer = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    else:
        buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size != step * height:
        raise DepthFormatError(
            f"{encoding} depth image data holds {buffer.size} bytes, but step x height = {step} x {height} "
            f"= {step * height}: the message is truncated or its step/height fields are wrong; check the "
            f"publisher (or the bag it was recorded in)"
        )
    rows = buffer.reshape(height, step)
    if step != row_bytes:  # a padded row cannot be reinterpreted in place
        rows = np.ascontiguousarray(rows[:, :row_bytes])
    order = ">" if is_bigendian else "<"
    if encoding == "16UC1":
        millimetres = rows.view(f"{order}u2").reshape(height, width)
        # Division, not multiplication by 0.001: correctly rounded, so 2000 mm is exactly 2.0 m.
        metres = np.divide(millimetres, np.float32(1000.0), dtype=np.float32)
        metres[millimetres == 0] = np.nan
        return metres
    metres = rows.view(f"{order}f4").reshape(height, width).astype(np.float32)  # a copy: written below
    metres[~(metres > 0) | (metres == np.inf)] = np.nan  # 0, negative, NaN and +-inf: no measurement
    return metres


@dataclass(frozen=True)
class DepthIntrinsics:
    """Pinhole intrinsics of the depth image (its camera_info), in pixels, for a width x height image."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fx) and math.isfinite(self.fy) and self.fx > 0 and self.fy > 0):
            raise ValueError(
                f"depth intrinsics need positive finite focal lengths, got fx={self.fx}, "
                f"fy={self.fy}: take them from the depth camera's calibration (camera_info K)"
            )
        if not (math.isfinite(self.cx) and math.isfinite(self.cy)):
            raise ValueError(
                f"depth intrinsics need a finite principal point, got cx={self.cx}, "
                f"cy={self.cy}: take it from the depth camera's calibration (camera_info K)"
            )
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(
                f"depth intrinsics need the image size they belong to, got {self.width} x {self.height}"
            )

    @classmethod
    def from_camera_info(cls, k: Sequence[float], width: int, height: int) -> DepthIntrinsics:
        """From sensor_msgs/CameraInfo ``k`` (row-major 3x3, 9 numbers), ``width`` and ``height``."""
        matrix = np.asarray(k, dtype=np.float64).reshape(-1)
        if matrix.size != 9:
            raise ValueError(f"camera_info K must hold 9 numbers (row-major 3x3), got {matrix.size}")
        fx, cx, fy, cy = (float(matrix[i]) for i in (0, 2, 4, 5))
        fix = (
            "calibrate the depth camera, or use the camera_info published with the aligned depth image "
            "(e.g. aligned_depth_to_color/camera_info)"
        )
        if not np.any(matrix):
            raise ValueError(f"depth camera_info has no calibration (K is zero): {fix}")
        if not (
            math.isfinite(fx)
            and math.isfinite(fy)
            and fx > 0
            and fy > 0
            and math.isfinite(cx)
            and math.isfinite(cy)
        ):
            raise ValueError(
                f"depth camera_info has a broken calibration (fx={fx}, fy={fy}, cx={cx}, "
                f"cy={cy}; focal lengths must be positive and finite): {fix}"
            )
        if int(width) <= 0 or int(height) <= 0:
            raise ValueError(
                f"depth camera_info gives the image size {width} x {height}: the driver must "
                f"fill in width and height; {fix}"
            )
        return cls(fx, fy, cx, cy, int(width), int(height))

    def scaled_to(self, width: int, height: int) -> DepthIntrinsics:
        """The same camera for an image resized to width x height (pixel-centre rule)."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        return DepthIntrinsics(
            self.fx * sx,
            self.fy * sy,
            (self.cx + 0.5) * sx - 0.5,
            (self.cy + 0.5) * sy - 0.5,
            int(width),
            int(height),
        )


def intrinsics_for(intrinsics: DepthIntrinsics, width: int, height: int) -> DepthIntrinsics:
    """The intrinsics of a depth image of ``width`` x ``height`` (rescaled when its camera_info was
    for another size). DepthFormatError when the calibration does not survive the rescaling, e.g. a
    focal length of 1e308 doubled, so that the caller reports it like any other unusable depth."""
    try:
        return intrinsics.scaled_to(width, height)
    except ValueError as error:
        raise DepthFormatError(
            f"the depth camera_info calibration for {intrinsics.width} x {intrinsics.height} does not fit "
            f"the {width} x {height} depth image: {error}"
        ) from error


@dataclass(frozen=True)
class DepthSettings:
    """How keypoint depths are read from the depth image (ranges in metres, windows in depth pixels)."""

    min_range: float = 0.1  # nearer values are no measurement
    max_range: float = 10.0  # farther values are no measurement
    window_fraction: float = 0.02  # window half-size as a fraction of the person's height in depth pixels
    max_window_radius: int = 7  # window half-size limit in depth pixels (the least is 1)
    min_samples: int = 3  # valid pixels a window needs
    max_joint_offset: float = 0.8  # a joint farther than this from its person's median depth is rejected

    def __post_init__(self) -> None:
        if not (
            math.isfinite(self.min_range)
            and math.isfinite(self.max_range)
            and 0 < self.min_range < self.max_range
        ):
            raise ValueError(
                f"min_range and max_range must satisfy 0 < min_range < max_range (metres), got "
                f"min_range={self.min_range}, max_range={self.max_range}"
            )
        if not (math.isfinite(self.window_fraction) and self.window_fraction > 0):
            raise ValueError(f"window_fraction must be positive, got {self.window_fraction}")
        if int(self.max_window_radius) != self.max_window_radius or self.max_window_radius < 1:
            raise ValueError(
                f"max_window_radius must be a whole number >= 1 (depth pixels), got {self.max_window_radius}"
            )
        largest_window = (2 * int(self.max_window_radius) + 1) ** 2
        if int(self.min_samples) != self.min_samples or not 1 <= self.min_samples <= largest_window:
            raise ValueError(
                f"min_samples must be a whole number from 1 to {largest_window} (the pixels of "
                f"the largest window, max_window_radius={self.max_window_radius}), "
                f"got {self.min_samples}"
            )
        if not (math.isfinite(self.max_joint_offset) and self.max_joint_offset > 0):
            raise ValueError(f"max_joint_offset must be positive (metres), got {self.max_joint_offset}")


@dataclass(frozen=True)
class KeypointPositions:
    """3D keypoints of N people with K keypoints, in the depth camera's optical frame (metres)."""

    positions: np.ndarray  # (N, K, 3) float64 x right, y down, z forward; 0 where not valid
    valid: np.ndarray  # (N, K) bool
    spread: np.ndarray  # (N, K) float32: 1.4826 * median |depth - fitted surface| of the window
    person_positions: np.ndarray  # (N, 3) float64 per-axis median of the valid keypoints; 0 where not valid
    person_valid: np.ndarray  # (N,) bool: at least one keypoint position is valid

    @classmethod
    def empty(cls, people: int, keypoints: int) -> KeypointPositions:
        """All invalid, all zeros."""
        return cls(
            np.zeros((people, keypoints, 3)),
            np.zeros((people, keypoints), bool),
            np.zeros((people, keypoints), np.float32),
            np.zeros((people, 3)),
            np.zeros(people, bool),
        )


def registration_problem(
    colour_size: tuple[int, int], depth_size: tuple[int, int], colour_frame: str, depth_frame: str
) -> str | None:
    """None when a depth image of ``depth_size`` (width, height) can be read at the pixels of the
    colour image of ``colour_size``: the same frame_id (an empty colour frame_id accepts any) and
    the same aspect ratio within 1 % (any scale). Otherwise a sentence naming the problem and the fix."""
    if colour_frame and colour_frame != depth_frame:
        return (
            f"the depth image's frame_id {depth_frame!r} is not the colour image's {colour_frame!r}, "
            f"so it is not registered to the colour camera: {_ALIGNED_DEPTH_HINT}"
        )
    (colour_width, colour_height), (depth_width, depth_height) = colour_size, depth_size
    sizes = (
        f"the depth image is {depth_width} x {depth_height} and the colour image "
        f"{colour_width} x {colour_height}"
    )
    if min(colour_width, colour_height, depth_width, depth_height) <= 0:
        return f"{sizes}: an empty image cannot be registered; check that both cameras are streaming"
    # Compare cross products rather than ratios: no division, the same 1 % either way round.
    if abs(depth_width * colour_height - colour_width * depth_height) > 0.01 * colour_width * depth_height:
        return (
            f"{sizes}: their aspect ratios differ ({depth_width / depth_height:.3f} against "
            f"{colour_width / colour_height:.3f}), so the depth image is not registered to the colour "
            f"camera: {_ALIGNED_DEPTH_HINT}"
        )
    return None


def _row_medians(keyed: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median of each row of a 2D array whose masked-out values are +inf, ``count`` the others per
    row (NaN for a row without any).

    One sort for all rows and an index at the count: np.nanmedian loops over many small rows slowly."""
    ordered = np.sort(keyed, axis=1)
    index = np.arange(len(ordered))
    lower = ordered[index, np.maximum((count - 1) // 2, 0)]
    upper = ordered[index, np.minimum(count // 2, ordered.shape[1] - 1)]
    return np.where(count > 0, 0.5 * (lower + upper), np.nan)


@functools.lru_cache(maxsize=16)
def _window_basis(size: int) -> np.ndarray:
    """(size * size, 6) float32 terms 1, du, dv, du^2, du dv, dv^2 of the pixels of a window, row-major,
    du and dv from the window's centre pixel."""
    span = np.arange(size) - size // 2
    du, dv = np.tile(span, size), np.repeat(span, size)
    basis = np.stack([np.ones_like(du), du, dv, du * du, du * dv, dv * dv], axis=1).astype(np.float32)
    basis.flags.writeable = False
    return basis


def keypoint_positions(  # noqa: PLR0917 - positional order is the agreed interface
    keypoints: np.ndarray,
    valid: np.ndarray,
    colour_size: tuple[int, int],
    depth_m: np.ndarray,
    intrinsics: DepthIntrinsics,
    settings: DepthSettings = DepthSettings(),
) -> KeypointPositions:
    """3D positions of colour-image keypoints from a registered depth image.

    ``keypoints`` (N, K, 2 or 3): x, y (and a score, not used) in colour-image pixels, pixel-centre
    convention. ``valid`` (N, K) bool: only these keypoints get a position. ``colour_size``: the
    colour image's (width, height). ``depth_m``: (Hd, Wd) metres from ``depth_to_metres``,
    registered to the colour image, at any resolution of the same aspect ratio.
    ``intrinsics``: of the depth image; rescaled to depth_m's size when given for another size.
    A keypoint gets no position (never an exception) when its coordinates are not finite, it lies
    outside the image, its window has too few depths in range, or its depth is more than
    ``max_joint_offset`` from its person's median keypoint depth.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if keypoints.ndim != 3 or keypoints.shape[2] not in (2, 3):
        raise ValueError(f"keypoints must be (N, K, 2) or (N, K, 3), got shape {keypoints.shape}")
    if valid.shape != keypoints.shape[:2]:
        raise ValueError(
            f"valid must be (N, K) = {keypoints.shape[:2]} like the keypoints "
            f"{keypoints.shape}, got shape {valid.shape}"
        )
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2 or depth_m.size == 0:
        raise ValueError(f"depth_m must be a non-empty (height, width) image, got shape {depth_m.shape}")
    if not np.issubdtype(depth_m.dtype, np.floating):
        raise ValueError(
            f"depth_m must be metres as floats, got {depth_m.dtype} values: convert the message "
            f"with depth_to_metres first (16UC1 holds millimetres)"
        )
    colour_width, colour_height = colour_size
    if not (colour_width > 0 and colour_height > 0):
        raise ValueError(f"colour_size must be a positive (width, height), got {colour_size}")
    people, joints = valid.shape
    if people == 0:
        return KeypointPositions.empty(0, joints)
    depth_height, depth_width = depth_m.shape
    camera = intrinsics.scaled_to(depth_width, depth_height)

    # 1. Colour pixels to depth pixels (pixel-centre rule); non-finite coordinates take no part.
    finite = valid & np.isfinite(keypoints[..., 0]) & np.isfinite(keypoints[..., 1])
    with np.errstate(over="ignore", invalid="ignore"):  # huge coordinates become inf: outside, below
        u = np.where(finite, (keypoints[..., 0] + 0.5) * (depth_width / colour_width) - 0.5, 0.0)
        v = np.where(finite, (keypoints[..., 1] + 0.5) * (depth_height / colour_height) - 0.5, 0.0)
    # Clipped before the integer cast so that huge coordinates cannot overflow it.
    column = np.rint(np.clip(u, -1, depth_width)).astype(np.intp)
    row = np.rint(np.clip(v, -1, depth_height)).astype(np.intp)
    inside = finite & (column >= 0) & (column < depth_width) & (row >= 0) & (row < depth_height)

    # 2. Window half-size per person from its height in depth pixels (finite keypoints, inside or not).
    extent = np.where(finite, v, -np.inf).max(axis=1) - np.where(finite, v, np.inf).min(axis=1)
    extent = np.where(finite.any(axis=1), extent, 0.0)
    radius = np.clip(np.rint(settings.window_fraction * extent), 1, settings.max_window_radius)
    radius = radius.astype(np.intp)

    result = KeypointPositions.empty(people, joints)
    flat = np.flatnonzero(inside)  # the keypoints to look at, as indices into N * K
    if flat.size == 0:
        return result
    own_radius = radius[flat // joints]
    # One window size for all (the largest radius, no larger than the image); each keypoint masks
    # out what lies beyond its own radius.
    largest = min(int(own_radius.max()), (min(depth_height, depth_width) - 1) // 2)
    size = 2 * largest + 1
    u_at, v_at = u.reshape(-1)[flat], v.reshape(-1)[flat]
    centre_row, centre_column = row.reshape(-1)[flat], column.reshape(-1)[flat]
    # Windows at the border shift inwards, so that all their pixels exist: each is then one strided
    # copy, much cheaper than gathering pixel by pixel; the radius mask below still centres them.
    top = np.clip(centre_row - largest, 0, depth_height - size)
    left = np.clip(centre_column - largest, 0, depth_width - size)
    steps = np.arange(size)
    row_ok = np.abs(top[:, None] + steps - centre_row[:, None]) <= own_radius[:, None]
    column_ok = np.abs(left[:, None] + steps - centre_column[:, None]) <= own_radius[:, None]
    windows = sliding_window_view(depth_m, (size, size))[top, left]
    # float32 (the depth image's own precision) for the window statistics: half the memory traffic.
    samples = windows.reshape(flat.size, -1).astype(np.float32, copy=False)
    usable = (row_ok[:, :, None] & column_ok[:, None, :]).reshape(flat.size, -1)
    usable &= (samples >= settings.min_range) & (samples <= settings.max_range)  # False for NaN

    # 3. Enough depths? Then median and robust scale; inliers drop a minority of other surfaces.
    available = np.count_nonzero(usable, axis=1)
    enough = available >= settings.min_samples
    if not enough.all():
        if not enough.any():
            return result
        flat, samples, usable, available = flat[enough], samples[enough], usable[enough], available[enough]
        u_at, v_at, top, left = u_at[enough], v_at[enough], top[enough], left[enough]
    keyed = np.where(usable, samples, np.float32(np.inf))  # inf sorts last and stays inf below
    median = _row_medians(keyed, available)
    deviation = np.abs(keyed - median[:, None])
    scale = _MAD_TO_SIGMA * _row_medians(deviation, available)
    inlier = deviation <= np.maximum(0.05 * median, 3.0 * scale)[:, None]  # never where inf

    # 4. Inverse depth a + b du + c dv by least squares over the inliers (batched normal equations).
    basis = _window_basis(size)  # (W, 6): 1, du, dv, du^2, du dv, dv^2 from the window centre
    # Integer sums below 2^24: exact in float32.
    moments = (inlier.astype(np.float32) @ basis).astype(np.float64)  # n, Su, Sv, Suu, Suv, Svv
    # Relative to the median's inverse, so that float32 sums lose nothing that matters (a plane's
    # values are then small); 0 off the inliers (keyed is finite or inf there, never NaN).
    inverse_median = (1.0 / median).astype(np.float32)
    inverse = np.divide(1.0, keyed)
    np.subtract(inverse, inverse_median[:, None], out=inverse)
    np.multiply(inverse, inlier, out=inverse)
    rhs = (inverse @ basis[:, :3]).astype(np.float64)  # (M, 3)
    n, su, sv, suu, suv, svv = moments.T
    inliers = n.astype(np.intp)
    normal = np.stack([n, su, sv, su, suu, suv, sv, suv, svv], axis=1).reshape(-1, 3, 3)
    safe_n = np.maximum(n, 1.0)
    mean_u, mean_v = su / safe_n, sv / safe_n
    offset_spread = (suu / safe_n - mean_u**2) * (svv / safe_n - mean_v**2) - (
        suv / safe_n - mean_u * mean_v
    ) ** 2
    solvable = (n >= 3) & (offset_spread > _MIN_OFFSET_SPREAD)
    normal[~solvable] = np.eye(3)  # placeholders: np.linalg.solve must not meet a singular matrix
    coefficients = np.linalg.solve(normal, rhs[:, :, None])[:, :, 0]
    # The keypoint's sub-pixel position from its window's centre.
    sub_u, sub_v = u_at - (left + largest), v_at - (top + largest)
    coefficients[:, 0] += inverse_median
    inverse_at = coefficients[:, 0] + coefficients[:, 1] * sub_u + coefficients[:, 2] * sub_v
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        fitted = 1.0 / inverse_at
        fit_ok = (
            solvable & np.isfinite(fitted) & (fitted >= settings.min_range) & (fitted <= settings.max_range)
        )
        depth = np.where(fit_ok, fitted, median)
        # Where the fit is not used, the surface is the constant median depth.
        coefficients[~fit_ok] = 0.0
        coefficients[~fit_ok, 0] = 1.0 / median[~fit_ok]

        # 5. Spread of the inliers around the fitted surface, in metres (in place: fewer temporaries).
        residual = coefficients.astype(np.float32) @ basis[:, :3].T
        np.divide(1.0, residual, out=residual)
        np.subtract(samples, residual, out=residual)
        np.abs(residual, out=residual)
    spread = _MAD_TO_SIGMA * _row_medians(np.where(inlier, residual, np.float32(np.inf)), inliers)

    # 6. Back-projection through the (rescaled) depth camera at the sub-pixel position.
    points = np.stack(
        [(u_at - camera.cx) * depth / camera.fx, (v_at - camera.cy) * depth / camera.fy, depth], axis=1
    )

    # 7. Joints far from their person's median depth hit another surface: rejected.
    z = np.full(people * joints, np.nan)
    z[flat] = depth
    z = z.reshape(people, joints)
    has = ~np.isnan(z)
    person_z = _row_medians(np.where(has, z, np.inf), has.sum(axis=1))
    with np.errstate(invalid="ignore"):
        keep = has & (np.abs(z - person_z[:, None]) <= settings.max_joint_offset)
    positions = np.zeros((people * joints, 3))
    positions[flat] = points
    positions = positions.reshape(people, joints, 3)
    positions[~keep] = 0.0
    spreads = np.zeros(people * joints, np.float32)
    spreads[flat] = spread
    spreads = spreads.reshape(people, joints)
    spreads[~keep] = 0.0
    by_axis = np.where(keep[:, None, :], positions.transpose(0, 2, 1), np.inf).reshape(people * 3, joints)
    person_positions = _row_medians(by_axis, np.repeat(keep.sum(axis=1), 3)).reshape(people, 3)
    person_valid = keep.any(axis=1)
    person_positions[~person_valid] = 0.0
    return KeypointPositions(positions, keep, spreads, person_positions, person_valid)
