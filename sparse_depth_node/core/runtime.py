"""Process-wide start-up settings, applied once by the node and the CLI before any work:
the memory allocator and the CPU thread counts of torch and OpenCV; and float32 that is float32
on CUDA (``exact_float32_on_cuda``, applied wherever a CUDA device is resolved). Also which
signals arrived during a piece of work (``signals_noted``), and the end of a process whose work
is done (``exit_now``)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any, NoReturn


@functools.cache
def _libc() -> "ctypes.CDLL | None":
    """The C library (finding it runs ``ldconfig``: once per process)."""
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


@functools.cache
def retain_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the kernel.

    A CPU forward pass allocates and frees full-frame feature maps (25 MB each on KITTI);
    by default glibc unmaps or trims them, so every frame page-faults them in again, which
    cost about a third of the network's time on the benchmark machine. This sets the trim
    threshold to 1 GiB and the mmap threshold to its 32 MiB maximum; peak RSS does not grow.
    Process-wide, so done once per process; False (and nothing changed) where libc has no
    ``mallopt``.
    """
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_trim_threshold, 1 << 30)) and bool(mallopt(m_mmap_threshold, 32 << 20))


def release_freed_memory() -> bool:
    """Return the memory freed so far to the system (glibc's ``malloc_trim``): after an outsized
    frame (a 4K image, millions of points) the freed buffers would otherwise stay with the
    process, since ``retain_freed_memory`` keeps up to 1 GiB for reuse. False where libc has no
    ``malloc_trim``."""
    trim = getattr(_libc(), "malloc_trim", None)
    return bool(trim(0)) if trim is not None else False


def cpu_threads(threads: int = 0) -> int:
    """The thread count to use: ``threads`` when > 0, else the cores this process may run on
    less one (at least 1), which stay free for the sensor drivers, DDS and the robot's other
    processes. With every core in use, one busy neighbour stretches each parallel region to
    its slowest thread (measured on 2 cores: end-to-end p90 x1.8 to x4.9, docs/SPEED.md)."""
    if threads > 0:
        return threads
    return max(1, len(os.sched_getaffinity(0)) - 1)


def configure_process(threads: int = 0) -> int:
    """The process's start-up step: keep freed memory (``retain_freed_memory``) and run torch's
    and OpenCV's CPU kernels on ``cpu_threads(threads)`` threads; returns that count."""
    import cv2
    import torch

    retain_freed_memory()
    n = cpu_threads(threads)
    torch.set_num_threads(n)
    cv2.setNumThreads(n)
    return n


def exact_float32_on_cuda() -> None:
    """cuDNN's convolutions and cuBLAS's products in true float32 on CUDA. PyTorch lets cuDNN use
    TF32 (a 10-bit mantissa) for float32 convolutions by default, which put the guided network's
    depth up to 159 mm off the CPU's on an H200 (0.09 mm without it, at the same speed).
    Process-wide; the new switches where PyTorch has them (2.9 and later), else the old ones."""
    import torch

    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        conv.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    else:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


@contextlib.contextmanager
def signals_noted() -> Iterator[list[int]]:
    """The SIGINT and SIGTERM that arrive meanwhile, listed as they arrive; each still goes to
    the handler there was (which raises KeyboardInterrupt). Only Python handlers on the main
    thread are watched: elsewhere the list stays empty."""
    got: list[int] = []
    before = {int(s): signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    watched = {s: h for s, h in before.items() if callable(h)}
    if threading.current_thread() is not threading.main_thread():
        watched = {}

    def note(signum: int, frame: Any) -> None:
        got.append(signum)
        watched[signum](signum, frame)

    for s in watched:
        signal.signal(s, note)
    try:
        yield got
    finally:
        for s, h in watched.items():
            signal.signal(s, h)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """A SIGINT or SIGTERM that arrives meanwhile is held, then given to the handler there was
    (which raises KeyboardInterrupt) on the way out: for a step that must not be cut in two,
    such as starting a child process and keeping hold of it. Python runs its signal handlers
    on the main thread whichever thread the signal reached, so this holds them from every
    thread, where blocking them (pthread_sigmask) holds them from the main thread only. Only
    Python handlers on the main thread are held: elsewhere nothing changes."""
    before = {int(s): signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    watched = {s: h for s, h in before.items() if callable(h)}
    if threading.current_thread() is not threading.main_thread():
        watched = {}
    held: list[tuple[int, Any]] = []

    def hold(signum: int, frame: Any) -> None:
        held.append((signum, frame))

    for s in watched:
        signal.signal(s, hold)
    try:
        yield
    finally:
        for s, h in watched.items():
            signal.signal(s, h)
        if held:
            signum, frame = held[0]
            watched[signum](signum, frame)


def exit_now(status: int) -> NoReturn:
    """End the process at once with ``status``, its stdout and stderr flushed, skipping the
    interpreter's teardown (library threads, atexit handlers): for when the work is done and
    its outputs are closed, and that teardown could still die or be signalled."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
