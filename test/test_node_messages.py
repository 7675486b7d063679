"""Pose arrays to PersonArray and MarkerArray, in process: every rule msg/*.msg and markers.py document."""

from __future__ import annotations

import numpy as np
import pytest
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from litepose_ros.layouts import COCO_17, CROWDPOSE_14
from litepose_ros.people import keypoint_boxes, select_people
from litepose_ros.ros.conversion import person_array_from_arrays
from litepose_ros.ros.markers import (
    LABELS_NS,
    LIMBS_NS,
    MarkerArrayBuilder,
    MarkerStyle,
    PinholeIntrinsics,
    back_project,
    people_markers,
    person_array_markers,
)

pytestmark = pytest.mark.ros


def random_people(count: int, layout=COCO_17, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    keypoints = np.zeros((count, layout.num_keypoints, 3), np.float32)
    keypoints[..., 0] = rng.uniform(-3, 770, keypoints.shape[:2])
    keypoints[..., 1] = rng.uniform(-3, 580, keypoints.shape[:2])
    keypoints[..., 2] = rng.uniform(0, 1, keypoints.shape[:2])
    scores = rng.uniform(0, 1, count).astype(np.float32)
    return keypoints, scores


def header() -> Header:
    message = Header(frame_id="camera_optical_frame")
    message.stamp.sec, message.stamp.nanosec = 1700000000, 123456789
    return message


def test_person_array_follows_the_message_documentation():
    keypoints, scores = random_people(6)
    scores[2] = scores[4]  # a tie keeps the estimator's order
    message = person_array_from_arrays(
        keypoints, scores, COCO_17, header=header(), image_width=768, image_height=576, keypoint_threshold=0.3
    )
    assert message.header == header()
    assert (message.image_width, message.image_height) == (768, 576)
    assert message.layout == "coco17"
    assert list(message.keypoint_names) == list(COCO_17.keypoint_names)
    assert list(zip(message.edge_from, message.edge_to, strict=True)) == list(COCO_17.edges)
    assert len(message.persons) == 6
    published_scores = [p.score for p in message.persons]
    assert published_scores == sorted(published_scores, reverse=True)
    order = np.argsort(-scores, kind="stable")
    for person, index in zip(message.persons, order, strict=True):
        assert person.id == person.NO_ID == -1
        assert person.score == pytest.approx(float(scores[index]))
        assert len(person.keypoints) == 17  # dense
        xs, ys = [], []
        for keypoint, (x, y, s) in zip(person.keypoints, keypoints[index], strict=True):
            assert (keypoint.x, keypoint.y, keypoint.score) == pytest.approx((x, y, s))
            # The documented rule, checked with the values as they travel (float32).
            assert keypoint.valid == (np.float32(keypoint.score) >= np.float32(message.keypoint_threshold))
            assert not keypoint.position_valid
            assert (keypoint.position.x, keypoint.position.y, keypoint.position.z) == (0.0, 0.0, 0.0)
            if keypoint.valid:
                xs.append(keypoint.x)
                ys.append(keypoint.y)
        assert xs, "random scores in [0, 1] leave some keypoint valid"
        assert (person.x_min, person.y_min, person.x_max, person.y_max) == pytest.approx(
            (min(xs), min(ys), max(xs), max(ys))
        )
        assert person.x_min <= person.x_max and person.y_min <= person.y_max


def test_box_falls_back_to_all_keypoints_when_none_is_valid():
    keypoints = np.array([[[10, 20, 0.1], [30, 5, 0.2], [-2, 40, 0.05]]], np.float32)
    boxes = keypoint_boxes(keypoints, keypoints[:, :, 2] >= 0.5)
    np.testing.assert_allclose(boxes, [[-2, 5, 30, 40]])
    boxes = keypoint_boxes(keypoints, keypoints[:, :, 2] >= 0.15)
    np.testing.assert_allclose(boxes, [[30, 5, 30, 5]])


def test_thresholds_and_max_persons_select_the_best_people():
    keypoints, _ = random_people(5)
    scores = np.array([0.2, 0.9, 0.05, 0.5, 0.7], np.float32)
    assert select_people(keypoints, scores).tolist() == [1, 4, 3, 0, 2]
    assert select_people(keypoints, scores, score_threshold=0.3).tolist() == [1, 4, 3]
    assert select_people(keypoints, scores, score_threshold=0.3, max_persons=2).tolist() == [1, 4]
    message = person_array_from_arrays(
        keypoints,
        scores,
        "coco17",
        header=header(),
        image_width=10,
        image_height=10,
        keypoint_threshold=0.5,
        score_threshold=0.3,
        max_persons=2,
    )
    assert [p.score for p in message.persons] == pytest.approx([0.9, 0.7])


def test_no_people_still_gives_a_complete_message():
    message = person_array_from_arrays(
        np.zeros((0, 14, 3)),
        np.zeros(0),
        CROWDPOSE_14,
        header=header(),
        image_width=640,
        image_height=480,
        keypoint_threshold=0.25,
    )
    assert message.persons == [] and message.layout == "crowdpose14"
    assert len(message.keypoint_names) == 14 and message.keypoint_threshold == 0.25


def test_wrong_keypoint_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"keypoints must be \(N, 17, 3\) for layout coco17"):
        person_array_from_arrays(
            np.zeros((2, 14, 3)),
            np.zeros(2),
            COCO_17,
            header=header(),
            image_width=1,
            image_height=1,
            keypoint_threshold=0.3,
        )


