"""Lifecycle of the node process through its lifecycle services, and the refusals at start-up:
a missing model, a model of the wrong variant, an invalid parameter value."""

from __future__ import annotations

import subprocess

import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from ros_scripts.node_probe import (
    TRANSITIONS,
    NodeProbe,
    assert_exited_cleanly,
    node_executable,
    node_model_path,
    run_publisher,
    start_node,
    stop_node,
)

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return node_model_path(tmp_path_factory.getbasetemp())[0]


def stamps_of(probe: NodeProbe) -> set[tuple[int, int]]:
    return {(m.header.stamp.sec, m.header.stamp.nanosec) for m in probe.persons}


def test_transitions_load_start_stop_and_free(rclpy_context, model, tmp_path):
    namespace = "/lp_lifecycle"
    process = start_node(
        tmp_path / "node.log", namespace, f"model_path:={model}", "auto_activate:=false", "threads:=1"
    )
    probe = NodeProbe(rclpy_context, namespace)
    try:
        assert probe.get_state() == "unconfigured"
        assert probe.wait_for_diagnostic(lambda v: v["state"] == "unconfigured", 10.0)
        assert probe.diagnostics[-1].level == DiagnosticStatus.WARN  # not processing

        assert probe.change_state(TRANSITIONS["configure"])
        assert probe.get_state() == "inactive"
        assert probe.wait_for_log("configured:") is not None
        # Inactive: the node does not subscribe to images, so nothing is processed.
        assert probe.node.count_subscribers(f"{namespace}/image") == 0

        assert probe.change_state(TRANSITIONS["activate"])
        assert probe.get_state() == "active"
        sent = run_publisher(namespace, "bgr8,bgr8", rate=4.0)
        active_stamps = {(s["sec"], s["nanosec"]) for s in sent}
        assert probe.wait_for(lambda: active_stamps <= stamps_of(probe), 15.0), probe.log_text()

        assert probe.change_state(TRANSITIONS["deactivate"])
        assert probe.get_state() == "inactive"
        # Inactive again: the image subscription is gone, a camera publishing now is not listened to.
        assert probe.wait_for(lambda: probe.node.count_subscribers(f"{namespace}/image") == 0, 5.0)
        received = len(probe.persons)

        assert probe.change_state(TRANSITIONS["cleanup"])
        assert probe.get_state() == "unconfigured"
        assert probe.wait_for_log("model released") is not None
        # Invalid from here: activate needs a configured node.
        assert not probe.change_state(TRANSITIONS["activate"])
        assert probe.get_state() == "unconfigured"
        # And back to work: configure + activate again.
        assert probe.change_state(TRANSITIONS["configure"]) and probe.change_state(TRANSITIONS["activate"])
        sent = run_publisher(namespace, "bgr8", rate=4.0)
        stamp = (sent[0]["sec"], sent[0]["nanosec"])
        assert probe.wait_for(lambda: stamp in stamps_of(probe), 15.0), probe.log_text()
        assert len(probe.persons) == received + 1
    finally:
        probe.close()
        output = stop_node(process)
    assert_exited_cleanly(process, output)


def test_missing_model_refuses_to_configure_and_keeps_running(rclpy_context, tmp_path):
    namespace = "/lp_missing"
    missing = tmp_path / "no_such_model.onnx"
    process = start_node(tmp_path / "node.log", namespace, f"model_path:={missing}")
    probe = NodeProbe(rclpy_context, namespace)
    try:
        entry = probe.wait_for_log("cannot configure", 20.0)
        assert entry is not None, probe.log_text()
        assert str(missing) in entry.msg and "does not exist" in entry.msg
        assert probe.get_state() == "unconfigured"  # auto-activate stopped at configure
        assert probe.wait_for_diagnostic(lambda v: v["state"] == "unconfigured", 10.0)
        status = probe.diagnostics[-1]
        assert status.level == DiagnosticStatus.ERROR and str(missing) in status.message  # names the file
        assert process.poll() is None  # still running, services up
        assert not probe.change_state(TRANSITIONS["configure"])
    finally:
        probe.close()
        output = stop_node(process)
    assert_exited_cleanly(process, output)


def test_model_of_the_wrong_variant_is_refused(rclpy_context, model, tmp_path):
    namespace = "/lp_variant"
    process = start_node(tmp_path / "node.log", namespace, f"model_path:={model}", "variant:=L")
    probe = NodeProbe(rclpy_context, namespace)
    try:
        entry = probe.wait_for_log("cannot configure", 20.0)
        assert entry is not None, probe.log_text()
        assert str(model) in entry.msg and "variant" in entry.msg, entry.msg
        assert probe.get_state() == "unconfigured"
    finally:
        probe.close()
        output = stop_node(process)
    assert_exited_cleanly(process, output)


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        ("input_transport:=theora", "input_transport must be one of raw, compressed"),
        ("score_threshold:=2.0", "score_threshold"),
        ("qos_depth:=five", "qos_depth must be an integer, got the string 'five'"),
        ("markers.depth:=3", "markers.depth must be a double, got the integer 3 (write 3.0)"),
    ],
)
def test_invalid_start_up_parameter_stops_the_node_with_the_reason(parameter, expected):
    done = subprocess.run(
        [node_executable(), "--ros-args", "-r", "__ns:=/lp_invalid", "-p", parameter],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "litepose_node: invalid parameter" in done.stderr
    assert expected in done.stderr
