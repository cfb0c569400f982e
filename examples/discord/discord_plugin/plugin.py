"""Discord for Plugport: every ``notify.*`` event becomes an embed posted to a channel through
the webhook URL the operator set. The URL (it carries the webhook's token) is a ``url``
credential: the host sends to it and the plugin never learns it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from discord_plugin.answers import check_answer
from discord_plugin.embeds import notification_body, text_body
from plugport.sdk import Plugin, RetryPolicy, command, on_event
from plugport.sdk.notify import parse_notification

# The host's fetch sends no User-Agent of its own, and Discord's edge refuses clients without
# one; this is the form Discord documents for API clients.
HEADERS = {
    "Content-Type": "application/json",
    "User-Agent": "DiscordBot (https://plugport.dev, 1.0.0)",
}


class DiscordPlugin(Plugin):
    async def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        settings = await self.api.config.get()
        # A 429 is always retried after Retry-After (nothing was posted); a 5xx only with
        # resend_on_server_error: a webhook has no idempotency key, so it may post twice.
        policy = RetryPolicy(
            attempts=int(settings["retry_attempts"]),
            budget_s=float(settings["retry_budget_s"]),
            base_s=float(settings["retry_base_s"]),
            retry_unsafe=bool(settings["resend_on_server_error"]),
        )
        if settings["username"]:
            payload = {**payload, "username": settings["username"]}
        response = await self.api.net.fetch(
            method="POST",
            headers=HEADERS,
            body=json.dumps(payload).encode(),
            credential="incoming",
            retry=policy,
        )
        check_answer(response.status, response.body)
        return {"ok": True, "status": response.status}

    @on_event("notify.*")
    async def notify(self, event: dict[str, Any]) -> None:
        note = parse_notification(event)
        if note is None:
            self.log.warning("dropped a notify event without a title")
            return
        await self._post(notification_body(note, datetime.now(UTC)))

    @command("discord.send")
    async def send(self, text: str = "Hello from Plugport") -> dict[str, Any]:
        """Post ``text`` as a plain message: the operator's check that the webhook works."""
        return await self._post(text_body(text))
