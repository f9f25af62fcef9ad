"""Data sets on disk: KITTI raw and object, DDAD, nuScenes readers (frames with their
calibration), depth PNGs and previews."""

from importlib import import_module

# the layer's public names and the module each lives in, imported on first use (a name of this
# layer costs nothing until it is used: the CLI's --help and the bag tools stay free of torch)
_WHERE = {
    "FORMATS": "datasets",
    "Frame": "datasets",
    "KittiRawReader": "datasets",
    "open_dataset": "datasets",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
