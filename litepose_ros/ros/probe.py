"""A listener on one pose node's outputs, from another process: what the node benchmark and the
node tests observe.

``NodeOutputs`` creates its own ROS node on the given rclpy context, subscribes to the pose
node's ``persons`` (reliable, depth 100), optionally ``markers`` and ``image_annotated`` (the
node draws only while someone subscribes), and ``/diagnostics`` (only the pose node's status),
and spins in a thread of its own. Each message goes to the matching ``on_*`` method: by default
they keep the messages (``persons``, ``markers``, ``annotated``, ``diagnostics``); subclasses
override them to count or time instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from visualization_msgs.msg import MarkerArray

from litepose_ros.msg import PersonArray

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


class NodeOutputs:
    """Subscribes to the outputs of the pose node ``<namespace>/<node_name>`` and spins itself."""

    def __init__(
        self,
        context,
        namespace: str,
        *,
        node_name: str = "litepose",
        probe_name: str | None = None,
        markers: bool = True,
        annotated: bool = False,
        annotated_depth: int = 5,
        diagnostics_depth: int = 100,
    ):
        import rclpy

        self.namespace = namespace.rstrip("/")
        self.node_name = node_name
        self.fqn = f"{self.namespace}/{node_name}"
        self.persons: list[PersonArray] = []
        self.markers: list[MarkerArray] = []
        self.annotated: list[Image] = []
        self.diagnostics: list = []  # DiagnosticStatus of this node
        self.node = rclpy.create_node(
            probe_name or f"probe_{node_name}", namespace=self.namespace, context=context
        )
        self.node.create_subscription(PersonArray, "persons", self.on_persons, RELIABLE)
        if markers:
            self.node.create_subscription(MarkerArray, "markers", self.on_markers, RELIABLE)
        if annotated:
            self.node.create_subscription(Image, "image_annotated", self.on_annotated, annotated_depth)
        diagnostics_qos = QoSProfile(depth=diagnostics_depth, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diagnostic_array, diagnostics_qos
        )
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._spinning = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._spinning:
            self.executor.spin_once(timeout_sec=0.05)

    def _on_diagnostic_array(self, message: DiagnosticArray) -> None:
        for status in message.status:
            if status.hardware_id == self.fqn:
                self.on_diagnostics(status)

    # --- what happens to each message (override to count or time) -------------------------------

    def on_persons(self, message: PersonArray) -> None:
        self.persons.append(message)

    def on_markers(self, message: MarkerArray) -> None:
        self.markers.append(message)

    def on_annotated(self, message: Image) -> None:
        self.annotated.append(message)

    def on_diagnostics(self, status) -> None:
        self.diagnostics.append(status)

    # --- reading ----------------------------------------------------------------------------------

    def latest_diagnostic_values(self) -> dict[str, str]:
        return {kv.key: kv.value for kv in self.diagnostics[-1].values} if self.diagnostics else {}

    @staticmethod
    def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return condition()

    def connected(self) -> bool:
        """The node's persons publisher and its diagnostics are visible here."""
        return self.node.count_publishers(f"{self.namespace}/persons") > 0 and bool(self.diagnostics)

    def wait_until_connected(self, timeout: float = 20.0) -> bool:
        return self.wait_for(self.connected, timeout)

    def close(self) -> None:
        self._spinning = False
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()
