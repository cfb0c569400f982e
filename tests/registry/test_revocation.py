"""Revoking a publisher key withdraws what it signed, over real HTTP on SQLite and PostgreSQL:
the signed index (verified) and the versions hosts resolve from drop those versions, the
plugin's pages and JSON say why, search and ``latest_version`` move off them, reviews and
stats keep working, every node's kept search answers follow, and the audit record counts
what was withdrawn. Refused revocations change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from plugport.registry.db import make_sessions
from plugport.registry.models import AuditRecord
from plugport.registry.search import pages
from plugport.signing import generate_private_key, key_id, public_key_pem
from tests.registry.conftest import Registry, running
from tests.registry.test_publish import Publisher
from tests.registry.test_review import bump
from tests.registry.test_search import find, names
from tests.registry.test_search_pages import generation, other_engine
from tests.registry.test_signed_index import fetch, listed

Upload = tuple[str, str, bool, str]  # name, version, signed with the leaked key, engines added

SIGNED: tuple[Upload, ...] = (
    ("acme.hello", "0.1.0", False, ""),
    ("acme.hello", "0.2.0", True, ""),
    ("acme.hello", "0.3.0", True, ""),
    ("acme.solo", "1.0.0", True, ""),
)


class Signed:
    """A namespace with two keys, ``kept`` (the publisher's first) and ``leaked``, and these
    versions published (by default acme.hello 0.1.0 signed with ``kept``, 0.2.0 and 0.3.0
    with ``leaked``, and acme.solo 1.0.0 with ``leaked`` only)."""

    def __init__(
        self, registry: Registry, root: Path, uploads: tuple[Upload, ...] = SIGNED
    ) -> None:
        self.registry = registry
        self.publisher = Publisher(registry, root)
        self.leaked: Ed25519PrivateKey = generate_private_key()
        pem = public_key_pem(self.leaked.public_key())
        with registry.client(registry.admin) as admin:
            admin.post(
                "/api/v1/namespaces/acme/keys", json={"public_key_pem": pem}
            ).raise_for_status()
        for name, version, leaked, engines in uploads:
            archive = self.publisher.build(name, edit=bump(version, engines))
            signature = self.publisher.signature(archive, self.leaked if leaked else None)
            self.publisher.upload(archive, signature).raise_for_status()
        with registry.client(registry.token("rex", "review")) as reviewer:
            for name, version, _, _ in uploads:
                reviewer.post(
                    f"/api/v1/review/{name}/{version}/approve", json={"reason": "ok"}
                ).raise_for_status()

    @property
    def kept_id(self) -> str:
        return key_id(self.publisher.key.public_key())

    @property
    def leaked_id(self) -> str:
        return key_id(self.leaked.public_key())


def revoke(registry: Registry, token: str, keyid: str) -> Any:
    with registry.client(token) as client:
        return client.delete(f"/api/v1/namespaces/acme/keys/{keyid}")


def get(registry: Registry, path: str) -> Any:
    with registry.client() as client:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def revocations(registry: Registry) -> list[dict[str, Any]]:
    with make_sessions(registry.engine)() as session:
        rows = session.scalars(select(AuditRecord).where(AuditRecord.action == "key.revoke"))
        return [dict(r.detail) for r in rows]


def offered(registry: Registry, name: str) -> list[str]:
    return [v["version"] for v in get(registry, f"/api/v1/plugins/{name}/versions")]


def test_revoking_a_key_withdraws_what_it_signed_and_says_why(
    registry: Registry, tmp_path: Path
) -> None:
    signed = Signed(registry, tmp_path)
    with registry.client(registry.token("bea", "publish:bea")) as rater:
        rater.put("/api/v1/plugins/acme.hello/reviews", json={"stars": 4}).raise_for_status()
    before = fetch(registry)
    assert len(before.entries) == 4
    assert get(registry, "/api/v1/plugins/acme.hello")["latest_version"] == "0.3.0"

    revoked = revoke(registry, signed.publisher.token, signed.leaked_id)
    assert revoked.status_code == 200, revoked.text
    revoked_at = datetime.fromisoformat(revoked.json()["revoked_at"])

    # The signed index, verified with the registry's key: re-signed, without the withdrawn.
    index = fetch(registry, previous_version=before.version, previous_digest=before.digest)
    assert index.version > before.version
    assert index.digest != before.digest
    assert listed(index) == [("acme.hello", "0.1.0", False)]
    assert index.entries[0].key_id == signed.kept_id  # the kept key's version is untouched

    # What hosts resolve from: the index's versions, so the newest left is chosen.
    assert offered(registry, "acme.hello") == ["0.1.0"]
    assert offered(registry, "acme.solo") == []
    assert get(registry, "/api/v1/plugins/acme.hello/resolve")["version"] == "0.1.0"

    # The plugin's JSON and each version's say why; latest and search moved off them.
    reason = f"signed with key {signed.leaked_id[:16]}… which the publisher revoked on "
    plugin = get(registry, "/api/v1/plugins/acme.hello")
    assert (plugin["latest_version"], plugin["withdrawn"]) == ("0.1.0", False)
    rows = {v["version"]: v for v in plugin["versions"]}
    assert set(rows) == {"0.1.0", "0.2.0", "0.3.0"}
    assert (rows["0.1.0"]["withdrawn"], rows["0.1.0"]["withdrawn_reason"]) == (False, None)
    for version in ("0.2.0", "0.3.0"):
        assert rows[version]["withdrawn"] is True
        assert rows[version]["withdrawn_reason"].startswith(reason)
        assert rows[version]["withdrawn_reason"].endswith(f"{revoked_at:%Y-%m-%d %H:%M} UTC")
    one = get(registry, "/api/v1/plugins/acme.hello/versions/0.3.0")
    assert (one["withdrawn"], one["key_id"]) == (True, signed.leaked_id)
    assert datetime.fromisoformat(one["key_revoked_at"]) == revoked_at
    assert one["withdrawn_reason"].startswith(reason)
    solo = get(registry, "/api/v1/plugins/acme.solo")
    assert (solo["latest_version"], solo["withdrawn"]) == (None, True)
    assert names(registry, q="hello") == ["acme.hello"]
    assert find(registry, q="hello")["items"][0]["latest_version"] == "0.1.0"
    assert names(registry, q="solo") == []  # nothing of it is offered: not found
    with registry.client() as client:
        nothing = client.get("/api/v1/plugins/acme.solo/resolve")
    assert nothing.status_code == 404
    assert "every version is withdrawn" in nothing.text

    # Reviews and stats keep working, for the withdrawn versions too (a host uninstalls one).
    reviews = get(registry, "/api/v1/plugins/acme.hello/reviews")
    assert reviews["rating"] == {"average": 4.0, "count": 1}
    assert plugin["rating"] == {"average": 4.0, "count": 1}
    with registry.client() as client:
        usage = client.post(
            "/api/v1/plugins/acme.hello/versions/0.3.0/usage", json={"event": "uninstall"}
        )
    assert usage.status_code == 202, usage.text
    stats = get(registry, "/api/v1/plugins/acme.hello/stats")
    assert stats["totals"]["uninstalls"] == 1

    # Audited once, with what it withdrew; revoking again changes and records nothing.
    assert revocations(registry) == [
        {
            "key_id": signed.leaked_id,
            "withdrawn_versions": 3,
            "plugins": ["acme.hello", "acme.solo"],
        }
    ]
    again = revoke(registry, signed.publisher.token, signed.leaked_id)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert len(revocations(registry)) == 1
    assert fetch(registry).digest == index.digest


def test_revoking_the_last_key_withdraws_the_whole_plugin(
    registry: Registry, tmp_path: Path
) -> None:
    signed = Signed(registry, tmp_path)
    revoke(registry, signed.publisher.token, signed.leaked_id).raise_for_status()
    revoke(registry, signed.publisher.token, signed.kept_id).raise_for_status()
    assert fetch(registry).entries == ()
    plugin = get(registry, "/api/v1/plugins/acme.hello")
    assert (plugin["latest_version"], plugin["withdrawn"]) == (None, True)
    assert all(v["withdrawn"] for v in plugin["versions"])
    assert offered(registry, "acme.hello") == []
    assert names(registry, q="hello") == []
    assert revocations(registry)[-1] == {
        "key_id": signed.kept_id,
        "withdrawn_versions": 1,
        "plugins": ["acme.hello"],
    }


@pytest.mark.parametrize("case", ["unknown key", "not an owner"])
def test_a_refused_revocation_withdraws_nothing(
    registry: Registry, tmp_path: Path, case: str
) -> None:
    signed = Signed(registry, tmp_path)
    before = fetch(registry)
    kept = generation(registry.engine)
    if case == "unknown key":
        refused = revoke(registry, signed.publisher.token, "f" * 64)
        assert refused.status_code == 404
    else:
        refused = revoke(registry, registry.token("mallory", "publish:acme"), signed.leaked_id)
        assert refused.status_code == 403
    again = fetch(registry)
    assert (again.version, again.digest) == (before.version, before.digest)
    assert offered(registry, "acme.hello") == ["0.3.0", "0.2.0", "0.1.0"]
    assert get(registry, "/api/v1/plugins/acme.hello")["latest_version"] == "0.3.0"
    assert all(not v["withdrawn"] for v in get(registry, "/api/v1/plugins/acme.hello")["versions"])
    assert revocations(registry) == []
    assert generation(registry.engine) == kept


@pytest.fixture
def other(registry: Registry, tmp_path: Path) -> Iterator[Registry]:
    """A second node on the same database, with its own engine and kept answers."""
    engine = other_engine(registry.engine)
    try:
        with running(engine, tmp_path / "other") as node:
            yield node
    finally:
        engine.dispose()


def test_a_revocation_on_one_node_reaches_the_other_s_kept_answers(
    registry: Registry, other: Registry, tmp_path: Path
) -> None:
    """Only the withdrawn 0.1.0 runs on myapp 2 (the latest, 0.2.0, needs myapp 3): a
    host-filtered search finds acme.hello through it. Withdrawing it leaves the latest, and
    so the plugin's row, as it was: it is the key's own trigger (0018) that drops the answer
    this node kept."""
    uploads = (("acme.hello", "0.1.0", True, ""), ("acme.hello", "0.2.0", False, 'myapp = ">=3"'))
    signed = Signed(registry, tmp_path, uploads)
    pages.configure(registry.engine, freshness_s=0)  # the other node's change: next answer
    for_myapp_2 = {"q": "hello", "host": "myapp", "host_version": "2.0"}
    assert names(registry, **for_myapp_2) == ["acme.hello"]  # kept on this node
    before = generation(registry.engine)
    revoke(other, signed.publisher.token, signed.leaked_id).raise_for_status()
    assert generation(registry.engine) > before
    assert names(registry, **for_myapp_2) == []
    assert names(registry, q="hello") == ["acme.hello"]
    assert find(registry, q="hello")["items"][0]["latest_version"] == "0.2.0"
    assert listed(fetch(registry)) == [("acme.hello", "0.2.0", False)]  # re-signed here too
