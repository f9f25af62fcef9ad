"""The ament_python package: colcon builds it and installs the layout `ros2 run` and launch expect;
the core imports without rclpy."""

import ast
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import REPO

# the rosdep key of each Python package the code imports (docs/NODE.md, "Install")
PYTHON_KEYS = {
    "numpy": "python3-numpy",
    "PIL": "python3-pil",
    "yaml": "python3-yaml",
    "cv2": "python3-opencv",
    "tqdm": "python3-tqdm",
    "torch": "python3-torch",
    "rosbags": "python3-rosbags-pip",
}
# what ROS packages are, among the names imported
ROS_ROOTS = {"rclpy", "launch", "launch_ros", "ament_index_python"}


def imported_roots() -> set[str]:
    """The top-level modules the package's code and its launch file import, by parsing them."""
    roots = set()
    files = [*(REPO / "sparse_depth_node").rglob("*.py"), *(REPO / "launch").glob("*.py")]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
    return roots


def test_package_xml_is_format_3_ament_python_and_declares_what_the_code_imports():
    """Every ROS package the code and launch file import has its exec_depend and every
    exec_depend is imported (the Python ones by their rosdep keys); the optional ONNX Runtime
    and TensorBoard are said, not declared."""
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "sparse_depth_node"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    roots = imported_roots()
    ros = {r for r in roots if r in ROS_ROOTS or r.endswith(("_msgs", "_interfaces"))}
    python = {PYTHON_KEYS[r] for r in roots if r in PYTHON_KEYS}
    assert deps == ros | python, (sorted(deps - ros - python), sorted(ros | python - deps))


