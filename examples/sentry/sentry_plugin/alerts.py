"""What the Sentry plugin decides without I/O: what a delivery says (an alert to ticket, an
issue resolved, or something it does not handle), the ticket requests for Jira and Linear,
the ``notify.sentry`` payload, and what a tracker's answer means."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PLUGIN = "plugport.sentry"
SEVERITY = {"fatal": "error", "error": "error", "warning": "warning", "info": "info"}

LINEAR_URL = "https://api.linear.app/graphql"
LINEAR_CREATE = """
mutation IssueCreate($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { id identifier url } }
}
"""
LINEAR_COMMENT = """
mutation CommentCreate($input: CommentCreateInput!) {
  commentCreate(input: $input) { success comment { id } }
}
"""


class SentryPayloadError(Exception):
    """The delivery is not what Sentry sends for its resource."""


class TrackerError(Exception):
    """Jira or Linear refused or failed the ticket request; the message says what to fix."""


@dataclass(frozen=True)
class Alert:
    """A Sentry issue needs a ticket (or, when it has one, a comment): an issue alert fired,
    or an issue was created."""

    issue_id: str
    title: str
    culprit: str
    level: str
    url: str
    project: str
    rule: str


@dataclass(frozen=True)
class Resolved:
    issue_id: str
    title: str
    url: str
    by: str


def read_delivery(resource: str, body: Any) -> Alert | Resolved | None:
    """The delivery's meaning; None for resources and actions this plugin does not act on
    (installation, comment, issue assigned, ...); :class:`SentryPayloadError` for a body that
    is not Sentry's."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise SentryPayloadError(f"a Sentry {resource or 'webhook'} body has a 'data' object")
    action, data = body.get("action"), body["data"]
    if resource == "event_alert":
        event = data.get("event")
        if not isinstance(event, dict) or not _text(event.get("issue_id")):
            raise SentryPayloadError("not a Sentry event_alert body: no data.event.issue_id")
        return Alert(
            issue_id=str(event["issue_id"]),
            title=_text(event.get("title")) or "Sentry issue",
            culprit=_text(event.get("culprit")),
            level=_text(event.get("level")) or "error",
            url=_text(event.get("web_url")) or _text(event.get("url")),
            project=str(event.get("project", "")),
            rule=_text(data.get("triggered_rule")),
        )
    if resource == "issue" and action in ("created", "resolved"):
        issue = data.get("issue")
        if not isinstance(issue, dict) or not _text(issue.get("id")):
            raise SentryPayloadError(f"not a Sentry issue.{action} body: no data.issue.id")
        url = _text(issue.get("web_url")) or _text(issue.get("permalink"))
        title = _text(issue.get("title")) or "Sentry issue"
        if action == "resolved":
            actor = body.get("actor") if isinstance(body.get("actor"), dict) else {}
            return Resolved(str(issue["id"]), title, url, _text(actor.get("name")) or "someone")
        project = issue.get("project") if isinstance(issue.get("project"), dict) else {}
        return Alert(
            issue_id=str(issue["id"]),
            title=title,
            culprit=_text(issue.get("culprit")),
            level=_text(issue.get("level")) or "error",
            url=url,
            project=_text(project.get("slug")),
            rule="",
        )
    return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else str(value) if isinstance(value, int) else ""


def describe(alert: Alert) -> str:
    lines = [f"Sentry issue {alert.issue_id} ({alert.level})"]
    if alert.culprit:
        lines.append(f"In: {alert.culprit}")
    if alert.rule:
        lines.append(f"Alert rule: {alert.rule}")
    if alert.url:
        lines.append(alert.url)
    return "\n".join(lines)


def adf(text: str) -> dict[str, Any]:
    """Text as an Atlassian Document: a paragraph per line."""
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]}
        for line in text.split("\n")
        if line.strip()
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


def jira_fields(alert: Alert, project: str, issue_type: str) -> dict[str, Any]:
    summary = f"[Sentry] {alert.title}"
    return {
        "fields": {
            "project": {"key": project},
            "summary": summary if len(summary) <= 255 else summary[:254] + "…",
            "issuetype": {"name": issue_type},
            "description": adf(describe(alert)),
            "labels": ["sentry"],
        }
    }


