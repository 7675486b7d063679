"""A first run on the user's own camera: the bundled demonstration model finds no one in most
scenes, so after BUNDLED_MODEL_HINT_AFTER images without anyone the node says once what the model
is and what to do; it says nothing once it has found someone, nor for the user's own model file.

The node runs the bundled model on ``walk`` frames (a red blob on black: no person for a real
model) and on the bundled vtest frames (pedestrians it finds).
"""

from __future__ import annotations

import shutil

import pytest
from ros_scripts.node_probe import probe_running_node, run_publisher

from litepose_ros.ros.node import BUNDLED_MODEL_HINT_AFTER
from litepose_ros.weights import default_model_path

pytestmark = pytest.mark.ros

HINT = "the bundled model has found no one"
EMPTY_IMAGES = BUNDLED_MODEL_HINT_AFTER + 5


def run_node(tmp_path, namespace: str, frames: list[str], *parameters: str) -> tuple[list, str]:
    """Start the node with these parameters, send the frames in lock step (each one processed);
    the PersonArrays and the node's log."""
    running = probe_running_node(tmp_path / "node.log", namespace, "threads:=1", *parameters)
    probe = next(running)
    try:
        assert probe.wait_for_log("active: listening", 30.0), probe.log_text()
        sent = run_publisher(namespace, ",".join(frames), rate=100.0, timeout=120.0)
        stamps = {(s["sec"], s["nanosec"]) for s in sent}

        def all_answered() -> bool:
            return stamps <= {(m.header.stamp.sec, m.header.stamp.nanosec) for m in probe.persons}

        assert probe.wait_for(all_answered, 30.0), probe.log_text()
        probe.wait_for(lambda: False, 1.0)  # let the last log lines arrive
        return list(probe.persons), probe.log_text()
    finally:
        next(running, None)


def test_the_bundled_model_finding_no_one_says_once_what_it_is_and_what_to_do(tmp_path):
    persons, log = run_node(tmp_path, "/lp_hint_empty", ["walk"] * EMPTY_IMAGES)
    assert len(persons) == EMPTY_IMAGES and not any(m.persons for m in persons)  # no one, as assumed
    assert log.count(HINT) == 1, log
    line = next(entry for entry in log.splitlines() if HINT in entry)
    assert f"first {BUNDLED_MODEL_HINT_AFTER} images" in line and "/lp_hint_empty/image" in line
    assert "demonstration model" in line and "Your own camera" in line and "model_path" in line


def test_no_hint_once_the_bundled_model_has_found_someone(tmp_path):
    persons, log = run_node(tmp_path, "/lp_hint_found", ["bgr8"] * 3 + ["walk"] * EMPTY_IMAGES)
    assert any(m.persons for m in persons[:3])  # it found the pedestrians
    assert HINT not in log, log


def test_no_hint_for_a_model_file_of_the_users_own(tmp_path):
    own = tmp_path / "my_model.onnx"
    shutil.copyfile(default_model_path(), own)  # the same network, but the user's own file
    persons, log = run_node(tmp_path, "/lp_hint_own", ["walk"] * EMPTY_IMAGES, f"model_path:={own}")
    assert len(persons) == EMPTY_IMAGES and not any(m.persons for m in persons)
    assert HINT not in log, log
