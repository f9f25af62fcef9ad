"""The node's declared parameters, made from the one schema (core.settings): descriptions,
ranges and read-only flags as ``ros2 param describe`` shows them."""

from __future__ import annotations

import array
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

from ..core.settings import SETTINGS, Setting, setting_problem


def descriptor(s: Setting) -> ParameterDescriptor:
    """The ParameterDescriptor of setting ``s``. A float setting (or a list of floats) is
    dynamically typed, so that 80 is taken for 80.0 from YAML, the command line and
    ``ros2 param set`` alike; its range and type are checked by ``settings.problem``."""
    d = ParameterDescriptor(
        description=s.description, read_only=s.read_only, dynamic_typing=takes_integers(s)
    )
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


def takes_integers(s: Setting) -> bool:
    """Whether setting ``s`` is a float or a list of floats (which integers stand for)."""
    default = s.default[0] if isinstance(s.default, list) else s.default
    return isinstance(default, float)


def declare(node: Any) -> None:
    """Declare every setting on ``node`` with its default and descriptor. A value given at
    start-up (a parameter file, ``-p``) that the setting does not take raises ValueError with
    one line naming it (settings.setting_problem; else rclpy's own reason)."""
    given = getattr(node, "_parameter_overrides", {})  # rclpy's, before it declares them
    for s in SETTINGS:
        if s.name in given:
            reason = setting_problem(s, plain(given[s.name].value))
            if reason:
                raise ValueError(reason)
        try:
            node.declare_parameter(s.name, s.default, descriptor(s))
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            raise ValueError(f"parameter {s.name}: {exc}") from None


def plain(value: Any) -> Any:
    """A parameter value as the settings hold it: arrays (rclpy's array.array) as lists."""
    return list(value) if isinstance(value, array.array) else value


def values(node: Any) -> dict[str, Any]:
    """The node's current value of every setting, as the settings hold them: arrays as lists,
    and integers given for a float setting as floats."""
    out = {}
    for s in SETTINGS:
        v = plain(node.get_parameter(s.name).value)
        if takes_integers(s):
            v = [float(x) for x in v] if isinstance(v, list) else float(v)
        out[s.name] = v
    return out
