"""The core: geometry, the completion methods and networks, the per-frame pipeline; plain
PyTorch, NumPy and OpenCV, no ROS."""

from .. import lazy_layer

# the layer's public names and the module each lives in, imported on first use
__all__, __getattr__ = lazy_layer(
    __name__,
    {
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
    },
)
