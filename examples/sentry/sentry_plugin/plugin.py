"""The Sentry plugin: each verified delivery becomes one ticket per Sentry issue, in Jira or
Linear, with the plugin's credential for that tracker (the host adds it); a repeat becomes a
comment on the same ticket, remembered in storage; every outcome is announced on
``notify.sentry``. Two secrets meet here and the plugin holds neither: the host checks the
inbound signature with ``client_secret`` and adds the tracker's credential to the outbound
request."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from plugport.sdk import Plugin, RetryPolicy, WebhookEvent, command, webhook
from sentry_plugin.alerts import (
    LINEAR_COMMENT,
    LINEAR_CREATE,
    LINEAR_URL,
    PLUGIN,
    Alert,
    Resolved,
    SentryPayloadError,
    TrackerError,
    adf,
    describe,
    jira_fields,
    jira_refusal,
    jira_site,
    linear_created,
    linear_input,
    linear_result,
    notification,
    read_delivery,
)


class SentryPlugin(Plugin):
    @webhook("alert")
    async def alert(self, event: WebhookEvent) -> dict[str, Any] | None:
        resource = event.headers.get("sentry-hook-resource", "")
        try:
            body = event.json()
        except ValueError:
            raise SentryPayloadError("the Sentry delivery's body is not JSON") from None
        what = read_delivery(resource, body)
        if what is None:
            self.log.info("ignored Sentry %s.%s", resource, body.get("action"))
            return None
        ticket = await self.api.storage.get(_key(what.issue_id))
        if isinstance(what, Resolved):
            if ticket is None:
                self.log.info("Sentry issue %s resolved; it has no ticket", what.issue_id)
                return None
            await self._comment(ticket, f"Resolved in Sentry by {what.by}.")
            await self.api.events.publish("notify.sentry", notification(what, ticket, new=False))
            return ticket
        new = ticket is None
        if ticket is None:
            ticket = await self._open(what)
            await self.api.storage.set(_key(what.issue_id), ticket)
        else:
            await self._comment(ticket, "Seen again.\n" + describe(what))
        await self.api.events.publish("notify.sentry", notification(what, ticket, new=new))
        return ticket

    @command("sentry.ticket")
    async def ticket(self, issue_id: str) -> dict[str, str] | None:
        """The ticket opened for a Sentry issue, or None."""
        found: dict[str, str] | None = await self.api.storage.get(_key(issue_id))
        return found

    @command("sentry.forget")
    async def forget(self, issue_id: str) -> bool:
        """Forget a Sentry issue's ticket, so its next alert opens a new one."""
        return await self.api.storage.delete(_key(issue_id))

    # --- trackers ---------------------------------------------------------------------------

    async def _open(self, alert: Alert) -> dict[str, str]:
        settings = await self.api.config.get()
        if settings["create_in"] == "linear":
            team = settings["linear_team_id"]
            if not team:
                raise TrackerError(
                    f"no Linear team: plugport config set {PLUGIN} linear_team_id ID"
                )
            data = await self._linear(LINEAR_CREATE, linear_input(alert, team))
            issue = linear_created(data, "issueCreate", "issue")
            return {
                "tracker": "linear",
                "key": str(issue.get("identifier")),
                "id": issue["id"],
                "url": str(issue.get("url", "")),
            }
        site = jira_site(settings["jira_site"])
        if not settings["jira_project"]:
            raise TrackerError(f"no Jira project: plugport config set {PLUGIN} jira_project OPS")
        body = jira_fields(alert, settings["jira_project"], settings["jira_issue_type"])
        created = await self._jira(site, "/issue", body)
        if not isinstance(created, dict) or not isinstance(created.get("key"), str):
            raise TrackerError("Jira's answer to creating an issue has no 'key'")
        key = created["key"]
        return {
            "tracker": "jira",
            "key": key,
            "id": str(created.get("id", "")),
            "url": f"https://{site}.atlassian.net/browse/{key}",
            "site": site,
        }

    async def _comment(self, ticket: dict[str, str], text: str) -> None:
        if ticket["tracker"] == "linear":
            given = {"input": {"issueId": ticket["id"], "body": text}}
            linear_created(await self._linear(LINEAR_COMMENT, given), "commentCreate", "comment")
            return
        await self._jira(ticket["site"], f"/issue/{ticket['key']}/comment", {"body": adf(text)})

    async def _policy(self) -> RetryPolicy:
        settings = await self.api.config.get()
        return RetryPolicy(
            attempts=int(settings["retry_attempts"]), budget_s=float(settings["retry_budget_s"])
        )

    async def _jira(self, site: str, path: str, body: Any) -> Any:
        """A POST to Jira: a 429 is retried (Jira did not act on it); a 5xx is not, as Jira
        may have created the ticket (the delivery is retried later by the host instead)."""
        policy = await self._policy()
        response = await self.api.net.fetch(
            f"https://{site}.atlassian.net/rest/api/3{path}",
            method="POST",
            json=body,
            credential="jira",
            retry=policy,
        )
        answer = _json(response.body)
        problem = jira_refusal(response.status, answer, response.headers, policy.attempts)
        if problem is not None:
            raise TrackerError(problem)
        return answer

    async def _linear(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """A mutation to Linear, waiting for the reset when it says RATELIMITED (HTTP 400)."""
        policy = await self._policy()
        waited = 0.0
        for attempt in range(1, policy.attempts + 1):
            response = await self.api.net.fetch(
                LINEAR_URL,
                method="POST",
                json={"query": query, "variables": variables},
                credential="linear",
            )
            result = linear_result(
                response.status, _json(response.body), response.headers, time.time()
            )
            if isinstance(result, dict):
                return result
            if attempt == policy.attempts or waited + result > policy.budget_s:
                break
            await asyncio.sleep(result)
            waited += result
        raise TrackerError(f"Linear is still rate-limiting (RATELIMITED) after {attempt} tries")


def _key(issue_id: str) -> str:
    return f"ticket:{issue_id}"


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
