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

    ``input_qos`` ``reliable`` or ``best_effort`` fix the reliability. ``auto`` takes what the
    topic's publishers offer (reliable while every one offers reliable, else best effort); with
    no publisher yet it subscribes both ways, so that the first messages of a publisher are
    heard whatever it offers and a reliable one's large samples arrive whole. ``rematch()``
    (called every second) ends the subscription the publishers do not call for, and makes the
    one they do first when it is missing, with one log line: nothing published meanwhile is
    missed, and while two subscriptions of an input live a message both deliver (the same
    stamp) is passed on once. History and depth stay overridable
    (``qos_overrides.<topic>.subscription.depth``). Message-lost and incompatible-QoS events
    are counted as ``lost.<stream>`` and ``incompatible_qos.<stream>``.
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
        self.topics: dict[str, tuple[str, str]] = {}  # stream -> (resolved topic, type)
        for i in INPUTS:
            suffix, msgtype = input_topic(i.topic, i.msgtype, values["image_transport"])
            self.topics[i.stream] = (node.resolve_topic_name(i.topic) + suffix, msgtype)
        # stream -> {reliability: subscription}: one, or two while auto does not know yet
        self.subs: dict[str, dict[str, Any]] = {s: {} for s in self.topics}
        self.last_stamp: dict[str, tuple[int, int]] = {}
        for stream in self.topics:
            for reliability in self._wanted(stream) if self.auto else [values["input_qos"]]:
                self._subscribe(stream, reliability)

    @property
    def reliability(self) -> dict[str, str]:
        """Each input's reliability: ``auto`` while it listens both ways."""
        return {s: next(iter(subs)) if len(subs) == 1 else "auto" for s, subs in self.subs.items()}

    def _wanted(self, stream: str) -> list[str]:
        """``auto``'s subscriptions for ``stream`` given its publishers now: the reliability
        they call for, or both without any."""
        offered = [
            i.qos_profile.reliability
            for i in self.node.get_publishers_info_by_topic(self.topics[stream][0])
        ]
        return [matched_reliability(offered, "")] if offered else ["best_effort", "reliable"]

    def _deliver(self, stream: str, msg: Any) -> None:
        """A message on to ``offer``, once: while two subscriptions of ``stream`` live, the copy
        the other delivered (the same stamp) is dropped."""
        stamp = (int(msg.header.stamp.sec), int(msg.header.stamp.nanosec))
        if len(self.subs[stream]) > 1 and self.last_stamp.get(stream) == stamp:
            return
        self.last_stamp[stream] = stamp
        self.offer(stream, msg)

    def _subscribe(self, stream: str, reliability: str) -> None:
        topic, msgtype = self.topics[stream]
        qos = QoSProfile(
            history=qos_profile_sensor_data.history,
            depth=qos_profile_sensor_data.depth,
            reliability=RELIABILITY[reliability],
        )

        def lost(info: Any) -> None:
            self._lost(stream, info.total_count_change)

        def incompatible(_info: Any) -> None:
            self._incompatible(stream, reliability)

        events = SubscriptionEventCallbacks(message_lost=lost, incompatible_qos=incompatible)
        self.subs[stream][reliability] = self.node.create_subscription(
            self.kit.cls(msgtype),
            topic,
            lambda m, s=stream: self._deliver(s, m),
            qos,
            event_callbacks=events,
            qos_overriding_options=QoSOverridingOptions(
                policy_kinds=(QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH)
            ),
        )

    def _lost(self, stream: str, n: int) -> None:
        self.stats.count(f"lost.{stream}", n)
        self.node.get_logger().warning(
            f"{self.topics[stream][0]}: {n} message(s) lost in transport (see /diagnostics)",
            throttle_duration_sec=5.0,
        )

    def _incompatible(self, stream: str, reliability: str) -> None:
        if self.auto and len(self.subs[stream]) > 1:
            return  # listening both ways: the other subscription hears that publisher
        self.stats.count(f"incompatible_qos.{stream}")
        self.node.get_logger().warning(
            f"{self.topics[stream][0]}: a publisher's QoS is incompatible with this "
            f"{reliability} subscription (input_qos:=auto matches it)",
            throttle_duration_sec=5.0,
        )

    def rematch(self) -> None:
        """With ``auto``: for each input, make the subscription its publishers call for if it
        is missing, and end the others (a twin already live: nothing is missed)."""
        if not self.auto:
            return
        for stream, (topic, _) in self.topics.items():
            wanted, subs = self._wanted(stream), self.subs[stream]
            missing = [r for r in wanted if r not in subs]
            for reliability in missing:  # made first: the others end at the next call
                self._subscribe(stream, reliability)
            extra = [r for r in subs if r not in wanted] if not missing else []
            for reliability in extra:
                self.node.destroy_subscription(subs.pop(reliability))
            if extra:
                self.node.get_logger().info(
                    f"{topic}: input QoS {', '.join(subs)} (what its publishers offer)"
                )
