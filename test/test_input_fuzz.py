"""Hostile input through every step the node applies to what it receives, in the node's order:
each step returns its documented result or raises the one error type the node catches there (so
the node reports the problem and goes on), never anything else.

Seeded random messages (serialized by rclpy, as they arrive with ``raw=True``), not a fixed list:
field values at and beyond their limits (0, 1, odd, 2^31 - 1, 2^32 - 1), data lengths that do and
do not match, unknown encodings, damaged JPEG/PNG bytes, camera_info matrices with zeros, NaN,
infinities, subnormal and huge numbers, keypoints anywhere.
"""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np
import pytest

from litepose_ros.depth import (
    DepthFormatError,
    DepthIntrinsics,
    depth_to_metres,
    intrinsics_for,
    keypoint_positions,
    registration_problem,
)
from litepose_ros.image_encodings import (
    SUPPORTED_ENCODINGS,
    ImageFormatError,
    compressed_image_to_array,
    raw_image_to_array,
)

pytestmark = pytest.mark.ros  # rclpy serializes the messages

ROUNDS = 300
SIZES = (0, 1, 2, 3, 7, 16, 33, 2**31 - 1, 2**32 - 1)
ODD_NUMBERS = (0.0, -0.0, 1.0, -1.0, 5e-324, 1e-300, 1e300, 1.7e308, math.inf, -math.inf, math.nan, 320.0)
with np.errstate(over="ignore"):  # as 32FC1 depth: the huge ones become inf, the tiny ones 0
    ODD_FLOAT32 = np.array(ODD_NUMBERS, np.float32)


def _size(rng: np.random.Generator) -> int:
    return int(rng.choice(SIZES)) if rng.random() < 0.3 else int(rng.integers(0, 40))


def _raw_image_message(rng: np.random.Generator, encodings: tuple[str, ...]):
    """A sensor_msgs/Image with random, mostly inconsistent fields (consistent about a third of the time)."""
    from sensor_msgs.msg import Image

    height, width = _size(rng), _size(rng)
    encoding = str(rng.choice(encodings))
    step = _size(rng)
    consistent = rng.random() < 0.35 and height * width < 4096
    if consistent:
        bytes_per_pixel = int(rng.choice((1, 2, 3, 4, 6, 8)))
        step = width * bytes_per_pixel + int(rng.integers(0, 4))
        length = step * height
    else:
        length = int(rng.integers(0, 2048))
    message = Image(height=height, width=width, encoding=encoding, step=step)
    message.is_bigendian = int(rng.integers(0, 2))
    message.header.stamp.sec = int(rng.integers(-(2**31), 2**31))
    message.header.stamp.nanosec = int(rng.integers(0, 2**32))
    message.header.frame_id = str(rng.choice(("", "camera", "ü" * 3, "x" * 300)))
    message.data = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
    return message


def test_raw_colour_images_decode_or_are_refused_as_image_format_errors():
    from rclpy.serialization import serialize_message

    from litepose_ros.ros.image_messages import header_stamp_ns, parse_image

    rng = np.random.default_rng(11)
    encodings = (*SUPPORTED_ENCODINGS, "16UC1", "32FC1", "bayer_rggb8", "", "BGR8", "yuv422_yuy2 ")
    decoded = 0
    for _ in range(ROUNDS):
        message = _raw_image_message(rng, encodings)
        data = serialize_message(message)
        stamp = message.header.stamp
        assert header_stamp_ns(data) == stamp.sec * 1_000_000_000 + stamp.nanosec
        parsed = parse_image(data)  # well-formed CDR always parses
        try:
            pixels, order = raw_image_to_array(
                parsed.data,
                parsed.encoding,
                parsed.height,
                parsed.width,
                parsed.step,
                is_bigendian=parsed.is_bigendian,
                color_order=None,
            )
        except ImageFormatError:
            continue
        assert pixels.shape == (message.height, message.width, 3) and pixels.dtype == np.uint8
        assert order in ("bgr", "rgb")
        decoded += 1
    assert decoded >= 20  # the consistent ones decode: the loop tests more than refusals


def test_truncated_serialized_images_are_refused_at_every_length():
    from rclpy.serialization import serialize_message

    from litepose_ros.ros.image_messages import header_stamp_ns, parse_compressed_image, parse_image

    rng = np.random.default_rng(12)
    message = _raw_image_message(rng, ("bgr8",))
    message.height, message.width, message.step, message.data = 2, 2, 6, bytes(range(12))
    data = serialize_message(message)
    for cut in range(len(data)):
        with pytest.raises(ImageFormatError):
            parse_image(data[:cut])
        if cut < 12:  # the stamp needs the 4-byte encapsulation header and 8 bytes
            assert header_stamp_ns(data[:cut]) is None
    with pytest.raises(ImageFormatError):
        parse_compressed_image(b"\x00\x01\x00\x00" + b"\xff" * 9)  # frame_id length far past the end


