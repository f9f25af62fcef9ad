"""Play a rosbag2 onto live ROS 2 topics with its recorded timing and QoS, like `ros2 bag play`,
for machines without rosbag2 and for tests. Messages go out as the recorded CDR bytes."""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from ..msgs.convert import time_fields
from .io import open_bag, read_messages


def message_class(msgtype: str) -> type:
    """The rclpy message class of ``pkg/msg/Name``; ValueError when it is not installed."""
    pkg, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"message type {msgtype} is not available in this ROS installation"
        ) from exc


STATIC_TF = "/tf_static"
STATIC_TF_DEPTH = 100  # static transforms kept for late subscribers (tf2's listener)


def offered_qos(connection: Any) -> QoSProfile:
    """The publisher QoS a bag recorded for a topic (reliable, volatile, depth 10 when none).
    /tf_static is always replayed reliable and transient-local (as tf2's static broadcaster
    offers it, what its static listener requests) with room for STATIC_TF_DEPTH messages,
    whatever the bag recorded."""
    profiles = getattr(connection.ext, "offered_qos_profiles", None) or []
    if connection.topic == STATIC_TF:
        depth = max([int(p.depth) for p in profiles] + [STATIC_TF_DEPTH])
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=depth,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
    if not profiles:
        return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    p = profiles[0]
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=max(int(p.depth), 1),
        reliability=ReliabilityPolicy.BEST_EFFORT
        if p.reliability.name == "BEST_EFFORT"
        else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL
        if p.durability.name == "TRANSIENT_LOCAL"
        else DurabilityPolicy.VOLATILE,
    )


# what the sparse depth node reads, by message type (an image raw or compressed)
SENSOR_KINDS = {
    "sensor_msgs/msg/PointCloud2": "cloud",
    "sensor_msgs/msg/Image": "image",
    "sensor_msgs/msg/CompressedImage": "image",
    "sensor_msgs/msg/CameraInfo": "info",
}


