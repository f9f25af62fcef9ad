"""Launch sparse_depth_node (and optionally RViz with the shipped config).

ros2 launch sparse_depth_node sparse_depth.launch.py points:=/velodyne_points \
    image:=/camera/image_rect_color camera_info:=/camera/camera_info use_sim_time:=true rviz:=true
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("sparse_depth_node")
    args = [
        DeclareLaunchArgument(
            "params_file",
            default_value=os.path.join(share, "config", "sparse_depth.yaml"),
            description="parameter YAML",
        ),
        DeclareLaunchArgument(
            "use_sim_time", default_value="false", description="use /clock (bag replay)"
        ),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace"),
        DeclareLaunchArgument(
            "points", default_value="lidar/points", description="input PointCloud2 topic"
        ),
        DeclareLaunchArgument(
            "image", default_value="camera/image", description="input rectified Image topic"
        ),
        DeclareLaunchArgument(
            "camera_info", default_value="camera/camera_info", description="input CameraInfo topic"
        ),
        DeclareLaunchArgument(
            "rviz", default_value="false", description="start RViz with the shipped config"
        ),
    ]
    node = Node(
        package="sparse_depth_node",
        executable="sparse_depth_node",
        name="sparse_depth_node",
        namespace=LaunchConfiguration("namespace"),
        parameters=[
            LaunchConfiguration("params_file"),
            {"use_sim_time": LaunchConfiguration("use_sim_time")},
        ],
        remappings=[
            ("lidar/points", LaunchConfiguration("points")),
            ("camera/image", LaunchConfiguration("image")),
            ("camera/camera_info", LaunchConfiguration("camera_info")),
        ],
        output="screen",
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        arguments=["-d", os.path.join(share, "config", "sparse_depth.rviz")],
        parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}],
        condition=IfCondition(LaunchConfiguration("rviz")),
        output="screen",
    )
    return LaunchDescription([*args, node, rviz])
