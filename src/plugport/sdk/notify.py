"""The notification convention between plugins: a plugin that hears about something (a GitHub
pull request, a Sentry alert) publishes it on ``notify.<source>``; a plugin that tells people
(Slack, Teams, Discord, e-mail) subscribes to ``notify.*`` and posts each one in its service's
own format. Neither knows the other; this module is the one place the payload is defined.

    await self.api.events.publish("notify.github", Notification(title="PR #12 opened").payload())

    @on_event("notify.*")
    async def post(self, event: dict) -> None:
        note = parse_notification(event)
        if note is None:
            return  # no title: the convention says drop it
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SEVERITIES", "TOPIC_PREFIX", "Notification", "parse_notification"]

TOPIC_PREFIX = "notify."
SEVERITIES = ("info", "success", "warning", "error")


@dataclass(frozen=True)
class Notification:
    """One notification: every value a string, ``severity`` one of :data:`SEVERITIES`."""

    title: str
    source: str = ""
    text: str = ""
    url: str = ""
    severity: str = "info"
    fields: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The event payload to publish (what :func:`parse_notification` reads back)."""
        return {
            "source": self.source,
            "title": self.title,
            "text": self.text,
            "url": self.url,
            "severity": self.severity if self.severity in SEVERITIES else "info",
            "fields": dict(self.fields),
        }


def parse_notification(payload: Any) -> Notification | None:
    """The notification in an event payload, or None when it has no ``title``: such a payload
    is dropped, not half-posted. Values that are not strings are left out (``fields``) or
    read as empty; an unknown severity reads as ``info``."""
    if not isinstance(payload, Mapping):
        return None
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip():
        return None

    def text(key: str) -> str:
        value = payload.get(key)
        return value if isinstance(value, str) else ""

    severity = text("severity") if text("severity") in SEVERITIES else "info"
    raw = payload.get("fields")
    fields = (
        {str(k): str(v) for k, v in raw.items() if str(k) and str(v)}
        if isinstance(raw, Mapping)
        else {}
    )
    return Notification(title.strip(), text("source"), text("text"), text("url"), severity, fields)
