"""``litepose bag-play BAG``: publish a rosbag2's topics with their original timing (no rosbag2 needed).

Uses the ROS environment it is started in (ROS_DOMAIN_ID, RMW and DDS settings): on a robot it
reaches the robot's nodes. Example: replay camera images into the pose node at half speed::

    litepose bag-play litepose_ros/samples/vtest_sample.mcap --rate 0.5 \\
        --remap /camera/image_raw/compressed:=/image/compressed --wait-for-subscribers 1
"""

from __future__ import annotations

import argparse
import json

from litepose_ros.errors import UserError


def _remap(text: str) -> tuple[str, str]:
    source, separator, target = text.partition(":=")
    if not separator or not source or not target:
        raise argparse.ArgumentTypeError(f"remap {text!r} is not FROM:=TO (e.g. /camera/image_raw:=/image)")
    return source, target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="rosbag2 directory, or a .mcap / .db3 file")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    parser.add_argument("--loop", action="store_true", help="start over at the end until Ctrl-C")
    parser.add_argument(
        "--start-offset",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="start this many seconds into the bag",
    )
    parser.add_argument("--topics", nargs="+", metavar="TOPIC", help="play only these topics (default: all)")
    parser.add_argument(
        "--remap",
        type=_remap,
        action="append",
        default=[],
        metavar="FROM:=TO",
        help="publish bag topic FROM on topic TO (repeatable)",
    )
    parser.add_argument(
        "--qos-reliability",
        choices=("reliable", "best_effort"),
        default="reliable",
        help="publisher reliability (reliable also reaches best-effort subscribers)",
    )
    parser.add_argument("--qos-depth", type=int, default=10, help="publisher history depth")
    parser.add_argument(
        "--wait-for-subscribers",
        type=int,
        default=0,
        metavar="N",
        help="wait until every topic has N subscribers before starting (max --wait-timeout)",
    )
    parser.add_argument("--wait-timeout", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument("--stats", metavar="JSON", help="write what was published (counts, lateness) here")


def run(args: argparse.Namespace) -> int:
    from litepose_ros.bags.player import PlayOptions, play_bag
    from litepose_ros.bags.storage import BagError

    try:
        options = PlayOptions(
            rate=args.rate,
            loop=args.loop,
            start_offset=args.start_offset,
            topics=tuple(args.topics) if args.topics else None,
            remap=dict(args.remap),
            reliability=args.qos_reliability,
            depth=args.qos_depth,
            wait_for_subscribers=args.wait_for_subscribers,
            wait_timeout=args.wait_timeout,
        )
    except ValueError as error:
        raise UserError(str(error)) from error
    try:
        stats = play_bag(args.bag, options)
    except BagError as error:
        raise UserError(str(error)) from error
    summary = stats.summary()
    counts = ", ".join(f"{topic}: {count}" for topic, count in summary["published"].items()) or "nothing"
    lateness = summary["lateness_ms"]
    timing = f", lateness p50 {lateness['p50']:.2f} ms p95 {lateness['p95']:.2f} ms" if lateness else ""
    print(f"published {counts} in {summary['wall_seconds']:.2f} s ({summary['passes']} pass(es){timing})")
    if args.stats:
        with open(args.stats, "w") as handle:
            json.dump(summary, handle, indent=1)
    return 0
