"""What the node counts and times, in one small object (no ROS import).

The worker records one ``FrameTimes`` per processed image; ``/diagnostics`` and the node's
``statistics()`` read a ``snapshot``. The slot's counters (received, dropped) are the slot's
(``litepose_ros.ros.worker``); everything else lives here, under one lock.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from litepose_ros.summaries import median_ms, p95_ms

# Latency statistics cover at most this many recent images.
LATENCY_WINDOW = 300
# Image stamps further in the past than this (or in the future) are not counted as latency.
MAX_MEASURABLE_LATENCY = 10.0


@dataclass
class FrameTimes:
    """When one frame passed each step: time.monotonic() seconds, and the ROS clock (ns) when its
    PersonArray was published, compared with the image stamp (ns) for the end-to-end latency."""

    arrival: float  # the subscription callback stored it in the slot
    started: float  # the worker took it
    converted: float = math.nan  # pixels ready
    estimated: float = math.nan  # estimator done
    persons_published: float = math.nan  # PersonArray published
    finished: float = math.nan  # every output published
    stamp_ns: int = 0
    published_ns: int = 0

    def end_to_end(self) -> float:
        """Image stamp to PersonArray published, seconds; NaN when the stamp is from another clock
        (e.g. a bag without sim time): not a latency."""
        seconds = (self.published_ns - self.stamp_ns) * 1e-9
        return seconds if 0.0 <= seconds < MAX_MEASURABLE_LATENCY else math.nan


def _window() -> deque:
    return deque(maxlen=LATENCY_WINDOW)


@dataclass
class _Counters:
    processed: int = 0
    bad_images: int = 0
    stale: int = 0
    camera_info_rejected: int = 0
    jpeg_warnings: int = 0
    camera_info_problem: str = ""
    inference_failures: int = 0
    last_error: str = ""
    last_person_count: int = 0
    # The tracker's tracks after the last image (None while tracking is off), and how many
    # people have been given an id since the node started (the highest id published).
    tracks: Any = None
    tracking: bool = False
    # 3D keypoints (depth.enabled): images that got a depth image, images published in 2D because
    # no depth image matched their stamp, depth images that could not be used (and why, last).
    depth_matched: int = 0
    depth_unmatched: int = 0
    depth_rejected: int = 0
    depth_problem: str = ""
    # Per processed image, seconds: estimator (preprocess + network + decoding), slot wait,
    # conversion of the message to pixels, everything after the estimator up to the last publish,
    # end-to-end (image stamp to persons published), transport in (stamp to callback), the
    # PersonArray alone, node overhead (end-to-end minus estimator minus slot wait: transport in,
    # conversion, messages, publishing).
    inference: deque = field(default_factory=_window)
    slot_wait: deque = field(default_factory=_window)
    convert: deque = field(default_factory=_window)
    publish: deque = field(default_factory=_window)
    end_to_end: deque = field(default_factory=_window)
    transport: deque = field(default_factory=_window)
    persons_message: deque = field(default_factory=_window)
    overhead: deque = field(default_factory=_window)
    depth_step: deque = field(default_factory=_window)  # depth conversion + 3D positions, seconds


class NodeStatistics:
    """Counters and recent timings of the worker, safe to read from another thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._counters = _Counters()

    def record_frame(self, times: FrameTimes, person_count: int, tracks: Any = None) -> None:
        """One image processed and its outputs published; ``tracks``: the tracker's
        ``TrackCounts`` after it (None: tracking off)."""
        end_to_end = times.end_to_end()
        inference = times.estimated - times.converted
        slot_wait = times.started - times.arrival
        with self.lock:
            stats = self._counters
            stats.processed += 1
            stats.last_person_count = person_count
            stats.tracks = tracks
            stats.tracking = tracks is not None
            stats.inference.append(inference)
            stats.slot_wait.append(slot_wait)
            stats.convert.append(times.converted - times.started)
            stats.publish.append(times.finished - times.estimated)
            stats.persons_message.append(times.persons_published - times.estimated)
            if math.isfinite(end_to_end):
                stats.end_to_end.append(end_to_end)
                # Stamp to callback: what is left of end-to-end once the time inside the node is removed.
                stats.transport.append(end_to_end - (times.persons_published - times.arrival))
                stats.overhead.append(end_to_end - inference - slot_wait)

    def record_depth(self, seconds: float) -> None:
        """An image whose keypoints got 3D positions from its depth image, in this many seconds."""
        with self.lock:
            self._counters.depth_matched += 1
            self._counters.depth_step.append(seconds)

    def record_depth_unmatched(self) -> None:
        """An image published in 2D: no depth image had a stamp close enough."""
        with self.lock:
            self._counters.depth_unmatched += 1

    def record_depth_rejected(self, problem: str) -> None:
        """A depth image (or its camera_info) that could not be used; the image went out in 2D."""
        with self.lock:
            self._counters.depth_rejected += 1
            self._counters.depth_problem = problem

    def record_bad_image(self, error: str) -> None:
        """An image that could not be used (its message names why)."""
        with self.lock:
            self._counters.bad_images += 1
            self._counters.last_error = error

    def record_stale(self) -> None:
        """A result dropped because its image was older than max_frame_age."""
        with self.lock:
            self._counters.stale += 1

    def record_camera_info_problem(self, problem: str) -> None:
        """A camera_info whose K cannot be used (markers fell back to the documented scaling)."""
        with self.lock:
            self._counters.camera_info_rejected += 1
            self._counters.camera_info_problem = problem

    def record_jpeg_warning(self) -> None:
        """A JPEG decoded although libjpeg reported corrupt data."""
        with self.lock:
            self._counters.jpeg_warnings += 1

    def record_failure(self, error: str) -> None:
        """Processing an image raised."""
        with self.lock:
            self._counters.inference_failures += 1
            self._counters.last_error = error

    def snapshot(self, received: int, dropped: int) -> dict[str, Any]:
        """Counters and latency medians (what /diagnostics reports); received and dropped are the
        slot's, read by the caller under the slot's lock (one consistent set of counters)."""
        with self.lock:
            stats = self._counters
            return {
                "received": received,
                "processed": stats.processed,
                "dropped": dropped,
                "bad_images": stats.bad_images,
                "stale": stats.stale,
                "camera_info_rejected": stats.camera_info_rejected,
                "jpeg_warnings": stats.jpeg_warnings,
                "camera_info_problem": stats.camera_info_problem,
                "inference_failures": stats.inference_failures,
                "last_error": stats.last_error,
                "persons": stats.last_person_count,
                "inference_ms": median_ms(stats.inference),
                "slot_wait_ms": median_ms(stats.slot_wait),
                "convert_ms": median_ms(stats.convert),
                "transport_ms": median_ms(stats.transport),
                "publish_ms": median_ms(stats.publish),
                "persons_ms": median_ms(stats.persons_message),
                "end_to_end_ms": median_ms(stats.end_to_end),
                "end_to_end_p95_ms": p95_ms(stats.end_to_end),
                "overhead_ms": median_ms(stats.overhead),
                "overhead_p95_ms": p95_ms(stats.overhead),
                "tracking": stats.tracking,
                "depth_matched": stats.depth_matched,
                "depth_unmatched": stats.depth_unmatched,
                "depth_rejected": stats.depth_rejected,
                "depth_problem": stats.depth_problem,
                "depth_ms": median_ms(stats.depth_step),
                "tracks_active": stats.tracks.active if stats.tracks is not None else 0,
                "tracks_confirmed": stats.tracks.confirmed if stats.tracks is not None else 0,
                "tracks_lost": stats.tracks.lost if stats.tracks is not None else 0,
                "tracks_tentative": stats.tracks.tentative if stats.tracks is not None else 0,
            }


