"""Process start-up settings: threads that leave a core to the robot, OpenMP threads that
sleep instead of spinning, an allocator that keeps freed memory."""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import SAMPLE

from sparse_depth_node.core.runtime import cpu_threads, signals_held


def test_auto_threads_leave_one_core_free_and_an_explicit_count_wins():
    cores = len(os.sched_getaffinity(0))
    assert cpu_threads(0) == max(1, cores - 1)
    assert cpu_threads(3) == 3


def _fresh(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_importing_the_package_makes_openmp_threads_sleep_unless_the_user_chose():
    code = "import sparse_depth_node, os; print(os.environ['OMP_WAIT_POLICY'])"
    assert _fresh(code) == "PASSIVE"
    assert _fresh(code, OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


def test_configure_process_sets_torch_and_opencv_threads():
    code = (
        "from sparse_depth_node.core.runtime import configure_process\n"
        "import cv2, torch\n"
        "n = configure_process(1)\n"
        "print(n, torch.get_num_threads(), cv2.getNumThreads())"
    )
    assert _fresh(code) == "1 1 1"


def test_memory_of_an_outsized_frame_is_given_back():
    code = (
        "from pathlib import Path\n"
        "from sparse_depth_node.core.runtime import configure_process, release_freed_memory\n"
        "configure_process(0)\n"
        "from sparse_depth_node.core.completion import DepthCompleter\n"
        "from sparse_depth_node.core.pipeline import process_frame\n"
        "from sparse_depth_node.data.datasets import KittiRawReader\n"
        "from sparse_depth_node.lab.bench_scaling import camera_of_size, synthetic_cloud\n"
        "def rss():\n"
        "    s = Path('/proc/self/status').read_text().splitlines()\n"
        "    return int([x for x in s if x.startswith('VmRSS')][0].split()[1]) / 1024\n"
        f"f = KittiRawReader('{SAMPLE}').read(0)\n"
        "c = DepthCompleter('sparseconv', 'cpu')\n"
        "big = camera_of_size(f.camera, 3840, 2160)\n"
        "process_frame(synthetic_cloud(f, 1_000_000), big, f.t_cam_from_lidar, c)\n"
        "process_frame(f.points, f.camera, f.t_cam_from_lidar, c)\n"
        "held = rss()\n"
        "release_freed_memory()\n"
        "print(held, rss())\n"
    )
    held, after = (float(x) for x in _fresh(code).split())
    assert after < held - 100, (held, after)


def test_a_signal_during_a_held_step_comes_once_the_step_is_done():
    """The demo starts its node under signals_held: a SIGTERM meanwhile must not cut the step in
    two (the node would be started and never stopped), and must still come, as the command's
    handler raises it (KeyboardInterrupt), once the step is done."""
    before = signal.signal(signal.SIGTERM, signal.default_int_handler)
    steps = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with signals_held():
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(100):  # many bytecodes: where a handler would run
                    time.sleep(0.001)
                steps.append("done")
        assert steps == ["done"]
        assert signal.getsignal(signal.SIGTERM) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, before)
