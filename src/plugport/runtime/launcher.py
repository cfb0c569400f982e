"""Starting workers: the one-method launcher interface and its zygote implementation.

The host never forks itself (it has threads and an event loop); it asks the zygote, which
answers with the pid and, later, with how the worker ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from plugport.errors import PluginCrashedError
from plugport.runtime.channel import Channel, open_socket_channel
from plugport.runtime.protocol import WorkerSpec
from plugport.runtime.zygote import Exited, Spawn, Spawned, SpawnFailed, decoder, encoder

__all__ = [
    "ZYGOTE_ENVIRONMENT",
    "WorkerExit",
    "WorkerHandle",
    "WorkerLauncher",
    "ZygoteLauncher",
    "describe_exit",
    "zygote_environment",
]

T = TypeVar("T")

ZYGOTE_ENVIRONMENT = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSAFEPATH",
    "PYTHONNOUSERSITE",
    "PYTHONHASHSEED",
    "PYTHONUTF8",
    "PYTHONIOENCODING",
)
"""The host's environment variables the zygote is started with: what the interpreter needs to
start and import as the host does. Nothing else (no token, no password, no URL)."""


def zygote_environment(host: Mapping[str, str]) -> dict[str, str]:
    """The zygote's whole environment, from the host's.

    Every worker is a fork of the zygote and keeps the zygote's memory, the strings at the top of
    its first stack included: the environment it was started with. A worker scrubs its own
    environment (the sandbox's first layer), but a plugin can still read its process's memory
    (``ctypes``), so a variable the zygote was started with would be readable by every plugin."""
    kept = {name: host[name] for name in ZYGOTE_ENVIRONMENT if name in host}
    return {**kept, "PYTHONDONTWRITEBYTECODE": "1"}


@dataclass(frozen=True)
class WorkerExit:
    code: int | None
    signal: int | None
    max_rss_kb: int = 0
    """The worker's peak resident memory (``wait4``'s ``ru_maxrss``); 0 when not known."""


def describe_exit(exit: WorkerExit) -> str:
    """Why a worker ended, in words an operator can act on."""
    if exit.signal is not None:
        name = signal.Signals(exit.signal).name
        causes = {
            "SIGSEGV": "segmentation fault",
            "SIGBUS": "bus error",
            "SIGABRT": "aborted",
            "SIGKILL": "killed (SIGKILL: by the host, or by the kernel when out of memory)",
            "SIGXCPU": "CPU time limit reached",
            "SIGXFSZ": "file size limit reached",
            "SIGSYS": "forbidden system call",
        }
        return f"{causes.get(name, 'terminated')} ({name})"
    return f"exited with code {exit.code}"


@dataclass
class WorkerHandle:
    """A started worker: its channel, its pid, and a future that resolves when it ends."""

    pid: int
    channel: Channel
    exited: asyncio.Future[WorkerExit]
    killed_by_host: bool = field(default=False)

    def kill(self) -> None:
        if self.exited.done():
            return
        self.killed_by_host = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


class WorkerLauncher(Protocol):
    """Starts workers. ``launch`` must end within a deadline of its own, by a handle or an
    error: the supervisor waits on it while holding the plugin's lock."""

    async def launch(self, spec: WorkerSpec) -> WorkerHandle: ...


