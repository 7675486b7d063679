"""Test harness: every ROS process the tests start keeps DDS on loopback, on a fixed domain.

The loopback environment is applied to this process at import time, before any test can import
rclpy, so the pytest process and every subprocess it starts (which inherit os.environ) use the
project's localhost-only Fast DDS profile and TEST_DOMAIN_ID.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from litepose_ros.dds import apply_loopback_environment, remove_stale_shared_memory

apply_loopback_environment()
remove_stale_shared_memory()  # segments of ROS processes killed in earlier runs hold RAM (/dev/shm)

TEST_DIR = Path(__file__).resolve().parent
PROJECT_DIR = TEST_DIR.parent
FIXTURES = TEST_DIR / "fixtures"
ROS_SCRIPTS = TEST_DIR / "ros_scripts"


def start_ros_script(name: str, *args: str, **popen_kwargs) -> subprocess.Popen:
    """Start test/ros_scripts/<name> in its own Python process with the loopback environment."""
    return subprocess.Popen(
        [sys.executable, str(ROS_SCRIPTS / name), *args],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen_kwargs,
    )


def pytest_sessionfinish(session, exitstatus):
    remove_stale_shared_memory()  # and those of processes this run had to kill


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> tuple[str, str]:
    """Stop a ROS process (SIGINT, then SIGKILL) and return its output (None where not piped).
    SIGKILL only after the timeout: it leaves the process's DDS shared-memory segment behind."""
    if process.poll() is None:
        process.send_signal(subprocess.signal.SIGINT)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return out, err


@pytest.fixture
def rclpy_context():
    """An initialised rclpy context for this test (the pytest process is one ROS participant)."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)
