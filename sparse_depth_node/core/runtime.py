"""Process-wide start-up settings, applied once by the node and the CLI before any work:
the memory allocator and the CPU thread counts of torch and OpenCV."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def retain_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the kernel.

    A CPU forward pass allocates and frees full-frame feature maps (25 MB each on KITTI);
    by default glibc unmaps or trims them, so every frame page-faults them in again, which
    cost about a third of the network's time on the benchmark machine. This sets the trim
    threshold to 1 GiB and the mmap threshold to its 32 MiB maximum; peak RSS does not grow.
    Process-wide, so done once per process (finding libc runs ``ldconfig``); False (and
    nothing changed) where libc has no ``mallopt``.
    """
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_trim_threshold, 1 << 30)) and bool(mallopt(m_mmap_threshold, 32 << 20))


def configure_process(threads: int = 0) -> None:
    """The process's start-up step: keep freed memory (``retain_freed_memory``) and, with
    ``threads`` > 0, run torch's CPU kernels on that many threads."""
    retain_freed_memory()
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
