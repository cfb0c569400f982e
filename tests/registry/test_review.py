"""Review over real HTTP: the queue shows scan findings and the permission diff against the
last published version; decisions need the review scope, a reason, and are audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plugport.registry.services.review import permission_diff
from tests.registry.conftest import Registry
from tests.registry.test_access import error_of
from tests.registry.test_publish import Publisher


def test_permission_diff_names_what_was_added_and_dropped() -> None:
    before = {"network": ["api.a.com"], "storage": 1024, "config": False, "ui": ["messages"],
              "events": {"publish": ["x.y"], "subscribe": []}}  # fmt: skip
    after = {"network": ["api.a.com", "evil.com"], "storage": 4096, "config": True, "ui": [],
             "events": {"publish": ["x.y"], "subscribe": ["tasks.*"]}}  # fmt: skip
    assert permission_diff(before, after) == {
        "config": {"from": False, "to": True},
        "events": {"subscribe": {"added": ["tasks.*"], "removed": []}},
        "network": {"added": ["evil.com"], "removed": []},
        "storage": {"from": 1024, "to": 4096},
        "ui": {"added": [], "removed": ["messages"]},
    }
    assert permission_diff(after, after) == {}
    assert permission_diff(None, {"network": ["a.com"], "storage": 0}) == {
        "network": {"added": ["a.com"], "removed": []}
    }


def bump(version: str, extra: str = "") -> Any:
    def edit(source: Path) -> None:
        manifest = source / "plugport.toml"
        text = manifest.read_text().replace('version = "0.1.0"', f'version = "{version}"')
        manifest.write_text(text.replace("[contributes]", extra + "\n[contributes]"))

    return edit


def test_queue_show_approve_then_diff_the_next_version(registry: Registry, tmp_path: Path) -> None:
    publisher = Publisher(registry, tmp_path)
    assert publisher.upload(publisher.build()).status_code == 201
    reviewer = registry.token("rex", "review")
    with registry.client(reviewer) as client:
        [item] = client.get("/api/v1/review/queue").json()
        assert (item["version"]["version"], item["previous_version"]) == ("0.1.0", None)
        approved = client.post(
            "/api/v1/review/acme.hello/0.1.0/approve", json={"reason": "clean, tiny"}
        )
        assert approved.json()["status"] == "published"
        assert client.get("/api/v1/review/queue").json() == []

    grab = bump("0.2.0", '[permissions]\nnetwork = ["api.example.com"]\nstorage = "1 KiB"')
    assert publisher.upload(publisher.build(edit=grab)).status_code == 201
    with registry.client(reviewer) as client:
        shown = client.get("/api/v1/review/acme.hello/0.2.0").json()
        assert shown["previous_version"] == "0.1.0"
        assert shown["permission_diff"] == {
            "network": {"added": ["api.example.com"], "removed": []},
            "storage": {"from": 0, "to": 1024},
        }
        rejected = client.post(
            "/api/v1/review/acme.hello/0.2.0/reject", json={"reason": "why the network?"}
        )
        assert rejected.json()["status"] == "rejected"
        again = client.post("/api/v1/review/acme.hello/0.2.0/approve", json={"reason": "oops"})
        assert again.status_code == 409
        assert "is rejected, not pending review" in error_of(again)["message"]
    with registry.engine.connect() as connection:
        from sqlalchemy import text

        actions = connection.execute(
            text(
                "SELECT action, detail FROM audit_records WHERE action LIKE 'version.%' ORDER BY id"
            )
        ).all()
        latest = connection.execute(text("SELECT latest_version FROM plugins")).scalar_one()
    assert [a for a, _ in actions] == [
        "version.upload", "version.approve", "version.upload", "version.reject"
    ]  # fmt: skip
    assert latest == "0.1.0"


@pytest.mark.parametrize(
    ("token_scopes", "body", "status", "message"),
    [
        (("publish:acme",), {"reason": "mine"}, 403, "lacks the scope 'review'"),
        (("review",), {"reason": ""}, 422, "body.reason"),
        (("review",), {"reason": "   "}, 400, "reason: say why"),
        (("review",), {}, 422, "body.reason: Field required"),
    ],
)
def test_a_decision_needs_the_scope_and_a_reason(  # noqa: PLR0917 parametrised cases
    registry: Registry,
    tmp_path: Path,
    token_scopes: tuple[str, ...],
    body: Any,
    status: int,
    message: str,
) -> None:
    publisher = Publisher(registry, tmp_path)
    publisher.upload(publisher.build()).raise_for_status()
    with registry.client(registry.token("someone", *token_scopes)) as client:
        response = client.post("/api/v1/review/acme.hello/0.1.0/approve", json=body)
    assert response.status_code == status, response.text
    assert message in error_of(response)["message"]
    with registry.client(registry.admin) as admin:
        [item] = admin.get("/api/v1/review/queue").json()
    assert item["version"]["status"] == "pending_review"


def test_unknown_versions_are_404(registry: Registry) -> None:
    with registry.client(registry.token("rex", "review")) as client:
        response = client.get("/api/v1/review/acme.nope/1.0")
    assert response.status_code == 404
    assert error_of(response)["message"] == "no version 'acme.nope 1.0'"
