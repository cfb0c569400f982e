"""Runs every installed plugin: starts its worker when an activation event needs it, routes hook
calls, commands and events to it, pings it, restarts it with backoff when it fails, quarantines it
when it keeps failing, and stops it cleanly. Every step is audited and measured."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from typing import Any

import msgspec

from plugport.errors import (
    InvalidInputError,
    PermissionDeniedError,
    PluginCrashedError,
    PluginQuarantinedError,
    PlugportError,
    ResourceLimitExceededError,
    SandboxUnavailableError,
)
from plugport.manifest import Limits, Manifest, Permissions, TaskSpec, match_topic
from plugport.runtime._db import RuntimeDatabase
from plugport.runtime._lifecycle import Health, State
from plugport.runtime._supervised import (
    PluginInstall,
    PluginStatus,
    SupervisorConfig,
    _Entry,
    failure_kind,
)
from plugport.runtime._swap import HotSwaps
from plugport.runtime._swap_rules import DRAIN_LIMIT, SwapReport, overdue_on_stop
from plugport.runtime._swap_rules import drain_deadline_s as drain_deadline_s_of
from plugport.runtime.activity import Activity, ActivityFeed
from plugport.runtime.audit import AuditEvent, AuditLog, SqliteAuditLog
from plugport.runtime.broker import CapabilityBroker, Grants, Services
from plugport.runtime.capabilities import CAPABILITIES
from plugport.runtime.capabilities._record import UI_PERMISSION_OF
from plugport.runtime.capabilities._secret_source import MemorySecrets, SecretSource
from plugport.runtime.capabilities.config import PluginSettings
from plugport.runtime.capabilities.events import Event, EventBus
from plugport.runtime.capabilities.mail import Mailer
from plugport.runtime.capabilities.storage import PluginStorage
from plugport.runtime.capabilities.ui import UiRegistry
from plugport.runtime.capabilities.webhooks import WebhookService
from plugport.runtime.health import HealthChecks
from plugport.runtime.hooks import HookImpl, HookOutcome, HookRegistry, HookSpec, call_hook
from plugport.runtime.isolation import WorkerIsolation
from plugport.runtime.launcher import WorkerLauncher, ZygoteLauncher
from plugport.runtime.metrics import RuntimeMetrics
from plugport.runtime.outbox import OUTBOX_FILE, SqliteOutbox
from plugport.runtime.problems import Finding, ProblemDetector, open_findings
from plugport.runtime.process import PluginProcess
from plugport.runtime.protocol import Log, WorkerSpec

__all__ = [
    "PluginInstall",
    "PluginStatus",
    "State",
    "Supervisor",
    "SupervisorConfig",
    "SwapReport",
    "failure_kind",
]


MIB = 1024 * 1024
_REFUSED_ANSWERS = frozenset({"max_frame_bytes", DRAIN_LIMIT})
"""Limits a call can break while the worker is not to blame: it refused to send the answer, or
a hot swap's drain ran out and the worker is being stopped cleanly."""
_REMOVED = "removed from the runtime (disabled, uninstalled, or being updated)"


