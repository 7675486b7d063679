"""Build litepose_ros/samples/vtest_sample.mcap from the bundled vtest frames (reproducible).

The 48 frames in litepose_ros/samples/vtest/ are every 2nd frame of frames 540-634 of OpenCV's
vtest.avi (30 fps), so the camera runs at 15 Hz here: each frame is stamped at its time in the
video (frame number / 30 s) after a fixed start time. The JPEG bytes go into the bag unchanged
(sensor_msgs/CompressedImage, format "jpeg"), so decoding a bag frame gives exactly the pixels of
the bundled file. A CameraInfo with the same stamp goes with every frame, as camera drivers do.

    .venv/bin/python tools/make_sample_bag.py [--output PATH]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from litepose_ros.bags.storage import (
    CAMERA_INFO_TYPE,
    COMPRESSED_IMAGE_TYPE,
    camera_info_cdr,
    compressed_image_cdr,
    project_typestore,
    write_single_mcap,
)
from litepose_ros.samples import SAMPLES_DIR, vtest_frame_paths

IMAGE_TOPIC = "/camera/image_raw/compressed"
CAMERA_INFO_TOPIC = "/camera/camera_info"
FRAME_ID = "vtest_camera_optical_frame"
VIDEO_FPS = 30.0
# A fixed start time keeps the file reproducible (2024-01-01T12:00:00Z).
START_TIME_NS = 1_704_110_400 * 1_000_000_000
# Bag receive time = capture stamp + a typical driver-to-recorder delay.
RECORD_DELAY_NS = 4_000_000
WIDTH, HEIGHT = 768, 576
# A plausible wide-angle pinhole camera: 60 degree horizontal field of view, square pixels,
# principal point at the image centre (pixel-centre convention: (W - 1) / 2, (H - 1) / 2).
FOCAL_PX = 665.1
CX, CY = (WIDTH - 1) / 2.0, (HEIGHT - 1) / 2.0


def sample_messages(typestore) -> list[tuple[str, int, bytes]]:
    """(topic, bag time ns, CDR) of every message of the sample bag, in time order."""
    messages = []
    for path in vtest_frame_paths():
        frame_number = int(re.search(r"(\d+)", path.stem).group(1))
        stamp = START_TIME_NS + round((frame_number - 540) / VIDEO_FPS * 1e9)
        log_time = stamp + RECORD_DELAY_NS
        messages.append(
            (IMAGE_TOPIC, log_time, compressed_image_cdr(typestore, path.read_bytes(), stamp, FRAME_ID))
        )
        messages.append(
            (
                CAMERA_INFO_TOPIC,
                log_time + 1,
                camera_info_cdr(
                    typestore,
                    WIDTH,
                    HEIGHT,
                    fx=FOCAL_PX,
                    fy=FOCAL_PX,
                    cx=CX,
                    cy=CY,
                    stamp=stamp,
                    frame_id=FRAME_ID,
                ),
            )
        )
    return messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=SAMPLES_DIR / "vtest_sample.mcap")
    args = parser.parse_args(argv)
    typestore = project_typestore()
    topics = {IMAGE_TOPIC: COMPRESSED_IMAGE_TYPE, CAMERA_INFO_TOPIC: CAMERA_INFO_TYPE}
    path = write_single_mcap(args.output, topics, sample_messages(typestore), overwrite=True)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
