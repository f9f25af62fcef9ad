"""sparse_depth_node: LiDAR + camera -> dense depth with a sparsity-invariant CNN.

Layers: core/ (camera, geometry, pipeline, completion, classical fillers, models), data/
(dataset readers), ros/ (parameters, frame path, messages, node), bag/ (rosbag2 tools), lab/
(training, evaluation, benchmarks); the core is free of rclpy.
"""

import os

# Worker threads of torch's OpenMP runtime sleep when idle instead of spinning: a spinning
# thread takes a core from the robot's other processes, and a busy neighbour stalls every
# parallel region (measured: end-to-end p90 x4.9 with one core busy; README "Speed"). It must
# be set before torch is first imported, so it is set here, unless the user has set it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
