"""Memory the decoding reuses between images: per-thread scratch arrays."""

from __future__ import annotations

import math
import threading

import numpy as np


class Workspace:
    """Scratch arrays reused from one image to the next (one per thread).

    Decoding needs a handful of map-sized temporaries; allocating them afresh for every image costs
    page faults (the allocator hands megabyte blocks back to the kernel) that can take longer than
    the arithmetic. Arrays handed out stay valid until the same name is requested again.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}
        # (address, shape, margin) of the padded heatmaps whose -inf margin is in place.
        self.margin_ready: tuple | None = None

    def array(self, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
        """An uninitialised array of ``shape``, reusing the storage kept under ``name``."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != np.dtype(dtype):
            buffer = np.empty(max(size, 1), dtype=dtype)
            self._buffers[name] = buffer
        return buffer[:size].reshape(shape)


_THREAD_STATE = threading.local()


def thread_workspace() -> Workspace:
    """The calling thread's decoding workspace."""
    workspace = getattr(_THREAD_STATE, "workspace", None)
    if workspace is None:
        workspace = _THREAD_STATE.workspace = Workspace()
    return workspace
