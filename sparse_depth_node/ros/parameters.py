"""The node's declared parameters, made from the one schema (core.settings): descriptions,
ranges and read-only flags as ``ros2 param describe`` shows them."""

from __future__ import annotations

import array
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from ..core.settings import SETTINGS, Setting


def descriptor(s: Setting) -> ParameterDescriptor:
    """The ParameterDescriptor of setting ``s``."""
    d = ParameterDescriptor(description=s.description, read_only=s.read_only)
    if s.bounds is not None and isinstance(s.default, float):
        d.floating_point_range = [
            FloatingPointRange(
                from_value=float(s.bounds[0]), to_value=float(s.bounds[1]), step=0.0
            )
        ]
    elif s.bounds is not None:
        d.integer_range = [
            IntegerRange(from_value=int(s.bounds[0]), to_value=int(s.bounds[1]), step=1)
        ]
    if s.choices:
        d.additional_constraints = "one of: " + ", ".join(s.choices)
    return d


def declare(node: Any) -> None:
    """Declare every setting on ``node`` with its default and descriptor."""
    for s in SETTINGS:
        node.declare_parameter(s.name, s.default, descriptor(s))


def values(node: Any) -> dict[str, Any]:
    """The node's current value of every setting (arrays, which rclpy holds as array.array, as
    lists)."""
    out = {s.name: node.get_parameter(s.name).value for s in SETTINGS}
    return {k: list(v) if isinstance(v, array.array) else v for k, v in out.items()}