# --- markers -------------------------------------------------------------------------------------


def test_back_projection_with_camera_info_is_the_pinhole_model():
    intrinsics = PinholeIntrinsics.from_camera_info([500, 0, 320, 0, 400, 240, 0, 0, 1], 640, 480, 640, 480)
    points = back_project(np.array([[320.0, 240.0], [820.0, 40.0]]), intrinsics, 2.0)
    np.testing.assert_allclose(points, [[0, 0, 2], [(820 - 320) / 500 * 2, (40 - 240) / 400 * 2, 2]])


def test_camera_info_of_another_resolution_is_rescaled():
    # Calibrated at 1280 x 960, image binned to 640 x 480: the same ray through the same scene point.
    full = PinholeIntrinsics.from_camera_info([1000, 0, 639.5, 0, 1000, 479.5, 0, 0, 1], 1280, 960, 1280, 960)
    half = PinholeIntrinsics.from_camera_info([1000, 0, 639.5, 0, 1000, 479.5, 0, 0, 1], 1280, 960, 640, 480)
    assert (half.fx, half.fy, half.cx, half.cy) == pytest.approx((500, 500, 319.5, 239.5))
    # Pixel (u, v) in the full image is (u + 0.5) / 2 - 0.5 in the half one.
    u, v = 901.0, 100.0
    binned = np.array([[(u + 0.5) / 2 - 0.5, (v + 0.5) / 2 - 0.5]])
    np.testing.assert_allclose(back_project(np.array([[u, v]]), full, 3.0), back_project(binned, half, 3.0))


def test_uncalibrated_camera_info_falls_back_to_the_virtual_camera():
    assert PinholeIntrinsics.from_camera_info([0] * 9, 640, 480, 640, 480) is None
    virtual = PinholeIntrinsics.virtual(768, 576)
    assert (virtual.fx, virtual.fy, virtual.cx, virtual.cy) == (768, 768, 383.5, 287.5)
    # The documented scale: one pixel = depth / image width metres.
    points = back_project(np.array([[383.5, 287.5], [384.5, 287.5]]), virtual, 3.0)
    assert points[1, 0] - points[0, 0] == pytest.approx(3.0 / 768)


def check_well_formed(array, frame_id: str) -> None:
    """What RViz needs: known types, non-zero scales, frames, unique ids, even line lists."""
    assert array.markers[0].action == Marker.DELETEALL
    keys = set()
    for marker in array.markers[1:]:
        assert marker.action == Marker.ADD
        assert marker.header.frame_id == frame_id
        assert marker.type in (Marker.SPHERE_LIST, Marker.LINE_LIST, Marker.TEXT_VIEW_FACING)
        assert (marker.ns, marker.id) not in keys
        keys.add((marker.ns, marker.id))
        assert marker.pose.orientation.w == 1.0
        assert marker.color.a > 0
        if marker.type == Marker.SPHERE_LIST:
            assert min(marker.scale.x, marker.scale.y, marker.scale.z) > 0 and marker.points
        elif marker.type == Marker.LINE_LIST:
            assert marker.scale.x > 0 and marker.points and len(marker.points) % 2 == 0
        else:
            assert marker.scale.z > 0 and marker.text
        assert all(np.isfinite([p.x, p.y, p.z]).all() for p in marker.points)


