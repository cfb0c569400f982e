"""Hot swap: a plugin's new worker (a new version, or the same one onto new settings) starts
beside the running one and must answer a health check; then every new call goes to it in one
step, while calls already running on the old worker finish there within a drain deadline before
the old worker is stopped with ``cleanup()``. A new worker that does not come up is stopped and
nothing else changes. An extension of ``supervisor.py`` (whose private helpers it uses), kept
apart so the supervisor stays small; the words and small decisions are in ``_swap_rules.py``.

While the drain lasts both workers share the plugin's data dir, storage and settings (they are
the plugin's, not a version's): each sees the other's writes in the order they happen, and no
more is promised. Each installed version has its own code directory (``host/install.py``),
which the host deletes only after the swap returned, so the old worker's lazy imports keep
working; a development install runs from one source directory that both workers read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from plugport.errors import (
    ConflictError,
    PluginCrashedError,
    PlugportError,
    SwapRefusedError,
    SwapStage,
)
from plugport.runtime._lifecycle import State
from plugport.runtime._swap_rules import (
    SwapReport,
    audit_line,
    drain_deadline_s,
    overdue_call,
    refusal,
)

if TYPE_CHECKING:
    from plugport.runtime._supervised import PluginInstall, SupervisorConfig, _Entry
    from plugport.runtime.broker import Services
    from plugport.runtime.capabilities.ui import UiCommand, UiRegistry
    from plugport.runtime.hooks import HookRegistry
    from plugport.runtime.metrics import RuntimeMetrics
    from plugport.runtime.process import PluginProcess

__all__ = ["HotSwaps", "Runtime"]


class Runtime(Protocol):
    """What a swap uses of the supervisor, private parts included (this module is its
    extension); named here so that this module does not import the supervisor back."""

    config: SupervisorConfig
    services: Services
    hooks: HookRegistry
    metrics: RuntimeMetrics
    _plugins: dict[str, _Entry]
    _closed: bool

    @property
    def ui(self) -> UiRegistry: ...
    def configure(self, name: str, values: dict[str, Any]) -> dict[str, Any]: ...
    def _entry(self, name: str) -> _Entry: ...
    def _new_entry(self, install: PluginInstall) -> _Entry: ...
    async def _start(self, entry: _Entry) -> PluginProcess: ...
    def _register_hooks(self, entry: _Entry) -> None: ...
    def _set_state(self, entry: _Entry, state: State) -> None: ...
    def _audit(self, entry: _Entry, kind: str, reason: str, capability: str = "") -> None: ...
    def _in_background(
        self, coroutine: Any, tasks: set[asyncio.Task[Any]] | None = None
    ) -> None: ...


class HotSwaps:
    """The swaps of one supervisor: at most one per plugin at a time, never queued."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._under_way: dict[str, str] = {}  # plugin -> what it is being swapped to

    async def swap(self, install: PluginInstall, drain_s: float | None) -> SwapReport:
        runtime = self._runtime
        name = install.manifest.name
        old = runtime._entry(name)  # only an added plugin is swapped
        deadline_s = drain_deadline_s(drain_s, runtime.config.swap_drain_deadline_s)
        with self._claim(name, install.manifest.version):
            return await self._swap(old, runtime._new_entry(install), deadline_s)

    async def reconfigure(
        self, name: str, values: dict[str, Any], drain_s: float | None
    ) -> SwapReport:
        runtime = self._runtime
        old = runtime._entry(name)
        deadline_s = drain_deadline_s(drain_s, runtime.config.swap_drain_deadline_s)
        version = old.install.manifest.version
        with self._claim(name, f"{version} with new settings"):
            settings = runtime.services.settings
            previous = settings.stored(name)
            runtime.configure(name, values)  # checked first: a refused value changes nothing
            if old.running is None:  # its next worker reads them at start
                return SwapReport(name, version, version, hot=False, new_settings=True)
            try:
                new = runtime._new_entry(old.install)
                return await self._swap(old, new, deadline_s, settings=True)
            except BaseException:
                settings.set(name, {}, previous)  # as they were (checked when they were set)
                raise

    @contextlib.contextmanager
    def _claim(self, name: str, target: str) -> Iterator[None]:
        under_way = self._under_way.get(name)
        if under_way is not None:
            raise ConflictError(
                "plugin",
                name,
                f"is being swapped to {under_way} already; this swap (to {target}) is refused, "
                "not queued: ask again when that one has finished",
            )
        self._under_way[name] = target
        try:
            yield
        finally:
            del self._under_way[name]

    async def _swap(
        self, old: _Entry, new: _Entry, deadline_s: float, *, settings: bool = False
    ) -> SwapReport:
        runtime = self._runtime
        name, began = new.name, time.perf_counter()
        versions = (old.install.manifest.version, new.install.manifest.version)
        if runtime._closed:
            raise self._refusal(old, new, "closing", None, settings=settings, audit=False)
        commands = runtime.ui.commands(name)  # the old worker's; the new one registers its own
        async with old.lock:  # waits out a start of the old version under way
            if old.running is None:
                self._switch(new, commands)
                report = SwapReport(name, *versions, hot=False, new_settings=settings)
                self._audit(report, deadline_s, "idle")
                return report
        process = await self._candidate(old, new, commands, settings=settings)
        gone: SwapStage | None = None
        old_process: PluginProcess | None = None
        async with old.lock:  # no start of the old version may finish after the switch
            if runtime._closed:
                gone = "closing"
            elif runtime._plugins.get(name) is not old:
                gone = "removed"
            else:
                try:
                    self._switch(new, commands)  # refused before it changes anything, if at all
                except BaseException:
                    await self._stop_candidate(new, None)
                    raise
                old_process, old.process = old.process, None
        if gone is not None:
            await self._stop_candidate(new, None)
            raise self._refusal(old, new, gone, None, settings=settings)
        switched = time.perf_counter()
        drained, ended, stopped = 0, 0, "the worker was not running"
        if old_process is not None:
            overdue = overdue_call(name, *versions, deadline_s)
            drained, ended, stopped = await self.retire(old_process, deadline_s, overdue)
        old.state = State.STOPPED  # its own record only: the plugin's gauge is the new worker's
        report = SwapReport(
            name,
            *versions,
            hot=True,
            new_settings=settings,
            old_pid=old_process.handle.pid if old_process is not None else None,
            new_pid=process.handle.pid,
            switch_ms=(switched - began) * 1000,
            drained=drained,
            ended=ended,
            drain_ms=(time.perf_counter() - switched) * 1000,
            stopped=stopped,
        )
        self._audit(report, deadline_s, "hot")
        return report

    async def _candidate(
        self, old: _Entry, new: _Entry, commands: Sequence[UiCommand], *, settings: bool
    ) -> PluginProcess:
        """The new worker, started and healthy; or it is stopped and the refusal raised."""
        stage: SwapStage = "start"
        try:
            process = await self._runtime._start(new)
            stage = "health"
            await process.ping(self._runtime.config.ping_timeout_s)
        except BaseException as exc:
            await self._stop_candidate(new, exc)
            self._restore(old, commands)
            if isinstance(exc, PlugportError | TimeoutError):
                raise self._refusal(old, new, stage, exc, settings=settings) from exc
            raise
        return process

    async def retire(
        self, process: PluginProcess, deadline_s: float, overdue: PlugportError
    ) -> tuple[int, int, str]:
        """Drain a worker no one's calls go to any more (a swap's old one, a deactivated
        plugin's), then stop it with ``cleanup()``: ``(drained, ended, how it stopped)``."""
        try:
            drained, ended = await process.drain(deadline_s, overdue)
            return drained, ended, await process.stop(self._runtime.config.stop_deadline_ms)
        except BaseException:  # cancelled: the old worker, no one's any more, must not stay
            process.terminate(overdue)
            self._runtime._in_background(process.stop(0))
            raise

    def _switch(self, new: _Entry, commands: Sequence[UiCommand]) -> None:
        """Every new call goes to ``new`` from here: its record, hooks, event subscriptions and
        UI commands replace the old one's, in one step (nothing here awaits)."""
        runtime, name = self._runtime, new.name
        runtime.services.events.subscribe_plugin(name, new.grants.permissions.events.subscribe)
        runtime._plugins[name] = new
        runtime.hooks.unregister(name)
        runtime._register_hooks(new)
        kept = [c for c in runtime.ui.commands(name) if not any(c is o for o in commands)]
        runtime.ui.replace_commands(name, kept)
        runtime._set_state(new, new.state)

    def _restore(self, old: _Entry, commands: Sequence[UiCommand]) -> None:
        """Undo what the candidate did to shared state: the commands it registered."""
        if self._runtime._plugins.get(old.name) is old:
            self._runtime.ui.replace_commands(old.name, commands)

    async def _stop_candidate(self, new: _Entry, error: BaseException | None) -> None:
        """End the new worker of a swap that is rolled back, before the refusal is raised (a
        start that failed already ended its own)."""
        process, new.process = new.process, None
        if process is None:
            return
        if not isinstance(error, PlugportError):
            why = f"its swap to {new.install.manifest.version} was rolled back"
            error = PluginCrashedError(new.name, why, kind="stopped")
        process.terminate(error)
        await process.stop(0)

    def _refusal(
        self,
        old: _Entry,
        new: _Entry,
        stage: SwapStage,
        cause: BaseException | None,
        *,
        settings: bool,
        audit: bool = True,
    ) -> SwapRefusedError:
        runtime = self._runtime
        current = runtime._plugins.get(old.name) is old
        error = refusal(
            old.name,
            new.install.manifest.version,
            stage,
            kept_version=old.install.manifest.version,
            serving=current and old.running is not None,
            cause=cause,
            settings=settings,
        )
        if audit:
            runtime._audit(old, "swap-rolled-back", str(error))
            if current:
                runtime.metrics.swap(old.name, "rolled_back")
        return error

    def _audit(self, report: SwapReport, deadline_s: float, outcome: str) -> None:
        runtime = self._runtime
        entry = runtime._entry(report.plugin)
        runtime._audit(entry, "swap", audit_line(report, deadline_s))
        runtime.metrics.swap(report.plugin, outcome)
