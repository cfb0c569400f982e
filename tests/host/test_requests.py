"""What the host asks a real registry, request by request: no resource is fetched twice in one
operation, a fresh signed index that already lists what is wanted is not asked again, and a
namespace's keys are revalidated once per operation however many of its plugins are verified."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from plugport.host import PluginHost
from tests.host._plugins import publish, write
from tests.registry.conftest import Registry
from tests.registry.test_publish import Publisher

INDEX = "GET /api/v1/index"
KEYS = "GET /api/v1/namespaces/acme/keys"


class Recording(httpx.BaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.seen: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.path}")
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()

    def take(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen


def test_each_request_once_and_none_the_signed_index_answers(
    registry: Registry, tmp_path: Path
) -> None:
    publisher = Publisher(registry, tmp_path / "scratch")
    src, dist = tmp_path / "src", tmp_path / "dist"
    publish(registry, publisher, write(src, "acme.base", "1.0.0"), dist)
    top = write(src, "acme.top", "1.0.0", dependencies={"acme.base": ">=1"})
    publish(registry, publisher, top, dist)
    recording = Recording()
    steps: dict[str, list[str]] = {}

    async def scenario(host: PluginHost) -> None:
        await host.install("acme.top")  # and acme.base, from the same namespace
        steps["cold"] = recording.take()
        await host.uninstall("acme.top")
        await host.uninstall("acme.base")
        recording.take()
        await host.install("acme.top")  # within the TTL, from the cache
        steps["warm"] = recording.take()
        publish(registry, publisher, write(src, "acme.base", "1.1.0"), dist)
        await host.update("acme.base")  # newer than the cached index
        steps["update"] = recording.take()

    try:
        run(registry.url, tmp_path / "home", recording, scenario)
    finally:
        recording.close()
    gets = {step: [r for r in seen if r.startswith("GET ")] for step, seen in steps.items()}
    for step, seen in gets.items():
        assert [r for r, n in Counter(seen).items() if n > 1] == [], (step, seen)
    assert gets["cold"].count(KEYS) == 1  # two plugins of acme verified, its keys asked once
    assert INDEX in gets["cold"]
    # warm: the fresh index lists both versions; only the keys are revalidated (revocation)
    assert gets["warm"] == [KEYS], gets["warm"]
    # update: the versions are revalidated, and the index, which does not list 1.1.0 yet
    assert INDEX in gets["update"]
    assert "GET /api/v1/plugins/acme.base/versions" in gets["update"]
    assert "GET /api/v1/plugins/acme.base/versions/1.1.0/download" in gets["update"]


def run(
    url: str, home: Path, transport: Recording, scenario: Callable[[PluginHost], Awaitable[None]]
) -> None:
    async def main() -> None:
        async with PluginHost(
            app="myapp",
            app_version="2.4.0",
            home=home,
            registries=[url],
            transport=transport,
            telemetry=False,
        ) as host:
            await scenario(host)

    asyncio.run(main())
