"""The node's three input subscriptions: their reliability chosen by ``input_qos`` (``auto``
matches what the publishers offer, as ``ros2 bag record`` does), the image on the topic its
``image_transport`` names, and every lost sample or QoS mismatch counted per input."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import QoSPolicyKind, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions

from ..msgs.outputs import INPUTS, input_topic
from ..msgs.stats import PipelineStats

RELIABILITY = {
    "reliable": ReliabilityPolicy.RELIABLE,
    "best_effort": ReliabilityPolicy.BEST_EFFORT,
}


def matched_reliability(offered: "list[ReliabilityPolicy]", current: str) -> str:
    """``auto``'s choice for a topic whose publishers offer ``offered``: reliable when every one
    offers reliable, best effort when any offers best effort, ``current`` when there is none
    (so that a publisher leaving changes nothing until another appears)."""
    if not offered:
        return current
    if all(r == ReliabilityPolicy.RELIABLE for r in offered):
        return "reliable"
    return "best_effort"


class InputSubscriptions:
    """The subscriptions of ``node`` to INPUTS, delivering ``(stream, message)`` to ``offer``.

    ``input_qos`` ``reliable`` or ``best_effort`` fix the reliability; ``auto`` starts best
    effort (it hears any publisher) and ``rematch()`` (called every second) re-creates a
    subscription whose publishers all offer the other reliability, with one log line. History
    and depth stay overridable (``qos_overrides.<topic>.subscription.depth``). Message-lost and
    incompatible-QoS events are counted as ``lost.<stream>`` and ``incompatible_qos.<stream>``.
    """

    def __init__(
        self,
        node: Any,
        kit: Any,
        values: Mapping[str, Any],
        stats: PipelineStats,
        offer: Callable[[str, Any], None],
    ) -> None:
        self.node, self.kit, self.stats, self.offer = node, kit, stats, offer
        self.auto = values["input_qos"] == "auto"
        start = "best_effort" if self.auto else values["input_qos"]
        self.topics: dict[str, tuple[str, str]] = {}  # stream -> (resolved topic, type)
        for i in INPUTS:
            suffix, msgtype = input_topic(i.topic, i.msgtype, values["image_transport"])
            self.topics[i.stream] = (node.resolve_topic_name(i.topic) + suffix, msgtype)
        self.reliability: dict[str, str] = {}
        self.subs: dict[str, Any] = {}
        for stream in self.topics:
            self._subscribe(stream, start)

    def _subscribe(self, stream: str, reliability: str) -> None:
        topic, msgtype = self.topics[stream]
        if stream in self.subs:
            self.node.destroy_subscription(self.subs.pop(stream))
        qos = QoSProfile(
            history=qos_profile_sensor_data.history,
            depth=qos_profile_sensor_data.depth,
            reliability=RELIABILITY[reliability],
        )

        def lost(info: Any) -> None:
            self._lost(stream, info.total_count_change)

        def incompatible(_info: Any) -> None:
            self._incompatible(stream)

        events = SubscriptionEventCallbacks(message_lost=lost, incompatible_qos=incompatible)
        self.subs[stream] = self.node.create_subscription(
            self.kit.cls(msgtype),
            topic,
            lambda m, s=stream: self.offer(s, m),
            qos,
            event_callbacks=events,
            qos_overriding_options=QoSOverridingOptions(
                policy_kinds=(QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH)
            ),
        )
        self.reliability[stream] = reliability

    def _lost(self, stream: str, n: int) -> None:
        self.stats.count(f"lost.{stream}", n)
        self.node.get_logger().warning(
            f"{self.topics[stream][0]}: {n} message(s) lost in transport (see /diagnostics)",
            throttle_duration_sec=5.0,
        )

    def _incompatible(self, stream: str) -> None:
        self.stats.count(f"incompatible_qos.{stream}")
        self.node.get_logger().warning(
            f"{self.topics[stream][0]}: a publisher's QoS is incompatible with this "
            f"{self.reliability[stream]} subscription (input_qos:=auto matches it)",
            throttle_duration_sec=5.0,
        )

    def rematch(self) -> None:
        """With ``auto``: re-create each subscription whose publishers now call for the other
        reliability."""
        if not self.auto:
            return
        for stream, (topic, _) in self.topics.items():
            offered = [
                i.qos_profile.reliability for i in self.node.get_publishers_info_by_topic(topic)
            ]
            wanted = matched_reliability(offered, self.reliability[stream])
            if wanted != self.reliability[stream]:
                self.node.get_logger().info(
                    f"{topic}: input QoS {self.reliability[stream]} -> {wanted} "
                    f"(publishers offer {', '.join(sorted({r.name.lower() for r in offered}))})"
                )
                self._subscribe(stream, wanted)
