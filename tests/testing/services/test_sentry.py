"""FakeSentry builds deliveries as Sentry's integration platform sends them: the documented
headers, a signature a receiver can check with the client secret, and the documented body
fields of issue alerts and issue webhooks; ``deliver`` posts them to a real endpoint."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from plugport.testing.services.sentry import FakeSentry

# docs.sentry.io/integrations/integration-platform/webhooks/ (headers) and its pages per resource.
HEADERS = {
    "Content-Type",
    "Request-ID",
    "Sentry-Hook-Resource",
    "Sentry-Hook-Timestamp",
    "Sentry-Hook-Signature",
}
BODY_FIELDS = {"action", "installation", "data", "actor"}
ALERT_EVENT_FIELDS = {"event_id", "issue_id", "title", "url", "web_url", "issue_url", "level"}
ISSUE_FIELDS = {"id", "shortId", "title", "culprit", "level", "status", "project", "web_url", "url"}
ACTOR_FIELDS = {"type", "id", "name"}


def test_an_issue_alert_is_signed_and_shaped() -> None:
    sentry = FakeSentry(client_secret="s3cret")  # noqa: S106 - a stand-in
    delivery = sentry.issue_alert("42", title="KeyError: 'user'", rule="Errors in checkout")
    assert set(delivery.headers) == HEADERS
    assert delivery.headers["Sentry-Hook-Resource"] == "event_alert"
    assert delivery.headers["Sentry-Hook-Timestamp"].isdigit()
    expected = hmac.new(b"s3cret", delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["Sentry-Hook-Signature"] == expected  # hex, over the body alone
    body = delivery.json()
    assert set(body) == BODY_FIELDS
    assert body["action"] == "triggered"
    assert body["installation"] == {"uuid": sentry.installation_uuid}
    assert set(body["actor"]) == ACTOR_FIELDS
    assert set(body["data"]) == {"event", "triggered_rule"}
    assert body["data"]["triggered_rule"] == "Errors in checkout"
    event = body["data"]["event"]
    assert set(event) >= ALERT_EVENT_FIELDS
    assert event["issue_id"] == "42"
    assert event["issue_url"] == "https://sentry.io/api/0/issues/42/"


@pytest.mark.parametrize("action", ["created", "resolved"])
def test_issue_webhooks(action: str) -> None:
    delivery = FakeSentry().issue(action, "7")
    assert delivery.headers["Sentry-Hook-Resource"] == "issue"
    body = delivery.json()
    assert body["action"] == action
    assert set(body["data"]["issue"]) >= ISSUE_FIELDS
    assert body["data"]["issue"]["status"] == ("resolved" if action == "resolved" else "unresolved")
    with pytest.raises(ValueError, match="issue actions"):
        FakeSentry().issue("exploded")


class _Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).got.append((dict(self.headers.items()), body))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/ops/plugport.sentry/alert"
    server.shutdown()
    server.server_close()


def test_deliver_posts_the_exact_bytes(receiver: str) -> None:
    sentry = FakeSentry()
    delivery = sentry.issue_alert()
    answer = sentry.deliver(receiver, delivery)
    assert answer.status == 202
    [(headers, body)] = _Receiver.got
    assert body == delivery.body
    assert headers["Sentry-Hook-Signature"] == sentry.sign(body)
    assert headers["Request-ID"] == delivery.request_id
    assert [(url, d) for url, d, _ in sentry.sent] == [(receiver, delivery)]
