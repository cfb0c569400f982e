"""A local fake of Discord's webhook execution (``POST /api/webhooks/{id}/{token}``, also under
``/api/v10/``): ``content`` and ``embeds`` checked against Discord's limits, ``?wait=true``
answered with the message object (else ``204``), Discord's JSON error bodies (``50035 Invalid
Form Body`` with per-field ``errors``, ``10015 Unknown Webhook``, ``50027 Invalid Webhook
Token``) and its per-route rate limits: ``X-RateLimit-*`` headers on every answer, and a 429
with ``Retry-After`` and a JSON body once a bucket is spent.

Shapes follow Discord's developer documentation:
https://discord.com/developers/docs/resources/webhook#execute-webhook,
https://discord.com/developers/docs/resources/message#embed-object-embed-limits,
https://discord.com/developers/docs/topics/rate-limits,
https://discord.com/developers/docs/topics/opcodes-and-status-codes#json and
https://discord.com/developers/docs/reference#user-agent (a client must send a User-Agent;
Discord's edge refuses clients without one).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from plugport.testing.services._service import FakeService, Refusal, Reply, ServiceRequest, route

__all__ = ["FakeDiscord", "embed_errors"]

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_TOTAL = 6000  # all titles, descriptions, field names/values, footers, authors together
LIMITS = {"title": 256, "description": 4096, "footer.text": 2048, "author.name": 256}
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_COLOR = 0xFFFFFF
BUCKET_LIMIT = 5  # requests per webhook per window, as Discord answers for webhooks
BUCKET_WINDOW_S = 2.0


def _error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


def _too_long(limit: int) -> dict[str, Any]:
    return _error("BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _required() -> dict[str, Any]:
    return _error("BASE_TYPE_REQUIRED", "This field is required")


def embed_errors(payload: dict[str, Any]) -> dict[str, Any]:
    """Discord's ``errors`` tree for a webhook body (empty when Discord takes it): keys follow
    the JSON path (``embeds`` -> ``"0"`` -> ``title``), leaves are ``{"_errors": [...]}``."""
    errors: dict[str, Any] = {}
    content = payload.get("content")
    if content is not None and (not isinstance(content, str) or len(content) > MAX_CONTENT):
        errors["content"] = _too_long(MAX_CONTENT)
    embeds = payload.get("embeds")
    if embeds is None:
        return errors
    if not isinstance(embeds, list):
        errors["embeds"] = _error("LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        return errors
    if len(embeds) > MAX_EMBEDS:
        errors["embeds"] = _too_long(MAX_EMBEDS)
        return errors
    total = 0
    for index, embed in enumerate(embeds):
        found, size = _one_embed_errors(embed)
        total += size
        if found:
            errors.setdefault("embeds", {})[str(index)] = found
    if not errors and total > MAX_TOTAL:
        errors["embeds"] = _error(
            "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {MAX_TOTAL}"
        )
    return errors


def _one_embed_errors(embed: Any) -> tuple[dict[str, Any], int]:  # noqa: PLR0912 - a check a limit
    """One embed's ``errors`` subtree, and the characters it counts towards the total."""
    if not isinstance(embed, dict):
        return _error("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"), 0
    found: dict[str, Any] = {}
    total = 0
    for key, limit in LIMITS.items():
        outer, _, inner = key.partition(".")
        value = embed.get(outer)
        if inner and isinstance(value, dict):
            value = value.get(inner)
            if value is None:
                found[outer] = {inner: _required()}
                continue
        elif inner:
            continue
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit:
            found[outer] = {inner: _too_long(limit)} if inner else _too_long(limit)
        else:
            total += len(value)
    color = embed.get("color")
    if color is not None and (
        not isinstance(color, int) or isinstance(color, bool) or not 0 <= color <= MAX_COLOR
    ):
        found["color"] = (
            _error("NUMBER_TYPE_MAX", f"int value should be <= {MAX_COLOR} and >= 0.")
            if isinstance(color, int) and not isinstance(color, bool)
            else _error("NUMBER_TYPE_COERCE", f'Value "{color}" is not int.')
        )
    url = embed.get("url")
    if url is not None and (not isinstance(url, str) or not url.startswith("http")):
        found["url"] = _error("URL_TYPE_INVALID_URL", "Not a well formed URL.")
    stamp = embed.get("timestamp")
    if stamp is not None and not _is_iso8601(stamp):
        found["timestamp"] = _error(
            "DATE_TIME_TYPE_PARSE", f"Could not parse {stamp}. Should be ISO8601."
        )
    fields = embed.get("fields", [])
    if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
        found["fields"] = _too_long(MAX_FIELDS)
        return found, total
    for i, item in enumerate(fields):
        problems: dict[str, Any] = {}
        for key, limit in (("name", MAX_FIELD_NAME), ("value", MAX_FIELD_VALUE)):
            value = item.get(key) if isinstance(item, dict) else None
            if not isinstance(value, str) or not value:
                problems[key] = _required()
            elif len(value) > limit:
                problems[key] = _too_long(limit)
            else:
                total += len(value)
        if problems:
            found.setdefault("fields", {})[str(i)] = problems
    return found, total


