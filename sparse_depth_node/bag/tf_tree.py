"""A small transform tree for offline use (bags): no tf2 needed.

Edges come from tf2_msgs/TFMessage transforms (parent frame -> child frame). A lookup walks
the tree in either direction and composes the 4x4 matrices; the latest transform per edge is
kept (static transforms, or the newest dynamic one seen).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from ..core.transforms import invert_transform
from ..msgs.extrinsics import transform_msg_to_matrix


class TfTree:
    """Transforms between frames; ``lookup(target, source)`` maps source coordinates into
    target."""

    def __init__(self) -> None:
        # (parent, child) -> T_parent<-child
        self.edges: dict[tuple[str, str], np.ndarray] = {}

    def add(self, parent: str, child: str, t_parent_child: np.ndarray) -> None:
        self.edges[(parent.lstrip("/"), child.lstrip("/"))] = np.asarray(
            t_parent_child, dtype=np.float64
        )

    def add_message(self, tf_message: Any) -> None:
        """Add every transform of a tf2_msgs/TFMessage (rclpy or rosbags)."""
        for ts in tf_message.transforms:
            self.add(ts.header.frame_id, ts.child_frame_id, transform_msg_to_matrix(ts.transform))

    def lookup(self, target: str, source: str) -> "np.ndarray | None":
        """T_target<-source (4, 4), or None when the frames are not connected."""
        target, source = target.lstrip("/"), source.lstrip("/")
        neighbours: dict[str, list[tuple[str, np.ndarray]]] = {}
        for (parent, child), t in self.edges.items():
            # moving from child to parent applies T_parent<-child, and back its inverse
            neighbours.setdefault(child, []).append((parent, t))
            neighbours.setdefault(parent, []).append((child, invert_transform(t)))
        seen = {source: np.eye(4)}
        todo = deque([source])
        while todo:
            frame = todo.popleft()
            if frame == target:
                return seen[frame]
            for nxt, t in neighbours.get(frame, []):
                if nxt not in seen:
                    seen[nxt] = t @ seen[frame]
                    todo.append(nxt)
        return None
