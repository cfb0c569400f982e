"""An installation's page and the inbox API over a real host service on uvicorn: each endpoint's
full URL, verifier and whether its secret is set; the last deliveries (never their bodies or
signatures); a dead one retried with the page's CSRF-checked form or the API."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from plugport.host.inbound.inbox import WEBHOOK_TASK
from plugport.host.service import HostServiceSettings
from plugport.host.tasks.store import NewTask
from plugport.testing import sign_webhook
from tests.host._service import Service, serving
from tests.host.inbound._hooks import PLUGIN, SECRET, install_into

WS = "team"
PAGE = f"/workspaces/{WS}/installations/{PLUGIN}"
API = f"/api/v1/workspaces/{WS}"
BODY_MARK = "body-Only-For-The-Plugin"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    root = tmp_path_factory.mktemp("inbox-pages")
    settings = HostServiceSettings(
        data_dir=root / "service",
        app="myapp",
        app_version="2.4.0",
        telemetry=False,
        public_url="https://hooks.example.com",
        webhook_max_attempts=2,
        webhook_retry_base_s=0.05,
    )
    with serving(settings) as service:
        token = service.workspace(WS)
        install_into(service.home(WS), root)
        yield service, token


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


@contextlib.contextmanager
def _signed_in(service: Service, token: str) -> Iterator[httpx.Client]:
    with service.client(follow_redirects=False) as browser:
        form = browser.get("/workspaces")
        done = browser.post("/workspaces/signin", data={"token": token, "csrf": _csrf(form)})
        assert done.status_code == 303, done.text
        yield browser


def _deliver(service: Service, n: int, delivery_id: str) -> str:
    body = json.dumps({"n": n, "mark": BODY_MARK}).encode()
    headers = sign_webhook("github", SECRET, body, delivery_id=delivery_id)
    with httpx.Client(base_url=service.url) as client:
        answer = client.post(f"/hooks/{WS}/{PLUGIN}/push", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["delivery"])


def _wait(service: Service, delivery: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = service.service.workspace(WS).inbox.get(delivery)
        if row is not None and row.state == state:
            return row.public()
        time.sleep(0.02)
    pytest.fail(f"delivery {delivery} never {state}")


def _rows(page: httpx.Response) -> dict[str, str]:
    found = re.findall(r'data-testid="inbox-row" data-id="(\w+)" data-state="(\w+)"', page.text)
    return dict(found)


def _clean(text: str) -> None:
    assert SECRET not in text
    assert BODY_MARK not in text
    assert "sha256=" not in text


def test_the_page_shows_endpoints_and_deliveries_and_retries_a_dead_one(
    running: tuple[Service, str],
) -> None:
    service, token = running
    delivery = _deliver(service, 1, "p-1")
    dead = _wait(service, delivery, "dead")
    assert dead["attempts"] == 2
    with _signed_in(service, token) as browser:
        workspace = browser.get(f"/workspaces/{WS}")
        assert f'href="{PAGE}" data-testid="installation-link"' in workspace.text

        page = browser.get(PAGE)
        assert page.status_code == 200, page.text
        shown = r'data-testid="webhook" data-endpoint="(\w+)" data-secret-set="(\w+)"'
        endpoints = dict(re.findall(shown, page.text))
        assert endpoints == {"push": "yes", "slow": "yes", "unset": "no"}
        for endpoint in endpoints:
            url = f"https://hooks.example.com/hooks/{WS}/{PLUGIN}/{endpoint}"
            assert f'<code data-testid="webhook-url">{url}</code>' in page.text
        assert "token_secret is not set" in page.text
        assert f'href="{PAGE}/settings#secrets-form" data-testid="secret-link"' in page.text
        assert _rows(page)[delivery] == "dead"
        assert "RuntimeError: the plugin is not ready for 1" in page.text
        assert f'data-testid="retry" data-id="{delivery}"' in page.text
        _clean(page.text)

        # the secrets form the link leads to is there
        assert 'id="secrets-form"' in browser.get(f"{PAGE}/settings").text

        # no CSRF token: refused, nothing changed
        refused = browser.post(f"{PAGE}/inbox/{delivery}/retry", data={})
        assert refused.status_code == 403
        assert service.service.workspace(WS).inbox.get(delivery).state == "dead"  # type: ignore[union-attr]

        with service.client(token) as api:
            fixed = api.post(f"{API}/installations/{PLUGIN}/execute", json={"command": "inbox.fix"})
            assert fixed.json()["status"] == "ok", fixed.text
        retried = browser.post(f"{PAGE}/inbox/{delivery}/retry", data={"csrf": _csrf(page)})
        assert retried.status_code == 303, retried.text
        assert retried.headers["location"] == PAGE
        done = _wait(service, delivery, "done")
        assert done["attempts"] == 1
        after = browser.get(PAGE)
        assert _rows(after)[delivery] == "done"
        assert f'data-testid="retry" data-id="{delivery}"' not in after.text
        _clean(after.text)

        # a delivery that is not dead, or of another plugin: nothing retried
        again = browser.post(f"{PAGE}/inbox/{delivery}/retry", data={"csrf": _csrf(after)})
        assert again.status_code == 303
        assert service.service.workspace(WS).inbox.get(delivery).attempts == 1  # type: ignore[union-attr]
        other = browser.post(
            f"/workspaces/{WS}/installations/acme.other/inbox/{delivery}/retry",
            data={"csrf": _csrf(after)},
        )
        assert other.status_code == 303
        assert service.service.workspace(WS).inbox.get(delivery).state == "done"  # type: ignore[union-attr]

    with service.client(token) as api:
        trail = api.get(f"{API}/audit", params={"subject": PLUGIN}).json()["items"]
    assert any(a["action"] == "webhook" and a["outcome"] == "retried" for a in trail)


def test_the_api_lists_dead_deliveries_and_retries_them(running: tuple[Service, str]) -> None:
    service, token = running
    with service.client(token) as api:
        api.post(f"{API}/installations/{PLUGIN}/execute", json={"command": "inbox.fix"})
    inbox = service.service.workspace(WS).inbox
    # A dead row made directly in the workspace's queue, as a node that gave up leaves it.
    store = inbox.queue.store
    record, _ = store.insert(
        NewTask(
            PLUGIN,
            WEBHOOK_TASK,
            {"endpoint": "push", "delivery_id": "a-1", "headers": {}, "body": "eyJuIjogM30=",
             "received_at": time.time()},
            max_attempts=2,
            idempotency_key="push:a-1",
            due_at=time.time() + 3600,
        ),
        time.time(),
    )  # fmt: skip
    with store._sql.write() as db:
        db.execute(
            "UPDATE tasks SET state = 'dead', attempts = 2, error = ? WHERE id = ?",
            ("ValueError: made dead", record.id),
        )

    class _Accepted:
        id = record.id

    accepted = _Accepted()
    assert inbox.get(accepted.id).state == "dead"  # type: ignore[union-attr]

    with service.client(token) as api:
        listed = api.get(f"{API}/inbox", params={"state": "dead"})
        assert listed.status_code == 200, listed.text
        rows = {r["id"]: r for r in listed.json()["items"]}
        assert rows[accepted.id]["last_error"] == "ValueError: made dead"
        assert set(rows[accepted.id]) == {
            "id", "plugin", "endpoint", "delivery_id", "received_at", "state", "attempts",
            "next_at", "last_error", "finished_at",
        }  # fmt: skip
        assert all(r["state"] == "dead" for r in rows.values())
        retried = api.post(f"{API}/inbox/{accepted.id}/retry")
        assert retried.status_code == 200, retried.text
        assert (retried.json()["state"], retried.json()["attempts"]) == ("pending", 0)
        assert _wait(service, accepted.id, "done")["attempts"] == 1
        assert accepted.id not in {
            r["id"] for r in api.get(f"{API}/inbox", params={"state": "dead"}).json()["items"]
        }
        again = api.post(f"{API}/inbox/{accepted.id}/retry")
        assert again.status_code == 400
        assert "not dead" in again.json()["error"]["message"]
        assert api.post(f"{API}/inbox/999999/retry").status_code == 404
        assert api.post(f"{API}/inbox/nope/retry").status_code == 404
        assert api.get(f"{API}/inbox", params={"state": "lost"}).status_code == 422
        assert api.get(f"{API}/inbox").status_code == 200
        everything = api.get(f"{API}/inbox", params={"plugin": PLUGIN}).text
        _clean(everything)
        assert httpx.get(f"{service.url}{API}/inbox").status_code == 401