class Supervisor:
    """The runtime a host embeds. Use ``async with Supervisor(config) as runtime:``."""

    def __init__(
        self,
        config: SupervisorConfig,
        *,
        launcher: WorkerLauncher | None = None,
        db: RuntimeDatabase | None = None,
        audit: AuditLog | None = None,
        metrics: RuntimeMetrics | None = None,
        secrets: SecretSource | None = None,
        outbox: SqliteOutbox | None = None,
    ) -> None:
        """``secrets``: where credential values come from (the host's store); in memory when
        not given."""
        self.config = config
        self._owns_launcher = launcher is None
        self.launcher: WorkerLauncher = launcher or ZygoteLauncher(
            spawn_timeout_ms=config.spawn_timeout_ms
        )
        self._owns_db = db is None
        self.db = db or RuntimeDatabase(config.state_dir / "runtime.sqlite")
        self.audit: AuditLog = audit or SqliteAuditLog(self.db)
        self.metrics = metrics or RuntimeMetrics()
        self.hooks = HookRegistry()
        self.priority_overrides: dict[str, dict[str, int]] = {}
        self.services = Services(
            storage=PluginStorage(self.db),
            settings=PluginSettings(self.db),
            events=EventBus(self._deliver),
            ui=UiRegistry(metrics=self.metrics.registry.collect),
            audit=self.audit,
            metrics=self.metrics,
            net=config.net,
            secrets=secrets if secrets is not None else MemorySecrets(),
            mail=Mailer(config.mail),
        )
        self._plugins: dict[str, _Entry] = {}
        self.outbox = outbox or SqliteOutbox(config.state_dir / OUTBOX_FILE)
        self.webhooks = WebhookService(self.outbox, config.webhooks, self.services, self._grants_of)
        self.services.webhooks = self.webhooks
        self.detector = ProblemDetector(
            thresholds=config.problems, record=self._record, metrics=self.metrics
        )
        """Baselines and findings per plugin (:meth:`problems`)."""
        self.health = HealthChecks(
            config,
            self.metrics,
            self._plugins.values,
            self._failed,
            problems=self.detector,
            storage=self.services.storage,
        )
        self._pinger: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()  # disposals: always awaited
        self._restarts: set[asyncio.Task[Any]] = set()  # pending restarts: cancelled on close
        self._closed = False
        self.isolation = WorkerIsolation(config)
        self._swaps = HotSwaps(self)

    @property
    def events(self) -> EventBus:
        return self.services.events

    @property
    def activity(self) -> ActivityFeed:
        """Everything the plugins do, as it happens (see :mod:`plugport.runtime.activity`)."""
        return self.services.activity

    @property
    def ui(self) -> UiRegistry:
        return self.services.ui

    # --- lifecycle of the supervisor ----------------------------------------------------------

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start health pings and every plugin that activates ``on_startup``; a plugin that
        fails to start is audited and left in backoff, never raised here."""
        self.webhooks.start()
        if self.config.ping_interval_s > 0 and self._pinger is None:
            self._pinger = asyncio.create_task(self.health.run_forever(), name="plugport-pings")
        starting = [e for e in self._plugins.values() if e.always_on]
        await asyncio.gather(*(self._start_quietly(e) for e in starting))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        for task in list(self._restarts):
            task.cancel()
        await asyncio.gather(*self._restarts, return_exceptions=True)
        await asyncio.gather(*(self.deactivate(name) for name in list(self._plugins)))
        await asyncio.gather(*self._background, return_exceptions=True)
        for entry in self._plugins.values():
            self._set_state(entry, State.STOPPED)
        await self.services.events.close()
        await self.webhooks.close()
        self.outbox.close()
        if self._owns_launcher and isinstance(self.launcher, ZygoteLauncher):
            await self.launcher.close()
        if self._owns_db:
            self.db.close()
        self.isolation.close()

    # --- plugins --------------------------------------------------------------------------------

    def declare_hook(self, spec: HookSpec) -> None:
        """Offer a hook; plugins already added that contribute it are registered for it."""
        self.hooks.declare(spec)
        for entry in self._plugins.values():
            self._register_hooks(entry)

    def set_priority(self, hook: str, plugin: str, priority: int) -> None:
        """The host's override of a plugin's priority for one hook (higher runs first)."""
        self.priority_overrides.setdefault(hook, {})[plugin] = priority

    def add(self, install: PluginInstall) -> None:
        """Make an installed plugin known. Nothing starts yet: activation is lazy."""
        if install.manifest.name in self._plugins:
            raise InvalidInputError(f"plugin {install.manifest.name!r} is already added")
        entry = self._new_entry(install)
        self._plugins[entry.name] = entry
        self.detector.track(entry.name, adopted=open_findings(self.audit, entry.name))
        self._register_hooks(entry)
        self.services.events.subscribe_plugin(entry.name, entry.grants.permissions.events.subscribe)
        self._set_state(entry, State.INACTIVE)

    async def swap(
        self, install: PluginInstall, *, drain_deadline_s: float | None = None
    ) -> SwapReport:
        """Replace an added plugin by ``install`` (its new version) without a gap: when it runs,
        the new worker starts beside the old one and must answer a health check, then every new
        call goes to it, while calls already running finish on the old worker (within
        ``drain_deadline_s``, default ``config.swap_drain_deadline_s``; past it they end with an
        error) before it is stopped with ``cleanup()``. When the new worker does not start or
        is not healthy, it is stopped, nothing else changes, and :class:`SwapRefusedError` says
        why; a second swap of the same plugin meanwhile is refused (:class:`ConflictError`).
        When no worker runs, only the plugin's record is replaced (activation stays lazy)."""
        return await self._swaps.swap(install, drain_deadline_s)

    async def reconfigure(
        self, name: str, values: dict[str, Any], *, drain_deadline_s: float | None = None
    ) -> SwapReport:
        """:meth:`configure`, then move a running plugin onto a fresh worker by :meth:`swap`
        (for a plugin that reads its settings once, in ``initialize()``); a refused value
        changes nothing, and a refused swap puts the previous settings back."""
        return await self._swaps.reconfigure(name, values, drain_deadline_s)

    def _new_entry(self, install: PluginInstall) -> _Entry:
        """The runtime's record of ``install``: its grants, broker and limits, and its data
        dir made ready; not yet reachable by any call."""
        manifest = install.manifest
        if not (install.code_dir / "plugport.toml").is_file():
            raise InvalidInputError(f"{install.code_dir}: no plugport.toml; is the plugin there?")
        grants = Grants.from_manifest(
            manifest,
            install.permissions,
            local_endpoints=install.local_endpoints,
            local_policy=install.local_policy,
            local_services=install.local_services,
        )
        data_dir = self.config.state_dir / "data" / manifest.name
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return _Entry(
            install=install,
            grants=grants,
            limits=manifest.limits.tightened(self.config.ceiling),
            broker=CapabilityBroker(
                grants, self.services, calls_per_s=self.config.capability_calls_per_s
            ),
            health=Health(self.config.restart),
            data_dir=data_dir,
        )

    async def remove(self, name: str, *, purge_data: bool = False) -> None:
        """Stop the plugin and forget it; ``purge_data`` also deletes its storage, settings and
        data directory (uninstall), otherwise they stay for a reinstall."""
        self._entry(name)  # an unknown name is an error
        await self.deactivate(name)
        self.hooks.unregister(name)
        self.services.events.unsubscribe_plugin(name)
        self.services.ui.forget(name)
        self.detector.forget(name, _REMOVED, keep_baseline=not purge_data)
        self.metrics.forget(name)
        del self._plugins[name]
        if purge_data:
            self.purge(name)

    def purge(self, name: str) -> None:
        """Delete everything the runtime keeps for a plugin that is not added (any more): its
        storage, settings, data dir, data volume and uid."""
        if name in self._plugins:
            raise InvalidInputError(f"plugin {name!r} is added; remove it first")
        for capability in CAPABILITIES.values():
            capability.purge(self.services, name)
        self.detector.drop_baseline(name)
        data_dir = self.config.state_dir / "data" / name
        shutil.rmtree(data_dir, ignore_errors=True)
        self.isolation.purge(name, data_dir)

    def configure(self, name: str, values: dict[str, Any]) -> dict[str, Any]:
        """Set a plugin's settings, validated against its manifest's ``config`` schema."""
        entry = self._entry(name)
        return self.services.settings.set(name, dict(entry.grants.config_schema), values)

    async def activate(self, name: str) -> None:
        """Start the plugin's worker now rather than on its first activation event."""
        entry = self._entry(name)
        await self._ensure(entry, self.config.activation_timeout_s)

    async def deactivate(self, name: str, *, drain_deadline_s: float | None = None) -> None:
        """Let the calls the plugin's worker is answering finish, within ``drain_deadline_s``
        (default ``config.swap_drain_deadline_s``; past it they end with a
        :class:`ResourceLimitExceededError` naming it), then call its ``cleanup()`` with the
        configured deadline and end the worker. A call made meanwhile waits, and starts the
        plugin again once it has stopped."""
        deadline_s = drain_deadline_s_of(drain_deadline_s, self.config.swap_drain_deadline_s)
        entry = self._entry(name)
        async with entry.lock:
            process, entry.process = entry.process, None
            if process is None:
                return
            overdue = overdue_on_stop(name, deadline_s)
            drained, ended, outcome = await self._swaps.retire(process, deadline_s, overdue)
            self.services.ui.forget(name)
            self._set_state(entry, State.INACTIVE)
            if drained or ended:
                outcome += f"; {drained} call(s) finished first, {ended} ended at the deadline"
            self._audit(entry, "deactivate", outcome)

    def release(self, name: str) -> None:
        """The operator's decision to let a quarantined plugin run again."""
        entry = self._entry(name)
        if entry.health.quarantined is None:
            return
        entry.health.release()
        self._set_state(entry, State.INACTIVE)
        self._audit(entry, "release", "released from quarantine by the operator")
        if entry.always_on and not self._closed:
            self._in_background(self._start_quietly(entry), self._restarts)

    def status(self, name: str | None = None) -> list[PluginStatus]:
        entries = [self._entry(name)] if name is not None else list(self._plugins.values())
        now = time.monotonic()
        return [e.status(now) for e in sorted(entries, key=lambda e: e.name)]

    def problems(self, name: str | None = None) -> list[Finding]:
        """The current findings about plugin ``name`` (or every plugin added): error rate,
        latency regression, memory growth, restarts, timeouts, storage quota, slow hook; each
        with its explanation and numbers (see :mod:`plugport.runtime.problems`)."""
        if name is not None:
            self._entry(name)  # an unknown name is an error
        return self.detector.findings(name)

    # --- calls into plugins ---------------------------------------------------------------------

    async def call_hook(self, hook: str, /, **kwargs: Any) -> list[HookOutcome]:
        """Fan a hook call out in priority order. Plugins not running are started if the hook
        activates them; each implementation has its own timeout; failures are outcomes."""

        async def call_one(impl: HookImpl, arguments: dict[str, Any]) -> Any:
            entry = self._entry(impl.plugin)
            timeout_ms = entry.limits.timeout_ms
            spec = self.hooks.specs[hook]  # hooks.call_hook checked the arguments against it
            if spec.timeout_ms is not None:
                timeout_ms = min(timeout_ms, spec.timeout_ms)
            return await self._invoke(
                entry, "hook", hook, args=[], kwargs=arguments, timeout_ms=timeout_ms
            )

        def wanted(impl: HookImpl) -> bool:
            entry = self._plugins.get(impl.plugin)
            return entry is not None and (
                entry.running is not None or entry.activates_on("on_hook", hook)
            )

        outcomes = await call_hook(
            self.hooks,
            hook,
            kwargs,
            call_one,
            overrides=self.priority_overrides.get(hook),
            include=wanted,
        )
        self.detector.fanout(hook, outcomes)
        return outcomes

    async def call_hook_on(self, plugin: str, hook: str, kwargs: dict[str, Any]) -> Any:
        """Call ``plugin``'s implementation of ``hook`` alone (an operator or a service trying one
        plugin). Unlike :meth:`call_hook`, its failure is raised, and a hook the host has not
        declared may be called when the plugin contributes it (the arguments are then the
        caller's to get right); a declared hook's arguments and timeout still apply."""
        entry = self._entry(plugin)
        if hook not in entry.install.manifest.contributes.hooks:
            offered = ", ".join(sorted(entry.install.manifest.contributes.hooks)) or "none"
            raise InvalidInputError(
                f"plugin {plugin!r} contributes no hook {hook!r} (it has: {offered})"
            )
        timeout_ms = entry.limits.timeout_ms
        spec = self.hooks.specs.get(hook)
        if spec is not None:
            self.hooks.check_arguments(hook, kwargs)
            if spec.timeout_ms is not None:
                timeout_ms = min(timeout_ms, spec.timeout_ms)
        return await self._invoke(
            entry, "hook", hook, args=[], kwargs=dict(kwargs), timeout_ms=timeout_ms
        )

    async def call_ui(
        self,
        plugin: str,
        surface_id: str,
        request: dict[str, Any],
        *,
        timeout_ms: int | None = None,
    ) -> Any:
        """Ask ``plugin``'s UI handler for ``surface_id`` (``UiRequest.to_wire()`` fields):
        render it or answer an action. The surface must be one the manifest contributes and
        whose ``permissions.ui`` surface was granted; the call activates the plugin (a user is
        looking) and is bounded by ``timeout_ms`` as well as the plugin's own limit. Returns
        what the handler returned, unchecked: the caller holds it to the component schema."""
        entry = self._entry(plugin)
        kind = entry.grants.ui_surfaces.get(surface_id)
        if kind is None:
            offered = ", ".join(sorted(entry.grants.ui_surfaces)) or "none"
            raise InvalidInputError(
                f"plugin {plugin!r} contributes no UI surface {surface_id!r} (it has: {offered})"
            )
        needed = UI_PERMISSION_OF[kind]
        if needed not in entry.grants.permissions.ui:
            raise PermissionDeniedError(
                plugin,
                "ui",
                f"{kind} {surface_id!r} needs {needed!r} in permissions.ui, which was not granted",
            )
        if request.get("id") != surface_id or request.get("surface") != kind:
            raise InvalidInputError(f"the request is for {kind} {surface_id!r}")
        limit = (
            entry.limits.timeout_ms
            if timeout_ms is None
            else min(timeout_ms, entry.limits.timeout_ms)
        )
        return await self._invoke(
            entry, "ui", surface_id, args=[], kwargs=request, timeout_ms=limit
        )

    async def ping_all(self) -> None:
        """Ping every running worker once: record its CPU and memory, kill it if it does not
        answer in time."""
        await self.health.ping_all()

    async def measure(self, name: str) -> PluginStatus:
        """Ping ``name``'s worker now (when it runs), so its CPU and memory readings are
        current rather than as of the last health ping."""
        entry = self._entry(name)
        await self.health.ping(entry)
        [status] = self.status(name)
        return status

    async def run_command(
        self,
        plugin: str,
        command_id: str,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        """Run a command the plugin contributes (a user action: it always activates)."""
        entry = self._entry(plugin)
        if command_id not in entry.grants.commands:
            offered = ", ".join(sorted(entry.grants.commands)) or "none"
            raise InvalidInputError(
                f"plugin {plugin!r} contributes no command {command_id!r} (it has: {offered})"
            )
        return await self._invoke(
            entry,
            "command",
            command_id,
            args=args or [],
            kwargs=kwargs or {},
            timeout_ms=entry.limits.timeout_ms,
        )

    async def deliver_webhook(self, plugin: str, endpoint: str, event: dict[str, Any]) -> Any:
        """Hand one verified webhook delivery (``WebhookEvent.to_wire()`` fields) to the
        plugin's ``@webhook(endpoint)`` handler, activating it, under its call timeout; raises
        what the call raised, so the caller can try again later."""
        entry = self._entry(plugin)
        receive = entry.grants.permissions.webhooks.receive
        if endpoint not in receive:
            raise InvalidInputError(
                f"plugin {plugin!r} receives no webhook {endpoint!r} "
                f"(it has: {', '.join(receive) or 'none'})"
            )
        return await self._invoke(
            entry, "webhook", endpoint, args=[], kwargs=event, timeout_ms=entry.limits.timeout_ms
        )

    def task_types(self) -> dict[str, list[tuple[str, TaskSpec, Limits]]]:
        """Task type -> ``(plugin, its [tasks.TYPE], the plugin's effective limits)`` for every
        added plugin that declares it."""
        found: dict[str, list[tuple[str, TaskSpec, Limits]]] = {}
        for entry in self._plugins.values():
            for task_type, spec in entry.install.manifest.tasks.items():
                found.setdefault(task_type, []).append((entry.name, spec, entry.limits))
        return found

    async def run_task(
        self, plugin: str, task_type: str, task: dict[str, Any], *, timeout_ms: int
    ) -> Any:
        """Run one attempt of a task (``Task.to_wire()`` fields) in the plugin's
        ``@task(task_type)`` handler, activating it; past ``timeout_ms`` the worker is killed
        (a :class:`ResourceLimitExceededError` with ``limit == "timeout_ms"``). Raises what
        the call raised; the queue decides whether to try again."""
        entry = self._entry(plugin)
        declared = entry.install.manifest.tasks
        if task_type not in declared:
            raise InvalidInputError(
                f"plugin {plugin!r} processes no task type {task_type!r} "
                f"(it has: {', '.join(sorted(declared)) or 'none'})"
            )
        return await self._invoke(
            entry, "task", task_type, args=[], kwargs=task, timeout_ms=timeout_ms
        )

    async def emit(self, topic: str, payload: Any = None) -> int:
        """Publish an event from the host; returns how many receivers it was sent to."""
        return await self.services.events.publish(topic, payload, source="host")

    async def _deliver(self, plugin: str, event: Event) -> None:
        entry = self._plugins.get(plugin)
        if entry is None or entry.health.quarantined is not None:
            return
        if entry.running is None and not entry.activates_on("on_event", event.topic):
            return  # not running and this topic does not wake it: like VS Code, it misses it
        await self._ensure(entry, self.config.activation_timeout_s)
        patterns = [h.name for h in entry.handlers if h.kind == "event"]
        for pattern in patterns:
            if match_topic(pattern, event.topic):
                await self._invoke(
                    entry,
                    "event",
                    pattern,
                    args=[event.payload],
                    kwargs={"topic": event.topic, "source": event.source},
                    timeout_ms=entry.limits.timeout_ms,
                )

    async def _invoke(
        self,
        entry: _Entry,
        kind: str,
        name: str,
        *,
        args: list[Any],
        kwargs: dict[str, Any],
        timeout_ms: int,
    ) -> Any:
        started = time.perf_counter()
        outcome = "error"
        try:
            process = entry.running or await self._ensure(entry, timeout_ms / 1000)
            try:
                result = await process.call(kind, name, args, kwargs, timeout_ms=timeout_ms)
            except ResourceLimitExceededError as exc:
                if exc.limit in _REFUSED_ANSWERS:  # refused, the worker is fine: it stays
                    self._audit(entry, "limit", str(exc))
                    raise
                process.terminate(exc)  # over memory it may still run: never reuse it
                self._failed(entry, process, exc)
                raise
            except PluginCrashedError as exc:
                process.terminate(exc)
                self._failed(entry, process, exc)
                raise
            outcome = "ok"
            return result.value
        except PluginQuarantinedError:
            outcome = "quarantined"
            raise
        except ResourceLimitExceededError as exc:
            outcome = "timeout" if exc.limit == "timeout_ms" else "limit"
            raise
        except PluginCrashedError:
            outcome = "crash"
            raise
        except PermissionDeniedError:
            outcome = "denied"
            raise
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.call(entry.name, kind, outcome, elapsed)
            self.detector.call(entry.name, entry.install.manifest.version, kind, outcome, elapsed)
            if self.activity.watching("call"):
                call = Activity(entry.name, "call", f"{kind} {name}", outcome, "", elapsed * 1000)
                self.activity.emit(call)

    # --- starting, failing, restarting ---------------------------------------------------------

    async def _ensure(self, entry: _Entry, budget_s: float) -> PluginProcess:
        """The plugin's running worker, started now if needed (waiting out a short backoff)."""
        running = entry.running
        if running is not None:
            return running
        async with entry.lock:
            running = entry.running
            if running is not None:
                return running
            if self._closed:
                raise PluginCrashedError(
                    entry.name, "the host runtime is shutting down", kind="shutdown"
                )
            current = self._plugins.get(entry.name, entry)
            if current is not entry:  # a hot swap replaced it: the new worker takes the call
                return await self._ensure(current, budget_s)
            if entry.health.quarantined is not None:
                raise PluginQuarantinedError(entry.name, entry.health.quarantined)
            wait = entry.health.wait_s(time.monotonic())
            if wait > budget_s:
                raise PluginCrashedError(
                    entry.name,
                    f"{entry.last_error}; restarting, next attempt in {wait:.1f} s",
                    kind="backoff",
                )
            if wait > 0:
                await asyncio.sleep(wait)
            return await self._start(entry)

    async def _start(self, entry: _Entry) -> PluginProcess:
        install, limits = entry.install, entry.limits
        spec = WorkerSpec(
            plugin=entry.name,
            code_dir=str(install.code_dir),
            data_dir=str(entry.data_dir),
            entry=install.manifest.entry,
            memory_mb=limits.memory_mb,
            cpu_seconds=limits.cpu_seconds,
            max_concurrency=limits.max_concurrency,
            sandbox=self.config.sandbox,
            keep_stdio=install.keep_stdio,
            max_file_bytes=entry.data_quota_mb(self.config) * MIB,
        )
        restarting = entry.health.consecutive > 0
        self._set_state(entry, State.STARTING)
        started = time.perf_counter()
        process: PluginProcess | None = None
        try:
            await self.health.check_data_dir(entry)
            if install.libraries is not None:
                libraries = tuple(str(p) for p in install.libraries())
                spec = msgspec.structs.replace(spec, import_paths=libraries)
            isolation = await asyncio.to_thread(self.isolation.spec_fields, entry)
            handle = await self.launcher.launch(msgspec.structs.replace(spec, **isolation))
            process = PluginProcess(
                entry.name,
                handle,
                entry.broker,
                on_limit=lambda capability, reason: self._audit(entry, "limit", reason, capability),
                on_log=lambda line: self._logged(entry.name, line),
                memory_mb=entry.limits.memory_mb,
            )
            ready = await process.start(self.config.activation_timeout_s)
        except BaseException as exc:
            self._abandon(entry, process, exc)
            raise
        entry.process = process
        entry.handlers = list(ready.handlers)
        entry.sandbox = dict(ready.sandbox)
        entry.health.started(time.monotonic())
        self.metrics.activation(entry.name, time.perf_counter() - started)
        self._set_state(entry, State.ACTIVE)
        applied = sorted(k for k, v in ready.sandbox.items() if v.startswith("applied"))
        detail = f"pid {process.handle.pid}; sandbox layers applied: {', '.join(applied) or 'none'}"
        if restarting:
            entry.restarts += 1
            self.metrics.restart(entry.name)
            self.detector.restart(entry.name)
            self._audit(entry, "restart", f"restarted after: {entry.last_error}; {detail}")
        else:
            self._audit(entry, "activate", detail)
        entry.watcher = asyncio.create_task(self._watch(entry, process))
        return process

    def _abandon(self, entry: _Entry, process: PluginProcess | None, exc: BaseException) -> None:
        """A start that did not finish: end the half-started worker, then record why. A
        sandbox refusal is the policy working (audited, not a failure); any other error of ours
        counts toward backoff and quarantine; a cancellation (the host shutting down) is
        neither."""
        if process is not None:
            reason = exc if isinstance(exc, PlugportError) else None
            process.terminate(
                reason or PluginCrashedError(entry.name, "start cancelled", kind="shutdown")
            )
            self._in_background(process.stop(0))
        if isinstance(exc, SandboxUnavailableError):
            self._set_state(entry, State.INACTIVE)
            entry.last_error = str(exc)
            self._audit(entry, "refuse", str(exc))
        elif isinstance(exc, PlugportError):
            self._record_failure(entry, exc)
        else:
            self._set_state(entry, State.INACTIVE)

    async def _watch(self, entry: _Entry, process: PluginProcess) -> None:
        error = await process.died
        self._failed(entry, process, error)

    def _failed(self, entry: _Entry, process: PluginProcess | None, error: PlugportError) -> None:
        """Count a worker's failure once (the call that saw it and the watcher both report it)."""
        if process is None or entry.process is not process:
            return
        entry.process = None
        process.terminate(error)
        self._in_background(process.stop(0))  # closes the channel and its reader
        self._record_failure(entry, error)

    def _record_failure(self, entry: _Entry, error: PlugportError) -> None:
        kind, cause = failure_kind(error)
        entry.last_error = str(error)
        self.metrics.crash(entry.name, cause)
        self._audit(entry, kind, str(error))
        if entry.health.failed(time.monotonic(), str(error)):
            self._set_state(entry, State.QUARANTINED)
            self._audit(entry, "quarantine", entry.health.quarantined or "")
            return
        self._set_state(entry, State.BACKOFF)
        if entry.always_on and not self._closed:
            self._in_background(self._restart_later(entry), self._restarts)

    async def _restart_later(self, entry: _Entry) -> None:
        await asyncio.sleep(entry.health.wait_s(time.monotonic()))
        if entry.running is None and self._plugins.get(entry.name) is entry:
            await self._start_quietly(entry)

    async def _start_quietly(self, entry: _Entry) -> None:
        with contextlib.suppress(PlugportError):  # audited where it happened
            await self._ensure(entry, self.config.restart.backoff_max_s)

    def _in_background(self, coroutine: Any, tasks: set[asyncio.Task[Any]] | None = None) -> None:
        tasks = self._background if tasks is None else tasks
        task = asyncio.create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def manifest_of(self, name: str) -> Manifest:
        """The manifest of added plugin ``name``."""
        return self._entry(name).install.manifest

    def install_of(self, name: str) -> PluginInstall:
        """What added plugin ``name`` runs: its manifest, code directory and grants."""
        return self._entry(name).install

    def added(self) -> list[str]:
        """The plugins added (a host adds the enabled ones), sorted: whose surfaces a page
        may offer."""
        return sorted(self._plugins)

    def granted(self, name: str) -> Permissions:
        """The permissions the operator consented to for added plugin ``name``: what the
        broker and :meth:`call_ui` check."""
        return self._entry(name).grants.permissions

    # --- small helpers --------------------------------------------------------------------------

    def _grants_of(self, name: str) -> Grants | None:
        entry = self._plugins.get(name)
        return None if entry is None else entry.grants

    def _entry(self, name: str) -> _Entry:
        entry = self._plugins.get(name)
        if entry is None:
            known = ", ".join(sorted(self._plugins)) or "none"
            raise InvalidInputError(f"no plugin {name!r} is added (added: {known})")
        return entry

    def _register_hooks(self, entry: _Entry) -> None:
        for hook, priority in entry.install.manifest.contributes.hooks.items():
            if hook in self.hooks.specs:
                self.hooks.register(HookImpl(entry.name, hook, priority))

    def _set_state(self, entry: _Entry, state: State) -> None:
        entry.state = state
        if self._plugins.get(entry.name) is entry:  # not a swap's candidate or retired worker
            self.metrics.state(entry.name, state.value)

    def _audit(self, entry: _Entry, kind: str, reason: str, capability: str = "") -> None:
        self._record(AuditEvent(entry.name, kind, reason, capability))

    def _record(self, event: AuditEvent) -> None:
        self.audit.record(event)
        if self.activity.watching("audit"):
            self.activity.emit(Activity(event.plugin, "audit", event.kind, "", event.reason))

    def _logged(self, plugin: str, line: Log) -> None:
        if self.activity.watching("log"):
            self.activity.emit(
                Activity(plugin, "log", line.level, "", line.message, None, line.fields)
            )
