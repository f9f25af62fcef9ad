"""The `sparse-depth complete` command on the bundled sample, and the KITTI depth PNG encoding."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, SAMPLE
from PIL import Image

from sparse_depth_node.data.depth_io import (
    decode_kitti_depth,
    encode_kitti_depth,
    read_kitti_depth,
    write_kitti_depth,
)


def test_kitti_depth_png_round_trip(tmp_path):
    depth = np.array([[0.0, 1.0, 12.34567], [np.nan, 255.0, -3.0]], dtype=np.float32)
    enc = encode_kitti_depth(depth)
    assert enc.dtype == np.uint16 and enc.tolist() == [[0, 256, 3160], [0, 65280, 0]]
    write_kitti_depth(tmp_path / "d.png", depth)
    with Image.open(tmp_path / "d.png") as im:
        assert im.mode in ("I;16", "I") and np.asarray(im).tolist() == enc.tolist()
    np.testing.assert_allclose(read_kitti_depth(tmp_path / "d.png"), decode_kitti_depth(enc))
    assert abs(decode_kitti_depth(enc)[0, 2] - 12.34567) <= 0.5 / 256


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "sparse_depth_node.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_complete_writes_the_four_pngs_and_prints_timings(tmp_path):
    out = tmp_path / "o"
    r = run_cli(
        "complete",
        "--data",
        str(SAMPLE),
        "--format",
        "kitti-raw",
        "--frame",
        "1",
        "--model",
        "classic",
        "--device",
        "cpu",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "project" in r.stdout and "complete" in r.stdout and "total" in r.stdout
    sparse = read_kitti_depth(out / "sparse_depth.png")
    dense = read_kitti_depth(out / "dense_depth.png")
    assert sparse.shape == dense.shape == (375, 1242)
    assert 15000 < (sparse > 0).sum() < (dense > 0).sum()
    with Image.open(out / "preview.png") as im:
        assert im.size[0] == 1242 and im.size[1] > 4 * 375
    with Image.open(out / "confidence.png") as im:
        assert im.size == (1242, 375)


def test_complete_reports_bad_input_as_an_error_not_a_traceback(tmp_path):
    r = run_cli(
        "complete",
        "--data",
        str(SAMPLE),
        "--format",
        "kitti-raw",
        "--frame",
        "99",
        "--model",
        "classic",
        "--out",
        str(tmp_path),
    )
    assert r.returncode == 2 and "no frame 0000000099" in r.stderr and "Traceback" not in r.stderr


def test_train_subcommand_passes_every_option_to_the_training_parser(capsys):
    from sparse_depth_node.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--steps", "many", "--out", "x.pt"])
    assert exc.value.code == 2
    assert "argument --steps: invalid int value: 'many'" in capsys.readouterr().err


def _in_a_terminal(*args: str) -> str:
    """The CLI's combined output when stdout and stderr are a terminal (a pseudo-terminal)."""
    import os
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, its output on a 24 x 100 terminal
        import fcntl
        import struct
        import termios

        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        os.chdir(REPO)
        os.execv(sys.executable, [sys.executable, "-m", "sparse_depth_node.cli", *args])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    return out.decode(errors="replace")


def test_long_work_shows_a_progress_bar_in_a_terminal_and_quiet_or_piped_shows_none():
    args = [
        "evaluate",
        "--data",
        str(SAMPLE),
        "--format",
        "kitti-raw",
        "--models",
        "nearest",
        "--device",
        "cpu",
    ]
    shown = _in_a_terminal(*args)
    assert "evaluate:" in shown and "3/3" in shown and "frame/s" in shown
    assert "frame/s" not in _in_a_terminal(*args, "--quiet")
    piped = run_cli(*args)
    assert piped.returncode == 0 and "frame/s" not in piped.stderr and "nearest" in piped.stdout


def test_old_spellings_work_for_a_release_with_one_line_each(tmp_path, kitti_dir):
    """One name per concept (the method is --model, a set of them --models, the data --data);
    the old spellings still run, each with one warning line naming the new one."""
    import subprocess
    import sys

    cli = [sys.executable, "-m", "sparse_depth_node.cli"]
    runs = {
        "--method": [*cli, "complete", "--data", str(kitti_dir), "--format", "kitti-raw"]
        + ["--method", "nearest", "--out", str(tmp_path / "c")],
        "--methods": [*cli, "evaluate", "--data", str(kitti_dir), "--format", "kitti-raw"]
        + ["--methods", "nearest", "--frames", "0:1", "--quiet"],
        "--kitti": [*cli, "train", "--kitti", str(tmp_path / "nope"), "--out", "x.pt"],
    }
    new = {"--method": "--model", "--methods": "--models", "--kitti": "--data"}
    for old, cmd in runs.items():
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        warnings = [line for line in out.stderr.splitlines() if "deprecated" in line]
        said = f": warning: {old} is deprecated and will go: use {new[old]}"
        assert len(warnings) == 1 and warnings[0].endswith(said), out.stderr
        assert out.returncode == (2 if old == "--kitti" else 0), out.stderr  # --kitti: no folder
