"""A local fake of Slack: the Web API methods an integration posts with (``chat.postMessage``,
``auth.test``, ``conversations.list`` with cursor pages), incoming webhooks, slash-command
``response_url`` endpoints, and the sender side of a slash command (signed as Slack signs).

The rule it protects: Slack's Web API answers errors as HTTP 200 with ``{"ok": false, "error":
...}`` (only a rate limit is a 429), while its webhooks answer errors as plain-text bodies with
4xx statuses; a plugin must handle both, so the fake answers exactly so.

Shapes follow Slack's public references:
https://api.slack.com/methods/chat.postMessage, https://api.slack.com/methods/auth.test,
https://api.slack.com/methods/conversations.list, https://api.slack.com/apis/pagination,
https://api.slack.com/docs/rate-limits, https://api.slack.com/messaging/webhooks
(handling errors), https://api.slack.com/reference/block-kit/blocks,
https://api.slack.com/interactivity/slash-commands and
https://api.slack.com/authentication/verifying-requests-from-slack.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

from plugport.testing.services._service import (
    FakeService,
    Refusal,
    Reply,
    Sent,
    ServiceRequest,
    route,
    send,
)

__all__ = ["FakeSlack", "SlackChannel", "block_kit_errors", "slash_command_delivery"]

TEAM_ID = "T0PLUGPORT"
TEAM_DOMAIN = "plugport-test"
BOT_USER_ID = "U0PLUGBOT"
BOT_ID = "B0PLUGBOT"

MAX_TEXT_CHARS = 40_000  # chat.postMessage: longer text is msg_too_long
MAX_BLOCKS = 50  # per message (Block Kit reference)
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_URL = 3000
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_LIST_LIMIT = 1000  # conversations.list: ``limit`` is capped at 1000
DEFAULT_LIST_LIMIT = 100

SUPPORTED_BLOCKS = frozenset({"header", "section", "divider", "context", "actions"})
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})


@dataclass
class SlackChannel:
    """A conversation as ``conversations.list`` describes it."""

    id: str
    name: str
    is_private: bool = False
    is_archived: bool = False
    is_member: bool = True
    topic: str = ""
    purpose: str = ""
    created: int = 1_700_000_000

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.name == "general",
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": TEAM_ID,
            "creator": "U0CREATOR",
            "is_member": self.is_member,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
            "previous_names": [],
            "num_members": 3,
        }


@dataclass
class _Webhook:
    channel: str
    revoked: bool = False


@dataclass
class _ResponseUrl:
    channel: str
    uses: int = 0
    expires_at: float = field(default_factory=lambda: time.time() + 30 * 60)


# --- Block Kit: what Slack refuses (pure) ------------------------------------------------------


def block_kit_errors(blocks: Any) -> list[str]:
    """The errors Slack gives for ``blocks`` (``"message [json-pointer:/blocks/0/...]"``), or
    an empty list when Slack would take them. Covers the blocks the fake supports: header,
    section, divider, context, actions (buttons)."""
    if not isinstance(blocks, list):
        return ["must provide an array [json-pointer:/blocks]"]
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for index, block in enumerate(blocks):
        errors.extend(_block_errors(block, f"/blocks/{index}"))
    return errors


def _block_errors(block: Any, at: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"must provide an object [json-pointer:{at}]"]
    kind = block.get("type")
    if kind not in SUPPORTED_BLOCKS:
        return [f"must be a valid enum value [json-pointer:{at}/type]"]
    errors: list[str] = []
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > 255):
        errors.append(f"must be a string of at most 255 characters [json-pointer:{at}/block_id]")
    if kind == "header":
        errors.extend(_text_errors(block.get("text"), f"{at}/text", MAX_HEADER_TEXT, plain=True))
    elif kind == "section":
        errors.extend(_section_errors(block, at))
    elif kind in ("context", "actions"):
        errors.extend(_elements_errors(block.get("elements"), kind, at))
    return errors


def _elements_errors(elements: Any, kind: str, at: str) -> list[str]:
    """A context block's text elements or an actions block's buttons."""
    most = MAX_CONTEXT_ELEMENTS if kind == "context" else MAX_ACTIONS_ELEMENTS
    if not isinstance(elements, list) or not 1 <= len(elements) <= most:
        return [f"must provide 1 to {most} items [json-pointer:{at}/elements]"]
    errors: list[str] = []
    for i, element in enumerate(elements):
        where = f"{at}/elements/{i}"
        if kind == "context":
            errors.extend(_text_errors(element, where, MAX_SECTION_TEXT))
        else:
            errors.extend(_button_errors(element, where))
    return errors


def _section_errors(block: dict[str, Any], at: str) -> list[str]:
    errors: list[str] = []
    text, fields = block.get("text"), block.get("fields")
    if text is None and fields is None:
        return [f"must provide either text or fields [json-pointer:{at}]"]
    if text is not None:
        errors.extend(_text_errors(text, f"{at}/text", MAX_SECTION_TEXT))
    if fields is not None:
        if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_SECTION_FIELDS:
            errors.append(
                f"must provide 1 to {MAX_SECTION_FIELDS} items [json-pointer:{at}/fields]"
            )
        else:
            for i, item in enumerate(fields):
                errors.extend(_text_errors(item, f"{at}/fields/{i}", MAX_FIELD_TEXT))
    accessory = block.get("accessory")
    if accessory is not None:
        errors.extend(_button_errors(accessory, f"{at}/accessory"))
    return errors


def _text_errors(obj: Any, at: str, limit: int, *, plain: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"must provide an object [json-pointer:{at}]"]
    kind = obj.get("type")
    if kind not in TEXT_TYPES or (plain and kind != "plain_text"):
        allowed = "plain_text" if plain else "plain_text, mrkdwn"
        return [f"must be one of: {allowed} [json-pointer:{at}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be more than 0 characters [json-pointer:{at}/text]"]
    if len(text) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{at}/text]"]
    if "emoji" in obj and kind != "plain_text":
        return [f"is not allowed for mrkdwn [json-pointer:{at}/emoji]"]
    return []


def _button_errors(element: Any, at: str) -> list[str]:
    if not isinstance(element, dict) or element.get("type") != "button":
        return [f"must be a supported element type: button [json-pointer:{at}/type]"]
    errors = _text_errors(element.get("text"), f"{at}/text", MAX_BUTTON_TEXT, plain=True)
    url = element.get("url")
    if url is not None and (not isinstance(url, str) or len(url) > MAX_URL or not url):
        errors.append(f"must be a string of at most {MAX_URL} characters [json-pointer:{at}/url]")
    style = element.get("style")
    if style is not None and style not in ("primary", "danger"):
        errors.append(f"must be one of: primary, danger [json-pointer:{at}/style]")
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
        errors.append(f"must be at most 255 characters [json-pointer:{at}/action_id]")
    return errors


# --- the sender side: a signed slash command --------------------------------------------------


def slash_command_delivery(
    secret: str,
    command: str,
    text: str,
    *,
    response_url: str,
    user_name: str = "ada",
    channel_id: str = "C0GENERAL",
    channel_name: str = "general",
    now: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers Slack sends to a slash command's Request URL: the form fields Slack
    documents, signed ``v0=hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))``."""
    form = {
        "token": "gIkuvaNzQIHg97ATvDxqgjtO",  # Slack's deprecated verification token (unused)
        "team_id": TEAM_ID,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": "U0ADA",
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": "A0PLUGPORT",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(8)}",
    }
    body = urlencode(form).encode()
    timestamp = str(int(now if now is not None else time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }
    return body, headers


# --- the fake ---------------------------------------------------------------------------------


class FakeSlack(FakeService):
    """Slack's Web API, incoming webhooks and response URLs on one local server. Tests read
    :attr:`messages` (channel id -> posted messages, through any route) and add state with
    :meth:`add_channel`, :meth:`incoming_webhook` and :meth:`response_url`."""

    hosts: ClassVar[tuple[str, ...]] = ("slack.com", "hooks.slack.com")
    name: ClassVar[str] = "slack"

    def __init__(self, bot_token: str = "xoxb-test") -> None:  # noqa: S107 - a fake's stand-in
        super().__init__()
        self.bot_token = bot_token
        """The one bot token the Web API accepts; any other is ``invalid_auth``."""
        self.channels: dict[str, SlackChannel] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.responses: list[dict[str, Any]] = []
        """What reached response URLs, in order (each with its ``channel``)."""
        self._webhooks: dict[str, _Webhook] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._ts = 1_700_000_000
        self._current = threading.local()
        self.add_channel("general", id="C0GENERAL")

    # --- state a test sets up -------------------------------------------------------------

    def add_channel(
        self,
        name: str,
        *,
        id: str | None = None,
        is_private: bool = False,
        is_archived: bool = False,
        is_member: bool = True,
        topic: str = "",
    ) -> SlackChannel:
        channel = SlackChannel(
            id or "C" + secrets.token_hex(5).upper(),
            name,
            is_private=is_private,
            is_archived=is_archived,
            is_member=is_member,
            topic=topic,
        )
        with self._lock:
            self.channels[channel.id] = channel
        return channel

    def incoming_webhook(self, channel: str = "general") -> str:
        """A new incoming-webhook URL that posts to ``channel`` (a name or id), as Slack shows
        it to the workspace admin: ``https://hooks.slack.com/services/T…/B…/<secret>``."""
        found = self._find_channel(channel)
        if found is None:
            raise ValueError(f"no channel {channel!r}: add_channel() it first")
        path = f"/services/{TEAM_ID}/B{secrets.token_hex(5).upper()}/{secrets.token_urlsafe(18)}"
        with self._lock:
            self._webhooks[path] = _Webhook(found.id)
        return "https://hooks.slack.com" + path

    def revoke(self, webhook_url: str) -> None:
        """The admin removed the webhook: Slack then answers ``403 invalid_token``."""
        with self._lock:
            self._webhooks[urlsplit(webhook_url).path].revoked = True

    def response_url(self, channel: str = "general") -> str:
        """A slash command's ``response_url`` (usable 5 times within 30 minutes)."""
        found = self._find_channel(channel)
        if found is None:
            raise ValueError(f"no channel {channel!r}: add_channel() it first")
        path = f"/commands/{TEAM_ID}/{secrets.randbelow(10**12)}/{secrets.token_urlsafe(18)}"
        with self._lock:
            self._response_urls[path] = _ResponseUrl(found.id)
        return "https://hooks.slack.com" + path

    def slash_command(
        self,
        url: str,
        secret: str,
        command: str,
        text: str,
        *,
        response_url: str | None = None,
        now: float | None = None,
    ) -> Sent:
        """Send a slash command to ``url`` (a Plugport webhook endpoint) as Slack does."""
        body, headers = slash_command_delivery(
            secret, command, text, response_url=response_url or self.response_url(), now=now
        )
        return send(url, body, headers)

    def posted(self, channel: str = "general") -> list[dict[str, Any]]:
        """The messages posted to ``channel`` (a name or id), oldest first."""
        found = self._find_channel(channel)
        with self._lock:
            return list(self.messages.get(found.id if found else channel, []))

    # --- how Slack shapes answers ---------------------------------------------------------

    def handle(self, request: ServiceRequest) -> Reply:
        self._current.path = request.path
        return super().handle(request)

    def _is_hook(self) -> bool:
        path = getattr(self._current, "path", "")
        return path.startswith(("/services/", "/commands/"))

    def error_reply(self, status: int, message: str) -> Reply:
        if self._is_hook():
            text = {429: "rate_limited", 404: "no_service", 403: "invalid_token"}.get(status)
            return _text(status, text or message.replace(" ", "_"))
        if status == 429:
            return Reply(429, json={"ok": False, "error": "ratelimited"})
        if status == 404:
            return Reply(404, json={"ok": False, "error": "unknown_method"})
        if status >= 500:
            return _text(status, "<html><body>Slack is having trouble</body></html>", "text/html")
        return Reply(status, json={"ok": False, "error": message.replace(" ", "_")})

    def _fail(self, error: str, **extra: Any) -> Refusal:
        return Refusal(Reply(200, json={"ok": False, "error": error, **extra}))

    def _arguments(self, request: ServiceRequest) -> dict[str, Any]:
        """A Web API call's arguments: the query, then a form or JSON body (Slack takes all)."""
        arguments: dict[str, Any] = dict(request.query)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json" and request.body:
            try:
                body = request.json()
            except (ValueError, UnicodeDecodeError):
                raise self._fail("invalid_json") from None
            if not isinstance(body, dict):
                raise self._fail("invalid_json")
            arguments.update(body)
        elif request.body:
            arguments.update(request.form())
        return arguments

    def _authorize(self, request: ServiceRequest, arguments: dict[str, Any]) -> None:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else arguments.get("token")
        if not token:
            raise self._fail("not_authed")
        if not hmac.compare_digest(str(token).encode(), self.bot_token.encode()):
            raise self._fail("invalid_auth")

    def _find_channel(self, key: str) -> SlackChannel | None:
        key = key.lstrip("#")
        with self._lock:
            if key in self.channels:
                return self.channels[key]
            return next((c for c in self.channels.values() if c.name == key), None)

    def _next_ts(self) -> str:
        with self._lock:
            self._ts += 1
            return f"{self._ts}.{secrets.randbelow(10**6):06d}"

    def _message_errors(self, payload: dict[str, Any]) -> tuple[str, list[str]] | None:
        """The error code (and Block Kit messages) for a message body, or None."""
        text, blocks = payload.get("text"), payload.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return "invalid_blocks_format", []
            payload["blocks"] = blocks
        if not text and not blocks and not payload.get("attachments"):
            return "no_text", []
        if text is not None and not isinstance(text, str):
            return "invalid_arguments", []
        if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
            return "msg_too_long", []
        if blocks is not None:
            problems = block_kit_errors(blocks)
            if problems:
                return "invalid_blocks", problems
        return None

    # --- the Web API ----------------------------------------------------------------------

    @route("POST", r"/api/chat\.postMessage")
    def post_message(self, request: ServiceRequest) -> Reply:
        arguments = self._arguments(request)
        self._authorize(request, arguments)
        channel = self._find_channel(str(arguments.get("channel") or ""))
        if channel is None:
            raise self._fail("channel_not_found")
        if channel.is_archived:
            raise self._fail("is_archived")
        if not channel.is_member:
            raise self._fail("not_in_channel")
        problem = self._message_errors(arguments)
        if problem is not None:
            error, messages = problem
            extra: dict[str, Any] = {}
            if messages:
                extra = {
                    "errors": messages,
                    "response_metadata": {"messages": [f"[ERROR] {m}" for m in messages]},
                }
            raise self._fail(error, **extra)
        ts = self._next_ts()
        message: dict[str, Any] = {
            "user": BOT_USER_ID,
            "type": "message",
            "ts": ts,
            "bot_id": BOT_ID,
            "app_id": "A0PLUGPORT",
            "text": arguments.get("text") or "",
            "team": TEAM_ID,
        }
        if arguments.get("blocks"):
            message["blocks"] = arguments["blocks"]
        with self._lock:
            self.messages.setdefault(channel.id, []).append(
                {**message, "via": "chat.postMessage", "arguments": arguments}
            )
        answer: dict[str, Any] = {"ok": True, "channel": channel.id, "ts": ts, "message": message}
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json") and "charset" not in content_type:
            answer["warning"] = "missing_charset"
            answer["response_metadata"] = {"warnings": ["missing_charset"]}
        return Reply(200, json=answer)

    @route("POST", r"/api/auth\.test")
    @route("GET", r"/api/auth\.test")
    def auth_test(self, request: ServiceRequest) -> Reply:
        self._authorize(request, self._arguments(request))
        return Reply(
            200,
            json={
                "ok": True,
                "url": f"https://{TEAM_DOMAIN}.slack.com/",
                "team": "Plugport Test",
                "user": "plugport",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            },
        )

    @route("GET", r"/api/conversations\.list")
    @route("POST", r"/api/conversations\.list")
    def conversations_list(self, request: ServiceRequest) -> Reply:
        arguments = self._arguments(request)
        self._authorize(request, arguments)
        try:
            limit = int(arguments.get("limit") or DEFAULT_LIST_LIMIT)
        except ValueError:
            raise self._fail("invalid_limit") from None
        limit = max(1, min(limit, MAX_LIST_LIMIT))
        types = str(arguments.get("types") or "public_channel").split(",")
        exclude_archived = str(arguments.get("exclude_archived", "false")).lower() in ("true", "1")
        with self._lock:
            listed = sorted(self.channels.values(), key=lambda c: c.id)
        listed = [
            c
            for c in listed
            if ("private_channel" if c.is_private else "public_channel") in types
            and not (exclude_archived and c.is_archived)
        ]
        start = 0
        cursor = str(arguments.get("cursor") or "")
        if cursor:
            try:
                kind, _, after = base64.b64decode(cursor, validate=True).decode().partition(":")
            except ValueError:
                raise self._fail("invalid_cursor") from None
            if kind != "team":
                raise self._fail("invalid_cursor")
            start = next((i for i, c in enumerate(listed) if c.id > after), len(listed))
        page = listed[start : start + limit]
        more = start + limit < len(listed)
        next_cursor = base64.b64encode(f"team:{page[-1].id}".encode()).decode() if more else ""
        return Reply(
            200,
            json={
                "ok": True,
                "channels": [c.as_json() for c in page],
                "response_metadata": {"next_cursor": next_cursor},
            },
        )

    # --- incoming webhooks and response URLs ----------------------------------------------

    def _hook_payload(self, request: ServiceRequest) -> dict[str, Any]:
        """An incoming webhook's JSON (or the form field ``payload``), else 400
        ``invalid_payload``."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw: bytes | str = request.body
        if kind == "application/x-www-form-urlencoded":
            raw = request.form().get("payload", "")
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise Refusal(_text(400, "invalid_payload")) from None
        if not isinstance(payload, dict):
            raise Refusal(_text(400, "invalid_payload"))
        return payload

    def _hook_checked(self, payload: dict[str, Any], channel_id: str) -> SlackChannel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise Refusal(_text(404, "channel_not_found"))
        if channel.is_archived:
            raise Refusal(_text(410, "channel_is_archived"))
        problem = self._message_errors(payload)
        if problem is not None:
            error = "invalid_blocks" if problem[0].startswith("invalid_blocks") else problem[0]
            raise Refusal(_text(400, error))
        return channel

    @route("POST", r"/services/(?P<team>T\w+)/(?P<bot>B\w+)/(?P<secret>[\w-]+)")
    def incoming(self, request: ServiceRequest) -> Reply:
        with self._lock:
            hook = self._webhooks.get(request.path)
        if hook is None:
            return _text(404, "no_service")
        if hook.revoked:
            return _text(403, "invalid_token")
        payload = self._hook_payload(request)
        channel = self._hook_checked(payload, hook.channel)
        with self._lock:
            self.messages.setdefault(channel.id, []).append(
                {
                    "type": "message",
                    "ts": self._next_ts(),
                    "text": payload.get("text") or "",
                    "blocks": payload.get("blocks"),
                    "via": "incoming-webhook",
                    "arguments": payload,
                }
            )
        return _text(200, "ok")

    @route("POST", r"/commands/(?P<team>T\w+)/(?P<id>\d+)/(?P<secret>[\w-]+)")
    def respond(self, request: ServiceRequest) -> Reply:
        with self._lock:
            target = self._response_urls.get(request.path)
        if target is None or target.expires_at < time.time():
            return _text(404, "expired_url")
        if target.uses >= 5:
            return _text(404, "used_url")
        payload = self._hook_payload(request)
        response_type = payload.get("response_type", "ephemeral")
        if response_type not in ("ephemeral", "in_channel"):
            return _text(400, "invalid_payload")
        self._hook_checked(payload, target.channel)
        with self._lock:
            target.uses += 1
            self.responses.append({**payload, "channel": target.channel})
        return _text(200, "ok")


def _text(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Reply:
    return Reply(status, body=text.encode(), headers={"Content-Type": content_type})
