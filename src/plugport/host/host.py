"""``PluginHost``: what an application embeds. It installs, updates and removes plugins from
registries, URLs, files and development directories, and runs them in the sandbox.

    async with PluginHost(app="myapp", app_version="2.4.0", home=home,
                          registries=["https://plugins.example.com"]) as host:
        await host.install("acme.hello")
        outcomes = await host.hooks.greet(name="Ada")
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from plugport._version import __version__
from plugport.errors import (
    ConflictError,
    ConsentError,
    InvalidInputError,
    NotFoundError,
    PluginRuntimeError,
    PlugportError,
    RegistryResponseError,
)
from plugport.host._plans import (
    dependency_requirements,
    needed_by,
    update_requirements,
    update_targets,
    updates,
)
from plugport.host._withdrawn_rules import installed_quarantine
from plugport.host.client import RegistryClient, RetryPolicy
from plugport.host.consent import Consent, ConsentRequest, needs_consent, refuse_growth
from plugport.host.context import OperationContext, Progress
from plugport.host.fetch import Fetcher, RegistrySource
from plugport.host.install import HostPaths, Installer, Staged
from plugport.host.plugin_logs import LogRecord, PluginLogs
from plugport.host.policy import parse_local_services, parse_private_targets
from plugport.host.resolver import Requirement, resolve
from plugport.host.secrets import EncryptedSecretStore, SecretInfo, SecretStore
from plugport.host.secrets._rules import check_declared, check_names
from plugport.host.secrets.backends import open_store
from plugport.host.secrets.oauth2 import (
    OAuth2Broker,
    OAuth2TokenSource,
    ProviderReach,
    providers_of,
)
from plugport.host.settings import missing_required, setting_command, without_required
from plugport.host.sources import parse_source
from plugport.host.state import HostAudit, HostState, Installation, Journal
from plugport.host.tasks import QueueOptions, TaskQueue, engine_for, open_task_store
from plugport.host.tasks.metrics import QueueDepthCollector
from plugport.host.tasks.outbound import QueueDeliveries
from plugport.host.tasks.workflows import WorkflowRunner
from plugport.manifest import OAuth2Provider, Permissions, load_manifest
from plugport.runtime._db import RuntimeDatabase
from plugport.runtime.audit import AuditEvent, last_failure
from plugport.runtime.capabilities.config import effective_settings
from plugport.runtime.capabilities.mail import MailOptions, MailRelay
from plugport.runtime.hooks import HookOutcome, HookSpec
from plugport.runtime.launcher import ZygoteLauncher
from plugport.runtime.outbox import SqliteOutbox
from plugport.runtime.supervisor import PluginInstall, PluginStatus, Supervisor, SupervisorConfig

__all__ = ["InstallReport", "PluginHost"]


@dataclass(frozen=True)
class InstallReport:
    installed: list[tuple[str, str, str | None]] = field(default_factory=list)
    """``(name, new version, previous version or None)`` for each plugin put in place."""
    unchanged: list[tuple[str, str]] = field(default_factory=list)
    needs_settings: dict[str, list[str]] = field(default_factory=dict)
    """Plugins put in place disabled because settings their schema requires are missing:
    name -> the keys. Set them (:meth:`PluginHost.set_setting`), then enable the plugin."""
    unsigned: list[str] = field(default_factory=list)
    """Plugins put in place from a package index with no signature (the host's policy
    ``allow_unsigned_index`` allowed it): name each one to the operator."""


class _Hooks:
    def __init__(self, host: PluginHost) -> None:
        self._host = host

    def __getattr__(self, hook: str) -> Callable[..., Any]:
        async def call(**kwargs: Any) -> list[HookOutcome]:
            return await self._host.supervisor.call_hook(hook, **kwargs)

        return call


class _Commands:
    def __init__(self, host: PluginHost) -> None:
        self._host = host

    async def run(self, plugin: str, command: str, *args: Any, **kwargs: Any) -> Any:
        return await self._host.supervisor.run_command(plugin, command, list(args), kwargs)


class _Events:
    def __init__(self, host: PluginHost) -> None:
        self._host = host

    async def emit(self, topic: str, payload: Any = None) -> int:
        return await self._host.supervisor.emit(topic, payload)


class PluginHost:
    def __init__(
        self,
        *,
        app: str,
        app_version: str,
        home: Path,
        registries: Sequence[str] = (),
        registry_keys: Mapping[str, str] | None = None,
        tuf_roots: Mapping[str, bytes] | None = None,
        index_fallback: bool = True,
        hookspecs: Iterable[HookSpec] = (),
        sandbox: Literal["strict", "best-effort"] = "strict",
        consent: Consent = refuse_growth,
        preapproved: Permissions | None = None,
        offline: bool = False,
        cache_ttl_s: float = 300.0,
        registry_retry: RetryPolicy | None = None,
        telemetry: bool = True,
        actor: str | None = None,
        transport: httpx.BaseTransport | None = None,
        supervisor_config: SupervisorConfig | None = None,
        progress: Progress | None = None,
        read_only: bool = False,
        allow_unsigned_index: bool = False,
        secrets: SecretStore | None = None,
        private_targets: Mapping[str, Sequence[str]] | None = None,
        private_targets_from: str | None = None,
        local_services: Mapping[str, Mapping[str, str]] | None = None,
        mail: MailRelay | None = None,
        tasks_url: str | None = None,
        task_options: QueueOptions | None = None,
        run_tasks: bool = True,
    ) -> None:
        """``read_only``: for commands that only read (list, status, audit, search, info,
        check-updates). A home that does not exist yet is read as empty and nothing is created
        for it: no directory, no state file, registry metadata cached in memory only; changing
        what is installed is refused.

        ``tuf_roots``: the TUF root (the bytes of a ``root.json`` the registry's operator
        published) to verify each registry from, by URL. A registry with no root here is
        verified through TUF from its root version 1 on first contact when it serves TUF
        metadata and this host has not pinned its v1 key; else by its v1 signed index, unless
        ``index_fallback`` is False (then it is refused).

        ``allow_unsigned_index``: the operator's policy that a plugin wheel from a package index
        with no signature, and no registry's signed index listing it, may still be installed
        (marked unsigned, and audited); off by default, and no install option turns it on.

        ``secrets``: where credential values are kept; by default the store
        ``HOME/policy.toml``'s ``[secrets]`` names (``HOME/secrets.sqlite``, encrypted, made
        when the first secret is set).

        ``private_targets``: the operator's policy that a plugin may reach these private
        ``host:port`` endpoints (plugin name -> endpoints; ``[private-targets]`` in
        ``HOME/policy.toml`` for the CLI). ``private_targets_from`` names where the operator
        writes them, quoted by a refusal the policy would lift and by the audit of each fetch
        that reaches one.

        ``local_services``: the operator's policy that a local server answers a plugin's
        requests to a host (plugin name -> {host name -> loopback ``address:port``};
        ``[local-services]`` in ``HOME/policy.toml`` for the CLI): a fake or a mock of a
        service, for a demo, a staging host or a machine with no way out.

        ``mail``: the operator's SMTP relay for plugins' ``mail.send`` (``[mail]`` in
        ``HOME/policy.toml``); without it, mail is refused naming that table.

        ``tasks_url``: where the task queue is: ``None`` for SQLite files in the home (the
        embedded default), or a ``postgresql://`` URL that several hosts share as worker
        nodes (then ``task_options`` should say ``exclusive=False``). ``run_tasks``: whether
        this host takes tasks off the queue once started (a CLI that only submits does not)."""
        self.app = app
        self.app_version = app_version
        self.paths = HostPaths(Path(home).absolute())  # workers need absolute paths
        self.read_only = read_only
        self.exists = self.paths.state_file.is_file()
        """Whether the home held a state file when the host was built."""
        ephemeral = read_only and not self.exists
        if not ephemeral:
            self.paths.make()
        self.state = HostState(":memory:" if ephemeral else self.paths.state_file)
        self.installer = Installer(self.paths, self.state)
        self.private_targets = parse_private_targets(
            {name: list(endpoints) for name, endpoints in (private_targets or {}).items()},
            where="PluginHost(private_targets=...)",
        )
        self.local_services = parse_local_services(
            {name: dict(services) for name, services in (local_services or {}).items()},
            where="PluginHost(local_services=...)",
        )
        self.private_targets_from = (
            private_targets_from or "the private_targets the application gives PluginHost"
            if private_targets is not None
            else ""
        )
        self.registry_keys = dict(registry_keys or {})
        self.context = OperationContext(actor or os.environ.get("USER", "host"), consent, progress)
        """Who operations are for when a call passes no ``context=``."""
        self.preapproved = preapproved
        self.offline = offline
        self.telemetry = telemetry
        self.clients = [
            RegistryClient(
                url,
                cache_dir=None if ephemeral else self.paths.cache,
                ttl_s=cache_ttl_s,
                offline=offline,
                transport=transport,
                retry=registry_retry,
            )
            for url in registries
        ]
        config = supervisor_config or SupervisorConfig(
            state_dir=self.paths.runtime, sandbox=sandbox
        )
        if mail is not None:
            config = dataclasses.replace(config, mail=MailOptions(relay=mail))
        self.secrets: SecretStore = secrets if secrets is not None else open_store(self.paths.root)
        """The plugins' credential values: set by the operator, used by the runtime."""
        self.supervisor = Supervisor(
            config,
            db=RuntimeDatabase() if ephemeral else None,
            secrets=self.secrets,
            # Deliveries are tasks on the host's queue (self.outbound): the runtime's own
            # outbox is never written, so it needs no file.
            outbox=SqliteOutbox(":memory:"),
        )
        self.oauth2 = OAuth2Broker(
            self.secrets,
            self.oauth2_provider,
            audit=self.supervisor.audit,
            reach=ProviderReach(
                lambda: self.supervisor.services.net,
                self.private_targets,
                self.private_targets_from,
            ),
        )
        """Obtains and refreshes the tokens of the plugins' oauth2 credentials; their fetches
        get fresh tokens through it (the host service gives each workspace its own, with the
        pending authorizations of its code flow)."""
        self.supervisor.services.secrets = OAuth2TokenSource(self.secrets, self.oauth2)
        for spec in hookspecs:
            self.supervisor.declare_hook(spec)
        self.fetcher = Fetcher(
            paths=self.paths,
            state=self.state,
            installer=self.installer,
            clients=self.clients,
            registry_keys=self.registry_keys,
            offline=offline,
            actor=self.actor,
            progress=progress,
            allow_unsigned_index=allow_unsigned_index,
            tuf_roots=tuf_roots,
            index_fallback=index_fallback,
        )
        self.tasks = self._task_queue(tasks_url, task_options, ephemeral)
        """Plugins' ``[tasks]`` work: submit, await, cancel, retry, schedules
        (:class:`~plugport.host.tasks.TaskQueue`)."""
        self.workflows = WorkflowRunner(self.tasks, self._tasks_db(tasks_url, ephemeral))
        """Workflow runs over the tasks: start, status, cancel, await
        (:class:`~plugport.host.tasks.workflows.WorkflowRunner`), in the tasks' database."""
        self.run_tasks = run_tasks
        self.outbound = QueueDeliveries(self.tasks, self.supervisor.webhooks)
        """Plugins' outbound webhook deliveries, on the task queue."""
        self.logs = PluginLogs(self.paths.logs)
        """Each plugin's log lines, written while the runtime runs (``plugport logs``)."""
        self._unsubscribe_logs: Callable[[], None] | None = None
        self.hooks = _Hooks(self)
        self.commands = _Commands(self)
        self.events = _Events(self)
        self._lock = asyncio.Lock()
        self._reports: set[asyncio.Task[bool]] = set()
        self._opened = False
        self._started = False

    @property
    def actor(self) -> str:
        """The default context's actor (each call may pass its own ``context=``)."""
        return self.context.actor

    @property
    def consent(self) -> Consent:
        return self.context.consent

    @property
    def environment(self) -> dict[str, str]:
        return {"plugport": __version__, self.app: self.app_version}

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> PluginHost:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Recover from an interrupted install, then start the runtime with every enabled
        plugin known to it (activation stays lazy, except ``on_startup`` plugins)."""
        self.open()
        await self.start_runtime()

    def open(self) -> None:
        """Only the state: roll back an install a crash interrupted and sweep leftovers. Enough
        for reading (list, audit, search); installing and running start the runtime too."""
        if not self._opened:
            self.installer.recover(actor=self.actor)
            self._opened = True

    async def start_runtime(self) -> None:
        self.open()
        if self._started or (self.read_only and not self.exists):
            return  # a home that does not exist has nothing to run
        for installation in self.state.installations():
            if installation.enabled:
                self._add(installation)
        self._unsubscribe_logs = self.supervisor.activity.subscribe(self.logs.write, ("log",))
        await self.supervisor.start()
        if not self.read_only:
            await self.outbound.import_legacy(self.paths.runtime)  # a 0.2 outbox file
        if self.run_tasks and not self.read_only:
            await self.tasks.start()
            await self.workflows.open()
        if isinstance(self.supervisor.launcher, ZygoteLauncher):
            # Its imports (~0.5 s) overlap the application's own start-up instead of delaying
            # the first plugin call or install.
            await self.supervisor.launcher.start()
        self._started = True

    async def stop(self) -> None:
        """Close every part, each even when one closed before it fails (a failing workflow
        runner must not leave plugin processes running); the first failure is raised after.
        The exit stack runs its callbacks last-pushed first, so they are pushed in reverse."""
        async with contextlib.AsyncExitStack() as parts:
            parts.callback(self.state.close)
            for client in self.clients:
                parts.callback(client.close)
            if isinstance(self.secrets, EncryptedSecretStore):
                parts.callback(self.secrets.close)
            parts.callback(self.logs.close)
            parts.callback(self._stop_log_copy)
            parts.push_async_callback(self.supervisor.close)
            parts.push_async_callback(self.tasks.close)
            parts.push_async_callback(self.workflows.close)
            await self.reports_sent()

    def _stop_log_copy(self) -> None:
        if self._unsubscribe_logs is not None:
            self._unsubscribe_logs()
            self._unsubscribe_logs = None

    def _tasks_db(self, url: str | None, ephemeral: bool) -> str | Path:
        if ephemeral and not (self.paths.root / "tasks.sqlite").exists():
            return ":memory:"
        return url or self.paths.root / "tasks.sqlite"

    def _task_queue(
        self, url: str | None, options: QueueOptions | None, ephemeral: bool
    ) -> TaskQueue:
        if ephemeral and not (self.paths.root / "tasks.sqlite").exists():
            # A read of a home that does not exist creates no file.
            store, engine = open_task_store(":memory:"), engine_for(None, memory=True)
        elif url is not None:
            store, engine = open_task_store(url), engine_for(url)
        else:
            store = open_task_store(self.paths.root / "tasks.sqlite")
            engine = engine_for(self.paths.root / "tasks-queue.sqlite")
        queue = TaskQueue(
            self.supervisor,
            store,
            engine,
            options=options or QueueOptions(exclusive=url is None),
            lock_file=None if ephemeral or url is not None else self.paths.root / "tasks.lock",
        )
        # Queue depth and dead letters per (plugin, type), read from the store at each scrape.
        self.supervisor.metrics.registry.register(QueueDepthCollector(store.counts))
        return queue

    # --- reading ------------------------------------------------------------------------------

    def installed(self) -> list[Installation]:
        return self.state.installations()

    def status(self) -> list[dict[str, Any]]:
        """Every installation with its runtime state (``disabled`` when it is not loaded)."""
        running = {s.name: s for s in self.supervisor.status()}
        problems = self.problems()
        rows = []
        for installation in self.state.installations():
            runtime: PluginStatus | None = running.get(installation.name)
            failure = self.last_error(installation.name)
            rows.append(
                {
                    "name": installation.name,
                    "version": installation.version,
                    "enabled": installation.enabled,
                    "source": installation.source_kind,
                    "state": runtime.state if runtime else "disabled",
                    "quarantined": runtime.quarantined if runtime else None,
                    "last_error": failure.reason if failure else None,
                    "last_error_kind": failure.kind if failure else None,
                    "last_error_at": failure.at if failure else None,
                    "restarts": runtime.restarts if runtime else 0,
                    "needs_settings": self._needs_settings(installation.name),
                    "problems": problems.get(installation.name, []),
                }
            )
        return rows

    def problems(self) -> dict[str, list[dict[str, Any]]]:
        """Plugin -> the runtime's current findings about it (``Finding.to_dict()``: kind,
        severity, summary, explanation, numbers, since), for the plugins the runtime runs. A
        process that only looks (``plugport status``) sees the findings the running host last
        reported and did not clear, from the audit log."""
        found: dict[str, list[dict[str, Any]]] = {}
        for finding in self.supervisor.problems():
            found.setdefault(finding.plugin, []).append(finding.to_dict())
        return found

    def last_error(self, name: str) -> AuditEvent | None:
        """``name``'s newest crash, kill, limit, refusal or quarantine since it was last
        installed, updated, enabled or disabled, from the runtime's persisted audit log: it
        survives the process that saw it."""
        installation = self.state.get(name)
        since = installation.updated_at if installation is not None else None
        return last_failure(self.supervisor.audit, name, since=since)

    def log_lines(self, name: str, *, lines: int = 50) -> list[LogRecord]:
        """The last ``lines`` lines ``name`` logged (``self.log`` in its code), oldest first,
        from this and earlier processes. A name that is neither installed nor has logs left
        from an uninstall is a :class:`~plugport.errors.NotFoundError`."""
        if self.state.get(name) is None and not self.logs.exists(name):
            raise NotFoundError("installed plugin", name)
        return self.logs.tail(name, lines)

    def audit(self, *, subject: str | None = None, limit: int = 100) -> list[HostAudit]:
        """The host's operations (install, update, consent, enable …) and the runtime's
        decisions (activate, deny, limit, kill, crash, restart, quarantine, refuse …; actor
        ``runtime``, the reason and capability in ``detail``), newest first, merged by time;
        ``subject`` keeps one plugin's."""
        runtime = self.supervisor.audit.query(plugin=subject, limit=limit)
        rows = self.state.audit_trail(subject=subject, limit=limit)
        rows += [_host_row(event) for event in runtime]
        return sorted(rows, key=lambda row: row.at, reverse=True)[:limit]

    def deliveries(
        self, *, state: str | None = None, plugin: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Outbound webhook deliveries, newest first (``state="dead"``: the dead letters), as
        the operator sees them: target, state, attempts, last answer; never the body."""
        return self.outbound.list(state=state, plugin=plugin, limit=limit)

    def redeliver(
        self, delivery_id: str, *, context: OperationContext | None = None
    ) -> dict[str, Any]:
        """Send a dead delivery again, with a fresh count of attempts (a running host's
        sender picks it up within its poll interval). Audited as the acting operator, a
        refusal too; the target is named by its host only (a receiver's path may carry its
        token)."""
        actor = (context or self.context).actor
        outbound = self.outbound
        try:
            delivery = outbound.redeliver(delivery_id)
        except PlugportError as exc:
            try:
                subject = outbound.get(delivery_id).plugin
            except NotFoundError:
                subject = "webhooks"
            self.state.audit(
                "redeliver", subject, "refused", actor=actor, delivery=delivery_id, reason=str(exc)
            )
            raise
        host = urlsplit(delivery.target).hostname or "?"
        self.state.audit(
            "redeliver", delivery.plugin, "ok", actor=actor, delivery=delivery.id, target_host=host
        )
        return delivery.public()

    def search(self, q: str = "", **filters: str) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v}
        if self.app and "host" not in params and params.get("compatible", "1") != "0":
            params.pop("compatible", None)
            params |= {"host": self.app, "host_version": self.app_version}
        params.pop("compatible", None)
        return self._client().search(q, **params)

    def info(self, name: str) -> dict[str, Any]:
        for client in self.clients:
            try:
                return client.plugin(name)
            except RegistryResponseError as exc:
                if exc.status != 404:
                    raise
        raise NotFoundError("plugin", name)

    def check_updates(self) -> list[tuple[str, str, str]]:
        """``(name, installed, newest compatible)`` for registry installs with something newer."""
        source = RegistrySource(self.clients, revalidate=True)
        installed = self.state.installations()
        newest: dict[str, str] = {}
        for installation in installed:
            if installation.source_kind != "registry":
                continue
            try:
                resolution = resolve(
                    [Requirement(installation.name, "*", None)],
                    source,
                    environment=self.environment,
                )
            except PlugportError:
                continue
            newest[installation.name] = resolution.chosen[installation.name].version
        return updates(installed, newest)

    def quarantined_installs(self) -> list[tuple[str, str, str]]:
        """``(name, installed version, the registry's reason)`` for each registry install whose
        version the registry has quarantined since (it no longer offers it, even pinned). Asks
        each plugin's versions afresh (a 304 when unchanged), and its listing only when the
        installed version is not among them; a registry that cannot be asked flags nothing."""
        flagged = []
        for installation in self.state.installations():
            if installation.source_kind != "registry":
                continue
            for client in self.clients:
                try:
                    rows = client.versions(installation.name, revalidate=True)
                    if any(row.get("version") == installation.version for row in rows):
                        break  # still offered
                    listed = client.plugin(installation.name, revalidate=True).get("versions")
                except RegistryResponseError as exc:
                    if exc.status == 404:
                        continue
                    break
                except PlugportError:
                    break
                reason = installed_quarantine(installation.version, listed)
                if reason is not None:
                    flagged.append((installation.name, installation.version, reason))
                break
        return flagged

    # --- changing what is installed -----------------------------------------------------------

    async def install(
        self,
        *specs: str,
        trust_new_key: bool = False,
        key: Path | None = None,
        index_url: str | None = None,
        context: OperationContext | None = None,
    ) -> InstallReport:
        """Install each of ``specs`` (registry requirements, URLs, archives, directories) with
        whatever they depend on, all or nothing. With ``index_url`` (a PEP 503/691 package
        index), a name is a plugin wheel on that index (``acme.hello``, ``acme-hello==1.0``).
        ``context``: who this install is for (default: the host's own)."""
        context = context or self.context
        if not specs:
            raise InvalidInputError("nothing to install; name at least one plugin")
        self._writable("install")
        await self.start_runtime()
        async with self._lock:
            sources = [
                parse_source(
                    s, is_file=Path(s).is_file(), is_dir=Path(s).is_dir(), index_url=index_url
                )
                for s in specs
            ]
            staged: list[Staged] = []
            try:
                for source in sources:
                    if source.kind != "registry":
                        staged.append(
                            await self.fetcher.local(source, trust_new_key, key, context=context)
                        )
                requirements = [s.requirement for s in sources if s.requirement is not None]
                for item in staged:  # what local archives need comes from the registries
                    requirements += dependency_requirements(
                        item.name, item.version, item.manifest.dependencies
                    )
                local = {item.name for item in staged}
                staged += await self._resolved(
                    [r for r in requirements if r.name not in local],
                    trust_new_key=trust_new_key,
                    context=context,
                )
                requested = [s.requirement.name for s in sources if s.requirement is not None]
                requested += list(local)
                return await self._apply(
                    staged, requested=requested, operation="install", context=context
                )
            except BaseException:
                self.installer.discard(staged)
                raise

    async def update(
        self,
        *names: str,
        trust_new_key: bool = False,
        versions: Mapping[str, str] | None = None,
        context: OperationContext | None = None,
    ) -> InstallReport:
        """Move ``names`` (or, with none, every registry install) to their newest compatible
        versions, keeping what other plugins need satisfied; ``versions`` (name -> version)
        moves a plugin to exactly that version instead."""
        context = context or self.context
        self._writable("update")
        await self.start_runtime()
        async with self._lock:
            installed = {i.name: i for i in self.state.installations()}
            targets = update_targets(names, installed)
            staged: list[Staged] = []
            try:
                staged = await self._resolved(
                    update_requirements(targets, installed, versions),
                    trust_new_key=trust_new_key,
                    refresh=set(targets),
                    context=context,
                )
                return await self._apply(staged, requested=[], operation="update", context=context)
            except BaseException:
                self.installer.discard(staged)
                raise

    async def uninstall(
        self, name: str, *, purge: bool = False, context: OperationContext | None = None
    ) -> None:
        context = context or self.context
        self._writable("uninstall")
        await self.start_runtime()
        async with self._lock:
            installation = self.state.get(name)
            if installation is None:
                raise NotFoundError("installed plugin", name)
            blocking = needed_by(name, self.state.installations())
            if blocking:
                self.state.audit(
                    "uninstall", name, "refused", actor=context.actor, needed_by=blocking
                )
                raise ConflictError(
                    "plugin", name, "is needed by " + ", ".join(blocking) + "; uninstall it first"
                )
            if name in {s.name for s in self.supervisor.status()}:
                await self.supervisor.remove(name, purge_data=purge)
            elif purge:
                self.supervisor.purge(name)
            if purge:
                self.logs.purge(name)
                self.workflows.purge(name)
            self.installer.remove(installation, actor=context.actor, purge=purge)
            await self._report(installation, "uninstall")

    async def enable(self, name: str, *, context: OperationContext | None = None) -> None:
        """Enable ``name``; refused, naming the keys and the command to set them, while a
        setting its ``config`` schema requires is missing."""
        actor = (context or self.context).actor
        self._writable("enable")
        await self.start_runtime()
        async with self._lock:
            installation = self._installed(name)
            if missing := self.missing_settings(name):
                self.state.audit("enable", name, "refused", actor=actor, missing=missing)
                raise InvalidInputError(
                    f"{name} needs settings: {', '.join(missing)}; set them with "
                    f"{setting_command(name, missing)}, then plugport enable {name}"
                )
            if not installation.enabled:
                self.state.set_enabled(name, True)
                self._add(self._installed(name))
            self.state.audit("enable", name, "ok", actor=actor)

    async def disable(self, name: str, *, context: OperationContext | None = None) -> None:
        actor = (context or self.context).actor
        self._writable("disable")
        await self.start_runtime()
        async with self._lock:
            installation = self._installed(name)
            if installation.enabled:
                self.state.set_enabled(name, False)
                if name in {s.name for s in self.supervisor.status()}:
                    await self.supervisor.remove(name)
            self.state.audit("disable", name, "ok", actor=actor)

    # --- settings -----------------------------------------------------------------------------

    def settings(self, name: str) -> dict[str, Any]:
        """What ``name`` reads with ``self.api.config.get()``: its schema's defaults overlaid
        by the settings the operator set."""
        return effective_settings(self.config_schema(name), self._stored(name))

    def stored_settings(self, name: str) -> dict[str, Any]:
        """Only the settings the operator set (no defaults)."""
        self._installed(name)
        return self._stored(name)

    def config_schema(self, name: str) -> dict[str, Any]:
        """The ``config`` JSON Schema of the installed version's manifest."""
        return dict(load_manifest(self.paths.code_dir(self._installed(name))).config)

    def missing_settings(self, name: str) -> list[str]:
        """Keys the schema marks ``required`` that have no value (given or default)."""
        return missing_required(self.config_schema(name), self._stored(name))

    def configure(
        self,
        name: str,
        values: Mapping[str, Any],
        *,
        context: OperationContext | None = None,
    ) -> dict[str, Any]:
        """Replace ``name``'s settings with ``values``, checked against its ``config`` schema
        (every problem named, as ``config.<key>: <rule>``), and return the effective settings;
        a refused change stores nothing. While the plugin is disabled a ``required`` key may
        still be missing (so settings can be given one at a time); an enabled plugin must keep
        them all. A running plugin reads the new values on its next ``config.get``."""
        self._writable("configure")
        installation = self._installed(name)
        schema = self.config_schema(name)
        values = dict(values)
        missing = missing_required(schema, values)
        if installation.enabled and missing:
            raise InvalidInputError(
                f"{name} is enabled and needs settings: {', '.join(missing)}; "
                f"set another value, or plugport disable {name} first"
            )
        previous = self._stored(name)
        effective = self.supervisor.services.settings.set(name, without_required(schema), values)
        changed = sorted(
            k for k in previous.keys() | values.keys() if previous.get(k) != values.get(k)
        )
        actor = (context or self.context).actor
        self.state.audit("configure", name, "ok", actor=actor, keys=changed)  # never values
        return effective

    def set_setting(
        self, name: str, key: str, value: Any, *, context: OperationContext | None = None
    ) -> dict[str, Any]:
        """Set one key (see :meth:`configure`)."""
        return self.configure(name, self._stored_checked(name) | {key: value}, context=context)

    def unset_setting(
        self, name: str, key: str, *, context: OperationContext | None = None
    ) -> dict[str, Any]:
        """Remove one key, so its default (if any) applies again (see :meth:`configure`)."""
        stored = self._stored_checked(name)
        if key not in stored:
            raise InvalidInputError(
                f"{name}: setting {key!r} is not set (set: {', '.join(sorted(stored)) or 'none'})"
            )
        del stored[key]
        return self.configure(name, stored, context=context)

    def _needs_settings(self, name: str) -> list[str]:
        try:
            return self.missing_settings(name)
        except PlugportError:  # its code directory is gone: status still answers
            return []

    def _stored_checked(self, name: str) -> dict[str, Any]:
        self._installed(name)
        return self._stored(name)

    def _stored(self, name: str) -> dict[str, Any]:
        return self.supervisor.services.settings.stored(name)

    # --- secrets ------------------------------------------------------------------------------

    def list_secrets(self, plugin: str | None = None) -> list[SecretInfo]:
        """What is set (never the values): name, fingerprint, when set, by whom, last used."""
        return self.secrets.list(plugin)

    def declared_credentials(self, plugin: str) -> list[str] | None:
        """The secrets ``plugin``'s installed manifest names: its ``[credentials]`` (with the
        client id and secret of each oauth2 one) and the secrets its ``[webhooks]`` verify
        with; None when it is not installed here."""
        installation = self.state.get(plugin)
        if installation is None:
            return None
        manifest = load_manifest(self.paths.code_dir(installation))
        clients = [
            f"{name}.{part}"
            for name, credential in manifest.credentials.items()
            if credential.kind == "oauth2"
            for part in ("client_id", "client_secret")
        ]
        return sorted(
            {*manifest.credentials, *clients, *(w.secret for w in manifest.webhooks.values())}
        )

    def oauth2_credentials(self, plugin: str) -> dict[str, OAuth2Provider]:
        """``plugin``'s oauth2 credentials (sorted by name) and their providers, from its
        installed manifest."""
        installation = self.state.get(plugin)
        if installation is None:
            raise NotFoundError("installed plugin", plugin)
        manifest = load_manifest(self.paths.code_dir(installation))
        return {
            name: credential.oauth2
            for name, credential in sorted(manifest.credentials.items())
            if credential.oauth2 is not None
        }

    def oauth2_provider(self, plugin: str, credential: str) -> OAuth2Provider:
        """The provider of ``plugin``'s oauth2 credential ``credential``, from its installed
        manifest."""
        installation = self.state.get(plugin)
        if installation is None:
            raise NotFoundError("installed plugin", plugin)
        return providers_of(load_manifest(self.paths.code_dir(installation)), credential)

    def set_secret(
        self,
        plugin: str,
        name: str,
        value: bytes,
        *,
        rotate: bool = False,
        context: OperationContext | None = None,
    ) -> SecretInfo:
        """Set (or with ``rotate``, replace an existing) secret of ``plugin``. An installed
        plugin's secrets are the credentials its manifest declares; one not installed yet may
        have them set ahead of its install. Audited without the value."""
        action = "secret-rotated" if rotate else "secret-set"
        actor = (context or self.context).actor
        try:
            self._writable(action)
            check_names(plugin, name)
            declared = self.declared_credentials(plugin)
            if declared is not None:
                check_declared(plugin, name, declared)
            if rotate and name not in {i.name for i in self.secrets.list(plugin)}:
                raise NotFoundError(
                    "secret",
                    f"{plugin}/{name}",
                    f"nothing to rotate; set it first with plugport secret set {plugin} {name}",
                )
            info = self.secrets.set(plugin, name, value, actor=actor)
        except PlugportError as exc:
            self.state.audit(action, plugin, "refused", actor=actor, secret=name, reason=str(exc))
            raise
        self.state.audit(
            action,
            plugin,
            "ok",
            actor=actor,
            secret=name,
            fingerprint=info.fingerprint,
            installed=declared is not None,
        )
        return info

    def delete_secret(
        self, plugin: str, name: str, *, context: OperationContext | None = None
    ) -> None:
        self._writable("secret-deleted")
        actor = (context or self.context).actor
        if not self.secrets.delete(plugin, name):
            self.state.audit("secret-deleted", plugin, "refused", actor=actor, secret=name)
            set_ = ", ".join(i.name for i in self.secrets.list(plugin)) or "none"
            raise NotFoundError("secret", f"{plugin}/{name}", f"set for {plugin}: {set_}")
        self.state.audit("secret-deleted", plugin, "ok", actor=actor, secret=name)

    def rotate_master_key(
        self, new_key: bytes | None = None, *, context: OperationContext | None = None
    ) -> str:
        """Re-encrypt every secret under a new master key (see :mod:`plugport.host.secrets`);
        returns the new key's id."""
        self._writable("master-key-rotated")
        actor = (context or self.context).actor
        if not isinstance(self.secrets, EncryptedSecretStore):
            raise InvalidInputError(
                "this home keeps its secrets in Vault (policy.toml [secrets] backend); "
                "there is no master key here to rotate"
            )
        try:
            new_id = self.secrets.rotate_master_key(new_key)
        except PlugportError as exc:
            self.state.audit(
                "master-key-rotated", "secrets", "refused", actor=actor, reason=str(exc)
            )
            raise
        self.state.audit("master-key-rotated", "secrets", "ok", actor=actor, key_id=new_id)
        return new_id

    # --- the steps --------------------------------------------------------------------------

    def _writable(self, operation: str) -> None:
        if self.read_only:
            raise InvalidInputError(
                f"{operation}: the host home {self.paths.root} was opened read-only"
            )

    def _client(self) -> RegistryClient:
        if not self.clients:
            raise InvalidInputError(
                "no registry configured; pass --registry URL or set PLUGPORT_REGISTRY"
            )
        return self.clients[0]

    async def _resolved(
        self,
        requirements: list[Requirement],
        *,
        trust_new_key: bool,
        refresh: set[str] | None = None,
        context: OperationContext,
    ) -> list[Staged]:
        if requirements:
            self._client()  # a clear error when there is no registry to resolve against
        return await self.fetcher.resolved(
            requirements,
            environment=self.environment,
            trust_new_key=trust_new_key,
            refresh=refresh,
            context=context,
        )

    def _installed(self, name: str) -> Installation:
        installation = self.state.get(name)
        if installation is None:
            raise NotFoundError("installed plugin", name)
        return installation

    def _add(self, installation: Installation) -> None:
        self.supervisor.add(self._install(installation))

    def _install(self, installation: Installation) -> PluginInstall:
        """``installation`` as the runtime runs it: its code, grants and libraries."""
        code_dir = self.paths.code_dir(installation)
        manifest = load_manifest(code_dir)
        granted = Permissions.model_validate(installation.permissions)
        libraries = functools.partial(self.installer.libraries.import_paths, code_dir, manifest)
        return PluginInstall(
            manifest,
            code_dir,
            granted,
            libraries=libraries,
            local_endpoints=self.private_targets.get(manifest.name, ()),
            local_policy=self.private_targets_from,
            local_services=self.local_services.get(manifest.name, {}),
        )

    async def _apply(
        self,
        staged: list[Staged],
        *,
        requested: list[str],
        operation: str,
        context: OperationContext,
    ) -> InstallReport:
        actor = context.actor
        current = {i.name: i for i in self.state.installations()}
        if not staged:
            return InstallReport(unchanged=[(n, i.version) for n, i in current.items()])
        domains = await asyncio.to_thread(  # off the loop: the registry may be this process
            lambda: {item.name: self._verified_domain(item) for item in staged}
        )
        grants = self._consent(staged, current, context, domains)
        needs = {
            item.name: missing
            for item in staged
            if (missing := missing_required(item.manifest.config, self._stored(item.name)))
        }
        journals = self.installer.switch(
            staged,
            permissions=grants,
            requested=requested,
            actor=actor,
            operation=operation,
            disabled=needs,
        )
        try:
            await self._activate(journals)
        except Exception as exc:
            await self._restore_runtime(journals)
            self.installer.roll_back(journals, actor=actor, reason=_why(exc))
            raise PluginRuntimeError(
                f"{operation} failed and was rolled back ({_moves(journals)}): {exc}"
            ) from exc
        except BaseException:
            await self._restore_runtime(journals)
            self.installer.roll_back(journals, actor=actor, reason="cancelled")
            raise
        self.installer.confirm(journals, actor=actor)
        report = InstallReport(
            installed=[
                (j.name, j.version, j.previous.version if j.previous else None) for j in journals
            ],
            needs_settings=needs,
            unsigned=[
                item.name for item in staged if item.source_kind == "index" and not item.key_id
            ],
        )
        for name, _, _ in report.installed:
            await self._report(self._installed(name), "install")
        return report

    def _consent(
        self,
        staged: list[Staged],
        current: Mapping[str, Installation],
        context: OperationContext,
        verified_domains: Mapping[str, str | None],
    ) -> dict[str, dict[str, Any]]:
        grants: dict[str, dict[str, Any]] = {}
        for item in staged:
            previous = current.get(item.name)
            request = ConsentRequest(
                item.name,
                item.version,
                previous.version if previous else None,
                item.manifest.permissions,
                Permissions.model_validate(previous.permissions) if previous else None,
                verified_domain=verified_domains.get(item.name),
            )
            if needs_consent(request, self.preapproved) and not context.consent(request):
                self.state.audit(
                    "consent",
                    item.name,
                    "refused",
                    actor=context.actor,
                    version=item.version,
                    added=request.added,
                )
                raise ConsentError(
                    f"{item.name} {item.version}",
                    request.added,
                    "not given; run interactively, pass --yes, or pre-approve it in the policy",
                )
            grants[item.name] = item.manifest.permissions.model_dump(mode="json")
        return grants

    def _verified_domain(self, item: Staged) -> str | None:
        """The registry's ``verified_domain`` for a plugin installed from it, for consent to
        show; None when it has none or cannot say (offline, an error): a missing badge never
        stops an install."""
        if item.source_kind != "registry":
            return None
        client = next((c for c in self.clients if c.url == item.source), None)
        if client is None:
            return None
        try:
            domain = client.plugin(item.name).get("verified_domain")  # a badge grants nothing: TTL
        except PlugportError:
            return None
        return domain if isinstance(domain, str) and domain else None

    async def _activate(self, journals: Sequence[Journal]) -> None:
        """Each new version starts in the sandbox and answers a ping, or the whole operation
        fails. A plugin that stays enabled is swapped (:meth:`Supervisor.swap`): its new worker
        starts beside the running one and takes over its calls, so none fails for the update,
        and one that does not come up leaves the old one serving. Disabled plugins are checked
        too, then left stopped."""
        loaded = set(self.supervisor.added())
        for journal in journals:
            installation = self._installed(journal.name)
            if journal.name in loaded and installation.enabled:
                await self.supervisor.swap(self._install(installation))
            else:
                if journal.name in loaded:
                    await self.supervisor.remove(journal.name)
                self._add(installation)
            await self.supervisor.activate(journal.name)
            await self.supervisor.ping_all()
            [status] = self.supervisor.status(journal.name)
            if status.state != "active":
                raise PluginRuntimeError(
                    f"{journal.name} {journal.version} did not stay up: "
                    f"{status.last_error or status.state}"
                )
            if not installation.enabled:
                await self.supervisor.remove(journal.name)

    async def _restore_runtime(self, journals: Sequence[Journal]) -> None:
        """Put the previous versions back in the runtime: one still in place (its swap was
        refused, or never began) stays as it is, one already swapped is swapped back (its calls
        go on), and a plugin that was new or disabled goes."""
        loaded = set(self.supervisor.added())
        for journal in journals:
            name, previous = journal.name, journal.previous
            with contextlib.suppress(PlugportError):
                if previous is None or not previous.enabled:
                    if name in loaded:
                        await self.supervisor.remove(name)
                    continue
                install = self._install(previous)
                if name not in loaded:
                    self.supervisor.add(install)
                elif _runs(self.supervisor.install_of(name)) != _runs(install):
                    try:
                        await self.supervisor.swap(install)
                    except PlugportError:  # its previous version cannot start either: as it was
                        await self.supervisor.remove(name)
                        self.supervisor.add(install)

    async def _report(
        self, installation: Installation, event: Literal["install", "uninstall"]
    ) -> None:
        """Best effort, in the background: an install or uninstall is done when its plugins
        are, not when the registry has counted it, and a slow registry never stalls plugin
        calls. :meth:`stop` waits for the reports still on their way."""
        if not self.telemetry or self.offline or installation.source_kind != "registry":
            return
        for client in self.clients:
            if client.url == installation.source:
                task = asyncio.create_task(
                    asyncio.to_thread(
                        client.report_usage, installation.name, installation.version, event
                    )
                )
                self._reports.add(task)
                task.add_done_callback(self._reports.discard)

    async def reports_sent(self) -> None:
        """Wait until every usage report begun so far has been answered (or has failed)."""
        while self._reports:
            await asyncio.gather(*self._reports, return_exceptions=True)


_RUNTIME_OUTCOMES = {
    "deny": "refused",
    "refuse": "refused",
    "limit": "refused",
    "kill": "failed",
    "crash": "failed",
    "quarantine": "failed",
    "swap-rolled-back": "failed",
}


def _host_row(event: AuditEvent) -> HostAudit:
    """A runtime audit event in the host trail's shape."""
    detail = {"reason": event.reason} | (
        {"capability": event.capability} if event.capability else {}
    )
    outcome = _RUNTIME_OUTCOMES.get(event.kind, "ok")
    return HostAudit(event.at, "runtime", event.kind, event.plugin, outcome, detail, event.id)


def _runs(install: PluginInstall) -> tuple[str, Path]:
    """What tells two installs of one plugin apart: the version and where its code is."""
    return install.manifest.version, install.code_dir


def _moves(journals: Sequence[Journal]) -> str:
    return ", ".join(
        f"{j.name} {j.version} -> back to {j.previous.version}"
        if j.previous
        else f"{j.name} {j.version} -> not installed"
        for j in journals
    )


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
