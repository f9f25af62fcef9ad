"""The node's reference (ros/reference.py) and docs/NODE.md: the page's generated tables are
what the code's tables say, so the page cannot drift from the node."""

import re
from pathlib import Path

import yaml

from sparse_depth_node.core.settings import SETTINGS
from sparse_depth_node.msgs.outputs import INPUTS, OUTPUTS
from sparse_depth_node.msgs.stats import COUNTERS
from sparse_depth_node.ros.reference import render, usage

PAGE = Path(__file__).resolve().parents[2] / "docs" / "NODE.md"


def _table(page: str, name: str) -> list[list[str]]:
    block = re.search(rf"<!-- generated: {name} -->\n(.*?)<!-- end generated -->", page, re.S)
    assert block, f"docs/NODE.md has no generated {name} block"
    rows = [r for r in block.group(1).strip().splitlines()[2:]]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", r)[1:-1]] for r in rows]


def test_node_page_matches_the_code():
    page = PAGE.read_text()
    assert render(page) == page, "docs/NODE.md is out of date: run python scripts/node_doc.py"


def test_page_lists_every_parameter_with_the_default_a_yaml_file_would_give():
    rows = _table(PAGE.read_text(), "parameters")
    assert [r[0].strip("`") for r in rows] == [s.name for s in SETTINGS]
    for row, s in zip(rows, SETTINGS):
        shown = row[1].strip("`")
        if shown == "not set":
            assert all(v != v for v in s.default)  # NaN: never guessed
        else:
            assert yaml.safe_load(shown) == s.default, s.name
        assert ("read-only" in row[3]) == s.read_only


def test_page_lists_every_topic_and_counter():
    page = PAGE.read_text()
    topics = [r[1].strip("`") for r in _table(page, "topics")]
    assert topics == [i.topic for i in INPUTS] + [o.topic for o in OUTPUTS] + ["/diagnostics"]
    assert [r[0].strip("`") for r in _table(page, "counters")] == list(COUNTERS)


def test_render_replaces_only_generated_blocks():
    page = "intro\n<!-- generated: counters -->\nstale\n<!-- end generated -->\noutro\n"
    out = render(page)
    assert out.startswith("intro\n<!-- generated: counters -->\n| counter | counts |")
    assert "stale" not in out and out.endswith("<!-- end generated -->\noutro\n")


def test_help_names_every_topic_and_parameter():
    text = usage()
    for name in [i.topic for i in INPUTS] + [o.topic for o in OUTPUTS]:
        assert f"\n  {name} " in text
    for s in SETTINGS:
        assert f"\n  {s.name} = " in text
