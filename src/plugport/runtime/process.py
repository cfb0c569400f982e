"""The host's side of one running worker: calls out with timeouts, capability requests in
(each handed to the broker), and every way a worker can misbehave turned into our errors."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from plugport.errors import (
    CrashKind,
    PermissionDeniedError,
    PluginCallError,
    PluginCrashedError,
    PlugportError,
    ResourceLimitExceededError,
    SandboxUnavailableError,
)
from plugport.runtime._memory import memory_exceeded, oom_killed, oom_kills
from plugport.runtime._rate import TokenBucket
from plugport.runtime._tracebacks import MAX_TRACEBACK_CHARS
from plugport.runtime.channel import ChannelClosedError
from plugport.runtime.launcher import WorkerExit, WorkerHandle, describe_exit
from plugport.runtime.protocol import (
    Call,
    CapabilityCall,
    Failure,
    FrameError,
    Log,
    Ping,
    Pong,
    Ready,
    Result,
    Shutdown,
)

__all__ = ["Broker", "CallResult", "PluginProcess"]

_DRAIN_POLL_S = 0.05
"""How often a drain looks again while no call ends: a caller that gave up leaves an answer
that nobody awaits, so waiting only for answers could outlast the last real call."""

Broker = Callable[[str, str, list[Any], dict[str, Any]], Awaitable[Any]]
"""``broker(capability, method, args, kwargs)``: checks the grant, does the work or raises."""

logger = logging.getLogger("plugport.runtime")
_EXIT_GRACE_S = 2.0


class CallResult(NamedTuple):
    """A call's value and the time the handler took inside the worker. A tuple: built once
    per call, on the hot path, where a frozen dataclass's ``__init__`` costs a microsecond."""

    value: Any
    elapsed_us: int


