"""A fake of the sending side of Sentry's integration-platform webhooks: the body and headers an
internal integration's delivery carries for an issue alert (``event_alert``) and for an issue
created or resolved (``issue``), signed with the integration's client secret. Shapes follow:

- headers and signature: https://docs.sentry.io/integrations/integration-platform/webhooks/
  (``Request-ID``, ``Sentry-Hook-Resource``, ``Sentry-Hook-Timestamp``,
  ``Sentry-Hook-Signature``: the hex HMAC-SHA256 of the body with the client secret)
- issue alerts: https://docs.sentry.io/integrations/integration-platform/webhooks/issue-alerts/
- issues: https://docs.sentry.io/integrations/integration-platform/webhooks/issues/

Sentry is only a sender here, so the fake serves no routes; it builds deliveries
(:meth:`FakeSentry.issue_alert`, :meth:`FakeSentry.issue`) and posts them (:meth:`deliver`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from plugport.testing.services._service import FakeService, Sent, send

__all__ = ["Delivery", "FakeSentry"]

ISSUE_ACTIONS = ("created", "resolved", "assigned", "archived", "unresolved")


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery as Sentry sends it: the exact body bytes and the headers."""

    resource: str
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def request_id(self) -> str:
        return self.headers["Request-ID"]


class FakeSentry(FakeService):
    """Sentry's side of one installed internal integration: ``org`` and ``project`` name the
    URLs, ``client_secret`` signs."""

    hosts: ClassVar[tuple[str, ...]] = ("sentry.io", "*.sentry.io")
    name: ClassVar[str] = "sentry"

    def __init__(
        self,
        *,
        client_secret: str = "sentry-client-secret-stand-in",  # noqa: S107 - a test's stand-in
        org: str = "acme",
        project: str = "api",
        project_id: int = 2,
    ) -> None:
        super().__init__()
        self.client_secret = client_secret
        self.org = org
        self.project = project
        self.project_id = project_id
        self.installation_uuid = str(uuid.uuid4())
        self.sent: list[tuple[str, Delivery, Sent]] = []

    # --- building deliveries ----------------------------------------------------------------

    def issue_alert(
        self,
        issue_id: str = "1117540176",
        *,
        title: str = "ZeroDivisionError: division by zero",
        culprit: str = "app.views.checkout in total",
        level: str = "error",
        rule: str = "Page on new errors",
        event_id: str | None = None,
    ) -> Delivery:
        """An ``event_alert`` delivery (action ``triggered``): the event that fired the alert
        rule under ``data.event``, the rule's label under ``data.triggered_rule``."""
        event_id = event_id or uuid.uuid4().hex
        api = f"https://sentry.io/api/0/projects/{self.org}/{self.project}"
        event = {
            "event_id": event_id,
            "issue_id": issue_id,
            "title": title,
            "culprit": culprit,
            "level": level,
            "message": "",
            "platform": "python",
            "project": self.project_id,
            "datetime": _iso(time.time()),
            "timestamp": time.time(),
            "tags": [["environment", "production"], ["level", level]],
            "url": f"{api}/events/{event_id}/",
            "web_url": f"https://{self.org}.sentry.io/issues/{issue_id}/events/{event_id}/",
            "issue_url": f"https://sentry.io/api/0/issues/{issue_id}/",
            "exception": {"values": [{"type": title.partition(":")[0], "value": title}]},
        }
        body = {
            "action": "triggered",
            "installation": {"uuid": self.installation_uuid},
            "data": {"event": event, "triggered_rule": rule},
            "actor": {"type": "application", "id": "sentry", "name": "Sentry"},
        }
        return self.delivery("event_alert", body)

    def issue(
        self,
        action: str = "created",
        issue_id: str = "1117540176",
        *,
        title: str = "ZeroDivisionError: division by zero",
        level: str = "error",
        short_id: str = "API-1F",
    ) -> Delivery:
        """An ``issue`` delivery: ``action`` one of :data:`ISSUE_ACTIONS`, the issue under
        ``data.issue``; a person resolving it is the ``actor``."""
        if action not in ISSUE_ACTIONS:
            raise ValueError(f"Sentry sends issue actions {ISSUE_ACTIONS}, not {action!r}")
        issue = {
            "id": issue_id,
            "shortId": short_id,
            "title": title,
            "culprit": "app.views.checkout in total",
            "level": level,
            "status": "resolved" if action == "resolved" else "unresolved",
            "substatus": None if action == "resolved" else "new",
            "platform": "python",
            "project": {"id": str(self.project_id), "name": self.project, "slug": self.project},
            "firstSeen": _iso(time.time() - 60),
            "lastSeen": _iso(time.time()),
            "count": "1",
            "userCount": 0,
            "url": f"https://sentry.io/api/0/organizations/{self.org}/issues/{issue_id}/",
            "web_url": f"https://{self.org}.sentry.io/issues/{issue_id}/",
            "project_url": f"https://{self.org}.sentry.io/issues/?project={self.project_id}",
        }
        actor = (
            {"type": "user", "id": "1", "name": "Ada"}
            if action == "resolved"
            else {"type": "application", "id": "sentry", "name": "Sentry"}
        )
        body = {
            "action": action,
            "installation": {"uuid": self.installation_uuid},
            "data": {"issue": issue},
            "actor": actor,
        }
        return self.delivery("issue", body)

    def delivery(self, resource: str, payload: Any, *, timestamp: int | None = None) -> Delivery:
        """Any body signed as Sentry signs: ``Sentry-Hook-Signature`` is the hex HMAC-SHA256 of
        the exact body bytes with the client secret (the timestamp is not signed)."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "Request-ID": str(uuid.uuid4()),
            "Sentry-Hook-Resource": resource,
            "Sentry-Hook-Timestamp": str(int(time.time()) if timestamp is None else timestamp),
            "Sentry-Hook-Signature": self.sign(body),
        }
        return Delivery(resource, body, headers)

    def sign(self, body: bytes) -> str:
        return hmac.new(self.client_secret.encode(), body, hashlib.sha256).hexdigest()

    # --- sending ----------------------------------------------------------------------------

    def deliver(self, url: str, delivery: Delivery) -> Sent:
        """POST ``delivery`` to ``url`` (a Plugport webhook endpoint) as Sentry does."""
        answer = send(url, delivery.body, delivery.headers)
        with self._lock:
            self.sent.append((url, delivery, answer))
        return answer


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(when))
