"""The project's harness keeps DDS on loopback for every ROS process the tests start."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import start_ros_script, stop_process

from litepose_ros.dds import LOCALHOST_PROFILE, TEST_DOMAIN_ID, fast_dds_major_version

pytestmark = pytest.mark.ros

# The group Fast DDS joins for default (multicast) discovery, as /proc/net/igmp prints it.
DDS_DISCOVERY_GROUP = "0100FFEF"  # 239.255.0.1, little-endian hex
LOOPBACK_HEX = "0100007F"  # 127.0.0.1


def process_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def udp_local_addresses(pid: int) -> list[str]:
    """Local IPv4/IPv6 addresses of the UDP sockets that process pid holds open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    addresses = []
    for table in ("udp", "udp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                addresses.append(fields[1].rsplit(":", 1)[0])
    return addresses


def assert_profile_variables(env: dict[str, str]) -> None:
    """Fast DDS 3 (Kilted) reads FASTDDS_..., Fast DDS 2 (Jazzy) FASTRTPS_...; Fast DDS 3 would
    prefer the old name, with a deprecation warning, so there it must be absent."""
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(LOCALHOST_PROFILE)
    if fast_dds_major_version() == 3:
        assert "FASTRTPS_DEFAULT_PROFILES_FILE" not in env
    else:
        assert env["FASTRTPS_DEFAULT_PROFILES_FILE"] == str(LOCALHOST_PROFILE)


def test_harness_knows_the_installed_fast_dds():
    assert fast_dds_major_version() in (2, 3)


def test_harness_sets_profile_and_domain_for_this_process():
    assert_profile_variables(dict(os.environ))
    assert LOCALHOST_PROFILE.is_file()
    assert os.environ["ROS_DOMAIN_ID"] == str(TEST_DOMAIN_ID)
    assert os.environ["RMW_IMPLEMENTATION"] == "rmw_fastrtps_cpp"
    # This variable makes the middleware open sockets on every interface: the harness removes it.
    assert "ROS_AUTOMATIC_DISCOVERY_RANGE" not in os.environ


def test_started_ros_process_talks_on_loopback_only(rclpy_context):
    import rclpy

    process = start_ros_script("publish_messages.py", "--seconds", "20")
    node = rclpy.create_node("litepose_test_dds_observer", context=rclpy_context)
    try:
        # Wait until discovery between the two processes has happened: DDS is then fully up.
        deadline = time.monotonic() + 15
        while node.count_publishers("test_person_array") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert node.count_publishers("test_person_array") == 1, "the processes never discovered each other"

        env = process_environment(process.pid)
        assert_profile_variables(env)
        assert env["ROS_DOMAIN_ID"] == str(TEST_DOMAIN_ID)

        for pid in (process.pid, os.getpid()):
            addresses = udp_local_addresses(pid)
            assert addresses, f"process {pid} has no UDP socket: is DDS running?"
            assert set(addresses) == {LOOPBACK_HEX}, f"process {pid} bound UDP outside loopback: {addresses}"
        assert DDS_DISCOVERY_GROUP not in Path("/proc/net/igmp").read_text(), (
            "a process joined the DDS multicast discovery group"
        )
    finally:
        node.destroy_node()
        stop_process(process)
