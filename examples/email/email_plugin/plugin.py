"""The e-mail plugin: every ``notify.*`` event with a title becomes one message, rendered from
the operator's templates, to the recipients its severity calls for, through the host's relay
(the host sets From; the manifest's ``mail.to`` bounds who can be addressed)."""

from __future__ import annotations

from typing import Any

from email_plugin.markup import to_html
from email_plugin.render import notice, recipients, render
from plugport.sdk import Plugin, command, on_event

TEMPLATES = ("subject_template", "text_template", "html_template")
SAMPLE: dict[str, Any] = {  # already in notice() shape
    "source": "plugport",
    "title": "Test message from Plugport",
    "text": "If you can read this, **e-mail notifications work**.\n\n- relay: reached\n"
    "- templates: rendered",
    "url": "https://plugport.dev/",
    "severity": "info",
    "fields": {"Plugin": "plugport.email"},
}


class NoRecipientsError(Exception):
    """No address is configured for a message the operator asked for."""


class EmailPlugin(Plugin):
    async def _send(self, payload: dict[str, Any], to: list[str]) -> str:
        settings = await self.api.config.get()
        message = render(payload, {k: settings[k] for k in TEMPLATES}, to_html)
        return await self.api.mail.send(
            to,
            message.subject,
            message.text,
            html=message.html,
            reply_to=settings["reply_to"] or None,
            headers={
                "Auto-Submitted": "auto-generated",  # RFC 3834: no auto-replies to this
                "X-Plugport-Source": payload["source"],
                "X-Plugport-Severity": payload["severity"],
            },
        )

    @on_event("notify.*")
    async def notify(self, event: Any) -> None:
        payload = notice(event)
        if payload is None:
            self.log.warning("dropped a notification without a title")
            return
        settings = await self.api.config.get()
        if settings["sources"] and payload["source"] not in settings["sources"]:
            return
        to = recipients(
            payload["severity"], settings["to"], settings["errors_to"], settings["min_severity"]
        )
        if not to:
            self.log.info("no recipient for a %s notification", payload["severity"])
            return
        message_id = await self._send(payload, to)
        self.log.info("sent %s to %d recipient(s)", message_id, len(to))

    @command("email.send_test")
    async def send_test(self, to: str | list[str] | None = None) -> dict[str, Any]:
        """Send a sample message to ``to`` (default: the ``to`` setting), to check the relay,
        the recipients and the templates."""
        settings = await self.api.config.get()
        chosen = [to] if isinstance(to, str) else list(to or settings["to"])
        if not chosen:
            raise NoRecipientsError(
                "no recipient: pass to=, or set one with "
                "plugport config set plugport.email to '[\"you@example.com\"]'"
            )
        return {"message_id": await self._send(dict(SAMPLE), chosen), "to": chosen}