def test_markers_per_person_with_stable_ids_and_only_valid_keypoints():
    keypoints, scores = random_people(4)
    order = np.argsort(-scores)
    keypoints, scores = keypoints[order], scores[order]
    valid = keypoints[:, :, 2] >= 0.3
    intrinsics = PinholeIntrinsics.virtual(768, 576)
    style = MarkerStyle(depth=2.5, joint_diameter=0.04, line_width=0.01, lifetime=0.5)
    array = people_markers(
        keypoints, scores, valid, edges=COCO_17.edges, header=header(), intrinsics=intrinsics, style=style
    )
    check_well_formed(array, "camera_optical_frame")
    by_key = {(m.ns, m.id): m for m in array.markers[1:]}
    for rank in range(4):
        joints = by_key["joints", rank]
        assert joints.type == Marker.SPHERE_LIST and len(joints.points) == valid[rank].sum()
        assert joints.scale.x == pytest.approx(0.04)
        assert all(p.z == pytest.approx(2.5) for p in joints.points)
        expected_edges = [(a, b) for a, b in COCO_17.edges if valid[rank, a] and valid[rank, b]]
        if expected_edges:
            limbs = by_key[LIMBS_NS, rank]
            assert len(limbs.points) == 2 * len(expected_edges)
            first = back_project(keypoints[rank, expected_edges[0][0], :2], intrinsics, 2.5)
            assert (limbs.points[0].x, limbs.points[0].y) == pytest.approx(tuple(first[:2]))
            assert limbs.color == joints.color
        label = by_key[LABELS_NS, rank]
        assert label.text == f"{scores[rank]:.2f}"
        assert (label.lifetime.sec, label.lifetime.nanosec) == (0, 500_000_000)
    colors = {
        (by_key["joints", r].color.r, by_key["joints", r].color.g, by_key["joints", r].color.b)
        for r in range(4)
    }
    assert len(colors) == 4  # one colour per person


def test_a_person_has_the_same_colour_in_rviz_and_in_the_annotated_image():
    from litepose_ros.drawing import person_color as drawn_color
    from litepose_ros.ros.markers import person_color as marker_color

    for rank in range(40):
        marker = marker_color(rank)
        as_bgr = tuple(int(round(float(c) * 255)) for c in (marker.b, marker.g, marker.r))
        assert as_bgr == drawn_color(rank)


def test_no_people_gives_only_deleteall_and_builder_reuse_keeps_arrays_correct():
    builder = MarkerArrayBuilder()
    style = MarkerStyle(show_labels=False)
    intrinsics = PinholeIntrinsics.virtual(100, 100)
    empty = builder.build(
        np.zeros((0, 17, 3)),
        np.zeros(0),
        np.zeros((0, 17), bool),
        edges=COCO_17.edges,
        header=header(),
        intrinsics=intrinsics,
        style=style,
    )
    assert [m.action for m in empty.markers] == [Marker.DELETEALL]
    keypoints, scores = random_people(3, seed=1)
    valid = keypoints[:, :, 2] >= 0.2
    first = builder.build(
        keypoints, scores, valid, edges=COCO_17.edges, header=header(), intrinsics=intrinsics, style=style
    )
    check_well_formed(first, "camera_optical_frame")
    assert len(first.markers) == 7 and not any(m.ns == LABELS_NS for m in first.markers)
    # A fresh build from new Marker objects gives the same array as the reused ones.
    again = builder.build(
        keypoints, scores, valid, edges=COCO_17.edges, header=header(), intrinsics=intrinsics, style=style
    )
    fresh = people_markers(
        keypoints, scores, valid, edges=COCO_17.edges, header=header(), intrinsics=intrinsics, style=style
    )
    assert again == fresh


