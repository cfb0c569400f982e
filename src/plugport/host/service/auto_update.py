"""Updates in the host service: what each workspace could update to (the permission diff and
release notes per plugin), each plugin's opt-in auto-update policy, and the check that applies
what the policies allow. The decisions are :mod:`._update_rules`'; this module asks the
registries, keeps the policies in the service's store and acts.

The check runs as an ``@auto-update`` task on the workspace's own queue: each scheduled run
queues the next one (``auto_update_interval_s`` later) before it checks, so the schedule
survives restarts and a check cut off by a stop runs again. An update it decides on is an
ordinary ``update`` operation (all or nothing, health-checked, rolled back on failure) by the
actor ``auto-update``, pinned to the version the policy chose and never with any consent:
whatever adds a permission waits for the operator."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from plugport.errors import NotFoundError, PlugportError, RegistryResponseError
from plugport.host.consent import ConsentRequest, needs_consent
from plugport.host.service._update_rules import (
    AUTO_UPDATE_ACTOR,
    POLICY_WORDS,
    Decision,
    changelog_of,
    check_policy,
    decide,
    failure_kind,
    offered_from,
    permission_diff,
    update_kind,
)
from plugport.host.service.operations import OPERATION_TASK, Operation
from plugport.host.service.settings import HostServiceSettings
from plugport.host.service.store import AutoUpdateInfo, FieldError, Principal, ServiceStore
from plugport.host.tasks.queue import SystemTask
from plugport.manifest import Permissions, TaskSpec

if TYPE_CHECKING:
    from plugport.host.host import PluginHost
    from plugport.host.service.workspaces import Workspace
    from plugport.host.state import Installation
    from plugport.host.tasks.store import TaskRecord

__all__ = ["AUTO_UPDATE_TASK", "AutoUpdates"]

AUTO_UPDATE_TASK = "@auto-update"
"""The task type of a workspace's scheduled update checks ("check now" runs at once)."""
CHECK_RETENTION_S = 7 * 86400.0
"""How long a finished check stays listed on the workspace's queue."""


class Workspaces(Protocol):
    """What this needs of the :class:`HostService` (not imported: it imports this)."""

    settings: HostServiceSettings
    store: ServiceStore

    def workspace(self, name: str) -> Workspace: ...


def registry_versions(host: PluginHost, name: str, *, revalidate: bool) -> list[dict[str, Any]]:
    """``name``'s published versions from the first registry that knows it (as an update
    resolves them)."""
    for client in host.clients:
        try:
            return client.versions(name, revalidate=revalidate)
        except RegistryResponseError as exc:
            if exc.status != 404:
                raise
    raise NotFoundError("plugin", name)


