"""The node process fills 3D keypoint positions from a registered depth image: the positions of a
person in front of a wall at a known distance, in 16UC1 and 32FC1 and at half resolution; the
markers drawn in 3D; wrong depth input (an RGB image, another camera frame, stamps that do not
match) published in 2D with the reason in the log and in /diagnostics, the node running on.

One node process (namespace /lp_depth) runs the skeleton model of ``test/synthetic_onnx.py`` (a
red blob is one person with a body-sized skeleton) with ``depth.enabled``. The publisher sends
``walk`` frames with a depth image of a fronto-parallel wall (``publish_frames.py --depth``), so
every keypoint's analytic position is known: z = the wall's distance, x = (u - cx) z / f.
"""

from __future__ import annotations

import numpy as np
import pytest
from ros_scripts.node_probe import NodeProbe, active_skeleton_node, run_publisher
from ros_scripts.publish_frames import FOCAL_PX, WALK_SIZE
from synthetic_onnx import write_skeleton_model

pytestmark = pytest.mark.ros

NAMESPACE = "/lp_depth"
# The colour camera of publish_frames.py: principal point at the image centre.
CX, CY = (WALK_SIZE[0] - 1) / 2.0, (WALK_SIZE[1] - 1) / 2.0


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    yield from active_skeleton_node(tmp_path_factory.mktemp("node_depth"), NAMESPACE, "depth.enabled:=true")


def stamp_of(message) -> tuple[int, int]:
    return message.header.stamp.sec, message.header.stamp.nanosec


def send(probe: NodeProbe, frames: int, *extra: str) -> list:
    """Send ``frames`` standing-person frames with these publish_frames.py options; the
    PersonArray of each, in order."""
    assert probe.wait_for(lambda: probe.node.count_subscribers(f"{NAMESPACE}/depth/image") > 0, 30.0), (
        f"the node does not subscribe to the depth images:\n{probe.log_text()}"
    )
    sent = run_publisher(NAMESPACE, ",".join(["walk"] * frames), "--walk-step", "0", *extra, rate=10.0)
    stamps = [(s["sec"], s["nanosec"]) for s in sent]
    assert probe.wait_for(lambda: set(stamps) <= {stamp_of(m) for m in probe.persons}, 15.0), probe.log_text()
    by_stamp = {stamp_of(m): m for m in probe.persons}
    return [by_stamp[stamp] for stamp in stamps]


def diagnostic_count(probe: NodeProbe, key: str) -> int:
    return int(probe.latest_diagnostic_values()[key]) if probe.diagnostics else 0


def assert_on_the_wall(message, distance: float) -> int:
    """Every valid keypoint inside the image has the analytic position on the wall (1 mm); returns
    how many keypoints were checked."""
    checked = 0
    for person in message.persons:
        for keypoint in person.keypoints:
            inside = 0 <= keypoint.x <= WALK_SIZE[0] - 1 and 0 <= keypoint.y <= WALK_SIZE[1] - 1
            if not keypoint.valid:
                assert not keypoint.position_valid  # only confident keypoints are measured
            if not (keypoint.valid and inside):
                continue
            assert keypoint.position_valid, keypoint
            expected = (
                (keypoint.x - CX) * distance / FOCAL_PX,
                (keypoint.y - CY) * distance / FOCAL_PX,
                distance,
            )
            position = (keypoint.position.x, keypoint.position.y, keypoint.position.z)
            assert position == pytest.approx(expected, abs=1e-3), keypoint
            assert 0.0 <= keypoint.position_spread < 1e-3  # a flat wall
            checked += 1
        assert person.position_valid and person.position.z == pytest.approx(distance, abs=1e-3)
    return checked


@pytest.mark.parametrize(("kind", "distance"), [("16uc1", 2.0), ("32fc1", 1.5), ("half16uc1", 2.5)])
def test_keypoints_get_their_position_on_the_wall(probe, kind, distance):
    before = diagnostic_count(probe, "images with depth")
    messages = send(probe, 3, "--depth", kind, "--depth-distance", str(distance))
    # camera_info and depth travel on their own topics: from the second image on both have arrived.
    checked = [assert_on_the_wall(m, distance) for m in messages[1:]]
    assert all(count >= 5 for count in checked), checked  # the person's skeleton, not a stray joint
    assert probe.wait_for_diagnostic(lambda v: int(v["images with depth"]) >= before + 2, 10.0)
    assert float(probe.latest_diagnostic_values()["depth step median (ms)"]) > 0.0