def frame_age(now_ns: int, stamp_ns: int) -> float | None:
    """Seconds from an image's header stamp to ``now_ns`` (the node clock: ROS time, the /clock time
    under use_sim_time), or None when the age cannot be judged: a zero stamp (not set by the
    driver) or a clock that has not started (sim time before the first /clock message). A stamp
    in the future counts as age 0."""
    if stamp_ns <= 0 or now_ns <= 0:
        return None
    return max(0.0, (now_ns - stamp_ns) / 1e9)


class SourceWindow:
    """The image sources (header frame_ids) seen on the input topic within the last ``window``
    seconds: several cameras on one topic share the node's one-frame slot and starve each other,
    so the node reports them. Bounded to ``limit`` ids; safe to use from two threads."""

    def __init__(self, window: float = 5.0, limit: int = 64) -> None:
        self.window = window
        self.limit = limit
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def observe(self, frame_id: str, now: float) -> None:
        with self._lock:
            self._seen.pop(frame_id, None)
            self._seen[frame_id] = now  # insertion order: oldest first
            while len(self._seen) > self.limit:
                del self._seen[next(iter(self._seen))]

    def recent(self, now: float) -> list[str]:
        """The frame_ids seen within the window, sorted."""
        with self._lock:
            for frame_id in [k for k, seen in self._seen.items() if now - seen > self.window]:
                del self._seen[frame_id]
            return sorted(self._seen)
