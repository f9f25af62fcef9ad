"""The node's reference, from the one place each fact lives: its topics (msgs/outputs.py INPUTS
and OUTPUTS), its parameters (core/settings.py SETTINGS) and its counters (msgs/stats.py
COUNTERS). As plain text for ``sparse_depth_node --help``, and as the Markdown tables of
docs/NODE.md (``python scripts/node_doc.py`` writes them; a test checks that the page matches).
No torch, no rclpy."""

from __future__ import annotations

import math
import re
from typing import Any

from ..core.settings import SETTINGS, Setting
from ..msgs.outputs import INPUTS, OUTPUTS
from ..msgs.stats import COUNTERS

DIAGNOSTICS = (
    "/diagnostics",
    "diagnostic_msgs/msg/DiagnosticArray",
    "one status a second named after the node (`<namespace>/<name>: pipeline`): its level and "
    "message (below), the counters, input and output rates, each stage's latency median / p90, "
    "the device",
)
_BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n).*?(<!-- end generated -->)", re.S)


def _short(msgtype: str) -> str:
    return msgtype.rsplit("/", 1)[1]


def usage() -> str:
    """The node's --help: its topics and parameters."""
    lines = [
        "sparse_depth_node: LiDAR + camera -> dense depth (REP 118) and a point cloud.",
        "usage: sparse_depth_node [--ros-args -r FROM:=TO -p NAME:=VALUE --params-file F ...]",
        "",
        "subscribes:",
        *(f"  {i.topic:<22} {_short(i.msgtype)}" for i in INPUTS),
        "publishes:",
        *(
            f"  {o.topic:<22} {_short(o.msgtype)}"
            + (f" (when {o.enabled_by})" if o.enabled_by else "")
            for o in OUTPUTS
        ),
        f"  {DIAGNOSTICS[0]:<22} {_short(DIAGNOSTICS[1])}",
        "parameters (name, default, description):",
    ]
    for s in SETTINGS:
        extra = ", read-only" if s.read_only else ""
        bounds = f", {s.bounds[0]} .. {s.bounds[1]}" if s.bounds else ""
        lines.append(f"  {s.name} = {s.default!r}: {s.description}{bounds}{extra}")
    lines.append("docs/NODE.md has the same as tables, with QoS and diagnostics.")
    return "\n".join(lines)


def _value(v: Any) -> str:
    """A default as a YAML parameter file spells it."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, list):
        return "not set" if any(isinstance(x, float) and math.isnan(x) for x in v) else str(v)
    return '""' if v == "" else str(v)


def _accepts(s: Setting) -> str:
    if s.choices:
        return " \\| ".join(s.choices)
    if s.bounds:
        return f"{s.bounds[0]} … {s.bounds[1]}"
    if isinstance(s.default, bool):
        return "true \\| false"
    if isinstance(s.default, list):
        return f"{len(s.default)} numbers"
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def topics_table() -> str:
    """Every topic the node reads and writes: direction, name, type, what it holds."""
    rows = ["| | topic (relative, remappable) | type | what |", "|---|---|---|---|"]
    for i in INPUTS:
        rows.append(f"| in | `{i.topic}` | {_short(i.msgtype)} | {_cell(i.description)} |")
    for o in OUTPUTS:
        when = f" (when `{o.enabled_by}`)" if o.enabled_by else ""
        rows.append(f"| out{when} | `{o.topic}` | {_short(o.msgtype)} | {_cell(o.description)} |")
    topic, msgtype, what = DIAGNOSTICS
    rows.append(f"| out | `{topic}` | {_short(msgtype)} | {_cell(what)} |")
    return "\n".join(rows)


def parameters_table() -> str:
    """Every parameter: name, default, what it accepts, whether it can change at run time."""
    rows = [
        "| parameter | default | accepts | at run time | what |",
        "|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        live = "no (read-only)" if s.read_only else "yes"
        rows.append(
            f"| `{s.name}` | `{_value(s.default)}` | {_accepts(s)} | {live} | "
            f"{_cell(s.description)} |"
        )
    return "\n".join(rows)


def counters_table() -> str:
    """Every counter of /diagnostics and what it counts."""
    rows = ["| counter | counts |", "|---|---|"]
    rows += [f"| `{name}` | {_cell(what)} |" for name, what in COUNTERS.items()]
    return "\n".join(rows)


TABLES = {"topics": topics_table, "parameters": parameters_table, "counters": counters_table}


def render(page: str) -> str:
    """``page`` with each ``<!-- generated: NAME -->`` … ``<!-- end generated -->`` block
    replaced by the table NAME (KeyError for an unknown one)."""
    return _BLOCK.sub(lambda m: f"{m.group(1)}{TABLES[m.group(2)]()}\n{m.group(3)}", page)
