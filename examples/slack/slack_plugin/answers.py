"""What Slack's answers mean, without I/O. The Web API reports errors as HTTP 200 with
``{"ok": false, "error": ...}`` and webhooks as plain-text 4xx bodies; both become a
:class:`SlackError` whose message tells the operator what to do (for a refused credential:
the exact ``plugport secret set`` command)."""

from __future__ import annotations

import json
from typing import Any

PLUGIN = "plugport.slack"

# Web API error codes that mean the token itself is wrong, revoked or missing.
TOKEN_ERRORS = frozenset(
    {"not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired"}
)


class SlackError(Exception):
    """Slack refused or failed a request; ``code`` is Slack's error code or the HTTP status."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _set_secret(name: str) -> str:
    return f"plugport secret set {PLUGIN} {name}"


def _transient(status: int, what: str) -> SlackError | None:
    if status == 429:
        return SlackError(
            "ratelimited",
            f"Slack kept rate-limiting {what} (HTTP 429) after the retries; try later",
        )
    if status >= 500:
        return SlackError(str(status), f"Slack failed {what} (HTTP {status}) after the retries")
    return None


def web_api_result(
    method: str, status: int, body: bytes, required: tuple[str, ...]
) -> dict[str, Any]:
    """The JSON of a successful Web API answer to ``method``, holding every ``required`` key;
    anything else raises :class:`SlackError`."""
    failed = _transient(status, method)
    if failed is not None:
        raise failed
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise SlackError(
            "malformed", f"Slack's answer to {method} is not JSON (HTTP {status})"
        ) from None
    if not isinstance(answer, dict) or "ok" not in answer:
        raise SlackError("malformed", f"Slack's answer to {method} has no 'ok' field")
    if answer["ok"] is not True:
        raise _web_api_error(method, str(answer.get("error") or "unknown_error"), answer)
    missing = [key for key in required if key not in answer]
    if missing:
        raise SlackError("malformed", f"Slack's answer to {method} is missing {', '.join(missing)}")
    return answer


def _web_api_error(method: str, error: str, answer: dict[str, Any]) -> SlackError:
    if error in TOKEN_ERRORS:
        return SlackError(
            error,
            f"Slack refused the bot token ({error}); set a valid one (xoxb-...) with "
            f"`{_set_secret('bot')}`",
        )
    if error in ("channel_not_found", "not_in_channel"):
        return SlackError(
            error,
            f"Slack says {error} for the configured channel: check the `channel` setting and "
            "invite the app to the channel (/invite @YourApp)",
        )
    if error == "missing_scope":
        needed = answer.get("needed", "")
        return SlackError(
            error, f"the bot token lacks a scope for {method}: add {needed} and reinstall the app"
        )
    detail = ""
    messages = (
        answer.get("response_metadata", {}).get("messages")
        if isinstance(answer.get("response_metadata"), dict)
        else None
    )
    if isinstance(messages, list) and messages:
        detail = ": " + "; ".join(str(m) for m in messages[:3])
    return SlackError(error, f"Slack refused {method} ({error}){detail}")


def webhook_result(what: str, status: int, body: bytes, credential: str | None) -> None:
    """Check an incoming webhook's (or response URL's) plain-text answer; ``ok`` is success."""
    failed = _transient(status, what)
    if failed is not None:
        raise failed
    text = body.decode("utf-8", errors="replace").strip()
    if status == 200:
        return
    if status in (403, 404) and credential is not None:
        raise SlackError(
            text or str(status),
            f"Slack refused the incoming webhook URL ({status} {text}): it was removed or "
            f"revoked; set the current one with `{_set_secret(credential)}`",
        )
    if status == 410:
        raise SlackError(text, f"the webhook's channel is archived ({text}); make a new webhook")
    raise SlackError(text or str(status), f"Slack refused {what} (HTTP {status}: {text[:200]})")