def test_a_depth_stream_overflowing_the_buffer_while_the_frame_is_processed_still_pairs(probe):
    # After each frame and its depth image, 12 more depth images (stamped 1-12 s later, 4 ms apart)
    # arrive: more than the node's depth buffer holds. Each frame is paired through the watch of its
    # stamp made on arrival, which keeps its depth image however long the frame waits and is
    # processed (on a slow board with a fast depth stream, the buffer alone would have lost it:
    # test_depth_pairing.py).
    messages = send(probe, 3, "--depth", "16uc1", "--depth-distance", "1.8", "--depth-flood", "12")
    checked = [assert_on_the_wall(m, 1.8) for m in messages[1:]]
    assert all(count >= 5 for count in checked), checked


def test_markers_are_drawn_at_the_3d_positions(probe):
    message = send(probe, 3, "--depth", "16uc1", "--depth-distance", "2.0")[-1]
    stamp = stamp_of(message)
    assert probe.wait_for(lambda: any(stamp_of(a.markers[0]) == stamp for a in probe.markers), 10.0)
    markers = next(a for a in probe.markers if stamp_of(a.markers[0]) == stamp)
    joints = next(m for m in markers.markers if m.ns == "joints")
    expected = sorted(
        (k.position.x, k.position.y, k.position.z)
        for k in message.persons[0].keypoints
        if k.valid and k.position_valid
    )
    drawn = sorted((p.x, p.y, p.z) for p in joints.points)
    assert len(drawn) == len(expected) >= 5
    assert np.allclose(drawn, expected, atol=1e-9)
    assert [p.z for p in joints.points] == pytest.approx([2.0] * len(drawn), abs=1e-3)  # not the 3 m plane


@pytest.mark.parametrize(
    ("kind", "log_words", "counter"),
    [
        ("rgb8", ("rgb8", "16UC1", "32FC1", f"{NAMESPACE}/depth/image"), "depth images rejected"),
        ("other_frame", ("other_camera_frame", "vtest_camera_optical_frame"), "depth images rejected"),
        ("uncalibrated", ("no calibration", f"{NAMESPACE}/depth/camera_info"), "depth images rejected"),
        ("unscalable", ("does not fit", "camera_info calibration", "fx=inf"), "depth images rejected"),
    ],
)
def test_wrong_depth_input_is_refused_with_the_reason_and_the_node_goes_on(probe, kind, log_words, counter):
    before = diagnostic_count(probe, counter)
    messages = send(probe, 2, "--depth", kind)
    assert messages[-1].persons, "the people are still published (in 2D)"
    assert not any(k.position_valid for m in messages for p in m.persons for k in p.keypoints)
    assert not any(p.position_valid for m in messages for p in m.persons)
    entry = probe.wait_for_log(log_words[0], 10.0)
    assert entry is not None, probe.log_text()
    assert all(word in entry.msg for word in log_words), entry.msg
    assert probe.wait_for_diagnostic(
        lambda v: int(v[counter]) >= before + 1 and log_words[0] in v["depth problem"], 10.0
    )
    # Good depth again: positions again (the node kept running).
    assert assert_on_the_wall(send(probe, 2, "--depth", "16uc1")[-1], 2.0) >= 5


def test_images_without_a_depth_image_at_their_time_are_published_in_2d_and_counted(probe):
    before = diagnostic_count(probe, "images without matching depth")
    messages = send(probe, 3, "--depth", "16uc1", "--depth-stamp-offset", "0.5")
    assert messages[-1].persons
    assert not any(k.position_valid for m in messages for p in m.persons for k in p.keypoints)
    assert probe.wait_for_diagnostic(lambda v: int(v["images without matching depth"]) >= before + 3, 10.0)
    entry = probe.wait_for_log("no depth image", 10.0)
    assert entry is not None and "depth.max_time_difference" in entry.msg, probe.log_text()


