"""Attacks between a registry and a host, against a real registry on 127.0.0.1 with real
sandboxed workers: a swapped archive, an altered index, a replayed older index, an expired
index, a new publisher key, another registry key, a version nobody reviewed.

The attacker sits in the host's HTTP transport (a man in the middle, a compromised mirror):
it rewrites the responses it wants and keeps the real ``ETag``, as a careful attacker would.
Each attack is refused with the precise error, is audited as refused, and leaves the home as
it was: the same installations, no new code directory, nothing in staging, nothing new in the
archive cache, and the pinned registry state (index version and digest) where it was."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugport.authoring import pack_plugin
from plugport.errors import ResolutionError, SignatureError, TrustError
from plugport.host import PluginHost
from plugport.index import IndexEntry, load_or_create_registry_key, public_key_document, sign_index
from plugport.runtime.hooks import HookSpec
from plugport.signing import fingerprint, generate_private_key, key_id, public_key_pem
from tests.host._plugins import (
    HomeView,
    add_publisher_key,
    publish,
    publish_signed_by,
    write,
)
from tests.registry.conftest import Registry
from tests.registry.test_publish import Publisher

GREET = HookSpec("greet", ("name",))
INDEX = "/api/v1/index"
KEYS = "/api/v1/keys"
Rewrite = Callable[[bytes], bytes]


def download(name: str, version: str) -> str:
    return f"/api/v1/plugins/{name}/versions/{version}/download"


def signature(name: str, version: str) -> str:
    return f"/api/v1/plugins/{name}/versions/{version}/signature"


class Attacker(httpx.BaseTransport):
    """The host's transport: honest until told to rewrite the response for a path. A rewritten
    response keeps the registry's status and headers (its ``ETag`` too) with the new body."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.rules: dict[str, tuple[Rewrite, int | None]] = {}
        self.rewritten: list[str] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path not in self.rules:
            return self.inner.handle_request(request)
        rewrite, status = self.rules[request.url.path]
        request.headers.pop("If-None-Match", None)  # a full body to rewrite, never a 304
        response = self.inner.handle_request(request)
        body = rewrite(response.read())
        response.close()
        with self._lock:
            self.rewritten.append(request.url.path)
        skip = {"content-length", "content-encoding", "transfer-encoding"}
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in skip]
        return httpx.Response(status or response.status_code, headers=headers, content=body)

    def rewrite(self, path: str, rewrite: Rewrite) -> None:
        """Change the registry's answer for ``path`` (its status stays)."""
        self.rules[path] = (rewrite, None)

    def serve(self, path: str, body: bytes) -> None:
        """Answer ``path`` with ``body``, 200 OK, whatever the registry said."""
        self.rules[path] = (lambda _: body, 200)

    def honest(self) -> None:
        self.rules.clear()

    def close(self) -> None:
        self.inner.close()


@dataclass
class World:
    """A registry with acme.alpha 1.0.0 published, and a home that installed it (so the home
    has pinned the registry key, an index version and acme's publisher key)."""

    registry: Registry
    publisher: Publisher
    root: Path
    attacker: Attacker
    archives: dict[str, Path] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def dist(self) -> Path:
        return self.root / "dist"

    def publish(self, name: str, version: str) -> Path:
        archive = publish(
            self.registry, self.publisher, write(self.root / "src", name, version), self.dist
        )
        self.archives[f"{name} {version}"] = archive
        return archive

    def host(self, home: Path | None = None, **options: Any) -> PluginHost:
        return PluginHost(
            app="myapp",
            app_version="2.4.0",
            home=home or self.home,
            registries=[self.registry.url],
            hookspecs=[GREET],
            transport=self.attacker,
            **options,
        )

    def view(self, home: Path | None = None) -> HomeView:
        return HomeView.of(home or self.home, self.registry.url)

    def index(self) -> bytes:
        """The signed index the registry serves now."""
        with self.registry.client() as client:
            response = client.get(INDEX)
            response.raise_for_status()
            return response.content


