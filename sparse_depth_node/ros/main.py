"""The ``sparse_depth_node`` executable (``ros2 run sparse_depth_node sparse_depth_node``):
``--help`` answers at once from the node's reference (reference.py); anything else
starts the node (node.py, which loads torch) with the node's Fast DDS profile (dds.py)."""

from __future__ import annotations

import os
import signal
import sys


def _quit_quietly(signum: int, frame: object) -> None:
    os._exit(0)  # nothing to clean up yet: the node does not exist


# Ctrl-C (SIGINT to the process group), SIGTERM (launch, systemd) and SIGHUP (its terminal
# closed, an ssh session ended) while Python starts and the node loads end the process quietly
# with status 0; ros/node.run hands them to rclpy or raises KeyboardInterrupt, a clean shutdown,
# before it creates anything.
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
for _signal in STOPPING:
    signal.signal(_signal, _quit_quietly)
# a parent that blocked them while it started us left them blocked: take them
signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPPING)

from .reference import usage  # noqa: E402  (after the handlers: imports take time)


def main(args: "list[str] | None" = None) -> None:
    """``--help`` (before any ROS argument) prints topics and parameters; else the node runs."""
    argv = sys.argv if args is None else args
    own = argv[1 : argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    if "-h" in own or "--help" in own:
        print(usage())
        return
    try:
        from .dds import use_node_profile

        use_node_profile()
        run(args)
    except KeyboardInterrupt:
        pass


def run(args: "list[str] | None" = None) -> None:
    """Run the node until Ctrl-C or shutdown (``args``: the command line, ROS arguments too);
    parameters it cannot run with (and, with ``strict``, a model it cannot load) end it with one
    line and exit status 2."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from .node import SparseDepthNode

    # SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt from here on; rclpy.init chains its
    # handlers (which shut the context down) in front of the first two.
    for stopping in STOPPING:
        signal.signal(stopping, signal.default_int_handler)
    rclpy.init(args=args)
    node, status = None, 0
    try:
        node = SparseDepthNode(process_wide=True)
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as exc:  # parameters or (with strict) a model the node cannot run with
        print(f"sparse_depth_node: error: {exc}", file=sys.stderr)
        status = 2
    except Exception:
        if rclpy.ok():
            raise
        # a signal shut the context down while the node was being made: a clean stop
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    if status:
        sys.exit(status)


if __name__ == "__main__":
    main()