def linear_input(alert: Alert, team_id: str) -> dict[str, Any]:
    priority = {"fatal": 1, "error": 2, "warning": 3}.get(alert.level, 4)
    return {
        "input": {
            "teamId": team_id,
            "title": f"[Sentry] {alert.title}",
            "description": describe(alert),
            "priority": priority,
        }
    }


def notification(alert: Alert | Resolved, ticket: dict[str, str], *, new: bool) -> dict[str, Any]:
    """The ``notify.*`` payload chat and mail plugins post."""
    fields = {"Ticket": ticket["key"]}
    if isinstance(alert, Resolved):
        return {
            "source": "sentry",
            "title": f"Resolved: {alert.title}",
            "text": f"{alert.by} resolved it in Sentry; noted on {ticket['key']}",
            "url": alert.url,
            "severity": "success",
            "fields": fields,
        }
    if alert.project:
        fields["Project"] = alert.project
    if alert.rule:
        fields["Rule"] = alert.rule
    done = "opened" if new else "seen again, commented on"
    return {
        "source": "sentry",
        "title": f"Sentry: {alert.title}",
        "text": f"{alert.culprit + ': ' if alert.culprit else ''}{done} {ticket['key']}",
        "url": alert.url,
        "severity": SEVERITY.get(alert.level, "error"),
        "fields": fields,
    }


def jira_refusal(status: int, body: Any, headers: dict[str, str], attempts: int) -> str | None:
    if status < 300:
        return None
    if status == 401:
        return (
            "Jira refused credential 'jira' (HTTP 401): set it to your Atlassian email and an "
            f"API token, as email:token, with: plugport secret set {PLUGIN} jira"
        )
    if status == 429:
        return f"Jira is still rate-limiting after {attempts} tries (HTTP 429)"
    said = ""
    if isinstance(body, dict):
        errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
        said = "; ".join(
            [str(m) for m in body.get("errorMessages") or []]
            + [f"{k}: {v}" for k, v in errors.items()]
        )
    kind = "failed" if status >= 500 else "refused the ticket"
    return f"Jira {kind} (HTTP {status}){': ' + said if said else ''}"


def linear_result(status: int, body: Any, headers: dict[str, str], now_s: float) -> Any:
    """``data``, a float (seconds to wait: RATELIMITED, sent as HTTP 400), or
    :class:`TrackerError`."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        extensions = errors[0].get("extensions") or {}
        code = extensions.get("code", "")
        if code == "RATELIMITED":
            reset = headers.get("x-ratelimit-requests-reset", "")
            return max(0.0, int(reset) / 1000 - now_s) if reset.isdigit() else 1.0
        if code == "AUTHENTICATION_ERROR":
            raise TrackerError(
                "Linear refused credential 'linear' (AUTHENTICATION_ERROR): set a personal API "
                f"key with: plugport secret set {PLUGIN} linear"
            )
        said = extensions.get("userPresentableMessage") or errors[0].get("message")
        raise TrackerError(f"Linear refused the ticket ({code or status}): {said}")
    if status >= 500:
        raise TrackerError(f"Linear failed (HTTP {status})")
    data = body.get("data") if isinstance(body, dict) else None
    if status != 200 or not isinstance(data, dict):
        raise TrackerError(f"Linear's answer (HTTP {status}) has no 'data'")
    return data


def linear_created(data: dict[str, Any], mutation: str, entity: str) -> dict[str, Any]:
    payload = data.get(mutation)
    if not isinstance(payload, dict) or payload.get("success") is not True:
        raise TrackerError(f"Linear did not confirm {mutation}")
    thing = payload.get(entity)
    if not isinstance(thing, dict) or not isinstance(thing.get("id"), str):
        raise TrackerError(f"Linear's {mutation} answer has no {entity} id")
    return thing


def jira_site(site: str) -> str:
    name = site.strip().lower().removeprefix("https://").removesuffix("/")
    name = name.removesuffix(".atlassian.net")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
        raise TrackerError(
            f"the Jira site is not set: plugport config set {PLUGIN} jira_site acme "
            "(for acme.atlassian.net)"
        )
    return name
