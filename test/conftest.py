"""Shared fixtures. The tests use data inside the repository only: the bundled sample (three
KITTI raw frames) and test/fixtures/ (one DDAD frame per scene, one nuScenes frame). Tests
marked ``validation`` need the full data sets in ../shared/data (or $SPARSE_DEPTH_DATA): they
run with `bash scripts/validate.sh`, and `bash scripts/test.sh` leaves them out."""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample" / "kitti_raw_2011_09_26"
FIXTURES = REPO / "test" / "fixtures"
FULL_DATA = Path(os.environ.get("SPARSE_DEPTH_DATA", REPO.parent / "shared" / "data"))


def process_group(cmd: list[str], **kwargs) -> subprocess.Popen:
    """``cmd`` as the leader of a process group of its own (a terminal's Ctrl-C signals the
    group), its stdout and stderr as one text pipe."""
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **kwargs,
    )


@pytest.fixture(scope="session", autouse=True)
def export_cache(tmp_path_factory) -> Path:
    """One cache of ONNX exports for the session (the nodes the tests start inherit it): each
    network is exported once, not once per test, and never into the user's ~/.cache."""
    path = tmp_path_factory.mktemp("export-cache")
    os.environ["SPARSE_DEPTH_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def kitti_dir() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def ddad_dir() -> Path:
    return FIXTURES / "ddad_test_scene"


@pytest.fixture(scope="session")
def nuscenes_dir() -> Path:
    return FIXTURES / "nuscenes_demo"


@pytest.fixture(scope="session")
def full_data() -> Path:
    """The full data sets, for ``validation`` tests; their absence is an error, not a skip."""
    if not (FULL_DATA / "kitti_raw_2011_09_26").is_dir():
        raise FileNotFoundError(
            f"validation data {FULL_DATA} is missing: set SPARSE_DEPTH_DATA to ../shared/data"
        )
    return FULL_DATA


@pytest.fixture(scope="session")
def kitti_frame0():
    from sparse_depth_node.data.datasets import KittiRawReader

    return KittiRawReader(SAMPLE).read(0)