def _is_iso8601(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@dataclass
class _Webhook:
    id: str
    token: str
    channel_id: str
    name: str
    sent: list[float] = field(default_factory=list)  # request times in the current window


class FakeDiscord(FakeService):
    """Discord's webhook execution. :meth:`webhook_url` makes a webhook it accepts;
    :attr:`messages` holds what was posted (message objects, oldest first)."""

    hosts: ClassVar[tuple[str, ...]] = ("discord.com",)
    name: ClassVar[str] = "discord"

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.user_agents: list[str] = []
        self._webhooks: dict[str, _Webhook] = {}
        self._snowflake = 1_180_000_000_000_000_000
        self._current = threading.local()

    def webhook_url(self, name: str = "Plugport", channel_id: str = "1180000000000000001") -> str:
        """A new webhook's URL, as the channel settings show it."""
        webhook = _Webhook(self._next_id(), secrets.token_urlsafe(51), channel_id, name)
        with self._lock:
            self._webhooks[webhook.id] = webhook
        return f"https://discord.com/api/webhooks/{webhook.id}/{webhook.token}"

    def _next_id(self) -> str:
        with self._lock:
            self._snowflake += secrets.randbelow(10**6) + 1
            return str(self._snowflake)

    # --- how Discord shapes answers -------------------------------------------------------

    def handle(self, request: ServiceRequest) -> Reply:
        self._current.bucket = request.path.rsplit("/", 1)[0]
        return super().handle(request)

    def error_reply(self, status: int, message: str) -> Reply:
        if status == 429:
            return Reply(
                429,
                json={
                    "message": "You are being rate limited.",
                    "retry_after": 0.5,
                    "global": False,
                },
                headers={"X-RateLimit-Scope": "shared"},
            )
        if status == 404:
            return Reply(404, json={"message": "404: Not Found", "code": 0})
        if status >= 500:
            return Reply(status, json={"message": f"{status}: {message.title()}", "code": 0})
        return Reply(status, json={"message": message, "code": 0})

    def rate_limit_headers(self, retry_after_s: int) -> dict[str, str]:
        now = time.time()
        return {
            "Retry-After": str(retry_after_s),
            "X-RateLimit-Limit": str(BUCKET_LIMIT),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{now + retry_after_s:.3f}",
            "X-RateLimit-Reset-After": f"{float(retry_after_s):.3f}",
            "X-RateLimit-Bucket": self._bucket_hash(),
        }

    def _bucket_hash(self) -> str:
        key = getattr(self._current, "bucket", "")
        return format(abs(hash(key)) % 16**32, "032x")

    def _spend(self, webhook: _Webhook) -> tuple[dict[str, str], Reply | None]:
        """The bucket's headers after this request, and a 429 when it is spent."""
        now = time.time()
        with self._lock:
            webhook.sent = [t for t in webhook.sent if now - t < BUCKET_WINDOW_S]
            window_start = webhook.sent[0] if webhook.sent else now
            reset_after = max(0.0, window_start + BUCKET_WINDOW_S - now)
            spent = len(webhook.sent) >= BUCKET_LIMIT
            if not spent:
                webhook.sent.append(now)
            remaining = max(0, BUCKET_LIMIT - len(webhook.sent))
        headers = {
            "X-RateLimit-Limit": str(BUCKET_LIMIT),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{now + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": self._bucket_hash(),
        }
        if not spent:
            return headers, None
        retry = round(reset_after, 3)
        return headers, Reply(
            429,
            json={"message": "You are being rate limited.", "retry_after": retry, "global": False},
            headers={
                **headers,
                "Retry-After": str(max(1, int(reset_after + 0.999))),
                "X-RateLimit-Scope": "user",
            },
        )

    @route("POST", r"/api(?:/v(?P<version>\d+))?/webhooks/(?P<id>\d+)/(?P<token>[\w.-]+)")
    def execute(self, request: ServiceRequest) -> Reply:
        agent = request.headers.get("user-agent", "")
        if not agent:
            # Discord's edge (Cloudflare) refuses a client that names itself nothing.
            return Reply(403, body=b"error code: 1010", headers={"Content-Type": "text/plain"})
        with self._lock:
            self.user_agents.append(agent)
            webhook = self._webhooks.get(request.params["id"])
        if webhook is None:
            return Reply(404, json={"message": "Unknown Webhook", "code": 10015})
        if not secrets.compare_digest(request.params["token"].encode(), webhook.token.encode()):
            return Reply(401, json={"message": "Invalid Webhook Token", "code": 50027})
        headers, throttled = self._spend(webhook)
        if throttled is not None:
            return throttled
        payload = self._payload(request, headers)
        message = self._message(webhook, payload)
        with self._lock:
            self.messages.append(message)
        if request.query.get("wait", "false").lower() == "true":
            return Reply(200, json=message, headers=headers)
        return Reply(204, headers=headers)

    def _payload(self, request: ServiceRequest, headers: dict[str, str]) -> dict[str, Any]:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise Refusal(
                Reply(
                    400,
                    json={"message": "Cannot send an empty message", "code": 50006},
                    headers=headers,
                )
            )
        try:
            payload = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise Refusal(
                Reply(
                    400,
                    json={"message": "The request body contains invalid JSON.", "code": 50109},
                    headers=headers,
                )
            ) from None
        if not isinstance(payload, dict):
            raise Refusal(
                Reply(400, json={"message": "Invalid Form Body", "code": 50035}, headers=headers)
            )
        errors = embed_errors(payload)
        if errors:
            raise Refusal(
                Reply(
                    400,
                    json={"code": 50035, "errors": errors, "message": "Invalid Form Body"},
                    headers=headers,
                )
            )
        if not payload.get("content") and not payload.get("embeds"):
            raise Refusal(
                Reply(
                    400,
                    json={"message": "Cannot send an empty message", "code": 50006},
                    headers=headers,
                )
            )
        return payload

    def _message(self, webhook: _Webhook, payload: dict[str, Any]) -> dict[str, Any]:
        """The message object Discord returns for ``?wait=true``."""
        now = datetime.now(UTC).isoformat()
        embeds = [{"type": "rich", **embed} for embed in payload.get("embeds", [])]
        return {
            "id": self._next_id(),
            "type": 0,
            "content": payload.get("content", ""),
            "channel_id": webhook.channel_id,
            "author": {
                "bot": True,
                "id": webhook.id,
                "username": payload.get("username") or webhook.name,
                "avatar": None,
                "discriminator": "0000",
            },
            "attachments": [],
            "embeds": embeds,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "mention_everyone": False,
            "tts": bool(payload.get("tts", False)),
            "timestamp": now,
            "edited_timestamp": None,
            "flags": int(payload.get("flags", 0) or 0),
            "components": [],
            "webhook_id": webhook.id,
        }
