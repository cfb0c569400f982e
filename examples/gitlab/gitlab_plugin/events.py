"""From a GitLab webhook delivery to a ``notify.gitlab`` payload, without I/O: which deliveries
are worth a notification (merge requests opened, reopened, merged or closed; pushes), and what a
delivery must hold to be believed. A body that claims to be a merge request or a push but lacks
the fields GitLab always sends is refused with :class:`PayloadError`, not half-announced.

Shapes: https://docs.gitlab.com/user/project/integrations/webhook_events/
"""

from __future__ import annotations

from typing import Any

__all__ = ["ANNOUNCED_ACTIONS", "PayloadError", "merge_request_event", "notification", "push_event"]

ANNOUNCED_ACTIONS = {
    "open": ("opened", "info"),
    "reopen": ("reopened", "info"),
    "merge": ("merged", "success"),
    "close": ("closed", "warning"),
}
"""``object_attributes.action`` → (the verb in the title, the severity)."""

_ZERO_SHA = "0" * 40


class PayloadError(ValueError):
    """A delivery that is not what GitLab sends for its event."""


def _field(data: Any, path: str, kind: type | tuple[type, ...] = str) -> Any:
    """``data[a][b]`` for ``path`` ``"a.b"``, of type ``kind``, or PayloadError naming it."""
    value = data
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise PayloadError(f"the delivery has no {path!r}")
        value = value[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise PayloadError(f"the delivery's {path!r} is not a {getattr(kind, '__name__', kind)}")
    return value


def merge_request_event(payload: Any) -> dict[str, Any]:
    """What a ``Merge Request Hook`` says: project, iid, title, url, action, state, branches,
    user."""
    return {
        "project": _field(payload, "project.path_with_namespace"),
        "iid": _field(payload, "object_attributes.iid", int),
        "title": _field(payload, "object_attributes.title"),
        "url": _field(payload, "object_attributes.url"),
        "action": _field(payload, "object_attributes.action"),
        "state": _field(payload, "object_attributes.state"),
        "source_branch": _field(payload, "object_attributes.source_branch"),
        "target_branch": _field(payload, "object_attributes.target_branch"),
        "user": _field(payload, "user.username"),
    }


def push_event(payload: Any) -> dict[str, Any]:
    """What a ``Push Hook`` says: project, branch, pusher, commits (title and short sha)."""
    ref = _field(payload, "ref")
    commits = _field(payload, "commits", list)
    titles = []
    for commit in commits:
        titles.append((_field(commit, "id")[:8], _field(commit, "title")))
    return {
        "project": _field(payload, "project.path_with_namespace"),
        "web_url": _field(payload, "project.web_url"),
        "branch": ref.removeprefix("refs/heads/").removeprefix("refs/tags/"),
        "tag": ref.startswith("refs/tags/"),
        "user": _field(payload, "user_username"),
        "after": _field(payload, "after"),
        "total": _field(payload, "total_commits_count", int),
        "commits": titles,
    }


def notification(kind: str, payload: Any) -> dict[str, Any] | None:
    """The ``notify.gitlab`` payload for a delivery whose ``X-Gitlab-Event`` is ``kind``, or
    None for an event not announced (an update, an approval, another hook). Raises
    PayloadError for a body that is not the shape of its event."""
    if not isinstance(payload, dict) or not isinstance(payload.get("object_kind"), str):
        raise PayloadError("the delivery is not a GitLab event: no 'object_kind'")
    if kind == "Merge Request Hook" or payload["object_kind"] == "merge_request":
        return _merge_request_notification(merge_request_event(payload))
    if kind == "Push Hook" or payload["object_kind"] == "push":
        return _push_notification(push_event(payload))
    return None


def _merge_request_notification(event: dict[str, Any]) -> dict[str, Any] | None:
    announced = ANNOUNCED_ACTIONS.get(event["action"])
    if announced is None:
        return None
    verb, severity = announced
    return {
        "source": "gitlab",
        "title": f"MR !{event['iid']} {verb}: {event['title']}",
        "text": (
            f"{event['user']} {verb} merge request !{event['iid']} "
            f"({event['source_branch']} → {event['target_branch']})"
        ),
        "url": event["url"],
        "severity": severity,
        "fields": {
            "Project": event["project"],
            "Author": event["user"],
            "Branch": f"{event['source_branch']} → {event['target_branch']}",
        },
    }


def _push_notification(event: dict[str, Any]) -> dict[str, Any]:
    what = "tag" if event["tag"] else "branch"
    if event["after"] == _ZERO_SHA:
        return {
            "source": "gitlab",
            "title": f"{what.capitalize()} {event['branch']} deleted in {event['project']}",
            "text": f"{event['user']} deleted {what} {event['branch']}",
            "url": event["web_url"],
            "severity": "warning",
            "fields": {"Project": event["project"], "Pusher": event["user"]},
        }
    total = event["total"]
    noun = "commit" if total == 1 else "commits"
    lines = [f"- {sha} {title}" for sha, title in event["commits"][:10]]
    if total > len(lines):
        lines.append(f"- … and {total - len(lines)} more")
    return {
        "source": "gitlab",
        "title": f"{event['user']} pushed {total} {noun} to {event['project']}:{event['branch']}",
        "text": "\n".join(lines) or f"{event['user']} pushed to {what} {event['branch']}",
        "url": f"{event['web_url']}/-/commits/{event['branch']}",
        "severity": "info",
        "fields": {"Project": event["project"], "Branch": event["branch"], "Pusher": event["user"]},
    }
