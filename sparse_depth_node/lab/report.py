"""Writing a lab result (evaluation table, benchmark report) as JSON."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: "str | Path", data: dict) -> None:
    """``data`` as indented JSON at ``path``, its folder created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
