"""The latest-frame slot and the worker thread that empties it (no ROS import).

Never lags the camera: the subscription callback only ``offer``s the serialized message to a
one-frame slot and counts it. A single worker thread takes the newest frame and runs the
node's processing on it. A frame still waiting in the slot when a newer one arrives is dropped
and counted, so the output is always about the latest image and no queue can grow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Frame:
    """One image message as the callback received it."""

    message: bytes  # serialized sensor_msgs/Image or CompressedImage
    compressed: bool
    arrival: float  # time.monotonic() when the callback stored it
    # With depth on: the depth buffer's StampWatch of this frame's stamp, made on arrival, so that
    # the frame's depth image is kept however long the frame waits and is processed.
    depth_watch: object | None = None


class LatestFrameWorker:
    """A one-frame slot filled by ``offer`` and a worker thread calling ``process`` on each frame.

    ``on_error(error)`` is called when ``process`` raises; the worker keeps running whatever one
    image does. ``received`` and ``dropped`` change under ``lock`` (received >= processed + dropped
    always holds: a frame is counted before the worker can see it).
    """

    def __init__(
        self,
        process: Callable[[Frame], None],
        on_error: Callable[[Exception], None],
        name: str = "litepose_worker",
    ) -> None:
        self._process = process
        self._on_error = on_error
        self._name = name
        self._slot: Frame | None = None
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = False
        self.received = 0
        self.dropped = 0

    @property
    def lock(self) -> threading.Condition:
        """Held while the slot and its counters change (hold it to read them together)."""
        return self._condition

    def offer(self, frame: Frame) -> None:
        """Store the newest frame in the slot (dropping an unprocessed older one) and wake the worker."""
        with self._condition:
            self.received += 1
            if self._slot is not None:
                self.dropped += 1
            self._slot = frame
            self._condition.notify()

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker after the frame it is processing; the waiting frame is discarded."""
        with self._condition:
            self._running = False
            self._slot = None
            self._condition.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)
        self._thread = None

    def _loop(self) -> None:
        while True:
            with self._condition:
                while self._slot is None and self._running:
                    self._condition.wait()
                if not self._running:
                    return
                frame, self._slot = self._slot, None
            try:
                self._process(frame)
            except Exception as error:  # keep the worker alive whatever one image does
                self._on_error(error)
