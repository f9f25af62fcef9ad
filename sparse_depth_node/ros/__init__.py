"""The ROS 2 node (rclpy): its parameters, subscriptions, publishers, diagnostics, model
fallbacks, DDS profile and the executable."""

from .. import lazy_layer

# the layer's public names and the module each lives in, imported on first use
__all__, __getattr__ = lazy_layer(
    __name__,
    {
        "RclpyKit": "kit",
        "SparseDepthNode": "node",
        "load_completer": "fallback",
    },
)
