"""Pairing depth images with colour images by stamp (no ROS import).

A camera publishes colour and registered depth as two streams whose messages arrive in either
order. The node keeps the last few depth messages (``StampedBuffer``: bounded, so nothing queues
up) and, when a colour frame has been estimated, takes the one whose stamp is closest to the
colour stamp, if within the tolerance. Looking the depth up after the network has run (tens of
milliseconds) gives a depth image that trails its colour image time to arrive, without waiting.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

Item = TypeVar("Item")

# Depth messages kept: a few frames of a 30-90 Hz stream cover the time one colour frame is processed.
DEPTH_BUFFER_LENGTH = 8


class StampedBuffer(Generic[Item]):
    """The last ``length`` items with their stamps (ns); safe to fill and read from two threads."""

    def __init__(self, length: int = DEPTH_BUFFER_LENGTH) -> None:
        if length < 1:
            raise ValueError(f"a stamped buffer holds at least one item, got length {length}")
        self._items: deque[tuple[int, Item]] = deque(maxlen=length)
        self._lock = threading.Lock()

    def add(self, stamp_ns: int, item: Item) -> None:
        with self._lock:
            self._items.append((int(stamp_ns), item))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def closest(self, stamp_ns: int, tolerance_s: float) -> tuple[Item | None, float | None]:
        """The item whose stamp is nearest ``stamp_ns`` if at most ``tolerance_s`` away (else None),
        and that nearest stamp difference in seconds (None when the buffer is empty)."""
        with self._lock:
            items = list(self._items)
        if not items:
            return None, None
        best_stamp, best = min(items, key=lambda entry: abs(entry[0] - stamp_ns))
        difference = abs(best_stamp - stamp_ns) * 1e-9
        return (best if difference <= tolerance_s else None), difference
