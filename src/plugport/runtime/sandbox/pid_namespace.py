"""Layer ``pid_namespace``: every worker is process 1 of a PID namespace of its own, so no other
process (the host, the zygote, a sibling plugin) can even be named from inside: a pid-taking
system call the filter missed, or a same-uid check the kernel passes, finds nothing to act on.

A process cannot move itself into a new PID namespace; only its children are born there. So the
zygote forks an intermediate that calls :func:`enter_for_children` and forks the worker, which
is pid 1 of the new namespace, then exits; the zygote is a child subreaper and adopts the worker
(see ``zygote.py``). When the host is not root, the namespace is created together with a user
namespace that maps the host's uid to itself, since ``CLONE_NEWPID`` needs ``CAP_SYS_ADMIN``.

:func:`apply` runs in the worker and only checks the fact (pid 1) and reports it; the reason a
spawn could not make the namespace is carried over in :data:`spawn_refusal`.
"""

from __future__ import annotations

import os

from plugport.runtime.sandbox import _libc, namespaces
from plugport.runtime.sandbox import _probe as probe
from plugport.runtime.sandbox._types import LayerFailedError, LayerStatus, SandboxSpec

__all__ = ["apply", "available", "enter_for_children", "spawn_refusal"]

NAME = "pid_namespace"
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
_PROBE_TIMEOUT_S = 5.0
_probe_cache: dict[str, LayerStatus] = {}

spawn_refusal: str | None = None
"""Set in the intermediate when :func:`enter_for_children` failed; the worker inherits it."""


def enter_for_children() -> None:
    """Make the next child of the calling process pid 1 of a new PID namespace.

    Raises :class:`LayerFailedError` with the kernel's answer when it cannot.
    """
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWPID if os.geteuid() == 0 else CLONE_NEWPID | CLONE_NEWUSER
    try:
        _libc.unshare(flags)
    except OSError as exc:
        what = "CLONE_NEWPID" if flags == CLONE_NEWPID else "CLONE_NEWUSER|CLONE_NEWPID"
        raise LayerFailedError(
            f"unshare({what}) refused: {_libc.errno_name(exc.errno or 0)}"
        ) from None
    if flags & CLONE_NEWUSER:
        namespaces.map_ids(uid, gid)


def available() -> LayerStatus:
    """Whether a child can be born into a new PID namespace here, tried in throwaway processes
    (cached: a property of the kernel, asked once by the zygote)."""
    if NAME not in _probe_cache:
        _probe_cache[NAME] = _probe()
    return _probe_cache[NAME]


def apply(spec: SandboxSpec) -> str:
    if os.getpid() != 1:
        raise LayerFailedError(spawn_refusal or "the worker was not started in a PID namespace")
    return "own PID namespace: the worker is pid 1 and no other process is visible or nameable"


def _probe() -> LayerStatus:
    def attempt() -> str:
        enter_for_children()
        child = os.fork()
        if child == 0:  # pragma: no cover - the grandchild
            os._exit(0 if os.getpid() == 1 else 1)
        _, status = os.waitpid(child, 0)
        return "ok" if os.waitstatus_to_exitcode(status) == 0 else "the child was not pid 1"

    message = probe.in_child(attempt, _PROBE_TIMEOUT_S)
    if message == "ok":
        return LayerStatus(NAME, True, "a worker is born as pid 1 of its own PID namespace")
    return LayerStatus(NAME, False, message or "probe child did not answer")