def test_compressed_images_decode_or_are_refused_as_image_format_errors():
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import CompressedImage

    from litepose_ros.ros.image_messages import parse_compressed_image

    rng = np.random.default_rng(13)
    picture = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    originals = [cv2.imencode(".jpg", picture)[1].tobytes(), cv2.imencode(".png", picture)[1].tobytes()]
    formats = ("jpeg", "png", "bgr8; jpeg compressed bgr8", "16UC1; compressedDepth png", "", "tiff")
    decoded = 0
    for round_index in range(ROUNDS):
        data = bytearray(originals[round_index % 2])
        damage = rng.integers(0, 4)
        if damage == 1:  # cut short
            data = data[: int(rng.integers(0, len(data)))]
        elif damage == 2:  # bytes overwritten
            for index in rng.integers(0, len(data), int(rng.integers(1, 12))):
                data[index] = int(rng.integers(0, 256))
        elif damage == 3:  # not an image at all
            data = bytearray(rng.integers(0, 256, int(rng.integers(0, 300)), dtype=np.uint8).tobytes())
        message = CompressedImage(format=str(rng.choice(formats)), data=bytes(data))
        parsed = parse_compressed_image(serialize_message(message))
        warnings: list[str] = []
        try:
            pixels, _ = compressed_image_to_array(
                parsed.data, parsed.format, color_order=None, warnings=warnings
            )
        except ImageFormatError:
            continue
        assert pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8
        decoded += 1
    assert decoded >= 30


def _random_k(rng: np.random.Generator) -> list[float]:
    if rng.random() < 0.3:
        return [320.0, 0.0, 16.0, 0.0, 320.0, 12.0, 0.0, 0.0, 1.0]  # a sane camera, kept sometimes
    return [
        float(rng.choice(ODD_NUMBERS)) if rng.random() < 0.6 else float(rng.normal(0, 500)) for _ in range(9)
    ]


def test_depth_input_gives_positions_or_a_problem_the_node_reports():
    """The node's depth steps, in its order: parse (ImageFormatError), camera_info (ValueError),
    registration (a sentence), intrinsics fitted to the depth image (ValueError), conversion
    (DepthFormatError), then keypoint positions, which must not raise on anything that passed."""
    from rclpy.serialization import serialize_message

    from litepose_ros.ros.image_messages import parse_image

    rng = np.random.default_rng(14)
    colour_size = (32, 24)
    measured = 0
    for _ in range(ROUNDS):
        message = _raw_image_message(rng, ("16UC1", "32FC1", "mono16", "rgb8"))
        if rng.random() < 0.5:  # many with valid bytes, so that the geometry below is reached
            message.height, message.width = (
                int(rng.choice((12, 24, 48, 1, 5))),
                int(rng.choice((16, 32, 64, 3))),
            )
            message.encoding = str(rng.choice(("16UC1", "32FC1")))
            message.step = message.width * (2 if message.encoding == "16UC1" else 4)
            values = rng.choice(ODD_FLOAT32, message.height * message.width)
            if message.encoding == "16UC1":
                message.data = rng.integers(0, 2**16, message.height * message.width, dtype="<u2").tobytes()
            else:
                message.data = (
                    np.where(rng.random(values.size) < 0.5, np.float32(2.0), values).astype("<f4").tobytes()
                )
        depth = parse_image(serialize_message(message))
        try:
            intrinsics = DepthIntrinsics.from_camera_info(
                _random_k(rng), int(rng.choice((0, 16, 32, 64, 2**31 - 1))), int(rng.choice((0, 12, 24, 48)))
            )
        except ValueError:
            continue
        if registration_problem(colour_size, (depth.width, depth.height), "", depth.header.frame_id):
            continue
        try:
            intrinsics = intrinsics_for(intrinsics, depth.width, depth.height)
            metres = depth_to_metres(
                depth.data, depth.encoding, depth.height, depth.width, depth.step, depth.is_bigendian
            )
        except DepthFormatError:
            continue
        people = int(rng.integers(0, 4))
        keypoints = rng.choice(np.array(ODD_NUMBERS), (people, 17, 3))
        keypoints[..., :2] = np.where(
            rng.random((people, 17, 2)) < 0.6, rng.uniform(-2, 34, (people, 17, 2)), keypoints[..., :2]
        )
        valid = rng.random((people, 17)) < 0.8
        with warnings.catch_warnings():  # nor numpy warnings in the node's log: errors here
            warnings.simplefilter("error", RuntimeWarning)
            positions = keypoint_positions(keypoints, valid, colour_size, metres, intrinsics)
        assert positions.positions.shape == (people, 17, 3)
        assert not (positions.valid & ~valid).any()  # only keypoints asked for get a position
        assert np.isfinite(positions.positions[positions.valid]).all()
        assert (positions.positions[positions.valid][:, 2] > 0).all()
        measured += int(positions.valid.sum())
    assert measured > 0
