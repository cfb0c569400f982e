"""GitHub for a Plugport workspace: turns verified webhook deliveries into ``notify.github``
events, welcomes new pull requests, reports check runs, and lets an operator comment, report a
check or list pull requests by hand. As a task processor it summarises a pull request for its
reviewers (``GITHUB_PR_REVIEW``), triages an issue (``GITHUB_ISSUE_ANALYSIS``) and writes
release notes from merged pull requests (``GITHUB_RELEASE_NOTES``); the decisions live in
``review.py``, ``analysis.py`` and ``release_notes.py``, this module only calls GitHub.

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
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from github_plugin.analysis import (
    analysis_markdown,
    classify,
    find_duplicates,
    needs_info,
    suggest_labels,
)
from github_plugin.notices import (
    HANDLED_EVENTS,
    MalformedDeliveryError,
    PullRequest,
    notice_for_pull_request,
    notice_for_push,
    pull_request_of,
    welcome_comment,
)
from github_plugin.release_notes import (
    DEFAULT_SECTIONS,
    merged_in_window,
    page_is_past,
    parse_moment,
    release_notes,
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
from github_plugin.review import MARKER, files_of, review_summary
from plugport.sdk import Plugin, Response, RetryPolicy, Task, WebhookEvent, command, task, webhook

TOPIC = "notify.github"
REPO_PATTERN = r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"
MAX_FILE_PAGES = 30  # GitHub lists at most 3000 files of a pull request: 30 pages of 100
REVIEW = "GITHUB_PR_REVIEW"


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
        if pull.action in ("opened", "synchronize", "reopened") and settings["review_on_open"]:
            # The head commit is the idempotency key: a redelivery (or a reopen at the same
            # commit) is not reviewed twice, a new push is.
            payload = {"repo": pull.repository, "number": pull.number, "head_sha": pull.head_sha}
            queued = await self.api.tasks.submit(REVIEW, payload)
            self.log.info("queued %s %s for %s#%d", REVIEW, queued, pull.repository, pull.number)
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

    # --- tasks --------------------------------------------------------------------------------

    @task("GITHUB_PR_REVIEW")
    async def review_pull_request(self, t: Task) -> dict[str, Any]:
        """A review summary of a pull request at its current head; with ``review_comment``
        posted as a comment, once per head commit (a retried attempt finds its marker)."""
        repo, number = _repo(t.payload["repo"]), int(t.payload["number"])
        settings = await self._settings()
        await self.api.tasks.progress(5, f"reading {repo}#{number}")
        what = f"reading pull request {repo}#{number}"
        answer = await self._call("GET", f"{API}/repos/{repo}/pulls/{number}", what=what)
        pull = _object(answer, what, "number", "title", "html_url", "head")
        if not isinstance(pull["head"], dict) or not isinstance(pull["head"].get("sha"), str):
            raise GitHubError(answer.status, f"GitHub's answer to {what} lacks head.sha")
        items: list[Any] = []
        url = f"{API}/repos/{repo}/pulls/{number}/files?per_page=100"
        async for page in self._pages(url, f"listing {repo}#{number}'s files", MAX_FILE_PAGES):
            items += page
            await self.api.tasks.progress(min(80, 10 + len(items) // 50), f"{len(items)} files")
        try:
            files = files_of(items)
        except ValueError as exc:
            raise GitHubError(200, f"GitHub's file list of {repo}#{number}: {exc}") from None
        summary = {"repo": repo, **review_summary(pull, files)}
        if settings["review_comment"]:
            await self.api.tasks.progress(90, "commenting")
            marker = MARKER.format(sha=summary["head_sha"])
            summary["comment_url"] = await self._comment_once(
                repo, number, summary["markdown"], marker, settings["max_pages"]
            )
        await self.api.tasks.progress(100, f"risk {summary['risk']}")
        return summary

    @task("GITHUB_ISSUE_ANALYSIS")
    async def analyse_issue(self, t: Task) -> dict[str, Any]:
        """Kind, suggested labels, likely duplicates among the open issues, and whether the
        reporter owes details; with ``apply_labels`` the labels are added (adding a label
        twice changes nothing, so a retry is harmless)."""
        repo, number = _repo(t.payload["repo"]), int(t.payload["number"])
        settings = await self._settings()
        await self.api.tasks.progress(5, f"reading {repo}#{number}")
        what = f"reading issue {repo}#{number}"
        answer = await self._call("GET", f"{API}/repos/{repo}/issues/{number}", what=what)
        issue = _object(answer, what, "number", "title", "html_url")
        if "pull_request" in issue:
            raise GitHubError(
                answer.status, f"{repo}#{number} is a pull request: submit {REVIEW} for it"
            )
        title, body = str(issue["title"]), issue.get("body") or ""
        author = _login(issue.get("user"))
        have = [str(x.get("name")) for x in issue.get("labels") or [] if isinstance(x, dict)]
        await self.api.tasks.progress(25, "reading comments")
        comments_url = f"{API}/repos/{repo}/issues/{number}/comments?per_page=100"
        author_says: list[str] = []
        async for page in self._pages(comments_url, what, settings["max_pages"]):
            author_says += [
                str(c.get("body") or "")
                for c in page
                if isinstance(c, dict) and author and _login(c.get("user")) == author
            ]
        await self.api.tasks.progress(50, "looking for duplicates")
        open_issues: list[Any] = []
        listing = f"{API}/repos/{repo}/issues?state=open&per_page=100"
        async for page in self._pages(
            listing, f"listing {repo}'s open issues", settings["max_pages"]
        ):
            open_issues += [i for i in page if isinstance(i, dict) and "number" in i]
        kind = classify(title, body, have)
        labels = suggest_labels(kind, title, body, have)
        duplicates = find_duplicates(number, title, open_issues)
        ask = needs_info(kind, body, author_says)
        applied: list[str] = []
        if settings["apply_labels"] and labels:
            await self.api.tasks.progress(90, "adding labels")
            what = f"labelling {repo}#{number}"
            await self._call(
                "POST",
                f"{API}/repos/{repo}/issues/{number}/labels",
                json={"labels": labels},
                what=what,
            )
            applied = labels
        await self.api.tasks.progress(100, kind)
        return {
            "repo": repo,
            "number": number,
            "url": str(issue["html_url"]),
            "kind": kind,
            "labels": labels,
            "applied": applied,
            "duplicates": duplicates,
            "needs_info": ask,
            "markdown": analysis_markdown(number, kind, labels, duplicates, ask),
        }

    @task("GITHUB_RELEASE_NOTES")
    async def write_release_notes(self, t: Task) -> dict[str, Any]:
        """Notes from the pull requests merged after ``since`` (and up to ``until``): closed
        pull requests, most recently updated first, until a page reaches ones last updated
        before ``since``. Reads only: a retry is harmless."""
        repo = _repo(t.payload["repo"])
        settings = await self._settings()
        since = await self._moment(repo, "since", t.payload["since"])
        until_text = t.payload.get("until")
        until = await self._moment(repo, "until", until_text) if until_text else None
        kept: list[Any] = []
        pages, past = 0, False
        listing = f"{API}/repos/{repo}/pulls?state=closed&sort=updated&direction=desc&per_page=100"
        async for page in self._pages(
            listing, f"listing {repo}'s closed pull requests", settings["max_pages"]
        ):
            pages += 1
            kept += merged_in_window([p for p in page if isinstance(p, dict)], since, until)
            await self.api.tasks.progress(min(90, pages * 10), f"{len(kept)} merged so far")
            if page_is_past(page, since):
                past = True
                break
        if not past:
            self.log.warning(
                "release notes for %s: stopped after max_pages (%d) pages; older merges are "
                "left out",
                repo,
                settings["max_pages"],
            )
        window = f"since {t.payload['since']}" + (f" until {until_text}" if until_text else "")
        notes = release_notes(
            repo,
            kept,
            title=f"{repo}: changes {window}",
            sections=settings.get("release_sections") or DEFAULT_SECTIONS,
        )
        await self.api.tasks.progress(100, f"{notes['count']} pull requests")
        return {
            "repo": repo,
            "since": since.isoformat(),
            "until": until.isoformat() if until else None,
            "complete": past,
            **notes,
        }

    async def _moment(self, repo: str, field: str, text: str) -> Any:
        """An ISO date, or the publication time of the release tagged ``text``."""
        try:
            moment = parse_moment(text)
        except ValueError:
            raise ValueError(f"{field} {text!r} looks like a date but is not one") from None
        if moment is not None:
            return moment
        what = f"reading release {text!r} of {repo} ({field})"
        answer = await self._call(
            "GET", f"{API}/repos/{repo}/releases/tags/{quote(text, safe='')}", what=what
        )
        release = _object(answer, what, "tag_name")
        published = release.get("published_at") or release.get("created_at")
        moment = parse_moment(str(published)) if published else None
        if moment is None:
            raise GitHubError(answer.status, f"release {text!r} of {repo} has no publication time")
        return moment

    async def _pages(self, url: str, what: str, max_pages: int) -> AsyncIterator[list[Any]]:
        """Each page of a GitHub list, following ``Link: rel="next"``, at most ``max_pages``."""
        next_url: str | None = url
        for _ in range(max_pages):
            if next_url is None:
                return
            answer = await self._call("GET", next_url, what=what)
            items = _json(answer, what)
            if not isinstance(items, list):
                raise GitHubError(answer.status, f"GitHub's answer to {what} is not a list")
            yield items
            next_url = next_page(answer.headers.get("link"))

    async def _comment_once(
        self, repo: str, number: int, body: str, marker: str, max_pages: int
    ) -> str:
        """The URL of the comment carrying ``marker``: an existing one (an earlier attempt
        posted it and then failed, or the answer was lost) or a new one."""
        url = f"{API}/repos/{repo}/issues/{number}/comments?per_page=100"
        async for page in self._pages(url, f"reading {repo}#{number}'s comments", max_pages):
            for comment in page:
                if isinstance(comment, dict) and marker in str(comment.get("body") or ""):
                    return str(comment.get("html_url", ""))
        return str((await self._comment(repo, number, body))["html_url"])

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


def _login(user: Any) -> str:
    return str(user.get("login", "")) if isinstance(user, dict) else ""


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
