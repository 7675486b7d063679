"""The node's latest-frame slot and its statistics, without ROS."""

from __future__ import annotations

import math
import threading

from litepose_ros.ros.statistics import FrameTimes, NodeStatistics
from litepose_ros.ros.worker import Frame, LatestFrameWorker


def test_slot_keeps_the_newest_frame_and_counts_the_dropped():
    seen: list[bytes] = []
    busy, release, done = threading.Event(), threading.Event(), threading.Event()

    def process(frame: Frame) -> None:
        busy.set()
        release.wait(5)
        seen.append(frame.message)
        if frame.message == b"3":
            done.set()

    worker = LatestFrameWorker(process, on_error=lambda error: None)
    worker.start()
    try:
        worker.offer(Frame(b"1", False, 0.0))
        assert busy.wait(5)  # the worker holds frame 1: frames 2 and 3 meet in the slot
        worker.offer(Frame(b"2", False, 0.0))
        worker.offer(Frame(b"3", False, 0.0))
        release.set()
        assert done.wait(5)
    finally:
        worker.stop()
    assert seen == [b"1", b"3"]
    assert (worker.received, worker.dropped) == (3, 1)


def test_worker_survives_a_failing_frame():
    errors: list[Exception] = []
    handled = threading.Event()

    def process(frame: Frame) -> None:
        raise RuntimeError("boom")

    def on_error(error: Exception) -> None:
        errors.append(error)
        handled.set()

    worker = LatestFrameWorker(process, on_error)
    worker.start()
    worker.offer(Frame(b"x", True, 0.0))
    assert handled.wait(5)
    worker.stop()
    assert isinstance(errors[0], RuntimeError)


def test_statistics_record_and_snapshot():
    stats = NodeStatistics()
    times = FrameTimes(
        arrival=1.0,
        started=1.5,
        converted=1.6,
        estimated=2.6,
        persons_published=2.7,
        finished=2.9,
        stamp_ns=10_000_000_000,
        published_ns=12_000_000_000,
    )
    stats.record_frame(times, person_count=4)
    stats.record_bad_image("image: bad")
    snapshot = stats.snapshot(received=3, dropped=1)
    assert snapshot["processed"] == 1 and snapshot["bad_images"] == 1 and snapshot["persons"] == 4
    assert snapshot["received"] == 3 and snapshot["dropped"] == 1 and snapshot["last_error"] == "image: bad"
    assert math.isclose(snapshot["inference_ms"], 1000.0)
    assert math.isclose(snapshot["slot_wait_ms"], 500.0)
    assert math.isclose(snapshot["end_to_end_ms"], 2000.0)
    assert math.isclose(snapshot["overhead_ms"], 500.0)  # end to end - inference - slot wait
    assert math.isclose(snapshot["transport_ms"], 300.0)  # end to end - (persons published - arrival)
    # a stamp from another clock is not a latency
    stats.record_frame(
        FrameTimes(
            arrival=0,
            started=0,
            converted=0,
            estimated=0,
            persons_published=0,
            finished=0,
            stamp_ns=0,
            published_ns=99_000_000_000,
        ),
        person_count=0,
    )
    assert math.isclose(stats.snapshot(0, 0)["end_to_end_ms"], 2000.0)


def test_frame_age_is_now_minus_stamp_and_not_judged_without_a_stamp_or_a_clock():
    from litepose_ros.ros.statistics import frame_age

    second = 1_000_000_000
    assert frame_age(110 * second, 100 * second) == 10.0
    assert frame_age(100 * second, 101 * second) == 0.0  # a stamp in the future: not stale
    assert frame_age(100 * second, 0) is None  # no stamp from the driver
    assert frame_age(0, 100 * second) is None  # sim time before the first /clock message


def test_stale_results_are_counted():
    stats = NodeStatistics()
    stats.record_stale()
    stats.record_stale()
    assert stats.snapshot(2, 0)["stale"] == 2


def test_sources_seen_on_the_image_topic_are_remembered_for_a_window():
    from litepose_ros.ros.statistics import SourceWindow

    sources = SourceWindow(window=5.0)
    sources.observe("cam_a", 100.0)
    sources.observe("cam_b", 101.0)
    sources.observe("cam_a", 102.0)
    assert sources.recent(103.0) == ["cam_a", "cam_b"]
    assert sources.recent(106.5) == ["cam_a"]  # cam_b last seen 5.5 s ago
    for index in range(1000):  # bounded, whatever a driver puts in frame_id
        sources.observe(f"id{index}", 200.0 + index)
    assert len(sources.recent(1200.0)) <= 64


def test_several_sources_on_one_topic_make_the_status_a_warning():
    from diagnostic_msgs.msg import DiagnosticStatus

    from litepose_ros.ros.diagnostics import NodeState, diagnostic_status

    stats = NodeStatistics()
    snapshot = stats.snapshot(10, 0)
    snapshot["last_error"] = ""
    state = NodeState(
        name="n",
        hardware_id="/n",
        lifecycle="active",
        model_error="",
        model="m",
        engine="e",
        input_topic="/image",
        image_publishers=2,
        image_sources=("cam_a", "cam_b"),
    )
    status = diagnostic_status(state, snapshot, [30.0, 10.0, 20.0])
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.WARN and "2 publishers" in status.message
    assert "one node per camera" in status.message
    assert values["image publishers"] == "2" and values["image sources (frame_id)"] == "cam_a, cam_b"
