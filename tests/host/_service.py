"""A real registry with a few published plugins and the host service on real uvicorn, both on
127.0.0.1, shared by a test module (sandboxed workers are expensive)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugport.host.service import HostService, HostServiceSettings, create_host_service_app
from plugport.registry.db import make_engine
from tests._uvicorn import serving as uvicorn_serving
from tests.host._plugins import publish, write
from tests.registry.conftest import Registry, running
from tests.registry.test_publish import Publisher

ALPHA = """\
from plugport.sdk import Plugin, command, hook


class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return "{label} says hello to " + name

    @hook("fail")
    def fail(self):
        raise ValueError("alpha cannot do that")

    @command("alpha.add")
    def add(self, a, b, scale=1):
        return (a + b) * scale
"""
ALPHA_MANIFEST = """\
[[contributes.commands]]
id = "alpha.add"
title = "Add two numbers"
"""
NETWORK = '[permissions]\nnetwork = ["api.example.com"]\n'
SETTINGS = """\
[permissions]
config = true
[config]
type = "object"
required = ["channel", "token"]
additionalProperties = false
[config.properties.channel]
type = "string"
minLength = 2
[config.properties.token]
type = "string"
writeOnly = true
minLength = 8
[config.properties.retries]
type = "integer"
minimum = 0
default = 3
[config.properties.mode]
enum = ["fast", "slow"]
default = "fast"
[config.properties.verbose]
type = "boolean"
default = false
[config.properties.tags]
type = "array"
items = { type = "string" }
"""
"""acme.tuned: required settings (one a secret) and one of every form field kind."""


def write_alpha(root: Path, version: str) -> Path:
    source = write(root, "acme.alpha", version, code=ALPHA)
    manifest = source / "plugport.toml"
    manifest.write_text(
        manifest.read_text().replace("hooks = { greet = 0 }", "hooks = { greet = 0, fail = 0 }")
        + ALPHA_MANIFEST
    )
    return source


@dataclass
class Market:
    """The registry, its publisher, and where plugin sources and archives go."""

    registry: Registry
    publisher: Publisher
    root: Path

    def publish(self, source: Path) -> None:
        publish(self.registry, self.publisher, source, self.root / "dist")


@contextlib.contextmanager
def market_at(root: Path) -> Iterator[Market]:
    engine = make_engine(f"sqlite:///{root / 'registry.sqlite'}")
    (root / "scratch").mkdir(parents=True)
    try:
        with running(engine, root / "registry-data") as registry:
            market = Market(registry, Publisher(registry, root / "scratch"), root)
            src = root / "src"
            market.publish(write_alpha(src, "1.0.0"))
            market.publish(write(src, "acme.gamma", "1.0.0", extra=NETWORK))
            market.publish(write(src, "acme.tuned", "1.0.0", extra=SETTINGS))
            yield market
    finally:
        engine.dispose()


@dataclass
class Service:
    url: str
    service: HostService
    settings: HostServiceSettings
    admin: str

    def client(self, token: str | None = None, **options: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **options)

    def workspace(self, name: str) -> str:
        """A new workspace; its token."""
        with self.client(self.admin) as admin:
            created = admin.post("/api/v1/workspaces", json={"name": name})
        assert created.status_code == 201, created.text
        token: str = created.json()["token"]
        return token

    def home(self, ws: str) -> Path:
        return self.settings.data_dir / "workspaces" / ws


@contextlib.contextmanager
def serving(settings: HostServiceSettings) -> Iterator[Service]:
    app = create_host_service_app(settings)
    with uvicorn_serving(app) as url:
        service: HostService = app.state.host_service
        admin, _ = service.store.create_token("admin", description="tests")
        yield Service(url, service, settings, admin)


def settings_for(root: Path, market: Market, **overrides: Any) -> HostServiceSettings:
    return HostServiceSettings(
        data_dir=root / "service",
        registries=(market.registry.url,),
        app="myapp",
        app_version="2.4.0",
        telemetry=False,
        **overrides,
    )


def wait_for(client: httpx.Client, ws: str, operation: dict[str, Any]) -> dict[str, Any]:
    """Poll an operation until it ends."""
    deadline = time.monotonic() + 60
    while True:
        response = client.get(f"/api/v1/workspaces/{ws}/operations/{operation['id']}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["state"] in ("succeeded", "failed"):
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"operation {operation['id']} still {body['state']}")
        time.sleep(0.05)
