"""One host home per workspace (``data_dir/workspaces/<name>``), each a :class:`PluginHost`
started on first use and kept for the service's life. What differs per operation (who asks,
what the caller consented to, where progress goes) is an :class:`OperationContext` passed with
each call, so nothing about one caller is kept on the shared host."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugport.errors import ConflictError, NotFoundError, PlugportError
from plugport.host.client import RetryPolicy
from plugport.host.consent import ConsentRequest
from plugport.host.context import OperationContext
from plugport.host.host import PluginHost
from plugport.host.inbound.inbox import Delivery, TaskInbox, legacy_inbox_path
from plugport.host.policy import (
    POLICY_FILE,
    local_services,
    policy_location,
    private_targets,
    trust_policy,
)
from plugport.host.secrets.oauth2 import (
    AuthorizationStates,
    OAuth2Broker,
    OAuth2TokenSource,
)
from plugport.host.service.dashboards import DashboardStore
from plugport.host.service.operations import (
    OPERATION_TASK,
    Operation,
    describe,
    operation_of,
    report,
)
from plugport.host.service.settings import HostServiceSettings
from plugport.host.service.store import FieldError
from plugport.host.tasks.queue import GiveUp, SystemTask
from plugport.host.tasks.store import TaskRecord
from plugport.host.ui.surfaces import UiSurfaces
from plugport.manifest import TaskSpec
from plugport.runtime.hooks import HookSpec

__all__ = ["GrantedConsent", "OperationEnded", "Workspace", "context_for"]

log = logging.getLogger(__name__)

OperationEnded = Callable[[Operation, Mapping[str, Any], "dict[str, Any] | None"], None]


@dataclass
class GrantedConsent:
    """One caller's consent: exactly the permission lines it listed (``consent`` in the
    request body), nothing more. Keeps the request it refused, for the error it answers with."""

    granted: frozenset[str]
    refused: ConsentRequest | None = None

    def __call__(self, request: ConsentRequest) -> bool:
        if set(request.added) <= self.granted:
            return True
        self.refused = request
        return False


def context_for(
    actor: str, granted: Iterable[str] = (), operation: Operation | None = None
) -> tuple[OperationContext, GrantedConsent]:
    """The context one caller's change runs with: its actor, its consent, and progress into
    its operation (if it has one)."""
    consent = GrantedConsent(frozenset(granted))
    progress = operation.step if operation is not None else None
    return OperationContext(actor, consent, progress), consent


class Workspace:
    def __init__(
        self,
        name: str,
        home: Path,
        settings: HostServiceSettings,
        hookspecs: Iterable[HookSpec],
        oauth2_states: AuthorizationStates | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        trust = trust_policy(home)  # [trust] of the workspace's policy.toml, as for the CLI
        self.host = PluginHost(
            app=settings.app,
            app_version=settings.app_version,
            home=home,
            registries=list(settings.registries),
            hookspecs=hookspecs,
            sandbox=settings.sandbox,
            cache_ttl_s=settings.registry_cache_ttl_s,
            registry_retry=RetryPolicy(
                max_retries=settings.registry_max_retries,
                max_retry_after_s=settings.registry_max_retry_after_s,
                max_total_wait_s=settings.registry_max_total_wait_s,
            ),
            telemetry=settings.telemetry,
            private_targets=private_targets(home),
            tuf_roots=trust.tuf_roots,
            index_fallback=trust.index_fallback,
            local_services=local_services(home),
            private_targets_from=policy_location(home),
            actor="host-service",
            mail=settings.mail_relay(),
        )
        self.oauth2 = OAuth2Broker(
            self.host.secrets,
            self.host.oauth2_provider,
            states=oauth2_states,
            audit=self.host.supervisor.audit,
            workspace=name,
            reach=self.host.oauth2.reach,
        )
        """Runs OAuth2 for the plugins' oauth2 credentials; their fetches get its tokens."""
        self.host.oauth2 = self.oauth2
        self.host.supervisor.services.secrets = OAuth2TokenSource(self.host.secrets, self.oauth2)
        self.lock = asyncio.Lock()
        """Held by every change (operations and the quick ones). Not for who acts (each call
        carries its own context) but for three things the host's own lock does not cover:
        operations queue and report ``queued`` until they run, one at a time; a settings write
        (read, merge, write; :meth:`PluginHost.configure` takes no lock) never interleaves with
        an install or update switching that plugin's version and schema; and deleting the
        workspace waits for the change in flight instead of closing the host under it."""
        self.operations: dict[str, Operation] = {}
        """Operations this process has seen, as they stand (progress is kept only here)."""
        self.operation_ended: list[OperationEnded] = []
        """Told how each operation ended (``error`` None: it succeeded), with what it was
        queued with; an auto-update records its outcome so."""
        self.host.tasks.register(
            SystemTask(
                OPERATION_TASK,
                self._run_operation,
                # An attempt cut off by a restart runs again; a failure is final (GiveUp).
                TaskSpec.model_validate({"max-attempts": 3, "timeout-ms": 3_600_000}),
                concurrency=1,  # one change at a time in a workspace
            )
        )
        self.tasks: set[asyncio.Task[None]] = set()
        self._start_lock = asyncio.Lock()
        self._started = False
        self._updates: dict[str, str] | None = None
        self._quarantined: dict[str, str] = {}
        """name -> the registry's reason, for installed versions the registry quarantined, as
        found with :attr:`_updates`."""
        self._updates_at = 0.0
        self.inbox = TaskInbox(
            self.host.tasks,
            self._deliver_webhook,
            max_attempts=settings.webhook_max_attempts,
            base_delay_s=settings.webhook_retry_base_s,
            retention_s=settings.webhook_retention_days * 86400,
            on_failure=self._webhook_failed,
        )
        """Received webhooks until their plugins took them (``host/inbound``), on the host's
        task queue, which the workspace's host runs once started."""
        self.dashboards = DashboardStore(home / "ui" / "dashboards.sqlite")
        """The workspace's dashboard layouts (one shared, one per token that has its own)."""
        self.ui = UiSurfaces(self.host.supervisor, timeout_ms=settings.ui_timeout_ms)
        """Its plugins' UI surfaces, asked under the service's UI deadline."""

    def policy(self) -> dict[str, Any]:
        """The operator's policy in effect for this workspace: ``policy.toml`` in its home, read
        when the workspace opened (edit it, then restart the service)."""
        return {
            "workspace": self.name,
            "file": str(self.host.paths.root / POLICY_FILE),
            "private_targets": {k: list(v) for k, v in self.host.private_targets.items()},
        }

    async def started(self) -> PluginHost:
        if not self._started:
            async with self._start_lock:
                if not self._started:
                    await self.host.start()
                    await self.inbox.import_legacy(legacy_inbox_path(self.host.paths.root))
                    self._started = True
        return self.host

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.host.stop()
        self.dashboards.close()

    async def _deliver_webhook(self, delivery: Delivery) -> None:
        """One attempt at handing ``delivery`` to its plugin's handler; raising retries it."""
        host = await self.started()
        installation = host.state.get(delivery.plugin)
        if installation is None:
            raise NotFoundError("installed plugin", delivery.plugin)
        if not installation.enabled:
            raise ConflictError("plugin", delivery.plugin, "is disabled; enable it to receive")
        event = {
            "endpoint": delivery.endpoint,
            "delivery_id": delivery.delivery_id,
            "body": delivery.body,
            "headers": dict(delivery.headers),
            "received_at": delivery.received_at,
            "attempt": delivery.attempts,
        }
        await host.supervisor.deliver_webhook(delivery.plugin, delivery.endpoint, event)

    def submit_operation(
        self,
        operation: Operation,
        consent: Iterable[str],
        *,
        version: str | None = None,
        auto_update: Mapping[str, Any] | None = None,
    ) -> Operation:
        """Queue ``operation`` (committed when this returns) with the consent its caller
        gave; the workspace's queue runs it once the workspace is started. ``version``: an
        update to exactly that version (else the newest); ``auto_update``: what the
        auto-update that queued it decided (told back when it ends)."""
        self.operations[operation.id] = operation
        payload: dict[str, Any] = {
            "kind": operation.kind,
            "workspace": operation.workspace,
            "target": operation.target,
            "actor": operation.actor,
            "consent": sorted(consent),
        }
        if version is not None:
            payload["version"] = version
        if auto_update is not None:
            payload["auto_update"] = dict(auto_update)
        self.host.tasks.submit_system(
            OPERATION_TASK, "", payload, submitted_by=operation.actor, task_id=operation.id
        )
        return operation

    def operation_records(self, limit: int) -> list[Operation]:
        """The workspace's operations, newest first (live ones as they stand)."""
        records = self.host.tasks.store.find(type=OPERATION_TASK, limit=limit)
        return [self.operations.get(r.id) or operation_of(r) for r in records]

    def operation(self, operation_id: str) -> Operation | None:
        found = self.operations.get(operation_id)
        if found is not None:
            return found
        record = self.host.tasks.store.get(operation_id)
        if record is None or record.type != OPERATION_TASK:
            return None
        return operation_of(record)

    async def _run_operation(self, record: TaskRecord) -> dict[str, Any]:
        operation = self.operations.get(record.id)
        if operation is None:  # queued by a process that stopped: from what it queued
            operation = self.operations[record.id] = operation_of(record)
        payload = record.payload
        context, consent_given = context_for(operation.actor, payload["consent"], operation)
        async with self.lock:  # why, see Workspace.lock
            operation.state, operation.started_at = "running", time.time()
            operation.result = operation.error = None
            operation.step("resolving")
            try:
                operation.result = await self._operation_work(
                    payload["kind"],
                    payload["target"],
                    context,
                    payload.get("version"),
                    payload.get("auto_update"),
                )
                self._ended(operation, payload, None)
                operation.state = "succeeded"
                operation.step("done")
            except PlugportError as exc:
                _, operation.error = describe(exc, consent_given.refused)
                self._ended(operation, payload, operation.error)
                operation.state = "failed"
            except asyncio.CancelledError:  # the service is stopping: it runs again later
                operation.state = "queued"
                operation.step("cut off by a stop; it runs again when the service starts")
                raise
            except Exception as exc:  # a bug must still end the operation, said so
                operation.error = {"code": "internal", "message": repr(exc), "details": {}}
                self._ended(operation, payload, operation.error)
                operation.state = "failed"
            finally:
                if operation.state != "queued":
                    operation.finished_at = time.time()
                self.forget_updates()
        if operation.state == "failed":
            error = operation.error or {}
            raise GiveUp(str(error.get("message", "failed")), result=operation.public())
        return operation.public()

    def _ended(
        self, operation: Operation, payload: Mapping[str, Any], error: dict[str, Any] | None
    ) -> None:
        """Tell :attr:`operation_ended` (while the lock is held and before the operation says
        it ended, so whoever polls it finds what they record already there)."""
        for listener in list(self.operation_ended):
            try:
                listener(operation, payload, error)
            except Exception:
                log.exception("an operation listener failed on %s", operation.id)

    async def _operation_work(
        self,
        kind: str,
        target: str,
        context: OperationContext,
        version: str | None = None,
        auto_update: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        if kind == "install":
            if os.path.lexists(target):  # PluginHost would read it as a path on this machine
                raise FieldError(
                    "plugin",
                    f"{target!r} names a file in the service's working directory; the API "
                    "installs registry plugins only",
                )
            return report(await self.host.install(target, context=context))
        if auto_update is not None:
            # Decided for the version installed then: if the plugin moved since (an operator's
            # update ran first), applying it could move it down, so it is dropped.
            installed = self.host.state.get(target)
            now = installed.version if installed is not None else "not installed"
            if now != auto_update.get("from"):
                raise ConflictError(
                    "plugin",
                    target,
                    f"is {now} now, not {auto_update.get('from')} as when the auto-update to "
                    f"{version} was decided; the next check decides again",
                )
        versions = {target: version} if version is not None else None
        return report(await self.host.update(target, versions=versions, context=context))

    def _webhook_failed(self, delivery: Delivery, state: str, error: str) -> None:
        self.host.state.audit(
            "webhook",
            delivery.plugin,
            "dead" if state == "dead" else "retry",
            actor="webhook",
            endpoint=delivery.endpoint,
            delivery=delivery.id,
            attempts=delivery.attempts,
            error=error,
        )

    def forget_updates(self) -> None:
        self._updates = None

    def registry_quarantined(self) -> dict[str, str]:
        """What the last update check found quarantined by the registry (name -> reason)."""
        return dict(self._quarantined)

    async def updates(self) -> dict[str, str] | None:
        """name -> newest compatible version for what has one, reused for a short while so
        listing stays cheap; None when the registries cannot be asked."""
        now = time.monotonic()
        if self._updates is None or now - self._updates_at > self.settings.update_check_ttl_s:
            try:
                found = await asyncio.to_thread(self.host.check_updates)
                flagged = await asyncio.to_thread(self.host.quarantined_installs)
            except PlugportError:
                return None
            self._quarantined = {name: reason for name, _, reason in flagged}
            self._updates = {name: newest for name, _, newest in found}
            self._updates_at = now
        return self._updates
