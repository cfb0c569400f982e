"""Layer ``namespaces``: the worker moves into its own user and network namespaces. The network
namespace holds only a loopback device that is down, so the worker has no network at all, not
even the host's 127.0.0.1; the user namespace lets an unprivileged host do that, and gives the
worker its own per-uid task count, where ``RLIMIT_NPROC`` caps the worker's threads instead of
the host user's processes.

The current uid and gid are mapped to themselves, so files the worker's user owns stay
accessible. ``RLIMIT_NPROC`` is set here, after ``unshare``, because the namespace records its
creator's limit at creation and would then cap the host user's whole process count instead.
For uid 0 the kernel does not enforce ``RLIMIT_NPROC`` at all (see ``rlimits.py``).
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from plugport.runtime.sandbox import _libc
from plugport.runtime.sandbox import _probe as probe
from plugport.runtime.sandbox._types import LayerFailedError, LayerStatus, SandboxSpec

__all__ = ["apply", "available", "enter", "kernel_facts", "map_ids"]

NAME = "namespaces"
CLONE_NEWUSER = _libc.CLONE_NEWUSER
CLONE_NEWNET = _libc.CLONE_NEWNET
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
_PROBE_TIMEOUT_S = 5.0
_probe_cache: dict[str, LayerStatus] = {}

# Sysctls that distributions use to switch unprivileged user namespaces off, with the value
# that means "off"; reported so the operator knows which knob to turn.
_SYSCTLS = {
    "kernel.unprivileged_userns_clone": "0",
    "user.max_user_namespaces": "0",
    "kernel.apparmor_restrict_unprivileged_userns": "1",
}


def kernel_facts() -> list[str]:
    """The sysctls that currently forbid user namespaces, as ``name=value``."""
    facts = []
    for name, off in _SYSCTLS.items():
        path = Path("/proc/sys", *name.split("."))
        try:
            value = path.read_text().strip()
        except OSError:
            continue
        if value == off:
            facts.append(f"{name}={value}")
    return facts


def enter(uid: int, gid: int) -> None:
    """unshare into new user+network namespaces and map ``uid``/``gid`` to themselves."""
    try:
        _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET)
    except OSError as exc:
        facts = "; ".join(kernel_facts())
        reason = f"unshare(CLONE_NEWUSER|CLONE_NEWNET) refused: {_libc.errno_name(exc.errno or 0)}"
        raise LayerFailedError(f"{reason}; {facts}" if facts else reason) from None
    map_ids(uid, gid)


def map_ids(uid: int, gid: int) -> None:
    """Map ``uid``/``gid`` to themselves in the user namespace the caller just made."""
    # A process that changed uid is not dumpable, which makes its /proc/self files root's and
    # the map writes EACCES; dumpable only for these writes, then as it was.
    dumpable = _libc.prctl(PR_GET_DUMPABLE)
    if not dumpable:
        _libc.prctl(PR_SET_DUMPABLE, 1)
    try:
        _write_maps(uid, gid)
    finally:
        if not dumpable:
            _libc.prctl(PR_SET_DUMPABLE, 0)


def _write_maps(uid: int, gid: int) -> None:
    # setgroups must be denied before an unprivileged gid_map write is accepted.
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1\n"),
        ("gid_map", f"{gid} {gid} 1\n"),
    ):
        try:
            _libc.write_proc_self(name, text)
        except FileNotFoundError:
            if name != "setgroups":  # kernels before 3.19 have no setgroups file
                raise
        except OSError as exc:
            errname = _libc.errno_name(exc.errno or 0)
            raise LayerFailedError(f"writing /proc/self/{name} refused: {errname}") from None


def available() -> LayerStatus:
    """Whether ``unshare`` works here, tried in a throwaway child so this process stays as it is.

    Cached: the answer is a property of the kernel, and a zygote that asks once spares every
    worker it forks the probe.
    """
    if NAME not in _probe_cache:
        _probe_cache[NAME] = _probe()
    return _probe_cache[NAME]


def apply(spec: SandboxSpec) -> str:
    uid, gid = os.getuid(), os.getgid()
    try:
        enter(uid, gid)
    finally:
        _libc.forget_proc_self()  # kept by the filesystem layer for these writes only
    _soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    threads = spec.max_threads if hard == resource.RLIM_INFINITY else min(spec.max_threads, hard)
    resource.setrlimit(resource.RLIMIT_NPROC, (threads, threads))
    enforced = "not enforced for uid 0" if uid == 0 else "enforced"
    return (
        f"new user+network namespaces, uid {uid} and gid {gid} mapped to themselves; "
        f"RLIMIT_NPROC {threads} ({enforced})"
    )


def _probe() -> LayerStatus:
    def attempt() -> str:
        enter(os.getuid(), os.getgid())
        return "ok"

    message = probe.in_child(attempt, _PROBE_TIMEOUT_S)
    if message == "ok":
        return LayerStatus(NAME, True, "unshare(CLONE_NEWUSER|CLONE_NEWNET) works")
    return LayerStatus(NAME, False, message or "probe child died without answering")
