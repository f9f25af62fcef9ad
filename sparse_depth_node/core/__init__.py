"""The core: geometry, the completion methods and networks, the per-frame pipeline; plain
PyTorch, NumPy and OpenCV, no ROS."""

from importlib import import_module

# the layer's public names and the module each lives in, imported on first use (a name of this
# layer costs nothing until it is used: the CLI's --help and the bag tools stay free of torch)
_WHERE = {
    "BackendUnavailable": "errors",
    "DEFAULT_METHOD": "methods",
    "DepthCompleter": "completion",
    "FrameResult": "pipeline",
    "METHODS": "methods",
    "PinholeCamera": "camera",
    "SETTINGS": "settings",
    "backproject_depth": "geometry",
    "process_frame": "pipeline",
    "project_points": "geometry",
    "resolve": "settings",
    "resolve_device": "completion",
    "run_frame": "pipeline",
    "voxel_downsample": "geometry",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
