"""sparse_depth_node: LiDAR + camera -> dense depth with a sparsity-invariant CNN.

Layers, each importing only those before it: core/ (camera, geometry, pipeline, completion,
classical fillers, models), data/ (data set readers), msgs/ (ROS messages without rclpy: the
frame path, topics, pairing), ros/ (the rclpy node), bag/ (rosbag2 tools), lab/ (training,
evaluation, benchmarks), cli/ (``sparse-depth``). Only ros/ and the demo need rclpy.
"""

import os
from collections.abc import Callable
from importlib import import_module

# Worker threads of torch's OpenMP runtime sleep when idle instead of spinning: a spinning
# thread takes a core from the robot's other processes, and a busy neighbour stalls every
# parallel region (measured: end-to-end p90 x4.9 with one core busy; docs/SPEED.md). It must
# be set before torch is first imported, so it is set here, unless the user has set it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"


def lazy_layer(package: str, where: dict[str, str]) -> tuple[list[str], Callable[[str], object]]:
    """A layer's public face (PEP 562): its ``__all__`` and a module ``__getattr__`` that imports
    each public name's module (``where``: name -> module of the layer) on first use, so that a
    name costs nothing until it is used (the CLI's --help and the bag tools stay free of torch).
    """

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{where[name]}"), name)

    return sorted(where), __getattr__
