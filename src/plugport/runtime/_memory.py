"""How a worker that died for memory is named: the limit it ran under and the peak it reached,
so an operator sees by how much it went over and what ``limits.memory_mb`` to give instead.

The peak is the best reading there is: the worker's own ``ru_maxrss`` when it answered a
``MemoryError``, the zygote's ``wait4`` reading when it was killed, else the last health ping's."""

from __future__ import annotations

import signal
from pathlib import Path

from plugport.errors import ResourceLimitExceededError
from plugport.runtime.launcher import WorkerExit

__all__ = ["OOM_SHARE", "memory_exceeded", "oom_killed", "oom_kills"]

OOM_SHARE = 0.9
"""A SIGKILL the host did not send, from a worker whose resident peak reached this share of its
address-space limit, is taken for the kernel's out-of-memory kill even where the kernel's own
count cannot be read (resident memory cannot pass the address space)."""
_VMSTAT = Path("/proc/vmstat")


def oom_kills() -> int | None:
    """The kernel's count of out-of-memory kills since boot (``oom_kill`` in /proc/vmstat,
    Linux 4.13+); None where it cannot be read."""
    try:
        text = _VMSTAT.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == "oom_kill":
            return int(value)
    return None


def memory_exceeded(
    plugin: str, limit_mb: int | None, peak_kb: int | None, how: str
) -> ResourceLimitExceededError:
    """``limit == "memory_mb"`` with ``.limit_mb`` and ``.peak_mb``, both in the message:
    ``over its memory limit: memory_mb 128 MiB, peak 131 MiB (<how>)``."""
    peak_mb = round(peak_kb / 1024, 1) if peak_kb else None
    limit = f"memory_mb {limit_mb} MiB" if limit_mb else "memory_mb"
    peak = f"peak {_mib(peak_mb)} MiB" if peak_mb is not None else "peak not measured"
    return ResourceLimitExceededError(
        plugin,
        "memory_mb",
        f"over its memory limit: {limit}, {peak} ({how}); raise limits.memory_mb or use less",
        limit_mb=limit_mb,
        peak_mb=peak_mb,
    )


def oom_killed(
    exit: WorkerExit,
    limit_mb: int | None,
    *,
    by_host: bool,
    kills_before: int | None = None,
    kills_after: int | None = None,
) -> bool:
    """Whether a worker's end was the kernel's out-of-memory kill: a SIGKILL the host did not
    send, while the kernel's OOM-kill count rose (``kills_before`` at its start, ``kills_after``
    at its end), or from a worker whose peak came within :data:`OOM_SHARE` of its limit."""
    if by_host or exit.signal != signal.SIGKILL:
        return False
    if kills_before is not None and kills_after is not None and kills_after > kills_before:
        return True
    return bool(limit_mb and exit.max_rss_kb >= OOM_SHARE * limit_mb * 1024)


def _mib(value: float) -> str:
    return f"{value:.0f}" if value == int(value) or value >= 10 else f"{value:g}"
