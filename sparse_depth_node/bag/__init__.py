"""rosbag2 files: reading and writing (rosbags), converting KITTI, the node's frame path over
a bag offline (process, on Ray for fleets), playing a bag live, the demo, and a bag's frames
for training and evaluation."""

from importlib import import_module

# the layer's public names and the module each lives in, imported on first use (a name of this
# layer costs nothing until it is used: the CLI's --help and the bag tools stay free of torch)
_WHERE = {
    "BagFrames": "frames",
    "BagSets": "sets",
    "DamagedBag": "errors",
    "cache_frames": "frames",
    "convert_kitti": "convert",
    "open_bag": "io",
    "process_bag": "process",
    "run_demo": "demo",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