class ZygoteLauncher:
    """Starts the zygote on first use and asks it for workers.

    A launch waits for its answer as long as the zygote keeps answering (a burst of activations
    is served in turn, however long the queue); once the zygote has said nothing for
    ``spawn_timeout_ms`` while a launch waits (stopped, starved, its control socket full), that
    launch fails and the zygote is killed, its workers with it; the next launch starts a new
    one. Until a new zygote has answered once, it also has ``boot_timeout_ms`` to import and
    probe the sandbox."""

    def __init__(self, *, spawn_timeout_ms: int = 5000, boot_timeout_ms: int = 10_000) -> None:
        self.spawn_timeout_ms = spawn_timeout_ms
        self.boot_timeout_ms = boot_timeout_ms
        self._booted = False
        self._heard_at = 0.0  # monotonic time of the zygote's last answer (or of its start)
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._tokens = itertools.count(1)
        self._spawns: dict[int, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[WorkerExit]] = {}
        self._lock = asyncio.Lock()
        self._send_lock = asyncio.Lock()

    @property
    def started(self) -> bool:
        return self._process is not None and self._process.poll() is None

    async def start(self) -> None:
        async with self._lock:
            if self.started:
                return
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "plugport.runtime.zygote", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                env=zygote_environment(os.environ),
            )
            theirs.close()
            self._heard_at = time.monotonic()
            ours.setblocking(False)
            self._control = ours
            asyncio.get_running_loop().add_reader(ours.fileno(), self._on_control)

    def _on_control(self) -> None:
        while self._control is not None:
            try:
                data = self._control.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._zygote_gone()
                return
            message = decoder.decode(data)
            self._booted, self._heard_at = True, time.monotonic()
            if isinstance(message, Spawned):
                self._exits[message.pid] = asyncio.get_running_loop().create_future()
                future = self._spawns.pop(message.token, None)
                if future is not None and not future.done():
                    future.set_result(message.pid)
            elif isinstance(message, SpawnFailed):
                future = self._spawns.pop(message.token, None)
                if future is not None and not future.done():
                    future.set_exception(ChildProcessError(f"the zygote {message.reason}"))
            elif isinstance(message, Exited):
                exit_future = self._exits.pop(message.pid, None)
                if exit_future is not None and not exit_future.done():
                    exit_future.set_result(
                        WorkerExit(message.code, message.signal, message.max_rss_kb)
                    )

    def _zygote_gone(self) -> None:
        self._booted = False  # the next one boots first
        if self._control is not None:
            asyncio.get_running_loop().remove_reader(self._control.fileno())
            self._control.close()
            self._control = None
        for spawn in self._spawns.values():
            if not spawn.done():
                spawn.set_exception(ChildProcessError("the zygote exited"))
        for exit_future in self._exits.values():
            if not exit_future.done():  # its parent is gone, so it was killed with it
                exit_future.set_result(WorkerExit(None, signal.SIGKILL))
        self._spawns.clear()
        self._exits.clear()

    @property
    def pid(self) -> int | None:
        """The zygote's pid while it runs (for operators and benchmarks)."""
        return self._process.pid if self.started and self._process is not None else None

    async def launch(self, spec: WorkerSpec) -> WorkerHandle:
        """A new worker for ``spec``; any failure on the way is a :class:`PluginCrashedError`
        and leaves no socket or pending request behind."""
        host_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        token = next(self._tokens)
        try:
            await self.start()
            zygote = self._process
            spawned: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._spawns[token] = spawned
            since = time.monotonic()
            try:
                request = self._request(encoder.encode(Spawn(token, spec)), worker_end.fileno())
                await self._while_answering(request, since)
                worker_end.close()
                pid = await self._while_answering(spawned, since)
            except TimeoutError:
                await self._kill(zygote)
                raise PluginCrashedError(
                    spec.plugin,
                    f"could not start a worker: the zygote did not answer for "
                    f"{self.spawn_timeout_ms} ms (spawn_timeout_ms); it was killed, and a new "
                    "one starts with the next activation",
                    kind="launch",
                ) from None
            channel = await open_socket_channel(host_end)
        except PluginCrashedError:
            host_end.close()
            raise
        except (OSError, ChildProcessError) as exc:
            host_end.close()
            raise PluginCrashedError(
                spec.plugin, f"could not start a worker: {exc}", kind="launch"
            ) from exc
        except BaseException:
            host_end.close()  # cancelled (a shutdown mid-start): the socket must not leak
            raise
        finally:
            worker_end.close()
            self._spawns.pop(token, None)
        exited = self._exits.get(pid) or asyncio.get_running_loop().create_future()
        return WorkerHandle(pid, channel, exited)

    async def _while_answering(self, work: Awaitable[T], since: float) -> T:
        """``work``'s result, waited for as long as the zygote keeps answering anyone;
        :class:`TimeoutError` once it has been silent for the allowed time since ``since``."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                allowed_ms = self.spawn_timeout_ms + (0 if self._booted else self.boot_timeout_ms)
                silent_since = max(since, self._heard_at)
                remaining_s = silent_since + allowed_ms / 1000 - time.monotonic()
                if remaining_s <= 0:
                    raise TimeoutError
                done, _ = await asyncio.wait({task}, timeout=remaining_s)
                if done:
                    return task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _kill(self, zygote: subprocess.Popen[bytes] | None) -> None:
        """End a zygote that stopped answering (once, however many launches saw it) and fail
        what was waiting on it; its workers die with it (their parent-death signal)."""
        if zygote is None or zygote is not self._process:
            return  # another launch already replaced it
        zygote.kill()
        self._zygote_gone()
        self._process = None
        await asyncio.to_thread(zygote.wait)

    async def _request(self, payload: bytes, fd: int) -> None:
        """Send one spawn request, waiting for room when many are queued (the control socket
        is non-blocking, and a burst of activations can fill its buffer)."""
        loop = asyncio.get_running_loop()
        async with self._send_lock:  # one writer callback per fd: take turns
            while True:
                if self._control is None:
                    raise ChildProcessError("the zygote is not running")
                try:
                    socket.send_fds(self._control, [payload], [fd])
                    return
                except BlockingIOError:
                    pass
                writable: asyncio.Future[None] = loop.create_future()
                control_fd = self._control.fileno()
                loop.add_writer(control_fd, _settle, writable)
                try:
                    await writable
                finally:
                    loop.remove_writer(control_fd)

    async def close(self) -> None:
        if self._control is not None:
            asyncio.get_running_loop().remove_reader(self._control.fileno())
            self._control.close()
            self._control = None
        if self._process is not None:
            try:
                await asyncio.wait_for(asyncio.to_thread(self._process.wait), timeout=2)
            except TimeoutError:
                self._process.kill()
                await asyncio.to_thread(self._process.wait)
            self._process = None


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