def test_markers_from_a_person_array_message():
    keypoints, scores = random_people(3, seed=2)
    message = person_array_from_arrays(
        keypoints, scores, COCO_17, header=header(), image_width=768, image_height=576, keypoint_threshold=0.3
    )
    array = person_array_markers(
        message, PinholeIntrinsics.virtual(768, 576), MarkerStyle(), frame_id="other_frame"
    )
    check_well_formed(array, "other_frame")
    assert sum(m.ns == "joints" for m in array.markers) == 3


@pytest.mark.parametrize(
    ("field", "value"), [("depth", 0.0), ("joint_diameter", -1.0), ("lifetime", -0.1), ("alpha", 0.0)]
)
def test_bad_marker_style_is_refused(field, value):
    with pytest.raises(ValueError, match=field):
        MarkerStyle(**{field: value})


@pytest.mark.parametrize(
    ("count", "layout", "frame_id", "selection"),
    [
        (0, COCO_17, "camera_optical_frame", {}),
        (1, COCO_17, "", {}),
        (7, COCO_17, "kamera_optisch_ü", {"score_threshold": 0.3, "max_persons": 4}),
        (5, CROWDPOSE_14, "cam", {"max_persons": 2}),
    ],
)
def test_direct_cdr_bytes_are_the_same_message_as_the_objects(count, layout, frame_id, selection):
    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message, serialize_message

    from litepose_ros.ros.conversion import cdr_matches_rclpy, person_array_cdr

    keypoints, scores = random_people(count, layout, seed=count)
    stamp = header()
    stamp.frame_id = frame_id
    settings = dict(header=stamp, image_width=1280, image_height=721, keypoint_threshold=0.42, **selection)
    expected = person_array_from_arrays(keypoints, scores, layout, **settings)
    data, person_count = person_array_cdr(keypoints, scores, layout, **settings)
    assert person_count == len(expected.persons)
    assert deserialize_message(data, PersonArray) == expected
    assert len(data) == len(serialize_message(expected))  # same layout, padding included
    assert cdr_matches_rclpy(layout)


# --- incoming images read from their serialized bytes ------------------------------------------------


@pytest.mark.parametrize(
    ("frame_id", "encoding", "width"),
    [("", "bgr8", 5), ("c", "mono8", 7), ("front_camera_optical_frame", "yuv422", 6), ("ü", "rgba8", 3)],
)
def test_serialized_images_are_read_without_building_messages(frame_id, encoding, width):
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from litepose_ros.image_encodings import raw_image_to_array
    from litepose_ros.ros.image_messages import parse_image

    channels = {"bgr8": 3, "mono8": 1, "yuv422": 2, "rgba8": 4}[encoding]
    rng = np.random.default_rng(width)
    pixels = rng.integers(0, 256, (4, width * channels + 3), dtype=np.uint8)  # 3 bytes of row padding
    message = Image(height=4, width=width, encoding=encoding, is_bigendian=1, step=pixels.shape[1])
    message.header.frame_id = frame_id
    message.header.stamp.sec, message.header.stamp.nanosec = -5, 999_999_999
    message.data = pixels.tobytes()
    parsed = parse_image(serialize_message(message))
    assert parsed.header == message.header
    assert (parsed.height, parsed.width, parsed.encoding, parsed.is_bigendian, parsed.step) == (
        4,
        width,
        encoding,
        True,
        pixels.shape[1],
    )
    assert bytes(parsed.data) == pixels.tobytes()
    # The view feeds the converter directly.
    converted, _ = raw_image_to_array(parsed.data, parsed.encoding, parsed.height, parsed.width, parsed.step)
    assert converted.shape == (4, width, 3)


def test_serialized_compressed_images_are_read():
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import CompressedImage

    from litepose_ros.ros.image_messages import parse_compressed_image
    from litepose_ros.samples import vtest_frame_paths

    jpeg = vtest_frame_paths()[0].read_bytes()
    message = CompressedImage(format="bgr8; jpeg compressed bgr8")
    message.header.frame_id = "cam"
    message.data = jpeg
    parsed = parse_compressed_image(serialize_message(message))
    assert parsed.header == message.header and parsed.format == message.format
    assert bytes(parsed.data) == jpeg


