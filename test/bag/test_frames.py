"""The frame cache of a bag (bag/frames.py) when processes make it at once or stop midway."""

import json

import pytest
from bag_helpers import SAMPLE_BAG

from sparse_depth_node.bag.frames import BagFrames, cache_frames


def test_a_cache_another_process_completes_first_is_the_one_kept(tmp_path):
    """As torchrun's processes do on a cold cache: while this call decodes, another completes
    the same cache (here, called from this one's first tick). Both return the folder the first
    to finish wrote, whole; this call's own partial folder is gone."""
    other: list = []

    def tick() -> None:
        if not other:
            other.append(cache_frames(SAMPLE_BAG, root=tmp_path))
            other.append((other[0] / "frames.json").stat().st_mtime_ns)

    folder = cache_frames(SAMPLE_BAG, root=tmp_path, tick=tick)
    assert folder == other[0] and (folder / "frames.json").stat().st_mtime_ns == other[1]
    assert [p.name for p in tmp_path.iterdir()] == [folder.name]  # no .partial left
    meta = json.loads((folder / "frames.json").read_text())
    assert BagFrames(folder).frame_ids() == meta["names"] and len(meta["names"]) == 3


def test_an_interrupted_cache_leaves_nothing(tmp_path):
    def tick() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache_frames(SAMPLE_BAG, root=tmp_path, tick=tick)
    assert list(tmp_path.iterdir()) == []
