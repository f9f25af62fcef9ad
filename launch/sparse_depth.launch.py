"""Launch sparse_depth_node (and optionally RViz with the shipped config).

ros2 launch sparse_depth_node sparse_depth.launch.py points:=/velodyne_points \
    image:=/camera/image_rect_color camera_info:=/camera/camera_info use_sim_time:=true \
    rig_file:=my_rig.yaml extrinsic_file:=my_extrinsic.yaml rviz:=true

Parameters come from ``params_file`` (the shipped defaults), then ``rig_file``, then
``extrinsic_file`` (each later file wins, as ROS applies several); ``model``, ``device``,
``backend``, ``inference_scale``, ``input_qos`` (auto | reliable | best_effort),
``image_transport`` (raw | compressed) and ``strict`` override them when given. The node's
executable brings its own Fast DDS profile (docs/NODE.md, "QoS and large messages").
``rviz:=true`` on a machine without rviz2 stops before anything starts, saying so; the config
it opens shows the topics the node uses (its remaps and namespace: ros/rviz.py).
"""

import os
import tempfile

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch_ros.actions import Node

# launch arguments that override the YAML
OVERRIDES = (
    "model",
    "device",
    "backend",
    "inference_scale",
    "input_qos",
    "image_transport",
    "strict",
)
PARAMETER_FILES = ("params_file", "rig_file", "extrinsic_file")  # in the order they apply
REMAPS = (
    ("lidar/points", "points"),
    ("camera/image", "image"),
    ("camera/camera_info", "camera_info"),
)


def rviz_file(share: str, namespace: str, image: str, fixed_frame: str) -> str:
    """The shipped RViz config written with the node's topics and ``fixed_frame``."""
    from sparse_depth_node.ros.rviz import rviz_config

    template = open(os.path.join(share, "config", "sparse_depth.rviz")).read()
    out = tempfile.NamedTemporaryFile("w", prefix="sparse_depth_", suffix=".rviz", delete=False)
    out.write(rviz_config(template, namespace, image, fixed_frame))
    out.close()
    return out.name


def flag(text: str) -> bool:
    return text.lower() in ("true", "1", "yes")


def nodes(context, share: str) -> list:
    value = {a: context.launch_configurations[a] for a in context.launch_configurations}
    rviz = flag(value["rviz"])
    if rviz:
        try:
            get_package_share_directory("rviz2")
        except PackageNotFoundError:
            # raised before any process starts: launch stops and leaves nothing behind
            raise RuntimeError(
                "rviz:=true but rviz2 is not installed; install it (sudo apt install "
                "ros-$ROS_DISTRO-rviz2) or launch with rviz:=false"
            ) from None
    sim_time = flag(value["use_sim_time"])
    overrides = {name: value[name] for name in OVERRIDES if value[name]}
    if "inference_scale" in overrides:
        overrides["inference_scale"] = float(overrides["inference_scale"])
    if "strict" in overrides:
        overrides["strict"] = flag(overrides["strict"])
    files = [value[name] for name in PARAMETER_FILES if value[name]]
    topics = {name: value[arg] for name, arg in REMAPS}
    started = [
        Node(
            package="sparse_depth_node",
            executable="sparse_depth_node",
            name="sparse_depth_node",
            namespace=value["namespace"],
            parameters=[*files, {"use_sim_time": sim_time, **overrides}],
            remappings=list(topics.items()),
            output="screen",
        )
    ]
    if rviz:
        config = rviz_file(share, value["namespace"], topics["camera/image"], value["fixed_frame"])
        started.append(
            Node(
                package="rviz2",
                executable="rviz2",
                arguments=["-d", config],
                parameters=[{"use_sim_time": sim_time}],
                output="screen",
            )
        )
    return started


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("sparse_depth_node")
    args = [
        DeclareLaunchArgument(
            "params_file",
            default_value=os.path.join(share, "config", "sparse_depth.yaml"),
            description="parameter YAML: the defaults",
        ),
        DeclareLaunchArgument(
            "rig_file",
            default_value="",
            description="parameter YAML applied after params_file: your rig (topics, sizes)",
        ),
        DeclareLaunchArgument(
            "extrinsic_file",
            default_value="",
            description="parameter YAML applied last: an extrinsic (sparse-depth extrinsic BAG)",
        ),
        DeclareLaunchArgument(
            "strict",
            default_value="",
            description="true: exit when the model or device cannot be used ('': the files')",
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
            "model", default_value="", description="completion model ('': the params_file's)"
        ),
        DeclareLaunchArgument(
            "device", default_value="", description="auto, cpu, cuda ('': the params_file's)"
        ),
        DeclareLaunchArgument(
            "backend",
            default_value="",
            description="auto, torch, onnxruntime or tensorrt ('': the params_file's)",
        ),
        DeclareLaunchArgument(
            "inference_scale",
            default_value="",
            description="resolution factor 1, 0.5, ... ('': the params_file's)",
        ),
        DeclareLaunchArgument(
            "input_qos",
            default_value="",
            description="auto, reliable or best_effort ('': the params_file's, auto: what the "
            "publishers offer)",
        ),
        DeclareLaunchArgument(
            "image_transport",
            default_value="",
            description="raw or compressed (image/compressed) ('': the params_file's)",
        ),
        DeclareLaunchArgument(
            "rviz", default_value="false", description="start RViz with the shipped config"
        ),
        DeclareLaunchArgument(
            "fixed_frame",
            default_value="",
            description="RViz Fixed Frame: the image's frame_id ('': the config's camera_optical)",
        ),
    ]
    return LaunchDescription([*args, OpaqueFunction(function=nodes, args=[share])])
