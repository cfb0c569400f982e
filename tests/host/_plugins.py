"""Small real plugins for the host's end-to-end tests: written to disk, packed, signed by a
namespace's key and published to a real registry (approved by a reviewer)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from plugport.authoring import pack_plugin
from plugport.host.state import HostAudit, HostState, Installation, Journal, PinnedRegistry
from plugport.signing import generate_private_key, public_key_pem
from tests.registry.conftest import Registry
from tests.registry.test_publish import Publisher

GREETER = """\
from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return "{label} says hello to " + name
"""

BROKEN = """\
from plugport.sdk import Plugin, hook


class Main(Plugin):
    def initialize(self):
        raise RuntimeError("this version cannot start")

    @hook("greet")
    def greet(self, name):
        return "never"
"""


def write(
    root: Path,
    name: str,
    version: str,
    *,
    code: str | None = None,
    dependencies: dict[str, str] | None = None,
    extra: str = "",
) -> Path:
    """A plugin directory: ``main.py`` (a greeter by default) and its manifest."""
    source = root / f"{name}-{version}"
    source.mkdir(parents=True)
    label = f"{name} {version}"
    (source / "main.py").write_text((code or GREETER).replace("{label}", label))
    deps = "".join(f'"{k}" = "{v}"\n' for k, v in (dependencies or {}).items())
    (source / "plugport.toml").write_text(
        f'name = "{name}"\nversion = "{version}"\nentry = "main:Main"\n'
        f'display_name = "{name}"\ndescription = "A test plugin."\n'
        + textwrap.dedent(extra)
        + "[contributes]\nhooks = { greet = 0 }\n"
        + (f"[dependencies]\n{deps}" if deps else "")
    )
    return source


def publish(registry: Registry, publisher: Publisher, source: Path, out: Path) -> Path:
    """Pack, sign, upload and approve; returns the archive."""
    out.mkdir(parents=True, exist_ok=True)
    archive = pack_plugin(source, out).result.path
    name, version = source.name.rsplit("-", 1)
    response = publisher.upload(archive, name=name)
    assert response.status_code == 201, response.text
    if response.json()["status"] != "published":
        with registry.client(registry.token("rex", "review")) as reviewer:
            reviewer.post(
                f"/api/v1/review/{name}/{version}/approve", json={"reason": "fine"}
            ).raise_for_status()
    return archive


STORING = """\
from plugport.sdk import Plugin, hook


class Main(Plugin):
    @hook("greet")
    async def greet(self, name):
        visits = int(await self.api.storage.get("visits", 0)) + 1
        await self.api.storage.set("visits", visits)
        return "{label} says hello to " + name + " (visit " + str(visits) + ")"
"""
"""A greeter that counts its visits in the plugin's storage: its data must outlive updates."""

STORAGE = '[permissions]\nstorage = "64 KiB"\n'


def approve(registry: Registry, name: str, version: str) -> None:
    with registry.client(registry.token("rex", "review")) as reviewer:
        reviewer.post(
            f"/api/v1/review/{name}/{version}/approve", json={"reason": "fine"}
        ).raise_for_status()


def publish_signed_by(
    registry: Registry, publisher: Publisher, key: Ed25519PrivateKey, source: Path, out: Path
) -> Path:
    """Like :func:`publish`, signed by ``key`` (which must be registered for the namespace)."""
    out.mkdir(parents=True, exist_ok=True)
    archive = pack_plugin(source, out).result.path
    name, version = source.name.rsplit("-", 1)
    response = publisher.upload(archive, publisher.signature(archive, key), name=name)
    assert response.status_code == 201, response.text
    if response.json()["status"] != "published":
        approve(registry, name, version)
    return archive


def add_publisher_key(registry: Registry, namespace: str) -> Ed25519PrivateKey:
    """A second key registered for ``namespace`` (a rotation, or a registry that lies)."""
    key = generate_private_key()
    with registry.client(registry.admin) as admin:
        admin.post(
            f"/api/v1/namespaces/{namespace}/keys",
            json={"public_key_pem": public_key_pem(key.public_key())},
        ).raise_for_status()
    return key


def code_dirs(home: Path) -> frozenset[str]:
    """``name/version-sha12`` for every code directory under ``home/plugins``."""
    plugins = home / "plugins"
    if not plugins.is_dir():
        return frozenset()
    return frozenset(f"{p.name}/{v.name}" for p in plugins.iterdir() for v in p.iterdir())


def entries(directory: Path) -> frozenset[str]:
    return frozenset(p.name for p in directory.iterdir()) if directory.is_dir() else frozenset()


@dataclass(frozen=True)
class HomeView:
    """Everything a host home holds that an install may change, read from its files (no
    recovery runs): two views compare equal when an operation changed nothing."""

    installations: tuple[Installation, ...]
    journals: tuple[Journal, ...]
    code_dirs: frozenset[str]
    staging: frozenset[str]
    archives: frozenset[str]
    pin: PinnedRegistry | None
    publisher_keys: frozenset[str]
    last_audit: int

    @classmethod
    def of(cls, home: Path, registry_url: str, namespace: str = "acme") -> HomeView:
        state = HostState(home / "host.sqlite")
        try:
            trail = state.audit_trail(limit=1)
            return cls(
                installations=tuple(state.installations()),
                journals=tuple(state.journals()),
                code_dirs=code_dirs(home),
                staging=entries(home / "staging"),
                archives=entries(home / "cache" / "archives"),
                pin=state.registry(registry_url),
                publisher_keys=frozenset(state.publisher_keys(namespace)),
                last_audit=trail[0].id if trail else 0,
            )
        finally:
            state.close()

    def audit_since(self, home: Path) -> list[HostAudit]:
        """The audit rows written after this view was taken, oldest first."""
        state = HostState(home / "host.sqlite")
        try:
            return [a for a in reversed(state.audit_trail(limit=1000)) if a.id > self.last_audit]
        finally:
            state.close()

    def versions(self) -> dict[str, str]:
        return {i.name: i.version for i in self.installations}
