"""The host side of every capability call: is the method real, are the arguments well formed, did
the host grant it, is the plugin within its rate; then the capability service does the work.

:func:`check_grant` is the decision, pure and tested on its own; :class:`CapabilityBroker` wraps it
with the services, the audit log (every denial is recorded) and the metrics.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from plugport.errors import InvalidInputError, PermissionDeniedError, ResourceLimitExceededError
from plugport.manifest import Manifest, Permissions, match_topic, pattern_covers
from plugport.runtime._rate import TokenBucket
from plugport.runtime.activity import Activity, ActivityFeed
from plugport.runtime.audit import AuditEvent, AuditLog
from plugport.runtime.capabilities.config import PluginSettings
from plugport.runtime.capabilities.events import EventBus
from plugport.runtime.capabilities.network import FetchPolicy, NetworkBroker, Resolver
from plugport.runtime.capabilities.storage import PluginStorage
from plugport.runtime.capabilities.ui import UiRegistry
from plugport.runtime.metrics import RuntimeMetrics

__all__ = [
    "CapabilityBroker",
    "Grants",
    "NetOptions",
    "Services",
    "check_grant",
    "permissions_beyond",
]


@dataclass(frozen=True)
class Grants:
    """What the host granted one plugin: the permissions the operator consented to, and the
    contributions (commands, widgets, settings schema) the manifest declared."""

    plugin: str
    permissions: Permissions
    commands: Mapping[str, str] = field(default_factory=dict)
    widgets: Mapping[str, str] = field(default_factory=dict)
    config_schema: Mapping[str, Any] = field(default_factory=dict)
    local_endpoints: tuple[str, ...] = ()
    """``host:port`` endpoints ``net.fetch`` may reach although they are local and not in
    ``permissions.network`` (``plugport dev --allow-local``; the operator's host policy)."""

    @classmethod
    def from_manifest(
        cls,
        manifest: Manifest,
        permissions: Permissions | None = None,
        *,
        local_endpoints: Sequence[str] = (),
    ) -> Grants:
        """``permissions`` narrows the manifest's request to what was consented (default: all);
        it can never widen it. ``local_endpoints`` are the host's own grant, not the
        manifest's."""
        if permissions is not None and (
            beyond := permissions_beyond(manifest.permissions, permissions)
        ):
            raise InvalidInputError(
                f"consented permissions for {manifest.name!r} go beyond what its manifest "
                f"requests: {'; '.join(beyond)}"
            )
        return cls(
            plugin=manifest.name,
            permissions=manifest.permissions if permissions is None else permissions,
            commands={c.id: c.title for c in manifest.contributes.commands},
            widgets={w.id: w.title for w in manifest.contributes.widgets},
            config_schema=manifest.config,
            local_endpoints=tuple(local_endpoints),
        )


def permissions_beyond(requested: Permissions, granted: Permissions) -> list[str]:
    """What ``granted`` allows that ``requested`` did not ask for (empty: a true subset)."""
    beyond = [f"network {p!r}" for p in granted.network if p not in requested.network]
    if granted.storage > requested.storage:
        beyond.append(f"storage {granted.storage} > {requested.storage} bytes")
    for direction in ("publish", "subscribe"):
        asked = getattr(requested.events, direction)
        beyond += [
            f"events.{direction} {p!r}"
            for p in getattr(granted.events, direction)
            if not any(pattern_covers(a, p) for a in asked)
        ]
    beyond += [f"ui {s!r}" for s in granted.ui if s not in requested.ui]
    if granted.config and not requested.config:
        beyond.append("config")
    return beyond


def check_grant(grants: Grants, capability: str, method: str, arguments: Mapping[str, Any]) -> str:
    """Why ``capability.method(**arguments)`` is refused, or ``""`` when it is granted."""
    permissions = grants.permissions
    if capability == "events":
        topic = arguments.get("topic")
        granted = permissions.events.publish
        if not isinstance(topic, str):
            raise InvalidInputError(f"events.publish: topic must be a string, not {topic!r}")
        if any(match_topic(pattern, topic) for pattern in granted):
            return ""
        return f"topic {topic!r} matches no granted publish pattern ({_listed(granted)})"
    if capability == "ui":
        surface = {"message": "messages", "update_widget": "widgets"}.get(method, "commands")
        if surface in permissions.ui:
            return ""
        return f"permissions.ui does not include {surface!r} ({_listed(permissions.ui)})"
    simple = {
        "storage": (permissions.storage > 0, "permissions.storage is 0 (no storage granted)"),
        "net": (
            bool(permissions.network or grants.local_endpoints),
            "permissions.network grants no hosts",
        ),
        "config": (permissions.config, "permissions.config is not granted"),
    }
    granted_here, refusal = simple.get(capability, (False, f"no such capability {capability!r}"))
    return "" if granted_here else refusal


def _listed(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none granted"


@dataclass(frozen=True)
class NetOptions:
    """How the host's fetches are made. Tests swap the resolver and transport; what a plugin
    may reach beyond its grants is per plugin (``Grants.local_endpoints``), never here."""

    resolver: Resolver | None = None
    transport: Any = None  # httpx.AsyncBaseTransport
    timeout_ms: int = 10_000
    max_response_bytes: int = 5 * 1024**2


@dataclass
class Services:
    """The host's capability services, shared by every plugin's broker."""

    storage: PluginStorage
    settings: PluginSettings
    events: EventBus
    ui: UiRegistry
    audit: AuditLog
    metrics: RuntimeMetrics
    net: NetOptions = field(default_factory=NetOptions)
    activity: ActivityFeed = field(default_factory=ActivityFeed)


Handler = Callable[..., Any]


class CapabilityBroker:
    """One plugin's broker, called as ``broker(capability, method, args, kwargs)`` by its
    :class:`~plugport.runtime.process.PluginProcess`."""

    def __init__(
        self,
        grants: Grants,
        services: Services,
        *,
        calls_per_s: float = 500.0,
        burst: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.grants = grants
        self.plugin = grants.plugin
        self.services = services
        self._bucket = TokenBucket(calls_per_s, burst)
        self._clock = clock
        self._net: NetworkBroker | None = None
        self._handlers: dict[tuple[str, str], tuple[Handler, inspect.Signature]] = {}
        for attribute in dir(self):
            capability, _, method = attribute.removeprefix("_cap_").partition("__")
            if attribute.startswith("_cap_"):
                handler = getattr(self, attribute)
                self._handlers[capability, method] = (handler, inspect.signature(handler))

    def offered(self) -> list[str]:
        return sorted(f"{c}.{m}" for c, m in self._handlers)

    async def __call__(
        self, capability: str, method: str, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        name = f"{capability}.{method}"
        started = time.perf_counter()
        try:
            value = await self._dispatch(capability, method, name, args, kwargs)
        except PermissionDeniedError as exc:
            self._record("deny", exc.reason, name)
            self._done(capability, name, "denied", exc.reason, started)
            raise
        except ResourceLimitExceededError as exc:
            if exc.limit != "capability_calls_per_second":
                self._record("limit", str(exc), name)
            self._done(capability, name, "error", str(exc), started)
            raise
        except Exception as exc:
            self._done(capability, name, "error", f"{type(exc).__name__}: {exc}", started)
            raise
        self._done(capability, name, "ok", "", started)
        return value

    def _done(self, capability: str, name: str, outcome: str, why: str, started: float) -> None:
        self.services.metrics.capability(self.plugin, capability, outcome)
        if self.services.activity.watched:
            verdict = {"ok": "granted"}.get(outcome, outcome)
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.services.activity.emit(
                Activity(self.plugin, "capability", name, verdict, why, elapsed_ms)
            )

    async def _dispatch(
        self, capability: str, method: str, name: str, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        entry = self._handlers.get((capability, method))
        if entry is None:
            reason = f"the host offers no {name!r} (it offers {', '.join(self.offered())})"
            raise PermissionDeniedError(self.plugin, name, reason)
        if not self._bucket.take(self._clock()):
            if self._bucket.refused == 1:  # one audit line per flood, not one per call
                self._record("limit", "capability calls over the rate limit", name)
            raise ResourceLimitExceededError(
                self.plugin,
                "capability_calls_per_second",
                f"more than {self._bucket.rate_per_s:g} calls per second "
                f"(burst {self._bucket.burst:g})",
            )
        handler, signature = entry
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInputError(f"{name}{signature}: {exc}") from None
        bound.apply_defaults()
        denial = check_grant(self.grants, capability, method, bound.arguments)
        if denial:
            raise PermissionDeniedError(self.plugin, name, denial)
        value = handler(*bound.args, **bound.kwargs)
        if isinstance(value, Awaitable):
            value = await value
        return value

    def _record(self, kind: str, reason: str, capability: str) -> None:
        self.services.audit.record(AuditEvent(self.plugin, kind, reason, capability))

    # --- storage ------------------------------------------------------------------------------

    def _cap_storage__get(self, key: str, default: Any = None) -> Any:
        return self.services.storage.get(self.plugin, key, default)

    def _cap_storage__set(self, key: str, value: Any) -> int:
        quota = self.grants.permissions.storage
        return self.services.storage.set(self.plugin, key, value, quota_bytes=quota)

    def _cap_storage__delete(self, key: str) -> bool:
        return self.services.storage.delete(self.plugin, key)

    def _cap_storage__keys(self, prefix: str = "", limit: int = 1000) -> list[str]:
        return self.services.storage.keys(self.plugin, prefix, limit=limit)

    def _cap_storage__usage(self) -> dict[str, int]:
        used = self.services.storage.usage(self.plugin)
        return {"used_bytes": used, "quota_bytes": self.grants.permissions.storage}

    # --- network ------------------------------------------------------------------------------

    async def _cap_net__fetch(
        self,
        url: str,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        json: Any = None,
    ) -> dict[str, Any]:
        result = await self._network().fetch(
            url, method=method, headers=headers, body=body, json=json
        )
        return {
            "status": result.status,
            "headers": result.headers,
            "body": result.body,
            "url": result.url,
            "elapsed_ms": result.elapsed_ms,
        }

    def _network(self) -> NetworkBroker:
        if self._net is None:
            options = self.services.net
            policy = FetchPolicy(
                allowed=tuple(self.grants.permissions.network),
                timeout_ms=options.timeout_ms,
                max_response_bytes=options.max_response_bytes,
                local_endpoints=self.grants.local_endpoints,
            )
            self._net = NetworkBroker(self.plugin, policy, options.resolver, options.transport)
        return self._net

    # --- events, ui, config -------------------------------------------------------------------

    async def _cap_events__publish(self, topic: str, payload: Any = None) -> int:
        return await self.services.events.publish(topic, payload, source=self.plugin)

    def _cap_ui__message(self, text: str, level: str = "info") -> None:
        self.services.ui.post_message(self.plugin, text, level)

    def _cap_ui__register_command(self, command_id: str, title: str = "") -> None:
        self.services.ui.register_command(
            self.plugin, command_id, title, contributed=self.grants.commands
        )

    def _cap_ui__unregister_command(self, command_id: str) -> bool:
        return self.services.ui.unregister_command(self.plugin, command_id)

    def _cap_ui__update_widget(self, widget_id: str, data: Any) -> None:
        self.services.ui.update_widget(
            self.plugin, widget_id, data, contributed=self.grants.widgets
        )

    def _cap_config__get(self, key: str | None = None, default: Any = None) -> Any:
        settings = self.services.settings.get(self.plugin, dict(self.grants.config_schema))
        return settings if key is None else settings.get(key, default)
