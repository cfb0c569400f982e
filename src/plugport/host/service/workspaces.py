"""One host home per workspace (``data_dir/workspaces/<name>``), each a :class:`PluginHost`
started on first use and kept for the service's life. The host is built once, so what differs
per operation (who asks, what the operator consented to, where progress goes) is routed to
the operation in flight through the callbacks the host was built with."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from pathlib import Path
from typing import cast

from plugport.errors import NotFoundError, PlugportError
from plugport.host.client import RetryPolicy
from plugport.host.consent import ConsentRequest
from plugport.host.host import PluginHost
from plugport.host.secrets.oauth2 import (
    AuthorizationStates,
    OAuth2Broker,
    OAuth2TokenSource,
    SecretStore,
    providers_of,
)
from plugport.host.service.operations import Operation
from plugport.host.service.settings import HostServiceSettings
from plugport.manifest import OAuth2Provider, load_manifest
from plugport.runtime.hooks import HookSpec

__all__ = ["Workspace"]


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
        self.host = PluginHost(
            app=settings.app,
            app_version=settings.app_version,
            home=home,
            registries=list(settings.registries),
            hookspecs=hookspecs,
            sandbox=settings.sandbox,
            consent=self._consent,
            cache_ttl_s=settings.registry_cache_ttl_s,
            registry_retry=RetryPolicy(
                max_retries=settings.registry_max_retries,
                max_retry_after_s=settings.registry_max_retry_after_s,
                max_total_wait_s=settings.registry_max_total_wait_s,
            ),
            telemetry=settings.telemetry,
            actor="host-service",
            progress=self._progress,
        )
        services = self.host.supervisor.services
        store = cast(SecretStore, services.secrets)
        self.oauth2 = OAuth2Broker(
            store,
            self._oauth2_provider,
            states=oauth2_states,
            audit=self.host.supervisor.audit,
            workspace=name,
        )
        """Runs OAuth2 for the plugins' oauth2 credentials; their fetches get its tokens."""
        services.secrets = OAuth2TokenSource(store, self.oauth2)
        self.lock = asyncio.Lock()
        """Held by every change (operations and the quick ones), so each runs with its own
        actor and consent, one at a time."""
        self.operations: dict[str, Operation] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._start_lock = asyncio.Lock()
        self._started = False
        self._granted: frozenset[str] = frozenset()
        self._current: Operation | None = None
        self.refused: ConsentRequest | None = None
        self._updates: dict[str, str] | None = None
        self._updates_at = 0.0

    async def started(self) -> PluginHost:
        if not self._started:
            async with self._start_lock:
                if not self._started:
                    await self.host.start()
                    self._started = True
        return self.host

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.host.stop()

    def acting(
        self, actor: str, granted: Iterable[str] = (), operation: Operation | None = None
    ) -> None:
        """Who the next change is for, with the lock held: named in the host's audit trail."""
        self.host.actor = self.host.fetcher.actor = actor
        self._granted = frozenset(granted)
        self._current = operation
        self.refused = None

    def forget_updates(self) -> None:
        self._updates = None

    async def updates(self) -> dict[str, str] | None:
        """name -> newest compatible version for what has one, reused for a short while so
        listing stays cheap; None when the registries cannot be asked."""
        now = time.monotonic()
        if self._updates is None or now - self._updates_at > self.settings.update_check_ttl_s:
            try:
                found = await asyncio.to_thread(self.host.check_updates)
            except PlugportError:
                return None
            self._updates = {name: newest for name, _, newest in found}
            self._updates_at = now
        return self._updates

    def _oauth2_provider(self, plugin: str, credential: str) -> OAuth2Provider:
        installation = self.host.state.get(plugin)
        if installation is None:
            raise NotFoundError("installed plugin", plugin)
        manifest = load_manifest(self.host.paths.code_dir(installation))
        return providers_of(manifest, credential)

    def _consent(self, request: ConsentRequest) -> bool:
        """The operator grants exactly what the request listed, nothing more."""
        if set(request.added) <= self._granted:
            return True
        self.refused = request
        return False

    def _progress(self, what: str, done: int, total: int) -> None:
        if self._current is not None:
            self._current.step(what, done, total)
