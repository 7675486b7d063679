"""Node-in-the-loop evaluation: replay a bag in real time into the pose node, record what it says.

The node runs as it would on the robot (its own process, real DDS, its latest-frame policy), so
this measures what bag-eval cannot: frames the node drops because it is busy, and end-to-end
latency (image published -> its PersonArray received, both clocks in this process).

Steps: start ``litepose_node`` (or use one already running), wait until it subscribes to the
image topic (it does so once its model is loaded), replay the bag with ``BagPlayer``, record
``persons``, ``markers``, ``image_annotated`` and ``/diagnostics``, wait for the last outputs,
stop the node, then write the recorded bag and the report. The report has the tracking figures
of the ids the node published (tracks started, track lengths; the node tracks by default,
``LoopOptions.tracking``) and, with ground truth, the OKS AP/AR of the people it published over
every frame sent (``LoopOptions.ground_truth``). Every ROS process started here gets
the environment passed in; the project's demo and tests pass
``litepose_ros.dds.loopback_environment()``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litepose_ros.bags.player import BagPlayer, PlayOptions
from litepose_ros.bags.report import keypoint_accuracy, write_loop_report
from litepose_ros.bags.storage import (
    CAMERA_INFO_TYPE,
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    IMAGE_TYPES,
    MARKER_ARRAY_TYPE,
    PERSON_ARRAY_TYPE,
    BagError,
    BagReader,
    BagWriter,
    sibling_camera_info_topic,
)
from litepose_ros.evaluation import load_annotations
from litepose_ros.summaries import distribution, persons_summary

DIAGNOSTICS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"


class NodeInTheLoopError(RuntimeError):
    """The node could not be started or did not take part (its output is in the message)."""


@dataclass(frozen=True)
class LoopOptions:
    """node-in-the-loop settings.

    image_topic: the bag's image topic (default: its only image topic); camera_info_topic: the
    bag's CameraInfo topic to replay with it ("auto": the image's sibling, "": none);
    node_namespace: where the node's outputs are (``<ns>/persons``, ...); start_node: start
    ``litepose_node`` (False: a node is already running there); model: its model_path (None: the
    bundled default); node_parameters: more ``-p name:=value`` for it; rate: replay speed;
    record_annotated: subscribe to and record ``image_annotated`` (the node draws only while
    someone subscribes, so this costs the node time); settle: seconds to wait for outputs after
    the last frame; startup_timeout: seconds for the node to come up; tracking: the node's
    ``tracking.enabled`` (only passed when a node is started); depth_topic: the bag's depth image
    registered to the colour camera, replayed too (the node started with ``depth.enabled``; None:
    2D only), depth_info_topic its CameraInfo ("auto": the depth topic's sibling);
    ground_truth: COCO keypoint JSON for OKS AP/AR of what the node published, matched to the
    frames sent as bag-eval does (``match_by``, ``stamp_tolerance`` seconds): a frame the node
    dropped counts with nobody found.
    """

    image_topic: str | None = None
    camera_info_topic: str = "auto"
    node_namespace: str = "/litepose"
    start_node: bool = True
    model: Path | None = None
    node_parameters: Mapping[str, str] = field(default_factory=dict)
    rate: float = 1.0
    record_annotated: bool = True
    settle: float = 2.0
    startup_timeout: float = 60.0
    storage: str = "mcap"
    tracking: bool = True
    depth_topic: str | None = None
    depth_info_topic: str = "auto"
    ground_truth: Path | None = None
    match_by: str = "auto"
    stamp_tolerance: float = 0.001

    def output_topic(self, name: str) -> str:
        return f"{self.node_namespace.rstrip('/')}/{name}"


@dataclass
class LiveFrame:
    """One replayed frame: when it left, when its PersonArray came back, persons in it."""

    index: int
    stamp_ns: int
    sent: float
    received: float | None = None
    persons: int = 0
    positions: int = 0  # keypoints with a 3D position (position_valid) in its PersonArray
    ids: tuple[int, ...] = ()  # Person.id of each person the node published for this frame
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    keypoints: Any = None  # (persons, K, 3) x, y, score of the published people, for accuracy
    scores: Any = None  # (persons,)

    @property
    def end_to_end_ms(self) -> float:
        return (self.received - self.sent) * 1e3 if self.received is not None else float("nan")


@dataclass
class LoopResult:
    frames: list[LiveFrame] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    annotated: list[tuple[int, Any]] = field(default_factory=list)  # (frame index, BGR array)


def _bag_topics(bag: Path, options: LoopOptions) -> tuple[str, str, str | None, tuple[str, str] | None]:
    """(image topic, its type, camera_info topic or None, (depth topic, its camera_info) or None)."""
    with BagReader(bag) as reader:
        topic = options.image_topic
        if topic is None:
            topics = reader.image_topics()
            if len(topics) != 1:
                raise BagError(
                    f"name the image topic: bag {bag} has {len(topics) or 'no'} image topics "
                    f"({reader.describe_topics()})"
                )
            topic = topics[0]
        msgtype = reader.require_topic(topic, IMAGE_TYPES).msgtype
        info_topic: str | None = options.camera_info_topic
        if info_topic == "auto":
            sibling = sibling_camera_info_topic(topic)
            info_topic = sibling if sibling in reader.topics else None
        elif info_topic:
            reader.require_topic(info_topic, [CAMERA_INFO_TYPE])
        depth = None
        if options.depth_topic:
            reader.require_topic(options.depth_topic, [IMAGE_TYPE])
            depth_info = options.depth_info_topic
            if depth_info == "auto":
                depth_info = sibling_camera_info_topic(options.depth_topic)
            reader.require_topic(depth_info, [CAMERA_INFO_TYPE])  # metres need the depth intrinsics
            depth = (options.depth_topic, depth_info)
        return topic, msgtype, info_topic or None, depth


def node_command(
    options: LoopOptions,
    image_topic: str,
    compressed: bool,
    camera_info_topic: str | None,
    depth: tuple[str, str] | None = None,
) -> list[str]:
    """The command line that starts the pose node wired to the bag's topics."""
    base = image_topic.removesuffix("/compressed") if compressed else image_topic
    arguments = [
        sys.executable,
        "-m",
        "litepose_ros.ros.node",
        "--ros-args",
        "-r",
        f"__ns:={options.node_namespace}",
        "-r",
        f"image:={base}",
        "-p",
        f"input_transport:={'compressed' if compressed else 'raw'}",
    ]
    if camera_info_topic:
        arguments += ["-r", f"camera_info:={camera_info_topic}"]
    else:
        arguments += ["-p", "use_camera_info:=false"]
    if depth is not None:
        arguments += [
            "-p",
            "depth.enabled:=true",
            "-r",
            f"depth/image:={depth[0]}",
            "-r",
            f"depth/camera_info:={depth[1]}",
        ]
    if options.model is not None:
        arguments += ["-p", f"model_path:={Path(options.model).resolve()}"]
    if not options.tracking:
        arguments += ["-p", "tracking.enabled:=false"]
    for name, value in options.node_parameters.items():
        arguments += ["-p", f"{name}:={value}"]
    return arguments


class _Recorder:
    """Subscribes (raw) to the node's outputs and keeps (topic, type, wall ns, monotonic, bytes)."""

    def __init__(self, node, options: LoopOptions):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from visualization_msgs.msg import MarkerArray

        from litepose_ros.msg import PersonArray

        self.messages: list[tuple[str, str, int, float, bytes]] = []
        self.lock = threading.Lock()
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        subscriptions = [
            (PersonArray, PERSON_ARRAY_TYPE, options.output_topic("persons")),
            (MarkerArray, MARKER_ARRAY_TYPE, options.output_topic("markers")),
            (DiagnosticArray, DIAGNOSTICS_TYPE, "/diagnostics"),
        ]
        if options.record_annotated:
            subscriptions.append((Image, IMAGE_TYPE, options.output_topic("image_annotated")))
        self.subscriptions = {}
        for message_type, type_name, topic in subscriptions:
            self.subscriptions[topic] = node.create_subscription(
                message_type, topic, self._callback(topic, type_name), qos, raw=True
            )

    def _callback(self, topic: str, type_name: str):
        def store(data: bytes) -> None:
            entry = (topic, type_name, time.time_ns(), time.monotonic(), data)
            with self.lock:
                self.messages.append(entry)

        return store

    def snapshot(self) -> list[tuple[str, str, int, float, bytes]]:
        with self.lock:
            return list(self.messages)


def _start_node(command: list[str], env: Mapping[str, str] | None, log_path: Path) -> subprocess.Popen:
    log = log_path.open("w")
    try:
        return subprocess.Popen(
            command,
            env=dict(os.environ if env is None else env),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        log.close()  # the child keeps its own descriptor


def _stop_node(process: subprocess.Popen, timeout: float = 15.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _node_log_tail(log_path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_node_in_the_loop(
    bag: str | Path,
    output_dir: str | Path,
    options: LoopOptions | None = None,
    *,
    env: Mapping[str, str] | None = None,
    log=print,
) -> LoopResult:
    """Replay ``bag`` into the pose node in real time, record its outputs, write bag and report.

    env: environment of the node process (None: this process's). This process's own ROS
    participant uses os.environ: callers that must stay on loopback apply it before calling.
    Returns LoopResult (frames, report, files, decoded annotated images).

    Ctrl-C / SIGTERM (called from the main thread) stop the replay after the message under way;
    the node is stopped, the frames sent so far are recorded and reported as usual, and then
    KeyboardInterrupt is raised. A stop before the node is ready raises it at once.
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from litepose_ros.stop_signals import note_stop_signals

    options = options or LoopOptions()
    bag = Path(bag)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    image_topic, image_type, info_topic, depth = _bag_topics(bag, options)
    compressed = image_type == COMPRESSED_IMAGE_TYPE
    # read before the node starts: a bad file is an error before anything runs
    dataset = load_annotations(options.ground_truth) if options.ground_truth is not None else None
    node_log = output_dir / "node.log"
    process = None
    if options.start_node:
        command = node_command(options, image_topic, compressed, info_topic, depth)
        log(f"starting the pose node: {' '.join(command[1:])}")
        process = _start_node(command, env, node_log)

    interrupted: list[int] = []
    player: BagPlayer | None = None

    def stop_requested(signum: int) -> None:
        interrupted.append(signum)
        if player is not None:
            player.stop()

    # rclpy's own handlers would shut the context down under a publish (a traceback, nothing written)
    in_main_thread = threading.current_thread() is threading.main_thread()
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO if in_main_thread else None)
    node = rclpy.create_node("litepose_node_in_the_loop", context=context)
    recorder = _Recorder(node, options)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=_spin, args=(executor, context), daemon=True)
    spinner.start()
    result = LoopResult()
    sent: list[tuple[int, float]] = []  # (bag log time, monotonic send time) of image messages
    restore_signals = note_stop_signals(stop_requested) if in_main_thread else None
    try:

        def note_image_sent(topic: str, bag_time: int, when: float) -> None:
            if topic == image_topic:
                sent.append((bag_time, when))

        play_topics = (image_topic,) + ((info_topic,) if info_topic else ()) + (depth or ())
        player = BagPlayer(
            node,
            bag,
            PlayOptions(rate=options.rate, topics=play_topics, depth=10),
            on_publish=note_image_sent,
        )
        _wait_until_ready(
            player,
            recorder,
            process,
            options,
            image_topic=image_topic,
            node_log=node_log,
            stopped=interrupted,
        )
        log(f"replaying {bag.name} into the node at {options.rate:g}x real time")
        stats = player.play()
        deadline = time.monotonic() + options.settle
        while time.monotonic() < deadline and not interrupted:
            time.sleep(0.05)
    finally:
        if process is not None:
            code = _stop_node(process)
            if code not in (0, -signal.SIGINT, 130):
                log(f"the node exited with code {code}; its log: {node_log}")
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        spinner.join(timeout=5.0)
        if restore_signals is not None:
            restore_signals()  # a second Ctrl-C while the report is written stops that too
    recorded = recorder.snapshot()
    result.frames = _match_frames(bag, image_topic, sent, recorded)
    result.files["bag"] = _write_recording(output_dir / "bag", recorded, options.storage)
    result.annotated = _annotated_frames(recorded, result.frames)
    result.report = _report(bag, image_topic, options, result, play=stats.summary(), recorded=recorded)
    if dataset is not None:
        try:  # every frame sent counts: a dropped one has nobody found
            result.report["accuracy"] = keypoint_accuracy(
                dataset,
                [(f.index, f.stamp_ns) for f in result.frames],
                {f.index: f for f in result.frames if f.received is not None},
                ground_truth=options.ground_truth,
                match_by=options.match_by,
                stamp_tolerance=options.stamp_tolerance,
            )
        except ValueError as error:  # known only now (the node's layout): the rest is still reported
            result.report["accuracy"] = {"error": str(error)}
            log(f"accuracy not computed: {error}")
    result.files.update(write_loop_report(output_dir, result.report, result.frames))
    if process is not None:
        result.files["node_log"] = node_log
    if interrupted:
        log(f"stopped after {len(result.frames)} frames; they are reported in {output_dir}")
        raise KeyboardInterrupt
    return result


def _spin(executor, context) -> None:
    from rclpy.executors import ExternalShutdownException

    try:
        while context.ok():
            executor.spin_once(timeout_sec=0.05)
    except (ExternalShutdownException, RuntimeError):
        pass  # shutting down


def _wait_until_ready(
    player: BagPlayer,
    recorder: _Recorder,
    process,
    options: LoopOptions,
    *,
    image_topic: str,
    node_log: Path,
    stopped: Sequence[int] = (),
) -> None:
    """Until the node subscribes to the image topic (model loaded) and its persons reach us;
    KeyboardInterrupt as soon as ``stopped`` holds a stop signal."""
    deadline = time.monotonic() + options.startup_timeout
    persons = recorder.subscriptions[options.output_topic("persons")]
    while time.monotonic() < deadline:
        if stopped:
            raise KeyboardInterrupt
        if process is not None and process.poll() is not None:
            raise NodeInTheLoopError(
                f"the pose node exited with code {process.returncode} before it was "
                f"ready; its log ({node_log}):\n{_node_log_tail(node_log)}"
            )
        for _topic, type_name, _, _, data in recorder.snapshot():
            if type_name == DIAGNOSTICS_TYPE and b"model not loaded" in data:
                raise NodeInTheLoopError(
                    f"the pose node could not load its model; its log ({node_log}):\n"
                    f"{_node_log_tail(node_log)}"
                )
        if player.subscription_counts()[image_topic] >= 1 and persons.get_publisher_count() >= 1:
            time.sleep(0.2)  # let the remaining endpoints match too
            return
        time.sleep(0.05)
    where = (
        f"; its log ({node_log}):\n{_node_log_tail(node_log)}"
        if process
        else f" (is a node running in namespace {options.node_namespace}?)"
    )
    raise NodeInTheLoopError(
        f"the pose node did not subscribe to the images within {options.startup_timeout:.0f} s{where}"
    )


def _match_frames(
    bag: Path, image_topic: str, sent: Sequence[tuple[int, float]], recorded
) -> list[LiveFrame]:
    """Frames that were sent, joined with the PersonArray that carries their stamp."""
    import numpy as np
    from rclpy.serialization import deserialize_message

    from litepose_ros.msg import PersonArray

    sent_by_log_time = dict(sent)
    frames: list[LiveFrame] = []
    by_stamp: dict[int, LiveFrame] = {}
    with BagReader(bag) as reader:
        for image in reader.images(image_topic):
            when = sent_by_log_time.get(image.log_time_ns)
            if when is None:
                continue
            frame = LiveFrame(index=image.index, stamp_ns=image.stamp_ns, sent=when)
            frames.append(frame)
            by_stamp.setdefault(image.stamp_ns, frame)
    for _topic, type_name, _, received, data in recorded:
        if type_name != PERSON_ARRAY_TYPE:
            continue
        message = deserialize_message(data, PersonArray)
        frame = by_stamp.get(message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec)
        if frame is not None and frame.received is None:
            frame.received = received
            frame.persons = len(message.persons)
            frame.positions = sum(k.position_valid for p in message.persons for k in p.keypoints)
            frame.ids = tuple(p.id for p in message.persons)
            frame.boxes = tuple((p.x_min, p.y_min, p.x_max, p.y_max) for p in message.persons)
            joints = len(message.persons[0].keypoints) if message.persons else 0
            frame.keypoints = np.array(
                [[(k.x, k.y, k.score) for k in p.keypoints] for p in message.persons], dtype=np.float64
            ).reshape(len(message.persons), joints, 3)
            frame.scores = np.array([p.score for p in message.persons], dtype=np.float64)
    return frames


def _write_recording(path: Path, recorded, storage: str) -> Path:
    """The recorded outputs as a bag (receive wall time as bag time, as ros2 bag record does)."""
    # zstd chunks (mcap): annotated raw images shrink several times.
    with BagWriter(path, storage, overwrite=True, compress=storage == "mcap") as writer:
        for topic, type_name, wall_ns, _, data in recorded:
            writer.add_topic(topic, type_name)
            writer.write(topic, wall_ns, data)
    return path


def _annotated_frames(recorded, frames: Sequence[LiveFrame]) -> list[tuple[int, Any]]:
    """The annotated images the node published, decoded, with the index of their source frame."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from litepose_ros.image_encodings import ImageFormatError, raw_image_to_array

    index_by_stamp = {f.stamp_ns: f.index for f in frames}
    images = []
    for _, type_name, _, _, data in recorded:
        if type_name != IMAGE_TYPE:
            continue
        message = deserialize_message(data, Image)
        stamp = message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
        if stamp not in index_by_stamp:
            continue
        try:
            pixels, _ = raw_image_to_array(
                message.data, message.encoding, message.height, message.width, message.step, color_order="bgr"
            )
        except ImageFormatError:
            continue
        images.append((index_by_stamp[stamp], pixels.copy()))
    return sorted(images, key=lambda item: item[0])


def _last_diagnostics(recorded, options: LoopOptions) -> dict[str, str]:
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.serialization import deserialize_message

    name_part = options.node_namespace.strip("/")
    for _, type_name, _, _, data in reversed(recorded):
        if type_name != DIAGNOSTICS_TYPE:
            continue
        for status in deserialize_message(data, DiagnosticArray).status:
            if "pose estimation" in status.name and name_part in status.hardware_id:
                return {kv.key: kv.value for kv in status.values}
    return {}


def _tracking(processed: Sequence[LiveFrame], tracking: bool) -> dict[str, Any]:
    """Tracking figures of the ids the node published (``enabled``: the node was asked to track,
    or published ids anyway, e.g. a running node that tracks)."""
    import numpy as np

    from litepose_ros.tracking import NO_ID, FrameIds, tracking_figures

    frames = [
        FrameIds(f.stamp_ns * 1e-9, np.array(f.ids, np.int64), np.array(f.boxes).reshape(-1, 4))
        for f in processed
    ]
    figures = tracking_figures(frames).as_dict()
    enabled = tracking or any(i != NO_ID for f in processed for i in f.ids)
    return {"enabled": enabled, **figures, "notes": 0, "truth": None}


def _report(
    bag: Path, image_topic: str, options: LoopOptions, result: LoopResult, *, play: dict, recorded
) -> dict[str, Any]:
    frames = result.frames
    processed = [f for f in frames if f.received is not None]
    span = (max(f.received for f in processed) - min(f.sent for f in frames)) if processed else 0.0
    counts: dict[str, int] = {}
    for topic, *_ in recorded:
        counts[topic] = counts.get(topic, 0) + 1
    return {
        "bag": str(bag),
        "image_topic": image_topic,
        "rate": options.rate,
        "node_namespace": options.node_namespace,
        "frames": {"sent": len(frames), "processed": len(processed), "dropped": len(frames) - len(processed)},
        "persons_per_frame": persons_summary([f.persons for f in processed]),
        "end_to_end_latency_ms": distribution([f.end_to_end_ms for f in processed]),
        "throughput_fps": round(len(processed) / span, 3) if span > 0 else None,
        "replay": play,
        "recorded_messages": counts,
        "node_diagnostics": _last_diagnostics(recorded, options),
        "tracking": _tracking(processed, options.tracking and options.start_node),
        "depth": None
        if not options.depth_topic
        else {
            "topic": options.depth_topic,
            "frames_with_3d_positions": sum(1 for f in processed if f.positions),
            "keypoints_with_3d_positions_per_frame": persons_summary([f.positions for f in processed]),
        },
        "output_bag": str(result.files.get("bag", "")),
    }
