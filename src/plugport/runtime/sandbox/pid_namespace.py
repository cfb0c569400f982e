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

__all__ = ["DirectForker", "apply", "available", "enter_for_children", "spawn_refusal"]

NAME = "pid_namespace"
CLONE_NEWUSER = _libc.CLONE_NEWUSER
CLONE_NEWPID = _libc.CLONE_NEWPID
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


class DirectForker:
    """Root only: fork straight into a new PID namespace, with no intermediate process.

    ``unshare(CLONE_NEWPID)`` changes the namespace of the caller's *next* children and may be
    called only while that is still the caller's own; ``setns`` back to the zygote's own
    namespace right after each fork makes it callable again. The worker is then the zygote's
    child and pid 1 of a namespace of its own, and no intermediate touches (and so copies)
    the zygote's memory on its way. :meth:`create` returns None where this is not possible
    (not root, or a kernel without setns for PID namespaces): the intermediate is used.
    """

    def __init__(self, own_namespace_fd: int) -> None:
        self._own = own_namespace_fd

    @classmethod
    def create(cls) -> DirectForker | None:
        if os.geteuid() != 0:
            return None
        try:
            fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        forker = cls(fd)
        try:
            _libc.unshare(CLONE_NEWPID)
            forker._reset()
        except OSError:
            os.close(fd)
            return None
        return forker

    def fork(self, *, new_namespace: bool = True) -> int:
        """``os.fork()``, the child born pid 1 of a new PID namespace (unless told not to)."""
        if not new_namespace:
            return os.fork()
        _libc.unshare(CLONE_NEWPID)
        try:
            pid = os.fork()
        except BaseException:
            self._reset()
            raise
        if pid != 0:
            self._reset()
        return pid

    def _reset(self) -> None:
        _libc.setns(self._own, CLONE_NEWPID)


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
