"""Slack for Plugport: every ``notify.*`` event becomes a Block Kit message, posted with the bot
token (``chat.postMessage``) or through an incoming webhook, as the operator chose; operators
can send a test message and list channels; ``/plugport`` in Slack is answered through the
command's ``response_url``; as a task processor it posts ``SLACK_POST`` tasks (a workflow's
last step, e.g. release notes from the GitHub plugin). The plugin never holds the token, the
webhook URL or the signing secret: the host injects and checks them."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from plugport.sdk import Plugin, RetryPolicy, Task, WebhookEvent, command, on_event, task, webhook
from plugport.sdk.notify import parse_notification
from slack_plugin.answers import SlackError, web_api_result, webhook_result
from slack_plugin.blocks import (
    FALLBACK_MAX,
    cut,
    fallback_text,
    markdown_blocks,
    markdown_to_mrkdwn,
    notification_blocks,
    slash_reply,
    text_blocks,
)

API = "https://slack.com/api/"
MAX_PAGES = 50  # conversations.list pages followed at most (50 x page_size channels)
TYPES = "public_channel,private_channel"
JSON_UTF8 = {"Content-Type": "application/json; charset=utf-8"}


class SlackPlugin(Plugin):
    async def _settings(self) -> dict[str, Any]:
        return dict(await self.api.config.get())

    def _policy(self, settings: dict[str, Any]) -> RetryPolicy:
        """Retries from the settings. A 429 is always retried (Slack did not act on it); a 5xx
        to a POST only with ``resend_on_server_error``: Slack has no idempotency key, so a
        resend after a 5xx may post twice, which for a notification beats losing it."""
        return RetryPolicy(
            attempts=int(settings["retry_attempts"]),
            budget_s=float(settings["retry_budget_s"]),
            base_s=float(settings["retry_base_s"]),
            retry_unsafe=bool(settings["resend_on_server_error"]),
        )

    async def _post(self, text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
        settings = await self._settings()
        policy = self._policy(settings)
        if settings["via"] == "webhook":
            response = await self.api.net.fetch(
                method="POST",
                headers=JSON_UTF8,
                body=json.dumps({"text": text, "blocks": blocks}).encode(),
                credential="incoming",
                retry=policy,
            )
            webhook_result("the incoming webhook", response.status, response.body, "incoming")
            return {"ok": True, "via": "webhook"}
        answer = await self._post_message(settings["channel"], text, blocks, policy)
        return {"ok": True, "via": "bot", **answer}

    async def _post_message(
        self, channel: str, text: str, blocks: list[dict[str, Any]], policy: RetryPolicy
    ) -> dict[str, Any]:
        """``chat.postMessage`` with the bot token: ``{"channel", "ts"}`` of the message."""
        message = {"channel": channel, "text": text, "blocks": blocks, "unfurl_links": False}
        response = await self.api.net.fetch(
            API + "chat.postMessage",
            method="POST",
            headers=JSON_UTF8,
            body=json.dumps(message).encode(),
            credential="bot",
            retry=policy,
        )
        answer = web_api_result(
            "chat.postMessage", response.status, response.body, ("channel", "ts")
        )
        return {"channel": answer["channel"], "ts": answer["ts"]}

    @task("SLACK_POST")
    async def post_task(self, t: Task) -> dict[str, Any]:
        """Post ``text`` (mrkdwn) or ``markdown`` (converted) to ``channel``, with the
        payload's own ``blocks`` when given, always with the bot token: an incoming webhook
        cannot choose the channel. Slack has no idempotency key, so the manifest keeps the
        attempts few (a retry after a lost answer may post twice)."""
        payload = t.payload
        settings = await self._settings()
        if "markdown" in payload:
            text = markdown_to_mrkdwn(str(payload["markdown"]))
            blocks = markdown_blocks(str(payload["markdown"]))
        else:
            text = str(payload["text"])
            blocks = text_blocks(text)
        blocks = list(payload.get("blocks") or blocks)
        await self.api.tasks.progress(10, f"posting to {payload['channel']}")
        answer = await self._post_message(
            str(payload["channel"]), cut(text, FALLBACK_MAX), blocks, self._policy(settings)
        )
        await self.api.tasks.progress(100, "posted")
        return answer

    @on_event("notify.*")
    async def notify(self, event: dict[str, Any]) -> None:
        note = parse_notification(event)
        if note is None:
            self.log.warning("dropped a notify event without a title")
            return
        await self._post(fallback_text(note), notification_blocks(note))

    @command("slack.send")
    async def send(self, text: str = "Hello from Plugport") -> dict[str, Any]:
        """Post ``text`` where notifications go: the operator's check that the setup works."""
        return await self._post(text, text_blocks(text))

    @command("slack.channels")
    async def channels(self) -> dict[str, Any]:
        """The channels the bot can see, following Slack's cursor pages to the end."""
        settings = await self._settings()
        policy = self._policy(settings)
        found: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(MAX_PAGES):
            query = f"limit={int(settings['page_size'])}&exclude_archived=true&types={TYPES}"
            if cursor:
                query += f"&cursor={cursor}"
            response = await self.api.net.fetch(
                f"{API}conversations.list?{query}", credential="bot", retry=policy
            )
            answer = web_api_result(
                "conversations.list", response.status, response.body, ("channels",)
            )
            for channel in answer["channels"]:
                if not isinstance(channel, dict) or "id" not in channel or "name" not in channel:
                    raise SlackError("malformed", "a channel in Slack's answer has no id or name")
                found.append(
                    {
                        "id": channel["id"],
                        "name": channel["name"],
                        "is_private": bool(channel.get("is_private")),
                        "is_member": bool(channel.get("is_member")),
                    }
                )
            metadata = answer.get("response_metadata")
            cursor = metadata.get("next_cursor", "") if isinstance(metadata, dict) else ""
            if not cursor:
                return {"channels": found}
        raise SlackError(
            "too_many_pages", f"more than {MAX_PAGES} pages of channels; raise page_size"
        )

    @webhook("command")
    async def slash_command(self, event: WebhookEvent) -> None:
        """``/plugport status|help``, verified by the host (Slack's signature). Slack wants an
        answer within 3 s; the host acknowledges at once and the reply goes to ``response_url``."""
        form = _form(event.body)
        response_url = form.get("response_url", "")
        if not _is_response_url(response_url):
            raise SlackError(
                "malformed",
                "the slash command has no valid response_url (https://hooks.slack.com/commands/...)",
            )
        if not form.get("command"):
            raise SlackError("malformed", "the slash command body has no 'command' field")
        settings = await self._settings()
        reply = slash_reply(form.get("text", ""), via=settings["via"], channel=settings["channel"])
        response = await self.api.net.fetch(
            response_url,
            method="POST",
            headers=JSON_UTF8,
            body=json.dumps(reply).encode(),
            retry=self._policy(settings),
        )
        webhook_result("the slash command's response_url", response.status, response.body, None)


def _form(body: bytes) -> dict[str, str]:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return {}


def _is_response_url(url: str) -> bool:
    """Only Slack's own response URLs: the plugin must not be steered to post elsewhere."""
    parts = urlsplit(url)
    return (
        parts.scheme == "https"
        and parts.hostname == "hooks.slack.com"
        and parts.port is None
        and parts.path.startswith("/commands/")
    )
