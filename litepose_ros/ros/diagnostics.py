"""The node's ``/diagnostics`` status: level, message and the key/value table, from a statistics
snapshot (``litepose_ros.ros.statistics``) and the rates since the previous report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue


class RateWindow:
    """Rates of (received, processed, dropped) between two consecutive reports."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._counts = (0, 0, 0)

    def rates(self, snapshot: dict[str, Any]) -> list[float]:
        now = time.monotonic()
        elapsed = max(now - self._start, 1e-9)
        counts = (snapshot["received"], snapshot["processed"], snapshot["dropped"])
        rates = [(new - old) / elapsed for new, old in zip(counts, self._counts, strict=True)]
        self._start, self._counts = now, counts
        return rates


@dataclass(frozen=True)
class NodeState:
    """What the status says about the node besides its statistics."""

    name: str  # status name: "<node name>: pose estimation"
    hardware_id: str  # the node's fully qualified name
    lifecycle: str  # the lifecycle state label ("active", ...)
    model_error: str  # why the model is not loaded ("" when it is, or was never tried)
    model: str  # model path ("" while none is loaded)
    engine: str  # the estimator's description
    input_topic: str
    image_publishers: int = 0  # publishers matched on input_topic
    image_sources: tuple[str, ...] = ()  # header frame_ids seen lately on input_topic

    def several_sources(self) -> str:
        """What to tell the user when several cameras share the input topic ('' when one does)."""
        if self.image_publishers <= 1 and len(self.image_sources) <= 1:
            return ""
        found = [f"{self.image_publishers} publishers"] if self.image_publishers > 1 else []
        if len(self.image_sources) > 1:
            found.append(f"{len(self.image_sources)} frame_ids ({', '.join(self.image_sources)})")
        return (
            f"{' and '.join(found)} on {self.input_topic}: the sources share one latest-frame slot "
            "and starve each other; run one node per camera (one namespace each)"
        )


def diagnostic_status(state: NodeState, snapshot: dict[str, Any], rates: list[float]) -> DiagnosticStatus:
    """The node's DiagnosticStatus: ERROR without a model or when every image fails, WARN when not
    active or without images, OK with the processed rate otherwise."""
    status = DiagnosticStatus(name=state.name, hardware_id=state.hardware_id)
    if state.model_error:
        status.level, status.message = DiagnosticStatus.ERROR, f"model not loaded: {state.model_error}"
    elif state.lifecycle != "active":
        status.level, status.message = DiagnosticStatus.WARN, f"{state.lifecycle}: not processing images"
    elif snapshot["last_error"] and rates[0] > 0 and rates[1] == 0:
        status.level, status.message = DiagnosticStatus.ERROR, snapshot["last_error"]
    elif rates[0] == 0:
        status.level, status.message = DiagnosticStatus.WARN, f"no images on {state.input_topic}"
    elif state.several_sources():
        status.level, status.message = DiagnosticStatus.WARN, state.several_sources()
    else:
        status.level = DiagnosticStatus.OK
        status.message = f"{rates[1]:.1f} Hz processed, {snapshot['persons']} persons"
        if snapshot.get("tracking"):
            status.message += f", {snapshot['tracks_active']} tracks"
    values = {
        "state": state.lifecycle,
        "model": state.model,
        "engine": state.engine,
        "input topic": state.input_topic,
        "image publishers": str(state.image_publishers),
        "image sources (frame_id)": ", ".join(state.image_sources),
        "input rate (Hz)": f"{rates[0]:.2f}",
        "processed rate (Hz)": f"{rates[1]:.2f}",
        "dropped rate (Hz)": f"{rates[2]:.2f}",
        "images received": str(snapshot["received"]),
        "images processed": str(snapshot["processed"]),
        "frames dropped": str(snapshot["dropped"]),
        "bad images": str(snapshot["bad_images"]),
        "JPEGs with corrupt data": str(snapshot.get("jpeg_warnings", 0)),
        "stale frames dropped": str(snapshot.get("stale", 0)),
        "camera_info rejected": str(snapshot.get("camera_info_rejected", 0)),
        "camera_info problem": snapshot.get("camera_info_problem", ""),
        "processing failures": str(snapshot["inference_failures"]),
        "last error": snapshot["last_error"],
        "persons in last image": str(snapshot["persons"]),
        "tracking": "on" if snapshot.get("tracking") else "off",
        # Tracks with an id (matched in the last image or lost but kept), of which matched in the
        # last image, and tentative tracks (not confirmed yet: their people have NO_ID).
        "active tracks": str(snapshot.get("tracks_active", 0)),
        "confirmed tracks in last image": str(snapshot.get("tracks_confirmed", 0)),
        "tentative tracks": str(snapshot.get("tracks_tentative", 0)),
        "images with depth": str(snapshot.get("depth_matched", 0)),
        "images without matching depth": str(snapshot.get("depth_unmatched", 0)),
        "depth images rejected": str(snapshot.get("depth_rejected", 0)),
        "depth problem": snapshot.get("depth_problem", ""),
        "depth step median (ms)": f"{snapshot.get('depth_ms', float('nan')):.2f}",
        "inference median (ms)": f"{snapshot['inference_ms']:.2f}",
        "slot wait median (ms)": f"{snapshot['slot_wait_ms']:.2f}",
        "transport in median (ms)": f"{snapshot['transport_ms']:.2f}",
        "conversion median (ms)": f"{snapshot['convert_ms']:.2f}",
        "PersonArray built and published median (ms)": f"{snapshot['persons_ms']:.2f}",
        "all outputs built and published median (ms)": f"{snapshot['publish_ms']:.2f}",
        "end-to-end latency median (ms)": f"{snapshot['end_to_end_ms']:.2f}",
        "end-to-end latency p95 (ms)": f"{snapshot['end_to_end_p95_ms']:.2f}",
        "node overhead median (ms)": f"{snapshot['overhead_ms']:.2f}",
        "node overhead p95 (ms)": f"{snapshot['overhead_p95_ms']:.2f}",
    }
    status.values = [KeyValue(key=key, value=value) for key, value in values.items()]
    return status
