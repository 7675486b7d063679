"""Pairing depth images with colour images by stamp (no ROS import).

A camera publishes colour and registered depth as two streams whose messages arrive in either
order. The node keeps the last few depth messages (``StampedBuffer``: bounded, so nothing queues
up) and, when a colour frame has been estimated, takes the one whose stamp is closest to the
colour stamp, if within the tolerance. Looking the depth up after the network has run (tens of
milliseconds) gives a depth image that trails its colour image time to arrive, without waiting.

The last few depth images alone would not do on a slow board: a colour frame can wait in the
node's slot for one inference and then take another (0.2-0.5 s on a small CPU), by which time a
30-90 Hz depth stream has pushed its depth image out of the buffer. So each colour frame
``watch``es its stamp from the moment it arrives: the buffer hands every depth image it gets to
the live watches, and each keeps the nearest one it has seen. A watch lives as long as its frame
(weakly referenced here), so at most the frame in the slot and the one in process hold a depth
image beyond the buffer.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from typing import Generic, TypeVar

Item = TypeVar("Item")

# Depth messages kept: a few frames of a 30-90 Hz stream cover the time one colour frame is processed.
DEPTH_BUFFER_LENGTH = 8


class StampWatch(Generic[Item]):
    """The item nearest one stamp among those its buffer held or received while it was alive.

    Made by ``StampedBuffer.watch``; read with ``StampedBuffer.matched``.
    """

    __slots__ = ("__weakref__", "_best", "_best_stamp", "stamp_ns")

    def __init__(self, stamp_ns: int) -> None:
        self.stamp_ns = int(stamp_ns)
        self._best_stamp: int | None = None
        self._best: Item | None = None

    def _consider(self, stamp_ns: int, item: Item) -> None:
        """Keep the item if it is nearer than the best so far (the earlier one on a tie)."""
        if self._best_stamp is None or abs(stamp_ns - self.stamp_ns) < abs(self._best_stamp - self.stamp_ns):
            self._best_stamp, self._best = stamp_ns, item


class StampedBuffer(Generic[Item]):
    """The last ``length`` items with their stamps (ns); safe to fill and read from two threads."""

    def __init__(self, length: int = DEPTH_BUFFER_LENGTH) -> None:
        if length < 1:
            raise ValueError(f"a stamped buffer holds at least one item, got length {length}")
        self._items: deque[tuple[int, Item]] = deque(maxlen=length)
        # Plain weak references, pruned under the lock: a WeakSet's removal callback could run in
        # the worker thread (where frames are released) while this set is iterated in another.
        self._watches: list[weakref.ref[StampWatch[Item]]] = []
        self._lock = threading.Lock()

    def add(self, stamp_ns: int, item: Item) -> None:
        stamp_ns = int(stamp_ns)
        with self._lock:
            self._items.append((stamp_ns, item))
            live = []
            for reference in self._watches:
                watch = reference()
                if watch is not None:
                    watch._consider(stamp_ns, item)
                    live.append(reference)
            self._watches = live

    def watch(self, stamp_ns: int) -> StampWatch[Item]:
        """A watch of this stamp: offered the items held now and every item added while the caller
        keeps it (it is dropped here once the caller lets go of it)."""
        watch: StampWatch[Item] = StampWatch(stamp_ns)
        with self._lock:
            for stamp, item in self._items:
                watch._consider(stamp, item)
            self._watches = [reference for reference in self._watches if reference() is not None]
            self._watches.append(weakref.ref(watch))
        return watch

    def matched(self, watch: StampWatch[Item], tolerance_s: float) -> tuple[Item | None, float | None]:
        """What ``closest`` answers, for the items a watch has seen (held here or since dropped)."""
        with self._lock:
            best_stamp, best = watch._best_stamp, watch._best
        if best_stamp is None:
            return None, None
        difference = abs(best_stamp - watch.stamp_ns) * 1e-9
        return (best if difference <= tolerance_s else None), difference

    def watching(self) -> int:
        """Watches still alive (for diagnostics and tests: it stays at the frames in flight)."""
        with self._lock:
            return sum(reference() is not None for reference in self._watches)

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
