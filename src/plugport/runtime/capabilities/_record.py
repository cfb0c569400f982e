"""The shape every capability has: one :class:`Capability` record per capability module, listed
once in :mod:`plugport.runtime.capabilities`. The broker, consent, the descriptions, the SDK's
typed proxies, the testing kit's fakes and both purges loop over that list, so adding a
capability is one module and one line, and a missing part fails a test instead of opening a hole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from plugport._permissions import PermissionRule, permissions_beyond
from plugport.errors import InvalidInputError
from plugport.manifest import UI_CONTRIBUTIONS, Manifest, Permissions
from plugport.runtime.activity import ActivityFeed
from plugport.runtime.capabilities._mailer import Mailer
from plugport.runtime.capabilities._secret_source import MemorySecrets, SecretSource

if TYPE_CHECKING:
    from plugport.runtime.audit import AuditLog
    from plugport.runtime.capabilities._resolver import Resolver
    from plugport.runtime.capabilities.config import PluginSettings
    from plugport.runtime.capabilities.events import EventBus
    from plugport.runtime.capabilities.storage import PluginStorage
    from plugport.runtime.capabilities.ui import UiRegistry
    from plugport.runtime.metrics import RuntimeMetrics
    from plugport.sdk._api import CapabilityProxy

__all__ = [
    "UI_PERMISSION_OF",
    "UI_SURFACE_KINDS",
    "Calls",
    "Capability",
    "Deliveries",
    "Grants",
    "NetOptions",
    "Services",
    "TaskSink",
    "ui_surfaces",
]


UI_SURFACE_KINDS = {
    "widgets": "widget",
    "pages": "page",
    "menus": "menu",
    "fields": "field",
    "views": "view",
}
"""``contributes`` list -> the surface kind a :class:`~plugport.sdk.UiRequest` names."""
UI_PERMISSION_OF = {kind: UI_CONTRIBUTIONS[c] for c, kind in UI_SURFACE_KINDS.items()}
"""Surface kind -> the ``permissions.ui`` value it needs (``view`` -> ``custom_view``)."""


def ui_surfaces(manifest: Manifest) -> dict[str, str]:
    """Surface id -> kind, for every UI contribution of ``manifest``."""
    return {
        item.id: kind
        for contribution, kind in UI_SURFACE_KINDS.items()
        for item in getattr(manifest.contributes, contribution)
    }


@dataclass(frozen=True)
class Grants:
    """What the host granted one plugin: the permissions the operator consented to, and the
    contributions (commands, widgets, settings schema) the manifest declared."""

    plugin: str
    permissions: Permissions
    commands: Mapping[str, str] = field(default_factory=dict)
    widgets: Mapping[str, str] = field(default_factory=dict)
    ui_surfaces: Mapping[str, str] = field(default_factory=dict)
    """Id -> ``widget``, ``page``, ``menu``, ``field`` or ``view``: every contribution a UI
    handler answers, which ``ui.invalidate`` may name."""
    config_schema: Mapping[str, Any] = field(default_factory=dict)
    local_endpoints: tuple[str, ...] = ()
    """``host:port`` endpoints ``net.fetch`` may reach although they are local and not in
    ``permissions.network`` (``plugport dev --allow-local``; the operator's host policy)."""
    local_policy: str = ""
    """Where the operator lists ``local_endpoints`` (``[private-targets] in HOME/policy.toml``),
    quoted by refusals and by the audit of each fetch that reaches one."""
    credential_kinds: Mapping[str, tuple[str, str | None, str | None]] = field(default_factory=dict)
    """Credential name -> (kind, header, param) from ``[credentials]``; where each may be sent
    is ``permissions.credentials`` (what was consented)."""
    local_services: Mapping[str, str] = field(default_factory=dict)
    """Host name -> the loopback ``address:port`` that answers for it (the operator's
    ``[local-services]``: a fake or mock of a service, e.g. in a demo or a staging host)."""

    @classmethod
    def from_manifest(
        cls,
        manifest: Manifest,
        permissions: Permissions | None = None,
        *,
        local_endpoints: Sequence[str] = (),
        local_policy: str = "",
        local_services: Mapping[str, str] | None = None,
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
            ui_surfaces=ui_surfaces(manifest),
            config_schema=manifest.config,
            local_endpoints=tuple(local_endpoints),
            local_policy=local_policy,
            local_services=dict(local_services or {}),
            credential_kinds={
                name: (c.kind, c.header, c.param) for name, c in manifest.credentials.items()
            },
        )


@dataclass(frozen=True)
class NetOptions:
    """How the host's fetches are made. Tests swap the resolver and transport; what a plugin
    may reach beyond its grants is per plugin (``Grants.local_endpoints``), never here."""

    resolver: Resolver | None = None
    transport: Any = None  # httpx.AsyncBaseTransport
    timeout_ms: int = 10_000
    max_response_bytes: int = 5 * 1024**2


class Deliveries(Protocol):
    """Where ``webhooks.deliver`` puts a delivery (the supervisor's outbox and sender)."""

    async def deliver(
        self,
        grants: Grants,
        target: str,
        payload: Any,
        *,
        headers: Mapping[str, str] | None = None,
        sign_with: str | None = None,
        idempotency_key: str | None = None,
    ) -> str: ...

    def purge(self, plugin: str) -> int: ...


class TaskSink(Protocol):
    """Where ``tasks.submit`` and ``tasks.progress`` go: the host's task queue."""

    async def submit_from(
        self,
        plugin: str,
        task_type: str,
        payload: Any,
        *,
        priority: int | None = None,
        delay_s: float | None = None,
        idempotency_key: str | None = None,
        parent: str | None = None,
    ) -> str: ...

    async def progress_from(
        self, plugin: str, task_id: str, percent: float, message: str
    ) -> None: ...

    def purge(self, plugin: str) -> int: ...


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
    secrets: SecretSource = field(default_factory=MemorySecrets)
    """Credential values (the host's encrypted store); never sent to a worker unless
    ``secrets.reveal`` grants it."""
    mail: Mailer = field(default_factory=Mailer)
    """The operator's relay and each plugin's hourly count (``mail.send``)."""
    webhooks: Deliveries | None = None
    """The outbox and sender of ``webhooks.deliver`` (the supervisor's; ``None``: none)."""
    tasks: TaskSink | None = None
    """The task queue of ``tasks.submit``/``progress`` (the host's; ``None``: none)."""


class Calls:
    """The calls one plugin may make on one capability: each public method is a handler the
    broker dispatches ``api.<capability>.<method>(...)`` to, after binding the arguments to its
    signature and asking the capability's :class:`PermissionRule`. Methods may be ``async``."""

    def __init__(self, grants: Grants, services: Services) -> None:
        self.grants = grants
        self.plugin = grants.plugin
        self.services = services


@dataclass(frozen=True)
class Capability:
    """Everything Plugport knows about one capability, in one place."""

    name: str
    rule: PermissionRule  # granted?, the permission diff, consent words, the manifest fix
    calls: type[Calls]  # the host's handlers
    proxy: type[CapabilityProxy]  # what ``self.api.<name>`` is in the plugin: typed, documented
    purge: Callable[[Services, str], None]  # forget everything stored for an uninstalled plugin
    fake: type[Any] | None = None  # what plugin authors' tests get (plugport.testing)

    def methods(self) -> dict[str, Callable[..., Any]]:
        """The handler functions by method name (unbound; for checks and documentation)."""
        return {
            name: member
            for name, member in vars(self.calls).items()
            if not name.startswith("_") and callable(member)
        }


def nothing_stored(services: Services, plugin: str) -> None:
    """The purge of a capability that keeps nothing per plugin."""
