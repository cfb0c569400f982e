"""Runs inside the sandboxed worker process: sandbox first, then load the plugin, then serve
calls from the host until told to stop. Nothing here trusts the plugin; the host trusts
nothing here."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import importlib
import inspect
import logging
import os
import resource
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Literal, NoReturn

from plugport import errors
from plugport._loop import new_event_loop
from plugport.runtime import _tracebacks, protocol
from plugport.runtime.channel import Channel, ChannelClosedError, open_socket_channel
from plugport.runtime.protocol import (
    Call,
    CapabilityCall,
    Failure,
    HandlerInfo,
    Log,
    Ping,
    Pong,
    Ready,
    Result,
    Shutdown,
    WorkerSpec,
)
from plugport.sdk import Api, Plugin, Task, UiRequest, WebhookEvent, handlers_of
from plugport.sdk._task import CURRENT_TASK

__all__ = ["EXIT_LOAD_FAILED", "EXIT_SANDBOX_REFUSED", "PluginServer", "run"]

EXIT_SANDBOX_REFUSED = 3
EXIT_LOAD_FAILED = 4


def run(
    channel_fd: int,
    spec: WorkerSpec,
    interpreter: tuple[Path, ...] = (),
    *,
    volume: bool = False,
) -> NoReturn:
    """Entry point in the forked child; never returns.

    The sandbox goes on before the event loop exists: its fd sweep must not close the loop's
    own descriptors, and nothing asynchronous should run unconfined.
    """
    # A trace or profile function the zygote carried (a debugger, a coverage tracer) is the
    # host's code: it must not run inside the plugin's process, nor slow its every line.
    sys.settrace(None)
    sys.setprofile(None)
    threading.settrace(None)  # nor in the threads it starts
    threading.setprofile(None)
    code = 1
    try:
        try:
            report = _apply_sandbox(spec, channel_fd, interpreter, volume)
        except Exception as exc:  # reported to the host, which decides what it means
            os.write(channel_fd, protocol.encode(_failure(0, exc, spec.code_dir)))
            code = EXIT_SANDBOX_REFUSED
        else:
            # Not asyncio.run: its shutdown would wait for handler threads still running
            # (a sync handler stuck in a loop), and the worker must exit when told to.
            code = new_event_loop().run_until_complete(_main(channel_fd, spec, report))
    except BaseException:
        if spec.keep_stdio:
            traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def _apply_sandbox(
    spec: WorkerSpec, channel_fd: int, interpreter: tuple[Path, ...], volume: bool
) -> dict[str, str]:
    from plugport.runtime.sandbox import SandboxSpec, apply_sandbox, interpreter_paths

    sandbox_spec = SandboxSpec(
        data_dir=Path(spec.data_dir),
        read_only=(
            Path(spec.code_dir),
            *map(Path, spec.import_paths),
            *(interpreter or interpreter_paths()),
        ),
        memory_mb=spec.memory_mb,
        cpu_seconds=spec.cpu_seconds,
        keep_fds=(channel_fd,),
        keep_stdio=spec.keep_stdio,
        max_file_bytes=spec.max_file_bytes,
        uid=spec.uid,
        gid=spec.gid,
        data_quota_bytes=spec.data_quota_bytes if volume and spec.data_quota_bytes else None,
        without=spec.without_layers,
    )
    policy: Literal["strict", "best-effort"] = (
        "strict" if spec.sandbox == "strict" else "best-effort"
    )
    return apply_sandbox(sandbox_spec, policy).as_dict()


async def _main(channel_fd: int, spec: WorkerSpec, report: dict[str, str]) -> int:
    channel = await open_socket_channel(socket.socket(fileno=channel_fd))
    try:
        plugin = _load(spec)
    except Exception as exc:  # a broken plugin must not look like a crash
        await channel.send(_failure(0, exc, spec.code_dir))
        await channel.flushed()
        return EXIT_LOAD_FAILED
    server = PluginServer(plugin, channel, spec.max_concurrency, spec.code_dir)
    code = await server.serve(report)
    await channel.flushed()
    return code


def _load(spec: WorkerSpec) -> Plugin:
    module_name, _, class_name = spec.entry.partition(":")
    # The plugin's code first, then its locked libraries, then the interpreter's own paths:
    # a library the host also has is the version the plugin locked.
    sys.path[0:0] = [spec.code_dir, *spec.import_paths]
    _forget_host_copies(spec.import_paths)
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise TypeError(f"{spec.entry} is not a subclass of plugport.sdk.Plugin")
    plugin: Plugin = cls()
    return plugin


def _forget_host_copies(import_paths: tuple[str, ...]) -> None:
    """The zygote imported some libraries for itself (pydantic, for the SDK); a plugin that
    locked its own version of one must import that version, not find the zygote's in
    ``sys.modules``. The SDK keeps the objects it already holds."""
    if not import_paths:
        return
    provided = set()
    for path in import_paths:
        for name in os.listdir(path):
            provided.add(name.split(".", 1)[0])
    for name in [m for m in sys.modules if m.split(".", 1)[0] in provided]:
        del sys.modules[name]


def _failure(call_id: int, exc: BaseException, code_dir: str) -> Failure:
    details = {
        k: v
        for k, v in vars(exc).items()
        if isinstance(v, str | int | float | bool) and k[0] != "_"
    }
    if isinstance(exc, MemoryError):  # the host names the peak beside the limit
        details["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return Failure(
        id=call_id,
        type=type(exc).__name__,
        message=str(exc),
        traceback=_tracebacks.plugin_only(exc, code_dir),
        details=details,
        full_traceback=_tracebacks.complete(exc),
    )


class _HostTransport:
    """The worker's end of capability calls: requests out, answers matched by id."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._next_id = 0
        self.pending: dict[int, asyncio.Future[Any]] = {}

    async def call(
        self, capability: str, method: str, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        self._next_id += 1
        call_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[call_id] = future
        try:
            await self._channel.send(CapabilityCall(call_id, capability, method, args, kwargs))
            return await future
        finally:
            self.pending.pop(call_id, None)

    def resolve(self, message: Result | Failure) -> None:
        future = self.pending.get(message.id)
        if future is None or future.done():
            return  # a late answer to a call that was cancelled
        if isinstance(message, Result):
            future.set_result(message.value)
        else:
            future.set_exception(_remote_error(message))


def _remote_error(failure: Failure) -> Exception:
    """The host's refusal, as the same exception class the plugin author reads about."""
    cls = getattr(errors, failure.type, None)
    if isinstance(cls, type) and issubclass(cls, errors.PlugportError):
        try:
            error: Exception = cls.__new__(cls)
            Exception.__init__(error, failure.message)
            for key, value in failure.details.items():
                setattr(error, key, value)
            return error
        except TypeError:
            pass
    return RuntimeError(f"{failure.type}: {failure.message}")


class PluginServer:
    """Serves host calls against one plugin instance, several at a time up to the limit."""

    def __init__(
        self, plugin: Plugin, channel: Channel, max_concurrency: int, code_dir: str = ""
    ) -> None:
        self.plugin = plugin
        self.code_dir = code_dir  # tracebacks users see keep the frames under it
        self.channel = channel
        self.transport = _HostTransport(channel)
        self.max_concurrency = max_concurrency
        self._running = 0  # calls being answered; those past the limit wait their turn, in order
        self._waiting: collections.deque[Call] = collections.deque()
        self.handlers = {
            (handler.kind, handler.name): (attribute, handler)
            for attribute, handler in handlers_of(plugin)
        }
        self.tasks: set[asyncio.Task[None]] = set()
        self._done: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sandbox_report: dict[str, str]) -> int:
        loop = self._loop = asyncio.get_running_loop()
        self.plugin.api = Api(self.transport, loop)
        plugin_logs = logging.getLogger("plugport.plugin")
        plugin_logs.addHandler(_ChannelLogHandler(self.channel, loop, self.tasks))
        plugin_logs.setLevel(logging.INFO)
        plugin_logs.propagate = False
        self._done = loop.create_future()
        # Frames are handled as they arrive from here on, initialize() included: it may use
        # the api, and its answers come on the channel.
        self.channel.listen(self)
        try:
            await _lifecycle(self.plugin, "initialize")
        except Exception as exc:  # reported like a failed import: the host names the error
            await self.channel.send(_failure(0, exc, self.code_dir))
            return EXIT_LOAD_FAILED
        await self.channel.send(
            Ready(
                pid=os.getpid(),
                handlers=[
                    HandlerInfo(kind, name, attribute, handler.priority)
                    for (kind, name), (attribute, handler) in sorted(self.handlers.items())
                ],
                sandbox=sandbox_report,
            )
        )
        await self._done
        return 0

    # The channel's listener: each frame is handled in the loop iteration that read it.

    def message_received(self, message: protocol.Message) -> None:
        if isinstance(message, Call):
            if self._running < self.max_concurrency:
                self._start(message)
            else:
                self._waiting.append(message)
        elif isinstance(message, Result | Failure):
            self.transport.resolve(message)
        elif isinstance(message, Ping):
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu_ms = int((usage.ru_utime + usage.ru_stime) * 1000)
            self._spawn(self.channel.send(Pong(message.id, usage.ru_maxrss, cpu_ms)))
        elif isinstance(message, Shutdown):
            self._spawn(self._shutdown(message))

    def channel_lost(self, error: protocol.FrameError | None) -> None:
        self._finish()  # the host is gone (or broke the protocol): nothing left to serve

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _start(self, call: Call) -> None:
        """Answer ``call`` in a task of its own, made on the loop itself and leaving ``tasks``
        as it ends, with no done callback: ensure_future() would ask the OS for the pid to
        find the loop, and a done callback would take one more turn of the loop after the
        answer is written, each a system call per call that a no-op hook's round trip felt."""
        self._running += 1
        task = self._loop.create_task(self._run(call))  # type: ignore[union-attr]
        self.tasks.add(task)

    async def _run(self, call: Call) -> None:
        try:
            await self._reply(call)
        finally:
            self.tasks.discard(asyncio.current_task(self._loop))
            self._running -= 1
            if self._waiting:
                self._start(self._waiting.popleft())

    async def _reply(self, call: Call) -> None:
        reply = await self._answer(call)
        refusal: Failure | None = None
        try:
            if not self.channel.send_nowait(reply):  # only while the host is not reading
                await self.channel.send(reply)
        except protocol.FrameTooLargeError as exc:  # the host names the limit
            message = f"the answer to {call.kind} {call.name!r} is too large to send: {exc}"
            details = {"limit": exc.limit, "maximum": protocol.MAX_FRAME_BYTES}
            refusal = Failure(call.id, type(exc).__name__, message, details=details)
        except (protocol.FrameError, MemoryError) as exc:  # too deep; out of memory
            refusal = _failure(call.id, exc, self.code_dir)
        if refusal is not None:  # sent once the value and the encoder's frames are let go
            del reply
            await self.channel.send(refusal)

    async def _answer(self, call: Call) -> Result | Failure:
        """The handler's outcome; its value lives only as long as the reply holding it."""
        entry = self.handlers.get((call.kind, call.name))
        started = _now_us()
        try:
            if entry is None:
                raise LookupError(f"the plugin has no {call.kind} handler {call.name!r}")
            method = getattr(self.plugin, entry[0])
            if call.kind == "webhook":  # one typed event, built here from the host's fields
                value = await _maybe_await(method, WebhookEvent.from_wire(call.kwargs))
                return Result(call.id, value, _now_us() - started)
            if call.kind == "task":  # the typed task, current while its handler runs
                task = Task.from_wire(call.kwargs)
                token = CURRENT_TASK.set(task)
                try:
                    value = await _maybe_await(method, task)
                finally:
                    CURRENT_TASK.reset(token)
                return Result(call.id, value, _now_us() - started)
            if call.kind == "ui":  # one typed request: render a surface or answer an action
                value = await _maybe_await(method, UiRequest.from_wire(call.kwargs))
                return Result(call.id, value, _now_us() - started)
            kwargs = _accepted(method, call.kwargs) if call.kind == "event" else call.kwargs
            value = await _maybe_await(method, *call.args, **kwargs)
            return Result(call.id, value, _now_us() - started)
        except Exception as exc:  # every failure, MemoryError included, goes to the host
            try:
                return _failure(call.id, exc, self.code_dir)
            except Exception:  # its __str__ raised, say: the call must still be answered
                return Failure(call.id, type(exc).__name__, "(the error could not be shown)")

    async def _shutdown(self, message: Shutdown) -> None:
        """``cleanup()`` within the deadline (capability answers keep arriving meanwhile),
        its outcome to the host, then the worker ends."""
        try:
            try:
                await asyncio.wait_for(
                    _lifecycle(self.plugin, "cleanup"), timeout=message.deadline_ms / 1000
                )
                reply: Result | Failure = Result(message.id, None)
            except Exception as exc:
                reply = _failure(message.id, exc, self.code_dir)
            with contextlib.suppress(ChannelClosedError):
                await self.channel.send(reply)
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)


