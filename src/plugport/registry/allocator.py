"""The registry server's memory allocator settings, applied once at ``plugport serve``.

Why: under load the server's RSS kept growing (126 -> 149 MiB in 5 minutes in the issue's soak
test) while Python's own heap and SQLite's memory stayed flat. The growth was glibc's: each of
the sync route threadpool's threads (up to 40) gets its own malloc arena (up to 8 per core),
and once an upload's 1 MiB buffers are freed glibc raises its mmap threshold, so later large
bodies (search answers, signed indexes) are carved from those arenas and fragment them. Two
arenas and a fixed 128 KiB mmap threshold keep it flat (``benchmarks/soak.py``). An operator's
own ``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_`` or ``GLIBC_TUNABLES`` wins; elsewhere than
glibc nothing is changed."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping

__all__ = ["ARENA_MAX", "MMAP_THRESHOLD_BYTES", "tune_allocator"]

ARENA_MAX = 2
MMAP_THRESHOLD_BYTES = 128 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
_M_ARENA_MAX = -8


def tune_allocator(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Set the arena limit and the mmap threshold, unless the environment already does; what
    was set (empty off glibc)."""
    if not sys.platform.startswith("linux") or "GLIBC_TUNABLES" in environ:
        return {}
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 only glibc has it (musl's mallopt does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return {}
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    wanted = (
        ("MALLOC_ARENA_MAX", "arena_max", _M_ARENA_MAX, ARENA_MAX),
        ("MALLOC_MMAP_THRESHOLD_", "mmap_threshold_bytes", _M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
    )
    done = {}
    for variable, name, option, value in wanted:
        if variable not in environ and mallopt(option, value) == 1:
            done[name] = value
    return done
