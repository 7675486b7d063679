"""Incoming camera messages read straight from their serialized (CDR) bytes.

The node subscribes to images with ``raw=True``: rclpy then hands over the serialized message as
``bytes`` instead of building a Python message, which for a 1.3 MB image costs a copy of the
pixels into an ``array.array`` (about 0.5 ms, in the executor thread). The few header fields are
read here with ``struct`` and the pixels are a zero-copy view of the bytes. sensor_msgs/Image and
CompressedImage have had the same fields in every ROS 2 distribution.

CDR as ROS 2 uses it: a 4-byte encapsulation header (byte 1: 0 big endian, 1 little endian),
then the fields in order, each aligned to its size relative to the end of that header; strings
are a uint32 length (including the terminating NUL) and the bytes; sequences a uint32 count and
the elements.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from litepose_ros.image_encodings import ImageFormatError

_ENCAPSULATION = 4


@dataclass(frozen=True)
class RawImage:
    """The fields of a sensor_msgs/Image; ``data`` is a read-only view of the serialized bytes."""

    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: bool
    step: int
    data: memoryview


@dataclass(frozen=True)
class CompressedImageData:
    """The fields of a sensor_msgs/CompressedImage; ``data`` views the serialized bytes."""

    header: Header
    format: str
    data: memoryview


class _Reader:
    def __init__(self, data: bytes, type_name: str):
        self.view = memoryview(data)
        self.type_name = type_name
        if len(self.view) < _ENCAPSULATION or self.view[0] != 0 or self.view[1] not in (0, 1):
            raise self.error("not a CDR-encoded message")
        self.order = "<" if self.view[1] == 1 else ">"
        self.offset = _ENCAPSULATION

    def error(self, problem: str) -> ImageFormatError:
        return ImageFormatError(f"malformed {self.type_name} message ({len(self.view)} bytes): {problem}")

    def _take(self, size: int, align: int) -> int:
        self.offset += -(self.offset - _ENCAPSULATION) % align
        start = self.offset
        if start + size > len(self.view):
            raise self.error("it ends too early")
        self.offset = start + size
        return start

    def unpack(self, code: str, size: int):
        return struct.unpack_from(self.order + code, self.view, self._take(size, size))[0]

    def string(self) -> str:
        length = self.unpack("I", 4)
        if length == 0:
            return ""
        start = self._take(length, 1)
        return bytes(self.view[start : start + length - 1]).decode("utf-8", errors="replace")

    def octets(self) -> memoryview:
        length = self.unpack("I", 4)
        start = self._take(length, 1)
        return self.view[start : start + length]

    def header(self) -> Header:
        sec = self.unpack("i", 4)
        nanosec = self.unpack("I", 4)
        return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=self.string())


def header_stamp_ns(data: bytes) -> int | None:
    """The header stamp (ns) of a serialized Image or CompressedImage, read without the rest of the
    message (both start with their std_msgs/Header); None when the bytes are not CDR. Cheap enough
    for a subscription callback; the full parse, with its errors, comes later in the worker."""
    try:
        reader = _Reader(data, "image")
        sec = reader.unpack("i", 4)
        nanosec = reader.unpack("I", 4)
    except ImageFormatError:
        return None
    return sec * 1_000_000_000 + nanosec


def parse_image(data: bytes) -> RawImage:
    """Read a serialized sensor_msgs/Image (ImageFormatError if the bytes are not one)."""
    reader = _Reader(data, "sensor_msgs/Image")
    header = reader.header()
    height = reader.unpack("I", 4)
    width = reader.unpack("I", 4)
    encoding = reader.string()
    is_bigendian = bool(reader.unpack("B", 1))
    step = reader.unpack("I", 4)
    return RawImage(header, height, width, encoding, is_bigendian, step, reader.octets())


def parse_compressed_image(data: bytes) -> CompressedImageData:
    """Read a serialized sensor_msgs/CompressedImage (ImageFormatError if the bytes are not one)."""
    reader = _Reader(data, "sensor_msgs/CompressedImage")
    header = reader.header()
    image_format = reader.string()
    return CompressedImageData(header, image_format, reader.octets())
