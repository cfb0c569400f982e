"""The GitHub REST rules the plugin follows, as pure functions: the headers GitHub asks for, its
``Link`` pagination, its rate-limit answers (a 403 *or* 429 with ``retry-after`` or with
``x-ratelimit-remaining: 0``), the GitHub App JWT, when a cached installation token is still
good, and the error a person reads when GitHub says no.

References: https://docs.github.com/en/rest/using-the-rest-api/getting-started-with-the-rest-api,
https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api,
https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api,
https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import Any

__all__ = [
    "API",
    "API_VERSION",
    "PLUGIN",
    "TOKEN_MARGIN_S",
    "GitHubError",
    "base_headers",
    "expires_at_epoch",
    "failure_message",
    "jwt_signing_input",
    "next_page",
    "token_is_fresh",
]

API = "https://api.github.com"
API_VERSION = "2022-11-28"
PLUGIN = "plugport.github"
USER_AGENT = "plugport-github-example/1.0"
JWT_BACKDATE_S = 60  # GitHub's advice: iat a minute early, against clock drift
JWT_LIFETIME_S = 540  # exp within GitHub's ten minutes, counting the minute of backdating
TOKEN_MARGIN_S = 300  # renew an installation token five minutes before it expires

_LINK_RE = re.compile(r'<([^>]*)>\s*;\s*rel="([^"]+)"')


class GitHubError(Exception):
    """GitHub answered with an error the plugin cannot get past by waiting."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def base_headers() -> dict[str, str]:
    """GitHub refuses a request without ``User-Agent`` (403); the version header pins the
    answers' shapes to the ones this plugin was written against."""
    return {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
        "User-Agent": USER_AGENT,
    }


def next_page(link_header: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, or None on the last page."""
    for url, rels in _LINK_RE.findall(link_header or ""):
        if "next" in rels.split():
            return str(url)
    return None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_signing_input(app_id: int, now: float) -> str:
    """``header.claims`` of the App's JWT (RS256); the host signs it with the App's key."""
    header = {"alg": "RS256", "typ": "JWT"}
    issued = int(now) - JWT_BACKDATE_S
    claims = {"iat": issued, "exp": issued + JWT_BACKDATE_S + JWT_LIFETIME_S, "iss": str(app_id)}
    encode = lambda part: _b64url(json.dumps(part, separators=(",", ":")).encode())  # noqa: E731
    return f"{encode(header)}.{encode(claims)}"


def expires_at_epoch(text: str) -> float:
    """Unix seconds of GitHub's ``expires_at`` (``2026-01-01T12:00:00Z``); ValueError if it is
    not a timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def token_is_fresh(expires_at: float, now: float, margin_s: float = TOKEN_MARGIN_S) -> bool:
    """Whether a cached installation token may still be used: not within ``margin_s`` of its
    expiry, so a call (with its retries) never carries a token that runs out on the way."""
    return now < expires_at - margin_s


def _github_message(body: bytes) -> str:
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body[:200].decode("utf-8", "replace").strip() or "no message"
    if not isinstance(data, dict):
        return "no message"
    message = str(data.get("message", "no message"))
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        details = ", ".join(
            f"{e.get('field', '?')} {e.get('code', '?')}" if isinstance(e, dict) else str(e)
            for e in errors
        )
        message = f"{message} ({details})"
    return message


def failure_message(status: int, body: bytes, *, auth: str, what: str) -> str:
    """What a person reads when GitHub refused ``what``: GitHub's own message, and for a
    refused credential the command that sets a good one."""
    said = _github_message(body)
    if status == 401 and auth == "token":
        return (
            f"GitHub refused the token while {what} (HTTP 401: {said}); set a valid one with "
            f"`plugport secret set {PLUGIN} token`"
        )
    if status == 401:
        return (
            f"GitHub refused the App's credentials while {what} (HTTP 401: {said}); check the "
            f"app_id setting and set the App's private key with `plugport secret set {PLUGIN} "
            "app_key --from-file app.private-key.pem`"
        )
    if status in (403, 429) and ("rate limit" in said.lower()):
        return f"GitHub's rate limit held after every retry while {what} (HTTP {status}: {said})"
    if status == 404:
        return (
            f"GitHub found nothing while {what} (HTTP 404), or the credential cannot see it: "
            "check the repository name and the token's or App's repository access"
        )
    return f"GitHub refused {what} (HTTP {status}: {said})"
