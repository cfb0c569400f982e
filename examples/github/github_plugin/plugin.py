"""GitHub for a Plugport workspace: turns verified webhook deliveries into ``notify.github``
events, welcomes new pull requests, reports check runs, and lets an operator comment, report a
check or list pull requests by hand.

Two ways to call GitHub. With ``auth = "token"`` the host adds the ``token`` credential to each
request; the plugin never sees it. With ``auth = "app"`` the plugin writes the App's JWT and the
host signs it with ``app_key`` (the key never enters the plugin); GitHub trades it for an
installation token, which the plugin does hold, in memory only, until five minutes before it
expires: GitHub gives no way to use one without sending it.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from github_plugin.notices import (
    HANDLED_EVENTS,
    MalformedDeliveryError,
    PullRequest,
    notice_for_pull_request,
    notice_for_push,
    pull_request_of,
    welcome_comment,
)
from github_plugin.rest import (
    API,
    GitHubError,
    base_headers,
    expires_at_epoch,
    failure_message,
    jwt_signing_input,
    next_page,
    token_is_fresh,
)
from plugport.sdk import Plugin, Response, RetryPolicy, WebhookEvent, command, webhook

TOPIC = "notify.github"
REPO_PATTERN = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"


class GitHubPlugin(Plugin):
    """One instance per worker; the installation token cache lives and dies with it."""

    def __init__(self) -> None:
        super().__init__()
        self._installation_token: tuple[str, float] | None = None  # (token, expires at)
        self._token_lock = asyncio.Lock()

    # --- deliveries ---------------------------------------------------------------------------

    @webhook("events")
    async def delivery(self, event: WebhookEvent) -> None:
        """A verified delivery. Anything that is not a well-formed push or pull_request is
        logged and dropped: sending it again would not make it one."""
        kind = event.headers.get("x-github-event", "")
        if kind == "ping":
            self.log.info("GitHub ping (delivery %s): the webhook is set up", event.delivery_id)
            return
        if kind not in HANDLED_EVENTS:
            self.log.info(
                "ignored a %r delivery (%s): only push and pull_request are handled",
                kind or "unnamed",
                event.delivery_id,
            )
            return
        try:
            payload = event.json()
            if kind == "push":
                notice = notice_for_push(payload)
                pull = None
            else:
                pull = pull_request_of(payload)
                notice = notice_for_pull_request(pull)
        except ValueError as exc:  # MalformedDeliveryError is one; so is a body not JSON
            problem = exc if isinstance(exc, MalformedDeliveryError) else "the body is not JSON"
            self.log.warning("dropped delivery %s: %s", event.delivery_id, problem)
            return
        if notice is not None:
            await self.api.events.publish(TOPIC, notice)
        if pull is not None:
            await self._act_on(pull)

    async def _act_on(self, pull: PullRequest) -> None:
        """The REST side of a pull request event. Best effort: each call already retried what
        GitHub asked to be retried, and what is left (a refused token, a missing repository)
        would fail again on a redelivery, after the notification went out twice."""
        settings = await self._settings()
        try:
            if pull.action == "opened" and settings["comment_on_open"]:
                text = welcome_comment(settings["welcome_text"], pull)
                await self._comment(pull.repository, pull.number, text)
            if pull.action in ("opened", "synchronize", "reopened") and settings["check_runs"]:
                if settings["auth"] != "app":
                    self.log.warning(
                        'check_runs needs auth = "app": GitHub lets only Apps '
                        "create check runs; skipped for %s#%d",
                        pull.repository,
                        pull.number,
                    )
                    return
                await self._check(
                    pull.repository,
                    pull.head_sha,
                    settings["check_name"],
                    "success",
                    summary=f"Plugport saw PR #{pull.number} at {pull.head_sha[:7]}.",
                )
        except GitHubError as exc:
            self.log.error("PR %s#%d: %s", pull.repository, pull.number, exc)

    # --- commands -----------------------------------------------------------------------------

    @command("github.comment")
    async def comment(self, repo: str, number: int, body: str) -> dict[str, Any]:
        """Comment on pull request (or issue) ``number`` of ``repo`` (``owner/name``)."""
        created = await self._comment(_repo(repo), int(number), body)
        return {"id": created["id"], "url": created["html_url"]}

    @command("github.check")
    async def check(
        self, repo: str, sha: str, name: str = "Plugport", conclusion: str = "success"
    ) -> dict[str, Any]:
        """Report a completed check run on commit ``sha`` (App auth only)."""
        settings = await self._settings()
        if settings["auth"] != "app":
            raise GitHubError(
                403, 'check runs need auth = "app": GitHub lets only Apps create them'
            )
        run = await self._check(_repo(repo), sha, name, conclusion, summary="Reported by hand.")
        return {"id": run["id"], "status": run["status"], "conclusion": run["conclusion"]}

    @command("github.pulls")
    async def pulls(self, repo: str, state: str = "open") -> list[dict[str, Any]]:
        """Every pull request of ``repo`` in ``state``, following GitHub's pages (at most
        ``max_pages`` of 100)."""
        settings = await self._settings()
        url: str | None = f"{API}/repos/{_repo(repo)}/pulls?state={state}&per_page=100"
        found: list[dict[str, Any]] = []
        pages = 0
        while url is not None and pages < settings["max_pages"]:
            answer = await self._call("GET", url, what=f"listing {repo}'s pull requests")
            items = _json(answer, f"listing {repo}'s pull requests")
            if not isinstance(items, list):
                raise GitHubError(
                    answer.status, f"GitHub's pull request list for {repo} is not a list"
                )
            for item in items:
                found.append(_pull_summary(item, repo))
            url, pages = next_page(answer.headers.get("link")), pages + 1
        if url is not None:
            self.log.warning(
                "listed the first %d pages of %s's pull requests only (max_pages)", pages, repo
            )
        return found

    @command("github.test")
    async def test(self) -> int:
        """Publish a sample notification, to see that chat and mail plugins pick it up."""
        return int(
            await self.api.events.publish(
                TOPIC,
                {
                    "source": "github",
                    "title": "Test notification from GitHub",
                    "text": "The GitHub plugin is connected to this workspace.",
                    "url": "https://github.com",
                    "severity": "info",
                },
            )
        )

    # --- GitHub calls -------------------------------------------------------------------------

    async def _comment(self, repo: str, number: int, body: str) -> dict[str, Any]:
        what = f"commenting on {repo}#{number}"
        answer = await self._call(
            "POST", f"{API}/repos/{repo}/issues/{number}/comments", json={"body": body}, what=what
        )
        return _object(answer, what, "id", "html_url")

    async def _check(
        self, repo: str, sha: str, name: str, conclusion: str, *, summary: str
    ) -> dict[str, Any]:
        """Create the run in progress, then complete it: how a check that does work reports,
        so a reader of the PR sees it start."""
        what = f"creating check run {name!r} on {repo}@{sha[:7]}"
        created = _object(
            await self._call(
                "POST",
                f"{API}/repos/{repo}/check-runs",
                json={"name": name, "head_sha": sha, "status": "in_progress"},
                what=what,
            ),
            what,
            "id",
        )
        what = f"completing check run {created['id']} on {repo}"
        return _object(
            await self._call(
                "PATCH",
                f"{API}/repos/{repo}/check-runs/{created['id']}",
                json={
                    "conclusion": conclusion,
                    "output": {"title": f"{name}: {conclusion}", "summary": summary},
                },
                what=what,
            ),
            what,
            "id",
            "status",
            "conclusion",
        )

    async def _call(self, method: str, url: str, *, json: Any = None, what: str) -> Response:
        """One GitHub call, with GitHub's headers and the configured authentication. The
        SDK's retry waits out GitHub's rate limits (a 429, or a 403 with ``retry-after`` or no
        requests left) and, for reads, a 5xx, within ``retry_budget_s``. An installation token
        GitHub no longer takes (401) is replaced once."""
        settings = await self._settings()
        policy = RetryPolicy(
            attempts=settings["retry_attempts"], budget_s=float(settings["retry_budget_s"])
        )
        for renewed in (False, True):
            headers, credential = await self._auth(settings)
            answer = await self.api.net.fetch(
                url, method=method, headers=headers, json=json, credential=credential, retry=policy
            )
            if answer.status < 400:
                return answer
            if answer.status != 401 or credential is not None or renewed:
                break
            self._installation_token = None  # revoked early: a new one, once
        raise GitHubError(
            answer.status,
            failure_message(answer.status, answer.body, auth=settings["auth"], what=what),
        )

    async def _auth(self, settings: dict[str, Any]) -> tuple[dict[str, str], str | None]:
        """Headers and credential name for a call: the host's ``token``, or this worker's
        installation token."""
        headers = base_headers()
        if settings["auth"] == "token":
            return headers, "token"
        token = await self._installation(settings)
        return {**headers, "Authorization": f"Bearer {token}"}, None

    async def _installation(self, settings: dict[str, Any]) -> str:
        async with self._token_lock:  # concurrent deliveries share one exchange
            cached = self._installation_token
            if cached is not None and token_is_fresh(cached[1], time.time()):
                return cached[0]
            app_id, installation = settings["app_id"], settings["installation_id"]
            if not app_id or not installation:
                raise GitHubError(
                    0,
                    'auth = "app" needs the app_id and installation_id settings '
                    "(the App's settings page and its installation's URL)",
                )
            signing_input = jwt_signing_input(app_id, time.time())
            signature = await self.api.secrets.sign("app_key", signing_input, "rs256")
            what = f"getting an installation token for installation {installation}"
            answer = await self.api.net.fetch(
                f"{API}/app/installations/{installation}/access_tokens",
                method="POST",
                headers={**base_headers(), "Authorization": f"Bearer {signing_input}.{signature}"},
                retry=RetryPolicy(
                    attempts=settings["retry_attempts"],
                    budget_s=float(settings["retry_budget_s"]),
                    retry_unsafe=True,  # a token request has no effect but a new token
                ),
            )
            if answer.status != 201:
                raise GitHubError(
                    answer.status,
                    failure_message(answer.status, answer.body, auth="app", what=what),
                )
            body = _object(answer, what, "token", "expires_at")
            try:
                expires = expires_at_epoch(str(body["expires_at"]))
            except ValueError:
                raise GitHubError(answer.status, f"{what}: expires_at is not a time") from None
            self._installation_token = (str(body["token"]), expires)
            return str(body["token"])

    async def _settings(self) -> dict[str, Any]:
        return dict(await self.api.config.get())


def _repo(repo: str) -> str:
    """``owner/name``, refused before any call when it is not one."""
    if not re.fullmatch(REPO_PATTERN, repo):
        raise ValueError(f"repo must be 'owner/name', not {repo!r}")
    return repo


def _json(answer: Response, what: str) -> Any:
    try:
        return answer.json()
    except ValueError:
        raise GitHubError(answer.status, f"GitHub's answer to {what} is not JSON") from None


def _object(answer: Response, what: str, *fields: str) -> dict[str, Any]:
    """The answer's JSON object, which must carry ``fields``: a GitHub answer without them is
    not one this plugin understands, and saying so beats a KeyError."""
    data = _json(answer, what)
    if not isinstance(data, dict):
        raise GitHubError(answer.status, f"GitHub's answer to {what} is not a JSON object")
    missing = [name for name in fields if name not in data]
    if missing:
        raise GitHubError(answer.status, f"GitHub's answer to {what} lacks {', '.join(missing)}")
    return data


def _pull_summary(item: Any, repo: str) -> dict[str, Any]:
    if not isinstance(item, dict) or not all(k in item for k in ("number", "title", "html_url")):
        raise GitHubError(
            200, f"a pull request in GitHub's list for {repo} lacks number, title or html_url"
        )
    user = item.get("user") if isinstance(item.get("user"), dict) else {}
    return {
        "number": item["number"],
        "title": item["title"],
        "url": item["html_url"],
        "author": user.get("login", ""),
        "state": item.get("state", ""),
    }
