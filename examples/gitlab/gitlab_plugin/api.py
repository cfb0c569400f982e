"""GitLab's REST API v4 as the plugin uses it, without I/O: the URLs (a project path goes
URL-encoded in one segment, ``group%2Fproject``), the offset pagination headers, and turning
an answer into data or into a :class:`GitLabError` that says what the operator can do.

References: https://docs.gitlab.com/api/rest/ (paths, pagination, status codes),
https://docs.gitlab.com/api/notes/, https://docs.gitlab.com/api/merge_requests/
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

__all__ = [
    "GitLabError",
    "answer",
    "api_root",
    "merge_requests_url",
    "next_page",
    "note_url",
    "project_segment",
    "required",
]

SET_TOKEN = "plugport secret set plugport.gitlab token"  # noqa: S105 - a command, no secret


class GitLabError(Exception):
    """GitLab refused or failed a request; ``status`` is its HTTP status (0: a bad answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def project_segment(project: str | int) -> str:
    """A project id, or its ``namespace/path`` URL-encoded as one path segment."""
    text = str(project).strip().strip("/")
    if not text:
        raise GitLabError("give a project: its id or its path, e.g. 'acme/api'")
    return quote(text, safe="")


def api_root(base_url: str = "https://gitlab.com") -> str:
    """The REST API's root on a GitLab instance (``https://gitlab.com`` → ``.../api/v4``)."""
    base = base_url.strip().rstrip("/")
    if not base.startswith("https://"):
        raise GitLabError(f"setting gitlab_url must be an https:// address, not {base_url!r}")
    return f"{base}/api/v4"


def note_url(project: str | int, iid: int, base_url: str = "https://gitlab.com") -> str:
    root = api_root(base_url)
    return f"{root}/projects/{project_segment(project)}/merge_requests/{int(iid)}/notes"


def merge_requests_url(
    project: str | int, state: str, page: int, per_page: int, base_url: str = "https://gitlab.com"
) -> str:
    return (
        f"{api_root(base_url)}/projects/{project_segment(project)}/merge_requests"
        f"?state={quote(state)}&page={page}&per_page={per_page}"
    )


def next_page(headers: Mapping[str, str]) -> int | None:
    """The next page from ``x-next-page`` (empty on the last page)."""
    value = headers.get("x-next-page", "").strip()
    return int(value) if value.isdigit() else None


def _message(body: bytes) -> str:
    """GitLab's error text: ``{"message": ...}`` (a string, or field → problems) or
    ``{"error": ...}``; the raw text otherwise."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:200]
    if isinstance(data, dict):
        message = data.get("message", data.get("error"))
        if isinstance(message, dict):
            return "; ".join(
                f"{field} {', '.join(map(str, found)) if isinstance(found, list) else found}"
                for field, found in message.items()
            )
        if message is not None:
            return str(message)
    return str(data)[:200]


def answer(status: int, headers: Mapping[str, str], body: bytes, what: str) -> Any:
    """The JSON of a 2xx answer to ``what`` (e.g. "commenting on acme/api!7"), or a
    GitLabError that names the cause and the fix."""
    if 200 <= status < 300:
        try:
            return json.loads(body)
        except ValueError:
            raise GitLabError(f"GitLab's answer to {what} is not JSON", status) from None
    message = _message(body)
    if status == 401:
        raise GitLabError(
            f"GitLab refused the token credential while {what} ({message}): it is missing, "
            f"expired or revoked. Create an access token with the api scope and set it with: "
            f"{SET_TOKEN}",
            status,
        )
    if status == 403:
        raise GitLabError(
            f"GitLab forbids {what} ({message}): the token needs the api scope and at least "
            "the Reporter role in the project",
            status,
        )
    if status == 404:
        raise GitLabError(
            f"GitLab found nothing while {what} ({message}): check the project and merge "
            "request number, and that the token's user can see the project",
            status,
        )
    if status == 429:
        wait = headers.get("retry-after", "?")
        raise GitLabError(
            f"GitLab kept rate-limiting {what} (429, Retry-After {wait} s) past the retry "
            "budget; try again later",
            status,
        )
    if status >= 500:
        raise GitLabError(f"GitLab failed {what} (HTTP {status}: {message})", status)
    raise GitLabError(f"GitLab refused {what} (HTTP {status}: {message})", status)


def required(data: Any, fields: tuple[str, ...], what: str) -> dict[str, Any]:
    """``data`` when it is an object with every field, else GitLabError naming the missing."""
    if not isinstance(data, dict):
        raise GitLabError(f"GitLab's answer to {what} is not an object")
    missing = [name for name in fields if name not in data]
    if missing:
        raise GitLabError(f"GitLab's answer to {what} lacks {', '.join(missing)}")
    return data
