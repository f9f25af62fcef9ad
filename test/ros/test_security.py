"""Security: parameter YAML is read safely, and the node listens on no TCP port (DDS uses UDP
here)."""

import os
import re
from pathlib import Path

import pytest
from rclpy.parameter import Parameter
from ros_helpers import extrinsic_parameters, isolate_dds, rclpy

from sparse_depth_node.bag.io import load_parameters
from sparse_depth_node.ros.node import SparseDepthNode


def test_parameter_yaml_with_a_python_tag_is_refused_not_executed(tmp_path):
    marker = tmp_path / "ran"
    bad = tmp_path / "params.yaml"
    bad.write_text(
        "/**:\n  ros__parameters:\n    model: !!python/object/apply:os.system ['touch "
        f"{marker}']\n"
    )
    with pytest.raises(ValueError, match="not valid YAML.*python/object/apply"):
        load_parameters(bad)
    assert not marker.exists()


def _socket_inodes(tables: tuple[str, ...], state: "str | None" = None) -> set[str]:
    inodes = set()
    for table in tables:
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if state is None or fields[3] == state:
                inodes.add(fields[9])
    return inodes


def _own_socket_inodes() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            m = re.match(r"socket:\[(\d+)\]", os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
        if m:
            out.add(m.group(1))
    return out


def test_the_node_opens_no_listening_tcp_socket(kitti_frame0, monkeypatch):
    isolate_dds()
    monkeypatch.delenv("FASTDDS_BUILTIN_TRANSPORTS", raising=False)  # the default transports
    before = _own_socket_inodes()
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    overrides = {
        "use_tf": False,
        "model": "classic",
        "device": "cpu",
        **extrinsic_parameters(kitti_frame0),
    }
    node = SparseDepthNode(
        context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
    )
    try:
        opened = _own_socket_inodes() - before
        assert opened & _socket_inodes(
            ("/proc/net/udp", "/proc/net/udp6")
        )  # DDS's own UDP sockets are seen
        assert not (
            opened & _socket_inodes(("/proc/net/tcp", "/proc/net/tcp6"), state="0A")
        )  # nothing listens
    finally:
        node.destroy_node()
        rclpy.shutdown(context=ctx)
