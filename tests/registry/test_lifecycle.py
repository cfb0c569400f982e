"""Yank, deprecate, unlist, suspend and delete over real HTTP: who may, what changes for
resolution and reads, and the audit trail."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.registry.conftest import Registry
from tests.registry.test_access import error_of
from tests.registry.test_publish import Publisher, stored_blobs
from tests.registry.test_review import bump


def two_published(registry: Registry, tmp_path: Path) -> Publisher:
    publisher = Publisher(registry, tmp_path)
    publisher.upload(publisher.build()).raise_for_status()
    publisher.upload(publisher.build(edit=bump("0.2.0"))).raise_for_status()
    with registry.client(registry.token("rex", "review")) as reviewer:
        for version in ("0.1.0", "0.2.0"):
            reviewer.post(
                f"/api/v1/review/acme.hello/{version}/approve", json={"reason": "ok"}
            ).raise_for_status()
    return publisher


def resolved(registry: Registry) -> str:
    with registry.client() as client:
        return str(client.get("/api/v1/plugins/acme.hello/resolve").json().get("version"))


def test_yank_moves_resolution_but_keeps_the_exact_download(
    registry: Registry, tmp_path: Path
) -> None:
    publisher = two_published(registry, tmp_path)
    assert resolved(registry) == "0.2.0"
    with registry.client(publisher.token) as client:
        yanked = client.post(
            "/api/v1/plugins/acme.hello/versions/0.2.0/yank", json={"reason": "data loss bug"}
        )
        assert yanked.json()["yanked_reason"] == "data loss bug"
    assert resolved(registry) == "0.1.0"
    with registry.client() as anonymous:
        assert anonymous.get("/api/v1/plugins/acme.hello").json()["latest_version"] == "0.1.0"
        download = anonymous.get("/api/v1/plugins/acme.hello/versions/0.2.0/download")
        assert download.status_code == 200
    with registry.client(publisher.token) as client:
        client.post("/api/v1/plugins/acme.hello/versions/0.2.0/unyank").raise_for_status()
        again = client.post("/api/v1/plugins/acme.hello/versions/0.2.0/unyank")
        assert again.status_code == 409
    assert resolved(registry) == "0.2.0"


def test_deprecate_unlist_and_who_may(registry: Registry, tmp_path: Path) -> None:
    publisher = two_published(registry, tmp_path)
    outsider = registry.token("eve", "publish:other")
    with registry.client(outsider) as eve:
        denied = eve.post("/api/v1/plugins/acme.hello/deprecate", json={"reason": "mine now"})
        assert denied.status_code == 403
    with registry.client(publisher.token) as client:
        bad = client.post(
            "/api/v1/plugins/acme.hello/deprecate",
            json={"reason": "old", "replaced_by": "acme.hello"},
        )
        assert bad.status_code == 400
        assert "cannot replace itself" in error_of(bad)["message"]
        done = client.post(
            "/api/v1/plugins/acme.hello/deprecate",
            json={"reason": "use the new one", "replaced_by": "acme.hello2"},
        ).json()
        assert (done["deprecated"], done["replaced_by"]) == ("use the new one", "acme.hello2")
        assert client.post("/api/v1/plugins/acme.hello/unlist").json()["listed"] is False
        suspend = client.post("/api/v1/plugins/acme.hello/suspend", json={"reason": "x"})
        assert suspend.status_code == 403
        assert "lacks the scope 'admin'" in error_of(suspend)["message"]


def test_suspend_hides_and_delete_removes_rows_and_blobs(
    registry: Registry, tmp_path: Path
) -> None:
    two_published(registry, tmp_path)
    with registry.client(registry.admin) as admin:
        admin.post("/api/v1/plugins/acme.hello/suspend", json={"reason": "malware report"})
        with registry.client() as anonymous:
            assert anonymous.get("/api/v1/plugins/acme.hello").status_code == 404
        admin.post("/api/v1/plugins/acme.hello/unsuspend").raise_for_status()
        deleted = admin.delete("/api/v1/plugins/acme.hello")
        # two archives, and the README both versions show (content-addressed: stored once)
        assert deleted.json() == {"deleted": "acme.hello", "blobs": 3}
    assert registry.count("plugins") == registry.count("plugin_versions") == 0
    # The blobs go in a background task once the response is sent (after the commit).
    deadline = time.monotonic() + 10
    while stored_blobs(tmp_path / "data" / "blobs") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stored_blobs(tmp_path / "data" / "blobs") == []
    with registry.engine.connect() as connection:
        from sqlalchemy import text

        actions = (
            connection.execute(
                text("SELECT action FROM audit_records WHERE subject = 'acme.hello' ORDER BY id")
            )
            .scalars()
            .all()
        )
    assert actions == ["plugin.suspend", "plugin.unsuspend", "plugin.delete"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/v1/plugins/acme.hello/versions/9.9.9/yank", {"reason": "x"}, 404),
        ("/api/v1/plugins/acme.hello/versions/0.1.0/yank", {"reason": " "}, 400),
        ("/api/v1/plugins/acme.hello/versions/0.1.0/yank", {}, 422),
        ("/api/v1/plugins/acme.nope/deprecate", {"reason": "x"}, 404),
    ],
)
def test_bad_lifecycle_requests(
    registry: Registry, tmp_path: Path, path: str, body: dict[str, str], status: int
) -> None:
    publisher = two_published(registry, tmp_path)
    with registry.client(publisher.token) as client:
        response = client.post(path, json=body)
    assert response.status_code == status, response.text
    error_of(response)
    assert resolved(registry) == "0.2.0"
