"""Pose estimates to litepose_ros/PersonArray, exactly as msg/*.msg documents the fields.

- one PersonArray per processed image, header copied from the image, also when nobody is there;
- keypoints dense (one per layout keypoint, in layout order), in source-image pixels;
- ``Keypoint.valid = score >= keypoint_threshold`` (the threshold travels in the message);
- ``Person.id``: the person's track id when tracked and confirmed (``PublishedPeople.ids``),
  ``Person.NO_ID`` otherwise (tentative tracks, people not tracked, tracking off);
- the box is the tight box around the valid keypoints, or around all keypoints when none is valid;
- persons sorted by decreasing score.
"""

from __future__ import annotations

import struct
from functools import lru_cache

import numpy as np
from geometry_msgs.msg import Point

from litepose_ros.layouts import KeypointLayout, get_layout
from litepose_ros.msg import Keypoint, Person, PersonArray
from litepose_ros.people import PublishedPeople, keypoint_boxes, published_people

# Keypoint.position is always (0, 0, 0) from this node: one shared, never-modified Point saves
# building hundreds of them per image (a third of the conversion time).
_ORIGIN = Point()


@lru_cache(maxsize=8)
def _layout_fields(layout_name: str) -> tuple[list[str], list[int], list[int]]:
    layout = get_layout(layout_name)
    return (list(layout.keypoint_names), [a for a, _ in layout.edges], [b for _, b in layout.edges])


def person_array_from_arrays(keypoints: np.ndarray, scores: np.ndarray, layout: KeypointLayout | str, *,
                             header, image_width: int, image_height: int, keypoint_threshold: float,
                             score_threshold: float = 0.0, max_persons: int | None = None) -> PersonArray:
    """Build the PersonArray for one image from (N, K, 3) keypoints (x, y, score) and (N,) scores.

    ``header`` is the source image's std_msgs/Header (copied as is). People below
    ``score_threshold`` are left out, the rest sorted by decreasing score and cut to
    ``max_persons``.
    """
    people = published_people(keypoints, scores, layout, keypoint_threshold=keypoint_threshold,
                              score_threshold=score_threshold, max_persons=max_persons)
    return person_array_message(people, header=header, image_width=image_width, image_height=image_height)


def person_array_message(people: PublishedPeople, *, header, image_width: int,
                         image_height: int) -> PersonArray:
    """The PersonArray of people already selected (``litepose_ros.people.published_people``)."""
    layout, keypoints, valid = people.layout, people.keypoints, people.valid
    boxes = keypoint_boxes(keypoints, valid).tolist()

    message = PersonArray()
    message.header = header
    message.image_width = int(image_width)
    message.image_height = int(image_height)
    names, edge_from, edge_to = _layout_fields(layout.name)
    message.layout = layout.name
    message.keypoint_names = names
    message.edge_from = edge_from
    message.edge_to = edge_to
    message.keypoint_threshold = float(people.keypoint_threshold)
    persons = []
    ids = [Person.NO_ID] * len(people) if people.ids is None else people.ids.tolist()
    for person_keypoints, person_valid, score, (x_min, y_min, x_max, y_max), person_id in zip(
            keypoints.tolist(), valid.tolist(), people.scores.tolist(), boxes, ids, strict=True):
        persons.append(Person(
            id=person_id, score=score, x_min=x_min, y_min=y_min, x_max=x_max, y_max=y_max,
            keypoints=[Keypoint(x=x, y=y, score=s, valid=v, position=_ORIGIN)
                       for (x, y, s), v in zip(person_keypoints, person_valid, strict=True)]))
    message.persons = persons
    return message


# --- direct CDR serialisation ----------------------------------------------------------------------
#
# Building a PersonArray as Python message objects costs about 3 us per keypoint (a Keypoint and
# its Point each run a generated __init__), 0.5-1 ms for a crowded image, and publishing walks the
# same objects again. The node instead writes the message's CDR bytes directly with numpy (about
# 30 us) and publishes those: rclpy publishes serialized bytes as they are. The layout below is
# the standard ROS 2 CDR encoding (little endian, XCDR1, alignment relative to the data after the
# 4-byte encapsulation header); `cdr_matches_rclpy` checks it against rclpy's own serializer, and
# the node falls back to message objects if that check ever fails.

_CDR_HEADER = b"\x00\x01\x00\x00"  # CDR, little endian


def _keypoint_dtype(first: bool) -> np.dtype:
    # The first keypoint of a person starts 8-aligned, the others 4 mod 8: the Point's float64s
    # then sit at different distances from x.
    position = 16 if first else 20
    return np.dtype({"names": ["x", "y", "score", "valid", "position", "position_valid"],
                     "formats": ["<f4", "<f4", "<f4", "u1", ("<f8", 3), "u1"],
                     "offsets": [0, 4, 8, 12, position, position + 24],
                     "itemsize": position + 28})  # 3 bytes of padding after position_valid


@lru_cache(maxsize=8)
def _person_dtype(num_keypoints: int) -> tuple[np.dtype, int]:
    """Structured dtype of one serialised Person (8-aligned start) and its unpadded length."""
    names = ["id", "score", "box", "count", "first"]
    formats: list = ["<i8", "<f4", ("<f4", 4), "<u4", _keypoint_dtype(True)]
    offsets = [0, 8, 12, 28, 32]
    end = 32 + 41
    if num_keypoints > 1:
        names.append("rest")
        formats.append((_keypoint_dtype(False), (num_keypoints - 1,)))
        offsets.append(76)
        end = 76 + 48 * (num_keypoints - 2) + 45
    itemsize = (end + 7) // 8 * 8
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": itemsize}), end


