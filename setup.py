"""ament_python package: `colcon build` installs the library, the executables into
lib/sparse_depth_node (so `ros2 run` finds them), and launch/, config/ and the weights."""

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "sparse_depth_node"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["weights/*.pt", "weights/*.md", "ros/*.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (os.path.join("share", PACKAGE, "launch"), glob("launch/*launch.py")),
        (
            os.path.join("share", PACKAGE, "config"),
            glob("config/*.yaml") + glob("config/*.rviz"),
        ),
        (os.path.join("share", PACKAGE, "config", "rigs"), glob("config/rigs/*.yaml")),
    ],
    install_requires=["setuptools"],
    # `pip install '.[fleet]'`: process many bags on Ray (requirements-fleet.txt pins the same)
    extras_require={"fleet": ["ray[default]==2.60.0"]},
    zip_safe=False,
    maintainer="sparse_depth_node maintainers",
    maintainer_email="maintainers@sparse-depth-node.invalid",
    description="Dense depth from LiDAR + camera with a sparsity-invariant CNN",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            f"sparse_depth_node = {PACKAGE}.ros.main:main",
            f"sparse-depth = {PACKAGE}.cli:main",
        ],
    },
)
