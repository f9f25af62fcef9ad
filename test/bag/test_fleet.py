"""``process BAG... OUT_DIR`` on a local Ray instance: three bags, one damaged, give two outputs
identical to the single-process ``process`` and one line for the damaged one; a rerun skips what
is done; what an interrupted run left is redone; without Ray, one line naming the install."""

import shutil
import subprocess
import sys

import pytest
import ray
from bag_helpers import SAMPLE_BAG, damaged_bag
from conftest import REPO

from sparse_depth_node.bag.fleet import done_marker, expand_bags, run_fleet
from sparse_depth_node.bag.io import open_bag
from sparse_depth_node.bag.process import process_bag

PARAMS = {"model": "nearest", "device": "cpu"}


def raw_messages(bag) -> list[tuple[str, int, bytes]]:
    """Every message of a bag as (topic, time, serialised bytes), in order."""
    with open_bag(bag) as reader:
        return [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def three_bags(tmp_path):
    folder = tmp_path / "bags"
    folder.mkdir()
    shutil.copytree(SAMPLE_BAG, folder / "drive_a")
    (folder / "drive_b").symlink_to(folder / "drive_a")  # a link is a bag of its own name
    shutil.move(damaged_bag(tmp_path), folder / "drive_c")
    return folder


def test_three_bags_one_damaged_then_a_rerun_and_an_interrupted_one(
    local_ray, three_bags, tmp_path
):
    bags = expand_bags([three_bags])
    assert [b.name for b in bags] == ["drive_a", "drive_b", "drive_c"]
    single = tmp_path / "single"
    process_bag(SAMPLE_BAG, single, PARAMS)
    out = tmp_path / "out"
    ticks = []
    results = run_fleet(
        bags, out, PARAMS, progress=lambda done, total: ticks.append((done, total))
    )
    assert [r.status for r in results] == ["done", "done", "failed"]
    assert [r.frames_out for r in results[:2]] == [3, 3]
    for name in ("drive_a", "drive_b"):  # the single-process output, byte for byte
        assert raw_messages(out / name) == raw_messages(single)
        assert done_marker(out / name).is_file()
    assert "is damaged after message" in results[2].error and "\n" not in results[2].error
    assert not done_marker(out / "drive_c").exists()
    # 7 frames written (3 + 3 + the damaged bag's 1 before the damage) of the 9 the bags hold
    assert ticks[-1] == (7, 9)

    # a rerun skips the finished bags and retries the damaged one
    stamp = (out / "drive_a" / "metadata.yaml").stat().st_mtime_ns
    again = run_fleet(bags, out, PARAMS)
    assert [r.status for r in again] == ["skipped", "skipped", "failed"]
    assert [r.frames_out for r in again[:2]] == [3, 3]
    assert (out / "drive_a" / "metadata.yaml").stat().st_mtime_ns == stamp

    # what an interrupted run leaves: drive_b closed early by Ctrl-C (a readable bag of one
    # frame, no marker) and a killed writer's .partial: both redone, as the single process
    done_marker(out / "drive_b").unlink()
    shutil.rmtree(out / "drive_b")

    def stop(report):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        process_bag(SAMPLE_BAG, out / "drive_b", PARAMS, progress=stop)
    (out / "drive_b.partial").mkdir()
    resumed = run_fleet(bags[:2], out, PARAMS)
    assert [r.status for r in resumed] == ["skipped", "done"]
    assert raw_messages(out / "drive_b") == raw_messages(single)
    assert not (out / "drive_b.partial").exists()


def test_the_cli_summarises_every_bag_and_exits_1_when_one_failed(three_bags, tmp_path):
    out = tmp_path / "out"
    params = tmp_path / "p.yaml"
    params.write_text("/**:\n  ros__parameters:\n    model: nearest\n    device: cpu\n")
    r = subprocess.run(
        [sys.executable, "-m", "sparse_depth_node.cli", "process", str(three_bags), str(out)]
        + ["--params", str(params), "--workers", "2", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert r.returncode == 1, r.stderr
    rows = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()[1:4]}
    assert rows == {"drive_a": "done", "drive_b": "done", "drive_c": "failed"}
    assert "2 processed, 0 already done, 1 failed; 6 frames" in r.stdout
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "drive_c is damaged" in errors[0] and "Traceback" not in r.stderr


def test_without_ray_several_bags_are_one_line_naming_the_install(three_bags, tmp_path):
    code = (
        "import sys; sys.modules['ray'] = None; "
        "from sparse_depth_node.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, "process", str(three_bags), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "sparse-depth process: error: processing several bags runs on Ray, which is not "
        "installed: pip install 'ray[default]==2.60.0'"
    ]


def test_bags_are_folders_or_folders_of_them_with_distinct_names(three_bags, tmp_path):
    assert [b.name for b in expand_bags([three_bags / "drive_b", three_bags / "drive_a"])] == [
        "drive_b",
        "drive_a",
    ]
    with pytest.raises(ValueError, match="neither a rosbag2 folder"):
        expand_bags([tmp_path])
    other = tmp_path / "other"
    shutil.copytree(SAMPLE_BAG, other / "drive_a")
    with pytest.raises(ValueError, match="two bags are named drive_a"):
        expand_bags([three_bags, other])
