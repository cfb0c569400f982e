"""Layer ``rlimits``: kernel-enforced ceilings on address space, CPU time, open files and file
size, so a runaway plugin fails its own allocation or write instead of starving the host.

What stops a fork bomb is not ``RLIMIT_NPROC``: it is ignored for uid 0 and otherwise counts every
process of the uid, host included. The seccomp layer refuses new processes outright, and
``RLIMIT_NPROC`` is set inside the worker's own user namespace (``namespaces.py``) to cap threads.
Each thread also reserves a stack (``RLIMIT_STACK``, 8 MiB by default) of address space, so
``RLIMIT_AS`` bounds the thread count even where ``RLIMIT_NPROC`` is not enforced.
"""

from __future__ import annotations

import resource

from plugport.runtime.sandbox._types import MIB, LayerStatus, SandboxSpec

__all__ = ["apply", "available", "limits_for"]

NAME = "rlimits"


def limits_for(spec: SandboxSpec) -> dict[int, tuple[int, int]]:
    """Resource -> (soft, hard). CPU gets one second of grace: SIGXCPU at the soft limit (the
    supervisor can see why), SIGKILL at the hard one."""
    return {
        resource.RLIMIT_AS: (spec.memory_mb * MIB, spec.memory_mb * MIB),
        resource.RLIMIT_CPU: (spec.cpu_seconds, spec.cpu_seconds + 1),
        resource.RLIMIT_NOFILE: (spec.max_open_files, spec.max_open_files),
        resource.RLIMIT_FSIZE: (spec.max_file_bytes, spec.max_file_bytes),
        resource.RLIMIT_CORE: (0, 0),
    }


def available() -> LayerStatus:
    note = "; RLIMIT_NPROC holds: workers never run as uid 0 (see identity)"
    return LayerStatus(NAME, True, f"setrlimit(2) AS, CPU, NOFILE, FSIZE, CORE{note}")


def apply(spec: SandboxSpec) -> str:
    for limit, (wanted_soft, wanted_hard) in limits_for(spec).items():
        _current_soft, current_hard = resource.getrlimit(limit)
        hard, soft = wanted_hard, wanted_soft
        if current_hard != resource.RLIM_INFINITY:
            # Never ask to raise a hard limit: that needs CAP_SYS_RESOURCE, and the tighter
            # limit the host already had is the one that should win.
            hard = min(wanted_hard, current_hard)
            soft = min(wanted_soft, hard)
        resource.setrlimit(limit, (soft, hard))
    return (
        f"AS {spec.memory_mb} MiB, CPU {spec.cpu_seconds} s, NOFILE {spec.max_open_files}, "
        f"FSIZE {spec.max_file_bytes} bytes, no core dumps"
    )
