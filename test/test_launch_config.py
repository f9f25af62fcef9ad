"""Launch file, parameter YAML and RViz config agree with the node they configure."""

import ast
import importlib.util

import pytest
import yaml
from conftest import REPO

from sparse_depth_node.core.settings import BY_NAME
from sparse_depth_node.msgs.outputs import INPUTS, OUTPUTS
from sparse_depth_node.ros.parameters import descriptor

LAUNCH = REPO / "launch" / "sparse_depth.launch.py"


def launch_calls():
    tree = ast.parse(LAUNCH.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    return tree, calls


def test_launch_file_declares_the_documented_arguments_and_names_the_installed_executable():
    tree, calls = launch_calls()
    declared = {
        c.args[0].value for c in calls if getattr(c.func, "id", None) == "DeclareLaunchArgument"
    }
    assert declared == {
        "params_file",
        "rig_file",
        "extrinsic_file",
        "strict",
        "use_sim_time",
        "namespace",
        "points",
        "image",
        "camera_info",
        "model",
        "device",
        "backend",
        "inference_scale",
        "input_qos",
        "image_transport",
        "rviz",
        "fixed_frame",
    }
    nodes = [c for c in calls if getattr(c.func, "id", None) == "Node"]
    kw = {k.arg: k.value for k in nodes[0].keywords}
    # the overriding arguments are node parameters of the schema
    overrides = next(
        n for n in ast.walk(tree) if isinstance(n, ast.Assign) and n.targets[0].id == "OVERRIDES"
    )
    assert {e.value for e in overrides.value.elts} <= set(BY_NAME)
    files = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and n.targets[0].id == "PARAMETER_FILES"
    )  # the defaults, then the rig, then the extrinsic: the later wins
    assert [e.value for e in files.value.elts] == ["params_file", "rig_file", "extrinsic_file"]
    assert (
        kw["package"].value == "sparse_depth_node"
        and kw["executable"].value == "sparse_depth_node"
    )
    setup = (REPO / "setup.py").read_text()
    assert (
        'f"sparse_depth_node = {PACKAGE}.ros.main:main"' in setup
    )  # the console script it starts
    remaps = next(
        n for n in ast.walk(tree) if isinstance(n, ast.Assign) and n.targets[0].id == "REMAPS"
    )
    assert {e.elts[0].value for e in remaps.value.elts} == {i.topic for i in INPUTS}
    source = LAUNCH.read_text()
    for name in ("sparse_depth.yaml", "sparse_depth.rviz"):
        assert f'"config", "{name}"' in source and (REPO / "config" / name).is_file(), name
    assert "Fixed Frame: camera_optical" in (REPO / "config" / "sparse_depth.rviz").read_text()
    assert "rviz_config(template, namespace, image, fixed_frame)" in source
    assert (REPO / "config" / "sparse_depth.yaml").is_file() and (
        REPO / "config" / "sparse_depth.rviz"
    ).is_file()


@pytest.mark.skipif(
    importlib.util.find_spec("launch_ros") is None,
    reason="launch/launch_ros are not installable on this machine (no pip wheels); "
    "this runs on a machine with ROS 2 from apt",
)
def test_launch_description_builds_with_launch_ros():
    spec = importlib.util.spec_from_file_location("sparse_depth_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert len(module.generate_launch_description().entities) == 18


def test_parameter_yaml_sets_only_declared_parameters_within_their_ranges():
    data = yaml.safe_load((REPO / "config" / "sparse_depth.yaml").read_text())
    params = data["/**"]["ros__parameters"]
    # the shipped YAML leaves threads to the machine and the extrinsic to the rig's own file
    assert set(params) == set(BY_NAME) - {"threads", "extrinsic.translation", "extrinsic.rotation"}
    rigs = [REPO / "config" / "kitti_2011_09_26.yaml", *sorted(REPO.glob("config/rigs/*.yaml"))]
    assert len(rigs) == 3
    for path in rigs:
        values = dict(params, **yaml.safe_load(path.read_text())["/**"]["ros__parameters"])
        for name, value in values.items():
            default, desc = BY_NAME[name].default, descriptor(BY_NAME[name])
            assert type(value) is type(default), (path.name, name)
            for r in list(desc.floating_point_range) + list(desc.integer_range):
                assert r.from_value <= value <= r.to_value, (path.name, name)


def test_rviz_config_shows_the_outputs_with_matching_qos():
    rviz = yaml.safe_load((REPO / "config" / "sparse_depth.rviz").read_text())
    displays = {d["Name"]: d for d in rviz["Visualization Manager"]["Displays"]}
    cloud = displays["Dense cloud"]
    assert (
        cloud["Class"] == "rviz_default_plugins/PointCloud2"
        and cloud["Color Transformer"] == "RGB8"
    )
    for name in ("Dense cloud", "Dense depth", "Sparse LiDAR depth"):
        topic = displays[name]["Topic"]
        assert topic["Value"].lstrip("/") in {o.topic for o in OUTPUTS}
        assert topic["Reliability Policy"] == "Reliable"  # the node publishes reliable
    assert (
        displays["Camera image"]["Topic"]["Reliability Policy"] == "Best Effort"
    )  # matches any camera driver


def test_the_rviz_config_launch_writes_shows_the_topics_the_node_uses():
    """The README's remap of the image and a namespace: every display on the topic the node
    subscribes or publishes under them (the shipped file's /camera/image and /depth/* would
    stay empty), the Fixed Frame given."""
    from sparse_depth_node.ros.rviz import rviz_config

    shipped = (REPO / "config" / "sparse_depth.rviz").read_text()
    written = yaml.safe_load(
        rviz_config(shipped, "front", "/camera/image_rect_color", "camera_color_optical_frame")
    )
    manager = written["Visualization Manager"]
    topics = {d["Name"]: d["Topic"]["Value"] for d in manager["Displays"] if "Topic" in d}
    assert topics == {
        "Camera image": "/camera/image_rect_color",
        "Sparse LiDAR depth": "/front/depth/sparse",
        "Dense depth": "/front/depth/image",
        "Dense cloud": "/front/depth/points",
    }
    assert manager["Global Options"]["Fixed Frame"] == "camera_color_optical_frame"
    plain = yaml.safe_load(rviz_config(shipped, "", "camera/image"))
    displays = plain["Visualization Manager"]["Displays"]
    again = {d["Name"]: d["Topic"]["Value"] for d in displays if "Topic" in d}
    assert again["Camera image"] == "/camera/image" and again["Dense depth"] == "/depth/image"
    assert plain["Visualization Manager"]["Global Options"]["Fixed Frame"] == "camera_optical"
