"""ROS messages without rclpy: conversions between messages and arrays, the frame path (a
synchronised set in, every output message out), the node's topics, pairing, extrinsics,
admission of inputs and counters. Reads rclpy and rosbags messages alike."""

from importlib import import_module

# the layer's public names and the module each lives in, imported on first use (a name of this
# layer costs nothing until it is used: the CLI's --help and the bag tools stay free of torch)
_WHERE = {
    "ApproximateSync": "sync",
    "Dropped": "errors",
    "ExtrinsicSource": "extrinsics",
    "INPUTS": "outputs",
    "OUTPUTS": "outputs",
    "PipelineStats": "stats",
    "UndecodableImage": "errors",
    "decode_set": "frame",
    "enabled_outputs": "outputs",
    "image_to_rgb": "convert",
    "pointcloud2_to_xyz": "convert",
    "run_set": "frame",
    "sensor_messages": "kits",
    "size_problem": "admit",
    "warm_up": "frame",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
