"""The ``sparse-depth`` command: ``complete`` (one frame of a data set), ``convert-kitti``,
``process``, ``play``, ``extrinsic`` and ``time-offset`` (rosbag2), ``demo`` (node + bag over
DDS), ``node`` (the ROS 2 node), ``evaluate``, ``bench``, ``export`` (a network to ONNX) and
``train``.

A mistake (a missing folder, a wrong format, an unreadable file) ends with one line naming the
problem and exit status 2; work that takes longer than a moment shows a progress bar on a
terminal (``--quiet`` silences it). Each command imports its modules only when it runs, so
``--help`` is instant.
"""
# each command's parser sits beside its handler: frames.py (complete, evaluate), bags.py
# (convert-kitti, process, extrinsic, time-offset), live.py (play, demo, node), lab.py (bench,
# export, train)

from __future__ import annotations

import argparse
import signal
import sys

from . import bags, frames, lab, live
from .common import Formatter

PASS_THROUGH = ("train", "node")  # their own parsers take every argument after them


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparse-depth", description=__doc__, formatter_class=Formatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, formatter_class=Formatter)
        p.set_defaults(func=func)
        return p

    for module in (frames, bags, live, lab):
        module.register(command)
    return parser


def _interrupt(signum: int, _frame: object) -> None:
    """SIGINT and SIGTERM unwind the command as a KeyboardInterrupt: outputs are closed on the
    way out and the command ends with the conventional 128 + signum."""
    raise KeyboardInterrupt(signum)


def _end_with(status: int) -> None:
    """Once the command's work is done and its outputs closed, a signal during the teardown
    (Ray's, torch's, the interpreter's; a second or more on a busy machine) ends the process at
    once with the command's own status, rather than by the signal the interpreter restores."""

    from ..core.runtime import exit_now

    def now(_signum: int, _frame: object) -> None:
        exit_now(status)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, now)


def main(argv: "list[str] | None" = None) -> int:
    """The command; ``argv`` None when it is the process (``sparse-depth``, ``python -m``),
    a list when called in another program, whose signal handlers are given back after."""
    from ..core.runtime import signals_noted

    before = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # the signal's number is kept as it arrives: a library on the way (Ray's ``get``) may
        # raise its own KeyboardInterrupt without it
        with signals_noted() as received:
            status = _run(sys.argv[1:] if argv is None else list(argv), received)
    finally:
        if argv is not None:
            for sig, handler in before.items():
                signal.signal(sig, handler)
    if argv is None:
        _end_with(status)
    return status


def _run(argv: list[str], received: list[int]) -> int:
    parser = build_parser()
    if argv[:1] and argv[0] in PASS_THROUGH:
        func = lab.train if argv[0] == "train" else live.node
        args = argparse.Namespace(
            command=argv[0], func=func, train_args=argv[1:], ros_args=argv[1:]
        )
    else:
        args = parser.parse_args(argv)
    try:
        if hasattr(args, "threads"):  # the commands that compute (speed options)
            from ..core.runtime import configure_process

            configure_process(args.threads)
        return int(args.func(args) or 0)
    except (ValueError, OSError) as exc:  # a mistake in the input: one line, no traceback
        message = (
            str(exc)
            if not isinstance(exc, OSError) or not exc.filename
            else (f"{exc.strerror}: {exc.filename}")
        )
        print(f"sparse-depth {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        signum = received[0] if received else signal.SIGINT
        name = signal.Signals(signum).name
        print(f"sparse-depth {args.command}: interrupted ({name})", file=sys.stderr)
        return 128 + signum
