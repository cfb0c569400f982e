"""Microsoft Teams for Plugport: every ``notify.*`` event becomes an Adaptive Card posted to a
channel through the incoming webhook (a connector or a Workflows trigger) the operator set.
The plugin never learns the webhook URL: it is a ``url`` credential the host sends to."""

from __future__ import annotations

from typing import Any

from plugport.sdk import Plugin, RetryPolicy, command, on_event
from plugport.sdk.notify import parse_notification
from teams_plugin.answers import check_answer
from teams_plugin.cards import notification_message, text_message

JSON_UTF8 = {"Content-Type": "application/json; charset=utf-8"}


class TeamsPlugin(Plugin):
    async def _post(self, body: bytes) -> dict[str, Any]:
        settings = await self.api.config.get()
        # A 429 is always retried (nothing was posted); a 5xx only with resend_on_server_error:
        # a webhook has no idempotency key, so a resend after a 5xx may post twice.
        policy = RetryPolicy(
            attempts=int(settings["retry_attempts"]),
            budget_s=float(settings["retry_budget_s"]),
            base_s=float(settings["retry_base_s"]),
            retry_unsafe=bool(settings["resend_on_server_error"]),
        )
        response = await self.api.net.fetch(
            method="POST", headers=JSON_UTF8, body=body, credential="incoming", retry=policy
        )
        check_answer(response.status, response.body)
        return {"ok": True, "status": response.status}

    @on_event("notify.*")
    async def notify(self, event: dict[str, Any]) -> None:
        note = parse_notification(event)
        if note is None:
            self.log.warning("dropped a notify event without a title")
            return
        await self._post(notification_message(note))

    @command("teams.send")
    async def send(self, text: str = "Hello from Plugport", title: str = "") -> dict[str, Any]:
        """Post a plain card: the operator's check that the webhook works."""
        return await self._post(text_message(text, title))