def test_node_in_the_loop_replays_a_depth_topic_into_the_node(tmp_path):
    """bag-eval --live with a depth topic: the node started by it gets the depth stream and its
    camera_info, and the report counts the frames whose keypoints got 3D positions."""
    from ros_scripts.publish_frames import walk_frame

    from litepose_ros.bags.node_in_the_loop import LoopOptions, run_node_in_the_loop
    from litepose_ros.bags.storage import (
        CAMERA_INFO_TYPE,
        IMAGE_TYPE,
        BagWriter,
        camera_info_cdr,
        project_typestore,
        raw_image_cdr,
    )

    model = write_skeleton_model(tmp_path / "skeleton.onnx")
    typestore = project_typestore()
    start, period, frames = 1_700_000_000_000_000_000, 100_000_000, 8
    width, height = WALK_SIZE
    wall = np.full((height, width), 1800, "<u2").view(np.uint8).reshape(height, width, 2)  # 1.8 m
    with BagWriter(tmp_path / "rgbd", "mcap") as writer:
        for topic, kind in (
            ("/rgbd/color/image_raw", IMAGE_TYPE),
            ("/rgbd/depth/image_raw", IMAGE_TYPE),
            ("/rgbd/depth/camera_info", CAMERA_INFO_TYPE),
        ):
            writer.add_topic(topic, kind)
        for index in range(frames):
            stamp = start + index * period
            writer.write(
                "/rgbd/color/image_raw",
                stamp,
                raw_image_cdr(typestore, walk_frame(index, 0), stamp, "rgbd_optical"),
            )
            writer.write(
                "/rgbd/depth/camera_info",
                stamp + 1,
                camera_info_cdr(
                    typestore,
                    width,
                    height,
                    fx=FOCAL_PX,
                    fy=FOCAL_PX,
                    cx=CX,
                    cy=CY,
                    stamp=stamp,
                    frame_id="rgbd_optical",
                ),
            )
            writer.write(
                "/rgbd/depth/image_raw",
                stamp + 2,
                raw_image_cdr(typestore, wall, stamp, "rgbd_optical", encoding="16UC1"),
            )
    options = LoopOptions(
        image_topic="/rgbd/color/image_raw",
        camera_info_topic="",
        model=model,
        node_namespace="/lp_depth_loop",
        record_annotated=False,
        rate=1.0,
        node_parameters={"threads": "1"},
        depth_topic="/rgbd/depth/image_raw",
    )
    result = run_node_in_the_loop(tmp_path / "rgbd", tmp_path / "live", options, log=lambda _: None)
    processed = [f for f in result.frames if f.received is not None]
    assert len(processed) >= frames - 2, result.report["frames"]  # real time: the first may be early
    depth = result.report["depth"]
    # The first images may come before the node has the depth camera_info: all the later ones have 3D.
    assert depth["frames_with_3d_positions"] >= len(processed) - 2 and depth["frames_with_3d_positions"] >= 4
    assert all(f.positions >= 5 for f in processed[2:]), [f.positions for f in processed]
    assert "frames with 3D positions" in (tmp_path / "live" / "summary.md").read_text()


def test_no_depth_stream_at_all_is_said_with_the_fix(probe):
    from ros_scripts.node_probe import TRANSITIONS

    # Deactivate and activate: the depth images kept from earlier tests are forgotten.
    assert probe.change_state(TRANSITIONS["deactivate"]) and probe.change_state(TRANSITIONS["activate"])
    before = diagnostic_count(probe, "images without matching depth")
    messages = send(probe, 2)  # colour only
    assert messages[-1].persons and not any(p.position_valid for m in messages for p in m.persons)
    entry = probe.wait_for_log("no depth image has come", 10.0)
    assert entry is not None and "depth_topic" in entry.msg and f"{NAMESPACE}/depth/image" in entry.msg
    assert probe.wait_for_diagnostic(lambda v: int(v["images without matching depth"]) >= before + 2, 10.0)
