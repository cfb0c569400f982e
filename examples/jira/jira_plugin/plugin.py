"""The Jira plugin: each command reads its settings, sends its requests with the credential the
settings name (the host adds it; the plugin never holds it) and turns Jira's refusals into
errors that tell the operator what to fix."""

from __future__ import annotations

from typing import Any

from jira_plugin.api import JiraError, Settings, pick_transition, read_page, refusal, to_adf
from plugport.sdk import Plugin, Response, RetryPolicy, command

SEARCH_FIELDS = ["summary", "status", "issuetype"]


class JiraPlugin(Plugin):
    async def _settings(self) -> Settings:
        return Settings.read(await self.api.config.get())

    async def _request(
        self, settings: Settings, method: str, path: str, body: Any = None, *, safe: bool = False
    ) -> Response:
        """One request, retried on 429 (Jira did not act on it) and, for reads, on 5xx.
        ``safe`` marks a POST that only reads (the JQL search), so it is retried like a GET."""
        policy = RetryPolicy(
            attempts=settings.retry_attempts, budget_s=settings.retry_budget_s, retry_unsafe=safe
        )
        response = await self.api.net.fetch(
            settings.api_base + path,
            method=method,
            json=body,
            credential=settings.credential,
            retry=policy,
        )
        problem = refusal(response.status, _json_or_none(response), settings, response.headers)
        if problem is not None:
            raise JiraError(problem, response.status)
        return response

    @command("jira.create")
    async def create(
        self, summary: str, description: str = "", type: str = "", project: str = ""
    ) -> dict[str, Any]:
        """Create an issue in the configured project; returns its key and browse URL."""
        settings = await self._settings()
        project = project or settings.project
        if not project:
            raise JiraError("no project: plugport config set plugport.jira project OPS")
        fields: dict[str, Any] = {
            "project": {"key": project},
            "summary": summary,
            "issuetype": {"name": type or settings.issue_type},
        }
        if description.strip():
            fields["description"] = to_adf(description)
        response = await self._request(settings, "POST", "/issue", {"fields": fields})
        created = _json_or_none(response)
        if not isinstance(created, dict) or not isinstance(created.get("key"), str):
            raise JiraError("Jira's answer to creating an issue has no 'key'")
        key = created["key"]
        return {"key": key, "id": created.get("id"), "url": settings.browse_url(key)}

    @command("jira.comment")
    async def comment(self, key: str, text: str) -> dict[str, Any]:
        """Add a comment to an issue (used by other plugins' flows and by hand)."""
        settings = await self._settings()
        response = await self._request(
            settings, "POST", f"/issue/{key}/comment", {"body": to_adf(text)}
        )
        answer = _json_or_none(response)
        if not isinstance(answer, dict) or "id" not in answer:
            raise JiraError("Jira's answer to adding a comment has no 'id'")
        return {"key": key, "comment": answer["id"]}

    @command("jira.transition")
    async def transition(self, key: str, to: str) -> dict[str, Any]:
        """Move an issue to the status named ``to`` (the transition id is looked up)."""
        settings = await self._settings()
        offered = await self._request(settings, "GET", f"/issue/{key}/transitions")
        chosen = pick_transition(_json_or_none(offered), to)
        await self._request(
            settings, "POST", f"/issue/{key}/transitions", {"transition": {"id": chosen["id"]}}
        )
        status = (chosen.get("to") or {}).get("name") or chosen.get("name")
        return {"key": key, "status": status, "transition": chosen["id"]}

    @command("jira.search")
    async def search(self, jql: str, max_results: int = 0) -> dict[str, Any]:
        """Run ``jql`` and follow its pages up to ``max_results`` (the setting by default)."""
        settings = await self._settings()
        limit = max_results or settings.max_results
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            body: dict[str, Any] = {
                "jql": jql,
                "maxResults": min(settings.page_size, limit - len(found)),
                "fields": SEARCH_FIELDS,
            }
            if token is not None:
                body["nextPageToken"] = token
            response = await self._request(settings, "POST", "/search/jql", body, safe=True)
            page = read_page(_json_or_none(response))
            found += page.issues
            if page.next_token is None or len(found) >= limit:
                break
            if not page.issues:
                raise JiraError("Jira's search answer has an empty page that is not the last")
            token = page.next_token
        truncated = page.next_token is not None or len(found) > limit
        return {"issues": found[:limit], "truncated": truncated}

    @command("jira.sites")
    async def sites(self) -> list[dict[str, Any]]:
        """The sites the OAuth app was granted, with the cloud id ``cloud_id`` wants."""
        response = await self.api.net.fetch(
            "https://api.atlassian.com/oauth/token/accessible-resources",
            credential="oauth",
            retry=True,
        )
        settings = Settings.read({"auth": "oauth2", "cloud_id": "-"})
        problem = refusal(response.status, _json_or_none(response), settings, response.headers)
        if problem is not None:
            raise JiraError(problem, response.status)
        resources = _json_or_none(response)
        if not isinstance(resources, list):
            raise JiraError("Atlassian's accessible-resources answer is not a list")
        return [
            {"cloud_id": r.get("id"), "url": r.get("url"), "name": r.get("name")}
            for r in resources
            if isinstance(r, dict)
        ]


def _json_or_none(response: Response) -> Any:
    """The body as JSON, or None when there is none or it is not JSON (Jira's 401 is text)."""
    try:
        return response.json()
    except ValueError:
        return None
