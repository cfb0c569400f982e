"""The Linear plugin: GraphQL requests with the operator's API key (added by the host), waiting
for Linear's rate-limit reset when it says RATELIMITED, within the configured budget."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from linear_plugin.graphql import (
    CREATE_COMMENT,
    CREATE_ISSUE,
    PLUGIN,
    TEAMS,
    URL,
    LinearError,
    Wait,
    created,
    outcome,
    teams_page,
)
from plugport.sdk import Plugin, RetryPolicy, command


class LinearPlugin(Plugin):
    async def _graphql(self, query: str, variables: dict[str, Any], *, read: bool) -> Any:
        """Send one document. Rate limits come as HTTP 400 RATELIMITED (the SDK's retry sees
        only statuses), so this loop waits for the reset; a 5xx is retried by the SDK for
        reads only: a mutation Linear may have applied is not sent twice."""
        settings = await self.api.config.get()
        attempts, budget = int(settings["retry_attempts"]), float(settings["retry_budget_s"])
        policy = RetryPolicy(attempts=attempts, budget_s=budget, retry_unsafe=read)
        waited = 0.0
        for attempt in range(1, attempts + 1):
            response = await self.api.net.fetch(
                URL,
                method="POST",
                json={"query": query, "variables": variables},
                credential="api_key",
                retry=policy,
            )
            try:
                body = response.json()
            except ValueError:
                body = None
            result = outcome(response.status, body, response.headers, time.time())
            if not isinstance(result, Wait):
                return result
            if attempt == attempts or waited + result.seconds > budget:
                break
            await asyncio.sleep(result.seconds)
            waited += result.seconds
        raise LinearError(
            f"Linear is still rate-limiting (RATELIMITED) after {attempt} tries; try again later",
            "RATELIMITED",
        )

    @command("linear.create")
    async def create(self, title: str, description: str = "", priority: int = 0) -> Any:
        """Create an issue in the configured team; returns its identifier and URL."""
        team = await self.api.config.get("team_id", "")
        if not team:
            raise LinearError(
                f"no team: run linear.teams, then plugport config set {PLUGIN} team_id <id>"
            )
        given: dict[str, Any] = {"teamId": team, "title": title, "priority": priority}
        if description:
            given["description"] = description
        data = await self._graphql(CREATE_ISSUE, {"input": given}, read=False)
        return created(data, "issueCreate", "issue", ("id", "identifier", "title", "url"))

    @command("linear.comment")
    async def comment(self, issue: str, body: str) -> Any:
        """Comment on an issue (its identifier such as ENG-12, or its id)."""
        data = await self._graphql(
            CREATE_COMMENT, {"input": {"issueId": issue, "body": body}}, read=False
        )
        return created(data, "commentCreate", "comment", ("id", "url"))

    @command("linear.teams")
    async def teams(self) -> list[dict[str, Any]]:
        """Every team the key can see, following the connection's pages."""
        size = int(await self.api.config.get("page_size", 50))
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            data = await self._graphql(TEAMS, {"first": size, "after": cursor}, read=True)
            nodes, cursor = teams_page(data)
            found += nodes
            if cursor is None:
                return found
