"""A publisher revokes its key (say it leaked): hosts stop installing what that key signed,
even when their cached copy of the namespace's keys is younger than its TTL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from plugport.errors import SignatureError
from plugport.host import PluginHost
from plugport.signing import key_id
from tests.host._plugins import publish, write
from tests.registry.conftest import Registry
from tests.registry.test_publish import Publisher


def test_a_revoked_publisher_key_is_refused(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path / "scratch")
    src, dist = tmp_path / "src", tmp_path / "dist"
    publish(registry, publisher, write(src, "acme.alpha", "1.0.0"), dist)
    publish(registry, publisher, write(src, "acme.beta", "1.0.0"), dist)
    home = tmp_path / "home"

    async def install(name: str) -> None:
        async with PluginHost(
            app="myapp", app_version="2.4.0", home=home, registries=[registry.url]
        ) as host:
            await host.install(name)

    asyncio.run(install("acme.alpha"))  # caches acme's keys for the TTL
    leaked = key_id(publisher.key.public_key())
    with registry.client(publisher.token) as owner:
        owner.delete(f"/api/v1/namespaces/acme/keys/{leaked}").raise_for_status()
    with pytest.raises(SignatureError, match=r"acme.beta 1.0.0 is signed by acme's key .* revoked"):
        asyncio.run(install("acme.beta"))
    assert sorted(p.name for p in (home / "plugins").iterdir()) == ["acme.alpha"]
