"""What a Teams webhook's answer means, without I/O. A connector answers ``200`` with body
``1`` (and, for some failures, ``200`` with an error text); a Workflows trigger answers ``202``
and JSON errors. The URL itself is hidden from the plugin (the host redacts it), so the answer
is all there is to go on."""

from __future__ import annotations

import json

SET_URL = "plugport secret set plugport.teams incoming"


class TeamsError(Exception):
    """Teams refused or failed the message; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _detail(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text[:300]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        return f"{error.get('code', '')}: {error.get('message', '')}"[:300]
    return text[:300]


def check_answer(status: int, body: bytes) -> None:
    """Return when Teams took the message; raise :class:`TeamsError` saying what to do."""
    detail = _detail(body)
    if status == 202 or (status == 200 and detail in ("", "1")):
        return
    if status == 200:
        raise TeamsError(status, f"Teams did not deliver the message: {detail}")
    if status in (401, 403, 404, 410):
        raise TeamsError(
            status,
            f"Teams refused the webhook URL (HTTP {status}: {detail}); the webhook or flow was "
            f"removed or the URL is wrong: set the current one with `{SET_URL}`",
        )
    if status == 429:
        raise TeamsError(
            status, "Teams kept rate-limiting the webhook (HTTP 429) after the retries"
        )
    if status >= 500:
        raise TeamsError(status, f"Teams failed the request (HTTP {status}) after the retries")
    raise TeamsError(status, f"Teams refused the card (HTTP {status}): {detail}")
