"""Helpers of the node tests (imported by test/test_node_*.py, not run as a script).

- ``node_model_path``: the model the node tests run: the bundled default model when the package
  has one, else a randomly initialised XS network exported to ONNX at input size 128;
- ``start_node``: ``litepose_node --ros-args ...`` in its own process (loopback DDS from the
  environment the test harness set), output captured to a file;
- ``NodeProbe``: the test process's view of one node: everything it publishes (persons, markers,
  annotated images, its /diagnostics status and its /rosout log lines), plus parameter and
  lifecycle service calls.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Log
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from litepose_ros.ros.probe import NodeOutputs

ROS_SCRIPTS = Path(__file__).resolve().parent
RANDOM_MODEL_INPUT_SIZE = 128


def bundled_model_path() -> Path | None:
    """The package's default model, or None while none is bundled."""
    from litepose_ros.weights import default_model_path

    try:
        return default_model_path()
    except FileNotFoundError:
        return None


def node_model_path(directory: Path) -> tuple[Path, bool]:
    """(model file, is_trained): the bundled model, else a random XS exported into ``directory``.

    LITEPOSE_TEST_TRAINED_MODEL=/path/model.onnx runs the node tests with that trained model instead
    (and its stricter checks), e.g. to check a model before bundling it.
    """
    override = os.environ.get("LITEPOSE_TEST_TRAINED_MODEL")
    if override:
        return Path(override), True
    bundled = bundled_model_path()
    if bundled is not None:
        return bundled, True
    path = directory / f"random_xs_{RANDOM_MODEL_INPUT_SIZE}.onnx"
    if not path.is_file():
        import torch

        from litepose_ros.model import build_model, export_onnx

        torch.manual_seed(0)
        _, result = export_onnx(build_model("XS", 17), path, input_size=RANDOM_MODEL_INPUT_SIZE)
        assert result.checker_ok, result.checker_message
    return path, False


def node_executable() -> str:
    """The installed console script (setup.py entry point) next to this interpreter."""
    path = Path(sys.executable).with_name("litepose_node")
    assert path.is_file(), f"{path} is missing: run `make setup` to install the console scripts"
    return str(path)


def start_node(
    log_path: Path,
    namespace: str,
    *parameters: str,
    node_name: str = "litepose",
    params_file: Path | None = None,
) -> subprocess.Popen:
    """Start the node process; parameters are "name:=value" strings (they override params_file).
    Output goes to log_path."""
    command = [node_executable(), "--ros-args", "-r", f"__ns:={namespace}", "-r", f"__node:={node_name}"]
    if params_file is not None:
        command += ["--params-file", str(params_file)]
    for parameter in parameters:
        command += ["-p", parameter]
    log = open(log_path, "w")  # noqa: SIM115 - closed by stop_node
    process = subprocess.Popen(command, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, text=True)
    process.log_file = log
    process.log_path = log_path
    return process