class AutoUpdates:
    def __init__(self, service: Workspaces) -> None:
        self.service = service
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, dict[str, Any]] = {}
        """Each workspace's last check in this process (what it found and did)."""

    @property
    def store(self) -> ServiceStore:
        return self.service.store

    def attach(self, workspace: Workspace) -> None:
        """Give a new workspace its check task (before its queue starts, so a check queued
        earlier is taken with its handler), and have it tell how each operation ended."""
        queue = workspace.host.tasks
        queue.register(
            SystemTask(
                AUTO_UPDATE_TASK,
                functools.partial(self._run, workspace.name),
                TaskSpec.model_validate({"max-attempts": 3, "timeout-ms": 600_000}),
                concurrency=1,
                retention_s=CHECK_RETENTION_S,
            )
        )
        workspace.operation_ended.append(functools.partial(self._ended, workspace))

    # --- policies ------------------------------------------------------------------------------

    async def policy(self, ws: str, name: str) -> dict[str, Any]:
        """An installed plugin's policy (``none`` when none was set)."""
        host = await self.service.workspace(ws).started()
        if host.state.get(name) is None:
            raise NotFoundError("installed plugin", name)
        return self.policy_of(ws, name)

    def policy_of(self, ws: str, name: str) -> dict[str, Any]:
        info = self.store.auto_updates(ws).get(name)
        found: dict[str, Any] = (
            info.public() if info is not None else {"policy": "none", "failed": {}}
        )
        return {"name": name, "words": POLICY_WORDS[str(found["policy"])]} | found

    async def set_policy(
        self, ws: str, who: Principal, name: str, policy: object
    ) -> dict[str, Any]:
        """Set ``name``'s policy (audited as ``who``), and make sure the workspace checks on
        schedule while any plugin has one."""
        try:
            chosen = check_policy(policy)
        except ValueError as exc:
            raise FieldError("policy", str(exc)) from None
        workspace = self.service.workspace(ws)
        host = await workspace.started()
        installation = host.state.get(name)
        if installation is None:
            raise NotFoundError("installed plugin", name)
        if chosen != "none" and installation.source_kind != "registry":
            raise FieldError(
                "policy",
                f"{name} was installed from a {installation.source_kind}, not a registry; "
                "only plugins installed from a registry are updated automatically",
            )
        self.store.set_auto_update(ws, name, chosen, actor=who.actor)
        host.state.audit("auto-update-policy", name, "ok", actor=who.actor, policy=chosen)
        self.ensure_scheduled(ws)
        return self.policy_of(ws, name)

    def forget(self, ws: str, name: str) -> None:
        """``name`` was purged: its policy and remembered failures go too."""
        self.store.forget_auto_update(ws, name)

    def forget_workspace(self, ws: str) -> None:
        """``ws`` was deleted (the store dropped its policies): so is what this process
        remembers of its checks, which a new workspace of that name must not show."""
        self._last.pop(ws, None)
        self._locks.pop(ws, None)

    def ensure_scheduled(self, ws: str) -> dict[str, Any] | None:
        """The next scheduled check (queued now if none is), or ``None`` while no plugin of
        ``ws`` has a policy."""
        if not any(i.policy != "none" for i in self.store.auto_updates(ws).values()):
            return None
        queue = self.service.workspace(ws).host.tasks
        for record in queue.store.find(type=AUTO_UPDATE_TASK, state="queued", limit=100):
            if isinstance(record.payload, dict) and record.payload.get("trigger") == "schedule":
                return {"task": record.id, "due_at": record.due_at}
        due = time.time() + self.service.settings.auto_update_interval_s
        record, _ = queue.submit_system(
            AUTO_UPDATE_TASK,
            "",
            {"trigger": "schedule", "actor": AUTO_UPDATE_ACTOR},
            submitted_by=AUTO_UPDATE_ACTOR,
            due_at=due,
        )
        return {"task": record.id, "due_at": record.due_at}

    # --- reading -------------------------------------------------------------------------------

    async def updates(self, ws: str) -> dict[str, Any]:
        """Every installed plugin with a newer compatible version: current and latest, the
        permission diff, the release notes (``changelog``, ``None`` when the registry gives
        none), what consent updating needs, and what its auto-update policy would do. Also
        every registry install's policy, and the last check."""
        workspace = self.service.workspace(ws)
        host = await workspace.started()
        newest = await workspace.updates()
        policies = self.store.auto_updates(ws)
        busy = _busy(workspace)
        items = []
        for installation in host.installed():
            if newest is None or installation.name not in newest:
                continue
            info = policies.get(installation.name)
            item = await self._item(host, installation, newest[installation.name], info)
            items.append(item | {"operation": busy.get(installation.name)})
        return {
            "workspace": ws,
            "items": items,
            "error": None
            if newest is not None
            else "The registries cannot be reached now; updates cannot be listed.",
            "policies": [
                self.policy_of(ws, i.name) | {"version": i.version}
                for i in host.installed()
                if i.source_kind == "registry"
            ],
            "last_check": self._last.get(ws),
            "next_check": self._next_check(workspace),
            "interval_s": self.service.settings.auto_update_interval_s,
        }

    async def _item(
        self, host: PluginHost, installation: Installation, latest: str, info: AutoUpdateInfo | None
    ) -> dict[str, Any]:
        name, current = installation.name, installation.version
        granted = Permissions.model_validate(installation.permissions)
        rows: list[dict[str, Any]] = []
        problem = None
        try:
            rows = await asyncio.to_thread(registry_versions, host, name, revalidate=False)
        except PlugportError as exc:
            problem = f"the registry could not be asked about {name}: {exc}"
        row = next((r for r in rows if r.get("version") == latest), {})
        try:
            offered = Permissions.model_validate(row.get("permissions") or {})
        except ValueError:
            offered, problem = Permissions(), f"{latest} asks for permissions this host cannot read"
        request = ConsentRequest(name, latest, current, offered, granted)
        policy = info.policy if info is not None else "none"
        decision: Decision = decide(
            current,
            [offered_from(r, granted, host.environment) for r in rows],
            check_policy(policy),
            info.failed if info is not None else None,
        )
        return {
            "name": name,
            "current": current,
            "latest": latest,
            "kind": update_kind(current, latest),
            "permissions": permission_diff(name, current, latest, granted, offered),
            "consent": request.added,
            "needs_consent": needs_consent(request, host.preapproved),
            "changelog": changelog_of(row),
            "auto_update": {
                "policy": policy,
                "state": decision.state,
                "version": decision.version,
                "reason": decision.reason,
                "failed": dict(info.failed) if info is not None else {},
            },
            "problem": problem,
        }

    def _next_check(self, workspace: Workspace) -> float | None:
        queued = workspace.host.tasks.store.find(type=AUTO_UPDATE_TASK, state="queued", limit=100)
        due = [
            r.due_at
            for r in queued
            if isinstance(r.payload, dict) and r.payload.get("trigger") == "schedule"
        ]
        return min(due) if due else None

    # --- checking and applying ----------------------------------------------------------------

    async def check(
        self, ws: str, *, actor: str = AUTO_UPDATE_ACTOR, trigger: str = "manual"
    ) -> dict[str, Any]:
        """Decide for every plugin with a policy, queue the updates it allows (as operations
        by ``auto-update``), note what is held; one check at a time per workspace."""
        workspace = self.service.workspace(ws)
        host = await workspace.started()
        workspace.forget_updates()  # the listing asks the registries again too
        lock = self._locks.setdefault(ws, asyncio.Lock())
        async with lock:
            policies = {n: i for n, i in self.store.auto_updates(ws).items() if i.policy != "none"}
            busy = _busy(workspace)
            results = []
            for installation in host.installed():
                info = policies.get(installation.name)
                if info is not None:
                    results.append(await self._check_one(workspace, installation, info, busy))
            done = {
                "workspace": ws,
                "checked_at": time.time(),
                "trigger": trigger,
                "actor": actor,
                "results": results,
            }
            self._last[ws] = done
        self.ensure_scheduled(ws)
        return done

    async def _check_one(
        self,
        workspace: Workspace,
        installation: Installation,
        info: AutoUpdateInfo,
        busy: Mapping[str, str],
    ) -> dict[str, Any]:
        host, ws, name = workspace.host, workspace.name, installation.name
        result: dict[str, Any] = {
            "name": name,
            "current": installation.version,
            "policy": info.policy,
            "version": None,
            "operation": None,
        }
        if installation.source_kind != "registry":
            return result | {
                "state": "current",
                "reason": f"installed from {installation.source_kind}: only registry installs "
                "update",
            }
        if name in busy:
            return result | {
                "state": "busy",
                "reason": f"operation {busy[name]} is changing it now",
                "operation": busy[name],
            }
        try:
            rows = await asyncio.to_thread(registry_versions, host, name, revalidate=True)
        except PlugportError as exc:
            return result | {"state": "error", "reason": f"the registry could not be asked: {exc}"}
        granted = Permissions.model_validate(installation.permissions)
        decision = decide(
            installation.version,
            [offered_from(row, granted, host.environment) for row in rows],
            check_policy(info.policy),
            info.failed,
        )
        result |= {"state": decision.state, "version": decision.version, "reason": decision.reason}
        if decision.state == "consent" and decision.version is not None:
            self._held(
                host, ws, name, policy=info.policy, version=decision.version, reason=decision.reason
            )
        if decision.state == "apply" and decision.version is not None:
            if name in (moving := _busy(workspace)):  # queued while the registry answered
                return result | {
                    "state": "busy",
                    "reason": f"operation {moving[name]} is changing it now",
                    "operation": moving[name],
                }
            operation = Operation("update", ws, name, AUTO_UPDATE_ACTOR)
            workspace.submit_operation(
                operation,
                (),
                version=decision.version,
                auto_update={"policy": info.policy, "from": installation.version},
            )
            result["operation"] = operation.id
        return result

    def _held(
        self, host: PluginHost, ws: str, name: str, *, policy: str, version: str, reason: str
    ) -> None:
        """Audit a version waiting for consent once, not at every check."""
        if self.store.auto_update_held(ws, name, version):
            host.state.audit(
                "auto-update",
                name,
                "held",
                actor=AUTO_UPDATE_ACTOR,
                policy=policy,
                version=version,
                reason=reason,
            )

    async def _run(self, ws: str, record: TaskRecord) -> dict[str, Any]:
        """An ``@auto-update`` task: a scheduled one queues the next first (a check that
        fails or is cut off still leaves the schedule in place)."""
        payload = record.payload if isinstance(record.payload, dict) else {}
        trigger = str(payload.get("trigger", "schedule"))
        if trigger == "schedule":
            self.ensure_scheduled(ws)
        return await self.check(
            ws, actor=str(payload.get("actor", AUTO_UPDATE_ACTOR)), trigger=trigger
        )

    def _ended(
        self,
        workspace: Workspace,
        operation: Operation,
        payload: Mapping[str, Any],
        error: Mapping[str, Any] | None,
    ) -> None:
        """An operation has ended; if an auto-update queued it, audit it with the policy, and
        mark the version when the failure is its own, so it is not tried again. Runs before
        the operation says it ended (and before the next check can look)."""
        auto = payload.get("auto_update")
        if not isinstance(auto, Mapping):
            return
        host, ws = workspace.host, workspace.name
        name, version = operation.target, str(payload.get("version"))
        detail: dict[str, Any] = {
            "policy": auto.get("policy"),
            "version": version,
            "previous": auto.get("from"),
            "operation": operation.id,
        }
        if error is None:
            host.state.audit("auto-update", name, "ok", actor=AUTO_UPDATE_ACTOR, **detail)
            return
        code, message = str(error.get("code")), str(error.get("message"))
        kind = failure_kind(code)
        if kind == "consent":
            reason = f"waiting for your consent: {message}"
            self._held(
                host, ws, name, policy=str(auto.get("policy")), version=version, reason=reason
            )
            return
        if kind == "failed":
            self.store.auto_update_failed(ws, name, version, message)
            reason = f"auto-update to {version} failed, rolled back: {message}"
        else:
            reason = f"auto-update to {version} failed ({code}): {message}; tried again later"
        host.state.audit(
            "auto-update", name, "failed", actor=AUTO_UPDATE_ACTOR, reason=reason, **detail
        )


def _busy(workspace: Workspace) -> dict[str, str]:
    """plugin -> the operation queued or running on it (this process's, or left queued by an
    earlier one)."""
    found: dict[str, str] = {}
    store = workspace.host.tasks.store
    for state in ("queued", "running"):
        for record in store.find(type=OPERATION_TASK, state=state, limit=200):
            if isinstance(record.payload, dict):
                found.setdefault(str(record.payload.get("target")), record.id)
    return found
