"""sparse_depth_node: LiDAR + camera -> dense depth with a sparsity-invariant CNN.

The core (geometry, models, completion, pipeline, readers) is free of rclpy; the ROS 2
node is a thin layer on top of it.
"""

__version__ = "0.1.0"
