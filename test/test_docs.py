"""The README is one screen with both commands first, and every local link of the README and
docs/ leads to a file (and a heading, for #anchors) that exists."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    heads = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_readme_is_one_screen_with_both_commands_first():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    head = "\n".join(lines[:30])
    assert "bash scripts/main.sh" in head and "bash scripts/test.sh" in head


def test_every_local_link_resolves():
    checked = 0
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            assert dest.exists(), f"{page.name} links to missing {target}"
            if anchor:
                assert anchor in _anchors(dest), f"{page.name} links to missing #{anchor}"
            checked += 1
    assert checked > 20


def test_readme_topic_table_names_every_topic_of_the_node():
    from sparse_depth_node.msgs.outputs import INPUTS, OUTPUTS

    readme = (REPO / "README.md").read_text()
    for topic in [i.topic for i in INPUTS] + [o.topic for o in OUTPUTS] + ["/diagnostics"]:
        assert f"`{topic}`" in readme, topic
