"""Verified publishers over real HTTP: an owner proves a domain, the badge shows in the JSON
API and on the pages, periodic checks take a lost badge away (audited), and names that imitate
a verified namespace or a popular plugin wait for review."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from plugport.registry._verification_rules import txt_value
from plugport.registry.db import make_sessions
from plugport.registry.models import AuditRecord
from plugport.registry.services import domains
from plugport.registry.verification import (
    CheckOptions,
    DomainChecker,
    MemoryResolver,
    rechecking,
)
from tests.registry.conftest import Registry, running
from tests.registry.test_publish import Publisher

DOMAIN = "northwind.example"
TXT = f"_plugport.{DOMAIN}"


@pytest.fixture
def resolver() -> MemoryResolver:
    return MemoryResolver()


@pytest.fixture
def registry(engine: Engine, tmp_path: Path, resolver: MemoryResolver) -> Iterator[Registry]:
    checker = DomainChecker(resolver, CheckOptions(timeout_s=1.0))
    with running(engine, tmp_path / "data", domain_checker=checker) as registry:
        yield registry


def audits(registry: Registry, action: str) -> list[AuditRecord]:
    with make_sessions(registry.engine)() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.action == action)))


def namespace(registry: Registry, name: str) -> dict[str, Any]:
    with registry.client() as client:
        body: dict[str, Any] = client.get(f"/api/v1/namespaces/{name}").json()
        return body


def verify(registry: Registry, resolver: MemoryResolver, publisher: Publisher) -> None:
    with registry.client(publisher.token) as owner:
        challenge = owner.post(
            "/api/v1/namespaces/northwind/domains", json={"domain": DOMAIN}
        ).json()["challenge"]
        resolver.txt_records[TXT] = [challenge["txt_value"]]
        checked = owner.post(f"/api/v1/namespaces/northwind/domains/{DOMAIN}/check")
        assert checked.status_code == 200, checked.text


def publish(registry: Registry, publisher: Publisher, name: str) -> dict[str, Any]:
    response = publisher.upload(publisher.build(name))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def approve(registry: Registry, name: str, version: str = "0.1.0") -> None:
    with registry.client(registry.token("rex", "review")) as reviewer:
        done = reviewer.post(f"/api/v1/review/{name}/{version}/approve", json={"reason": "ok"})
        assert done.status_code == 200, done.text


def test_a_challenge_then_a_check_gives_the_badge_everywhere(
    registry: Registry, resolver: MemoryResolver, tmp_path: Path
) -> None:
    publisher = Publisher(registry, tmp_path, "northwind")
    publish(registry, publisher, "northwind.hello")
    approve(registry, "northwind.hello")
    with registry.client(publisher.token) as owner:
        created = owner.post(
            "/api/v1/namespaces/northwind/domains", json={"domain": "NorthWind.Example."}
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["domain"], body["status"]) == (DOMAIN, "pending")
        token = body["challenge"]["https_body"]
        assert body["challenge"] == {
            "txt_name": TXT,
            "txt_value": txt_value(token),
            "https_url": f"https://{DOMAIN}/.well-known/plugport-verification.txt",
            "https_body": token,
        }
        again = owner.post("/api/v1/namespaces/northwind/domains", json={"domain": DOMAIN})
        assert again.json()["challenge"]["https_body"] == token  # asking again changes nothing

        # Not proved yet: 409 naming what each method saw, and nothing changes.
        resolver.address_table[DOMAIN] = ["10.0.0.7"]
        refused = owner.post(f"/api/v1/namespaces/northwind/domains/{DOMAIN}/check")
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert error["details"]["dns"] == f"no TXT record at {TXT}"
        assert "private (10.0.0.0/8)" in error["details"]["https"]
        assert owner.get("/api/v1/namespaces/northwind/domains").json()[0]["status"] == "pending"
        assert namespace(registry, "northwind")["verified_domain"] is None
        assert audits(registry, "domain.verify") == []

        resolver.txt_records[TXT] = [txt_value(token)]
        checked = owner.post(f"/api/v1/namespaces/northwind/domains/{DOMAIN}/check")
        assert checked.status_code == 200, checked.text
        assert (checked.json()["status"], checked.json()["method"]) == ("verified", "dns")

    assert namespace(registry, "northwind")["verified_domain"] == DOMAIN
    [record] = audits(registry, "domain.verify")
    assert (record.subject, record.detail) == ("northwind", {"domain": DOMAIN, "method": "dns"})
    with registry.client() as client:
        assert client.get("/api/v1/plugins/northwind.hello").json()["verified_domain"] == DOMAIN
        hits = client.get("/api/v1/plugins", params={"q": "hello"}).json()
        assert [h.get("verified_domain") for h in hits["items"]] == [DOMAIN]
        badge = f'data-testid="verified-publisher" data-domain="{DOMAIN}"'
        for page in ("/plugins/northwind.hello", "/namespaces/northwind", "/search?q=hello"):
            html = client.get(page).text
            assert badge in html, page
            assert f"verified publisher: {DOMAIN}" in html


def test_a_bad_domain_or_a_stranger_is_refused_and_nothing_is_stored(
    registry: Registry, tmp_path: Path
) -> None:
    publisher = Publisher(registry, tmp_path, "northwind")
    with registry.client(publisher.token) as owner:
        bad = owner.post("/api/v1/namespaces/northwind/domains", json={"domain": "https://x.com"})
        assert bad.status_code == 400
        assert bad.json()["error"]["message"].startswith("domain: ")
        missing = owner.post(f"/api/v1/namespaces/northwind/domains/{DOMAIN}/check")
        assert missing.status_code == 404
    stranger = registry.token("mallory", "publish:northwind")
    with registry.client(stranger) as client:
        assert (
            client.post("/api/v1/namespaces/northwind/domains", json={"domain": DOMAIN}).status_code
            == 403
        )
        assert client.get("/api/v1/namespaces/northwind/domains").status_code == 403
    assert registry.count("domain_verifications") == 0
    assert audits(registry, "domain.challenge") == []


def test_a_lost_proof_takes_the_badge_away_and_is_audited(
    registry: Registry, resolver: MemoryResolver, tmp_path: Path
) -> None:
    publisher = Publisher(registry, tmp_path, "northwind")
    verify(registry, resolver, publisher)
    sessions = make_sessions(registry.engine)
    checker = registry.app.state.domain_checker
    resolver.txt_records[TXT] = ["v=spf1 -all"]  # the record was removed

    # One failure is allowed (a DNS hiccup): the badge stays, the failure is counted.
    assert domains.recheck_due(sessions, checker, older_than_s=0, allowed_failures=1) == [
        (DOMAIN, "verified")
    ]
    assert namespace(registry, "northwind")["verified_domain"] == DOMAIN
    assert audits(registry, "domain.lost") == []

    assert domains.recheck_due(sessions, checker, older_than_s=0, allowed_failures=1) == [
        (DOMAIN, "lost")
    ]
    assert namespace(registry, "northwind")["verified_domain"] is None
    [lost] = audits(registry, "domain.lost")
    assert (lost.actor, lost.subject) == (domains.SYSTEM_ACTOR, "northwind")
    assert lost.detail["domain"] == DOMAIN
    assert f"no TXT record at {TXT} is" in lost.detail["why"]
    with registry.client(publisher.token) as owner:
        [row] = owner.get("/api/v1/namespaces/northwind/domains").json()
        assert (row["status"], row["last_error"]) == ("lost", lost.detail["why"])
    # A lost domain is not checked periodically again; its owner checks it when fixed.
    assert domains.recheck_due(sessions, checker, older_than_s=0, allowed_failures=1) == []


def test_recently_checked_domains_are_not_due(
    registry: Registry, resolver: MemoryResolver, tmp_path: Path
) -> None:
    verify(registry, resolver, Publisher(registry, tmp_path, "northwind"))
    sessions = make_sessions(registry.engine)
    checker = registry.app.state.domain_checker
    assert domains.recheck_due(sessions, checker, older_than_s=3600, allowed_failures=0) == []


def test_the_loop_rechecks_until_the_block_ends() -> None:
    calls: list[object] = []

    async def go() -> None:
        checker = DomainChecker(MemoryResolver())
        recheck = lambda sessions, checker: calls.append(checker)  # noqa: E731
        async with rechecking(None, checker, recheck, interval_s=0.01):  # type: ignore[arg-type]
            await asyncio.sleep(0.1)
        seen = len(calls)
        await asyncio.sleep(0.05)
        assert len(calls) == seen  # stopped with the block
        async with rechecking(None, checker, recheck, interval_s=0):  # type: ignore[arg-type]
            await asyncio.sleep(0.02)
        assert len(calls) == seen  # 0: never

    asyncio.run(go())
    assert len(calls) >= 2


def test_a_lookalike_namespace_is_held_and_its_uploads_wait_for_review(
    registry: Registry, resolver: MemoryResolver, tmp_path: Path
) -> None:
    verify(registry, resolver, Publisher(registry, tmp_path / "a", "northwind"))
    (tmp_path / "b").mkdir()
    impostor = Publisher(registry, tmp_path / "b", "n0rthwind")
    held = namespace(registry, "n0rthwind")
    assert held["name_review"] == "held"
    assert (
        "resembles the verified namespace 'northwind' (northwind.example)"
        in (held["name_review_reason"])
    )
    [hold] = audits(registry, "namespace.hold")
    assert (hold.subject, hold.detail["resembles"]) == ("n0rthwind", ["northwind"])
    with registry.engine.begin() as connection:  # trusted would skip review otherwise
        connection.execute(text("UPDATE namespaces SET trusted = true WHERE name = 'n0rthwind'"))

    version = publish(registry, impostor, "n0rthwind.hello")
    assert version["status"] == "pending_review"
    [finding] = [f for f in version["scan"]["findings"] if f["rule"] == "confusable-name"]
    assert finding["severity"] == "high"
    assert "northwind" in finding["message"]

    with registry.client(registry.token("rex", "review")) as reviewer:
        assert [n["name"] for n in reviewer.get("/api/v1/review/namespaces").json()] == [
            "n0rthwind"
        ]
        no_reason = reviewer.post("/api/v1/review/namespaces/n0rthwind/clear", json={"reason": " "})
        assert no_reason.status_code == 400
        assert namespace(registry, "n0rthwind")["name_review"] == "held"
        cleared = reviewer.post(
            "/api/v1/review/namespaces/n0rthwind/clear", json={"reason": "a real company"}
        )
        assert cleared.json()["name_review"] == "cleared"
        assert reviewer.get("/api/v1/review/namespaces").json() == []
    assert publish(registry, impostor, "n0rthwind.other")["status"] == "published"


def test_a_plugin_imitating_a_popular_one_is_held_at_its_first_publish(
    registry: Registry, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    acme = Publisher(registry, tmp_path / "a", "acme")
    mimic = Publisher(registry, tmp_path / "b", "acne")  # before acme.slack was popular
    assert namespace(registry, "acne")["name_review"] is None
    publish(registry, acme, "acme.slack")
    approve(registry, "acme.slack")
    with registry.engine.begin() as connection:
        connection.execute(text("UPDATE plugins SET downloads = 500"))
        connection.execute(text("UPDATE namespaces SET trusted = true"))

    version = publish(registry, mimic, "acne.slack")
    assert version["status"] == "pending_review"
    messages = [f["message"] for f in version["scan"]["findings"] if f["rule"] == "confusable-name"]
    assert any("the popular plugin 'acme.slack'" in m for m in messages)
    # The popular plugin's own namespace publishes as before.
    assert publish(registry, acme, "acme.slack2")["status"] == "published"
