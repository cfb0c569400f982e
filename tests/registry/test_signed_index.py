"""The signed index over a real registry: what it lists, that it verifies with the key the
registry publishes, that its version only ever increases (also when two nodes race to re-sign),
and that it is re-signed exactly when it stops being true or gets old."""

from __future__ import annotations

import hashlib
import shutil
import stat
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import Engine

from plugport.errors import IndexKeyMismatchError, SignatureError
from plugport.index import SignedIndex, load_or_create_registry_key, verify_index
from plugport.registry.app import create_app
from plugport.registry.db import make_sessions
from plugport.registry.models import utcnow
from plugport.registry.services import signed_index
from plugport.registry.settings import RegistrySettings
from plugport.signing import key_id, public_key_from_pem
from tests.registry.conftest import Registry, running
from tests.registry.test_lifecycle import two_published
from tests.registry.test_review import bump


def registry_key(client: httpx.Client) -> ed25519.Ed25519PublicKey:
    [key] = client.get("/api/v1/keys").json()["keys"]
    public = public_key_from_pem(key["public_key_pem"].encode())
    assert key["keyid"] == key_id(public)
    assert key["algorithm"] == "ed25519"
    return public


def fetch(registry: Registry, **previous: Any) -> SignedIndex:
    with registry.client() as client:
        response = client.get("/api/v1/index")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        return verify_index(response.content, registry_key(client), now=utcnow(), **previous)


def listed(index: SignedIndex) -> list[tuple[str, str, bool]]:
    return [(e.name, e.version, e.yanked) for e in index.entries]


def test_the_index_follows_publishing_and_only_moves_forward(
    registry: Registry, tmp_path: Path
) -> None:
    empty = fetch(registry)
    assert (empty.version, empty.entries) == (1, ())
    again = fetch(registry, previous_version=1, previous_digest=empty.digest)
    assert again.digest == empty.digest  # nothing changed: the same document, not a new one
    assert empty.expires_at - empty.issued_at == timedelta(hours=24)

    publisher = two_published(registry, tmp_path)
    # A pending upload is not in the index: hosts cannot be pointed at unreviewed archives.
    publisher.upload(publisher.build(edit=bump("0.3.0"))).raise_for_status()
    index = fetch(registry, previous_version=1, previous_digest=empty.digest)
    assert index.version == 2
    assert listed(index) == [("acme.hello", "0.1.0", False), ("acme.hello", "0.2.0", False)]
    with registry.client() as client:
        archive = client.get("/api/v1/plugins/acme.hello/versions/0.2.0/download").content
    entry = index.entries[1]
    assert (entry.sha256, entry.length) == (hashlib.sha256(archive).hexdigest(), len(archive))
    assert entry.key_id == key_id(publisher.key.public_key())

    with registry.client(publisher.token) as owner:
        owner.post(
            "/api/v1/plugins/acme.hello/versions/0.2.0/yank", json={"reason": "broken"}
        ).raise_for_status()
    yanked = fetch(registry, previous_version=2, previous_digest=index.digest)
    assert yanked.version == 3
    assert listed(yanked)[1] == ("acme.hello", "0.2.0", True)  # still fetchable by exact pin

    with registry.client(registry.admin) as admin:
        admin.post("/api/v1/plugins/acme.hello/suspend", json={"reason": "x"}).raise_for_status()
        suspended = fetch(registry, previous_version=3, previous_digest=yanked.digest)
        assert (suspended.version, suspended.entries) == (4, ())
        admin.post("/api/v1/plugins/acme.hello/unsuspend").raise_for_status()
        back = fetch(registry, previous_version=4, previous_digest=suspended.digest)
        assert (back.version, back.entries) == (5, yanked.entries)
        admin.delete("/api/v1/plugins/acme.hello").raise_for_status()
    deleted = fetch(registry, previous_version=5, previous_digest=back.digest)
    assert (deleted.version, deleted.entries) == (6, ())
    # A host that has seen a newer version refuses this one: no rollback.
    with registry.client() as client:
        document, key = client.get("/api/v1/index").content, registry_key(client)
    with pytest.raises(SignatureError) as refused:
        verify_index(document, key, now=utcnow(), previous_version=7)
    assert refused.value.part == "rollback"


