"""The node process on sensor_msgs/CompressedImage input (input_transport:=compressed): the bundled
JPEG frames give skeletons; a corrupt JPEG is reported and survived."""

from __future__ import annotations

import pytest
from ros_scripts.node_probe import NodeProbe, node_model_path, probe_running_node, run_publisher

from litepose_ros.layouts import COCO_17

pytestmark = pytest.mark.ros

NAMESPACE = "/lp_compressed"


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    path, _ = node_model_path(tmp_path_factory.getbasetemp())
    log_path = tmp_path_factory.mktemp("node_compressed") / "node.log"
    # Remapping `image` moves the compressed input with it, as image_transport names it.
    yield from probe_running_node(
        log_path,
        NAMESPACE,
        f"model_path:={path}",
        "threads:=1",
        "input_transport:=compressed",
        "use_camera_info:=false",
    )


def stamps_of(probe: NodeProbe) -> set[tuple[int, int]]:
    return {(m.header.stamp.sec, m.header.stamp.nanosec) for m in probe.persons}


def test_jpeg_frames_give_person_arrays_with_the_source_header(probe):
    assert probe.wait_for_log(f"listening on {NAMESPACE}/image/compressed") is not None, probe.log_text()
    sent = run_publisher(NAMESPACE, "jpeg,jpeg,jpeg,jpeg", rate=4.0)
    stamps = {(s["sec"], s["nanosec"]) for s in sent}
    assert probe.wait_for(lambda: stamps <= stamps_of(probe), 15.0), probe.log_text()
    for message in probe.persons:
        if (message.header.stamp.sec, message.header.stamp.nanosec) in stamps:
            assert message.header.frame_id == "vtest_camera_optical_frame"
            assert (message.image_width, message.image_height) == (768, 576)
            assert len(message.keypoint_names) == COCO_17.num_keypoints
            assert all(len(p.keypoints) == COCO_17.num_keypoints for p in message.persons)
    # Markers without camera_info use the documented virtual camera, still on the 3 m plane.
    arrays = [
        a
        for a in probe.markers
        if (a.markers[0].header.stamp.sec, a.markers[0].header.stamp.nanosec) in stamps
    ]
    assert len(arrays) == len(stamps)
    assert all(p.z == pytest.approx(3.0) for a in arrays for m in a.markers for p in m.points)


def test_corrupt_jpeg_is_reported_and_survived(probe):
    sent = run_publisher(NAMESPACE, "bad_jpeg,jpeg", rate=4.0)
    bad, good = [(s["sec"], s["nanosec"]) for s in sent]
    entry = probe.wait_for_log("corrupt JPEG data")
    assert entry is not None, probe.log_text()
    assert f"{NAMESPACE}/image/compressed" in entry.msg
    assert probe.wait_for(lambda: good in stamps_of(probe), 10.0), probe.log_text()
    assert bad not in stamps_of(probe)
    assert probe.wait_for_diagnostic(lambda v: int(v["bad images"]) >= 1 and "JPEG" in v["last error"], 10.0)


def test_corrupt_but_decodable_jpeg_is_processed_warned_about_and_counted(probe):
    sent = run_publisher(NAMESPACE, "damaged_jpeg", rate=4.0)
    damaged = (sent[0]["sec"], sent[0]["nanosec"])
    assert probe.wait_for(lambda: damaged in stamps_of(probe), 10.0), probe.log_text()
    entry = probe.wait_for_log("decoded despite corrupt data")
    assert entry is not None and entry.level == 30 and "Corrupt JPEG data" in entry.msg, probe.log_text()
    assert probe.wait_for_diagnostic(lambda v: int(v.get("JPEGs with corrupt data", 0)) >= 1, 10.0)
