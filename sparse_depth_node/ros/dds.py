"""The node's Fast DDS profile (fastdds_node.xml beside this file; docs/NODE.md, "QoS and large
messages"): chosen by the executable before rclpy starts, unless the user configured Fast DDS
already, and the kernel limit it needs. No rclpy."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

PROFILE = Path(__file__).with_name("fastdds_node.xml")
RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes: the profile's UDP receive buffer
USER_SETTINGS = (  # any of these set: the user's Fast DDS configuration wins
    "FASTRTPS_DEFAULT_PROFILES_FILE",
    "FASTDDS_DEFAULT_PROFILES_FILE",
    "FASTDDS_BUILTIN_TRANSPORTS",
)
RMEM_MAX = Path("/proc/sys/net/core/rmem_max")
FAST_DDS_2 = ("humble", "iron", "jazzy")  # distributions whose Fast DDS reads only FASTRTPS_*


def use_node_profile(environ: "MutableMapping[str, str] | None" = None) -> bool:
    """Point Fast DDS at the node's profile in ``environ`` (default: this process's) when the
    middleware is Fast DDS (RMW_IMPLEMENTATION unset or rmw_fastrtps_*) and none of
    USER_SETTINGS is set; returns whether the profile is in use. Call before rclpy.init.
    FASTDDS_DEFAULT_PROFILES_FILE is Fast DDS 3's name (Kilted and these pip wheels); Fast DDS 2
    (Humble, Iron, Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE, set there too."""
    env = os.environ if environ is None else environ
    rmw = env.get("RMW_IMPLEMENTATION", "")
    if rmw and not rmw.startswith("rmw_fastrtps"):
        return False
    if any(name in env for name in USER_SETTINGS):
        return profile_in_use(env)
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(PROFILE)
    if env.get("ROS_DISTRO") in FAST_DDS_2:
        env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(PROFILE)
    return True


def profile_in_use(environ: "MutableMapping[str, str] | None" = None) -> bool:
    """Whether ``environ`` (default: this process's) points Fast DDS at the node's profile."""
    env = os.environ if environ is None else environ
    names = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
    return any(env.get(n) == str(PROFILE) for n in names)


def receive_buffer_problem(rmem_max: Path = RMEM_MAX) -> "str | None":
    """Why the kernel will shrink the profile's UDP receive buffer (net.core.rmem_max below
    RECEIVE_BUFFER), with the fix; None when it will not, or where Linux's limit is unknown."""
    try:
        limit = int(rmem_max.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if limit >= RECEIVE_BUFFER:
        return None
    return (
        f"net.core.rmem_max is {limit} bytes: the kernel caps the node's {RECEIVE_BUFFER} byte "
        "UDP receive buffer and large clouds and images from other processes will be lost; "
        f"raise it: sudo sysctl -w net.core.rmem_max={RECEIVE_BUFFER} (docs/NODE.md, QoS and "
        "large messages)"
    )


def transport_lines() -> list[tuple[str, str]]:
    """(logger level, line) the node says of its transport: the Fast DDS profile carrying its
    inputs, and whether the kernel limits it."""
    if not profile_in_use():
        return []
    lines = [("info", f"DDS: the node's Fast DDS profile {PROFILE}")]
    limit = receive_buffer_problem()
    return lines + ([("warning", limit)] if limit else [])
