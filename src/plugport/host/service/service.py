"""``HostService``: what the HTTP API and the pages call. It owns the token store, the
workspaces (one started :class:`PluginHost` each) and their operations; routes only translate
HTTP to these methods and back."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from plugport._dirs import remove_tree
from plugport._permissions import describe_permissions
from plugport.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PluginCallError,
    PluginQuarantinedError,
    PluginRuntimeError,
    PlugportError,
    SandboxUnavailableError,
)
from plugport.host.consent import ConsentRequest
from plugport.host.context import OperationContext
from plugport.host.inbound.inbox import State, legacy_inbox_path
from plugport.host.secrets._oauth2_rules import is_token_secret
from plugport.host.secrets.oauth2 import SqliteStates
from plugport.host.service.appearance import AppearanceService
from plugport.host.service.auto_update import AutoUpdates
from plugport.host.service.inbound import WebhookReceiver
from plugport.host.service.operations import Operation, describe
from plugport.host.service.plugin_settings import (
    SettingError,
    check_setting,
    public_settings,
    secret_keys,
)
from plugport.host.service.settings import HostServiceSettings
from plugport.host.service.store import (
    FieldError,
    Principal,
    ServiceStore,
    check_workspace_name,
)
from plugport.host.service.task_service import TaskService
from plugport.host.service.workspaces import Workspace, context_for
from plugport.host.state import Installation
from plugport.manifest import Permissions, check_plugin_name
from plugport.runtime.audit import AuditEvent
from plugport.runtime.hooks import HookSpec
from plugport.runtime.outbox import OUTBOX_FILE
from plugport.versions import normalize_specifier

__all__ = ["HostService", "check_requirement"]


def check_requirement(plugin: str, version: str | None) -> str:
    """What to hand :meth:`PluginHost.install`: a registry name with an optional PEP 440 range.
    The API installs from the configured registries only, never a URL, a file or a directory
    on the service's machine, so anything else is refused here."""
    try:
        check_plugin_name(plugin)
    except ValueError as exc:
        raise FieldError(
            "plugin",
            f"{plugin!r} is not a plugin name ({exc}); the API installs registry plugins by "
            "name only, never URLs or paths",
        ) from None
    if version is None or version.strip() in ("", "*"):
        return plugin
    try:
        spec = normalize_specifier(version)
    except ValueError as exc:
        raise FieldError("version", f"{version!r} is not a version range ({exc})") from None
    if spec in ("", "*"):
        return plugin
    if spec[0] not in "=<>!~":
        raise FieldError("version", f"{version!r} is not a range; write e.g. '==1.2.0'")
    return plugin + spec