def stop_node(process: subprocess.Popen, timeout: float = 15.0) -> str:
    """SIGINT the node (as Ctrl-C would), wait, and return its output."""
    if process.poll() is None:
        process.send_signal(subprocess.signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.log_file.close()
    return Path(process.log_path).read_text()


def assert_exited_cleanly(process: subprocess.Popen, output: str) -> None:
    """The node stopped by stop_node ended with exit code 0 (a hang shows as -9 after the kill)."""
    assert process.returncode == 0, (
        f"node did not exit cleanly on SIGINT (exit code {process.returncode}):\n{output}"
    )


def probe_running_node(
    log_path: Path, namespace: str, *parameters: str, annotated: bool = False, **start_kwargs
) -> Iterator[NodeProbe]:
    """Start the node, yield a connected NodeProbe on its own rclpy context, then stop both and
    check that the node exited cleanly on SIGINT. For module-scoped pytest fixtures (yield from)."""
    context = rclpy.Context()
    rclpy.init(context=context)
    process = start_node(log_path, namespace, *parameters, **start_kwargs)
    probe = NodeProbe(context, namespace, annotated=annotated)
    try:
        assert probe.wait_until_connected(30.0), f"node never came up:\n{log_path.read_text()}"
        yield probe
    finally:
        probe.close()
        output = stop_node(process)
        rclpy.shutdown(context=context)
        print(output)
    assert_exited_cleanly(process, output)


def active_skeleton_node(
    folder: Path, namespace: str, *parameters: str, annotated: bool = False
) -> Iterator[NodeProbe]:
    """``probe_running_node`` for a node running the skeleton model of ``test/synthetic_onnx.py`` (a
    red blob is one person) on one thread without camera_info, yielded once it is active (subscribed
    to the images: a loaded machine takes a while). For module-scoped fixtures (yield from)."""
    import pytest
    from synthetic_onnx import write_skeleton_model

    model = write_skeleton_model(folder / "skeleton.onnx")
    running = probe_running_node(
        folder / "node.log",
        namespace,
        f"model_path:={model}",
        "threads:=1",
        "use_camera_info:=false",
        *parameters,
        annotated=annotated,
    )
    probe = next(running)
    if not probe.wait_for_log("active: listening", 30.0):
        running.close()
        pytest.fail(f"the node never became active:\n{probe.log_text()}")
    yield probe
    next(running, None)  # stop the node and check that it exited cleanly


class NodeProbe(NodeOutputs):
    """The node's outputs (``litepose_ros.ros.probe.NodeOutputs``) plus its /rosout log lines and
    its lifecycle and parameter services, from the test process."""

    def __init__(self, context, namespace: str, node_name: str = "litepose", annotated: bool = False):
        super().__init__(context, namespace, node_name=node_name, annotated=annotated)
        self.logger_name = f"{self.namespace.strip('/').replace('/', '.')}.{node_name}".lstrip(".")
        self.logs: list[Log] = []
        rosout_qos = QoSProfile(
            depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        self.node.create_subscription(Log, "/rosout", self._on_log, rosout_qos)
        self._change_state = self.node.create_client(ChangeState, f"{self.fqn}/change_state")
        self._get_state = self.node.create_client(GetState, f"{self.fqn}/get_state")

    def _on_log(self, message: Log) -> None:
        if message.name == self.logger_name:
            self.logs.append(message)

    # --- waiting and reading -------------------------------------------------------------------

    def wait_for_log(self, text: str, timeout: float = 10.0) -> Log | None:
        self.wait_for(lambda: any(text in entry.msg for entry in self.logs), timeout)
        return next((entry for entry in self.logs if text in entry.msg), None)

    def log_text(self) -> str:
        return "\n".join(entry.msg for entry in self.logs)

    def wait_for_diagnostic(self, condition: Callable[[dict[str, str]], bool], timeout: float = 10.0) -> bool:
        return self.wait_for(
            lambda: bool(self.diagnostics) and condition(self.latest_diagnostic_values()), timeout
        )

    # --- services ------------------------------------------------------------------------------

    def _call(self, client, request, timeout: float = 10.0):
        assert client.wait_for_service(timeout_sec=timeout), f"service {client.srv_name} not available"
        future = client.call_async(request)
        assert self.wait_for(future.done, timeout), f"no answer from {client.srv_name}"
        return future.result()

    def get_state(self) -> str:
        return self._call(self._get_state, GetState.Request()).current_state.label

    def change_state(self, transition_id: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return self._call(self._change_state, request).success

    def set_parameters(self, values: dict) -> list:
        """Set parameters through the node's set_parameters service; returns SetParametersResult list."""
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(self.node, self.fqn)
        assert client.wait_for_services(timeout_sec=10.0), "parameter services not available"
        future = client.set_parameters([Parameter(name, value=value) for name, value in values.items()])
        assert self.wait_for(future.done, 10.0), "no answer to set_parameters"
        return list(future.result().results)

    def get_parameters(self, names: list[str]) -> list:
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(self.node, self.fqn)
        assert client.wait_for_services(timeout_sec=10.0)
        future = client.get_parameters(names)
        assert self.wait_for(future.done, 10.0)
        return list(future.result().values)


def run_publisher(
    namespace: str, frames: str, *extra: str, rate: float = 10.0, timeout: float = 60.0
) -> list[dict]:
    """Run publish_frames.py into ``namespace`` to completion; returns the JSON lines it printed."""
    import json

    command = [
        sys.executable,
        str(ROS_SCRIPTS / "publish_frames.py"),
        "--frames",
        frames,
        "--rate",
        str(rate),
        *extra,
        "--ros-args",
        "-r",
        f"__ns:={namespace}",
    ]
    done = subprocess.run(command, env=dict(os.environ), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines and "error" not in lines[0], f"publisher: {done.stdout} {done.stderr}"
    return lines


TRANSITIONS = {
    name: getattr(Transition, f"TRANSITION_{name.upper()}")
    for name in ("configure", "activate", "deactivate", "cleanup")
}
