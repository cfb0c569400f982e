"""A publisher revokes its key (say it leaked): hosts stop installing what that key signed,
even when their cached copy of the namespace's keys is younger than its TTL, and the registry
no longer offers it: an install takes the newest version left, and a pin to a withdrawn version
says which key was revoked and when."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from plugport.errors import SignatureError
from plugport.host import PluginHost
from plugport.signing import key_id
from tests.host._plugins import add_publisher_key, publish, publish_signed_by, write
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


def test_an_install_skips_withdrawn_versions_and_a_pin_to_one_fails_clearly(
    registry: Registry, tmp_path: Path
) -> None:
    """The registry withdraws what a revoked key signed: an install takes the newest version
    left; an exact pin to a withdrawn one names the key and when it was revoked, and installs
    nothing (not even the first use's pin of the registry or the publisher's key)."""
    publisher = Publisher(registry, tmp_path / "scratch")
    leaked = add_publisher_key(registry, "acme")
    src, dist = tmp_path / "src", tmp_path / "dist"
    publish(registry, publisher, write(src, "acme.alpha", "1.0.0"), dist)
    publish_signed_by(registry, publisher, leaked, write(src, "acme.alpha", "1.1.0"), dist)
    leaked_id = key_id(leaked.public_key())
    with registry.client(publisher.token) as owner:
        revoked = owner.delete(f"/api/v1/namespaces/acme/keys/{leaked_id}")
        revoked.raise_for_status()
    home = tmp_path / "home"

    seen: dict[str, Any] = {}

    async def install(spec: str) -> None:
        async with PluginHost(
            app="myapp", app_version="2.4.0", home=home, registries=[registry.url]
        ) as host:
            try:
                await host.install(spec)
            finally:
                seen["installed"] = [(i.name, i.version) for i in host.installed()]
                seen["audit"] = host.audit(subject="acme.alpha")

    with pytest.raises(SignatureError) as refused:
        asyncio.run(install("acme.alpha==1.1.0"))
    assert refused.value.part == "key"
    assert str(refused.value).startswith(
        f"acme.alpha 1.1.0 is signed by acme's key {leaked_id[:16]}…, which its publisher "
        f"revoked at {revoked.json()['revoked_at']}: the registry withdrew it"
    )
    plugins = home / "plugins"
    assert not plugins.exists() or list(plugins.iterdir()) == []
    assert seen["installed"] == []
    [row] = seen["audit"]
    assert (row.action, row.outcome) == ("verify", "refused")
    assert leaked_id[:16] in row.detail["reason"]

    asyncio.run(install("acme.alpha"))
    assert seen["installed"] == [("acme.alpha", "1.0.0")]
    assert sorted(p.name for p in plugins.iterdir()) == ["acme.alpha"]
