"""``sparse-depth process``: the node's frame path over a bag, offline and as fast as possible,
into a new bag that holds the input's topics plus every output the settings enable."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Writer

from ..core.completion import DepthCompleter
from ..core.settings import resolve
from ..core.timing import summary
from ..msgs.convert import stamp_ns
from ..msgs.errors import Dropped
from ..msgs.frame import run_set
from ..msgs.outputs import OUTPUTS, enabled_outputs
from .errors import DamagedBag
from .io import TYPESTORE, BagKit, open_bag, qos, read_messages, storage_plugin
from .sets import BagSets


@dataclass
class ProcessReport:
    """What ``process_bag`` did: frame counts, reasons for frames without output, stage timings,
    the input topics it paired and where T_camera<-lidar came from."""

    frames_in: int = 0
    frames_out: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    timings_ms: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    inputs: dict[str, str] = field(default_factory=dict)
    extrinsic_source: str = ""
    empty: dict[str, int] = field(default_factory=dict)  # frames out with an empty depth, why

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def table(self) -> str:
        lines = [
            f"frames in {self.frames_in}, frames out {self.frames_out}, "
            f"{self.frames_out / max(self.seconds, 1e-9):.1f} frames/s"
        ]
        lines += [f"skipped ({reason}): {n}" for reason, n in sorted(self.skipped.items())]
        lines += [f"empty depth ({reason}): {n}" for reason, n in sorted(self.empty.items())]
        lines.append(f"{'stage':<12} {'median ms':>10} {'p90 ms':>8}")
        for stage, v in self.timings_ms.items():
            t = summary(v)
            lines.append(f"{stage:<12} {t['median_ms']:10.1f} {t['p90_ms']:8.1f}")
        return "\n".join(lines)


def process_bag(
    in_bag: "str | Path",
    out_bag: "str | Path",
    params: "Mapping[str, Any] | None" = None,
    remaps: "dict[str, str] | None" = None,
    storage: str = "mcap",
    progress: "Callable[[ProcessReport], None] | None" = None,
    notice: "Callable[[str], None] | None" = None,
    completer: "DepthCompleter | None" = None,
) -> ProcessReport:
    """Run the node's frame path over a bag into a new bag.

    ``params``: node parameters (a parameter file's values) over the defaults. The output bag
    has the input's topics unchanged plus ``/depth/*`` for every output the parameters enable,
    stamped as the images. T_camera<-lidar: with ``use_tf`` (default), from the bag's
    /tf_static and /tf when the bag records TF (frames whose transform it lacks are skipped as
    tf_missing), else from ``extrinsic.*``; with ``use_tf: false``, from ``extrinsic.*`` (the
    node's policy, msgs.extrinsics.ExtrinsicSource).
    The bag is written as OUT.partial and renamed OUT when closed; a stale OUT.partial (a run
    that was killed) is replaced, said through ``notice``. An input damaged mid-file raises
    DamagedBag (a ValueError) naming where, after OUT is closed with the frames before it.
    ``completer``: one already built from the same settings (a fleet worker's, reused from bag
    to bag); default: built here.
    """
    values = resolve(params)
    completer = completer or DepthCompleter.from_settings(values)
    t0 = time.perf_counter()
    out_bag = Path(out_bag)
    partial = fresh_partial(out_bag, notice)
    interrupted, report = None, ProcessReport()
    try:
        with contextlib.ExitStack() as stack:
            reader = stack.enter_context(open_bag(in_bag))
            stack.callback(_close_output, partial, out_bag)  # after the writer has closed
            sets = BagSets(reader, in_bag, values, remaps, notice)
            report.inputs, report.extrinsic_source = sets.inputs, sets.extrinsics.description
            counts = {c.topic: c.msgcount for c in reader.connections}
            if sets.extrinsics.ignored() and notice is not None:
                notice(f"process: {sets.extrinsics.ignored()}")
            # written under OUT.partial and renamed when closed: an interrupted run (Ctrl-C)
            # leaves a closed, readable bag with the frames done so far; a killed one no OUT
            with Writer(partial, version=8, storage_plugin=storage_plugin(storage)) as writer:
                try:
                    write_outputs(writer, reader, in_bag, sets, completer, report, progress)
                except (KeyboardInterrupt, DamagedBag) as exc:  # close what is done, then stop
                    interrupted = exc
    except OSError as exc:  # a write that failed (a full disk): nothing half-written is left
        for left in (partial, out_bag):
            shutil.rmtree(left, ignore_errors=True)
        raise ValueError(
            f"cannot write {partial}: {exc.strerror or exc}; removed it, {out_bag} is not "
            "written (free space and run again)"
        ) from None
    report.frames_in = sets.images_in
    if isinstance(interrupted, DamagedBag):
        if report.frames_out == 0:
            shutil.rmtree(out_bag, ignore_errors=True)
            raise DamagedBag(f"{interrupted}; no frame before it, nothing written")
        raise DamagedBag(
            f"{interrupted}; {out_bag} holds the {report.frames_out} frames before "
            "it (a closed, readable bag)"
        )
    if interrupted is not None:
        raise interrupted
    unpaired = report.frames_in - report.frames_out - sum(report.skipped.values())
    if unpaired:
        report.skipped["no matching cloud or camera_info within sync_slop"] = unpaired
    if report.frames_out == 0:
        shutil.rmtree(out_bag, ignore_errors=True)
        raise ValueError(no_frame(in_bag, report, counts))
    report.seconds = time.perf_counter() - t0
    return report


def no_frame(in_bag: "str | Path", report: ProcessReport, counts: dict[str, int]) -> str:
    """Why a bag gave no frame, in one line: the inputs it read and how many messages each
    held, and what became of the sets paired."""
    inputs = ", ".join(f"{topic} ({counts.get(topic, 0)})" for topic in report.inputs.values())
    if not any(counts.get(topic, 0) for topic in report.inputs.values()):
        return f"bag {in_bag} gives no frame: no message on its inputs {inputs}; nothing written"
    why = "; ".join(f"{n} {reason}" for reason, n in report.skipped.items()) or (
        "no cloud, image and camera_info paired within sync_slop"
    )
    return f"bag {in_bag} gives no frame from {inputs}: {why}; nothing written"


def write_outputs(
    writer: Writer,
    reader: Any,
    in_bag: "str | Path",
    sets: BagSets,
    completer: DepthCompleter,
    report: ProcessReport,
    progress: "Callable[[ProcessReport], None] | None",
) -> None:
    """Copy every message of the bag to ``writer`` and add the outputs of each set, counted in
    ``report``."""
    values = sets.values
    passthrough = {}
    for c in reader.connections:
        if c.topic not in passthrough:
            passthrough[c.topic] = writer.add_connection(
                c.topic,
                c.msgtype,
                msgdef=c.msgdef.data,
                rihs01=c.digest,
                offered_qos_profiles=getattr(c.ext, "offered_qos_profiles", []) or [qos()],
            )
    topics, kit = enabled_outputs(values), BagKit()
    types = {o.topic: o.msgtype for o in OUTPUTS}
    outs = {
        t: writer.add_connection(
            "/" + t, types[t], typestore=TYPESTORE, offered_qos_profiles=[qos()]
        )
        for t in topics
    }

    def write_set(matched: Any) -> None:
        try:
            out = run_set(
                matched.cloud,
                matched.image,
                matched.info,
                sets.extrinsics.place,
                completer,
                values,
                topics,
                kit,
            )
        except Dropped as exc:
            report.skip(f"{exc.counter}: {exc}")
            return
        stamp = stamp_ns(matched.image.header)
        for topic, msg in out.messages.items():
            writer.write(outs[topic], stamp, TYPESTORE.serialize_cdr(msg, types[topic]))
        for stage, ms in out.timings.items():
            report.timings_ms.setdefault(stage, []).append(ms)
        if out.empty:
            report.empty[out.empty] = report.empty.get(out.empty, 0) + 1
        report.frames_out += 1
        if progress is not None:
            progress(report)

    try:
        for conn, t_ns, raw in read_messages(reader, in_bag):
            writer.write(passthrough[conn.topic], t_ns, raw)
            for matched in sets.feed(conn, raw):
                write_set(matched)
    finally:  # the sets still waiting for TF: at the end, or before a damaged stretch
        for matched in sets.flush():
            write_set(matched)


def fresh_partial(out_bag: Path, notice: "Callable[[str], None] | None") -> Path:
    """OUT.partial, the folder OUT is written as: ValueError when OUT exists; a stale one (a
    run that was killed) removed, said through ``notice``."""
    partial = out_bag.with_name(out_bag.name + ".partial")
    if out_bag.exists():
        raise ValueError(f"{out_bag} exists: choose another output folder or remove it")
    if partial.exists():
        shutil.rmtree(partial)
        if notice is not None:
            notice(f"process: replaced {partial}, left by an earlier run that did not finish")
    return partial


def _close_output(partial: Path, out_bag: Path) -> None:
    """OUT.partial becomes OUT once its writer has closed it (complete or interrupted)."""
    if (partial / "metadata.yaml").exists():
        _rename_bag(partial, out_bag)


def _rename_bag(src: Path, dst: Path) -> None:
    """Move a closed rosbag2 folder ``src`` to ``dst``, its storage files named after ``dst``
    (``dst/dst.mcap``, not ``dst/src.mcap``), as the writer names them after their folder."""
    meta = src / "metadata.yaml"
    text = meta.read_text()
    for f in sorted(src.iterdir()):
        if f.name.startswith(src.name):
            new = dst.name + f.name[len(src.name) :]
            f.rename(src / new)
            text = text.replace(f.name, new)
    meta.write_text(text)
    src.rename(dst)
