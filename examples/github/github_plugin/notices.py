"""What a GitHub delivery means for the rest of the workspace: the ``notify.github`` payload (the
examples' shared notification shape) for a ``pull_request`` or ``push`` event, or ``None`` for
one nobody needs to hear about. Pure: the plugin hands in the parsed body and publishes what
comes back, so every rule here is tested without a worker.

Shapes read: https://docs.github.com/en/webhooks/webhook-events-and-payloads#pull_request and
#push. A body that lacks a field these events always carry is refused with
:class:`MalformedDeliveryError` naming the field, never guessed around.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "HANDLED_EVENTS",
    "MalformedDeliveryError",
    "PullRequest",
    "notice_for_pull_request",
    "notice_for_push",
    "pull_request_of",
    "welcome_comment",
]

HANDLED_EVENTS = ("pull_request", "push")
MAX_LISTED_COMMITS = 5


class MalformedDeliveryError(ValueError):
    """A delivery whose body is not the shape GitHub sends for its event."""

    def __init__(self, event: str, problem: str) -> None:
        super().__init__(f"{event} delivery: {problem}")
        self.event = event
        self.problem = problem


def _field(payload: Any, path: str, kind: type, event: str) -> Any:
    """``payload[a][b]...`` for ``path`` ``a.b``, which must be a ``kind``."""
    value = payload
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise MalformedDeliveryError(event, f"{path} is missing")
        value = value[part]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedDeliveryError(event, f"{path} is not a {kind.__name__}")
    return value


@dataclass(frozen=True)
class PullRequest:
    """The fields of a ``pull_request`` delivery the plugin acts on."""

    action: str
    repository: str
    number: int
    title: str
    url: str
    author: str
    head_sha: str
    base_ref: str
    head_ref: str
    merged: bool
    merged_by: str
    commits: int | None


def pull_request_of(payload: Any) -> PullRequest:
    """The pull request a ``pull_request`` delivery is about (any action)."""
    event = "pull_request"
    pull = _field(payload, "pull_request", dict, event)
    merged = pull.get("merged", False)
    merged_by = pull.get("merged_by")
    commits = pull.get("commits")
    return PullRequest(
        action=_field(payload, "action", str, event),
        repository=_field(payload, "repository.full_name", str, event),
        number=_field(payload, "number", int, event),
        title=_field(payload, "pull_request.title", str, event),
        url=_field(payload, "pull_request.html_url", str, event),
        author=_field(payload, "pull_request.user.login", str, event),
        head_sha=_field(payload, "pull_request.head.sha", str, event),
        base_ref=_field(payload, "pull_request.base.ref", str, event),
        head_ref=_field(payload, "pull_request.head.ref", str, event),
        merged=merged is True,
        merged_by=merged_by.get("login", "") if isinstance(merged_by, dict) else "",
        commits=commits if isinstance(commits, int) and not isinstance(commits, bool) else None,
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def notice_for_pull_request(pull: PullRequest) -> dict[str, Any] | None:
    """Opened, merged and closed (unmerged) pull requests are news; other actions
    (``synchronize``, ``labeled``, ``edited``...) are not."""
    fields = {"Repository": pull.repository, "Author": pull.author}
    if pull.action == "opened":
        size = f"{_plural(pull.commits, 'commit')} " if pull.commits is not None else ""
        return {
            "source": "github",
            "title": f"PR #{pull.number} opened: {pull.title}",
            "text": f"{pull.author} wants to merge {size}into {pull.base_ref} from {pull.head_ref}",
            "url": pull.url,
            "severity": "info",
            "fields": {**fields, "Branch": f"{pull.head_ref} → {pull.base_ref}"},
        }
    if pull.action == "closed" and pull.merged:
        by = f" by {pull.merged_by}" if pull.merged_by else ""
        return {
            "source": "github",
            "title": f"PR #{pull.number} merged: {pull.title}",
            "text": f"Merged{by} into {pull.base_ref}",
            "url": pull.url,
            "severity": "success",
            "fields": fields,
        }
    if pull.action == "closed":
        return {
            "source": "github",
            "title": f"PR #{pull.number} closed: {pull.title}",
            "text": "Closed without merging",
            "url": pull.url,
            "severity": "warning",
            "fields": fields,
        }
    return None


def notice_for_push(payload: Any) -> dict[str, Any] | None:
    """New commits on the repository's default branch are news; pushes to other branches,
    tags, branch deletions and pushes without new commits are not."""
    event = "push"
    ref = _field(payload, "ref", str, event)
    repository = _field(payload, "repository.full_name", str, event)
    default_branch = _field(payload, "repository.default_branch", str, event)
    commits = _field(payload, "commits", list, event)
    if payload.get("deleted") is True or ref != f"refs/heads/{default_branch}" or not commits:
        return None
    compare = _field(payload, "compare", str, event)
    pusher = payload.get("pusher") if isinstance(payload.get("pusher"), dict) else {}
    sender = payload.get("sender") if isinstance(payload.get("sender"), dict) else {}
    who = str(pusher.get("name") or sender.get("login") or "someone")
    lines = []
    for commit in commits[:MAX_LISTED_COMMITS]:
        if not isinstance(commit, dict) or not isinstance(commit.get("message"), str):
            raise MalformedDeliveryError(event, "commits[].message is missing")
        sha = str(commit.get("id", ""))[:7]
        lines.append(f"{sha} {commit['message'].splitlines()[0] if commit['message'] else ''}")
    if len(commits) > MAX_LISTED_COMMITS:
        lines.append(f"… and {len(commits) - MAX_LISTED_COMMITS} more")
    count = _plural(len(commits), "new commit")
    return {
        "source": "github",
        "title": f"{count} pushed to {repository} {default_branch}",
        "text": f"{who} pushed:\n" + "\n".join(lines),
        "url": compare,
        "severity": "info",
        "fields": {
            "Repository": repository,
            "Branch": default_branch,
            "Pusher": who,
            "Commits": str(len(commits)),
        },
    }


def welcome_comment(template: str, pull: PullRequest) -> str:
    """The welcome text with ``{author}``, ``{title}`` and ``{repository}`` filled in; other
    braces are left as written (an operator's text is not a format string)."""
    return (
        template.replace("{author}", pull.author)
        .replace("{title}", pull.title)
        .replace("{repository}", pull.repository)
    )
