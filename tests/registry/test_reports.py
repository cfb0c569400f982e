"""Abuse reports and version quarantine on a real registry (SQLite and PostgreSQL): filing
through the API and the marketplace pages, every refusal naming its field with nothing stored,
one open report per reporter and target, the hourly budget, the admins' queue and resolution,
quarantine (out of the signed index and the versions hosts resolve from, flagged in the TUF
targets), release, and the audit trail of every step."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from plugport._tuf_names import target_facts, target_path
from plugport.index import verify_index
from plugport.registry.models import utcnow
from plugport.registry.services import tuf_repo
from plugport.signing import public_key_from_pem
from tests.host._plugins import publish, write
from tests.registry._tuf import enable_tuf
from tests.registry.conftest import Registry, running
from tests.registry.test_access import error_of
from tests.registry.test_publish import Publisher

NAME = "acme.hello"
REPORTS = "/api/v1/reports"


@dataclass
class World:
    registry: Registry
    reporter: str  # a token of "eve@example.com", no scope that matters
    reviewer_name: str  # how the public sees the review's author

    def client(self, token: str | None = None) -> httpx.Client:
        return self.registry.client(token)

    def snapshot(self) -> dict[str, list[tuple[str, ...]]]:
        with self.registry.engine.connect() as connection:
            return {
                table: sorted(
                    tuple(map(repr, row))
                    for row in connection.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 names from this module
                )
                for table in ("abuse_reports", "plugin_versions", "audit_records")
            }

    def audit(self, action: str) -> list[dict[str, Any]]:
        with self.registry.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT actor, subject, detail FROM audit_records WHERE action = :a"),
                {"a": action},
            )
            return [
                {
                    "actor": actor,
                    "subject": subject,
                    **(json.loads(detail) if isinstance(detail, str) else detail),
                }
                for actor, subject, detail in rows
            ]


def _world(registry: Registry, root: Path) -> World:
    publisher = Publisher(registry, root / "scratch")
    for version in ("1.0.0", "1.1.0"):
        publish(registry, publisher, write(root / "src", NAME, version), root / "dist")
    reviewer = registry.token("rob@example.com", "review")
    with registry.client(reviewer) as client:
        client.put(f"/api/v1/plugins/{NAME}/reviews", json={"stars": 1, "text": "spam!"})
        client.put("/api/v1/profile", json={"display_name": "Robin"}).raise_for_status()
    return World(registry, registry.token("eve@example.com", "review"), "Robin")


@pytest.fixture
def world(registry: Registry, tmp_path: Path) -> World:
    return _world(registry, tmp_path)


def _file(world: World, token: str | None = None, **body: Any) -> httpx.Response:
    with world.client(token or world.reporter) as client:
        return client.post(REPORTS, json=body)


def _queue(world: World, status: str = "open") -> list[dict[str, Any]]:
    with world.client(world.registry.admin) as admin:
        answered = admin.get(REPORTS, params={"status": status})
    assert answered.status_code == 200, answered.text
    return list(answered.json()["items"])


# --- filing ---------------------------------------------------------------------------------


def test_a_signed_in_user_reports_a_plugin_a_version_and_a_review(world: World) -> None:
    filed = [
        _file(world, kind="plugin", plugin=NAME, reason="impersonation", text="not acme's"),
        _file(world, kind="version", plugin=NAME, version="1.1.0", reason="malware"),
        _file(world, kind="review", plugin=NAME, author=world.reviewer_name, reason="spam"),
    ]
    assert [r.status_code for r in filed] == [201, 201, 201], [r.text for r in filed]
    queue = _queue(world)
    assert [(r["kind"], r["version"], r["review_author"]) for r in queue] == [
        ("plugin", None, None),
        ("version", "1.1.0", None),
        ("review", None, "Robin"),
    ]
    everything = json.dumps(queue)
    assert "eve@example.com" not in everything  # the reporter by pseudonym only
    assert "rob@example.com" not in everything
    assert {r["reporter"] for r in queue} == {filed[0].json()["reporter"]}
    assert queue[0]["reporter"].startswith("user-")
    assert [a["subject"] for a in world.audit("report.file")] == [
        NAME,
        f"{NAME} 1.1.0",
        f"{NAME} review by Robin",
    ]
    assert {a["actor"] for a in world.audit("report.file")} == {"eve@example.com"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "plugins", "plugin": NAME, "reason": "spam"}, "kind"),
        ({"kind": "plugin", "plugin": " ", "reason": "spam"}, "plugin"),
        ({"kind": "version", "plugin": NAME, "reason": "spam"}, "version"),
        ({"kind": "plugin", "plugin": NAME, "version": "1.0.0", "reason": "spam"}, "version"),
        ({"kind": "review", "plugin": NAME, "reason": "spam"}, "author"),
        ({"kind": "plugin", "plugin": NAME, "reason": "ugly"}, "reason"),
        ({"kind": "plugin", "plugin": NAME, "reason": "other"}, "text"),
        ({"kind": "plugin", "plugin": NAME, "reason": "spam", "text": "x" * 2001}, "text"),
    ],
)
def test_an_invalid_report_names_its_field_and_stores_nothing(
    world: World, body: dict[str, Any], field: str
) -> None:
    before = world.snapshot()
    answered = _file(world, **body)
    assert answered.status_code == 400, answered.text
    error = error_of(answered)
    assert error["code"] == "invalid_input"
    assert error["details"]["field"] == field
    assert error["message"].startswith(f"{field}: ")
    assert world.snapshot() == before


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "plugin", "plugin": "acme.nope", "reason": "spam"},
        {"kind": "version", "plugin": NAME, "version": "9.9.9", "reason": "spam"},
        {"kind": "review", "plugin": NAME, "author": "Nobody", "reason": "spam"},
    ],
)
def test_a_report_on_nothing_is_404_and_stores_nothing(world: World, body: dict[str, Any]) -> None:
    before = world.snapshot()
    answered = _file(world, **body)
    assert answered.status_code == 404, answered.text
    assert world.snapshot() == before


def test_one_open_report_per_reporter_and_target(world: World) -> None:
    body = {"kind": "version", "plugin": NAME, "version": "1.0.0", "reason": "broken"}
    assert _file(world, **body).status_code == 201
    before = world.snapshot()
    again = _file(world, **(body | {"reason": "malware"}))
    assert again.status_code == 409, again.text
    assert "open report of yours" in error_of(again)["message"]
    assert world.snapshot() == before
    # another target, or another reporter, is another report
    assert _file(world, **(body | {"version": "1.1.0"})).status_code == 201
    other = world.registry.token("oli@example.com", "review")
    assert _file(world, other, **body).status_code == 201
    # once resolved, the same reporter may report the same target again
    report_id = next(r["id"] for r in _queue(world) if r["version"] == "1.0.0")
    with world.client(world.registry.admin) as admin:
        admin.post(
            f"{REPORTS}/{report_id}/resolve", json={"decision": "dismissed", "note": "works"}
        ).raise_for_status()
    assert _file(world, **body).status_code == 201


def test_the_hourly_budget_per_identity(engine: Engine, tmp_path: Path) -> None:
    with running(engine, tmp_path / "data", report_limit_per_hour=2) as registry:
        world = _world(registry, tmp_path)
        assert _file(world, kind="plugin", plugin=NAME, reason="spam").status_code == 201
        one = {"kind": "version", "plugin": NAME, "reason": "spam"}
        assert _file(world, **one, version="1.0.0").status_code == 201
        before = world.snapshot()
        third = _file(world, **one, version="1.1.0")
        assert third.status_code == 429, third.text
        error = error_of(third)
        assert error["code"] == "rate_limited"
        assert error["details"]["limit"] == "report_limit_per_hour"
        assert error["details"]["maximum"] == 2
        assert 0 < error["details"]["retry_after_s"] <= 3600
        assert third.headers["retry-after"] == str(error["details"]["retry_after_s"])
        assert "report_limit_per_hour = 2" in error["message"]
        assert world.snapshot() == before
        other = registry.token("oli@example.com", "review")  # a budget per identity
        assert _file(world, other, **one, version="1.1.0").status_code == 201


# --- the admins' queue ------------------------------------------------------------------------


def test_non_admins_cannot_read_or_resolve_reports(world: World) -> None:
    _file(world, kind="version", plugin=NAME, version="1.0.0", reason="malware")
    report_id = _queue(world)[0]["id"]
    before = world.snapshot()
    for token in (world.reporter, world.registry.token("ada", "publish:acme")):
        with world.client(token) as client:
            for method, path, body in (
                ("GET", REPORTS, None),
                ("GET", f"{REPORTS}/{report_id}", None),
                (
                    "POST",
                    f"{REPORTS}/{report_id}/resolve",
                    {"decision": "quarantined", "note": "x"},
                ),
                ("POST", f"/api/v1/plugins/{NAME}/versions/1.0.0/quarantine", {"reason": "x"}),
            ):
                answered = client.request(method, path, json=body)
                assert answered.status_code == 403, (method, path, answered.text)
                assert error_of(answered)["details"]["scope"] == "admin"
    assert world.snapshot() == before


def test_resolving_a_report_with_a_quarantine_and_releasing_it(world: World) -> None:
    _file(world, kind="version", plugin=NAME, version="1.1.0", reason="malware", text="steals")
    report = _queue(world)[0]
    admin = world.client(world.registry.admin)
    with admin:
        bad = admin.post(f"{REPORTS}/{report['id']}/resolve", json={"decision": "x", "note": "y"})
        assert bad.status_code == 400
        assert error_of(bad)["details"]["field"] == "decision"
        empty = admin.post(
            f"{REPORTS}/{report['id']}/resolve", json={"decision": "quarantined", "note": " "}
        )
        assert error_of(empty)["details"]["field"] == "note"
        resolved = admin.post(
            f"{REPORTS}/{report['id']}/resolve",
            json={"decision": "quarantined", "note": "confirmed: it exfiltrates tokens"},
        )
        assert resolved.status_code == 200, resolved.text
        assert resolved.json()["decision"] == "quarantined"
        assert resolved.json()["quarantined"] is True
        again = admin.post(
            f"{REPORTS}/{report['id']}/resolve", json={"decision": "dismissed", "note": "n"}
        )
        assert again.status_code == 409
        # the version leaves what hosts resolve from, even pinned; the listing says why
        offered = [v["version"] for v in admin.get(f"/api/v1/plugins/{NAME}/versions").json()]
        assert offered == ["1.0.0"]
        shown = admin.get(f"/api/v1/plugins/{NAME}").json()
        row = next(v for v in shown["versions"] if v["version"] == "1.1.0")
        assert row["quarantined"] is True
        assert row["quarantine_reason"] == "confirmed: it exfiltrates tokens"
        assert shown["latest_version"] == "1.0.0"
        assert admin.get(f"/api/v1/plugins/{NAME}/versions/1.1.0").json()["quarantined"] is True
        refused = admin.get(f"/api/v1/plugins/{NAME}/versions/1.1.0/download")
        assert refused.status_code == 404
        assert "quarantined it (confirmed: it exfiltrates tokens)" in error_of(refused)["message"]
        twice = admin.post(
            f"/api/v1/plugins/{NAME}/versions/1.1.0/quarantine", json={"reason": "again"}
        )
        assert twice.status_code == 409
        # release: offered again as before
        released = admin.post(f"/api/v1/plugins/{NAME}/versions/1.1.0/release")
        assert released.status_code == 200, released.text
        assert released.json()["quarantined"] is False
        offered = [v["version"] for v in admin.get(f"/api/v1/plugins/{NAME}/versions").json()]
        assert offered == ["1.1.0", "1.0.0"]
        assert admin.get(f"/api/v1/plugins/{NAME}").json()["latest_version"] == "1.1.0"
        assert admin.get(f"/api/v1/plugins/{NAME}/versions/1.1.0/download").status_code == 200
        not_now = admin.post(f"/api/v1/plugins/{NAME}/versions/1.1.0/release")
        assert not_now.status_code == 409
        assert _queue(world) == []
        assert [r["id"] for r in _queue(world, "resolved")] == [report["id"]]
    trail = [
        (a["actor"], a["subject"])
        for action in ("report.file", "version.quarantine", "report.resolve", "version.release")
        for a in world.audit(action)
    ]
    assert trail == [
        ("eve@example.com", f"{NAME} 1.1.0"),
        ("root", f"{NAME} 1.1.0"),
        ("root", f"{NAME} 1.1.0"),
        ("root", f"{NAME} 1.1.0"),
    ]
    assert world.audit("version.quarantine")[0]["report"] == report["id"]
    assert world.audit("report.resolve")[0]["decision"] == "quarantined"


def test_resolving_a_review_report_by_removing_the_review(world: World) -> None:
    _file(world, kind="review", plugin=NAME, author=world.reviewer_name, reason="spam")
    report_id = _queue(world)[0]["id"]
    with world.client(world.registry.admin) as admin:
        wrong = admin.post(
            f"{REPORTS}/{report_id}/resolve", json={"decision": "quarantined", "note": "x"}
        )
        assert error_of(wrong)["details"]["field"] == "decision"
        done = admin.post(
            f"{REPORTS}/{report_id}/resolve", json={"decision": "removed", "note": "spam"}
        )
        assert done.status_code == 200, done.text
        assert admin.get(f"/api/v1/plugins/{NAME}/reviews").json()["items"] == []
    assert [(a["subject"], a["report"]) for a in world.audit("review.remove")] == [
        (f"{NAME} review by Robin", report_id)
    ]


def test_a_quarantine_that_fails_leaves_the_report_open(world: World) -> None:
    """Quarantining a version that is quarantined already is refused, and the report stays
    open with nothing changed."""
    _file(world, kind="version", plugin=NAME, version="1.0.0", reason="malware")
    with world.client(world.registry.admin) as admin:
        admin.post(
            f"/api/v1/plugins/{NAME}/versions/1.0.0/quarantine", json={"reason": "first"}
        ).raise_for_status()
        before = world.snapshot()
        report_id = _queue(world)[0]["id"]
        answered = admin.post(
            f"{REPORTS}/{report_id}/resolve", json={"decision": "quarantined", "note": "x"}
        )
    assert answered.status_code == 409
    assert world.snapshot() == before


# --- the signed index and the TUF targets ---------------------------------------------------


def test_the_signed_index_leaves_a_quarantined_version_out_and_tuf_flags_it(
    engine: Engine, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    tuf = enable_tuf(engine, data)
    with running(engine, data) as registry:
        world = _world(registry, tmp_path)
        with world.client(registry.admin) as admin:
            admin.post(
                f"/api/v1/plugins/{NAME}/versions/1.1.0/quarantine", json={"reason": "malware"}
            ).raise_for_status()
            pem = admin.get("/api/v1/keys").json()["keys"][0]["public_key_pem"]
            index = verify_index(
                admin.get("/api/v1/index").content,
                public_key_from_pem(pem.encode(), source="registry key"),
                now=utcnow(),
            )
        assert [(e.name, e.version) for e in index.entries] == [(NAME, "1.0.0")]
        with Session(engine) as session:
            tuf_repo.publish(session, tuf.online, now=utcnow())
            session.commit()
            targets = _targets(session)
        quarantined = targets[target_path(NAME, "1.1.0")]
        kept = targets[target_path(NAME, "1.0.0")]
        assert quarantined["custom"]["plugport"]["quarantined"] is True
        assert set(kept["custom"]["plugport"]) == {"key_id", "yanked"}  # as before
        facts = target_facts(quarantined["custom"])
        assert facts is not None
        assert facts.quarantined
        with world.client(registry.admin) as admin:
            admin.post(f"/api/v1/plugins/{NAME}/versions/1.1.0/release").raise_for_status()
            index = verify_index(
                admin.get("/api/v1/index").content,
                public_key_from_pem(pem.encode(), source="registry key"),
                now=utcnow(),
            )
        assert [(e.name, e.version) for e in index.entries] == [
            (NAME, "1.0.0"),
            (NAME, "1.1.0"),
        ]
        with Session(engine) as session:
            tuf_repo.publish(session, tuf.online, now=utcnow())
            session.commit()
            released = _targets(session)[target_path(NAME, "1.1.0")]
        assert set(released["custom"]["plugport"]) == {"key_id", "yanked"}


def _targets(session: Session) -> dict[str, Any]:
    """The targets acme's newest delegated targets metadata lists."""
    targets: dict[str, Any] = json.loads(tuf_repo.document(session, "ns.acme"))["signed"]["targets"]
    return targets


