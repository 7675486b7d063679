"""Pose estimates to litepose_ros/PersonArray, exactly as msg/*.msg documents the fields.

- one PersonArray per processed image, header copied from the image, also when nobody is there;
- keypoints dense (one per layout keypoint, in layout order), in source-image pixels;
- ``Keypoint.valid = score >= keypoint_threshold`` (the threshold travels in the message);
- ``Person.id``: the person's track id when tracked and confirmed (``PublishedPeople.ids``),
  ``Person.NO_ID`` otherwise (tentative tracks, people not tracked, tracking off);
- the box is the tight box around the valid keypoints, or around all keypoints when none is valid;
- persons sorted by decreasing score;
- 3D positions (``Keypoint.position``/``position_valid``/``position_spread``, ``Person.position``/
  ``position_valid``) from ``PublishedPeople.positions`` when the image had a matching depth image,
  all invalid and zero otherwise.
"""

from __future__ import annotations

import struct
from functools import lru_cache

import numpy as np
from geometry_msgs.msg import Point

from litepose_ros.layouts import KeypointLayout, get_layout
from litepose_ros.msg import Keypoint, Person, PersonArray
from litepose_ros.people import PublishedPeople, keypoint_boxes, published_people

# Keypoint.position is (0, 0, 0) without depth: one shared, never-modified Point saves building
# hundreds of them per image (a third of the conversion time).
_ORIGIN = Point()


@lru_cache(maxsize=8)
def _layout_fields(layout_name: str) -> tuple[list[str], list[int], list[int]]:
    layout = get_layout(layout_name)
    return (list(layout.keypoint_names), [a for a, _ in layout.edges], [b for _, b in layout.edges])


def person_array_from_arrays(
    keypoints: np.ndarray,
    scores: np.ndarray,
    layout: KeypointLayout | str,
    *,
    header,
    image_width: int,
    image_height: int,
    keypoint_threshold: float,
    score_threshold: float = 0.0,
    max_persons: int | None = None,
) -> PersonArray:
    """Build the PersonArray for one image from (N, K, 3) keypoints (x, y, score) and (N,) scores.

    ``header`` is the source image's std_msgs/Header (copied as is). People below
    ``score_threshold`` are left out, the rest sorted by decreasing score and cut to
    ``max_persons``.
    """
    people = published_people(
        keypoints,
        scores,
        layout,
        keypoint_threshold=keypoint_threshold,
        score_threshold=score_threshold,
        max_persons=max_persons,
    )
    return person_array_message(people, header=header, image_width=image_width, image_height=image_height)


def person_array_message(
    people: PublishedPeople, *, header, image_width: int, image_height: int
) -> PersonArray:
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
    positions = people.positions
    rows = zip(keypoints.tolist(), valid.tolist(), people.scores.tolist(), boxes, ids, strict=True)
    for index, (person_keypoints, person_valid, score, box, person_id) in enumerate(rows):
        x_min, y_min, x_max, y_max = box
        person = Person(
            id=person_id,
            score=score,
            x_min=x_min,
            y_min=y_min,
            x_max=x_max,
            y_max=y_max,
            keypoints=[
                Keypoint(x=x, y=y, score=s, valid=v, position=_ORIGIN)
                for (x, y, s), v in zip(person_keypoints, person_valid, strict=True)
            ],
        )
        if positions is not None:
            _fill_positions(person, positions, index)
        persons.append(person)
    message.persons = persons
    return message


def _fill_positions(person: Person, positions, index: int) -> None:
    """Copy person ``index``'s 3D positions (a ``litepose_ros.depth.KeypointPositions``) into it."""
    if positions.person_valid[index]:
        x, y, z = positions.person_positions[index].tolist()
        person.position, person.position_valid = Point(x=x, y=y, z=z), True
    for keypoint, xyz, position_valid, spread in zip(
        person.keypoints,
        positions.positions[index].tolist(),
        positions.valid[index].tolist(),
        positions.spread[index].tolist(),
        strict=True,
    ):
        if position_valid:
            keypoint.position = Point(x=xyz[0], y=xyz[1], z=xyz[2])
            keypoint.position_valid, keypoint.position_spread = True, spread


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


# A Keypoint is 48 bytes (x, y, score, valid, 3 pad, position at 16, position_valid at 40,
# 3 pad, position_spread at 44) and a Person 64 + 48 K bytes: both multiples of 8, so every
# Person and every Keypoint starts 8-aligned and all share one layout.
_KEYPOINT_DTYPE = np.dtype(
    {
        "names": ["x", "y", "score", "valid", "position", "position_valid", "spread"],
        "formats": ["<f4", "<f4", "<f4", "u1", ("<f8", 3), "u1", "<f4"],
        "offsets": [0, 4, 8, 12, 16, 40, 44],
        "itemsize": 48,
    }
)


