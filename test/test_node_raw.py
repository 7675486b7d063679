"""The node process on raw sensor_msgs/Image input: real frames in, skeletons, markers and an
annotated image out; bad images survived and reported; parameters validated at run time.

One node process serves the whole module (namespace /lp_raw); a publisher process sends the
bundled vtest frames; this process subscribes and asserts.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import PROJECT_DIR, ROS_SCRIPTS
from ros_scripts.node_probe import NodeProbe, node_model_path, probe_running_node, run_publisher
from test_node_messages import check_well_formed

from litepose_ros.layouts import COCO_17

pytestmark = pytest.mark.ros

NAMESPACE = "/lp_raw"
WIDTH, HEIGHT = 768, 576


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return node_model_path(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def probe(model, tmp_path_factory):
    path, _ = model
    log_path = tmp_path_factory.mktemp("node_raw") / "node.log"
    # The package's parameter file (every parameter at its default), as the launch file passes it.
    yield from probe_running_node(
        log_path,
        NAMESPACE,
        f"model_path:={path}",
        "threads:=1",
        annotated=True,
        params_file=PROJECT_DIR / "config" / "litepose.yaml",
    )


def persons_by_stamp(probe: NodeProbe) -> dict[tuple[int, int], object]:
    return {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in probe.persons}


def stamp_of(message) -> tuple[int, int]:
    return message.header.stamp.sec, message.header.stamp.nanosec


@pytest.fixture(scope="module")
def good_frames(probe) -> set[tuple[int, int]]:
    """Real frames in every supported raw encoding, with camera_info; their stamps, once all persons came."""
    kinds = ["bgr8", "rgb8", "bgra8", "mono8", "yuv422", "bgr8"]
    sent = run_publisher(NAMESPACE, ",".join(kinds), "--camera-info", rate=5.0)
    stamps = {(s["sec"], s["nanosec"]) for s in sent}
    assert probe.wait_for(
        lambda: stamps <= set(persons_by_stamp(probe)) and stamps <= {stamp_of(m) for m in probe.annotated},
        15.0,
    ), f"persons missing for {sorted(stamps - set(persons_by_stamp(probe)))}; node log:\n{probe.log_text()}"
    return stamps


def test_every_supported_encoding_of_real_frames_gives_a_person_array(probe, model, good_frames):
    _, trained = model
    received = persons_by_stamp(probe)
    for stamp in good_frames:
        message = received[stamp]
        assert message.header.frame_id == "vtest_camera_optical_frame"  # the source header, unchanged
        assert (message.image_width, message.image_height) == (WIDTH, HEIGHT)
        assert message.layout == COCO_17.name and list(message.keypoint_names) == list(COCO_17.keypoint_names)
        assert len(message.edge_from) == len(message.edge_to) == len(COCO_17.edges)
        scores = [p.score for p in message.persons]
        assert scores == sorted(scores, reverse=True)
        ids = [p.id for p in message.persons if p.id != -1]
        assert len(ids) == len(set(ids))  # one person per track
        for person in message.persons:
            assert len(person.keypoints) == COCO_17.num_keypoints
            # Tracking is on by default: a track id (>= 1) once the person's track is confirmed,
            # NO_ID (-1) before (test_node_tracking.py checks which is which).
            assert person.id == -1 or person.id >= 1
            assert person.score >= 0.1  # the default score_threshold
            threshold = np.float32(message.keypoint_threshold)
            for keypoint in person.keypoints:
                # Source pixels (not network input pixels): inside the 768 x 576 frame, give or take.
                assert -0.05 * WIDTH <= keypoint.x <= 1.05 * WIDTH
                assert -0.05 * HEIGHT <= keypoint.y <= 1.05 * HEIGHT
                assert keypoint.valid == (np.float32(keypoint.score) >= threshold)
    if trained:
        # The bundled model finds the pedestrians of vtest (several per frame) in every encoding.
        counts = [len(received[stamp].persons) for stamp in good_frames]
        assert min(counts) >= 2, counts
        widest = max(p.x_max - p.x_min for stamp in good_frames for p in received[stamp].persons)
        assert widest > 128, "keypoints look like network-input pixels, not source pixels"


def test_markers_are_well_formed_and_match_the_persons(probe, good_frames):
    received = persons_by_stamp(probe)
    arrays = [a for a in probe.markers if stamp_of(a.markers[0]) in good_frames]
    assert len(arrays) == len(good_frames)  # one array per image (this process subscribes)
    for array in arrays:
        check_well_formed(array, "vtest_camera_optical_frame")
        persons = received[stamp_of(array.markers[0])].persons
        drawn = sum(1 for m in array.markers if m.ns == "joints")
        assert drawn == sum(1 for p in persons if any(k.valid for k in p.keypoints))
        for marker in array.markers[1:]:
            # camera_info came with the frames: points lie on the 3 m plane in front of the camera.
            assert all(p.z == pytest.approx(3.0) for p in marker.points)


def test_broken_camera_info_falls_back_to_the_documented_scaling(probe):
    sent = run_publisher(NAMESPACE, "bgr8", "--camera-info", "--broken-camera-info", rate=5.0)
    stamp = (sent[0]["sec"], sent[0]["nanosec"])
    assert probe.wait_for(lambda: any(stamp_of(a.markers[0]) == stamp for a in probe.markers), 10.0)
    array = next(a for a in probe.markers if stamp_of(a.markers[0]) == stamp)
    points = [p for m in array.markers for p in [*m.points, m.pose.position]]
    assert points and all(math.isfinite(v) and abs(v) < 100 for p in points for v in (p.x, p.y, p.z))
    entry = probe.wait_for_log("camera_info")
    assert entry is not None and entry.level == 30 and "fallback" in entry.msg, probe.log_text()
    assert probe.wait_for_diagnostic(lambda v: int(v.get("camera_info rejected", 0)) >= 1, 10.0)
    assert probe.wait_for_diagnostic(lambda v: "fy = 1e-300" in v.get("camera_info problem", ""), 10.0)


def test_annotated_image_is_published_for_subscribers(probe, good_frames):
    for image in probe.annotated:
        if stamp_of(image) in good_frames:
            assert image.encoding == "bgr8" and (image.width, image.height) == (WIDTH, HEIGHT)
            assert image.step == WIDTH * 3 and len(image.data) == WIDTH * HEIGHT * 3
            assert image.header.frame_id == "vtest_camera_optical_frame"
            pixels = np.frombuffer(bytes(image.data), np.uint8)
            assert pixels.std() > 10  # a real picture, not a blank canvas


def test_bad_images_are_reported_and_the_node_keeps_working(probe):
    expected = {
        "bad_32fc1": "unsupported image encoding '32FC1'",
        "bad_empty": "image is empty (0 x 0 pixels)",
        "bad_step": "the message is truncated or its step/height fields are wrong",
    }
    sent = run_publisher(NAMESPACE, ",".join([*expected, "bgr8"]), rate=5.0)
    for text in expected.values():
        entry = probe.wait_for_log(text)
        assert entry is not None, f"no log line with {text!r}: {probe.log_text()}"
        assert f"{NAMESPACE}/image" in entry.msg  # the message names the topic
        assert entry.level == 40  # ERROR
    # The bad images produced no PersonArray; the good one right after them did.
    *bad, good = [(s["sec"], s["nanosec"]) for s in sent]
    assert probe.wait_for(lambda: good in persons_by_stamp(probe), 10.0), probe.log_text()
    assert not set(bad) & set(persons_by_stamp(probe))
    assert probe.wait_for_diagnostic(lambda v: int(v["bad images"]) >= 3, 10.0)


def test_image_larger_than_the_limit_is_refused_and_the_limit_is_a_parameter(probe):
    results = probe.set_parameters({"max_image_pixels": 100_000})
    assert results[0].successful, results[0].reason
    try:
        run_publisher(NAMESPACE, "bgr8", "--lockstep-timeout", "0", rate=5.0)  # no PersonArray will come
        entry = probe.wait_for_log("768 x 576 = 442368 pixels, above the limit of 100000")
        assert entry is not None, probe.log_text()
        assert "max_image_pixels" in entry.msg
    finally:
        assert probe.set_parameters({"max_image_pixels": 4096 * 4096})[0].successful
    sent = run_publisher(NAMESPACE, "bgr8", rate=5.0)
    assert probe.wait_for(lambda: (sent[0]["sec"], sent[0]["nanosec"]) in persons_by_stamp(probe), 10.0)


def test_very_thin_images_are_refused_at_once_and_the_node_keeps_working(probe):
    sent = run_publisher(NAMESPACE, "bad_thin,bgr8", rate=5.0)
    entry = probe.wait_for_log("aspect ratio 640:1, above the limit of 8:1")
    assert entry is not None, probe.log_text()
    assert entry.level == 40 and f"{NAMESPACE}/image" in entry.msg and "1280 x 2" in entry.msg
    assert "cv2" not in entry.msg and "processing" not in entry.msg
    thin, good = [(s["sec"], s["nanosec"]) for s in sent]
    assert probe.wait_for(lambda: good in persons_by_stamp(probe), 10.0), probe.log_text()
    assert thin not in persons_by_stamp(probe)


def test_several_cameras_on_one_topic_are_reported(probe):
    publishers = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROS_SCRIPTS / "publish_frames.py"),
                "--frames",
                ",".join(["bgr8"] * 40),
                "--rate",
                "10",
                "--lockstep-timeout",
                "0",
                "--frame-id",
                frame_id,
                "--ros-args",
                "-r",
                f"__ns:={NAMESPACE}",
            ],
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for frame_id in ("cam_left", "cam_right")
    ]
    try:
        # Frames of earlier tests (another frame_id) may still be in the 5 s window when the first
        # warning goes out: wait for the one that names these two cameras (or their publishers).
        def names_both(entry) -> bool:
            return "one node per camera" in entry.msg and (
                "2 publishers" in entry.msg or "cam_left, cam_right" in entry.msg
            )

        assert probe.wait_for(lambda: any(names_both(e) for e in probe.logs), 20.0), probe.log_text()
        entry = next(e for e in probe.logs if names_both(e))
        assert entry.level == 30  # WARN
        assert probe.wait_for_diagnostic(
            lambda v: v.get("image sources (frame_id)") == "cam_left, cam_right", 10.0
        )
    finally:
        for publisher in publishers:
            publisher.wait(timeout=30)


def test_results_for_stale_frames_are_dropped_and_counted(probe):
    # Off (0, the default): a frame stamped 10 s ago is processed like any other.
    sent = run_publisher(NAMESPACE, "stale_bgr8", rate=5.0)
    stale = (sent[0]["sec"], sent[0]["nanosec"])
    assert probe.wait_for(lambda: stale in persons_by_stamp(probe), 15.0), probe.log_text()
    assert probe.set_parameters({"max_frame_age": 2.0})[0].successful
    try:
        sent = run_publisher(NAMESPACE, "stale_bgr8,bgr8", rate=5.0)
        stale, good = [(s["sec"], s["nanosec"]) for s in sent]
        assert probe.wait_for(lambda: good in persons_by_stamp(probe), 10.0), probe.log_text()
        assert stale not in persons_by_stamp(probe)
        entry = probe.wait_for_log("max_frame_age 2")
        assert entry is not None and entry.level == 30, probe.log_text()  # WARN
        assert probe.wait_for_diagnostic(lambda v: int(v.get("stale frames dropped", 0)) >= 1, 10.0)
    finally:
        assert probe.set_parameters({"max_frame_age": 0.0})[0].successful


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"score_threshold": 1.5}, ""),  # outside the declared range
        ({"max_persons": 0}, ""),
        ({"threads": 2}, "read-only"),  # needs a reconfigure
        ({"input_transport": "compressed"}, "read-only"),
        ({"markers.fallback_frame_id": ""}, "must not be empty"),
        ({"markers.depth": "far"}, ""),  # wrong type
    ],
)
def test_invalid_parameter_changes_are_rejected(probe, values, reason):
    name = next(iter(values))
    before = probe.get_parameters([name])[0]
    results = probe.set_parameters(values)
    assert not results[0].successful
    assert reason in results[0].reason
    after = probe.get_parameters([name])[0]
    assert after == before


def test_thresholds_change_at_run_time(probe):
    results = probe.set_parameters({"keypoint_threshold": 0.55, "score_threshold": 0.2, "max_persons": 3})
    assert all(r.successful for r in results), [r.reason for r in results]
    try:
        sent = run_publisher(NAMESPACE, "bgr8", rate=5.0)
        stamp = (sent[0]["sec"], sent[0]["nanosec"])
        assert probe.wait_for(lambda: stamp in persons_by_stamp(probe), 10.0)
        message = persons_by_stamp(probe)[stamp]
        assert message.keypoint_threshold == pytest.approx(0.55)
        assert len(message.persons) <= 3
        assert all(p.score >= 0.2 for p in message.persons)
    finally:
        probe.set_parameters({"keypoint_threshold": 0.3, "score_threshold": 0.1, "max_persons": 30})


def test_diagnostics_report_rates_latency_and_the_model(probe, model, good_frames):
    path, _ = model
    assert probe.wait_for_diagnostic(lambda v: int(v["images processed"]) > 0, 10.0)
    values = probe.latest_diagnostic_values()
    for key in (
        "input rate (Hz)",
        "processed rate (Hz)",
        "frames dropped",
        "inference median (ms)",
        "end-to-end latency median (ms)",
        "node overhead median (ms)",
        "engine",
    ):
        assert key in values, key
    assert values["model"] == str(path)
    assert "onnxruntime" in values["engine"]
    assert values["state"] == "active"
    assert float(values["inference median (ms)"]) > 0
    assert float(values["end-to-end latency median (ms)"]) >= float(values["inference median (ms)"])
