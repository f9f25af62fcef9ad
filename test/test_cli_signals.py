"""Every long-running command stops cleanly on Ctrl-C (SIGINT to its process group) and SIGTERM:
no traceback, exit status 128 + the signal's number (130, 143) with one line saying so, or 0
when the work was already done, and outputs closed and readable. The node's own executable is
tested the same way in test/ros/test_shutdown.py (it exits 0, as a ROS node does)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE, process_group

from sparse_depth_node.bag.fleet import DONE_SUFFIX
from sparse_depth_node.bag.io import open_bag

BAG = REPO / "sample" / "kitti_2011_09_26_sample"
CLI = [sys.executable, "-m", "sparse_depth_node.cli"]


def commands(tmp: Path) -> dict[str, tuple[list[str], "float | Path", "Path | None"]]:
    """{name: (command, seconds to let it work before the signal or the file whose coming
    means it is at work, bag it writes)}."""
    train = ["--data", str(SAMPLE), "--ddad", "", "--extra", "", "--rig", ""]
    train += ["--train-frames", "0:2", "--val-frames", "2:3", "--steps", "100000"]
    train += ["--batch", "1", "--crop", "64", "128", "--quiet", "--out", str(tmp / "w.pt")]
    (tmp / "slow.yaml").write_text("/**:\n  ros__parameters:\n    model: multiscale\n")
    bags = [tmp / "bags" / name for name in ("a", "b", "c")]
    for b in bags:
        shutil.copytree(BAG, b)
    fleet = [*map(str, bags), str(tmp / "fleet"), "--workers", "1", "--params"]
    return {
        "play": (CLI + ["play", str(BAG), "--loop", "--wait", "0", "--quiet"], 4.0, None),
        "process": (
            CLI + ["process", str(BAG), str(tmp / "out"), "--params", str(tmp / "slow.yaml")],
            6.0,
            tmp / "out",
        ),
        "demo": (CLI + ["demo", "--bag", str(BAG), "--out", str(tmp / "demo")], 8.0, None),
        "train": (CLI + ["train", *train, "--model", "sparseconv"], 6.0, None),
        # Ray's start takes 5-15 s: the signal comes once the first bag is done, two to go
        "fleet": (
            CLI + ["process", *fleet, str(tmp / "slow.yaml"), "--quiet"],
            tmp / "fleet" / ("a" + DONE_SUFFIX),
            None,
        ),
    }


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("name", ["play", "process", "demo", "train", "fleet"])
def test_a_signal_stops_a_command_cleanly(name, sig, tmp_path):
    cmd, wait, bag = commands(tmp_path)[name]
    env = dict(os.environ, ROS_DOMAIN_ID=str(60 + os.getpid() % 30))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    proc = process_group(cmd, cwd=tmp_path, env=env)
    if isinstance(wait, Path):
        deadline = time.monotonic() + 120
        while not wait.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert wait.exists(), f"{wait.name} never came"
    else:
        time.sleep(wait)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C: the terminal signals the whole group
    else:
        proc.send_signal(sig)  # launch, systemd: the process alone
    out, _ = proc.communicate(timeout=120)
    assert "Traceback" not in out, out[-3000:]
    assert proc.returncode in (0, 128 + sig), out[-3000:]
    if proc.returncode:
        assert f"interrupted ({sig.name})" in out, out[-3000:]
    if bag is not None and bag.exists():  # closed and readable, whatever it holds
        with open_bag(bag) as reader:
            assert all(c.msgcount >= 0 for c in reader.connections)
    if name == "fleet":  # the bags in flight leave nothing behind; the next run redoes them
        assert not list((tmp_path / "fleet").glob("*.partial"))
    leftovers = subprocess.run(
        ["pgrep", "-s", str(proc.pid)], capture_output=True, text=True
    ).stdout.split()
    assert not leftovers, f"processes left behind: {leftovers}"


def test_a_sigterm_as_the_demo_starts_its_node_leaves_no_node_behind(tmp_path):
    """The demo is signalled the moment its node's process exists, while it starts it: the
    node is stopped all the same (before signals_held: left running in 2 of 6 tries here)."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(60 + os.getpid() % 30))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    for attempt in range(5):
        cmd = CLI + ["demo", "--bag", str(BAG), "--out", str(tmp_path / f"demo{attempt}")]
        proc = process_group(cmd, cwd=tmp_path, env=env)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        while proc.poll() is None and not children.read_text().split():
            pass  # as tight as it goes: the node's process is forked inside Popen
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
        leftovers = subprocess.run(
            ["pgrep", "-s", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert not leftovers, f"try {attempt}: the node was left running: {leftovers}"


def test_a_signal_after_the_work_ends_the_process_with_the_commands_own_status(tmp_path):
    """The interpreter's teardown (Ray's, torch's) can take a second or more on a busy machine;
    a Ctrl-C then ends the process at once with what the command said, not by the signal."""
    script = (
        "import os, signal, sys, time\n"
        "from sparse_depth_node import cli\n"
        f"sys.argv = ['sparse-depth', 'process', {str(tmp_path / 'no bag')!r}, 'out']\n"
        "status = cli.main()\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(30)\n"
        "sys.exit(99)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr  # the command's status: its input is missing
    assert "no bag" in done.stderr and "Traceback" not in done.stderr
