"""Publish the bundled vtest frames (and deliberately broken images) to a pose node, as a camera would.

Runs as its own ROS process (started by the node tests). ``--frames`` lists what to send, one
message per entry, in order, at ``--rate`` Hz at most, after every needed subscription has been
matched; after a good frame it waits for the node's PersonArray of that frame (lock step, so a
slow machine never makes the node drop a frame the test expects):

- ``bgr8``, ``rgb8``, ``bgra8``, ``mono8``, ``yuv422``: a real frame in that encoding on ``image``;
- ``jpeg``: the bundled JPEG file as is, on ``image/compressed``;
- ``walk``: a synthetic 256 x 192 bgr8 frame for the skeleton model of ``test/synthetic_onnx.py``:
  one "person" (a red blob) that walks right by ``WALK_STEP`` pixels per message from x = 40
  (``--walk-step 0``: a person standing at x = 40);
- ``bad_32fc1``: a depth-like 32FC1 image; ``bad_empty``: a 0 x 0 image; ``bad_step``: data shorter
  than step x height; ``bad_jpeg``: a truncated JPEG on ``image/compressed``.

Message i is stamped with the current time (so the node can measure latency) and frame id
``--frame-id``; it uses bundled frame i modulo 48. With ``--camera-info``, a CameraInfo with the
same header goes with every frame. With ``--depth KIND`` a depth image of a wall ``--depth-distance``
metres away (fronto-parallel) and its CameraInfo (``FOCAL_PX``, scaled to the depth image's size) go
with every frame on ``depth/image`` and ``depth/camera_info``: ``16uc1`` (millimetres) or ``32fc1``
(metres) at the colour size, ``half16uc1`` at half of it, ``rgb8`` (not a depth image),
``other_frame`` (16UC1 with another frame_id: not registered), ``uncalibrated`` (16UC1 with an
all-zero K in its camera_info), ``unscalable`` (16UC1 with a camera_info for half its size whose
focal length, 1e308, overflows when rescaled); ``--depth-stamp-offset`` shifts the
depth stamps; ``--depth-flood N`` sends N more depth images after each frame, 4 ms apart, stamped 1 s,
2 s, ... later (a fast depth stream overflowing the node's depth buffer).
Prints one JSON line per message sent: {"index", "kind", "sec", "nanosec"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
import rclpy.duration
from litepose_ros.msg import PersonArray
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from litepose_ros.samples import vtest_frame_paths

if __name__ == "__main__":  # run as a script: test/ (synthetic_onnx) is not on sys.path yet
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RAW_KINDS = (
    "walk",
    "bgr8",
    "rgb8",
    "bgra8",
    "mono8",
    "yuv422",
    "bad_32fc1",
    "bad_empty",
    "bad_step",
    "bad_thin",
    "stale_bgr8",
)
COMPRESSED_KINDS = ("jpeg", "bad_jpeg", "damaged_jpeg")
FOCAL_PX = 665.1
DEPTH_KINDS = ("16uc1", "32fc1", "half16uc1", "rgb8", "other_frame", "uncalibrated", "unscalable")
STALE_AGE = 10.0  # seconds: how old the stamp of a stale_* frame is
# Pixels per message the walking person moves: 4 network pixels at the test model's 128 px input
# (scale 2/3), so the blob keeps its sub-pixel phase and decodes the same way in every frame.
WALK_STEP = 6
WALK_SIZE = (256, 192)


def walk_frame(index: int, step: int = WALK_STEP) -> np.ndarray:
    """The ``walk`` frame of message ``index``: black, one red blob centred at (40 + step i, 96)."""
    from synthetic_onnx import draw_blob

    image = np.zeros((WALK_SIZE[1], WALK_SIZE[0], 3), np.uint8)
    draw_blob(image, (40.0 + step * index, 96.0), 5.0, green=0.0)
    return image


def raw_image(kind: str, bgr: np.ndarray) -> Image:
    height, width = bgr.shape[:2]
    if kind in ("bgr8", "walk"):
        pixels = bgr
    elif kind == "rgb8":
        pixels = np.ascontiguousarray(bgr[:, :, ::-1])
    elif kind == "bgra8":
        pixels = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    elif kind == "mono8":
        pixels = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    elif kind == "yuv422":  # UYVY byte order, as sensor_msgs names it
        pixels = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_UYVY)
    elif kind == "bad_32fc1":
        pixels = np.full((height, width), 1.5, np.float32)
    elif kind == "bad_empty":
        return Image(height=0, width=0, encoding="bgr8", step=0)
    elif kind == "stale_bgr8":  # a good image, stamped STALE_AGE seconds ago (a stalled pipeline)
        return raw_image("bgr8", bgr)
    elif kind == "bad_thin":  # a line-scan / glitched frame: 1280 x 2 pixels
        pixels = np.ascontiguousarray(cv2.resize(bgr, (1280, 2)))
        message = Image(height=2, width=1280, encoding="bgr8", step=1280 * 3)
        message.data = pixels.tobytes()
        return message
    elif kind == "bad_step":
        message = Image(height=height, width=width, encoding="bgr8", step=width * 3)
        message.data = bgr.tobytes()[: width * 3 * (height - 10)]
        return message
    else:
        raise ValueError(kind)
    encoding = {"bad_32fc1": "32FC1", "walk": "bgr8"}.get(kind, kind)
    message = Image(height=height, width=width, encoding=encoding, step=pixels.strides[0])
    message.data = pixels.tobytes()
    return message


def compressed_image(kind: str, jpeg: bytes) -> CompressedImage:
    message = CompressedImage(format="jpeg")
    if kind == "damaged_jpeg":  # junk before the end marker: libjpeg warns but decodes
        jpeg = jpeg[:-2] + b"\xff\x00" * 40 + b"\x00" * 20 + jpeg[-2:]
    message.data = jpeg if kind != "bad_jpeg" else jpeg[: len(jpeg) // 3]
    return message


def camera_info(width: int, height: int) -> CameraInfo:
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    info.k = [FOCAL_PX, 0.0, cx, 0.0, FOCAL_PX, cy, 0.0, 0.0, 1.0]
    info.p = [FOCAL_PX, 0.0, cx, 0.0, 0.0, FOCAL_PX, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.d = [0.0] * 5
    return info


def depth_image(kind: str, width: int, height: int, distance: float) -> Image:
    """The depth image of a fronto-parallel wall ``distance`` metres away, in this kind's form."""
    if kind == "half16uc1":
        width, height = width // 2, height // 2
    if kind == "32fc1":
        pixels, encoding = np.full((height, width), distance, np.float32), "32FC1"
    elif kind == "rgb8":
        pixels, encoding = np.zeros((height, width, 3), np.uint8), "rgb8"
    else:
        pixels, encoding = np.full((height, width), round(distance * 1000.0), np.uint16), "16UC1"
    message = Image(height=height, width=width, encoding=encoding, step=pixels.strides[0])
    message.data = pixels.tobytes()
    return message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", required=True, help="comma-separated kinds, one message each")
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--frame-id", default="vtest_camera_optical_frame")
    parser.add_argument("--camera-info", action="store_true")
    parser.add_argument(
        "--broken-camera-info",
        action="store_true",
        help="with --camera-info: cx NaN and fy 1e-300 (a broken calibration)",
    )
    parser.add_argument("--depth", choices=DEPTH_KINDS, help="also send a depth image of this kind")
    parser.add_argument("--depth-distance", type=float, default=2.0, help="metres to the wall in the depth")
    parser.add_argument("--depth-stamp-offset", type=float, default=0.0, help="seconds added to depth stamps")
    parser.add_argument("--depth-flood", type=int, default=0, help="depth images sent after each frame")
    parser.add_argument("--walk-step", type=int, default=WALK_STEP, help="pixels per walk frame")
    parser.add_argument(
        "--stamp-offset",
        type=float,
        default=0.0,
        help="seconds added to every stamp (negative: a clock behind, as a bag played again)",
    )
    parser.add_argument("--match-timeout", type=float, default=20.0)
    parser.add_argument("--linger", type=float, default=0.3, help="seconds to stay up after the last frame")
    parser.add_argument(
        "--lockstep-timeout",
        type=float,
        default=20.0,
        help="after each good frame, wait up to this long for its PersonArray before the "
        "next one (the node then processes every frame, however slow the machine); "
        "0: send at --rate regardless",
    )
    args, ros_args = parser.parse_known_args()
    if args.depth_flood and not args.depth:
        parser.error("--depth-flood needs --depth")
    kinds = [k.strip() for k in args.frames.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(RAW_KINDS) - set(COMPRESSED_KINDS))
    if unknown:
        parser.error(f"unknown frame kinds {unknown}")

    paths = vtest_frame_paths()
    jpegs = [path.read_bytes() for path in paths]
    rclpy.init(args=[sys.argv[0], *ros_args])
    node = rclpy.create_node("litepose_test_frame_publisher")
    publishers = {}
    if any(k in RAW_KINDS for k in kinds):
        publishers["raw"] = node.create_publisher(Image, "image", qos_profile_sensor_data)
    if any(k in COMPRESSED_KINDS for k in kinds):
        publishers["compressed"] = node.create_publisher(
            CompressedImage, "image/compressed", qos_profile_sensor_data
        )
    info_publisher = (
        node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
        if args.camera_info
        else None
    )
    depth_publishers = (
        (
            node.create_publisher(Image, "depth/image", qos_profile_sensor_data),
            node.create_publisher(CameraInfo, "depth/camera_info", qos_profile_sensor_data),
        )
        if args.depth
        else ()
    )
    answered: set[tuple[int, int]] = set()
    answers = None
    if args.lockstep_timeout > 0:
        answers = node.create_subscription(
            PersonArray, "persons", lambda m: answered.add((m.header.stamp.sec, m.header.stamp.nanosec)), 10
        )
    try:
        deadline = time.monotonic() + args.match_timeout
        waiting = [*publishers.values(), *([info_publisher] if info_publisher else []), *depth_publishers]
        while any(p.get_subscription_count() == 0 for p in waiting):
            if time.monotonic() > deadline:
                print(json.dumps({"error": "no subscriber matched"}), flush=True)
                return
            rclpy.spin_once(node, timeout_sec=0.05)
        # Lock step: an answer sent before this side matched the node's persons publisher is lost,
        # and each lost answer costs --lockstep-timeout (seen on a loaded machine). Not an error
        # when it never matches (a node publishing elsewhere): the lock step then only waits.
        while answers is not None and answers.get_publisher_count() == 0 and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        time.sleep(0.3)  # let the subscriber side finish matching too
        period = 1.0 / args.rate
        next_time = time.monotonic()
        for index, kind in enumerate(kinds):
            bgr = (
                walk_frame(index, args.walk_step)
                if kind == "walk"
                else cv2.imdecode(np.frombuffer(jpegs[index % len(jpegs)], np.uint8), cv2.IMREAD_COLOR)
            )
            if kind in RAW_KINDS:
                message, publisher = raw_image(kind, bgr), publishers["raw"]
            else:
                message = compressed_image(kind, jpegs[index % len(jpegs)])
                publisher = publishers["compressed"]
            offset = rclpy.duration.Duration(nanoseconds=round(args.stamp_offset * 1e9))
            now = node.get_clock().now() + offset
            if kind.startswith("stale"):
                now = now - Duration(seconds=STALE_AGE)
            message.header.stamp = now.to_msg()
            message.header.frame_id = args.frame_id
            if info_publisher is not None:
                info = camera_info(bgr.shape[1], bgr.shape[0])
                if args.broken_camera_info:
                    info.k[2], info.k[4] = float("nan"), 1e-300
                info.header = message.header
                info_publisher.publish(info)
            if depth_publishers:
                depth = depth_image(args.depth, bgr.shape[1], bgr.shape[0], args.depth_distance)
                depth.header.stamp = (
                    now + rclpy.duration.Duration(nanoseconds=round(args.depth_stamp_offset * 1e9))
                ).to_msg()
                depth.header.frame_id = "other_camera_frame" if args.depth == "other_frame" else args.frame_id
                depth_info = camera_info(bgr.shape[1], bgr.shape[0])
                if args.depth == "half16uc1":  # K of the half-size image (pixel-centre rule)
                    depth_info = camera_info(depth.width, depth.height)
                    depth_info.k[0] = depth_info.k[4] = FOCAL_PX / 2.0
                if args.depth == "uncalibrated":
                    depth_info.k = [0.0] * 9
                if args.depth == "unscalable":  # for half the size: doubling fx = 1e308 overflows
                    depth_info = camera_info(depth.width // 2, depth.height // 2)
                    depth_info.k[0] = depth_info.k[4] = 1e308
                depth_info.header = depth.header
                depth_publishers[1].publish(depth_info)
                depth_publishers[0].publish(depth)
            publisher.publish(message)
            for later in range(1, args.depth_flood + 1):
                time.sleep(0.004)  # a fast stream, not a burst: the node's reader keeps only the last 5
                depth.header.stamp = (now + Duration(seconds=later)).to_msg()
                depth_publishers[0].publish(depth)
            print(
                json.dumps(
                    {
                        "index": index,
                        "kind": kind,
                        "sec": message.header.stamp.sec,
                        "nanosec": message.header.stamp.nanosec,
                    }
                ),
                flush=True,
            )
            next_time += period
            stamp = (message.header.stamp.sec, message.header.stamp.nanosec)
            lockstep_end = time.monotonic() + args.lockstep_timeout
            while time.monotonic() < next_time or (
                args.lockstep_timeout > 0
                and not kind.startswith(("bad", "stale"))
                and stamp not in answered
                and time.monotonic() < lockstep_end
            ):
                rclpy.spin_once(node, timeout_sec=0.01)
            next_time = max(next_time, time.monotonic())
        end = time.monotonic() + args.linger
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
