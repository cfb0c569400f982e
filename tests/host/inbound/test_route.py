"""The webhook route end to end: a real host service on uvicorn (127.0.0.1), a real plugin in
its sandboxed worker, real HTTP. Accepted deliveries are stored, then handled; failures are
retried; every refusal is an audit line and changes nothing; no output carries the secret."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugport.authoring import archive_facts, pack_plugin
from plugport.host import PluginHost
from plugport.host.inbound.inbox import Delivery
from plugport.host.service import HostServiceSettings
from plugport.signing import generate_private_key, public_key_pem, sign
from plugport.testing import sign_webhook
from tests.host._plugins import write
from tests.host._service import Service, serving

SECRET = "whsec-Zq8-very-secret-value"  # noqa: S105 a test value, grepped for in outputs
PLUGIN = "acme.hooks"
CODE = """\
from plugport.sdk import Plugin, hook, webhook


class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return name

    @webhook("push")
    def push(self, event):
        assert event.json()["n"] >= 0, "not the body that was sent"
        assert "x-hub-signature-256" not in event.headers, "the signature reached the plugin"
        assert event.headers["x-github-event"] == "push"

    @webhook("flaky")
    async def flaky(self, event):
        if event.attempt < 3:
            raise RuntimeError(f"not yet (attempt {event.attempt})")

    @webhook("slash")
    def slash(self, event):
        assert event.headers["content-type"] == "application/x-www-form-urlencoded"
"""
MANIFEST = """
[webhooks.push]
verifier = "github"
secret = "github_secret"
max-body-bytes = "1 KiB"

[webhooks.flaky]
verifier = "hmac-timestamped"
secret = "github_secret"
signature-header = "X-Sig"
timestamp-header = "X-Ts"

