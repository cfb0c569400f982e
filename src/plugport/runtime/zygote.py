"""A fork server: a small single-threaded process that has already imported the SDK and forks
one worker per plugin on request, so the host's threads and event loop are never forked and a
worker starts in milliseconds.

Run as ``python -m plugport.runtime.zygote CONTROL_FD``. Requests arrive on a SOCK_SEQPACKET
socket with the worker's channel fd attached (SCM_RIGHTS); the zygote answers with the pid and
later with how each worker ended, which only a parent can learn.

Each worker is born pid 1 of its own PID namespace: the zygote forks an intermediate that makes
the namespace and forks the worker, reports the worker's pid and exits; the zygote is a child
subreaper, so it adopts the worker and still learns how it ends. The worker waits for the
zygote's go, sent once the zygote has reaped the intermediate (so the zygote is the worker's
parent by then), before it sets its parent-death signal, which would otherwise fire on the
intermediate's exit; then it checks the zygote is still there through a pipe only the zygote
holds open for writing.

When it runs as root, the zygote lives in a private mount namespace of its own and mounts the
plugins' data volumes there (``runtime/volumes.py``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
import os
import select
import selectors
import signal
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import msgspec

from plugport.runtime.protocol import WorkerSpec

__all__ = ["Exited", "Spawn", "SpawnFailed", "Spawned", "main"]

MAX_CONTROL_BYTES = 64 * 1024
SPAWN_REPORT_TIMEOUT_S = 5.0
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PID = struct.Struct("i")


class Spawn(msgspec.Struct, tag="spawn", frozen=True):
    token: int
    spec: WorkerSpec


class Spawned(msgspec.Struct, tag="spawned", frozen=True):
    token: int
    pid: int


class SpawnFailed(msgspec.Struct, tag="spawn-failed", frozen=True):
    """The zygote could not start the worker asked for by ``token`` (the fork was refused, no
    channel descriptor arrived with the request, its data volume could not be mounted, no pid
    came back in time); it keeps serving other requests."""

    token: int
    reason: str


class Exited(msgspec.Struct, tag="exited", frozen=True):
    """How a worker ended: ``code`` for exit(), ``signal`` when killed (SIGSEGV, SIGKILL...),
    and its peak resident memory from ``wait4`` (KiB), which names how far over its memory
    limit a worker went when that is why it died."""

    pid: int
    code: int | None
    signal: int | None
    max_rss_kb: int = 0


ControlMessage = Spawn | Spawned | SpawnFailed | Exited
encoder = msgspec.msgpack.Encoder()
decoder = msgspec.msgpack.Decoder(ControlMessage)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the host died before prctl took effect
        os._exit(0)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _private_mounts() -> Any:
    """As root: a mount namespace of the zygote's own for the plugins' data volumes (None when
    volumes cannot be used here, and the host's measurement is the fallback)."""
    from plugport.runtime import volumes
    from plugport.runtime.sandbox import filesystem

    if volumes.unsupported_reason() is not None:
        return None
    try:
        filesystem.enter_private_mount_namespace()
    except OSError:
        return None
    return volumes.Mounts()


def _preload() -> Any:
    """Pre-import what every worker needs, once, so forks share it copy-on-write, and do the
    work every worker would otherwise repeat on its activation path: the namespace probe (a
    fork) is cached by doctor(), and the interpreter's read-only paths never change."""
    import plugport.sdk  # noqa: F401
    from plugport.runtime import sandbox

    sandbox.doctor()
    read_only = sandbox.interpreter_paths()
    from plugport.runtime.sandbox import filesystem, seccomp

    seccomp.prepare(own_pid=1)
    filesystem.prepare(read_only)
    from plugport import _loop
    from plugport.runtime import worker  # noqa: F401

    _loop.new_event_loop().close()  # imports the loop's module (uvloop) here, shared
    return read_only


def main(control_fd: int) -> None:
    _die_with_parent()
    read_only = _preload()

    # Everything above is now shared with every fork. Moving it out of the collector's reach
    # keeps a worker's garbage collections from writing to (and so copying) those pages.
    mounts = _private_mounts()
    from plugport.runtime.sandbox.pid_namespace import DirectForker

    forker = DirectForker.create()
    gc.freeze()
    control = socket.socket(fileno=control_fd)
    life = os.pipe()  # the write end stays open here only: a worker reads EOF once we are gone
    cpu_limits: dict[int, int] = {}  # worker pid -> its CPU seconds, to name how it ended
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
                _reap(control, cpu_limits)
                continue
            try:
                data, fds, _flags, _addr = socket.recv_fds(control, MAX_CONTROL_BYTES, 1)
            except InterruptedError:
                continue
            if not data:
                sys.exit(0)  # the host closed the control socket: shut down
            request = decoder.decode(data)
            if not isinstance(request, Spawn) or len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                if isinstance(request, Spawn):
                    reason = "received no channel descriptor with the request (out of fds?)"
                    control.send(encoder.encode(SpawnFailed(request.token, reason)))
                continue

            def forget_loop() -> None:  # in the intermediate: none of this is the worker's
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                selector.close()
                control.close()
                os.close(wake_read)
                os.close(wake_write)

            _spawn(
                request,
                fds[0],
                control=control,
                read_only=read_only,
                life=life,
                mounts=mounts,
                forget_loop=forget_loop,
                cpu_limits=cpu_limits,
                forker=forker,
            )
            _reap(control, cpu_limits)


def _spawn(
    request: Spawn,
    channel_fd: int,
    *,
    control: socket.socket,
    read_only: Any,
    life: tuple[int, int],
    mounts: Any,
    forget_loop: Callable[[], None],
    cpu_limits: dict[int, int],
    forker: Any,
) -> None:
    """Start one worker, forked straight into its PID namespace (root) or through an
    intermediate (see the module docstring), and answer."""
    spec = request.spec
    volume = False
    if mounts is not None and spec.data_volume:
        try:
            mounts.ensure(spec.data_volume, spec.data_dir)
            volume = True
        except OSError as exc:
            os.close(channel_fd)
            control.send(encoder.encode(SpawnFailed(request.token, f"data volume: {exc}")))
            return
    if forker is not None:
        _spawn_direct(
            request,
            channel_fd,
            forker,
            control=control,
            read_only=read_only,
            life=life,
            volume=volume,
            forget_loop=forget_loop,
            cpu_limits=cpu_limits,
        )
        return
    report_read, report_write = os.pipe()
    go_read, go_write = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        _fork_failed(
            control, request, exc, (channel_fd, report_read, report_write, go_read, go_write)
        )
        return
    if pid == 0:
        os.close(report_read)
        os.close(go_write)
        os.close(life[1])
        forget_loop()
        _intermediate(
            report_write,
            lambda: _run_worker(
                go_read, life[0], channel_fd, spec, read_only=read_only, volume=volume
            ),
            new_pid_ns="pid_namespace" not in spec.without_layers,
        )
    os.close(channel_fd)
    os.close(report_write)
    os.close(go_read)
    try:
        ready, _, _ = select.select([report_read], [], [], SPAWN_REPORT_TIMEOUT_S)
        data = os.read(report_read, _PID.size) if ready else b""
    finally:
        os.close(report_read)
    if len(data) != _PID.size:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    # Reaped here, so the worker is ours (adopted) before it is told to go on.
    os.waitpid(pid, 0)
    if len(data) != _PID.size:
        os.close(go_write)
        reason = f"no worker pid within {SPAWN_REPORT_TIMEOUT_S:g} s"
        control.send(encoder.encode(SpawnFailed(request.token, reason)))
        return
    worker_pid = _PID.unpack(data)[0]
    os.write(go_write, b"1")
    os.close(go_write)
    cpu_limits[worker_pid] = spec.cpu_seconds
    control.send(encoder.encode(Spawned(request.token, worker_pid)))


def _fork_failed(
    control: socket.socket, request: Spawn, exc: OSError, fds: tuple[int, ...]
) -> None:
    """The fork was refused (EAGAIN, ENOMEM): close what the spawn opened, say so, go on."""
    for fd in fds:
        os.close(fd)
    code = exc.errno or 0
    reason = f"could not fork: {errno.errorcode.get(code, code)} ({os.strerror(code)})"
    control.send(encoder.encode(SpawnFailed(request.token, reason)))


def _spawn_direct(
    request: Spawn,
    channel_fd: int,
    forker: Any,
    *,
    control: socket.socket,
    read_only: Any,
    life: tuple[int, int],
    volume: bool,
    forget_loop: Callable[[], None],
    cpu_limits: dict[int, int],
) -> None:
    """The worker is the zygote's own child, pid 1 of a new PID namespace: its parent is the
    zygote from the start, so the go is sent at once."""
    spec = request.spec
    go_read, go_write = os.pipe()
    try:
        pid = forker.fork(new_namespace="pid_namespace" not in spec.without_layers)
    except OSError as exc:
        _fork_failed(control, request, exc, (channel_fd, go_read, go_write))
        return
    if pid == 0:
        os.close(go_write)
        os.close(life[1])
        forget_loop()
        _run_worker(go_read, life[0], channel_fd, spec, read_only=read_only, volume=volume)
    os.close(channel_fd)
    os.close(go_read)
    os.write(go_write, b"1")
    os.close(go_write)
    cpu_limits[pid] = spec.cpu_seconds
    control.send(encoder.encode(Spawned(request.token, pid)))


def _intermediate(report: int, run_worker: Callable[[], NoReturn], *, new_pid_ns: bool) -> NoReturn:
    """Make the PID namespace, fork the worker into it as its pid 1, report its pid, exit.
    (``new_pid_ns`` is false only when the attack suite or a benchmark leaves the layer out.)"""
    from plugport.runtime.sandbox import pid_namespace
    from plugport.runtime.sandbox._types import LayerFailedError

    try:
        if new_pid_ns:
            pid_namespace.enter_for_children()
    except LayerFailedError as exc:
        pid_namespace.spawn_refusal = exc.reason  # the worker reports it as its layer
    worker = os.fork()
    if worker == 0:
        os.close(report)
        run_worker()
    os.write(report, _PID.pack(worker))
    os._exit(0)


def _run_worker(
    go: int, life: int, channel_fd: int, spec: WorkerSpec, *, read_only: Any, volume: bool
) -> NoReturn:
    """In the worker: wait for the zygote's go (sent once it has reaped the intermediate, so the
    zygote is now our parent), take the parent-death signal, check the zygote is still alive
    (``life`` reads EOF once it is gone), then sandbox and serve."""
    from plugport.runtime import worker

    go_on = os.read(go, 1)
    os.close(go)
    if not go_on:  # the zygote gave up on this spawn, or is gone
        os._exit(0)
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    gone, _, _ = select.select([life], [], [], 0)
    if gone:
        os._exit(0)
    os.close(life)
    worker.run(channel_fd, spec, read_only, volume=volume)


def _reap(control: socket.socket, cpu_limits: dict[int, int]) -> None:
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        cpu_limit = cpu_limits.pop(pid, None)
        message: Any
        if os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            used = usage.ru_utime + usage.ru_stime
            if number == signal.SIGKILL and cpu_limit is not None and used >= cpu_limit:
                # pid 1 of a PID namespace ignores SIGXCPU; the kernel's SIGKILL at the hard
                # limit is what ended it, and its CPU time says why.
                number = signal.SIGXCPU
            message = Exited(pid, None, number, usage.ru_maxrss)
        else:
            message = Exited(pid, os.waitstatus_to_exitcode(status), None, usage.ru_maxrss)
        control.send(encoder.encode(message))


if __name__ == "__main__":
    main(int(sys.argv[1]))
