"""``litepose bag-play`` publishes a bag's raw messages with its timing, in a separate real ROS process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import stop_process

from litepose_ros.bags.player import PlayOptions
from litepose_ros.bags.storage import (
    CAMERA_INFO_TYPE,
    COMPRESSED_IMAGE_TYPE,
    BagReader,
    BagWriter,
    camera_info_cdr,
    compressed_image_cdr,
    project_typestore,
)

pytestmark = pytest.mark.ros

PERIOD_NS = 50_000_000
IMAGE_TOPIC = "/test_cam/image/compressed"
INFO_TOPIC = "/test_cam/camera_info"


def make_bag(path, count: int, storage: str = "mcap"):
    typestore = project_typestore()
    start = 1_700_000_000_000_000_000
    with BagWriter(path, storage) as writer:
        writer.add_topic(IMAGE_TOPIC, COMPRESSED_IMAGE_TYPE)
        writer.add_topic(INFO_TOPIC, CAMERA_INFO_TYPE)
        for index in range(count):
            stamp = start + index * PERIOD_NS
            payload = bytes([index]) * (100 + index)  # distinct bytes per message (not a real JPEG)
            writer.write(IMAGE_TOPIC, stamp, compressed_image_cdr(typestore, payload, stamp, "cam"))
            writer.write(
                INFO_TOPIC,
                stamp + 1,
                camera_info_cdr(typestore, 4, 3, fx=1.0, fy=1.0, cx=1.5, cy=1.0, stamp=stamp, frame_id="cam"),
            )
    with BagReader(path) as reader:
        return [m.data for m in reader.messages([IMAGE_TOPIC])]


LITEPOSE = [sys.executable, "-c", "import sys; from litepose_ros.cli import main; sys.exit(main())"]


def start_player(bag, *args: str) -> subprocess.Popen:
    """litepose bag-play in its own process; it inherits the loopback environment set by conftest."""
    return subprocess.Popen(
        [*LITEPOSE, "bag-play", str(bag), *args],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def receive(context, topic: str, count: int, timeout: float, also: str | None = None):
    """Raw messages (bytes, arrival monotonic time) on topic; and how many arrived on `also`."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import CameraInfo, CompressedImage

    received: list[tuple[bytes, float]] = []
    other: list[bytes] = []
    node = rclpy.create_node("bag_play_test_receiver", context=context)
    node.create_subscription(
        CompressedImage, topic, lambda m: received.append((m, time.monotonic())), 100, raw=True
    )
    if also:
        node.create_subscription(CameraInfo, also, other.append, 100, raw=True)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.005)
    end = time.monotonic() + 0.3  # anything that should not come would come now
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.01)
    executor.shutdown()
    node.destroy_node()
    return received, other


def missing_indices(received: list[bytes], originals: list[bytes]) -> list[int]:
    """Positions in originals of the messages that did not arrive (for the failure message)."""
    arrived = {
        bytes(data[: len(original)])
        for data in received
        for original in originals
        if data[: len(original)] == original
    }
    return [index for index, original in enumerate(originals) if original not in arrived]


