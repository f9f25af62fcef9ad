"""Write the generated tables of docs/NODE.md (topics, parameters, counters) from the code's
tables (sparse_depth_node/ros/reference.py). After changing a topic, a setting or a counter:
``.venv/bin/python scripts/node_doc.py``; test/ros/test_reference.py fails until the page
matches. ``--check``: exit 1 when the page is out of date, write nothing."""

import sys
from pathlib import Path

from sparse_depth_node.ros.reference import render

PAGE = Path(__file__).resolve().parent.parent / "docs" / "NODE.md"


def main() -> int:
    page = PAGE.read_text()
    fresh = render(page)
    if fresh == page:
        return 0
    if "--check" in sys.argv[1:]:
        print(f"{PAGE} is out of date: run python scripts/node_doc.py", file=sys.stderr)
        return 1
    PAGE.write_text(fresh)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
