"""The node's output publishers: exactly the outputs the publish_* parameters enable."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions

from ..msgs.outputs import OUTPUTS, enabled_outputs
from .kit import RclpyKit


class OutputPublishers:
    """Reliable, depth 5, QoS-overridable publishers of ``node`` for the enabled outputs;
    ``sync`` adds and removes them as publish_* change, ``publish`` sends a frame's messages
    (skipping a publisher removed meanwhile)."""

    def __init__(self, node: Any, kit: RclpyKit) -> None:
        self.node, self.kit = node, kit
        self.pubs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def listened(self, values: Mapping[str, Any]) -> list[str]:
        """The enabled outputs someone subscribes to."""
        pubs = self.pubs
        return [
            t for t in enabled_outputs(values) if t in pubs and pubs[t].get_subscription_count()
        ]

    def sync(self, values: Mapping[str, Any]) -> None:
        wanted = enabled_outputs(values)
        if set(wanted) == set(self.pubs):
            return
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        overrides = QoSOverridingOptions.with_default_policies()
        types = {o.topic: o.msgtype for o in OUTPUTS}
        with self._lock:
            pubs = dict(self.pubs)
            for topic in set(pubs) - set(wanted):
                self.node.destroy_publisher(pubs.pop(topic))
            for topic in wanted:
                if topic not in pubs:
                    cls = self.kit.cls(types[topic])
                    pubs[topic] = self.node.create_publisher(
                        cls, topic, qos, qos_overriding_options=overrides
                    )
            self.pubs = pubs

    def publish(self, messages: Mapping[str, Any]) -> None:
        with self._lock:
            for topic, msg in messages.items():
                if topic in self.pubs:
                    self.pubs[topic].publish(msg)