@lru_cache(maxsize=8)
def _person_dtype(num_keypoints: int) -> np.dtype:
    """Structured dtype of one serialised Person (starting 8-aligned)."""
    return np.dtype(
        {
            "names": ["id", "score", "box", "position", "position_valid", "count", "keypoints"],
            "formats": [
                "<i8",
                "<f4",
                ("<f4", 4),
                ("<f8", 3),
                "u1",
                "<u4",
                (_KEYPOINT_DTYPE, (num_keypoints,)),
            ],
            "offsets": [0, 8, 12, 32, 56, 60, 64],
            "itemsize": 64 + 48 * num_keypoints,
        }
    )


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
def _cdr_prefix(
    frame_id: str, image_width: int, image_height: int, layout_name: str, threshold: float
) -> tuple[bytes, bytes]:
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


def person_array_cdr(
    keypoints: np.ndarray,
    scores: np.ndarray,
    layout: KeypointLayout | str,
    *,
    header,
    image_width: int,
    image_height: int,
    keypoint_threshold: float,
    score_threshold: float = 0.0,
    max_persons: int | None = None,
) -> tuple[bytes, int]:
    """The serialised PersonArray (CDR bytes) that ``person_array_from_arrays`` would build, and its
    person count. Publish the bytes with ``publisher.publish(data)``."""
    people = published_people(
        keypoints,
        scores,
        layout,
        keypoint_threshold=keypoint_threshold,
        score_threshold=score_threshold,
        max_persons=max_persons,
    )
    return person_array_cdr_bytes(people, header=header, image_width=image_width, image_height=image_height)


def person_array_cdr_bytes(
    people: PublishedPeople, *, header, image_width: int, image_height: int
) -> tuple[bytes, int]:
    """The serialised PersonArray of people already selected, and its person count."""
    layout, keypoints, valid = people.layout, people.keypoints, people.valid
    person_scores, threshold = people.scores, people.keypoint_threshold
    encapsulation, prefix = _cdr_prefix(
        header.frame_id, int(image_width), int(image_height), layout.name, float(threshold)
    )
    data = bytearray(encapsulation)
    data += struct.pack("<iI", header.stamp.sec, header.stamp.nanosec)
    data += prefix
    count = len(people)
    data += struct.pack("<I", count)  # offset is 4-aligned here: prefix ends with a float32
    if count:
        data += b"\0" * (-(len(data) - 4) % 8)  # Person starts with an int64
        records = np.zeros(count, dtype=_person_dtype(layout.num_keypoints))
        records["id"] = Person.NO_ID if people.ids is None else people.ids
        records["score"] = person_scores
        records["box"] = keypoint_boxes(keypoints, valid)
        records["count"] = layout.num_keypoints
        fields = records["keypoints"]
        fields["x"], fields["y"], fields["score"] = keypoints[..., 0], keypoints[..., 1], keypoints[..., 2]
        fields["valid"] = valid
        positions = people.positions
        if positions is not None:  # what is not valid stays 0, as in the message objects
            person_valid, keypoint_valid = positions.person_valid, positions.valid
            records["position"] = np.where(person_valid[:, None], positions.person_positions, 0.0)
            records["position_valid"] = person_valid
            fields["position"] = np.where(keypoint_valid[..., None], positions.positions, 0.0)
            fields["position_valid"] = keypoint_valid
            fields["spread"] = np.where(keypoint_valid, positions.spread, 0.0)
        data += records.tobytes()
    return bytes(data), count


def cdr_matches_rclpy(layout: KeypointLayout | str = "coco17") -> bool:
    """True when ``person_array_cdr`` gives what rclpy's serializer gives (checked on a sample)."""
    from rclpy.serialization import deserialize_message, serialize_message
    from std_msgs.msg import Header

    from litepose_ros.depth import KeypointPositions

    layout = get_layout(layout) if isinstance(layout, str) else layout
    rng = np.random.default_rng(1)
    keypoints = rng.uniform(0, 1, (3, layout.num_keypoints, 3)).astype(np.float32)
    keypoints[..., :2] *= 500
    scores = rng.uniform(0, 1, 3).astype(np.float32)
    header = Header(frame_id="cdr_check_frame")
    header.stamp.sec, header.stamp.nanosec = 1_700_000_000, 123_456_789
    size = dict(image_width=640, image_height=481)
    people = published_people(keypoints, scores, layout, keypoint_threshold=0.3)
    shape = people.valid.shape
    with_depth = people.with_positions(
        KeypointPositions(
            positions=rng.uniform(-3, 3, shape + (3,)),
            valid=rng.random(shape) < 0.5,
            spread=rng.uniform(0, 0.1, shape).astype(np.float32),
            person_positions=rng.uniform(-3, 3, (shape[0], 3)),
            person_valid=np.arange(shape[0]) % 2 == 0,
        )
    )
    for case in (people, with_depth):
        expected = person_array_message(case, header=header, **size)
        data, _ = person_array_cdr_bytes(case, header=header, **size)
        try:
            decoded = deserialize_message(data, PersonArray)
        except Exception:
            return False
        if decoded != expected or len(data) != len(serialize_message(expected)):
            return False
    return True
