"""Node speed: the bundled footage replayed at camera rate into the real node process.

Three processes on loopback DDS, as on a robot: a camera stand-in publishing the bundled vtest
frames (bgr8 sensor_msgs/Image, 768 x 576, with CameraInfo) at ``--rate`` Hz for ``--seconds``;
the node (``litepose_node``); and this process, subscribed to ``persons`` and ``markers`` like a
consumer plus RViz, reading the node's ``/diagnostics`` and its resident memory (psutil).

Reported: input, processed and dropped rates; end-to-end latency (image stamp to PersonArray
received here) median and p95, over the whole run and per half (a growing queue would show as a
rising latency); the node's own split of each image's latency (slot wait, estimator, the rest =
node overhead); the estimator alone in this process for comparison (what the engine can do);
the node's resident memory at start, end and peak; and the load average (other jobs on the
machine slow everything down).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from litepose_ros.benchmarks.report import DEFAULT_RESULTS_DIR, TimingStats, write_page
from litepose_ros.summaries import markdown_table

NAMESPACE = "/litepose_bench"
FRAME_ID = "vtest_camera_optical_frame"
FOCAL_PX = 665.1
# Seconds after the node first publishes before measuring (engine warm-up, discovery).
WARMUP = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the bundled model)")
    parser.add_argument("--seconds", type=float, default=60.0, help="replay duration (default 60)")
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate in Hz (default 30)")
    parser.add_argument("--threads", type=int, default=0, help="inference threads (0: engine default)")
    parser.add_argument("--input-size", type=int, default=0, help="network input short side (0: model's)")
    parser.add_argument(
        "--node-param",
        action="append",
        default=[],
        metavar="NAME:=VALUE",
        help="extra node parameter (repeatable), e.g. refine:=false",
    )
    parser.add_argument("--no-markers", action="store_true", help="do not subscribe to markers")
    parser.add_argument("--annotated", action="store_true", help="also subscribe to image_annotated")
    parser.add_argument("--note", default="", help="a sentence for the page (where the model comes from)")
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_RESULTS_DIR / "node.md",
        help="results page (default docs/benchmarks/node.md)",
    )


# --- the camera stand-in (its own process) -------------------------------------------------------


def publisher_main(argv: list[str] | None = None) -> int:
    """Publish the bundled frames at a fixed rate; print a JSON summary line at the end."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--rate", type=float, required=True)
    args, ros_args = parser.parse_known_args(argv)

    import cv2
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from litepose_ros.samples import vtest_frame_paths

    rclpy.init(args=[sys.argv[0], *ros_args])
    node = rclpy.create_node("litepose_bench_camera")
    images, infos = [], []
    for path in vtest_frame_paths():
        bgr = cv2.imread(str(path))
        height, width = bgr.shape[:2]
        message = Image(height=height, width=width, encoding="bgr8", step=width * 3)
        message.header.frame_id = FRAME_ID
        message.data = bgr.tobytes()
        images.append(message)
        info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
        info.k = [FOCAL_PX, 0.0, (width - 1) / 2, 0.0, FOCAL_PX, (height - 1) / 2, 0.0, 0.0, 1.0]
        info.header.frame_id = FRAME_ID
        infos.append(info)
    image_publisher = node.create_publisher(Image, "image", qos_profile_sensor_data)
    info_publisher = node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    deadline = time.monotonic() + 60
    while image_publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    sent, late = 0, 0
    period = 1.0 / args.rate
    start = next_time = time.monotonic()
    try:
        while next_time - start < args.seconds:
            index = sent % len(images)
            stamp = node.get_clock().now().to_msg()
            images[index].header.stamp = stamp
            infos[index].header.stamp = stamp
            info_publisher.publish(infos[index])
            image_publisher.publish(images[index])
            sent += 1
            next_time += period
            delay = next_time - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                late += 1
    except KeyboardInterrupt:
        pass
    elapsed = time.monotonic() - start
    print(json.dumps({"sent": sent, "seconds": elapsed, "late": late}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


# --- the measuring side --------------------------------------------------------------------------


def _node_command(model: Path, args: argparse.Namespace) -> list[str]:
    script = Path(sys.executable).with_name("litepose_node")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "litepose_ros.ros.node"]
    command += [
        "--ros-args",
        "-r",
        f"__ns:={NAMESPACE}",
        "-p",
        f"model_path:={model}",
        "-p",
        f"threads:={args.threads}",
        "-p",
        f"input_size:={args.input_size}",
    ]
    for parameter in args.node_param:
        command += ["-p", parameter]
    return command


def _estimator_alone(model: Path, args: argparse.Namespace, seconds: float = 8.0) -> TimingStats:
    """Per-image time of Estimator.predict in this process, loaded as the node loads it, no ROS."""
    import cv2

    from litepose_ros.estimator import Estimator
    from litepose_ros.ros.parameters import default_values, estimator_settings, values_from_mapping
    from litepose_ros.samples import vtest_frame_paths

    values = default_values()
    values.update(parse_node_parameters(args.node_param))
    values.update(model_path=str(model), threads=args.threads, input_size=args.input_size)
    estimator = Estimator.from_model(model, **estimator_settings(values_from_mapping(values)))
    frames = [cv2.imread(str(p)) for p in vtest_frame_paths()]
    for frame in frames[:5]:
        estimator.predict(frame)
    samples = []
    end = time.monotonic() + seconds
    index = 0
    while time.monotonic() < end:
        started = time.perf_counter()
        estimator.predict(frames[index % len(frames)])
        samples.append(time.perf_counter() - started)
        index += 1
    return TimingStats.from_seconds(samples)


def parse_node_parameters(items: list[str]) -> dict:
    """--node-param NAME:=VALUE items as typed values (YAML scalars, as ROS parses -p values)."""
    import yaml

    values = {}
    for item in items:
        name, separator, text = item.partition(":=")
        if not separator:
            raise ValueError(f"--node-param wants NAME:=VALUE, got {item!r}")
        values[name] = yaml.safe_load(text)
    return values


def _observer(subscribe_markers: bool, subscribe_annotated: bool):
    """This process's ROS side (``litepose_ros.ros.probe.NodeOutputs`` on a context of its own):
    records each PersonArray's arrival and latency and the node's diagnostics over time."""
    import rclpy

    from litepose_ros.ros.probe import NodeOutputs

    class Observer(NodeOutputs):
        def __init__(self) -> None:
            self.context = rclpy.Context()
            rclpy.init(context=self.context)
            self.received: list[tuple[float, float, int]] = []  # (receive monotonic, latency s, persons)
            self.marker_count = 0
            self.history: list[tuple[float, dict[str, str]]] = []  # (receive monotonic, values)
            super().__init__(
                self.context,
                NAMESPACE,
                probe_name="litepose_bench_observer",
                markers=subscribe_markers,
                annotated=subscribe_annotated,
                annotated_depth=1,
                diagnostics_depth=10,
            )

        def on_persons(self, message) -> None:
            now = time.time_ns()
            stamp = message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
            self.received.append((time.monotonic(), (now - stamp) * 1e-9, len(message.persons)))

        def on_markers(self, _message) -> None:
            self.marker_count += 1

        def on_annotated(self, _message) -> None:
            pass  # subscribed only so that the node draws

        def on_diagnostics(self, status) -> None:
            super().on_diagnostics(status)
            self.history.append((time.monotonic(), {kv.key: kv.value for kv in status.values}))

        def close(self) -> None:
            super().close()
            rclpy.shutdown(context=self.context)

    return Observer()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(subprocess.signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _depth_step_row() -> tuple[str, str]:
    """The node's 3D step (depth.enabled: depth_to_metres + keypoint_positions) for 10 people on
    the synthetic RGB-D frame of ``litepose bench depth`` (docs/benchmarks/depth.md), which has
    the scene and the accuracy; the replayed footage has no depth."""
    from litepose_ros.benchmarks.depth_speed import GOAL_PEOPLE, measure

    convert, wall, _, _, _, _ = measure(GOAL_PEOPLE, 300)
    return (
        f"3D keypoints from depth (depth.enabled): 640 x 480 16UC1 to metres + positions of "
        f"{GOAL_PEOPLE} people, median",
        f"{convert.median_ms:.2f} + {wall.median_ms:.2f} ms",
    )


def run(args: argparse.Namespace) -> int:
    from litepose_ros.dds import apply_loopback_environment, remove_stale_shared_memory
    from litepose_ros.errors import UserError

    # DDS on loopback for this process (before rclpy starts) and for the children.
    apply_loopback_environment()
    remove_stale_shared_memory()

    import psutil
    from tqdm import tqdm

    from litepose_ros.estimator import resolve_model_path

    try:
        model = resolve_model_path(args.model)
    except FileNotFoundError as error:
        raise UserError(str(error)) from error
    if args.seconds < 10 or args.rate <= 0:
        raise UserError("use --seconds >= 10 and a positive --rate")
    from litepose_ros.ros.parameters import values_from_mapping

    try:
        values_from_mapping(parse_node_parameters(args.node_param))
    except ValueError as error:
        raise UserError(f"--node-param: {error}") from error

    load_before = os.getloadavg()
    print("measuring the estimator alone (8 s) ...")
    alone = _estimator_alone(Path(model), args)

    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - the node's output, read only if it fails
    node_process = subprocess.Popen(
        _node_command(Path(model), args),
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    observer = _observer(not args.no_markers, args.annotated)
    publisher = None
    try:
        deadline = time.monotonic() + 60
        while observer.node.count_publishers(f"{NAMESPACE}/persons") == 0 or not observer.diagnostics:
            if node_process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise UserError(f"the node did not start:\n{log.read()}")
            time.sleep(0.1)
        memory = psutil.Process(node_process.pid)
        publisher = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "litepose_ros.benchmarks.node_speed",
                "--camera",
                "--seconds",
                str(args.seconds + WARMUP),
                "--rate",
                str(args.rate),
                "--ros-args",
                "-r",
                f"__ns:={NAMESPACE}",
            ],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while not observer.received:
            if publisher.poll() is not None or time.monotonic() > deadline + 30:
                raise UserError(f"no PersonArray arrived: {publisher.communicate()}")
            time.sleep(0.05)
        time.sleep(WARMUP)
        measure_start = time.monotonic()
        rss_start = memory.memory_info().rss
        rss_samples = [rss_start]
        with tqdm(total=int(args.seconds), desc="replaying", unit="s") as progress:
            while publisher.poll() is None:
                time.sleep(1.0)
                rss_samples.append(memory.memory_info().rss)
                progress.update(1)
        measure_end = time.monotonic()
        time.sleep(1.5)  # the last images and one more diagnostics period
        out, err = publisher.communicate()
        camera = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"sent": 0, "seconds": 0}
        rss_end = memory.memory_info().rss
    finally:
        if publisher is not None:
            _stop(publisher)  # SIGKILL would leave its shared-memory segment behind
        observer.close()
        _stop(node_process)
        log.close()
    load_after = os.getloadavg()

    # Counters come with the node's diagnostics (1 Hz): measure between the first status after the
    # warm-up and the last one of the replay, and take this process's messages over the same span.
    span = [(t, v) for t, v in observer.history if measure_start <= t <= measure_end + 1.2]
    if len(span) < 2:
        raise UserError("too few diagnostics from the node to measure rates")
    (t0, start_counts), (t1, end_counts) = span[0], span[-1]
    seconds = t1 - t0
    window = [r for r in observer.received if t0 < r[0] <= t1]
    latencies = np.array([r[1] for r in window])
    halves = np.array_split(latencies, 2)

    def count(values: dict[str, str], key: str) -> int:
        return int(values.get(key, "0"))

    received = count(end_counts, "images received") - count(start_counts, "images received")
    processed = count(end_counts, "images processed") - count(start_counts, "images processed")
    dropped = count(end_counts, "frames dropped") - count(start_counts, "frames dropped")
    in_slot = received - processed - dropped
    stats = TimingStats.from_seconds(latencies)
    node_e2e = float(end_counts["end-to-end latency median (ms)"])
    inference = float(end_counts["inference median (ms)"])
    overhead = float(end_counts["node overhead median (ms)"])
    overhead_p95 = float(end_counts["node overhead p95 (ms)"])
    slot_wait = float(end_counts["slot wait median (ms)"])
    persons = np.array([r[2] for r in window])
    load_note = ""
    # Only the load before the run tells of other jobs: the one after includes this benchmark's own
    # three processes.
    if load_before[0] > 1.0:
        load_note = (
            f"\n**The machine was busy** (1-minute load average {load_before[0]:.2f} before the "
            f"run, on {os.cpu_count()} cores; other jobs, e.g. a CPU training run, were competing "
            f"for the cores): every time here is longer than on an idle machine, and the processed "
            f"rate is lower.\n"
        )

    rows = [
        ("camera rate (published)", f"{camera['sent'] / max(camera['seconds'], 1e-9):.2f} Hz"),
        ("input rate (received by the node)", f"{received / seconds:.2f} Hz"),
        ("processed rate (PersonArray published)", f"{processed / seconds:.2f} Hz"),
        ("dropped frames (newer frame arrived first)", f"{dropped} ({dropped / seconds:.2f} Hz)"),
        (
            "received - processed - dropped (difference of frames in flight, slot + worker, at the two "
            "ends of the window: -2 to 2)",
            str(in_slot),
        ),
        ("PersonArrays received here", f"{len(window)} ({len(window) / seconds:.2f} Hz)"),
        ("persons per image (mean)", f"{persons.mean():.1f}" if persons.size else "n/a"),
        ("end-to-end latency, image stamp to PersonArray received: median", f"{stats.median_ms:.1f} ms"),
        ("end-to-end latency: p95", f"{stats.p95_ms:.1f} ms"),
        (
            "end-to-end latency median, first / second half",
            f"{np.median(halves[0]) * 1e3:.1f} / {np.median(halves[1]) * 1e3:.1f} ms",
        ),
        ("node: end-to-end latency to publish (median, last 300 images)", f"{node_e2e:.1f} ms"),
        ("node: estimator (preprocess + network + decoding) median", f"{inference:.1f} ms"),
        ("node: slot wait median (frame waiting for the worker)", f"{slot_wait:.1f} ms"),
        (
            "node: transport in median (image stamp to the node's callback)",
            f"{float(end_counts['transport in median (ms)']):.2f} ms",
        ),
        ("node: conversion to pixels median", f"{float(end_counts['conversion median (ms)']):.2f} ms"),
        (
            "node: PersonArray built and published median",
            f"{float(end_counts['PersonArray built and published median (ms)']):.2f} ms",
        ),
        (
            "node: all outputs (PersonArray, markers) built and published median",
            f"{float(end_counts['all outputs built and published median (ms)']):.2f} ms",
        ),
        (
            "**node overhead beyond inference** (end-to-end minus estimator minus slot wait) median",
            f"**{overhead:.2f} ms**",
        ),
        ("node overhead p95", f"{overhead_p95:.2f} ms"),
        ("what the engine can do in the node (1000 / estimator median)", f"{1000.0 / inference:.1f} Hz"),
        (
            "estimator alone in one process, no ROS (median, same settings)",
            f"{alone.median_ms:.1f} ms = {1000.0 / alone.median_ms:.1f} Hz",
        ),
        (
            "node resident memory: start / end / peak",
            f"{rss_start / 2**20:.1f} / {rss_end / 2**20:.1f} / {max(rss_samples) / 2**20:.1f} MiB",
        ),
        ("load average (1 min) before / after", f"{load_before[0]:.2f} / {load_after[0]:.2f}"),
        _depth_step_row(),
    ]
    from litepose_ros.samples import vtest_frame_paths

    note = f" {args.note}" if args.note else ""
    body = f"""Model: `{Path(model).name}` ({end_counts.get("engine", "")}).{note}
Replay: the {len(vtest_frame_paths())} bundled \
vtest frames (768 x 576 bgr8 sensor_msgs/Image, 1.3 MB each, with CameraInfo) looped at \
{args.rate:g} Hz for {args.seconds:g} s after a {WARMUP:g} s warm-up; this process subscribes to \
`persons`{"" if args.no_markers else " and `markers` (as RViz would)"}\
{" and `image_annotated`" if args.annotated else ""}. Three processes, DDS on loopback (shared memory).
{load_note}
{markdown_table(["measure", "value"], rows)}

How to read it:

- The node processes the newest frame whenever the worker is free, so the processed rate is
  what the estimator can do (1000 / estimator time, minus the overhead), and everything else is
  dropped and counted rather than queued: the latency of the first and second half of the run
  stays the same and the memory does not grow.
- End-to-end latency = slot wait (a frame that arrives while the worker is busy waits for it:
  on average about half an estimator time when the camera is faster than the engine) + estimator
  + node overhead (image transport in, conversion, PersonArray and markers built and published)
  + transport of the PersonArray to this process.
- Node overhead is measured per image inside the node (image stamp to PersonArray published,
  minus estimator time and slot wait); the median and p95 cover the last 300 images.
"""
    path = write_page(args.output, "Node speed (`litepose bench node`)", body)
    print(body)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--camera"]:  # the camera stand-in process started by run()
        sys.exit(publisher_main(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
