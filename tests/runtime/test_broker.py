"""The capability broker: the grant decision on its own, then the broker over real services
(SQLite in memory, the event bus, the UI registry) with every refusal audited."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugport.errors import InvalidInputError, PermissionDeniedError, ResourceLimitExceededError
from plugport.manifest import Permissions, parse_manifest
from plugport.runtime._db import RuntimeDatabase
from plugport.runtime.audit import MemoryAuditLog
from plugport.runtime.broker import CapabilityBroker, Grants, NetOptions, Services, check_grant
from plugport.runtime.capabilities.config import PluginSettings
from plugport.runtime.capabilities.events import Event, EventBus
from plugport.runtime.capabilities.network import StaticResolver
from plugport.runtime.capabilities.storage import PluginStorage
from plugport.runtime.capabilities.ui import UiRegistry
from plugport.runtime.metrics import RuntimeMetrics
from plugport.runtime.supervisor import PluginInstall

MANIFEST = """
name = "acme.tool"
version = "1.0.0"
entry = "tool:Main"

[permissions]
storage = 64
network = ["api.example.com"]
config = true
ui = ["messages", "widgets"]
events.publish = ["tasks.*"]

[contributes]
commands = [{ id = "tool.run", title = "Run" }]
widgets = [{ id = "tool.stats", title = "Stats" }]

