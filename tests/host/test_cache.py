"""The host's metadata cache, counted at the transport: an operator who searches, looks at a
plugin and re-runs an install within the TTL costs the registry (almost) nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from plugport.errors import InvalidInputError
from plugport.host import PluginHost
from plugport.host.client import RegistryClient
from tests.host._plugins import publish, write
from tests.registry.conftest import Registry
from tests.registry.test_publish import Publisher

REPEATS = 10


def repeated_requests(registry: Registry, home: Path, ttl_s: float) -> int:
    """Requests sent for REPEATS rounds of search + info + install, after a first install."""

    async def scenario() -> int:
        async with PluginHost(
            app="myapp",
            app_version="2.4.0",
            home=home,
            registries=[registry.url],
            cache_ttl_s=ttl_s,
        ) as host:
            await host.install("acme.alpha")
            before = host.clients[0].requests_sent
            for _ in range(REPEATS):
                host.search("alpha")
                host.info("acme.alpha")
                report = await host.install("acme.alpha")
                assert report.installed == []  # already there: nothing downloaded
            return host.clients[0].requests_sent - before

    return asyncio.run(scenario())


def test_repeats_within_the_ttl_send_at_least_90_percent_fewer_requests(
    registry: Registry, tmp_path: Path
) -> None:
    publisher = Publisher(registry, tmp_path / "scratch")
    publish(registry, publisher, write(tmp_path / "src", "acme.alpha", "1.0.0"), tmp_path / "dist")
    uncached = repeated_requests(registry, tmp_path / "no-cache", ttl_s=0)
    cached = repeated_requests(registry, tmp_path / "cache", ttl_s=300)
    assert uncached >= 3 * REPEATS  # every read asked the registry (a conditional GET)
    assert cached <= uncached * 0.1, (cached, uncached)


def test_without_a_cache_dir_metadata_is_kept_in_memory_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json=[{"version": "1.0.0"}])

    with RegistryClient(
        "http://registry.test", cache_dir=None, transport=httpx.MockTransport(answer)
    ) as client:
        assert client.versions("acme.hello") == [{"version": "1.0.0"}]
        assert client.versions("acme.hello") == [{"version": "1.0.0"}]  # from memory
        with pytest.raises(InvalidInputError, match="no cache directory to download into"):
            client.download(
                "acme.hello", "1.0.0", expected_sha256="a" * 64, expected_length=1, max_bytes=9
            )
    assert seen == ["/api/v1/plugins/acme.hello/versions"]
    assert list(tmp_path.iterdir()) == []


def test_versions_that_changed_drop_the_cached_listing_that_described_them() -> None:
    """An update sees 1.1.0 in the versions; ``plugport info`` must not then show the listing
    an install cached while 1.0.0 was the latest, however fresh that copy is."""
    latest = {"version": "1.0.0"}
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path.endswith("/versions"):
            body = [{"version": "1.0.0"}] + ([latest] if latest["version"] != "1.0.0" else [])
            return httpx.Response(200, json=body)
        return httpx.Response(200, json={"latest_version": latest["version"]})

    with RegistryClient(
        "http://registry.test", cache_dir=None, transport=httpx.MockTransport(answer)
    ) as client:
        assert client.plugin("acme.hello")["latest_version"] == "1.0.0"
        client.versions("acme.hello")
        client.versions("acme.hello", revalidate=True)  # unchanged: the listing stays cached
        assert client.plugin("acme.hello")["latest_version"] == "1.0.0"
        assert seen.count("/api/v1/plugins/acme.hello") == 1
        latest["version"] = "1.1.0"
        client.versions("acme.hello", revalidate=True)  # changed: the listing is dropped
        assert client.plugin("acme.hello")["latest_version"] == "1.1.0"
        assert seen.count("/api/v1/plugins/acme.hello") == 2
