"""Every wrong usage a newcomer meets ends with one line naming the problem (and the fix), exit
status 2 and no traceback; each case runs the real CLI in a subprocess."""

import shutil
import subprocess
import sys

import pytest
from conftest import FIXTURES, REPO, SAMPLE

BAG = REPO / "sample" / "kitti_2011_09_26_sample"


def _sample_copy(tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(SAMPLE, dst)
    return dst


def no_calib(tmp_path):
    d = _sample_copy(tmp_path, "nocalib")
    shutil.rmtree(d / "calib")
    return d


def one_calib_file(tmp_path):
    d = _sample_copy(tmp_path, "onecalib")
    (d / "calib" / "calib_velo_to_cam.txt").unlink()
    return d


def truncated_png(tmp_path):
    d = _sample_copy(tmp_path, "trunc")
    png = d / "image_02" / "data" / "0000000000.png"
    png.write_bytes(png.read_bytes()[:5000])
    return d


def missing_image(tmp_path):
    d = _sample_copy(tmp_path, "noimage")
    (d / "image_02" / "data" / "0000000000.png").unlink()
    return d


def missing_scan(tmp_path):
    d = _sample_copy(tmp_path, "noscan")
    (d / "velodyne_points" / "data" / "0000000000.bin").unlink()
    return d


def empty_scan(tmp_path):
    d = _sample_copy(tmp_path, "emptyscan")
    (d / "velodyne_points" / "data" / "0000000000.bin").write_bytes(b"")
    return d


def malformed_weights(tmp_path):
    """A loadable checkpoint (plain data) whose config makes the network fail its first frame."""
    import torch

    from sparse_depth_node.core.models import SparseConvNet
    from sparse_depth_node.core.models.checkpoint import FORMAT

    net, path = SparseConvNet(), tmp_path / "bad.pt"
    config = {**net.config, "depth_scale": "abc"}
    ckpt = {"format": FORMAT, "model": "sparseconv", "config": config, "provenance": {}}
    torch.save({**ckpt, "state_dict": net.state_dict()}, str(path))
    return path


def plain_file(tmp_path):
    f = tmp_path / "plain"
    f.write_text("not a bag")
    return f


def existing_dir(tmp_path):
    d = tmp_path / "exists"
    d.mkdir()
    return d


OUT = "{tmp}/out"
CASES = [  # (name, arguments; {tmp} and {made} are filled in, made by the function), expected
    (
        "train, --train confidence on a network without a confidence branch",
        [
            "train",
            "--model",
            "guided",
            "--train",
            "confidence",
            "--data",
            str(SAMPLE),
            "--ddad",
            "",
            "--extra",
            "",
            "--rig",
            "",
            "--train-frames",
            "0:2",
            "--val-frames",
            "2:3",
            "--out",
            OUT,
        ],
        None,
        "--train confidence needs a network with a separate confidence branch",
    ),
    (
        "train, an option of the guided network for another",
        ["train", "--model", "sparseconv", "--prefill", "classic-refined", "--out", OUT],
        None,
        "--prefill applies only to --model guided (the fill it corrects) and judge (the fill "
        "it judges): drop it",
    ),
    (
        "train, a missing KITTI folder names train's own option",
        ["train", "--data", "{tmp}/nope", "--out", OUT],
        None,
        "data folder {tmp}/nope does not exist: pass --data",
    ),
    (
        "complete, an empty (0-byte) LiDAR scan",
        ["complete", "--data", "{made}", "--format", "kitti-raw", "--frame", "0", "--out", OUT],
        empty_scan,
        "velodyne_points/data/0000000000.bin is empty (0 bytes): no points",
    ),
    (
        "complete, --weights a malformed but loadable checkpoint",
        ["complete", "--data", str(SAMPLE), "--format", "kitti-raw", "--weights", "{made}"]
        + ["--out", OUT],
        malformed_weights,
        "is unusable: it fails on a test frame: TypeError",
    ),
    (
        "complete, --data missing",
        ["complete", "--data", "{tmp}/nope", "--format", "kitti-raw", "--out", OUT],
        None,
        "data folder {tmp}/nope does not exist: pass --data",
    ),
    (
        "convert-kitti, --data missing",
        ["convert-kitti", "--data", "{tmp}/nope", "--out", OUT],
        None,
        "data folder {tmp}/nope does not exist",
    ),
    (
        "complete, folder without calib/",
        ["complete", "--data", "{made}", "--format", "kitti-raw", "--out", OUT],
        no_calib,
        "has no calib/calib_cam_to_cam.txt",
    ),
    (
        "complete, a calibration file missing",
        ["complete", "--data", "{made}", "--format", "kitti-raw", "--out", OUT],
        one_calib_file,
        "calibration file {made}/calib/calib_velo_to_cam.txt does not exist",
    ),
    (
        "complete, nuScenes folder as kitti-raw",
        [
            "complete",
            "--data",
            str(FIXTURES / "nuscenes_demo"),
            "--format",
            "kitti-raw",
            "--out",
            OUT,
        ],
        None,
        "looks like a nuscenes folder: pass --format nuscenes",
    ),
    (
        "complete, KITTI folder as nuscenes",
        ["complete", "--data", str(SAMPLE), "--format", "nuscenes", "--out", OUT],
        None,
        "looks like a kitti-raw folder: pass --format kitti-raw",
    ),
    (
        "complete, truncated PNG",
        ["complete", "--data", "{made}", "--format", "kitti-raw", "--out", OUT],
        truncated_png,
        "0000000000.png cannot be read",
    ),
    (
        "complete, missing image",
        ["complete", "--data", "{made}", "--format", "kitti-raw", "--out", OUT],
        missing_image,
        "0000000000.png does not exist",
    ),
    (
        "complete, frame 0's scan missing",
        ["complete", "--data", "{made}", "--format", "kitti-raw", "--frame", "0", "--out", OUT],
        missing_scan,
        "no frame 0000000000: {made}/velodyne_points/data/0000000000.bin does not exist",
    ),
    (
        "complete, inference scale not 1/n",
        [
            "complete",
            "--data",
            str(SAMPLE),
            "--format",
            "kitti-raw",
            "--inference-scale",
            "0.3",
            "--out",
            OUT,
        ],
        None,
        "1/n for an integer n",
    ),
    (
        "convert-kitti, --frames not A:B",
        ["convert-kitti", "--data", str(SAMPLE), "--out", OUT, "--frames", "5"],
        None,
        "--frames must be A:B",
    ),
    (
        "process, --params missing",
        ["process", str(BAG), OUT, "--params", "{tmp}/nope.yaml"],
        None,
        "parameter file {tmp}/nope.yaml does not exist",
    ),
    ("process, a plain file as the bag", ["process", "{made}", OUT], plain_file, "cannot be read"),
    (
        "process, the output exists",
        ["process", str(BAG), "{made}"],
        existing_dir,
        "exists: choose another output folder",
    ),
    (
        "process, output inside a plain file",
        ["process", str(BAG), "{made}/out"],
        plain_file,
        "Not a directory",
    ),
    (
        "process, an unknown parameter",
        ["process", str(BAG), OUT, "--params", "{made}"],
        lambda t: _params(t, "modle: classic"),
        "unknown parameter 'modle'",
    ),
    (
        "process, use_tf false without an extrinsic",
        ["process", str(BAG), OUT, "--params", "{made}"],
        lambda t: _params(t, "use_tf: false"),
        "extrinsic.translation / extrinsic.rotation are not set",
    ),
    (
        "time-offset, without fixed_frame_id",
        ["time-offset", str(BAG)],
        None,
        "time-offset needs fixed_frame_id",
    ),
    (
        "time-offset, a step larger than the range",
        ["time-offset", str(BAG), "--range", "0.01", "--step", "0.02"],
        None,
        "pass 0 < --step <= --range <= 1",
    ),
    (
        "evaluate, --frames selecting nothing",
        ["evaluate", "--data", str(SAMPLE), "--format", "kitti-raw", "--frames", "100:110"],
        None,
        "--frames 100:110 selects no frame",
    ),
    (
        "bench, unknown section",
        ["bench", "--data", str(SAMPLE), "--sections", "stagez"],
        None,
        "unknown bench section(s) stagez",
    ),
    (
        "bench, --data missing",
        ["bench", "--data", "{tmp}/nope"],
        None,
        "data folder {tmp}/nope does not exist",
    ),
    (
        "demo, bag missing",
        ["demo", "--bag", "{tmp}/nope", "--out", OUT],
        None,
        "bag {tmp}/nope does not exist",
    ),
    (
        "train, --data missing",
        ["train", "--data", "{tmp}/nope", "--out", "{tmp}/m.pt"],
        None,
        "data folder {tmp}/nope does not exist",
    ),
]


def _params(tmp_path, body):
    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters:\n    " + body + "\n")
    return f


@pytest.mark.parametrize("name, argv, make, expected", CASES, ids=[c[0] for c in CASES])
def test_wrong_usage_gives_one_line_and_exit_status_2(tmp_path, name, argv, make, expected):
    made = str(make(tmp_path)) if make else ""
    fill = {"tmp": str(tmp_path), "made": made}
    args = [a.format(**fill) for a in argv]
    r = subprocess.run(
        [sys.executable, "-m", "sparse_depth_node.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"sparse-depth {args[0]}: error: "), lines[0]
    assert expected.format(**fill) in lines[0]


def test_node_help_prints_topics_and_parameters_without_starting_a_node():
    r = subprocess.run(
        [sys.executable, "-m", "sparse_depth_node.cli", "node", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "lidar/points" in r.stdout and "depth/image" in r.stdout
    assert "inference_scale = 1.0" in r.stdout and "read-only" in r.stdout
