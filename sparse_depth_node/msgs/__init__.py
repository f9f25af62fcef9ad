"""ROS messages without rclpy: conversions between messages and arrays, the frame path (a
synchronised set in, every output message out), the node's topics, pairing, extrinsics,
admission of inputs and counters. Reads rclpy and rosbags messages alike."""

from .. import lazy_layer

# the layer's public names and the module each lives in, imported on first use
__all__, __getattr__ = lazy_layer(
    __name__,
    {
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
    },
)
