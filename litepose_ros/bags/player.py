"""Replay a rosbag2 into a live ROS 2 graph with the original timing, without rosbag2.

Messages are published as the raw CDR bytes stored in the bag (``Publisher.publish(bytes)``), so
standard and custom types pass unchanged and nothing is deserialised on the way. Timing follows
the bag's receive times: message i goes out at ``start + (t_i - t_first) / rate``; lateness
(how long after its due time each message actually left) is measured and reported.

The player takes the environment it is given (a robot's DDS settings); only the project's tests,
demo and benchmarks put it on loopback (``litepose_ros.dds.loopback_environment``).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from litepose_ros.bags.storage import BagError, BagReader

RELIABILITIES = ("reliable", "best_effort")


@dataclass(frozen=True)
class PlayOptions:
    """How to replay a bag.

    rate: playback speed factor (2.0 = twice as fast); loop: start over at the end until
    stopped; start_offset: seconds into the bag to start at; topics: bag topics to play (None:
    all); remap: bag topic -> published topic; reliability / depth: publisher QoS (reliable
    publishers reach both reliable and best-effort subscribers); wait_for_subscribers: before
    starting, wait until every publisher has at least this many subscribers (at most
    wait_timeout seconds) so the first messages are not lost to discovery, then settle_time
    seconds more: discovery is two-sided, and a subscriber the publisher already counts may not
    yet have matched the publisher, dropping what arrives before it does.
    """

    rate: float = 1.0
    loop: bool = False
    start_offset: float = 0.0
    topics: tuple[str, ...] | None = None
    remap: dict[str, str] = field(default_factory=dict)
    reliability: str = "reliable"
    depth: int = 10
    wait_for_subscribers: int = 0
    wait_timeout: float = 10.0
    settle_time: float = 0.5

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"playback rate must be > 0, got {self.rate}")
        if self.start_offset < 0:
            raise ValueError(f"start offset must be >= 0 seconds, got {self.start_offset}")
        if self.reliability not in RELIABILITIES:
            raise ValueError(
                f"QoS reliability must be one of {', '.join(RELIABILITIES)}, got {self.reliability!r}"
            )
        if self.depth < 1:
            raise ValueError(f"QoS depth must be >= 1, got {self.depth}")
        if self.wait_for_subscribers < 0:
            raise ValueError(f"wait_for_subscribers must be >= 0, got {self.wait_for_subscribers}")
        if self.settle_time < 0:
            raise ValueError(f"settle_time must be >= 0 seconds, got {self.settle_time}")


@dataclass
class PlayStats:
    """What a replay did: messages per published topic, passes over the bag, timing lateness."""

    published: dict[str, int] = field(default_factory=dict)
    passes: int = 0
    wall_seconds: float = 0.0
    lateness_ms: list[float] = field(default_factory=list)
    skipped_topics: dict[str, str] = field(default_factory=dict)
    stopped: bool = False

    def summary(self) -> dict:
        """JSON-ready summary (lateness percentiles in milliseconds)."""
        lateness = np.asarray(self.lateness_ms, dtype=np.float64)
        return {
            "published": dict(self.published),
            "passes": self.passes,
            "wall_seconds": round(self.wall_seconds, 4),
            "lateness_ms": (
                {
                    "p50": float(np.percentile(lateness, 50)),
                    "p95": float(np.percentile(lateness, 95)),
                    "max": float(lateness.max()),
                }
                if lateness.size
                else None
            ),
            "skipped_topics": dict(self.skipped_topics),
            "stopped": self.stopped,
        }


def message_class(msgtype: str):
    """The rclpy message class of a type name such as ``sensor_msgs/msg/CompressedImage``."""
    package, kind, name = (msgtype.split("/") + ["", ""])[:3]
    if kind != "msg" or not package or not name:
        raise BagError(f"cannot publish type {msgtype!r}: only messages (pkg/msg/Type) can be replayed")
    try:
        module = importlib.import_module(f"{package}.msg")
        return getattr(module, name)
    except (ImportError, AttributeError) as error:
        raise BagError(
            f"message type {msgtype} is not installed here (no Python module "
            f"{package}.msg with {name}): install its interface package or leave "
            "the topic out"
        ) from error


def publisher_qos(options: PlayOptions):
    """The QoS profile of the replay publishers."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    reliability = (
        ReliabilityPolicy.RELIABLE if options.reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    )
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=options.depth,
        reliability=reliability,
        durability=DurabilityPolicy.VOLATILE,
    )


