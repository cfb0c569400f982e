"""A fork server: a small single-threaded process that has already imported the SDK and forks
one worker per plugin on request, so the host's threads and event loop are never forked and a
worker starts in milliseconds.

Run as ``python -m plugport.runtime.zygote CONTROL_FD``. Requests arrive on a SOCK_SEQPACKET
socket with the worker's channel fd attached (SCM_RIGHTS); the zygote answers with the pid and
later with how each worker ended, which only a parent can learn.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import selectors
import signal
import socket
import sys
from typing import Any

import msgspec

from plugport.runtime.protocol import WorkerSpec

__all__ = ["Exited", "Spawn", "SpawnFailed", "Spawned", "main"]

MAX_CONTROL_BYTES = 64 * 1024
_PR_SET_PDEATHSIG = 1


class Spawn(msgspec.Struct, tag="spawn", frozen=True):
    token: int
    spec: WorkerSpec


class Spawned(msgspec.Struct, tag="spawned", frozen=True):
    token: int
    pid: int


class SpawnFailed(msgspec.Struct, tag="spawn-failed", frozen=True):
    """The zygote could not start the worker asked for by ``token`` (the fork was refused, or
    no channel descriptor arrived with the request); it keeps serving other requests."""

    token: int
    reason: str


class Exited(msgspec.Struct, tag="exited", frozen=True):
    """How a worker ended: ``code`` for exit(), ``signal`` when killed (SIGSEGV, SIGKILL...)."""

    pid: int
    code: int | None
    signal: int | None


ControlMessage = Spawn | Spawned | SpawnFailed | Exited
encoder = msgspec.msgpack.Encoder()
decoder = msgspec.msgpack.Decoder(ControlMessage)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the host died before prctl took effect
        os._exit(0)


def main(control_fd: int) -> None:
    _die_with_parent()
    # Pre-import what every worker needs, once, so forks share it copy-on-write.
    import plugport.sdk  # noqa: F401
    from plugport.runtime import sandbox

    # Work every worker would otherwise repeat on its activation path: the namespace probe
    # (a fork) is cached by doctor(), and the interpreter's read-only paths never change.
    sandbox.doctor()
    read_only = sandbox.interpreter_paths()
    from plugport.runtime import worker

    # Everything above is now shared with every fork. Moving it out of the collector's reach
    # keeps a worker's garbage collections from writing to (and so copying) those pages.
    gc.freeze()
    control = socket.socket(fileno=control_fd)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ, "control")
    selector.register(wake_read, selectors.EVENT_READ, "child")
    while True:
        for key, _ in selector.select():
            if key.data == "child":
                os.read(wake_read, 4096)
                _reap(control)
                continue
            try:
                data, fds, _flags, _addr = socket.recv_fds(control, MAX_CONTROL_BYTES, 1)
            except InterruptedError:
                continue
            if not data:
                sys.exit(0)  # the host closed the control socket: shut down
            request = decoder.decode(data)
            if not isinstance(request, Spawn):
                for fd in fds:
                    os.close(fd)
                continue
            pid = _fork(control, request, fds)
            if pid is None:
                continue
            if pid == 0:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                selector.close()
                control.close()
                os.close(wake_read)
                os.close(wake_write)
                worker.run(fds[0], request.spec, read_only)
            os.close(fds[0])
            control.send(encoder.encode(Spawned(request.token, pid)))
            _reap(control)


def _fork(control: socket.socket, request: Spawn, fds: list[int]) -> int | None:
    """``os.fork()`` for ``request``; or, when the zygote cannot (the kernel dropped the
    channel descriptor, the fork is refused: EAGAIN, ENOMEM), ``None`` after answering
    :class:`SpawnFailed`, so the host is told at once and the zygote keeps serving."""
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        reason = "received no channel descriptor with the request (out of fds?)"
    else:
        try:
            return os.fork()
        except OSError as exc:
            os.close(fds[0])
            code = exc.errno or 0
            reason = f"could not fork: {errno.errorcode.get(code, code)} ({os.strerror(code)})"
    control.send(encoder.encode(SpawnFailed(request.token, reason)))
    return None


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        message: Any
        if os.WIFSIGNALED(status):
            message = Exited(pid, None, os.WTERMSIG(status))
        else:
            message = Exited(pid, os.waitstatus_to_exitcode(status), None)
        control.send(encoder.encode(message))


if __name__ == "__main__":
    main(int(sys.argv[1]))