[config]
type = "object"
properties.level = { type = "integer", default = 3 }
"""

EVERYTHING = Grants.from_manifest(parse_manifest(MANIFEST))
NOTHING = Grants("acme.none", Permissions())


@pytest.mark.parametrize(
    ("capability", "method", "arguments", "reason"),
    [
        ("storage", "get", {}, "permissions.storage is 0"),
        ("net", "fetch", {}, "permissions.network grants no hosts"),
        ("config", "get", {}, "permissions.config is not granted"),
        ("events", "publish", {"topic": "tasks.created"}, "matches no granted publish pattern"),
        ("ui", "message", {}, "does not include 'messages' (none granted)"),
        ("ui", "register_command", {}, "does not include 'commands'"),
        ("ui", "invalidate", {}, "includes no surface to invalidate (none granted)"),
        ("ui", "update_widget", {}, "includes no surface to invalidate (none granted)"),
        ("ui", "metrics", {}, "does not include 'metrics'"),
        ("shell", "run", {}, "no such capability 'shell'"),
    ],
)
def test_nothing_granted_refuses_everything(
    capability: str, method: str, arguments: dict[str, Any], reason: str
) -> None:
    assert reason in check_grant(NOTHING, capability, method, arguments)


@pytest.mark.parametrize(
    ("capability", "method", "arguments"),
    [
        ("storage", "set", {}),
        ("net", "fetch", {}),
        ("config", "get", {}),
        ("events", "publish", {"topic": "tasks.created"}),
        ("ui", "message", {}),
        ("ui", "invalidate", {}),
        ("ui", "update_widget", {}),
    ],
)
def test_granted_calls_pass(capability: str, method: str, arguments: dict[str, Any]) -> None:
    assert check_grant(EVERYTHING, capability, method, arguments) == ""


def test_publish_is_checked_per_topic() -> None:
    assert "(tasks.*)" in check_grant(EVERYTHING, "events", "publish", {"topic": "billing.paid"})
    assert check_grant(EVERYTHING, "events", "publish", {"topic": "tasks.a.b"}) != ""
    assert "'commands'" in check_grant(EVERYTHING, "ui", "register_command", {})
    with pytest.raises(InvalidInputError, match="topic must be a string"):
        check_grant(EVERYTHING, "events", "publish", {"topic": 7})


def test_consented_permissions_narrow_the_manifest() -> None:
    narrowed = Grants.from_manifest(parse_manifest(MANIFEST), Permissions(storage=64))
    assert check_grant(narrowed, "storage", "get", {}) == ""
    assert check_grant(narrowed, "net", "fetch", {}) != ""
    assert narrowed.commands == {"tool.run": "Run"}


def test_local_endpoints_are_the_hosts_grant_and_open_net_fetch_alone() -> None:
    manifest = parse_manifest(MANIFEST)
    granted = Grants.from_manifest(
        manifest, Permissions(storage=64), local_endpoints=["127.0.0.1:8080"]
    )
    assert granted.local_endpoints == ("127.0.0.1:8080",)
    assert check_grant(granted, "net", "fetch", {}) == ""  # no network permission needed
    assert Grants.from_manifest(manifest).local_endpoints == ()  # never from the manifest


def test_a_plugin_install_refuses_a_malformed_local_endpoint() -> None:
    manifest = parse_manifest(MANIFEST)
    with pytest.raises(
        InvalidInputError, match=r"local_endpoints: '127\.0\.0\.1': write HOST:PORT"
    ):
        PluginInstall(manifest, Path("."), local_endpoints=("127.0.0.1",))
    install = PluginInstall(manifest, Path("."), local_endpoints=["[::1]:80"])  # type: ignore[arg-type]
    assert install.local_endpoints == ("[::1]:80",)


# --- the broker over real services --------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def services() -> Iterator[Services]:
    db = RuntimeDatabase()
    delivered: list[tuple[str, Event]] = []

    async def deliver(plugin: str, event: Event) -> None:
        delivered.append((plugin, event))

    bus = EventBus(deliver)
    bus.subscribe_plugin("acme.listener", ["tasks.*"])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"host": request.headers["host"]})

    yield Services(
        storage=PluginStorage(db),
        settings=PluginSettings(db),
        events=bus,
        ui=UiRegistry(),
        audit=MemoryAuditLog(),
        metrics=RuntimeMetrics(),
        net=NetOptions(
            resolver=StaticResolver({"api.example.com": ["93.184.216.34"]}),
            transport=httpx.MockTransport(handler),
        ),
    )
    db.close()


def call(broker: CapabilityBroker, capability: str, method: str, *args: Any, **kwargs: Any) -> Any:
    async def go() -> Any:
        value = await broker(capability, method, list(args), kwargs)
        await broker.services.events.drain()
        return value

    return asyncio.run(go())


def test_granted_calls_reach_the_services(services: Services) -> None:
    broker = CapabilityBroker(EVERYTHING, services)
    assert call(broker, "storage", "set", "k", {"n": 1}) == 8
    assert call(broker, "storage", "get", "k") == {"n": 1}
    assert call(broker, "storage", "get", "missing", default=0) == 0
    assert call(broker, "storage", "keys") == ["k"]
    assert call(broker, "storage", "usage") == {"used_bytes": 8, "quota_bytes": 64}
    assert call(broker, "storage", "delete", "k") is True
    assert call(broker, "config", "get") == {"level": 3}
    assert call(broker, "config", "get", "level") == 3
    assert call(broker, "events", "publish", "tasks.created", {"id": 1}) == 1
    call(broker, "ui", "message", "hello", level="warning")
    call(broker, "ui", "invalidate", "tool.stats")
    call(broker, "ui", "update_widget", "tool.stats", {"value": 2})  # deprecated: invalidates
    assert [m.text for m in services.ui.messages("acme.tool")] == ["hello"]
    assert services.ui.versions() == {("acme.tool", "tool.stats"): 2}
    fetched = call(broker, "net", "fetch", "https://api.example.com/v1")
    assert fetched["status"] == 200
    assert fetched["body"] == b'{"host":"api.example.com"}'
    assert services.audit.query() == []
    metrics = services.metrics.render().decode()
    assert 'capability="storage",outcome="ok",plugin="acme.tool"} 6.0' in metrics


@pytest.mark.parametrize(
    ("capability", "method", "args", "label", "reason"),
    [
        ("storage", "set", ["k", 1], "storage.set", "permissions.storage is 0"),
        ("net", "fetch", ["https://api.example.com/"], "net.fetch", "grants no hosts"),
        ("storage", "drop_all", [], "storage.drop_all", "the host offers no 'storage.drop_all'"),
        ("os", "system", ["id"], "os.system", "the host offers no 'os.system'"),
        ("storage", "_handlers", [], "storage._handlers", "offers no"),
    ],
)
def test_refusals_are_audited_and_change_nothing(  # noqa: PLR0917 parametrised cases
    services: Services, capability: str, method: str, args: list[Any], label: str, reason: str
) -> None:
    broker = CapabilityBroker(NOTHING, services)
    with pytest.raises(PermissionDeniedError, match=reason) as caught:
        call(broker, capability, method, *args)
    assert caught.value.capability == label
    [event] = services.audit.query()
    assert (event.plugin, event.kind, event.capability) == ("acme.none", "deny", label)
    assert reason in event.reason
    assert services.storage.keys("acme.none") == []


def test_a_plugin_invalidates_only_its_own_contributed_surfaces(services: Services) -> None:
    """Versions are kept per (plugin, surface): naming another plugin's widget, or one the
    manifest does not contribute, is refused and bumps nothing."""
    broker = CapabilityBroker(EVERYTHING, services)
    call(broker, "ui", "invalidate", "tool.stats")
    for surface in ("other.stats", "tool.run", "../tool.stats", ""):
        with pytest.raises(InvalidInputError):
            call(broker, "ui", "invalidate", surface)
    assert services.ui.versions() == {("acme.tool", "tool.stats"): 1}
    assert services.audit.query() == []


def test_ssrf_refusal_is_audited_as_a_denial(services: Services) -> None:
    broker = CapabilityBroker(EVERYTHING, services)
    with pytest.raises(PermissionDeniedError, match=r"is not in the plugin's network grants") as e:
        call(broker, "net", "fetch", "https://metadata.internal:8443/")
    assert 'add "metadata.internal:8443" to `network = [...]`' in e.value.fix
    with pytest.raises(PermissionDeniedError):
        call(broker, "net", "fetch", "http://169.254.169.254/latest/meta-data/")
    assert [(e.kind, e.capability) for e in services.audit.query()] == [
        ("deny", "net.fetch"),
        ("deny", "net.fetch"),
    ]


def test_publish_outside_the_grant_is_denied_and_not_delivered(services: Services) -> None:
    broker = CapabilityBroker(EVERYTHING, services)
    with pytest.raises(PermissionDeniedError, match=r"'billing\.paid' matches no granted"):
        call(broker, "events", "publish", "billing.paid", {})
    assert services.events.in_flight == 0
    assert services.audit.query()[0].capability == "events.publish"


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "message"),
    [
        ("set", ["k"], {}, "missing a required argument: 'value'"),
        ("get", [], {"key": "k", "shell": True}, "unexpected keyword argument 'shell'"),
        ("get", ["a", "b", "c"], {}, "too many positional arguments"),
    ],
)
def test_malformed_arguments_are_invalid_input(
    services: Services, method: str, args: list[Any], kwargs: dict[str, Any], message: str
) -> None:
    broker = CapabilityBroker(EVERYTHING, services)
    with pytest.raises(InvalidInputError, match=message) as caught:
        call(broker, "storage", method, *args, **kwargs)
    assert str(caught.value).startswith(f"storage.{method}(")
    assert services.audit.query() == []
    assert services.storage.usage("acme.tool") == 0


def test_quota_refusal_is_audited_as_a_limit(services: Services) -> None:
    broker = CapabilityBroker(EVERYTHING, services)
    with pytest.raises(ResourceLimitExceededError, match="quota of 64 bytes"):
        call(broker, "storage", "set", "k", "x" * 100)
    assert [(e.kind, e.capability) for e in services.audit.query()] == [("limit", "storage.set")]
    assert services.storage.get("acme.tool", "k") is None


def test_a_flood_is_rate_limited_with_one_audit_line(services: Services) -> None:
    clock = Clock()
    broker = CapabilityBroker(EVERYTHING, services, calls_per_s=10, burst=5, clock=clock)
    for _ in range(5):
        call(broker, "storage", "get", "k")
    for _ in range(3):
        with pytest.raises(ResourceLimitExceededError) as caught:
            call(broker, "storage", "get", "k")
        assert caught.value.limit == "capability_calls_per_second"
    assert [e.kind for e in services.audit.query()] == ["limit"]
    clock.now = 0.1  # one token back at 10 per second
    assert call(broker, "storage", "get", "k") is None


def test_consent_can_narrow_but_never_widen() -> None:
    manifest = parse_manifest(MANIFEST)
    wider = Permissions(
        network=["api.example.com", "evil.example"],
        storage=65,
        events={"publish": ["tasks.created", "billing.*"], "subscribe": ["x.y"]},
        ui=["messages", "commands"],
        config=True,
    )
    with pytest.raises(InvalidInputError) as caught:
        Grants.from_manifest(manifest, wider)
    assert str(caught.value) == (
        "consented permissions for 'acme.tool' go beyond what its manifest requests: "
        "network 'evil.example'; storage 65 > 64 bytes; events.publish 'billing.*'; "
        "events.subscribe 'x.y'; ui 'commands'"
    )
    narrower = Permissions(storage=10, events={"publish": ["tasks.created"]}, ui=["messages"])
    assert Grants.from_manifest(manifest, narrower).permissions == narrower