def run(host: PluginHost, scenario: Callable[[PluginHost], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with host:
            return await scenario(host)

    return asyncio.run(main())


async def greet(host: PluginHost) -> dict[str, Any]:
    return {o.plugin: o.value for o in await host.hooks.greet(name="Ada")}


def update_alpha(host: PluginHost) -> Awaitable[Any]:
    return host.update("acme.alpha")


@pytest.fixture
def world(registry: Registry, tmp_path: Path) -> Iterator[World]:
    attacker = Attacker()
    world = World(registry, Publisher(registry, tmp_path / "scratch"), tmp_path, attacker)
    world.publish("acme.alpha", "1.0.0")
    report = run(world.host(), lambda host: host.install("acme.alpha"))
    assert report.installed == [("acme.alpha", "1.0.0", None)]
    yield world
    attacker.close()


def refused(
    world: World,
    action: Callable[[PluginHost], Awaitable[Any]],
    error: type[Exception] = SignatureError,
    *,
    home: Path | None = None,
    **options: Any,
) -> Any:
    """Run ``action`` on a host under attack: it must raise ``error``, write an audit row that
    says refused, and change nothing else in the home."""
    home = home or world.home
    before = world.view(home)
    with pytest.raises(error) as caught:
        run(world.host(home, **options), action)
    after = world.view(home)
    assert after.installations == before.installations
    assert after.journals == before.journals == ()
    assert after.code_dirs == before.code_dirs  # no new code directory
    assert after.staging == frozenset()  # nothing left in staging
    assert after.archives == before.archives  # nothing unverified entered the cache
    assert after.pin == before.pin  # the pinned index version and digest did not move
    assert after.publisher_keys == before.publisher_keys
    trail = [(a.action, a.outcome) for a in before.audit_since(home)]
    assert trail, "the refusal was not audited"
    assert all(outcome == "refused" for _, outcome in trail), trail
    return caught.value


def entries_of(document: bytes) -> list[IndexEntry]:
    return [IndexEntry(**entry) for entry in json.loads(document)["signed"]["entries"]]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_swapped_archive_is_refused(world: World) -> None:
    """The mirror serves another valid signed archive (1.0.0's, with its own valid signature)
    as 1.1.0: it does not match the sha256 and length the signed index gives for 1.1.0."""
    world.publish("acme.alpha", "1.1.0")
    old = world.archives["acme.alpha 1.0.0"]
    world.attacker.serve(download("acme.alpha", "1.1.0"), old.read_bytes())
    world.attacker.serve(signature("acme.alpha", "1.1.0"), world.publisher.signature(old))
    error = refused(world, update_alpha)
    assert error.part == "archive"
    assert "acme.alpha 1.1.0" in str(error)
    assert "signed index says" in str(error)
    assert download("acme.alpha", "1.1.0") in world.attacker.rewritten

    world.attacker.honest()  # the attack stops: the real archive installs
    report = run(world.host(), update_alpha)
    assert report.installed == [("acme.alpha", "1.1.0", "1.0.0")]


def test_an_altered_index_is_refused(world: World) -> None:
    """The attacker swaps the archive and edits the index entry to match it: the registry's
    signature over the index no longer verifies."""
    world.publish("acme.alpha", "1.1.0")
    old = world.archives["acme.alpha 1.0.0"]

    def alter(body: bytes) -> bytes:
        document = json.loads(body)
        for entry in document["signed"]["entries"]:
            if (entry["name"], entry["version"]) == ("acme.alpha", "1.1.0"):
                entry["sha256"], entry["length"] = sha256_of(old), old.stat().st_size
        return json.dumps(document).encode()

    world.attacker.rewrite(INDEX, alter)
    world.attacker.serve(download("acme.alpha", "1.1.0"), old.read_bytes())
    error = refused(world, update_alpha)
    assert error.part == "signature"
    assert "does not verify" in str(error)
    assert INDEX in world.attacker.rewritten
    assert download("acme.alpha", "1.1.0") not in world.attacker.rewritten  # never fetched

    # The altered document was sent with the real ETag; once the attack stops, the host must
    # not keep revalidating (and refusing) the copy it was fed.
    world.attacker.honest()
    report = run(world.host(), update_alpha)
    assert report.installed == [("acme.alpha", "1.1.0", "1.0.0")]


def test_a_replayed_older_index_is_refused_as_a_rollback(world: World) -> None:
    """An index the host accepted before, validly signed but older than one it has seen since,
    replayed to hide what was published after it."""
    older = world.index()
    pinned = world.view().pin
    assert pinned is not None
    assert json.loads(older)["signed"]["version"] == pinned.index_version
    world.publish("acme.beta", "1.0.0")
    run(world.host(), lambda host: host.install("acme.beta"))  # the host sees a newer index
    world.publish("acme.alpha", "1.1.0")
    seen = world.view().pin
    assert seen is not None
    assert seen.index_version > json.loads(older)["signed"]["version"]

    world.attacker.serve(INDEX, older)
    error = refused(world, update_alpha)
    assert error.part == "rollback"
    assert f"older than version {seen.index_version} already seen" in str(error)
    assert world.view().versions() == {"acme.alpha": "1.0.0", "acme.beta": "1.0.0"}


def test_an_expired_index_is_refused(world: World) -> None:
    """Signed with the registry's own key (as a registry that stopped re-signing would have)
    and newer than the pinned one, but past its expiry."""
    world.publish("acme.alpha", "1.1.0")
    key = load_or_create_registry_key(world.registry.data_dir / "registry-index.key")
    pinned = world.view().pin
    assert pinned is not None
    stale = sign_index(
        key,
        entries_of(world.index()),
        version=pinned.index_version + 1,
        now=datetime.now(UTC) - timedelta(days=2),
        ttl=timedelta(days=1),
    )
    world.attacker.serve(INDEX, stale)
    error = refused(world, update_alpha)
    assert error.part == "expired"
    assert "the index expired at" in str(error)


def test_a_new_publisher_key_needs_the_operator(world: World) -> None:
    """acme.alpha 1.1.0 is signed by a second key registered for acme: the host trusts only
    the key it pinned for acme until the operator says --trust-new-key."""
    rotated = add_publisher_key(world.registry, "acme")
    source = write(world.root / "src", "acme.alpha", "1.1.0")
    publish_signed_by(world.registry, world.publisher, rotated, source, world.dist)

    error = refused(world, update_alpha)
    assert error.part == "key"
    assert "--trust-new-key" in str(error)
    assert f"now signed by key {fingerprint(key_id(rotated.public_key()))}…" in str(error)

    async def trusting(host: PluginHost) -> Any:
        report = await host.update("acme.alpha", trust_new_key=True)
        return report, await greet(host)

    report, answers = run(world.host(), trusting)
    assert report.installed == [("acme.alpha", "1.1.0", "1.0.0")]
    assert answers == {"acme.alpha": "acme.alpha 1.1.0 says hello to Ada"}
    assert world.view().publisher_keys == {
        key_id(world.publisher.key.public_key()),
        key_id(rotated.public_key()),
    }


def test_another_registry_key_is_refused(world: World, tmp_path: Path) -> None:
    """The attacker serves its own registry key at /api/v1/keys and an index it signed, listing
    what the real one lists (and newer): the home checks the key it pinned, not the served one."""
    world.publish("acme.alpha", "1.1.0")
    evil = generate_private_key()
    pinned = world.view().pin
    assert pinned is not None
    forged = sign_index(
        evil,
        entries_of(world.index()),
        version=pinned.index_version + 10,
        now=datetime.now(UTC),
    )
    world.attacker.serve(KEYS, json.dumps(public_key_document(evil)).encode())
    world.attacker.serve(INDEX, forged)
    error = refused(world, update_alpha)
    assert error.part == "signature"
    assert "not signed by the registry key" in str(error)
    assert KEYS not in world.attacker.rewritten  # a pinned home never even asks for the key

    # A configured key that is not the pinned one: re-pinning is the operator's decision.
    error = refused(
        world,
        update_alpha,
        TrustError,
        registry_keys={world.registry.url: public_key_pem(evil.public_key())},
    )
    assert not isinstance(error, SignatureError)
    assert "is not the one this host pinned" in str(error)

    # A new home configured with the real key does not take the served one on first use.
    fresh = tmp_path / "fresh"
    real = world.registry.data_dir / "registry-index.key.pub"
    error = refused(
        world,
        lambda host: host.install("acme.alpha"),
        home=fresh,
        registry_keys={world.registry.url: real.read_text()},
    )
    assert error.part == "signature"
    assert world.view(fresh).pin is None
    assert KEYS not in world.attacker.rewritten


def test_a_version_nobody_reviewed_cannot_be_installed(world: World) -> None:
    """A pending version is not in the signed index: not offered, and not installable even when
    a lying registry lists it and the operator pins it exactly."""
    source = write(world.root / "src", "acme.beta", "1.0.0")
    packed = pack_plugin(source, world.dist).result.path
    response = world.publisher.upload(packed, name="acme.beta")
    assert response.json()["status"] == "pending_review"
    before = world.view()
    with pytest.raises(ResolutionError, match=r"no plugin named 'acme\.beta' is known"):
        run(world.host(), lambda host: host.install("acme.beta==1.0.0"))
    assert world.view() == before

    pending = {
        "name": "acme.beta",
        "version": "1.0.0",
        "dependencies": {},
        "engines": {},
        "yanked": False,
    }
    world.attacker.serve("/api/v1/plugins/acme.beta/versions", json.dumps([pending]).encode())
    error = refused(world, lambda host: host.install("acme.beta==1.0.0"))
    assert error.part == "index"
    assert "acme.beta 1.0.0 is not in the registry's signed index" in str(error)
