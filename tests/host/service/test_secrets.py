"""A plugin's secrets through the host service: listed without values, set write-only (the
answer has a fingerprint, never the value), deleted; refusals change nothing; the settings page
has a write-only field per declared credential; deleting the workspace deletes its secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.host._plugins import write
from tests.host._service import Market, Service, market_at, serving, settings_for, wait_for

pytestmark = pytest.mark.slow
VALUE = "svc-S3cret-Value-31337"
CREDS = """
[credentials.token]
kind = "bearer"
hosts = ["api.example.com"]

[credentials.hook]
kind = "hmac"

[permissions]
network = ["api.example.com"]
"""
CONSENT = [
    "network 'api.example.com'",
    "credential 'token' sent to 'api.example.com'",
    "secrets.sign 'hook'",
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Market, Service]]:
    root = tmp_path_factory.mktemp("secrets")
    with market_at(root / "market") as market:
        market.publish(write(root / "src", "acme.creds", "1.0.0", extra=CREDS))
        with serving(settings_for(root, market)) as service:
            yield market, service


def _installed(host: Service, ws: str) -> str:
    token = host.workspace(ws)
    with host.client(token) as api:
        body = {"plugin": "acme.creds", "consent": CONSENT}
        started = api.post(f"/api/v1/workspaces/{ws}/installations", json=body)
        assert started.status_code == 202, started.text
        assert wait_for(api, ws, started.json())["state"] == "succeeded"
    return token


def _files_as_text(home: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in home.rglob("*") if p.is_file() and "secrets.sqlite" not in p.name
    )


def test_list_set_delete(service: tuple[Market, Service]) -> None:
    _, host = service
    token = _installed(host, "sec")
    url = "/api/v1/workspaces/sec/installations/acme.creds/secrets"
    bodies = []
    with host.client(token) as api:
        listed = api.get(url)
        assert listed.status_code == 200, listed.text
        assert [(r["name"], r["set"]) for r in listed.json()["secrets"]] == [
            ("hook", False),
            ("token", False),
        ]
        put = api.put(f"{url}/token", json={"value": VALUE})
        assert put.status_code == 200, put.text
        assert put.json()["set"] is True
        assert len(put.json()["fingerprint"]) == 12
        again = api.get(url)
        [row] = [r for r in again.json()["secrets"] if r["name"] == "token"]
        assert row["fingerprint"] == put.json()["fingerprint"]
        assert row["updated_by"]
        bodies += [listed.text, put.text, again.text]

        for path, payload, status in (
            ("undeclared", {"value": VALUE}, 400),
            ("token", {"value": ""}, 400),
            ("token", {"value": 12}, 400),
            ("token", {"value": "x" * (64 * 1024 + 1)}, 400),
            ("token", {"nothing": VALUE}, 422),
        ):
            refused = api.put(f"{url}/{path}", json=payload)
            assert refused.status_code == status, refused.text
            assert "error" in refused.json()
            bodies.append(refused.text)
        missing = api.put(
            "/api/v1/workspaces/sec/installations/acme.none/secrets/token", json={"value": VALUE}
        )
        assert missing.status_code == 404
        stranger = host.workspace("other")
        with host.client(stranger) as other:
            assert other.get(url).status_code in (403, 404)
            assert other.put(f"{url}/token", json={"value": "theirs"}).status_code in (403, 404)
        assert again.json() == api.get(url).json()  # nothing changed by the refusals

        audit = api.get("/api/v1/workspaces/sec/audit", params={"subject": "acme.creds"})
        assert "secret-set" in audit.text
        bodies.append(audit.text)
        deleted = api.delete(f"{url}/token")
        assert deleted.status_code == 204
        assert api.delete(f"{url}/token").status_code == 404
    for text in bodies:
        assert VALUE not in text
    assert VALUE.encode() not in _files_as_text(host.home("sec"))
    assert host.service.workspace("sec").host.secrets.list("acme.creds") == []


def test_settings_page_section_is_write_only(service: tuple[Market, Service]) -> None:
    _, host = service
    token = _installed(host, "page")
    with host.client(follow_redirects=True) as browser:
        form = browser.get("/workspaces/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        browser.post("/workspaces/signin", data={"token": token, "csrf": csrf.group(1)})
        page = browser.get("/workspaces/page/installations/acme.creds/settings")
        assert page.status_code == 200, page.text
        assert 'name="secret.token"' in page.text
        assert 'name="secret.hook"' in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        saved = browser.post(
            "/workspaces/page/installations/acme.creds/secrets",
            data={"csrf": csrf.group(1), "secret.token": VALUE, "secret.hook": ""},
        )
        assert saved.status_code == 200, saved.text
        assert VALUE not in saved.text
        again = browser.get("/workspaces/page/installations/acme.creds/settings")
        [info] = host.service.workspace("page").host.list_secrets("acme.creds")
        assert info.fingerprint in again.text
        assert VALUE not in again.text
        no_csrf = browser.post(
            "/workspaces/page/installations/acme.creds/secrets", data={"secret.hook": VALUE}
        )
        assert no_csrf.status_code == 403
    assert [i.name for i in host.service.workspace("page").host.list_secrets()] == ["token"]


def test_deleting_the_workspace_deletes_its_secrets(service: tuple[Market, Service]) -> None:
    _, host = service
    token = _installed(host, "gone")
    with host.client(token) as api:
        url = "/api/v1/workspaces/gone/installations/acme.creds/secrets/token"
        assert api.put(url, json={"value": VALUE}).status_code == 200
    home = host.home("gone")
    assert (home / "secrets.sqlite").exists()
    with host.client(host.admin) as admin:
        assert admin.delete("/api/v1/workspaces/gone").status_code == 200
    assert not home.exists()
    trash = host.settings.data_dir / "deleted"
    assert not any(trash.rglob("secrets.sqlite")) if trash.exists() else True