def test_revalidation_is_a_304(registry: Registry) -> None:
    with registry.client() as client:
        first = client.get("/api/v1/index")
        again = client.get("/api/v1/index", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert first.headers["cache-control"].startswith("public")


def test_the_key_is_made_once_kept_private_and_shared_by_restarts(
    engine: Engine, tmp_path: Path
) -> None:
    with running(engine, tmp_path / "data") as first:
        before = fetch(first)
        with first.client() as client:
            key = registry_key(client)
    path = tmp_path / "data" / "registry-index.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with running(engine, tmp_path / "data") as second:
        with second.client() as client:
            assert key_id(registry_key(client)) == key_id(key)
        after = fetch(second, previous_version=before.version, previous_digest=before.digest)
    assert after.digest == before.digest  # same state, same document, across a restart
    # A key file named in the settings is used instead (nodes behind one balancer share it).
    shared = tmp_path / "shared.key"
    shutil.copy(path, shared)
    with (
        running(engine, tmp_path / "other", index_key_file=shared) as third,
        third.client() as client,
    ):
        assert key_id(registry_key(client)) == key_id(key)


def test_a_node_with_another_key_refuses_to_start_until_told_to_rotate(
    engine: Engine, tmp_path: Path
) -> None:
    """A node started without the shared key used to make its own and sign the shared index
    with it, so hosts going through the other nodes were refused."""
    with running(engine, tmp_path / "a") as first:
        before = fetch(first)
    own = tmp_path / "b" / "registry-index.key"
    with pytest.raises(IndexKeyMismatchError, match="PLUGPORT_INDEX_KEY_FILE") as refused:
        create_app(RegistrySettings(data_dir=tmp_path / "b"), engine=engine)
    assert "does not exist" in str(refused.value)
    assert not own.exists()  # nothing made
    other = tmp_path / "other.key"
    load_or_create_registry_key(other)
    with pytest.raises(IndexKeyMismatchError, match="--rotate-index-key"):
        create_app(RegistrySettings(data_dir=tmp_path / "b", index_key_file=other), engine=engine)
    # A deliberate rotation: the next document is signed with the new key, a later version.
    with running(engine, tmp_path / "b", index_key_file=other, rotate_index_key=True) as b:
        with b.client() as client:
            new_key = registry_key(client)
        after = fetch(b, previous_version=before.version)
    assert key_id(new_key) == key_id(load_or_create_registry_key(other).public_key())
    assert after.version > before.version


def test_a_document_signed_by_another_key_is_neither_served_nor_replaced(
    registry: Registry, tmp_path: Path
) -> None:
    """Two nodes that each made a key on a fresh database: the second one's requests are
    refused with a 503 naming the setting, and the stored document stays the first's."""
    stored = fetch(registry)
    stranger = load_or_create_registry_key(tmp_path / "stranger.key")
    with (
        make_sessions(registry.engine).begin() as session,
        pytest.raises(IndexKeyMismatchError, match="index key"),
    ):
        signed_index.current_document(session, stranger, now=utcnow(), ttl=timedelta(hours=24))
    assert fetch(registry).version == stored.version


def test_resigned_when_half_its_life_is_gone(registry: Registry) -> None:
    key = load_or_create_registry_key(registry_key_file(registry))
    ttl = timedelta(hours=24)
    sessions = make_sessions(registry.engine)
    now = utcnow().replace(microsecond=0)  # signed times are whole seconds
    with sessions.begin() as session:
        first = signed_index.current_document(session, key, now=now, ttl=ttl)
    with sessions.begin() as session:
        same = signed_index.current_document(session, key, now=now + ttl / 2, ttl=ttl)
        later = signed_index.current_document(
            session, key, now=now + ttl / 2 + timedelta(seconds=1), ttl=ttl
        )
    assert same == first
    public = key.public_key()
    old = verify_index(first, public, now=now)
    new = verify_index(later, public, now=now + ttl, previous_version=old.version)
    assert new.version == old.version + 1  # a new expiry is a new statement: a new number
    assert new.entries == old.entries


def test_two_nodes_racing_issue_one_document(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node A reads version N and signs N+1; meanwhile node B issues N+1 and commits. A's
    compare-and-set fails, and it serves B's document rather than a second N+1."""
    key = load_or_create_registry_key(registry_key_file(registry))
    sessions = make_sessions(registry.engine)
    ttl = timedelta(hours=1)
    real_sign = signed_index.sign_index
    other: list[bytes] = []

    def sign_while_another_node_wins(*args: Any, **kwargs: Any) -> bytes:
        if not other:
            monkeypatch.setattr(signed_index, "sign_index", real_sign)
            with sessions.begin() as node_b:
                other.append(signed_index.current_document(node_b, key, now=utcnow(), ttl=ttl))
        return real_sign(*args, **kwargs)

    monkeypatch.setattr(signed_index, "sign_index", sign_while_another_node_wins)
    with sessions.begin() as node_a:
        served = signed_index.current_document(node_a, key, now=utcnow(), ttl=ttl)
    assert served == other[0]
    assert verify_index(served, key.public_key(), now=utcnow()).version == 1


def registry_key_file(registry: Registry) -> Path:
    return registry.data_dir / "registry-index.key"


def test_many_readers_across_catalogue_changes_all_get_a_valid_index(
    engine: Engine, tmp_path: Path
) -> None:
    """Readers hammer ``/api/v1/index`` while the catalogue keeps changing (a version yanked
    and unyanked), so they keep racing to re-sign: every answer is a 200 with a document that
    verifies, and each reader only ever sees the version number go up."""
    readers, rounds = 12, 25
    with running(engine, tmp_path / "data", rate_limit_per_minute=1_000_000) as registry:
        (tmp_path / "work").mkdir()
        publisher = two_published(registry, tmp_path / "work")
        with registry.client() as client:
            public = registry_key(client)
        done = threading.Event()
        failures: list[str] = []
        served: list[int] = []
        lock = threading.Lock()

        def read() -> None:
            seen = 0
            with registry.client() as client:
                while not done.is_set():
                    try:
                        response = client.get("/api/v1/index")
                    except httpx.HTTPError as exc:  # a dropped connection is a failure too
                        failures.append(f"{type(exc).__name__}: {exc}")
                        continue
                    if response.status_code != 200:
                        failures.append(f"{response.status_code}: {response.text[:200]}")
                        continue
                    index = verify_index(
                        response.content, public, now=utcnow(), previous_version=seen
                    )
                    seen = index.version
            with lock:
                served.append(seen)

        threads = [threading.Thread(target=read) for _ in range(readers)]
        for thread in threads:
            thread.start()
        try:
            with registry.client(publisher.token) as owner:
                for turn in range(rounds):
                    action = "yank" if turn % 2 == 0 else "unyank"
                    owner.post(
                        f"/api/v1/plugins/acme.hello/versions/0.2.0/{action}",
                        json={"reason": "flapping"},
                    ).raise_for_status()
                    time.sleep(0.02)
        finally:
            done.set()
            for thread in threads:
                thread.join(60)
        assert failures == []
        assert len(served) == readers
        final = fetch(registry)
        assert listed(final)[1] == ("acme.hello", "0.2.0", True)  # the last change (a yank)
        assert final.version >= max(served)