class PluginProcess:
    """One worker. Not restarted here: the supervisor decides what happens after a failure."""

    def __init__(
        self,
        plugin: str,
        handle: WorkerHandle,
        broker: Broker,
        *,
        max_capability_calls: int = 32,
        on_violation: Callable[[str], None] | None = None,
        on_limit: Callable[[str, str], None] | None = None,  # (capability, reason)
        on_log: Callable[[Log], None] | None = None,  # each line let through, rate limit applied
        log_lines_per_s: float = 50.0,
        log_burst: int = 200,
        memory_mb: int | None = None,
    ) -> None:
        self.plugin = plugin
        self.memory_mb = memory_mb
        """The worker's address-space limit, named when it dies for memory."""
        self.peak_rss_kb = 0
        """The worker's peak resident memory at its last health ping (KiB)."""
        self._oom_kills = oom_kills()
        self.handle = handle
        self._broker = broker
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._abandoned: set[int] = set()
        # The loop this worker is served on, kept: asking for the running loop costs a system
        # call (the pid is checked, for forks) on every call otherwise.
        self._loop = loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[Ready] = loop.create_future()
        self._capability_slots = max_capability_calls
        self._capability_tasks: set[asyncio.Task[None]] = set()
        self._on_violation = on_violation
        self._on_limit = on_limit
        self._on_log = on_log
        self._limit_reported_at = -1.0
        self._lost: asyncio.Task[None] | None = None
        self._deadlines: dict[int, tuple[float, str, str, int]] = {}
        self._watchdog: asyncio.TimerHandle | None = None
        self._watchdog_at = math.inf
        self._death: PlugportError | None = None
        self._log_bucket = TokenBucket(log_lines_per_s, log_burst)
        self.died: asyncio.Future[PlugportError] = loop.create_future()
        """Resolves with the reason once the worker is gone, however it went."""
        self.violation: str | None = None
        self.ready: Ready | None = None

    @property
    def alive(self) -> bool:
        return self._death is None and not self.handle.exited.done()

    async def start(self, timeout_s: float = 10.0) -> Ready:
        """Wait for the worker to sandbox itself, load the plugin and say it is ready."""
        self.handle.channel.listen(self)
        try:
            self.ready = await asyncio.wait_for(asyncio.shield(self._ready), timeout_s)
        except TimeoutError:
            self.handle.kill()
            raise ResourceLimitExceededError(
                self.plugin, "activation", f"not ready within {timeout_s:g} s"
            ) from None
        return self.ready

    async def call(
        self,
        kind: str,
        name: str,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        timeout_ms: int,
    ) -> CallResult:
        """Run a handler in the worker; past ``timeout_ms`` the worker is killed (SIGKILL)."""
        if not self.alive:
            raise self._death or PluginCrashedError(self.plugin, "not running", kind="lost")
        call_id = next(self._ids)
        loop = self._loop
        future: asyncio.Future[Any] = loop.create_future()
        self._pending[call_id] = future
        # One watchdog timer per worker rather than one per call (wait_for() or call_later()
        # cost a handle and a heap entry on the hot path); on expiry the worker is killed,
        # which fails this call (and any other) with the reason.
        deadline = loop.time() + timeout_ms / 1000
        self._deadlines[call_id] = (deadline, kind, name, timeout_ms)
        if deadline < self._watchdog_at:
            self._arm_watchdog(loop, deadline)
        try:
            channel = self.handle.channel
            message = Call(call_id, kind, name, args or [], kwargs or {})
            if not channel.send_nowait(message):  # only while the worker is not reading
                await channel.send(message)
            reply = await future
        except ChannelClosedError:
            await self._crashed()
            raise self._death from None  # type: ignore[misc]
        finally:
            del self._deadlines[call_id]
            self._pending.pop(call_id, None)
            if not future.done():  # the caller gave up: its late answer is not a violation
                self._abandoned.add(call_id)
        if isinstance(reply, Result):
            return CallResult(reply.value, reply.elapsed_us)
        raise self._translate(reply)

    async def ping(self, timeout_s: float = 2.0) -> Pong:
        """The worker's answer within ``timeout_s`` (sending included: a worker that stopped
        reading fills the socket), else :class:`TimeoutError`; the caller decides what then."""
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            async with asyncio.timeout(timeout_s):
                await self.handle.channel.send(Ping(call_id))
                pong: Pong = await asyncio.shield(future)
        except ChannelClosedError:
            await self._crashed()
            raise self._death from None  # type: ignore[misc]
        finally:
            self._pending.pop(call_id, None)
            if not future.done():
                self._abandoned.add(call_id)
        self.peak_rss_kb = max(self.peak_rss_kb, pong.rss_kb)
        return pong

    async def stop(self, deadline_ms: int = 2000) -> str:
        """Ask for ``cleanup()`` and exit; kill the worker if it does not finish in time.
        Returns what happened, for the audit log."""
        outcome = "the worker was not running"
        if self.alive:
            call_id = next(self._ids)
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._pending[call_id] = future
            try:
                async with asyncio.timeout(deadline_ms / 1000 + 0.5):
                    await self.handle.channel.send(Shutdown(call_id, deadline_ms))
                    reply = await asyncio.shield(future)
                if isinstance(reply, Failure):
                    outcome = f"cleanup() failed ({reply.type}: {reply.message[:200]})"
                else:
                    outcome = "cleanup() finished"
                await asyncio.wait_for(asyncio.shield(self.handle.exited), _EXIT_GRACE_S)
            except TimeoutError:
                outcome = f"cleanup() did not finish within {deadline_ms} ms; killed"
            except (ChannelClosedError, PlugportError):
                outcome = "the worker ended before cleanup()"
            finally:
                self._pending.pop(call_id, None)
        self._die(self._death or PluginCrashedError(self.plugin, "stopped", kind="stopped"))
        self._fail_pending()
        self.handle.channel.close()
        if self._lost is not None:
            self._lost.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lost
        for task in list(self._capability_tasks):
            task.cancel()
        return outcome

    def _arm_watchdog(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._watchdog_at = when
        self._watchdog = loop.call_at(when, self._watch_deadlines)

    def _watch_deadlines(self) -> None:
        """The earliest deadline came: kill the worker if a call is past its own, else sleep
        until the next one (calls that finished took their deadlines with them)."""
        self._watchdog, self._watchdog_at = None, math.inf
        if not self._deadlines:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        earliest = min(self._deadlines.values())
        if earliest[0] <= now:
            _, kind, name, timeout_ms = earliest
            limit = f"{kind} {name!r} ran over {timeout_ms} ms"
            self._die(ResourceLimitExceededError(self.plugin, "timeout_ms", limit))
            return
        self._arm_watchdog(loop, earliest[0])

    def terminate(self, error: PlugportError) -> None:
        """Kill the worker (SIGKILL) now, recording ``error`` as why; calls in flight fail."""
        self._die(error)

    def calls_in_flight(self) -> list[asyncio.Future[Any]]:
        """The answers awaited by calls running now (pings and a stop not included): what a hot
        swap's drain waits for before it stops this worker."""
        return [f for i, f in self._pending.items() if i in self._deadlines and not f.done()]

    async def drain(self, deadline_s: float, overdue: PlugportError) -> tuple[int, int]:
        """Wait for the calls running now (and those reaching this worker meanwhile) until
        ``deadline_s``; end the ones still running then with ``overdue``, leaving the worker
        up to be stopped. Returns how many finished and how many were ended."""
        loop = self._loop
        until = loop.time() + deadline_s
        seen: set[asyncio.Future[Any]] = set()
        while pending := self.calls_in_flight():
            seen.update(pending)
            left = until - loop.time()
            if left <= 0:
                ended = self.end_calls(overdue)
                return len(seen) - ended, ended
            await asyncio.wait([*pending, self.died], timeout=min(left, _DRAIN_POLL_S))
        return len(seen), 0

    def end_calls(self, error: PlugportError) -> int:
        """Fail the calls still running with ``error`` and leave the worker up (a hot swap's
        drain ran out; the worker is stopped next, with ``cleanup()``): their answers, should
        they come, are dropped, not taken for a protocol violation. Returns how many ended."""
        ended = 0
        for call_id in list(self._deadlines):
            future = self._pending.get(call_id)
            if future is not None and not future.done():
                self._abandoned.add(call_id)
                future.set_exception(error)
                ended += 1
        return ended

    # --- inside ---------------------------------------------------------------------------------

    def _translate(self, failure: Failure) -> PlugportError:
        if failure.type == "MemoryError":
            peak = failure.details.get("peak_rss_kb")
            peak_kb = peak if isinstance(peak, int) and peak > 0 else self.peak_rss_kb
            return memory_exceeded(
                self.plugin,
                self.memory_mb,
                peak_kb,
                "MemoryError: an allocation would pass the limit",
            )
        if failure.type == "FrameTooLargeError":  # an answer the worker could not send
            return ResourceLimitExceededError(self.plugin, "max_frame_bytes", failure.message)
        if failure.type == "SandboxUnavailableError":
            layer = str(failure.details.get("layer", "?"))
            return SandboxUnavailableError(
                layer, str(failure.details.get("reason", failure.message))
            )
        if failure.type == "PermissionDeniedError":
            reason = failure.details.get("reason", failure.message)
            return PermissionDeniedError(
                self.plugin,
                str(failure.details.get("capability", "?")),
                str(reason),
                str(failure.details.get("fix", "")),
            )
        # The whole trace goes to the operator's log, and only there (within the plugin's log
        # rate); what the error carries to users is the plugin's own frames.
        if failure.full_traceback and self._log_bucket.take(time.monotonic()):
            logger.info(
                "[%s] raised %s\n%s",
                self.plugin,
                failure.type,
                failure.full_traceback[-MAX_TRACEBACK_CHARS:],
                extra={"plugport_plugin": self.plugin},
            )
        shown = failure.traceback[-MAX_TRACEBACK_CHARS:]
        return PluginCallError(self.plugin, failure.type, failure.message, shown)

    # The channel's listener: each frame is handled in the loop iteration that read it.

    def message_received(self, message: object) -> None:
        if self.violation is not None:
            return  # the worker is being killed for an earlier frame
        try:
            self._dispatch(message)
        except Exception as exc:  # whatever a frame made us trip over, the worker caused it
            logger.exception("reading from %s failed", self.plugin)
            self._protocol_violation(f"unreadable frame ({type(exc).__name__})")

    def channel_lost(self, error: FrameError | None) -> None:
        if error is not None:
            self._protocol_violation(str(error))
        elif self._lost is None:
            self._lost = asyncio.ensure_future(self._crashed())

    def _dispatch(self, message: object) -> None:
        if isinstance(message, Ready):
            if not self._ready.done():
                self._ready.set_result(message)
        elif isinstance(message, Result | Failure | Pong):
            if message.id == 0 and isinstance(message, Failure) and not self._ready.done():
                self._ready.set_exception(self._translate(message))  # refused before ready
                return
            future = self._pending.get(message.id)
            if future is None and message.id in self._abandoned:
                self._abandoned.discard(message.id)
            elif future is None:
                self._protocol_violation(f"answer to unknown request id {message.id}")
            elif not future.done():
                future.set_result(message)
        elif isinstance(message, CapabilityCall):
            if len(self._capability_tasks) >= self._capability_slots:
                self._refuse_capability(message)
                return
            self._spawn(self._serve_capability(message))
        elif isinstance(message, Log):
            self._log(message)
        else:
            self._protocol_violation(f"unexpected {type(message).__name__} from the worker")

    def _refuse_capability(self, message: CapabilityCall) -> None:
        limit = "concurrent_capability_calls"
        error = ResourceLimitExceededError(
            self.plugin, limit, f"more than {self._capability_slots} capability calls at once"
        )
        details = {"plugin": self.plugin, "limit": limit}
        refusal = Failure(message.id, type(error).__name__, str(error), details=details)
        self._spawn(self.handle.channel.send(refusal))
        now = time.monotonic()
        if self._on_limit is not None and now - self._limit_reported_at >= 1.0:
            self._limit_reported_at = now  # one audit line a second, not one per refused call
            self._on_limit(f"{message.capability}.{message.method}", str(error))

    def _log(self, message: Log) -> None:
        """Plugin log lines, rate-limited so a chatty plugin cannot flood the host's logs."""
        if not self._log_bucket.take(time.monotonic()):
            return
        dropped = self._log_bucket.take_refused()
        level = logging.getLevelName(message.level.upper())
        level = level if isinstance(level, int) else logging.INFO
        text = message.message[:2000]
        if dropped:
            text += f" ({dropped} earlier lines dropped: over the log rate limit)"
        extra = {"plugport_plugin": self.plugin, "plugport_fields": dict(message.fields)}
        logger.log(level, "[%s] %s", self.plugin, text, extra=extra)
        if self._on_log is not None:
            self._on_log(Log(message.level, text, message.fields))

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._capability_tasks.add(task)
        task.add_done_callback(self._capability_tasks.discard)

    async def _serve_capability(self, request: CapabilityCall) -> None:
        try:
            value = await self._broker(
                request.capability, request.method, request.args, request.kwargs
            )
            reply: Result | Failure = Result(request.id, value)
        except PlugportError as exc:
            details = {
                k: v for k, v in vars(exc).items() if isinstance(v, str | int | float | bool)
            }
            reply = Failure(request.id, type(exc).__name__, str(exc), details=details)
        except Exception as exc:
            logger.exception("broker failed for %s", self.plugin)
            reply = Failure(
                request.id, "RuntimeError", f"host error in {request.capability}: {exc}"
            )
        with contextlib.suppress(ChannelClosedError, FrameError):
            await self.handle.channel.send(reply)

    def _protocol_violation(self, reason: str) -> None:
        self.violation = reason
        if self._on_violation is not None:
            self._on_violation(reason)
        cause = f"protocol violation: {reason}; killed"
        self._die(PluginCrashedError(self.plugin, cause, kind="protocol"))

    def _die(self, error: PlugportError) -> None:
        if self._death is None:
            self._death = error
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog, self._watchdog_at = None, math.inf
        self.handle.kill()
        self._fail_pending()

    async def _crashed(self) -> None:
        if self._death is None:
            try:
                exit = await asyncio.wait_for(asyncio.shield(self.handle.exited), _EXIT_GRACE_S)
            except TimeoutError:
                exit = WorkerExit(None, None)
                self.handle.kill()
            by_host = self.handle.killed_by_host
            before, after = self._oom_kills, oom_kills()
            if oom_killed(
                exit, self.memory_mb, by_host=by_host, kills_before=before, kills_after=after
            ):
                peak_kb = exit.max_rss_kb or self.peak_rss_kb
                how = "killed by the kernel when out of memory (SIGKILL)"
                self._death = memory_exceeded(self.plugin, self.memory_mb, peak_kb, how)
            else:
                self._death = _exit_error(self.plugin, exit)
        if not self._ready.done():
            self._ready.set_exception(self._death)
        self._fail_pending()

    def _fail_pending(self) -> None:
        death = self._death or PluginCrashedError(self.plugin, "not running", kind="lost")
        if not self.died.done():
            self.died.set_result(death)
        for future in [*self._pending.values(), self._ready]:
            if not future.done():
                future.set_exception(death)
                future.exception()  # a waiter that already gave up must not leave a warning


def _exit_error(plugin: str, exit: WorkerExit) -> PlugportError:
    import signal

    if exit.signal == signal.SIGXCPU:
        return ResourceLimitExceededError(plugin, "cpu_seconds", "CPU time limit reached")
    if exit.code is None and exit.signal is None:
        return PluginCrashedError(
            plugin, "the channel closed and the worker did not exit", kind="lost"
        )
    kind: CrashKind = "signal" if exit.signal is not None else "exit"
    return PluginCrashedError(plugin, describe_exit(exit), kind=kind)