# --- the marketplace pages ------------------------------------------------------------------


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def _browser(world: World, token: str | None) -> httpx.Client:
    client = httpx.Client(base_url=world.registry.url, timeout=10)
    if token is not None:
        client.cookies.set("plugport_registry_token", token)
    return client


def test_reporting_from_the_plugin_page_and_handling_it_in_the_admin_pages(world: World) -> None:
    with _browser(world, world.reporter) as browser:
        page = browser.get(f"/plugins/{NAME}")
        assert 'id="report-link"' in page.text
        form = browser.get(f"/plugins/{NAME}/report")
        assert form.status_code == 200
        assert 'value="Robin"' in form.text  # review authors by shown name
        assert "rob@example.com" not in form.text
        before = world.snapshot()
        refused = browser.post(
            f"/plugins/{NAME}/report",
            data={"kind": "plugin", "reason": "other", "text": "", "csrf": _csrf(form.text)},
        )
        assert refused.status_code == 400
        assert 'data-field="text"' in refused.text
        assert world.snapshot() == before
        filed = browser.post(
            f"/plugins/{NAME}/report",
            data={
                "kind": "version",
                "version": "1.1.0",
                "author": "Robin",  # the form sends every control; only the kind's counts
                "reason": "malware",
                "text": "it mines coins",
                "csrf": _csrf(form.text),
            },
        )
        assert filed.status_code == 303, filed.text
        assert filed.headers["location"] == f"/plugins/{NAME}"
        # the admin pages are for admins
        assert browser.get("/admin/reports").status_code == 403
    (report,) = _queue(world)
    assert (report["kind"], report["version"], report["review_author"]) == (
        "version",
        "1.1.0",
        None,
    )
    with _browser(world, None) as anonymous:
        assert anonymous.get("/admin/reports").status_code == 303  # to sign in
    with _browser(world, world.registry.admin) as admin:
        queue = admin.get("/admin/reports")
        assert queue.status_code == 200
        assert f'data-id="{report["id"]}"' in queue.text
        assert report["reporter"] in queue.text
        assert "eve@example.com" not in queue.text
        item = admin.get(f"/admin/reports/{report['id']}")
        assert "it mines coins" in item.text
        assert 'id="decision-quarantined"' in item.text
        done = admin.post(
            f"/admin/reports/{report['id']}",
            data={"decision": "quarantined", "note": "confirmed", "csrf": _csrf(item.text)},
        )
        assert done.status_code == 303, done.text
        item = admin.get(f"/admin/reports/{report['id']}")
        assert 'id="report-quarantined"' in item.text
        assert 'data-decision="quarantined"' in item.text
        plugin_page = admin.get(f"/plugins/{NAME}").text
        assert 'data-version="1.1.0" data-status="quarantined"' in plugin_page
        released = admin.post(
            f"/admin/reports/{report['id']}/release", data={"csrf": _csrf(item.text)}
        )
        assert released.status_code == 303
        assert 'id="report-quarantined"' not in admin.get(f"/admin/reports/{report['id']}").text
    assert [a["subject"] for a in world.audit("version.release")] == [f"{NAME} 1.1.0"]
