"""Layer ``identity``: the worker never runs as the host's privileged user. When the host is root,
each plugin gets an unprivileged uid of its own from a configured range (allocated once and kept,
like systemd's ``DynamicUser``; see ``runtime/_uids.py``), which owns that plugin's data dir and
nothing else; the worker switches to it here, after the filesystem view was built (binding host
paths needs root) and before the user namespace is made. Same-uid checks in the kernel (signals,
``prlimit``, ``ptrace``, ``/proc``) then fail against the host, the zygote and every sibling, and
``RLIMIT_NPROC`` is enforced. When the host is not root, the worker keeps the host's uid, which is
unprivileged already.
"""

from __future__ import annotations

import os

from plugport.runtime.sandbox import _libc, process
from plugport.runtime.sandbox._types import LayerFailedError, LayerStatus, SandboxSpec

__all__ = ["apply", "available"]

NAME = "identity"


def available() -> LayerStatus:
    if os.geteuid() == 0:
        return LayerStatus(
            NAME, True, "host is root: each plugin runs as its own unprivileged uid and gid"
        )
    return LayerStatus(NAME, True, f"host runs as uid {os.geteuid()}: workers keep that uid")


def apply(spec: SandboxSpec) -> str:
    if spec.uid is None or spec.gid is None:
        if os.geteuid() == 0:
            raise LayerFailedError("the host is root and no unprivileged uid was given")
        return f"uid {os.getuid()}, gid {os.getgid()}: the host's own, unprivileged"
    if os.geteuid() != 0:
        if (os.getuid(), os.getgid()) == (spec.uid, spec.gid):
            return f"uid {spec.uid}, gid {spec.gid}"
        raise LayerFailedError(f"cannot switch to uid {spec.uid}: the host is not root")
    death_signal = process.parent_death_signal()
    os.setgroups([])
    os.setresgid(spec.gid, spec.gid, spec.gid)
    os.setresuid(spec.uid, spec.uid, spec.uid)
    if os.getresuid() != (spec.uid,) * 3 or os.getgroups():
        raise LayerFailedError(f"uid {spec.uid} did not take hold")
    if death_signal:  # the kernel clears it when the credentials change
        _libc.prctl(process.PR_SET_PDEATHSIG, death_signal)
    return f"uid {spec.uid}, gid {spec.gid}, no supplementary groups (the host is root)"
