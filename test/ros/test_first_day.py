"""A ROS user's first day, over real DDS with the installed executable in its own process: the
extrinsic set one parameter at a time as ``ros2 param set`` and ``ros2 param load`` send it,
integers where a float is declared (YAML, the command line, run time), bad values at start-up
as one line, a sim-time node without /clock that still reports and follows run-time changes,
and no frame lost at start with several parameter files and no warm-up size."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from conftest import SAMPLE
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from ros_helpers import (
    RELIABLE,
    Driver,
    extrinsic_parameters,
    isolate_dds,
    node_process,
    spin_until,
)
from sensor_msgs.msg import Image

from sparse_depth_node.bag.demo import stop_node
from sparse_depth_node.data.datasets import KittiRawReader

isolate_dds()


def frames():
    reader = KittiRawReader(SAMPLE)
    return [reader.read(i) for i in range(3)]


def value(v) -> ParameterValue:
    """A parameter value as ``ros2 param set`` types what it is given: 80 an INTEGER, 80.0 a
    DOUBLE, [..] a DOUBLE_ARRAY, true a BOOL."""
    if isinstance(v, bool):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=v)
    if isinstance(v, int):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=v)
    if isinstance(v, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=v)
    return ParameterValue(
        type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=[float(x) for x in v]
    )


def param_set(driver: Driver, name: str, v) -> tuple[bool, str]:
    """One SetParameters call with one parameter, as ``ros2 param set`` makes it."""
    client = driver.node.create_client(SetParameters, "/sparse_depth_node/set_parameters")
    assert client.wait_for_service(timeout_sec=20.0)
    future = client.call_async(
        SetParameters.Request(parameters=[ParameterMsg(name=name, value=value(v))])
    )
    assert spin_until(driver.ex, future.done, 10.0)
    driver.node.destroy_client(client)
    result = future.result().results[0]
    return result.successful, result.reason


def send_until_back(driver: Driver, fs, n: int, start_s: int, most: int = 6) -> int:
    """Sets stamped from ``start_s``, each once the one before came back (or 4 s): how many
    depth images came back after at most ``most`` sets."""
    before = len(driver.got["reliable"])
    for k in range(most):
        if len(driver.got["reliable"]) - before >= n:
            break
        waiting = len(driver.got["reliable"]) - before + 1
        driver.publish_at(fs[k % len(fs) :], 1.0, 1, start_ns=(start_s + k) * 10**9)
        spin_until(driver.ex, lambda w=waiting: len(driver.got["reliable"]) - before >= w, 4.0)
    return len(driver.got["reliable"]) - before


def test_the_extrinsic_is_set_one_parameter_at_a_time(tmp_path):
    """Started without an extrinsic (no TF here): the translation alone is accepted and the node
    says what it waits for; with the rotation the frames come out."""
    fs = frames()
    proc = node_process(tmp_path, fs[0], "model:=nearest", extrinsic=False)
    driver = Driver(RELIABLE)
    ext = extrinsic_parameters(fs[0])
    try:
        driver.wait_for_node(proc, tmp_path / "node.log")
        first = param_set(driver, "extrinsic.translation", ext["extrinsic.translation"])
        none = send_until_back(driver, fs, 1, 100, most=2)
        spin_until(driver.ex, lambda: False, 1.5)  # a diagnostics message after the sets
        waiting = driver.diagnostics[-1].status[0].message
        second = param_set(driver, "extrinsic.rotation", ext["extrinsic.rotation"])
        out = send_until_back(driver, fs, 2, 200)
    finally:
        stop_node(proc)
        driver.close()
    assert first == (True, "") and second == (True, ""), (first, second)
    assert none == 0 and "extrinsic.translation is set and extrinsic.rotation not yet" in waiting
    assert out == 2, (tmp_path / "node.log").read_text()[-2000:]


def test_an_integer_max_depth_is_taken_from_yaml_the_command_line_and_at_run_time(tmp_path):
    fs = frames()
    rig = tmp_path / "rig.yaml"
    rig.write_text("/**:\n  ros__parameters:\n    max_depth: 80\n    min_depth: 1\n")
    proc = node_process(tmp_path, fs[0], "model:=nearest", "max_depth:=60", files=[rig])
    driver = Driver(RELIABLE)
    depths = []
    driver.node.create_subscription(Image, "depth/image", depths.append, RELIABLE)
    try:
        driver.wait_for_node(proc, tmp_path / "node.log")
        before = send_until_back(driver, fs, 1, 100)
        set_int = param_set(driver, "max_depth", 5)
        after = send_until_back(driver, fs, 1, 200)
        spin_until(driver.ex, lambda: len(depths) >= 2, 5.0)
    finally:
        stop_node(proc)
        driver.close()
    assert before == after == 1 and set_int == (True, ""), set_int
    far = [np.nanmax(np.frombuffer(bytes(m.data), "<f4")) for m in (depths[0], depths[-1])]
    assert 5.0 < far[0] <= 60.0 and far[1] <= 5.0, far


def test_a_bad_value_at_start_up_is_one_line_and_status_2(tmp_path):
    exe = Path(sys.executable).with_name("sparse_depth_node")
    for given, said in (
        ("inference_scale:=2.0", "inference_scale must be in [0.05, 1.0], got 2.0"),
        ("max_points:=-1", "max_points must be in [1, 50000000], got -1"),
        ("max_points:=1e12", "max_points must be in [1, 50000000], got 1000000000000.0"),
        ("max_points:=2.5", "max_points must be an integer, got 2.5"),
    ):
        run = subprocess.run(
            [str(exe), "--ros-args", "-p", given, "-p", "device:=cpu"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
        assert run.returncode == 2 and "Traceback" not in run.stderr, (given, run.stderr)
        assert len(lines) <= 2 and said in lines[-1], (given, lines)


def test_under_sim_time_without_clock_the_node_reports_and_follows_changes(tmp_path):
    """No /clock at all: diagnostics every second on wall time, WARN saying why ROS time stands
    still, and publish_sparse switched on at run time takes effect within 3 s."""
    fs = frames()
    proc = node_process(tmp_path, fs[0], "model:=nearest", "use_sim_time:=true")
    driver = Driver(RELIABLE)
    try:
        driver.wait_for_node(proc, tmp_path / "node.log")
        start = len(driver.diagnostics)
        spin_until(driver.ex, lambda: False, 12.0)
        reports = len(driver.diagnostics) - start
        message = driver.diagnostics[-1].status[0].message
        switched = param_set(driver, "publish_sparse", True)
        t0 = time.monotonic()
        assert spin_until(driver.ex, lambda: driver.node.count_publishers("depth/sparse"), 6.0)
        took = time.monotonic() - t0
    finally:
        stop_node(proc)
        driver.close()
    assert reports >= 5 and "no /clock has arrived" in message, (reports, message)
    assert switched == (True, "") and took <= 3.0, took
    assert "no /clock has arrived" in (tmp_path / "node.log").read_text()


def test_no_frame_is_lost_at_start_with_several_parameter_files(tmp_path):
    """The shipped defaults, then a rig file without a warm-up size, then the extrinsic block
    `sparse-depth extrinsic` prints (three --params-file, as the launch file passes them); the
    driver publishes reliable (the node's auto input QoS moves to it): 3 sets 1 s apart as soon
    as the node's subscriptions match, 3 depth images out."""
    fs = frames()
    rig = tmp_path / "rig.yaml"
    rig.write_text("/**:\n  ros__parameters:\n    warmup_size: [0, 0]\n    model: nearest\n")
    ext = extrinsic_parameters(fs[0])
    block = tmp_path / "extrinsic.yaml"
    block.write_text(
        "/**:\n  ros__parameters:\n    use_tf: false\n"
        + "".join(f"    {k}: {list(v)}\n" for k, v in ext.items())
    )
    proc = node_process(tmp_path, fs[0], files=[rig, block], extrinsic=False)
    driver = Driver(RELIABLE)
    try:
        assert spin_until(
            driver.ex,
            lambda: (
                all(p.get_subscription_count() for p in driver.pubs) or proc.poll() is not None
            ),
            120.0,
        )
        assert proc.poll() is None, (tmp_path / "node.log").read_text()
        driver.publish_at(fs, 1.0, 3)
        assert spin_until(driver.ex, lambda: len(driver.got["reliable"]) >= 3, 30.0)
    finally:
        stop_node(proc)
        driver.close()
    log = (tmp_path / "node.log").read_text()
    assert len(driver.got["reliable"]) == 3, log[-2000:]
    assert "warms up at the first camera_info's size" in log


def test_a_max_points_real_frames_fit_starts_with_the_shipped_warm_up(tmp_path):
    """max_points 40000 (enough for a 30k-point LiDAR; the shipped warm-up's synthetic cloud at
    1242 x 375 held 46,575 points, and the node exited 2): it starts and publishes."""
    fs = frames()
    proc = node_process(tmp_path, fs[0], "model:=nearest", "max_points:=40000")
    driver = Driver(RELIABLE)
    try:
        driver.wait_for_node(proc, tmp_path / "node.log")
        out = send_until_back(driver, fs, 2, 100)
    finally:
        stop_node(proc)
        driver.close()
    log = (tmp_path / "node.log").read_text()
    assert out == 2 and "warmed up at 1242x375" in log, log[-2000:]