@pytest.mark.parametrize(("sec", "nanosec"), [(0, 0), (1_700_000_000, 123_456_789), (-5, 999_999_999)])
def test_the_header_stamp_is_read_from_the_first_bytes_of_either_image_type(sec, nanosec):
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import CompressedImage, Image

    from litepose_ros.ros.image_messages import header_stamp_ns

    for message in (Image(height=1, width=1, encoding="mono8", step=1, data=b"\x07"), CompressedImage()):
        message.header.stamp.sec, message.header.stamp.nanosec = sec, nanosec
        message.header.frame_id = "camera_color_optical_frame"
        assert header_stamp_ns(serialize_message(message)) == sec * 1_000_000_000 + nanosec
    assert header_stamp_ns(b"") is None and header_stamp_ns(b"\x00\x01\x00\x00\x01") is None
    assert header_stamp_ns(b"\x07\x07\x00\x00" + bytes(8)) is None  # not CDR


@pytest.mark.parametrize("cut", [0, 3, 10, 30, -1])
def test_truncated_or_foreign_bytes_are_a_clear_error(cut):
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from litepose_ros.image_encodings import ImageFormatError
    from litepose_ros.ros.image_messages import parse_image

    message = Image(height=2, width=2, encoding="mono8", step=2)
    message.header.frame_id = "camera"
    message.data = b"\x01\x02\x03\x04"
    data = serialize_message(message)
    with pytest.raises(ImageFormatError, match="malformed sensor_msgs/Image message"):
        parse_image(data[:cut])


# sha256 of the PersonArray CDR bytes below, as the node publishes them since the messages gained
# the 3D fields (Keypoint.position_spread, Person.position/position_valid; before: 9f092749...):
# the bytes on the wire must not change with refactoring.
PUBLISHED_BYTES_SHA256 = "8ba413dd423d5124b8a2a8e9f2ff289cfbb6c625db71bfe3abd3d51d574d6e1a"


def test_published_bytes_are_unchanged():
    import hashlib

    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message

    from litepose_ros.ros.conversion import person_array_cdr

    rng = np.random.default_rng(13)
    digest = hashlib.sha256()
    for layout, k in (("coco17", 17), ("crowdpose14", 14)):
        for n in (0, 1, 7, 40):
            keypoints = rng.uniform(-5, 700, (n, k, 3)).astype(np.float32)
            keypoints[..., 2] = rng.uniform(0, 1, (n, k))
            scores = rng.uniform(0, 1, n).astype(np.float32)
            stamped = Header(frame_id="camera_optical_frame")
            stamped.stamp.sec, stamped.stamp.nanosec = 1_700_000_123, 987_654_321
            settings = dict(
                header=stamped,
                image_width=768,
                image_height=576,
                keypoint_threshold=0.3,
                score_threshold=0.1,
                max_persons=30,
            )
            data, count = person_array_cdr(keypoints, scores, layout, **settings)
            message = person_array_from_arrays(keypoints, scores, layout, **settings)
            assert deserialize_message(data, PersonArray) == message and count == len(message.persons)
            digest.update(data)
    assert digest.hexdigest() == PUBLISHED_BYTES_SHA256


# --- track ids --------------------------------------------------------------------------------------


def test_track_ids_travel_in_both_serialisations_and_colour_and_label_the_markers():
    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message

    from litepose_ros.people import colour_indices, person_rgb, published_people
    from litepose_ros.ros.conversion import person_array_cdr_bytes, person_array_message

    keypoints, scores = random_people(4, seed=5)
    people = published_people(keypoints, scores, COCO_17, keypoint_threshold=0.3)
    ids = np.array([7, -1, 12, 3])
    tracked = people.with_tracking(ids)
    settings = dict(header=header(), image_width=768, image_height=576)
    message = person_array_message(tracked, **settings)
    assert [p.id for p in message.persons] == ids.tolist()
    data, _ = person_array_cdr_bytes(tracked, **settings)
    assert deserialize_message(data, PersonArray) == message
    # Without ids: NO_ID everywhere, the bytes as before tracking existed.
    assert (
        person_array_cdr_bytes(people, **settings)[0]
        == person_array_cdr_bytes(people.with_tracking(np.full(4, -1)), **settings)[0]
    )

    assert colour_indices(4, ids) == [7, 1, 12, 3]  # the id, or the rank without one
    array = person_array_markers(message, PinholeIntrinsics.virtual(768, 576), MarkerStyle())
    by_key = {(m.ns, m.id): m for m in array.markers[1:]}
    for rank, (person, colour) in enumerate(zip(message.persons, colour_indices(4, ids), strict=True)):
        if ("joints", rank) not in by_key:
            continue
        joints = by_key["joints", rank]
        assert (joints.color.r, joints.color.g, joints.color.b) == pytest.approx(person_rgb(colour))
        expected = f"{person.score:.2f}" if person.id == -1 else f"#{person.id} {person.score:.2f}"
        assert by_key[LABELS_NS, rank].text == expected


