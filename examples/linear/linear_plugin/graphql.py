"""What the Linear plugin decides without I/O: the GraphQL documents it sends, and what an
answer means. Linear answers every error, a rate limit included, with HTTP 400 and the reason
in ``errors[].extensions.code``, so the body decides, not the status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PLUGIN = "plugport.linear"
URL = "https://api.linear.app/graphql"

CREATE_ISSUE = """
mutation IssueCreate($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { id identifier title url } }
}
"""
CREATE_COMMENT = """
mutation CommentCreate($input: CommentCreateInput!) {
  commentCreate(input: $input) { success comment { id url } }
}
"""
TEAMS = """
query Teams($first: Int, $after: String) {
  teams(first: $first, after: $after) {
    nodes { id key name }
    pageInfo { hasNextPage endCursor }
  }
}
"""


class LinearError(Exception):
    """Linear refused or failed a request, or answered with something this plugin cannot
    read; ``code`` is Linear's ``extensions.code`` when it gave one."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Wait:
    """Rate-limited: wait ``seconds`` (until Linear's requests budget resets), then again."""

    seconds: float


def outcome(status: int, body: Any, headers: dict[str, str], now_s: float) -> Any:
    """``data`` of a successful answer, a :class:`Wait` when rate-limited, or
    :class:`LinearError` with the words the operator needs."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors:
        first = errors[0] if isinstance(errors[0], dict) else {}
        extensions = first.get("extensions") or {}
        code = str(extensions.get("code", ""))
        if code == "RATELIMITED":
            reset = headers.get("x-ratelimit-requests-reset", "")
            seconds = max(0.0, int(reset) / 1000 - now_s) if reset.isdigit() else 1.0
            return Wait(seconds)
        if code == "AUTHENTICATION_ERROR":
            raise LinearError(
                "Linear refused credential 'api_key' (AUTHENTICATION_ERROR): create a personal "
                "API key in Linear (Settings, Security & access) and set it with: "
                f"plugport secret set {PLUGIN} api_key",
                code,
            )
        said = extensions.get("userPresentableMessage") or first.get("message") or "no reason"
        if status >= 500:
            raise LinearError(f"Linear failed (HTTP {status}): {said}; try again later", code)
        raise LinearError(f"Linear refused the request ({code or status}): {said}", code)
    if status >= 500:
        raise LinearError(f"Linear failed (HTTP {status}); try again later")
    if status != 200 or not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise LinearError(f"Linear's answer (HTTP {status}) has no 'data'")
    return body["data"]


def created(data: dict[str, Any], mutation: str, entity: str, fields: tuple[str, ...]) -> Any:
    """``data[mutation][entity]`` of a mutation that says ``success``, with ``fields``."""
    payload = data.get(mutation)
    if not isinstance(payload, dict) or payload.get("success") is not True:
        raise LinearError(f"Linear did not confirm {mutation} (no success: true)")
    thing = payload.get(entity)
    if not isinstance(thing, dict) or any(not isinstance(thing.get(f), str) for f in fields):
        raise LinearError(f"Linear's {mutation} answer lacks {entity} {', '.join(fields)}")
    return {f: thing[f] for f in fields}


def teams_page(data: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``teams``: its nodes, and the cursor of the next page (None: last)."""
    connection = data.get("teams")
    if not isinstance(connection, dict) or not isinstance(connection.get("nodes"), list):
        raise LinearError("Linear's teams answer has no nodes")
    info = connection.get("pageInfo") or {}
    more = info.get("hasNextPage") is True
    cursor = info.get("endCursor")
    if more and not isinstance(cursor, str):
        raise LinearError("Linear's teams answer has more pages but no endCursor")
    nodes = [
        {"id": n.get("id"), "key": n.get("key"), "name": n.get("name")}
        for n in connection["nodes"]
        if isinstance(n, dict)
    ]
    return nodes, cursor if more else None