def test_core_imports_without_rclpy():
    code = (
        "import sys; sys.modules['rclpy'] = None\n"
        "import sparse_depth_node.core.pipeline, sparse_depth_node.core.models, "
        "sparse_depth_node.data.datasets, sparse_depth_node.lab.train, "
        "sparse_depth_node.lab.evaluate, "
        "sparse_depth_node.msgs.frame, sparse_depth_node.bag.process\n"
        "assert 'rclpy' not in [m for m in sys.modules if sys.modules[m] is not None]"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def colcon_build(colcon: list[str], workspace: Path, env: "dict | None" = None) -> Path:
    """This package copied into WORKSPACE/src and built there by ``colcon`` (a command line);
    the workspace's install/sparse_depth_node folder."""
    shutil.copytree(
        REPO,
        workspace / "src" / "sparse_depth_node",
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            "build",
            "install",
            "log",
            "out",
            "__pycache__",
            "*.egg-info",
            "sample",
        ),
    )
    # as in a user's shell: PYTHONDONTWRITEBYTECODE (set here) makes setuptools warn that it
    # does not byte-compile
    env = {k: v for k, v in (env or os.environ).items() if k != "PYTHONDONTWRITEBYTECODE"}
    r = subprocess.run(
        [*colcon, "build", "--base-paths", "src"],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    # what the user sees says nothing to wonder about (colcon echoes a package's stderr, where
    # setuptools warns, as "--- stderr: sparse_depth_node")
    assert "stderr: sparse_depth_node" not in r.stdout + r.stderr, r.stdout + r.stderr
    return workspace / "install" / "sparse_depth_node"


def test_colcon_build_installs_the_ament_layout(tmp_path):
    colcon = Path(sys.executable).with_name("colcon")
    assert colcon.exists(), "colcon-common-extensions is in requirements.txt"
    colcon_build([str(colcon)], tmp_path)
    share = tmp_path / "install" / "sparse_depth_node" / "share"
    lib = tmp_path / "install" / "sparse_depth_node" / "lib"
    assert (share / "ament_index" / "resource_index" / "packages" / "sparse_depth_node").is_file()
    assert (share / "sparse_depth_node" / "package.xml").is_file()
    assert (lib / "sparse_depth_node" / "sparse-depth").is_file()
    assert (
        lib / "sparse_depth_node" / "sparse_depth_node"
    ).is_file()  # what `ros2 run` and launch start
    assert (share / "sparse_depth_node" / "launch" / "sparse_depth.launch.py").is_file()
    assert (share / "sparse_depth_node" / "config" / "sparse_depth.yaml").is_file()
    assert (share / "sparse_depth_node" / "config" / "sparse_depth.rviz").is_file()
    for weights in ("sparseconv.pt", "multiscale.pt"):
        assert list(lib.glob(f"python3*/site-packages/sparse_depth_node/weights/{weights}")), (
            weights
        )
    installed = list(lib.glob("python3*/site-packages/sparse_depth_node/core/pipeline.py"))
    assert installed, "the Python package is installed into lib/python3.X/site-packages"


def test_a_venv_over_system_packages_builds_with_colcon_and_runs_the_node(tmp_path):
    """The robot install of docs/NODE.md under PEP 668: a venv created with --system-site-packages
    (it sees apt's Python packages; ROS's come on PYTHONPATH from /opt/ros's setup.bash),
    colcon run by the venv's Python: the installed executable runs with the venv's Python.
    Here the packages apt and /opt/ros would give are this .venv's, on PYTHONPATH."""
    base = getattr(sys, "_base_executable", sys.executable)
    venv = tmp_path / "venv"
    subprocess.run(
        [base, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True
    )
    import site

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(site.getsitepackages())}
    python = venv / "bin" / "python"
    install = colcon_build([str(python), "-m", "colcon"], tmp_path / "ws", env)
    exe = install / "lib" / "sparse_depth_node" / "sparse_depth_node"
    assert exe.read_text().splitlines()[0] == f"#!{python}"  # runs with the venv's Python
    (installed,) = install.glob("lib/python3*/site-packages")
    env["PYTHONPATH"] = os.pathsep.join([str(installed), env["PYTHONPATH"]])  # setup.bash's
    run = {"env": env, "cwd": tmp_path, "capture_output": True, "text": True, "timeout": 60}
    r = subprocess.run([str(exe), "--help"], **run)
    assert r.returncode == 0 and "lidar/points" in r.stdout, r.stderr
    code = "import sparse_depth_node, torch, cv2, rosbags; print(sparse_depth_node.__file__)"
    r = subprocess.run([str(python), "-c", code], **run)
    assert r.returncode == 0 and r.stdout.startswith(str(installed)), r.stderr


LAYERS = (
    "core",
    "data",
    "msgs",
    "ros",
    "bag",
    "lab",
    "cli",
)  # each imports itself and those before it


def _imported_layers(path: Path) -> set[str]:
    """The sparse_depth_node layers a module imports (relative and absolute imports)."""
    import ast

    pkg = path.relative_to(REPO).with_suffix("").parts[:-1]  # e.g. ("sparse_depth_node", "ros")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(pkg[: len(pkg) - node.level + 1]) + (node.module or "").split(".")
            else:
                base = (node.module or "").split(".")
            names = [base + [a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        for parts in names:
            parts = [p for p in parts if p]
            if parts[:1] == ["sparse_depth_node"] and len(parts) > 1 and parts[1] in LAYERS:
                found.add(parts[1])
    return found


def test_every_module_imports_only_its_own_layer_and_the_layers_below():
    checked = 0
    for i, layer in enumerate(LAYERS):
        for path in sorted((REPO / "sparse_depth_node" / layer).rglob("*.py")):
            above = _imported_layers(path) - set(LAYERS[: i + 1])
            assert not above, f"{path.relative_to(REPO)} ({layer}) imports {sorted(above)}"
            checked += 1
    assert checked > 30


def test_every_public_name_of_every_layer_resolves_to_its_own_module():
    import importlib

    for layer in LAYERS[:-1]:  # cli's face is its main()
        package = importlib.import_module(f"sparse_depth_node.{layer}")
        assert package.__all__, layer
        for name in package.__all__:
            value = getattr(package, name)
            origin = getattr(value, "__module__", None) or package.__name__
            assert origin.startswith("sparse_depth_node."), (layer, name, origin)
        with pytest.raises(AttributeError):
            _ = package.no_such_name


def test_bag_tools_and_help_import_no_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import sparse_depth_node.bag.io, sparse_depth_node.bag.convert, "
        "sparse_depth_node.bag.player\n"
        "from sparse_depth_node.cli import main\n"
        "for cmd in ([], ['complete'], ['convert-kitti'], ['process'], ['play'], ['demo'],\n"
        "            ['evaluate'], ['bench'], ['extrinsic'], ['train'], ['node']):\n"
        "    try:\n"
        "        main([*cmd, '--help'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, cmd\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "usage: sparse-depth bench" in r.stdout