def test_smoothed_keypoints_replace_positions_but_never_scores():
    from litepose_ros.people import published_people

    keypoints, scores = random_people(2, seed=6)
    people = published_people(keypoints, scores, COCO_17, keypoint_threshold=0.3)
    moved = people.keypoints.copy()
    moved[..., :2] += 1.5
    tracked = people.with_tracking(np.array([1, 2]), moved)
    np.testing.assert_array_equal(tracked.keypoints, moved)
    np.testing.assert_array_equal(tracked.valid, people.valid)
    with pytest.raises(ValueError, match="track ids"):
        people.with_tracking(np.array([1]))


# --- 3D positions (depth) ---------------------------------------------------------------------------


def test_3d_positions_travel_in_both_serialisations_and_place_the_markers():
    from litepose_ros.msg import PersonArray
    from rclpy.serialization import deserialize_message, serialize_message

    from litepose_ros.depth import KeypointPositions
    from litepose_ros.people import published_people
    from litepose_ros.ros.conversion import person_array_cdr_bytes, person_array_message

    keypoints, scores = random_people(3, seed=8)
    people = published_people(keypoints, scores, COCO_17, keypoint_threshold=0.3)
    rng = np.random.default_rng(9)
    shape = people.valid.shape
    valid = people.valid & (rng.random(shape) < 0.7)
    valid[2] = False  # a person without any measured keypoint
    positions = KeypointPositions(
        positions=np.where(valid[..., None], rng.uniform(-2, 4, shape + (3,)), 0.0),
        valid=valid,
        spread=np.where(valid, rng.uniform(0, 0.05, shape), 0.0).astype(np.float32),
        person_positions=np.array([[0.1, -0.2, 2.5], [1.0, 0.3, 3.75], [0.0, 0.0, 0.0]]),
        person_valid=np.array([True, True, False]),
    )
    with_depth = people.with_positions(positions)
    settings = dict(header=header(), image_width=768, image_height=576)
    message = person_array_message(with_depth, **settings)
    for person, rows, row_valid, spreads, centre, centre_valid in zip(
        message.persons,
        positions.positions,
        valid,
        positions.spread,
        positions.person_positions,
        positions.person_valid,
        strict=True,
    ):
        assert person.position_valid == centre_valid
        assert (person.position.x, person.position.y, person.position.z) == tuple(centre)
        assert [k.position_valid for k in person.keypoints] == row_valid.tolist()
        assert [(k.position.x, k.position.y, k.position.z) for k in person.keypoints] == [
            tuple(xyz) for xyz in rows
        ]
        assert [k.position_spread for k in person.keypoints] == pytest.approx(spreads.tolist())
    data, _ = person_array_cdr_bytes(with_depth, **settings)
    assert deserialize_message(data, PersonArray) == message
    assert len(data) == len(serialize_message(message))
    with pytest.raises(ValueError, match="3D positions"):
        people.with_positions(KeypointPositions.empty(2, COCO_17.num_keypoints))

    # Markers from the message: joints at the measured positions, only the measured ones.
    array = person_array_markers(message, PinholeIntrinsics.virtual(768, 576), MarkerStyle())
    joints = {m.id: m for m in array.markers if m.ns == "joints"}
    for rank in (0, 1):
        drawn = [(p.x, p.y, p.z) for p in joints[rank].points]
        assert drawn == [tuple(xyz) for xyz in positions.positions[rank][valid[rank]]]
    assert 2 not in joints  # nothing measured: not drawn at a made-up depth
    # Without positions the plane as before.
    plane = person_array_markers(
        person_array_message(people, **settings), PinholeIntrinsics.virtual(768, 576), MarkerStyle(depth=3.0)
    )
    assert {p.z for m in plane.markers if m.ns == "joints" for p in m.points} == {3.0}