class BagPlayer:
    """Publishes a bag's messages from ``node``; ``play()`` paces them by their recorded times."""

    def __init__(
        self,
        node: Any,
        bag: "str | Path",
        topics: "list[str] | None" = None,
        remaps: "dict[str, str] | None" = None,
        clock: bool = False,
        reliability: "ReliabilityPolicy | None" = None,
        reader: Any = None,
    ) -> None:
        """``reliability``: offered instead of the recorded one (not for /tf_static), as a driver
        of that reliability would publish. ``reader``: the bag already open (the caller closes
        it); default: opened here, closed by ``close``."""
        self.node = node
        self.bag = Path(bag)
        self.remaps = remaps or {}
        self._opened = contextlib.ExitStack()
        self.reader = reader if reader is not None else self._opened.enter_context(open_bag(bag))
        self.connections = [c for c in self.reader.connections if not topics or c.topic in topics]
        if topics:
            missing = sorted(set(topics) - {c.topic for c in self.connections})
            if missing:
                raise ValueError(f"bag {bag} has no topic {missing}")
        self.publishers: dict[str, Any] = {}
        self.skipped: dict[str, str] = {}  # topic -> why it is not played
        for c in self.connections:
            name = self.remaps.get(c.topic.lstrip("/"), c.topic)
            if c.topic in self.publishers:
                continue
            try:
                cls = message_class(c.msgtype)
            except ValueError as exc:  # as ros2 bag play: skip a type this installation lacks
                self.skipped[c.topic] = str(exc)
                node.get_logger().warning(f"not playing {c.topic}: {exc}")
                continue
            offered = offered_qos(c)
            if reliability is not None and c.topic != STATIC_TF:
                offered.reliability = reliability
            self.publishers[c.topic] = node.create_publisher(cls, name, offered)
        self.connections = [c for c in self.connections if c.topic in self.publishers]
        self.clock_pub = None
        if clock:
            from rosgraph_msgs.msg import Clock

            self.clock_pub = node.create_publisher(Clock, "/clock", QoSProfile(depth=1))

    def summary(self, rate: float, loop: bool) -> str:
        """What ``play`` will publish: topics with their message counts, the duration."""
        played = [c for c in self.connections if c.topic not in self.skipped]
        seconds = (self.reader.end_time - self.reader.start_time) * 1e-9
        topics = ", ".join(f"{c.topic} ({c.msgcount})" for c in played)
        return (
            f"play: {self.bag}: {len(played)} topics, {seconds:.1f} s at rate {rate}"
            f"{', looped' if loop else ''}: {topics}"
        )

    def subscribers_ready(self, topics: "list[str]") -> bool:
        """True when each of ``topics`` (bag names) has at least one subscriber."""
        return all(
            self.publishers[t].get_subscription_count() > 0 for t in topics if t in self.publishers
        )

    def wait_for_subscribers(
        self, timeout: float, node_name: "str | None" = None, settle: float = 1.0
    ) -> bool:
        """Wait (at most ``timeout`` s) until the listener is there, then ``settle`` s more for
        its discovery of the other topics, so that the first messages are not published to
        nobody. The listener: the node ``node_name`` (it subscribes to a played cloud, image and
        camera_info: a node that warms up first subscribes after it), else anyone on any played
        topic. Returns whether it came."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._listening(node_name):
                time.sleep(settle)
                return True
            time.sleep(0.05)
        return False

    def _listening(self, node_name: "str | None") -> bool:
        if node_name is None:
            return any(p.get_subscription_count() > 0 for p in self.publishers.values())
        kinds = set()
        for c in self.connections:
            infos = self.node.get_subscriptions_info_by_topic(self.publishers[c.topic].topic_name)
            if any(i.node_name == node_name for i in infos):
                kinds.add(SENSOR_KINDS.get(c.msgtype))
        return {"cloud", "image", "info"} <= kinds

    def _publish_clock(self, t_ns: int) -> None:
        from builtin_interfaces.msg import Time
        from rosgraph_msgs.msg import Clock

        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=Time(**time_fields(t_ns))))

    def play(
        self,
        rate: float = 1.0,
        loop: bool = False,
        on_message: "Callable[[str, int], None] | None" = None,
        should_stop: "Callable[[], bool] | None" = None,
        clock_hz: float = 40.0,
        on_loop: "Callable[[int], None] | None" = None,
    ) -> int:
        """Publish every message at its recorded time scaled by 1/``rate``; returns the count.

        With ``loop`` each pass starts one message period (of the busiest topic) after the
        last message of the previous one, so a looped 10 Hz bag stays a steady 10 Hz stream."""
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        count = 0
        start_wall = time.monotonic()
        while True:
            start_bag = last_bag = None
            stamps: dict[str, list[int]] = {}
            for conn, t_ns, raw in read_messages(self.reader, self.bag, self.connections):
                if start_bag is None:
                    start_bag = t_ns
                last_bag = t_ns
                stamps.setdefault(conn.topic, []).append(t_ns)
                due = start_wall + (t_ns - start_bag) * 1e-9 / rate
                while True:
                    now = time.monotonic()
                    if should_stop is not None and should_stop():
                        return count
                    if now >= due:
                        break
                    if self.clock_pub is not None:
                        self._publish_clock(start_bag + int((now - start_wall) * rate * 1e9))
                    time.sleep(min(due - now, 1.0 / clock_hz))
                if self.clock_pub is not None:
                    self._publish_clock(t_ns)
                self.publishers[conn.topic].publish(bytes(raw))
                count += 1
                if on_message is not None:
                    on_message(conn.topic, t_ns)
            if not loop or start_bag is None:
                return count
            if on_loop is not None:
                on_loop(count)
            busiest = max(stamps.values(), key=len)
            period = (busiest[-1] - busiest[0]) / (len(busiest) - 1) if len(busiest) > 1 else 0.0
            start_wall += (last_bag - start_bag + period) * 1e-9 / rate

    def close(self) -> None:
        self._opened.close()
