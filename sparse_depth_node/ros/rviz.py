"""The RViz config the launch file opens: the shipped one (config/sparse_depth.rviz) with the
topics the node really uses, its camera image remapped and every output under its namespace,
and the Fixed Frame asked for. No launch or rclpy import: the launch file and the tests use it."""

from __future__ import annotations

import yaml

SHIPPED_IMAGE = "/camera/image"  # the shipped config's camera image display (the node's input)


def resolve(name: str, namespace: str) -> str:
    """A topic name as ROS resolves it for a node in ``namespace``: an absolute name as it is,
    a relative one under the namespace."""
    if name.startswith("/"):
        return name
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{ns}/{name}"


def rviz_config(template: str, namespace: str, image: str, fixed_frame: str = "") -> str:
    """``template`` (the shipped config's text) with the camera image display on ``image``
    (the node's image remap), each output display under ``namespace`` and, when given,
    ``fixed_frame`` as the Fixed Frame."""
    config = yaml.safe_load(template)
    manager = config["Visualization Manager"]
    for display in manager["Displays"]:
        topic = display.get("Topic")
        if not topic:
            continue
        shipped = topic["Value"]
        own = image if shipped == SHIPPED_IMAGE else shipped.lstrip("/")
        topic["Value"] = resolve(own, namespace)
    if fixed_frame:
        manager["Global Options"]["Fixed Frame"] = fixed_frame
    return yaml.safe_dump(config, sort_keys=False)