class _CdrWriter:
    def __init__(self) -> None:
        self.buffer = bytearray(_CDR_HEADER)

    def align(self, size: int) -> None:
        self.buffer += b"\0" * (-(len(self.buffer) - 4) % size)

    def pack(self, fmt: str, *values, size: int = 4) -> None:
        self.align(size)
        self.buffer += struct.pack(fmt, *values)

    def string(self, text: str) -> None:
        data = text.encode("utf-8")
        self.pack("<I", len(data) + 1)
        self.buffer += data + b"\0"


@lru_cache(maxsize=32)
def _cdr_prefix(frame_id: str, image_width: int, image_height: int, layout_name: str,
                threshold: float) -> tuple[bytes, bytes]:
    """The constant parts around the stamp: (frame_id .. keypoint_threshold), ready to append."""
    names, edge_from, edge_to = _layout_fields(layout_name)
    writer = _CdrWriter()
    writer.pack("<iI", 0, 0)  # stamp placeholder (replaced per message)
    writer.string(frame_id)
    writer.pack("<II", image_width, image_height)
    writer.string(layout_name)
    writer.pack("<I", len(names))
    for name in names:
        writer.string(name)
    for edges in (edge_from, edge_to):
        writer.pack("<I", len(edges))
        writer.pack(f"<{len(edges)}H", *edges, size=2)
    writer.pack("<f", threshold)
    return bytes(writer.buffer[:4]), bytes(writer.buffer[12:])


def person_array_cdr(keypoints: np.ndarray, scores: np.ndarray, layout: KeypointLayout | str, *,
                     header, image_width: int, image_height: int, keypoint_threshold: float,
                     score_threshold: float = 0.0, max_persons: int | None = None) -> tuple[bytes, int]:
    """The serialised PersonArray (CDR bytes) that ``person_array_from_arrays`` would build, and its
    person count. Publish the bytes with ``publisher.publish(data)``."""
    people = published_people(keypoints, scores, layout, keypoint_threshold=keypoint_threshold,
                              score_threshold=score_threshold, max_persons=max_persons)
    return person_array_cdr_bytes(people, header=header, image_width=image_width, image_height=image_height)


def person_array_cdr_bytes(people: PublishedPeople, *, header, image_width: int,
                           image_height: int) -> tuple[bytes, int]:
    """The serialised PersonArray of people already selected, and its person count."""
    layout, keypoints, valid = people.layout, people.keypoints, people.valid
    person_scores, threshold = people.scores, people.keypoint_threshold
    encapsulation, prefix = _cdr_prefix(header.frame_id, int(image_width), int(image_height), layout.name,
                                        float(threshold))
    data = bytearray(encapsulation)
    data += struct.pack("<iI", header.stamp.sec, header.stamp.nanosec)
    data += prefix
    count = len(people)
    data += struct.pack("<I", count)  # offset is 4-aligned here: prefix ends with a float32
    if count:
        data += b"\0" * (-(len(data) - 4) % 8)  # Person starts with an int64
        dtype, end = _person_dtype(layout.num_keypoints)
        records = np.zeros(count, dtype=dtype)
        records["id"] = Person.NO_ID if people.ids is None else people.ids
        records["score"] = person_scores
        records["box"] = keypoint_boxes(keypoints, valid)
        records["count"] = layout.num_keypoints
        first = records["first"]
        first["x"], first["y"], first["score"] = keypoints[:, 0, 0], keypoints[:, 0, 1], keypoints[:, 0, 2]
        first["valid"] = valid[:, 0]
        if layout.num_keypoints > 1:
            rest = records["rest"]
            rest["x"], rest["y"] = keypoints[:, 1:, 0], keypoints[:, 1:, 1]
            rest["score"] = keypoints[:, 1:, 2]
            rest["valid"] = valid[:, 1:]
        data += records.tobytes()[: dtype.itemsize * (count - 1) + end]
    return bytes(data), count


def cdr_matches_rclpy(layout: KeypointLayout | str = "coco17") -> bool:
    """True when ``person_array_cdr`` gives what rclpy's serializer gives (checked on a sample)."""
    from rclpy.serialization import deserialize_message, serialize_message
    from std_msgs.msg import Header

    layout = get_layout(layout) if isinstance(layout, str) else layout
    rng = np.random.default_rng(1)
    keypoints = rng.uniform(0, 1, (3, layout.num_keypoints, 3)).astype(np.float32)
    keypoints[..., :2] *= 500
    scores = rng.uniform(0, 1, 3).astype(np.float32)
    header = Header(frame_id="cdr_check_frame")
    header.stamp.sec, header.stamp.nanosec = 1_700_000_000, 123_456_789
    settings = dict(header=header, image_width=640, image_height=481, keypoint_threshold=0.3)
    expected = person_array_from_arrays(keypoints, scores, layout, **settings)
    data, _ = person_array_cdr(keypoints, scores, layout, **settings)
    try:
        decoded = deserialize_message(data, PersonArray)
    except Exception:
        return False
    return decoded == expected and len(data) == len(serialize_message(expected))