async def _lifecycle(plugin: Plugin, name: str) -> None:
    """Call ``initialize`` or ``cleanup`` unless the plugin kept the base class's no-op: a sync
    one runs in a thread, and an idle worker that never started one stays smaller."""
    if getattr(type(plugin), name) is not getattr(Plugin, name):
        await _maybe_await(getattr(plugin, name))


def _accepted(function: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``function`` takes: event handlers may ask for ``topic`` and
    ``source`` or just take the payload."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in parameters}


class _ChannelLogHandler(logging.Handler):
    """Sends the plugin's ``self.log`` records to the host as Log frames, from any thread."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def __init__(
        self, channel: Channel, loop: asyncio.AbstractEventLoop, tasks: set[asyncio.Task[None]]
    ) -> None:
        super().__init__()
        self._channel = channel
        self._loop = loop
        self._tasks = tasks

    def emit(self, record: logging.LogRecord) -> None:
        fields = {
            k: v
            for k, v in vars(record).items()
            if k not in self._STANDARD and isinstance(v, str | int | float | bool | None)
        }
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info)[-5:])
        message = Log(record.levelname.lower(), text[:4000], dict(list(fields.items())[:20]))
        if _running_loop() is self._loop:  # an async handler: before what it answers
            self._send(message)
        else:  # a plain handler's thread: its answer comes back through the loop after this
            self._loop.call_soon_threadsafe(self._send, message)

    def _send(self, message: Log) -> None:
        """Written at once, so a line a handler logs reaches the host before the handler's
        answer; through a task (which waits) only while the host is not reading."""
        try:
            if self._channel.send_nowait(message):
                return
        except ChannelClosedError:
            return  # the host is gone: nobody to tell
        task = self._loop.create_task(self._channel.send(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _maybe_await(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Coroutine functions are awaited; plain ones run in a thread so the loop keeps serving."""
    if _is_coroutine_function(function):
        return await function(*args, **kwargs)
    return await asyncio.to_thread(function, *args, **kwargs)


_COROUTINE_FUNCTIONS: dict[Any, bool] = {}


def _is_coroutine_function(function: Any) -> bool:
    """``inspect.iscoroutinefunction``, asked once per handler rather than once per call (a
    bound method is a new object each time; its function is not)."""
    key = getattr(function, "__func__", function)
    known = _COROUTINE_FUNCTIONS.get(key)
    if known is None:
        known = _COROUTINE_FUNCTIONS[key] = inspect.iscoroutinefunction(function)
    return known


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _now_us() -> int:
    return time.perf_counter_ns() // 1000
