"""What Discord's answer to a webhook execution means, without I/O: ``204`` (or ``200`` with
``?wait=true``) is success; its JSON error codes become a :class:`DiscordError` that says what
to do (for a refused webhook: the exact ``plugport secret set`` command)."""

from __future__ import annotations

import json
from typing import Any

from discord_plugin.embeds import describe_errors

SET_URL = "plugport secret set plugport.discord incoming"
UNKNOWN_WEBHOOK = 10015
INVALID_WEBHOOK_TOKEN = 50027
INVALID_FORM_BODY = 50035


class DiscordError(Exception):
    """Discord refused or failed the message; ``code`` is Discord's JSON error code (0 if
    none) and ``status`` the HTTP status."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def check_answer(status: int, body: bytes) -> None:
    """Return when Discord took the message; raise :class:`DiscordError` otherwise."""
    if status in (200, 204):
        return
    answer = _json(body)
    code = answer.get("code") if isinstance(answer.get("code"), int) else 0
    message = str(answer.get("message") or body.decode("utf-8", errors="replace")[:200])
    if code in (UNKNOWN_WEBHOOK, INVALID_WEBHOOK_TOKEN) or status in (401, 404):
        raise DiscordError(
            status,
            code,
            f"Discord refused the webhook URL ({code} {message}); it was deleted or its token "
            f"reset: set the current one with `{SET_URL}`",
        )
    if status == 429:
        raise DiscordError(
            status, code, "Discord kept rate-limiting the webhook (HTTP 429) after the retries"
        )
    if status >= 500:
        raise DiscordError(
            status, code, f"Discord failed the request (HTTP {status}) after the retries"
        )
    if status == 403 and not answer:
        raise DiscordError(status, code, f"Discord's edge refused the client (HTTP 403: {message})")
    details = "; ".join(describe_errors(answer.get("errors"))[:5])
    raise DiscordError(
        status,
        code,
        f"Discord refused the message ({code} {message})" + (f": {details}" if details else ""),
    )
