"""What the Jira plugin decides without I/O: where requests go for each kind of credential,
what an answer means (and the words an operator needs when it is a refusal), which transition
reaches a status, how text becomes Atlassian Document Format, and how a search page reads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PLUGIN = "plugport.jira"
_SITE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class JiraError(Exception):
    """Jira refused or failed a request, or answered with something this plugin cannot read.
    ``status`` is the HTTP status (0 when the answer itself was the problem)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Settings:
    """The plugin's settings, checked: a request is never sent with a half-set config."""

    site: str
    auth: str
    cloud_id: str
    project: str
    issue_type: str
    max_results: int
    page_size: int
    retry_attempts: int
    retry_budget_s: float

    @classmethod
    def read(cls, config: dict[str, Any]) -> Settings:
        site = str(config.get("site", "")).strip().lower().removeprefix("https://")
        site = site.removesuffix("/").removesuffix(".atlassian.net")
        settings = cls(
            site=site,
            auth=str(config.get("auth", "api_token")),
            cloud_id=str(config.get("cloud_id", "")).strip(),
            project=str(config.get("project", "")).strip(),
            issue_type=str(config.get("issue_type", "Task")),
            max_results=int(config.get("max_results", 200)),
            page_size=int(config.get("page_size", 50)),
            retry_attempts=int(config.get("retry_attempts", 3)),
            retry_budget_s=float(config.get("retry_budget_s", 3)),
        )
        if settings.auth == "api_token" and not _SITE.match(settings.site):
            raise JiraError(
                "the Jira site is not set: plugport config set plugport.jira site acme "
                "(for acme.atlassian.net)"
            )
        if settings.auth == "oauth2" and not settings.cloud_id:
            raise JiraError(
                "auth is oauth2 but cloud_id is not set: run the jira.sites command, then "
                "plugport config set plugport.jira cloud_id <id>"
            )
        return settings

    @property
    def credential(self) -> str:
        return "oauth" if self.auth == "oauth2" else "api_token"

    @property
    def api_base(self) -> str:
        """Jira's REST v3 root: the site itself for an API token, Atlassian's gateway (by
        cloud id) for an OAuth token, which the site does not accept."""
        if self.auth == "oauth2":
            return f"https://api.atlassian.com/ex/jira/{self.cloud_id}/rest/api/3"
        return f"https://{self.site}.atlassian.net/rest/api/3"

    def browse_url(self, key: str) -> str:
        site = self.site or "your-site"
        return f"https://{site}.atlassian.net/browse/{key}"


def to_adf(text: str) -> dict[str, Any]:
    """Plain text as an ADF document: one paragraph per blank-line-separated block, line
    breaks kept. REST v3 refuses a plain string where a document is expected."""
    paragraphs = [block for block in re.split(r"\n\s*\n", text.strip()) if block.strip()]
    content = []
    for block in paragraphs:
        inline: list[dict[str, Any]] = []
        for number, line in enumerate(block.split("\n")):
            if number:
                inline.append({"type": "hardBreak"})
            if line:
                inline.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": inline})
    return {"type": "doc", "version": 1, "content": content}


def refusal(  # noqa: PLR0911 - one answer per kind of refusal reads best flat
    status: int, body: Any, settings: Settings, headers: dict[str, str]
) -> str | None:
    """None for a success; otherwise what to tell the operator, in their words: which
    credential, the command that fixes it, or what Jira said was wrong."""
    if status < 300:
        return None
    if status == 401:
        if settings.auth == "oauth2":
            return (
                "Jira refused the OAuth token of credential 'oauth' (HTTP 401), after the host "
                f"refreshed it: reconnect it with: plugport oauth2 connect {PLUGIN} oauth"
            )
        return (
            "Jira refused credential 'api_token' (HTTP 401): set it to your Atlassian email "
            f"and an API token, as email:token, with: plugport secret set {PLUGIN} api_token"
        )
    if status == 429:
        wait = headers.get("retry-after", "?")
        return (
            f"Jira is still rate-limiting after {settings.retry_attempts} tries (HTTP 429, "
            f"Retry-After {wait}s); try again later"
        )
    said = _said(body)
    if status >= 500:
        return f"Jira failed (HTTP {status}){': ' + said if said else ''}; try again later"
    if status == 403:
        return f"Jira says the account may not do this (HTTP 403){': ' + said if said else ''}"
    return f"Jira refused the request (HTTP {status}): {said or 'no reason given'}"


def _said(body: Any) -> str:
    """Jira's error collection, ``{"errorMessages": [...], "errors": {field: message}}``, as
    one line."""
    if not isinstance(body, dict):
        return ""
    parts = [str(m) for m in body.get("errorMessages") or []]
    errors = body.get("errors") or {}
    if isinstance(errors, dict):
        parts += [f"{field}: {message}" for field, message in errors.items()]
    return "; ".join(parts)


def pick_transition(offered: Any, to: str) -> dict[str, Any]:
    """The transition (from ``GET .../transitions``) that leads to status ``to``, matched on
    the target status or the transition's own name, ignoring case."""
    if not isinstance(offered, dict) or not isinstance(offered.get("transitions"), list):
        raise JiraError("Jira's list of transitions has no 'transitions' array")
    wanted = to.strip().lower()
    names = []
    for transition in offered["transitions"]:
        if not isinstance(transition, dict) or not isinstance(transition.get("id"), str):
            raise JiraError("Jira listed a transition without an id")
        target = str((transition.get("to") or {}).get("name", ""))
        names.append(target or str(transition.get("name")))
        if wanted in (target.lower(), str(transition.get("name", "")).lower()):
            return transition
    return_to = ", ".join(names) or "none"
    raise JiraError(
        f"no transition leads to '{to}' from the issue's status (available: {return_to})"
    )


@dataclass(frozen=True)
class Page:
    """One page of ``/search/jql``: its issues, and the token of the next page (None: last)."""

    issues: list[dict[str, Any]]
    next_token: str | None


def read_page(body: Any) -> Page:
    if not isinstance(body, dict) or not isinstance(body.get("issues"), list):
        raise JiraError("Jira's search answer has no 'issues' array")
    token = body.get("nextPageToken")
    last = body.get("isLast", token is None)
    if not last and not isinstance(token, str):
        raise JiraError("Jira's search answer says more pages follow but gives no nextPageToken")
    return Page([summarize(issue) for issue in body["issues"]], None if last else token)


def summarize(issue: Any) -> dict[str, Any]:
    if not isinstance(issue, dict) or not isinstance(issue.get("key"), str):
        raise JiraError("Jira's search answer has an issue without a key")
    fields = issue.get("fields") or {}
    return {
        "key": issue["key"],
        "summary": fields.get("summary"),
        "status": (fields.get("status") or {}).get("name"),
        "type": (fields.get("issuetype") or {}).get("name"),
    }
