"""The benchmark's references agree with the project's code, and its report has the documented
keys."""

import json
import subprocess
import sys

import numpy as np
import torch
from conftest import REPO, SAMPLE

from sparse_depth_node.bag.io import TYPESTORE, blank_message, make_header
from sparse_depth_node.core.geometry import project_points
from sparse_depth_node.lab.bench import numpy_zbuffer, python_cloud_decoder
from sparse_depth_node.msgs.convert import fill_cloud_from_array, pointcloud2_to_xyz


def test_references_compute_what_the_project_computes(kitti_frame0):
    f = kitti_frame0
    ref = numpy_zbuffer(f.points, f.camera.P @ f.t_cam_from_lidar, 1242, 375, 0.5, 100.0)
    ours, _ = project_points(torch.from_numpy(f.points), f.camera, f.t_cam_from_lidar, 0.5, 100.0)
    same = np.isclose(ours[0, 0].numpy(), ref, atol=1e-3)
    assert same.mean() > 0.9995
    msg = fill_cloud_from_array(
        blank_message("sensor_msgs/msg/PointCloud2"),
        TYPESTORE.types["sensor_msgs/msg/PointField"],
        make_header(0, "l"),
        np.c_[f.points[:500], f.intensity[:500]],
    )
    np.testing.assert_array_equal(python_cloud_decoder(msg), pointcloud2_to_xyz(msg))


def test_bench_cli_writes_the_documented_json(tmp_path):
    out = tmp_path / "b.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparse_depth_node.cli",
            "bench",
            "--data",
            str(SAMPLE),
            "--model",
            "nearest",
            "--device",
            "cpu",
            "--iterations",
            "2",
            "--warmup",
            "1",
            "--sections",
            "stages",
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["device"] == "cpu"
    for stage in (
        "cloud_msg_to_array",
        "image_msg_to_array",
        "project",
        "complete",
        "backproject",
        "encode depth/image",
        "encode depth/points",
    ):
        assert set(data["stages"][stage]) >= {"median_ms", "p90_ms", "p99_ms"}
    assert set(data["end_to_end"]) >= {"median_ms", "p90_ms", "p99_ms"}
    assert "end_to_end" in r.stdout and "numpy sort-based z-buffer" in r.stdout


def test_paper_equations_and_the_fused_layer_give_the_same_depth(kitti_frame0):
    from sparse_depth_node.core.completion import DepthCompleter
    from sparse_depth_node.lab.bench_scaling import paper_forward

    f = kitti_frame0
    depth, mask = project_points(
        torch.from_numpy(f.points), f.camera, f.t_cam_from_lidar, 0.5, 100.0
    )
    completer = DepthCompleter("sparseconv", "cpu")
    with torch.inference_mode():
        ref, ref_mask = paper_forward(completer.model, depth, mask)
    dense, conf = completer.complete(depth, mask)
    torch.testing.assert_close(conf, ref_mask)
    torch.testing.assert_close(dense, ref, atol=1e-3, rtol=1e-5)


def test_completion_paths_report_speed_and_the_error_each_adds(kitti_frame0):
    from sparse_depth_node.core.completion import DepthCompleter
    from sparse_depth_node.lab.bench_scaling import completion_paths

    paths = completion_paths(
        [kitti_frame0], DepthCompleter("sparseconv", "cpu"), repeats=1, compile_paths=False
    )
    assert list(paths)[:4] == [
        "eager, paper equations, whole image",
        "fused layer, whole image",
        "  + support crop",
        "  + channels-last (default)",
    ]
    for name in ("fused layer, whole image", "  + support crop", "  + channels-last (default)"):
        assert paths[name]["mean_abs_diff_m"] < 1e-3 and paths[name]["coverage_of_eager"] == 1.0, (
            name
        )
    assert paths["  + bf16"]["mean_abs_diff_m"] < 0.05
    half = paths["  + inference_scale 0.5"]
    assert half["coverage_of_eager"] > 0.95 and 0.05 < half["mean_abs_diff_m"] < 1.5
    assert all(p["median_ms"] > 0 for p in paths.values())
    ort = paths["  + onnxruntime (exact export)"]
    assert ort["mean_abs_diff_m"] < 1e-4 and ort["coverage_of_eager"] == 1.0


def test_the_backends_section_sets_each_backend_beside_torch(kitti_frame0):
    """torch and ONNX Runtime give the same depth end to end; TensorRT, which needs CUDA, says
    so here (a machine with CUDA and TensorRT runs it: scripts/gpu_check.sh)."""
    from sparse_depth_node.core.completion import DepthCompleter
    from sparse_depth_node.lab.bench import bench_backends, format_report

    rows = bench_backends([kitti_frame0], DepthCompleter("sparseconv", "cpu"), 1, 0)
    assert list(rows) == ["torch", "onnxruntime", "tensorrt"]
    assert rows["torch"]["max_abs_diff_m"] == 0.0 and rows["torch"]["coverage"] == 1.0
    ort = rows["onnxruntime"]
    assert ort["max_abs_diff_m"] <= 1e-3 and ort["coverage"] == 1.0
    assert ort["providers"] == ["CPUExecutionProvider"] and ort["median_ms"] > 0
    if not torch.cuda.is_available():
        assert "CUDA" in rows["tensorrt"]["unavailable"]
    report = {"model": "m", "device": "cpu", "machine": "x", "data": "d", "iterations": 1}
    text = format_report({**report, "frames": 1, "backends": rows})
    assert "onnxruntime" in text and "unavailable" in text


def test_scaling_inputs_keep_the_real_geometry(kitti_frame0):
    from sparse_depth_node.lab.bench_scaling import camera_of_size, synthetic_cloud

    pts = synthetic_cloud(kitti_frame0, 300_000)
    assert pts.shape == (300_000, 3)
    n = len(kitti_frame0.points)
    np.testing.assert_allclose(pts[n : 2 * n], kitti_frame0.points[:, :3], atol=0.06)
    cam = camera_of_size(kitti_frame0.camera)
    assert (cam.width, cam.height) == (1920, 1080)
    assert abs(cam.fx - kitti_frame0.camera.fx * 1920 / 1242) < 1e-9
    # 1242x375 -> 1920x580 (pixel-centre convention), then 250 rows added above and below
    assert abs(cam.cy - ((172.854 + 0.5) * 580 / 375 - 0.5 + 250)) < 1e-9


def test_scaling_tables_have_a_row_per_configuration(kitti_frame0, kitti_dir):
    from sparse_depth_node.core.completion import DepthCompleter
    from sparse_depth_node.lab.bench_scaling import scaling_image, scaling_models

    source = (str(kitti_dir), "kitti-raw", kitti_frame0.name)
    rows = scaling_image(kitti_frame0, DepthCompleter("nearest", "cpu"), repeats=1, source=source)
    assert [r["image"] for r in rows] == [
        "0.5x (621x188)",
        "1.0x (1242x375)",
        "2.0x (2484x750)",
        "1920x1080 (1920x1080)",
        "1920x1080 (1920x1080), 300,000 points",
        "3840x2160 (3840x2160), 2,000,000 points",
    ]
    assert all(r["pipeline_ms"] > 0 and r["host_peak_rss_mb"] > 100 for r in rows)
    assert (
        rows[2]["host_peak_rss_mb"] > rows[0]["host_peak_rss_mb"]
    )  # each measured in its own process
    models = scaling_models(
        kitti_frame0, torch.device("cpu"), ("sparseconv", "nearest"), repeats=1, source=source
    )
    assert models[0]["parameters"] == 25585 and models[1]["parameters"] == 0
