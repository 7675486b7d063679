"""The project's DDS harness: a localhost-only Fast DDS profile and a fixed test domain.

Every test, demo and benchmark of this project starts ROS processes with
``loopback_environment()``: DDS then talks over shared memory and 127.0.0.1 only (no multicast,
nothing on other interfaces). Nodes run on a robot never call this; they use the robot's DDS
configuration.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path

LOCALHOST_PROFILE = Path(__file__).with_name("localhost_fastdds.xml")
# Fixed domain for the project's own processes, away from the default 0 that robots use.
# LITEPOSE_TEST_DOMAIN_ID picks another one, so that two checkouts testing at once on one machine
# do not receive each other's messages.
TEST_DOMAIN_ID = int(os.environ.get("LITEPOSE_TEST_DOMAIN_ID", "57"))
if not 0 <= TEST_DOMAIN_ID <= 101:  # the ids whose DDS ports are safe on Linux (ROS 2 documentation)
    raise ValueError(f"LITEPOSE_TEST_DOMAIN_ID must be 0 to 101, got {TEST_DOMAIN_ID}")


def loopback_environment(
    base: Mapping[str, str] | None = None, domain_id: int = TEST_DOMAIN_ID
) -> dict[str, str]:
    """Environment for a ROS process that must keep DDS on loopback."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
            # Fast DDS 3.x (Kilted) reads this name.
            "FASTDDS_DEFAULT_PROFILES_FILE": str(LOCALHOST_PROFILE),
            "ROS_DOMAIN_ID": str(domain_id),
        }
    )
    # Fast DDS 2.x (Jazzy, Humble) reads only the old name. Fast DDS 3.x reads it too, prefers it
    # to the new one and warns at every start that it is deprecated: there it is removed (an
    # inherited value could name another profile), elsewhere it is set as well.
    if fast_dds_major_version() == 3:
        env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    else:
        env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(LOCALHOST_PROFILE)
    # Measured here: ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST makes the middleware add sockets on
    # the machine's other interfaces next to the profile's, so these must stay unset: the profile
    # alone confines DDS to loopback.
    for name in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY", "ROS_STATIC_PEERS"):
        env.pop(name, None)
    return env


def fast_dds_major_version() -> int | None:
    """3 or 2: the Fast DDS of this interpreter's ROS 2 (its prefix and AMENT_PREFIX_PATH), told by
    the package it installs (share/fastdds for 3.x, share/fastrtps for 2.x); None when both or
    neither are found."""
    prefixes = [sys.prefix, *os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)]
    found = {
        name
        for prefix in prefixes
        if prefix
        for name in ("fastdds", "fastrtps")
        if (Path(prefix) / "share" / name).is_dir()
    }
    return {frozenset({"fastdds"}): 3, frozenset({"fastrtps"}): 2}.get(frozenset(found))


def apply_loopback_environment(domain_id: int = TEST_DOMAIN_ID) -> None:
    """Put the loopback settings into this process's environment (before rclpy starts DDS)."""
    env = loopback_environment(domain_id=domain_id)
    for name in set(os.environ) - set(env):
        del os.environ[name]
    os.environ.update(env)


# Fast DDS's shared-memory segments: /dev/shm/<prefix>_<16 hex digits>, each with a "_el" file
# that its owning process keeps locked (flock) while it lives. Fast DDS 3.x writes "fastdds_",
# 2.x "fastrtps_".
SHARED_MEMORY_DIR = Path("/dev/shm")
_SEGMENT_NAME = re.compile(r"^(fastdds|fastrtps)_[0-9a-f]{16}$")


def remove_stale_shared_memory(
    directory: Path = SHARED_MEMORY_DIR, min_age_s: float = 5.0
) -> tuple[int, int]:
    """Remove the Fast DDS shared-memory segments whose process is gone; returns (segments, bytes).

    A ROS process killed (SIGKILL, a timeout, the OOM killer) or ended without destroying its
    participant leaves its segment behind: with this project's profile 32 MiB of RAM each (/dev/shm
    is memory), and they add up over test runs until the machine runs out of memory. A segment is
    stale when its lock file can be locked, i.e. no process holds it; one younger than min_age_s
    is left alone (its owner may be between creating the file and locking it).
    """
    removed = freed = 0
    try:
        names = set(os.listdir(directory))
    except OSError:  # no /dev/shm (not Linux): nothing to clean
        return 0, 0
    now = time.time()
    for name in sorted(names):
        if not _SEGMENT_NAME.match(name) or f"{name}_el" not in names:
            continue
        segment, lock = directory / name, directory / f"{name}_el"
        try:
            if now - lock.stat().st_mtime < min_age_s:
                continue
            descriptor = os.open(lock, os.O_RDWR)
        except OSError:
            continue  # removed meanwhile, or not ours to open
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            continue  # its process is alive
        try:
            size = segment.stat().st_size
            segment.unlink()
            lock.unlink()
            removed += 1
            freed += size
        except OSError:
            pass
        finally:
            os.close(descriptor)  # releases the lock
    return removed, freed