class HostService:
    def __init__(
        self, settings: HostServiceSettings, *, hookspecs: Iterable[HookSpec] = ()
    ) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = ServiceStore(settings.data_dir / "service.sqlite")
        self.hookspecs = tuple(hookspecs)
        self.web_secret = _secret(settings.data_dir / "web.secret")
        """Signs the pages' CSRF tokens; kept in the data directory so a restart keeps forms
        valid."""
        self.oauth2_states = SqliteStates(settings.data_dir / "oauth2.sqlite")
        """OAuth2 authorizations started here, until their callback (any workspace's)."""
        self._workspaces: dict[str, Workspace] = {}
        self._closed = False
        self.webhooks = WebhookReceiver(self)
        """Inbound webhooks: ``/hooks/...`` (``inbound.py``)."""
        self.tasks = TaskService(self)
        """Task processing and workflow runs: ``.../tasks``, ``.../workflows`` (``tasks.py``)."""
        self.auto_updates = AutoUpdates(self)
        """Available updates, auto-update policies and their checks (``auto_update.py``)."""
        self.appearance = AppearanceService(self)
        """Themes and modes of the pages: ``.../appearance``, ``.../theme.css``."""

    async def resume_queues(self) -> list[str]:
        """Start the workspaces whose task queue holds work a previous run did not finish
        (received webhooks, outbound deliveries, plugins' tasks, queued or cut off while
        running) or has schedules, so it is taken up without waiting for a request; their
        names. A workspace with a Plugport 0.2 inbox or outbox file is started too, which
        moves it onto the queue, and so is one whose plugins have an auto-update policy (its
        next check queued again if it was lost)."""
        resumed = []
        for info in self.store.workspaces():
            home = self.settings.data_dir / "workspaces" / info.name
            legacy = [legacy_inbox_path(home), home / "runtime" / OUTBOX_FILE]
            has_legacy = any(path.is_file() for path in legacy)
            auto = any(p.policy != "none" for p in self.store.auto_updates(info.name).values())
            if not (home / "tasks.sqlite").is_file() and not has_legacy and not auto:
                continue
            workspace = self.workspace(info.name)
            store = workspace.host.tasks.store
            if auto:
                self.auto_updates.ensure_scheduled(info.name)
            if has_legacy or store.has_work() or store.schedules():
                await workspace.started()
                resumed.append(info.name)
        return resumed

    async def close(self) -> None:
        """Cancel operations in flight (each rolls back), stop every workspace's plugins."""
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(w.close() for w in self._workspaces.values()))
        self._workspaces.clear()
        self.store.close()
        self.oauth2_states.close()

    # --- workspaces ----------------------------------------------------------------------------

    def workspace(self, name: str) -> Workspace:
        check_workspace_name(name)
        found = self._workspaces.get(name)
        if found is not None:
            return found
        if self._closed:
            raise PluginRuntimeError("the host service is shutting down")
        if self.store.workspace(name) is None:
            raise NotFoundError("workspace", name)
        home = self.settings.data_dir / "workspaces" / name
        found = self._workspaces[name] = Workspace(
            name, home, self.settings, self.hookspecs, self.oauth2_states
        )
        self.auto_updates.attach(found)
        return found

    def opened_workspace(self, name: str) -> Workspace | None:
        """Workspace ``name`` if this process has opened it already (never opens one: for
        what a page adds only when the workspace runs)."""
        return self._workspaces.get(name)

    async def delete_workspace(self, name: str) -> dict[str, Any]:
        """Stop the workspace's plugins, forget it (its tokens revoked) and remove its home:
        installations, plugin code and plugin data, its inbox and its outbox (pending
        deliveries and dead letters: none is sent afterwards), its task queue (queued tasks,
        runs, dead letters and schedules: its queue stops with its host, and its files go with
        the home), its plugins' auto-update policies. Refused while an operation is
        queued or running there, so nothing is cut off half-way."""
        workspace = self.workspace(name)
        _idle(workspace)
        async with workspace.lock:
            _idle(workspace)  # none started while this waited for the lock
            # Its outbox (HOME/runtime/outbox.sqlite) goes with the home below. Its sender
            # stops first, so no delivery still pending is sent while the plugins stop.
            await workspace.host.supervisor.webhooks.close()
            # Its secrets go with it: the file store goes with the home below; a Vault
            # backend keeps them elsewhere, so they are deleted one plugin at a time first.
            for plugin in {info.plugin for info in workspace.host.list_secrets()}:
                workspace.host.secrets.purge(plugin)
            await workspace.close()
            self._workspaces.pop(name, None)
            revoked = self.store.delete_workspace(name)
            self.oauth2_states.forget_workspace(name)
            self.auto_updates.forget_workspace(name)
        home = self.settings.data_dir / "workspaces" / name
        if home.exists():
            # Moved aside first (one rename): a workspace made again under this name never
            # finds a half-removed home.
            trash = self.settings.data_dir / "deleted" / f"{name}-{secrets.token_hex(4)}"
            trash.parent.mkdir(parents=True, exist_ok=True)
            home.rename(trash)
            await asyncio.to_thread(remove_tree, trash)  # the wheel store is read-only
        return {"deleted": name, "tokens_revoked": revoked}

    def create_workspace(self, name: str, *, actor: str) -> tuple[dict[str, Any], str]:
        """The new workspace and a token for it (shown once)."""
        info = self.store.create_workspace(name)
        (self.settings.data_dir / "workspaces" / name).mkdir(parents=True, exist_ok=True)
        token, row = self.store.create_token(
            "workspace", name, description=f"created with the workspace by {actor}"
        )
        return info.public() | {"token": token, "token_prefix": row.prefix}, token

    # --- reading -------------------------------------------------------------------------------

    async def installations(self, ws: str) -> list[dict[str, Any]]:
        workspace = self.workspace(ws)
        host = await workspace.started()
        updates = await workspace.updates()
        flagged = workspace.registry_quarantined()  # as of that update check
        running = {s.name: s for s in host.supervisor.status()}
        counts = _call_counts(host.supervisor.metrics.registry.collect())
        problems = host.problems()
        policies = self.store.auto_updates(ws)
        return [
            _installation(
                i,
                running.get(i.name),
                updates,
                counts.get(i.name, (0, 0)),
                host.last_error(i.name),
                missing=_missing(host, i.name),
                webhooks=self.webhooks.listing(ws, host, i),
            )
            | {"auto_update": policies[i.name].policy if i.name in policies else "none"}
            | {"problems": problems.get(i.name, [])}
            | {"registry_quarantine": flagged.get(i.name)}
            for i in host.installed()
        ]

    async def installation(self, ws: str, name: str) -> dict[str, Any]:
        for row in await self.installations(ws):
            if row["name"] == name:
                return row
        raise NotFoundError("installed plugin", name)

    async def problems(self, ws: str, name: str) -> list[dict[str, Any]]:
        """The runtime's current findings about installed plugin ``name`` (none while it is
        disabled: the runtime does not run it)."""
        host = await self.workspace(ws).started()
        if host.state.get(name) is None:
            raise NotFoundError("installed plugin", name)
        if name not in host.supervisor.added():
            return []
        return [finding.to_dict() for finding in host.supervisor.problems(name)]

    async def audit(
        self, ws: str, *, subject: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        host = await self.workspace(ws).started()
        return [asdict(a) for a in host.audit(subject=subject, limit=limit)]

    def policy(self, ws: str) -> dict[str, Any]:
        """What the operator allows this workspace's plugins beyond their grants."""
        return self.workspace(ws).policy()

    async def metrics(self, ws: str) -> bytes:
        host = await self.workspace(ws).started()
        return host.supervisor.metrics.render()

    async def search(self, ws: str, q: str) -> dict[str, Any]:
        host = await self.workspace(ws).started()
        return await asyncio.to_thread(host.search, q)

    async def info(self, ws: str, name: str) -> dict[str, Any]:
        check_requirement(name, None)
        host = await self.workspace(ws).started()
        return await asyncio.to_thread(host.info, name)

    async def preview(self, ws: str, name: str) -> dict[str, Any]:
        """What installing ``name`` would ask the operator for, from the registry: the newest
        version's permissions in plain words and as the consent strings (``added``)."""
        info = await self.info(ws, name)
        host = self.workspace(ws).host
        versions = await asyncio.to_thread(host.clients[0].versions, name)
        latest = info.get("latest_version")
        row = next((v for v in versions if v.get("version") == latest), None)
        requested = Permissions.model_validate((row or {}).get("permissions") or {})
        installed = host.state.get(name)
        domain = info.get("verified_domain")
        request = ConsentRequest(  # the consent the install will ask for, worded as the CLI's
            name,
            str(latest or ""),
            installed.version if installed else None,
            requested,
            Permissions.model_validate(installed.permissions) if installed else None,
            verified_domain=domain if isinstance(domain, str) and domain else None,
        )
        return {
            "name": name,
            "display_name": info.get("display_name") or name,
            "description": info.get("description") or "",
            "version": latest,
            "installed_version": request.previous_version,
            "verified_domain": request.verified_domain,
            "lines": describe_permissions(requested),
            "added": request.added,
        }

    def operations(self, ws: str) -> list[Operation]:
        """The workspace's operations, newest first: the ones in flight as they stand, the
        rest as recorded on its queue (they outlive a restart)."""
        return self.workspace(ws).operation_records(self.settings.operations_kept)

    def operation(self, ws: str, operation_id: str) -> Operation:
        found = self.workspace(ws).operation(operation_id)
        if found is None:
            raise NotFoundError("operation", operation_id)
        return found

    # --- long operations -----------------------------------------------------------------------

    def start_install(
        self,
        ws: str,
        who: Principal,
        plugin: str,
        version: str | None = None,
        consent: Sequence[str] = (),
    ) -> Operation:
        spec = check_requirement(plugin, version)
        workspace = self.workspace(ws)
        return self._start(workspace, Operation("install", ws, spec, who.actor), consent)

    def start_update(
        self, ws: str, who: Principal, name: str, consent: Sequence[str] = ()
    ) -> Operation:
        check_requirement(name, None)
        workspace = self.workspace(ws)
        if workspace.host.state.get(name) is None:
            raise NotFoundError("installed plugin", name)
        return self._start(workspace, Operation("update", ws, name, who.actor), consent)

    def _start(
        self, workspace: Workspace, operation: Operation, consent: Sequence[str]
    ) -> Operation:
        """Queue the operation on the workspace's task queue (committed before the 202), and
        make sure the workspace runs: its queue takes operations one at a time."""
        workspace.submit_operation(operation, consent)

        async def run() -> None:
            await workspace.started()

        task = asyncio.create_task(run(), name=f"plugport-start-{workspace.name}")
        workspace.tasks.add(task)
        task.add_done_callback(workspace.tasks.discard)
        return operation

    # --- quick changes -------------------------------------------------------------------------

    async def _change(
        self,
        ws: str,
        who: Principal,
        change: Callable[[Workspace, OperationContext], Awaitable[Any]],
    ) -> None:
        """``change`` as ``who``: its audit rows name ``who.actor``, and it may consent to
        nothing (quick changes never grow a plugin's permissions)."""
        workspace = self.workspace(ws)
        await workspace.started()
        context, _ = context_for(who.actor)
        async with workspace.lock:  # why, see Workspace.lock
            try:
                await change(workspace, context)
            finally:
                workspace.forget_updates()

    async def enable(self, ws: str, who: Principal, name: str) -> dict[str, Any]:
        await self._change(ws, who, lambda w, c: w.host.enable(name, context=c))
        return await self.installation(ws, name)

    async def disable(self, ws: str, who: Principal, name: str) -> dict[str, Any]:
        await self._change(ws, who, lambda w, c: w.host.disable(name, context=c))
        return await self.installation(ws, name)

    async def uninstall(self, ws: str, who: Principal, name: str, *, purge: bool) -> None:
        """``purge``: the plugin's data, settings, secrets, tasks, auto-update policy, dashboard
        tiles and theme choices go too; without it they stay for a later install."""
        await self._change(ws, who, lambda w, c: w.host.uninstall(name, purge=purge, context=c))
        if purge:  # its tiles and policy go with its data; without --purge they wait
            self.workspace(ws).dashboards.purge_plugin(name)
            self.auto_updates.forget(ws, name)
            self.store.forget_plugin_themes(ws, name)

    # --- outbound webhooks ----------------------------------------------------------------------

    async def deliveries(
        self, ws: str, *, state: str | None = None, plugin: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        host = await self.workspace(ws).started()
        return await asyncio.to_thread(host.deliveries, state=state, plugin=plugin, limit=limit)

    async def redeliver(self, ws: str, who: Principal, delivery_id: str) -> dict[str, Any]:
        redelivered: dict[str, Any] = {}

        async def change(workspace: Workspace, context: OperationContext) -> None:
            redelivered.update(workspace.host.redeliver(delivery_id, context=context))

        await self._change(ws, who, change)
        return redelivered

    # --- inbound webhooks -----------------------------------------------------------------------

    async def inbox(
        self,
        ws: str,
        *,
        state: State | None = None,
        plugin: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Received webhooks, newest first (never their bodies or headers)."""
        workspace = self.workspace(ws)
        rows = await asyncio.to_thread(workspace.inbox.list, plugin, state=state, limit=limit)
        return [row.public() for row in rows]

    async def retry_delivery(self, ws: str, who: Principal, delivery: str) -> dict[str, Any]:
        """Hand a dead received webhook to its plugin again, with a fresh count of attempts."""
        workspace = self.workspace(ws)
        host = await workspace.started()
        row = await workspace.inbox.retry(delivery)
        host.state.audit(
            "webhook", row.plugin, "retried", actor=who.actor, endpoint=row.endpoint,
            delivery=row.id,
        )  # fmt: skip
        return row.public()

    # --- settings ------------------------------------------------------------------------------

    async def plugin_settings(self, ws: str, name: str) -> dict[str, Any]:
        """``name``'s settings as :func:`public_settings` shows them (secrets as set/not set)."""
        host = await self.workspace(ws).started()
        schema = host.config_schema(name)
        stored = host.stored_settings(name)
        return public_settings(
            name, schema, host.settings(name), stored, host.missing_settings(name)
        )

    async def change_settings(
        self,
        ws: str,
        who: Principal,
        name: str,
        changes: Mapping[str, Any],
        unset: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Set ``changes`` and remove ``unset`` in one write, each key checked against the
        schema first; a refusal stores nothing and never quotes a secret's value."""
        host = await self.workspace(ws).started()
        schema = host.config_schema(name)
        for key, value in changes.items():
            check_setting(schema, key, value)
        stored = host.stored_settings(name)
        for key in unset:
            if key not in stored:
                listed = ", ".join(sorted(stored)) or "none"
                raise SettingError(key, "not set", f"is not set (set: {listed})")
        secrets = secret_keys(schema) & set(changes)

        async def change(workspace: Workspace, context: OperationContext) -> None:
            now = workspace.host.stored_settings(name) | dict(changes)
            for key in unset:
                now.pop(key, None)
            try:
                workspace.host.configure(name, now, context=context)
            except InvalidInputError as exc:
                if not secrets:
                    raise
                raise SettingError(
                    sorted(secrets)[0],
                    "schema",
                    "the settings with this secret break the schema (its value is not shown)",
                ) from exc

        await self._change(ws, who, change)
        return await self.plugin_settings(ws, name)

    # --- secrets -------------------------------------------------------------------------------

    async def plugin_secrets(self, ws: str, name: str) -> dict[str, Any]:
        """One row per credential ``name``'s manifest declares (and any other secret set for
        it, except the OAuth2 broker's tokens): whether it is set, its fingerprint, when and
        by whom, last used. Never a value."""
        host = await self.workspace(ws).started()
        declared = host.declared_credentials(name)
        if declared is None:
            raise NotFoundError("installed plugin", name)
        # The broker's tokens are listed as connected accounts (plugin_oauth2), not here.
        infos = {i.name: i for i in host.list_secrets(name) if not is_token_secret(i.name)}
        rows = []
        for secret in sorted(set(declared) | set(infos)):
            info = infos.get(secret)
            rows.append(
                {"name": secret, "declared": secret in declared, "set": info is not None}
                | (_secret_public(info) if info else {})
            )
        return {"name": name, "secrets": rows}

    async def plugin_oauth2(self, ws: str, name: str) -> list[dict[str, Any]]:
        """Each oauth2 credential ``name``'s manifest declares: its grant, scopes, provider
        host, and connected accounts (scopes, expiry, which is the default). Never a token."""
        workspace = self.workspace(ws)
        host = await workspace.started()
        return [
            {
                "credential": credential,
                "grant": provider.grant,
                "scopes": list(provider.scopes),
                "provider": urlsplit(provider.authorize_url or provider.token_url).netloc,
                "accounts": workspace.oauth2.accounts(name, credential),
            }
            for credential, provider in host.oauth2_credentials(name).items()
        ]

    async def set_secret(
        self, ws: str, who: Principal, name: str, secret: str, value: bytes
    ) -> dict[str, Any]:
        """Set (or replace) one secret of an installed plugin; answers its info, never the
        value."""
        host = await self.workspace(ws).started()
        if host.state.get(name) is None:
            raise NotFoundError("installed plugin", name)
        done: list[Any] = []

        async def change(workspace: Workspace, context: OperationContext) -> None:
            rotate = secret in {i.name for i in workspace.host.list_secrets(name)}
            done.append(
                workspace.host.set_secret(name, secret, value, rotate=rotate, context=context)
            )

        await self._change(ws, who, change)
        return {"name": secret, "set": True} | _secret_public(done[0])

    async def delete_secret(self, ws: str, who: Principal, name: str, secret: str) -> None:
        host = await self.workspace(ws).started()
        if host.state.get(name) is None:
            raise NotFoundError("installed plugin", name)

        async def change(workspace: Workspace, context: OperationContext) -> None:
            workspace.host.delete_secret(name, secret, context=context)

        await self._change(ws, who, change)

    # --- calling a plugin ----------------------------------------------------------------------

    async def execute(
        self,
        ws: str,
        name: str,
        *,
        hook: str | None,
        command: str | None,
        args: list[Any],
        kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        """Run one plugin's hook or command in its sandbox. A failure of the plugin's own is a
        result (the call happened); what prevents the call is raised."""
        if (hook is None) == (command is None):
            raise InvalidInputError("give either 'hook' or 'command', not both or neither")
        if hook is not None and args:
            raise FieldError("args", "a hook takes keyword input only; use 'input'")
        host = await self.workspace(ws).started()
        installation = host.state.get(name)
        if installation is None:
            raise NotFoundError("installed plugin", name)
        if not installation.enabled:
            raise ConflictError("plugin", name, "is disabled; enable it first")
        started = time.perf_counter()
        result, error = None, None
        try:
            if hook is not None:
                result = await host.supervisor.call_hook_on(name, hook, kwargs)
            else:
                result = await host.supervisor.run_command(name, str(command), args, kwargs)
        except (InvalidInputError, PluginQuarantinedError, SandboxUnavailableError):
            raise
        except PluginRuntimeError as exc:
            error = describe(exc)[1]
            if isinstance(exc, PluginCallError):
                error["details"]["traceback"] = exc.traceback
        elapsed_ms = (time.perf_counter() - started) * 1000
        measured = await host.supervisor.measure(name)
        return {
            "status": "ok" if error is None else "error",
            "result": result,
            "error": error,
            "execution_ms": round(elapsed_ms, 3),
            "resources": {
                "cpu_seconds": measured.cpu_seconds,
                "peak_rss_bytes": measured.peak_rss_bytes,
            },
        }


def _idle(workspace: Workspace) -> None:
    busy = [o.id for o in workspace.operations.values() if not o.done]
    if busy:
        raise ConflictError(
            "workspace", workspace.name, f"has operations in flight ({', '.join(busy)})"
        )


def _missing(host: Any, name: str) -> list[str]:
    try:
        missing: list[str] = host.missing_settings(name)
    except PlugportError:  # its code directory is gone: the list still answers
        return []
    return missing


def _secret(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_bytes(32))
    return path.read_bytes()


def _call_counts(families: Iterable[Any]) -> dict[str, tuple[int, int]]:
    """plugin -> (calls, failed calls), from the runtime's own counters."""
    counts: dict[str, list[int]] = {}
    for family in families:
        if family.name != "plugport_plugin_calls":
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            plugin = sample.labels["plugin"]
            pair = counts.setdefault(plugin, [0, 0])
            pair[0] += int(sample.value)
            if sample.labels["outcome"] != "ok":
                pair[1] += int(sample.value)
    return {k: (v[0], v[1]) for k, v in counts.items()}


def _installation(
    installation: Installation,
    runtime: Any,
    updates: dict[str, str] | None,
    counts: tuple[int, int],
    failure: AuditEvent | None,
    *,
    missing: list[str],
    webhooks: list[dict[str, Any]],
) -> dict[str, Any]:
    if not installation.enabled:
        state = "disabled"
    elif runtime is None:
        state = "inactive"
    else:
        state = runtime.state
    latest = updates.get(installation.name) if updates is not None else None
    return {
        "name": installation.name,
        "version": installation.version,
        "enabled": installation.enabled,
        "state": state,
        "source": installation.source_kind,
        "requested": installation.requested,
        "quarantined": runtime.quarantined if runtime else None,
        "last_error": failure.reason if failure else None,
        "last_error_at": failure.at if failure else None,
        "needs_settings": missing,
        "restarts": runtime.restarts if runtime else 0,
        "cpu_seconds": runtime.cpu_seconds if runtime else 0.0,
        "peak_rss_bytes": runtime.peak_rss_bytes if runtime else 0,
        "calls": counts[0],
        "errors": counts[1],
        "update_available": None if updates is None else latest is not None,
        "latest_version": latest,
        "permissions": dict(installation.permissions),
        "webhooks": webhooks,
        "installed_at": installation.installed_at,
        "updated_at": installation.updated_at,
    }


def _secret_public(info: Any) -> dict[str, Any]:
    return {
        "fingerprint": info.fingerprint,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "updated_by": info.updated_by,
        "last_used_at": info.last_used_at,
    }
