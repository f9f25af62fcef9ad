"""rosbag2 files: reading and writing (rosbags), converting KITTI, the node's frame path over
a bag offline (process, on Ray for fleets), playing a bag live, the demo, and a bag's frames
for training and evaluation."""

from .. import lazy_layer

# the layer's public names and the module each lives in, imported on first use
__all__, __getattr__ = lazy_layer(
    __name__,
    {
        "BagFrames": "frames",
        "BagSets": "sets",
        "DamagedBag": "errors",
        "cache_frames": "frames",
        "convert_kitti": "convert",
        "open_bag": "io",
        "process_bag": "process",
        "run_demo": "demo",
    },
)