def assert_same_messages(received: list[bytes], originals: list[bytes]) -> None:
    """The bag's CDR bytes arrive unchanged (DDS may pad the payload to a multiple of 4 bytes)."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CompressedImage

    assert len(received) == len(originals), f"missing messages {missing_indices(received, originals)}"
    for data, original in zip(received, originals, strict=True):
        assert data[: len(original)] == original and not data[len(original) :].strip(b"\0")
        assert len(data) - len(original) < 4
        assert deserialize_message(data, CompressedImage) == deserialize_message(original, CompressedImage)


def test_replays_every_message_unchanged_with_original_timing(tmp_path, rclpy_context):
    originals = make_bag(tmp_path / "bag", 20, "sqlite3")
    player = start_player(
        tmp_path / "bag",
        "--remap",
        f"{IMAGE_TOPIC}:=/played/image/compressed",
        "--wait-for-subscribers",
        "1",
        "--stats",
        str(tmp_path / "stats.json"),
    )
    try:
        received, infos = receive(rclpy_context, "/played/image/compressed", 20, 30.0, also=INFO_TOPIC)
    finally:
        out, err = finish_player(player)
    assert player.returncode == 0, err
    assert_same_messages([data for data, _ in received], originals)
    assert len(infos) == 20, f"{len(infos)} camera_info messages arrived, expected 20"
    arrivals = np.array([t for _, t in received])
    intervals = np.diff(arrivals)
    assert np.median(intervals) == pytest.approx(0.050, abs=0.005)
    assert arrivals[-1] - arrivals[0] == pytest.approx(19 * 0.050, abs=0.06)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["published"] == {"/played/image/compressed": 20, INFO_TOPIC: 20}
    assert "published" in out


def finish_player(player: subprocess.Popen, timeout: float = 20.0) -> tuple[str, str]:
    """Let a player that ends by itself exit, then collect its output (stopping it if it did not).

    A Ctrl-C sent as soon as the last message arrived can reach the player while its interpreter
    is already shutting down, after Python restored the default SIGINT action: it then dies of the
    signal (exit -2) instead of exiting 0 (seen on a loaded machine with Jazzy's rclpy)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        player.wait(timeout=timeout)
    return stop_process(player, timeout=timeout)


def test_rate_offset_and_topic_selection(tmp_path, rclpy_context):
    originals = make_bag(tmp_path / "bag", 20)
    # 2x speed, starting 0.5 s in (message 10 on), images only.
    player = start_player(
        tmp_path / "bag",
        "--rate",
        "2",
        "--start-offset",
        "0.5",
        "--topics",
        IMAGE_TOPIC,
        "--wait-for-subscribers",
        "1",
    )
    try:
        received, infos = receive(rclpy_context, IMAGE_TOPIC, 10, 30.0, also=INFO_TOPIC)
    finally:
        _, err = finish_player(player)
    assert player.returncode == 0, err
    assert_same_messages([data for data, _ in received], originals[10:])
    assert infos == []
    arrivals = np.array([t for _, t in received])
    assert np.median(np.diff(arrivals)) == pytest.approx(0.025, abs=0.005)
    assert arrivals[-1] - arrivals[0] == pytest.approx(9 * 0.025, abs=0.05)


def test_loop_repeats_until_stopped(tmp_path, rclpy_context):
    originals = make_bag(tmp_path / "bag", 4)
    player = start_player(
        tmp_path / "bag", "--loop", "--rate", "4", "--topics", IMAGE_TOPIC, "--wait-for-subscribers", "1"
    )
    try:
        received, _ = receive(rclpy_context, IMAGE_TOPIC, 10, 30.0)
    finally:
        _, err = stop_process(player, timeout=20)
    assert len(received) >= 10, err
    assert_same_messages([data for data, _ in received[:8]], originals * 2)


# bag-play with a Ctrl-C / SIGTERM sent to itself during its 5th publish: rclpy's own handlers shut
# the context down at once and that publish raised "publisher's context is invalid" (a traceback,
# exit 1, in about half of the stops under traffic); the signal is now a request to stop.
SIGNAL_DURING_PUBLISH = """
import os, signal, sys
import rclpy.publisher
publish = rclpy.publisher.Publisher.publish
calls = []
def publish_and_signal(self, message):
    calls.append(isinstance(message, bytes))  # the bag's serialized messages, not parameter events
    if sum(calls) == 5 and calls[-1]:
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    return publish(self, message)
rclpy.publisher.Publisher.publish = publish_and_signal
from litepose_ros.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_signal_while_publishing_stops_the_replay_cleanly(tmp_path, signal_name):
    make_bag(tmp_path / "bag", 20)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SIGNAL_DURING_PUBLISH,
            signal_name,
            "bag-play",
            str(tmp_path / "bag"),
            "--loop",
            "--stats",
            str(tmp_path / "stats.json"),
        ],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["stopped"] is True
    assert sum(stats["published"].values()) == 5  # the publish under way completed, no other started


def test_bad_options_and_topics_are_refused(tmp_path):
    make_bag(tmp_path / "bag", 2)
    for bad in (
        {"rate": 0},
        {"start_offset": -1},
        {"reliability": "sometimes"},
        {"depth": 0},
        {"wait_for_subscribers": -1},
        {"settle_time": -0.1},
    ):
        with pytest.raises(ValueError):
            PlayOptions(**bad)
    result = subprocess.run(
        [*LITEPOSE, "bag-play", str(tmp_path / "bag"), "--topics", "/nope"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "'/nope' is not in bag" in result.stderr and IMAGE_TOPIC in result.stderr
