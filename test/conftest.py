"""Shared fixtures: the real data in ../shared/data (or $SPARSE_DEPTH_DATA) and the bundled
sample."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SPARSE_DEPTH_DATA", REPO.parent / "shared" / "data"))
SAMPLE = REPO / "sample" / "kitti_raw_2011_09_26"


def _require(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"test data {path} is missing: set SPARSE_DEPTH_DATA to ../shared/data"
        )
    return path


@pytest.fixture(scope="session")
def kitti_dir() -> Path:
    return _require(DATA / "kitti_raw_2011_09_26")


@pytest.fixture(scope="session")
def ddad_dir() -> Path:
    return _require(DATA / "ddad_test_scene")


@pytest.fixture(scope="session")
def nuscenes_dir() -> Path:
    return _require(DATA / "nuscenes_demo")


@pytest.fixture(scope="session")
def kitti_frame0(kitti_dir):
    from sparse_depth_node.data.datasets import KittiRawReader

    return KittiRawReader(kitti_dir).read(0)
