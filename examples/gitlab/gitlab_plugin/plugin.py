"""The GitLab plugin: verified webhook deliveries become ``notify.gitlab`` events (and, if
configured, a welcome comment on new merge requests); commands comment on a merge request and
list a project's merge requests. Every request to GitLab carries the ``token`` credential,
which the host adds; the plugin never sees it."""

from __future__ import annotations

from string import Template
from typing import Any

from gitlab_plugin.api import (
    GitLabError,
    answer,
    merge_requests_url,
    next_page,
    note_url,
    required,
)
from gitlab_plugin.events import PayloadError, merge_request_event, notification
from plugport.sdk import Plugin, RetryPolicy, WebhookEvent, command, webhook

TOPIC = "notify.gitlab"
NOTE_FIELDS = ("id", "body", "noteable_iid")
MERGE_REQUEST_FIELDS = ("iid", "title", "state", "web_url", "author")
STATES = ("opened", "closed", "locked", "merged", "all")


def render_comment(template: str, values: dict[str, Any]) -> str:
    """The ``open_comment`` setting with ``$author``, ``$title``, ``$iid``, ``$project``
    replaced (``string.Template``: no code runs); an unknown placeholder names the setting."""
    try:
        return Template(template).substitute({k: str(v) for k, v in values.items()})
    except KeyError as exc:
        raise GitLabError(
            f"setting open_comment has an unknown placeholder ${exc.args[0]}; use $author, "
            "$title, $iid or $project (write $$ for a dollar sign)"
        ) from None
    except ValueError as exc:
        raise GitLabError(f"setting open_comment is not a valid template: {exc}") from None


class GitLabPlugin(Plugin):
    async def _retry(self) -> RetryPolicy:
        """A 429 is always retried after GitLab's Retry-After; a 5xx only for reads (a note
        posted twice would be a duplicate comment: GitLab does not deduplicate notes)."""
        budget = float(await self.api.config.get("retry_budget_s", 10))
        return RetryPolicy(attempts=4, budget_s=budget, base_s=min(0.25, budget))

    async def _note(self, project: str | int, iid: int, body: str) -> dict[str, Any]:
        what = f"commenting on {project}!{iid}"
        base = await self.api.config.get("gitlab_url", "https://gitlab.com")
        response = await self.api.net.fetch(
            note_url(project, iid, base),
            method="POST",
            json={"body": body},
            credential="token",
            retry=await self._retry(),
        )
        note = answer(response.status, response.headers, response.body, what)
        return required(note, NOTE_FIELDS, what)

    @command("gitlab.note")
    async def note(self, project: str | int, iid: int, body: str) -> dict[str, Any]:
        """Comment on merge request ``iid`` of ``project`` (id or ``group/name``)."""
        if not isinstance(body, str) or not body.strip():
            raise GitLabError("gitlab.note needs a non-empty body")
        note = await self._note(project, int(iid), body)
        return {"id": note["id"], "project": str(project), "iid": note["noteable_iid"]}

    @command("gitlab.merge_requests")
    async def merge_requests(self, project: str | int, state: str = "opened") -> dict[str, Any]:
        """The project's merge requests in ``state``, page after page (up to ``max_pages``)."""
        if state not in STATES:
            raise GitLabError(f"state must be one of {', '.join(STATES)}, not {state!r}")
        settings = await self.api.config.get()
        policy = await self._retry()
        found: list[dict[str, Any]] = []
        page: int | None = 1
        pages = 0
        what = f"listing merge requests of {project}"
        while page is not None and pages < settings["max_pages"]:
            response = await self.api.net.fetch(
                merge_requests_url(
                    project, state, page, settings["per_page"], settings["gitlab_url"]
                ),
                credential="token",
                retry=policy,
            )
            items = answer(response.status, response.headers, response.body, what)
            if not isinstance(items, list):
                raise GitLabError(f"GitLab's answer to {what} is not a list")
            for entry in items:
                item = required(entry, MERGE_REQUEST_FIELDS, what)
                found.append(
                    {
                        "iid": item["iid"],
                        "title": item["title"],
                        "state": item["state"],
                        "url": item["web_url"],
                        "author": (item["author"] or {}).get("username", ""),
                    }
                )
            pages += 1
            page = next_page(response.headers)
        return {"merge_requests": found, "complete": page is None}

    @webhook("events")
    async def delivery(self, event: WebhookEvent) -> None:
        """A verified delivery from GitLab. A malformed one raises (the host keeps it as
        failed, with this error); one not announced is logged and dropped."""
        kind = event.headers.get("x-gitlab-event", "")
        try:
            payload = event.json()
        except ValueError:
            raise PayloadError(f"the {kind or 'GitLab'} delivery's body is not JSON") from None
        settings = await self.api.config.get()
        message = notification(kind, payload)
        if message is None:
            self.log.info("ignored %s (%s)", kind or "a delivery", event.delivery_id)
            return
        is_merge_request = payload["object_kind"] == "merge_request"
        wanted = settings["notify_merge_requests" if is_merge_request else "notify_pushes"]
        if wanted:
            await self.api.events.publish(TOPIC, message)
        if is_merge_request and settings["comment_on_open"]:
            details = merge_request_event(payload)
            if details["action"] == "open":
                body = render_comment(
                    settings["open_comment"],
                    {
                        "author": details["user"],
                        "title": details["title"],
                        "iid": details["iid"],
                        "project": details["project"],
                    },
                )
                try:
                    await self._note(details["project"], details["iid"], body)
                except GitLabError as exc:
                    # Raising would have the host run the delivery again and announce the
                    # merge request twice; the comment is the part that is given up.
                    self.log.error(
                        "no comment on %s!%s: %s", details["project"], details["iid"], exc
                    )