[webhooks.slash]
verifier = "slack"
secret = "github_secret"
acknowledge = "empty"
"""


def _install(home: Path, root: Path) -> None:
    key = generate_private_key()
    source = write(root / "src", PLUGIN, "1.0.0", code=CODE, extra=MANIFEST)
    (root / "dist").mkdir()
    archive = pack_plugin(source, root / "dist").result.path
    Path(f"{archive}.sig").write_bytes(sign(key, archive_facts(archive)))
    public = root / "acme.pub"
    public.write_text(public_key_pem(key.public_key()))

    async def main() -> None:
        host = PluginHost(app="myapp", app_version="2.4.0", home=home, consent=lambda r: True)
        async with host:
            await host.install(str(archive), key=public)

    asyncio.run(main())


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str, str]]:
    root = tmp_path_factory.mktemp("hooks")
    settings = HostServiceSettings(
        data_dir=root / "service",
        app="myapp",
        app_version="2.4.0",
        telemetry=False,
        public_url="https://hooks.example.com/",
        webhook_retry_base_s=0.05,
    )
    with serving(settings) as service:
        token = service.workspace("team")
        _install(service.home("team"), root)
        with service.client(token) as client:  # starts the workspace
            assert client.get("/api/v1/workspaces/team/installations").status_code == 200
        workspace = service.service.workspace("team")
        workspace.host.supervisor.services.secrets.set(PLUGIN, "github_secret", SECRET.encode())
        yield service, token, "team"


def _rows(service: Service) -> list[Delivery]:
    return service.service.workspace("team").inbox.list(PLUGIN)


def _wait_done(service: Service, delivery: int) -> Delivery:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = service.service.workspace("team").inbox.get(delivery)
        if row is not None and row.state in ("done", "dead"):
            return row
        time.sleep(0.02)
    pytest.fail(f"delivery {delivery} not handled")


def _push(body: bytes, delivery: str, **extra: str) -> dict[str, str]:
    signed = sign_webhook("github", SECRET, body, delivery_id=delivery)
    return signed | {"X-GitHub-Event": "push", "Content-Type": "application/json"} | extra


def _audit(service: Service, token: str) -> list[dict[str, Any]]:
    with service.client(token) as client:
        rows: list[dict[str, Any]] = client.get(
            "/api/v1/workspaces/team/audit", params={"subject": PLUGIN}
        ).json()["items"]
    return [r for r in rows if r["action"] == "webhook"]


def test_a_delivery_is_stored_answered_202_and_handled(
    running: tuple[Service, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    service, token, ws = running
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"n": 1}).encode()
    with httpx.Client(base_url=service.url) as client:
        answer = client.post(f"/hooks/{ws}/{PLUGIN}/push", content=body, headers=_push(body, "g-1"))
        assert answer.status_code == 202, answer.text
        delivery = answer.json()["delivery"]
        row = _wait_done(service, delivery)
        assert (row.state, row.attempts, row.delivery_id) == ("done", 1, "g-1")
        assert "x-hub-signature-256" not in row.headers

        # The sender tries again with the same id: answered, not queued, not run again.
        again = client.post(f"/hooks/{ws}/{PLUGIN}/push", content=body, headers=_push(body, "g-1"))
        assert (again.status_code, again.json()) == (200, {"delivery": delivery, "duplicate": True})
        assert len([r for r in _rows(service) if r.delivery_id == "g-1"]) == 1
        assert _wait_done(service, delivery).attempts == 1
    assert any(a["detail"].get("reason") == "replay" for a in _audit(service, token))
    assert SECRET not in caplog.text


def test_a_failing_handler_is_retried_until_it_succeeds(running: tuple[Service, str, str]) -> None:
    service, token, ws = running
    body = b'{"x": 1}'
    headers = sign_webhook(
        "hmac-timestamped", SECRET, body, signature_header="X-Sig", timestamp_header="X-Ts"
    )
    with httpx.Client(base_url=service.url) as client:
        answer = client.post(f"/hooks/{ws}/{PLUGIN}/flaky", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    row = _wait_done(service, answer.json()["delivery"])
    assert (row.state, row.attempts, row.last_error) == ("done", 3, "")
    retries = [a for a in _audit(service, token) if a["outcome"] == "retry"]
    assert len(retries) >= 2
    assert "not yet (attempt 1)" in json.dumps(retries)


@pytest.mark.parametrize(
    ("path", "headers", "content", "status", "reason"),
    [
        ("push", {"X-Hub-Signature-256": "sha256=" + "0" * 64}, b'{"n": 2}', 401, "bad_signature"),
        ("push", {}, b'{"n": 2}', 401, "missing_signature"),
        ("push", None, b"x" * 2048, 413, "too_large"),
        ("flaky", {"X-Sig": "00", "X-Ts": "1"}, b"{}", 401, "bad_signature"),
        ("nope", None, b"{}", 404, None),
    ],
)
def test_refusals_change_nothing_and_are_audited(  # noqa: PLR0917 parametrized
    running: tuple[Service, str, str],
    path: str,
    headers: dict[str, str] | None,
    content: bytes,
    status: int,
    reason: str | None,
) -> None:
    service, token, ws = running
    before = _rows(service)
    audited = len(_audit(service, token))
    sent = _push(content, "r-1") if headers is None else headers
    with httpx.Client(base_url=service.url) as client:
        answer = client.post(f"/hooks/{ws}/{PLUGIN}/{path}", content=content, headers=sent)
    assert answer.status_code == status, answer.text
    assert "error" in answer.json()
    assert _rows(service) == before
    trail = _audit(service, token)
    if reason is not None:
        assert answer.json()["error"].get("details", {}).get("reason", reason) == reason
        assert len(trail) == audited + 1
        assert trail[0]["detail"]["reason"] == reason
        assert trail[0]["detail"]["endpoint"] == path
    for text in (answer.text, json.dumps(trail)):
        assert SECRET not in text
        assert "0" * 64 not in text


def test_a_streamed_body_over_the_cap_is_refused(running: tuple[Service, str, str]) -> None:
    service, _, ws = running
    before = _rows(service)

    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield b"y" * 512

    with httpx.Client(base_url=service.url) as client:
        answer = client.post(
            f"/hooks/{ws}/{PLUGIN}/push", content=chunks(), headers=_push(b"", "s")
        )
    assert answer.status_code == 413
    assert _rows(service) == before


def test_unknown_places_are_404(running: tuple[Service, str, str]) -> None:
    service, _, ws = running
    with httpx.Client(base_url=service.url) as client:
        for path in (
            f"/hooks/{ws}/acme.none/push",
            f"/hooks/nowhere/{PLUGIN}/push",
            f"/hooks/{ws}/BAD NAME/x",
        ):
            answer = client.post(path, content=b"{}")
            assert answer.status_code == 404, (path, answer.text)


def test_the_installation_shows_its_webhook_urls(running: tuple[Service, str, str]) -> None:
    service, token, ws = running
    with service.client(token) as client:
        found = client.get(f"/api/v1/workspaces/{ws}/installations/{PLUGIN}").json()
    assert found["webhooks"] == [
        {
            "endpoint": "push",
            "url": f"https://hooks.example.com/hooks/{ws}/{PLUGIN}/push",
            "verifier": "github",
            "secret": "github_secret",
            "secret_set": True,
        },
        {
            "endpoint": "flaky",
            "url": f"https://hooks.example.com/hooks/{ws}/{PLUGIN}/flaky",
            "verifier": "hmac-timestamped",
            "secret": "github_secret",
            "secret_set": True,
        },
        {
            "endpoint": "slash",
            "url": f"https://hooks.example.com/hooks/{ws}/{PLUGIN}/slash",
            "verifier": "slack",
            "secret": "github_secret",
            "secret_set": True,
        },
    ]
    webhooks = {"receive": ["push", "flaky", "slash"], "deliver": []}
    assert found["permissions"]["webhooks"] == webhooks


def test_an_endpoint_may_acknowledge_with_an_empty_200(running: tuple[Service, str, str]) -> None:
    """Slack shows a slash command's answer body to the user, and anything but an empty 200 as
    a failure: ``acknowledge = "empty"`` answers that, and still stores and hands over."""
    service, _, ws = running
    body = b"command=%2Fplugport&text=status&response_url=https%3A%2F%2Fhooks.slack.com%2Fx"
    headers = sign_webhook("slack", SECRET, body) | {
        "Content-Type": "application/x-www-form-urlencoded"
    }
    with httpx.Client(base_url=service.url) as client:
        answer = client.post(f"/hooks/{ws}/{PLUGIN}/slash", content=body, headers=headers)
        assert (answer.status_code, answer.content) == (200, b"")
        again = client.post(f"/hooks/{ws}/{PLUGIN}/slash", content=body, headers=headers)
        assert (again.status_code, again.content) == (200, b"")  # a resend: not run twice
    [row] = [r for r in _rows(service) if r.endpoint == "slash"]
    assert _wait_done(service, row.id).state == "done"
    bad = {**headers, "X-Slack-Signature": "v0=" + "0" * 64}
    with httpx.Client(base_url=service.url) as client:
        refused = client.post(f"/hooks/{ws}/{PLUGIN}/slash", content=body, headers=bad)
    assert refused.status_code == 401  # refusals still say why, as JSON
    assert refused.json()["error"]["details"]["reason"]


def test_uninstall_purge_deletes_the_plugins_deliveries(running: tuple[Service, str, str]) -> None:
    service, token, ws = running  # runs last: the plugin is gone afterwards
    assert _rows(service)
    workspace = service.service.workspace("team")
    with service.client(token) as client:
        gone = client.post(f"/api/v1/workspaces/{ws}/installations/{PLUGIN}/uninstall?purge=true")
        assert gone.status_code == 204, gone.text
        answer = client.post(f"/hooks/{ws}/{PLUGIN}/push", content=b"{}")
    assert answer.status_code == 404
    assert workspace.inbox.list(PLUGIN) == []
