"""Bags the bag tests share: the bundled sample bag and a damaged copy of it."""

from pathlib import Path

from conftest import REPO, SAMPLE

from sparse_depth_node.bag.convert import convert_kitti

SAMPLE_BAG = REPO / "sample" / "kitti_2011_09_26_sample"


def damaged_bag(tmp_path: Path) -> Path:
    """The sample as a zstd-compressed bag with 5 kB zeroed at 70 % of the file: the second
    frame's chunk no longer decompresses (the first frame's is intact)."""
    bag = tmp_path / "damaged"
    convert_kitti(SAMPLE, bag, compress=True)
    mcap = next(bag.glob("*.mcap"))
    data = bytearray(mcap.read_bytes())
    at = int(len(data) * 0.7)
    data[at : at + 5000] = bytes(5000)
    mcap.write_bytes(data)
    return bag


def truncated_bag(tmp_path: Path, compress: bool = False) -> Path:
    """The sample as a bag whose .mcap was cut at 80 % of its bytes, as a recording killed
    before it wrote its index and footer leaves it (its metadata.yaml as written at the end):
    the first frame's messages whole, the rest cut."""
    bag = tmp_path / "truncated"
    convert_kitti(SAMPLE, bag, compress=compress)
    mcap = next(bag.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * 0.8)])
    return bag
