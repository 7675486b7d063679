"""remove_stale_shared_memory removes exactly the Fast DDS segments no process holds: a killed ROS
process leaves its segment (32 MiB of RAM with the project's profile) in /dev/shm for good."""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import time

import pytest

from litepose_ros.dds import remove_stale_shared_memory

SEGMENT = re.compile(r"^(fastdds|fastrtps)_[0-9a-f]{16}$")


def make_segment(directory, name: str, size: int, age_s: float) -> None:
    (directory / name).write_bytes(b"\0" * size)
    lock = directory / f"{name}_el"
    lock.write_bytes(b"")
    old = time.time() - age_s
    os.utime(lock, (old, old))


def test_only_unlocked_old_segments_are_removed(tmp_path):
    make_segment(tmp_path, "fastdds_00112233445566aa", 1000, age_s=60)  # owner gone: removed
    make_segment(tmp_path, "fastrtps_00112233445566bb", 500, age_s=60)  # Fast DDS 2.x, gone: removed
    make_segment(tmp_path, "fastdds_00112233445566cc", 700, age_s=60)  # owner alive: kept
    make_segment(tmp_path, "fastdds_00112233445566dd", 300, age_s=0)  # just created: kept
    make_segment(tmp_path, "fastdds_port7001", 100, age_s=60)  # a shared port, not a segment: kept
    (tmp_path / "fastdds_00112233445566ee").write_bytes(b"\0")  # no lock file: not Fast DDS's pair
    (tmp_path / "other_00112233445566ff_el").write_bytes(b"")
    holder = os.open(tmp_path / "fastdds_00112233445566cc_el", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as its live process does
    try:
        assert remove_stale_shared_memory(tmp_path) == (2, 1500)
    finally:
        os.close(holder)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "fastdds_00112233445566cc",
        "fastdds_00112233445566cc_el",
        "fastdds_00112233445566dd",
        "fastdds_00112233445566dd_el",
        "fastdds_00112233445566ee",
        "fastdds_port7001",
        "fastdds_port7001_el",
        "other_00112233445566ff_el",
    ]


def test_a_missing_directory_is_nothing_to_clean(tmp_path):
    assert remove_stale_shared_memory(tmp_path / "no_shm") == (0, 0)


ROS_PARTICIPANT = """
import sys, time
import rclpy
rclpy.init()
node = rclpy.create_node("shared_memory_owner")
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.ros
def test_a_killed_ros_process_segment_is_removed_a_live_one_kept():
    # The lock convention read from a real Fast DDS (Kilted 3.x, Jazzy 2.x): the live process's
    # segments are kept, and once SIGKILL left them behind, they are removed.
    from litepose_ros.dds import SHARED_MEMORY_DIR

    owner = subprocess.Popen(
        [sys.executable, "-c", ROS_PARTICIPANT], env=dict(os.environ), stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout.readline().strip() == "ready"
        # Its own segments: those whose lock file it holds open (other ROS processes may be running).
        open_files = {
            os.path.realpath(f"/proc/{owner.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{owner.pid}/fd")
        }
        created = {
            name
            for name in os.listdir(SHARED_MEMORY_DIR)
            if SEGMENT.match(name) and str(SHARED_MEMORY_DIR / f"{name}_el") in open_files
        }
        assert created, "the ROS process made no shared-memory segment: is the SHM transport on?"
        remove_stale_shared_memory(min_age_s=0)
        assert created <= set(os.listdir(SHARED_MEMORY_DIR))  # alive: kept
    finally:
        owner.kill()
        owner.wait()
    assert created <= set(os.listdir(SHARED_MEMORY_DIR))  # SIGKILL: left behind
    remove_stale_shared_memory(min_age_s=0)
    assert not created & set(os.listdir(SHARED_MEMORY_DIR))