class BagPlayer:
    """Publishes a bag's messages on a node with their recorded timing.

    ``play()`` blocks until the bag is done (or, with loop, until ``stop()``) and returns
    PlayStats. ``on_publish(topic, bag_time_ns, wall_time)`` is called after each publish (used
    by node-in-the-loop evaluation to know when each frame left).
    """

    def __init__(
        self,
        node,
        bag_path: str | Path,
        options: PlayOptions | None = None,
        on_publish: Callable[[str, int, float], None] | None = None,
        logger=None,
    ):
        self.node = node
        self.bag_path = Path(bag_path)
        self.options = options or PlayOptions()
        self.on_publish = on_publish
        self._stop = threading.Event()
        self._log = logger or node.get_logger()
        self._publishers: dict[str, object] = {}
        self.stats = PlayStats()
        with BagReader(self.bag_path) as reader:
            self._topics = self._select_topics(reader)
            self._first_time = self._first_message_time(reader)
        for topic, msgtype in self._topics.items():
            self._publishers[topic] = node.create_publisher(
                message_class(msgtype), self.options.remap.get(topic, topic), publisher_qos(self.options)
            )

    def _select_topics(self, reader: BagReader) -> dict[str, str]:
        chosen = self.options.topics
        names = list(reader.topics) if chosen is None else list(chosen)
        for name in names:
            reader.require_topic(name)
        unknown_remaps = set(self.options.remap) - set(names)
        if unknown_remaps:
            raise BagError(
                f"remapped topics {sorted(unknown_remaps)} are not played; the bag has: "
                f"{reader.describe_topics()}"
            )
        topics = {}
        for name in names:
            msgtype = reader.topics[name].msgtype
            try:
                message_class(msgtype)
            except BagError as error:
                if chosen is not None:  # asked for explicitly: refuse rather than skip
                    raise
                self.stats.skipped_topics[name] = str(error)
                self._log.warning(f"not playing {name}: {error}")
                continue
            topics[name] = msgtype
        if not topics:
            raise BagError(
                f"nothing to play in {self.bag_path}: no playable topic among {reader.describe_topics()}"
            )
        return topics

    def _first_message_time(self, reader: BagReader) -> int:
        for message in reader.messages(self._topics):
            return message.log_time_ns
        raise BagError(f"bag {self.bag_path} has no messages on {', '.join(self._topics)}")

    @property
    def published_topics(self) -> dict[str, str]:
        """Bag topic -> topic it is published on."""
        return {topic: self.options.remap.get(topic, topic) for topic in self._topics}

    def subscription_counts(self) -> dict[str, int]:
        """Bag topic -> subscribers matched to its publisher right now."""
        return {topic: publisher.get_subscription_count() for topic, publisher in self._publishers.items()}

    def stop(self) -> None:
        """Ask a running play() to return after the current message."""
        self._stop.set()

    def wait_for_subscribers(self) -> bool:
        """Wait (at most wait_timeout s) until each publisher has wait_for_subscribers subscribers."""
        needed = self.options.wait_for_subscribers
        if needed <= 0:
            return True
        deadline = time.monotonic() + self.options.wait_timeout
        while time.monotonic() < deadline:
            if self._stop.is_set():
                return False
            if all(p.get_subscription_count() >= needed for p in self._publishers.values()):
                self._stop.wait(self.options.settle_time)
                return True
            self._stop.wait(0.02)
        missing = [t for t, p in self._publishers.items() if p.get_subscription_count() < needed]
        self._log.warning(
            f"starting without {needed} subscriber(s) on {', '.join(missing)} after "
            f"{self.options.wait_timeout:.1f} s"
        )
        return False

    def play(self) -> PlayStats:
        """Replay until the end of the bag (or until stop() when looping); returns PlayStats."""
        options = self.options
        self.wait_for_subscribers()
        offset_ns = round(options.start_offset * 1e9)
        begin = time.monotonic()
        stats = self.stats
        try:
            while not self._stop.is_set():
                played = self._play_once(self._first_time + offset_ns)
                stats.passes += 1
                if not options.loop or not played:
                    break
            self._wait_until_delivered()
        finally:
            stats.wall_seconds = time.monotonic() - begin
            stats.stopped = self._stop.is_set()
        return stats

    def _wait_until_delivered(self, timeout_s: float = 2.0) -> None:
        """Let reliable subscribers acknowledge the last messages: exiting right after publishing
        would otherwise take the tail of the replay down with the process."""
        from rclpy.duration import Duration

        for topic, publisher in self._publishers.items():
            if not publisher.wait_for_all_acked(Duration(nanoseconds=round(timeout_s * 1e9))):
                name = self.options.remap.get(topic, topic)
                self._log.warning(
                    f"subscribers of {name} did not acknowledge the last messages within {timeout_s:.1f} s"
                )

    def _play_once(self, start_ns: int) -> int:
        """One pass over the bag from bag time start_ns; returns the messages published."""
        options = self.options
        published = 0
        pass_start: float | None = None
        with BagReader(self.bag_path) as reader:
            for message in reader.messages(self._topics):
                if message.log_time_ns < start_ns:
                    continue
                if pass_start is None:
                    pass_start = time.monotonic()
                due = pass_start + (message.log_time_ns - start_ns) / 1e9 / options.rate
                if not self._sleep_until(due):
                    break
                self._publishers[message.topic].publish(message.data)
                sent = time.monotonic()
                published += 1
                self.stats.lateness_ms.append((sent - due) * 1e3)
                name = options.remap.get(message.topic, message.topic)
                self.stats.published[name] = self.stats.published.get(name, 0) + 1
                if self.on_publish is not None:
                    self.on_publish(message.topic, message.log_time_ns, sent)
        return published

    def _sleep_until(self, due: float) -> bool:
        """Sleep until the monotonic time due; False when stop() came first."""
        while True:
            remaining = due - time.monotonic()
            if self._stop.is_set():
                return False
            if remaining <= 0:
                return True
            # Coarse sleeps, then a short final one: wakes within about a millisecond.
            self._stop.wait(remaining - 0.002 if remaining > 0.004 else min(remaining, 0.0005))


