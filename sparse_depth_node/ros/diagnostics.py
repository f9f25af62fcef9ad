"""The node's /diagnostics status from its counters, rates and stage latencies."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from ..msgs.stats import PipelineStats
from .dds import RECEIVE_BUFFER

STREAMS = ("cloud", "image", "info")
STALE_AFTER_S = 2.0
SUSTAINED_LOSS = 2  # messages lost on one input within the stats window (5 s): WARN
LOSS_FIX = (
    "likely multi-megabyte samples over Fast DDS's default transports (rmw_fastrtps#739): "
    f"run the node with its shipped DDS profile and net.core.rmem_max >= {RECEIVE_BUFFER}, or "
    "FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA for driver and node (docs/NODE.md, QoS and large "
    "messages)"
)


def _input_problem(stats: PipelineStats) -> "str | None":
    """A WARN text for sustained loss or a QoS mismatch on an input in the stats window."""
    lost = {s: stats.recent(f"lost.{s}") for s in STREAMS}
    losing = [f"{n} {s}" for s, n in lost.items() if n >= SUSTAINED_LOSS]
    busy = stats.recent("dropped_busy")
    if losing and busy:  # the node itself is behind: its subscriptions' queues overflow too
        return (
            f"input lost in the last {stats.window:.0f} s ({', '.join(losing)}) while the node "
            f"is behind ({busy} paired sets replaced by newer ones): it cannot keep up with "
            "the input rate; lower the rate, the resolution (inference_scale) or the model's "
            "cost, or run it on a GPU"
        )
    if losing:
        return (
            f"input lost in transport in the last {stats.window:.0f} s: {', '.join(losing)}; "
            + LOSS_FIX
        )
    mismatched = [s for s in STREAMS if stats.recent(f"incompatible_qos.{s}")]
    if mismatched:
        return (
            f"a publisher's QoS is incompatible with the {', '.join(mismatched)} subscription: "
            "nothing arrives from it; set input_qos:=auto (or match its reliability)"
        )
    return None


def pipeline_status(
    stats: PipelineStats,
    name: str,
    model: str,
    device: str,
    error: "str | None" = None,
    clock: "str | None" = None,
    empty: "str | None" = None,
) -> DiagnosticStatus:
    """One status named ``name`` (the node's fully qualified name, so that two instances are
    told apart): ERROR with ``error`` (a problem that stops all output), WARN with ``clock`` (a
    sim-time node without /clock), WARN with ``empty`` (why recent depth holds no LiDAR return:
    the extrinsic, the range, the cloud), WARN for stale input
    (nothing for STALE_AFTER_S on a stream that was flowing), for a stream silent while another
    flows, or for no input yet; WARN first for input lost in transport (SUSTAINED_LOSS within
    the window, with the likely cause and the fix) or refused for incompatible QoS; counters,
    input and output rates and per-stage latency median / p90 as values."""
    counts = stats.snapshot()
    stale = [s for s in STREAMS if counts.get(f"in_{s}") and stats.age(f"in_{s}") > STALE_AFTER_S]
    silent = [s for s in STREAMS if not counts.get(f"in_{s}")]
    status = DiagnosticStatus(name=f"{name}: pipeline", hardware_id=device)
    transport = _input_problem(stats)
    if error:
        status.level, status.message = DiagnosticStatus.ERROR, error
    elif clock:
        status.level, status.message = DiagnosticStatus.WARN, clock
    elif empty:
        status.level, status.message = DiagnosticStatus.WARN, f"depth (nearly) empty: {empty}"
    elif transport:
        status.level, status.message = DiagnosticStatus.WARN, transport
    elif len(silent) == len(STREAMS):
        status.level, status.message = DiagnosticStatus.WARN, "no input yet"
    elif stale:
        status.level, status.message = DiagnosticStatus.WARN, f"stale input: {', '.join(stale)}"
    elif silent and any(counts.get(f"in_{s}") for s in STREAMS):
        status.level, status.message = (
            DiagnosticStatus.WARN,
            f"no input yet on: {', '.join(silent)}",
        )
    else:
        status.level, status.message = DiagnosticStatus.OK, "ok"
    values = {"model": model, "device": device}
    for s in STREAMS:
        values[f"input_rate_hz.{s}"] = f"{stats.rate(f'in_{s}'):.1f}"
    values["output_rate_hz"] = f"{stats.rate('frames_out'):.1f}"
    for name, n in sorted(counts.items()):
        values[f"count.{name}"] = str(n)
    motion = stats.motion_summary()
    if motion:
        values["motion_applied"] = motion
    for stage, t in sorted(stats.percentiles().items()):
        values[f"latency_ms.{stage}"] = f"median {t['median_ms']:.1f} p90 {t['p90_ms']:.1f}"
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    return status
