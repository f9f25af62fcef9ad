"""The benchmark's references agree with the project's code, and its report has the documented keys."""

import json
import subprocess
import sys

import numpy as np
import torch

from sparse_depth_node.bag import TYPESTORE, blank_message, make_header
from sparse_depth_node.bench import numpy_zbuffer, python_cloud_decoder
from sparse_depth_node.geometry import project_points
from sparse_depth_node.msgs import fill_cloud_from_array, pointcloud2_to_xyz

from conftest import REPO, SAMPLE


def test_references_compute_what_the_project_computes(kitti_frame0):
    f = kitti_frame0
    ref = numpy_zbuffer(f.points, f.camera.P @ f.t_cam_from_lidar, 1242, 375, 0.5, 100.0)
    ours, _ = project_points(torch.from_numpy(f.points), f.camera, f.t_cam_from_lidar, 0.5, 100.0)
    same = np.isclose(ours[0, 0].numpy(), ref, atol=1e-3)
    assert same.mean() > 0.9995
    msg = fill_cloud_from_array(blank_message("sensor_msgs/msg/PointCloud2"), TYPESTORE.types["sensor_msgs/msg/PointField"],
                                make_header(0, "l"), np.c_[f.points[:500], f.intensity[:500]])
    np.testing.assert_array_equal(python_cloud_decoder(msg), pointcloud2_to_xyz(msg))


def test_bench_cli_writes_the_documented_json(tmp_path):
    out = tmp_path / "b.json"
    r = subprocess.run([sys.executable, "-m", "sparse_depth_node.cli", "bench", "--data", str(SAMPLE),
                        "--model", "nearest", "--device", "cpu", "--iterations", "2", "--warmup", "1",
                        "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["device"] == "cpu"
    for stage in ("cloud_msg_to_array", "image_msg_to_array", "project", "complete", "backproject",
                  "depth_msg_encode", "cloud_msg_encode"):
        assert set(data["stages"][stage]) >= {"median_ms", "p90_ms", "p99_ms"}
    assert set(data["end_to_end"]) >= {"median_ms", "p90_ms", "p99_ms"}
    assert "end_to_end" in r.stdout and "numpy sort-based z-buffer" in r.stdout
