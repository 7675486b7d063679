"""bag-eval --live stopped by Ctrl-C / SIGTERM during the replay: the node is stopped, the frames
sent so far are recorded and reported, then KeyboardInterrupt (the CLI's exit 130). With rclpy's own
handlers the publish under way raised "publisher's context is invalid" and nothing was written."""

from __future__ import annotations

import json
import os
import signal

import pytest
from ros_scripts.publish_frames import walk_frame
from synthetic_onnx import write_skeleton_model

pytestmark = pytest.mark.ros

IMAGE_TOPIC = "/stop_test/image_raw"
FRAMES_BEFORE_THE_SIGNAL = 4


def write_walk_bag(path, frames: int) -> None:
    from litepose_ros.bags.storage import IMAGE_TYPE, BagWriter, project_typestore, raw_image_cdr

    typestore = project_typestore()
    start, period = 1_700_000_000_000_000_000, 100_000_000
    with BagWriter(path, "mcap") as writer:
        writer.add_topic(IMAGE_TOPIC, IMAGE_TYPE)
        for index in range(frames):
            stamp = start + index * period
            writer.write(IMAGE_TOPIC, stamp, raw_image_cdr(typestore, walk_frame(index, 0), stamp, "cam"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_replay_reports_the_frames_sent_and_interrupts(tmp_path, monkeypatch, signum):
    import rclpy.publisher

    from litepose_ros.bags.node_in_the_loop import LoopOptions, run_node_in_the_loop

    write_walk_bag(tmp_path / "walk", 30)
    publish = rclpy.publisher.Publisher.publish
    images_published = []

    def publish_then_signal(self, message):
        result = publish(self, message)
        if self.topic_name == IMAGE_TOPIC:
            images_published.append(1)
            if len(images_published) == FRAMES_BEFORE_THE_SIGNAL:
                os.kill(os.getpid(), signum)  # Ctrl-C / SIGTERM to this process, right after a publish
        return result

    monkeypatch.setattr(rclpy.publisher.Publisher, "publish", publish_then_signal)
    handlers_before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    options = LoopOptions(
        image_topic=IMAGE_TOPIC,
        camera_info_topic="",
        model=write_skeleton_model(tmp_path / "skeleton.onnx"),
        node_namespace=f"/lp_loop_stop_{signum.name}",
        record_annotated=False,
        rate=1.0,
        node_parameters={"threads": "1"},
    )
    with pytest.raises(KeyboardInterrupt):
        run_node_in_the_loop(tmp_path / "walk", tmp_path / "live", options, log=lambda _: None)
    assert len(images_published) == FRAMES_BEFORE_THE_SIGNAL  # no image after the signal
    report = json.loads((tmp_path / "live" / "summary.json").read_text())
    assert report["frames"]["sent"] == FRAMES_BEFORE_THE_SIGNAL
    assert report["replay"]["stopped"] is True
    assert (tmp_path / "live" / "bag").is_dir()
    assert "[ERROR]" not in (tmp_path / "live" / "node.log").read_text()
    assert {number: signal.getsignal(number) for number in handlers_before} == handlers_before