def play_bag(
    bag_path: str | Path, options: PlayOptions | None = None, *, node_name: str = "litepose_bag_player"
) -> PlayStats:
    """Initialise rclpy, replay a bag on a fresh node and shut down.

    Ctrl-C / SIGTERM stop the replay after the message being published (``stats.stopped``); called
    outside the main thread, rclpy's own handlers stay, and a signal ends the replay with
    KeyboardInterrupt or the context's shutdown.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.signals import SignalHandlerOptions

    from litepose_ros.stop_signals import note_stop_signals

    requested: list[int] = []
    player: BagPlayer | None = None

    def stop_requested(signum: int) -> None:
        requested.append(signum)
        if player is not None:
            player.stop()

    restore_signals = None
    handlers = None
    if threading.current_thread() is threading.main_thread():
        restore_signals = note_stop_signals(stop_requested)
        handlers = SignalHandlerOptions.NO
    try:
        rclpy.init(signal_handler_options=handlers)
        node = rclpy.create_node(node_name)
        try:
            player = BagPlayer(node, bag_path, options)
            if requested:  # stopped while starting
                player.stop()
            routes = ", ".join(f"{a} -> {b}" if a != b else a for a, b in player.published_topics.items())
            node.get_logger().info(f"playing {bag_path}: {routes}")
            return player.play()
        except (KeyboardInterrupt, ExternalShutdownException):
            if player is None:
                raise KeyboardInterrupt from None
            player.stats.stopped = True
            return player.stats
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown()
        if restore_signals is not None:
            restore_signals()
