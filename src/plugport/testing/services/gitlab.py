"""A local fake of GitLab's REST API v4 (merge requests and their notes) and of GitLab as a
webhook sender (merge request, push and note hooks), for tests of plugins that talk to
``gitlab.com``.

Shapes follow GitLab's public documentation:

- authentication (``PRIVATE-TOKEN`` or ``Authorization: Bearer``), status codes and error
  bodies: https://docs.gitlab.com/api/rest/troubleshooting/ and
  https://docs.gitlab.com/api/rest/authentication/
- URL-encoded project paths (``group%2Fproject``): https://docs.gitlab.com/api/rest/#namespaced-paths
- offset pagination headers: https://docs.gitlab.com/api/rest/#pagination
- merge requests: https://docs.gitlab.com/api/merge_requests/
- notes: https://docs.gitlab.com/api/notes/#create-new-merge-request-note
- rate-limit headers: https://docs.gitlab.com/user/gitlab_com/#rate-limits-on-gitlabcom
- webhook delivery headers and payloads:
  https://docs.gitlab.com/user/project/integrations/webhooks/#delivery-headers and
  https://docs.gitlab.com/user/project/integrations/webhook_events/
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlencode

from plugport.testing.services._service import (
    FakeService,
    Refusal,
    Reply,
    Sent,
    ServiceRequest,
    route,
    send,
)

__all__ = ["EVENT_HEADERS", "FakeGitLab", "GitLabDelivery"]

API = "/api/v4"
DEFAULT_PER_PAGE = 20  # GitLab's default page size
MAX_PER_PAGE = 100  # a larger per_page is clamped to this
MAX_NOTE_CHARS = 1_000_000
RATE_LIMIT = 2000  # requests a minute (GitLab.com's authenticated API limit)
VERSION = "17.6.0-ee"

EVENT_HEADERS = {
    "merge_request": "Merge Request Hook",
    "push": "Push Hook",
    "note": "Note Hook",
}
"""``X-Gitlab-Event`` for each ``object_kind`` this fake sends."""

_MR_STATES = ("opened", "closed", "locked", "merged")
_ACTION_STATE = {"open": "opened", "reopen": "opened", "close": "closed", "merge": "merged"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class GitLabDelivery:
    """A webhook delivery as GitLab sends it: the JSON body and its headers."""

    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class FakeGitLab(FakeService):
    """GitLab.com's REST API for merge requests and notes, stateful: :meth:`add_project` and
    :meth:`add_merge_request` seed it, ``notes`` holds what plugins commented. Tokens in
    ``tokens`` are accepted (``PRIVATE-TOKEN`` or a bearer token); ``read_only`` tokens get
    GitLab's 403 on writes."""

    hosts: ClassVar[tuple[str, ...]] = ("gitlab.com",)
    name: ClassVar[str] = "gitlab"

    def __init__(self, *, tokens: tuple[str, ...] = ("glpat-test-token",)) -> None:
        super().__init__()
        self.tokens = set(tokens)
        self.read_only: set[str] = set()
        self.projects: dict[int, dict[str, Any]] = {}
        self.merge_requests: dict[tuple[int, int], dict[str, Any]] = {}
        self.notes: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self._observed = 0
        self._next_id = 1000

    # --- seeding ---------------------------------------------------------------------------

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_project(self, path_with_namespace: str, *, project_id: int | None = None) -> int:
        """A project (``group/name``); returns its numeric id."""
        number = project_id if project_id is not None else self._id()
        namespace, _, path = path_with_namespace.rpartition("/")
        self.projects[number] = {
            "id": number,
            "name": path,
            "path": path,
            "path_with_namespace": path_with_namespace,
            "namespace": namespace,
            "web_url": f"https://gitlab.com/{path_with_namespace}",
            "default_branch": "main",
        }
        return number

    def _user(self, username: str) -> dict[str, Any]:
        if username not in self.users:
            self.users[username] = {
                "id": self._id(),
                "username": username,
                "name": username.capitalize(),
                "state": "active",
                "locked": False,
                "avatar_url": f"https://gitlab.com/uploads/-/system/user/avatar/{username}.png",
                "web_url": f"https://gitlab.com/{username}",
            }
        return self.users[username]

    def add_merge_request(
        self,
        project: str | int,
        title: str,
        *,
        iid: int | None = None,
        author: str = "ada",
        state: str = "opened",
        source_branch: str = "feature",
        target_branch: str = "main",
        description: str = "",
    ) -> dict[str, Any]:
        """A merge request in ``project`` (its path or id), as ``GET .../merge_requests/:iid``
        returns it."""
        number = project if isinstance(project, int) else self._project_id(project)
        if number is None:
            number = self.add_project(str(project))
        if state not in _MR_STATES:
            raise ValueError(f"state must be one of {_MR_STATES}")
        info = self.projects[number]
        if iid is None:
            iid = 1 + max((i for p, i in self.merge_requests if p == number), default=0)
        created = _now()
        merge_request = {
            "id": self._id(),
            "iid": iid,
            "project_id": number,
            "title": title,
            "description": description,
            "state": state,
            "created_at": created,
            "updated_at": created,
            "merged_by": None,
            "merge_user": None,
            "merged_at": created if state == "merged" else None,
            "closed_by": None,
            "closed_at": created if state == "closed" else None,
            "target_branch": target_branch,
            "source_branch": source_branch,
            "user_notes_count": 0,
            "upvotes": 0,
            "downvotes": 0,
            "author": self._user(author),
            "assignees": [],
            "assignee": None,
            "reviewers": [],
            "source_project_id": number,
            "target_project_id": number,
            "labels": [],
            "draft": False,
            "work_in_progress": False,
            "milestone": None,
            "merge_when_pipeline_succeeds": False,
            "merge_status": "can_be_merged",
            "detailed_merge_status": "mergeable",
            "sha": uuid.uuid4().hex + uuid.uuid4().hex[:8],
            "merge_commit_sha": None,
            "squash_commit_sha": None,
            "discussion_locked": None,
            "should_remove_source_branch": None,
            "force_remove_source_branch": True,
            "reference": f"!{iid}",
            "references": {
                "short": f"!{iid}",
                "relative": f"!{iid}",
                "full": f"{info['path_with_namespace']}!{iid}",
            },
            "web_url": f"{info['web_url']}/-/merge_requests/{iid}",
            "time_stats": {
                "time_estimate": 0,
                "total_time_spent": 0,
                "human_time_estimate": None,
                "human_total_time_spent": None,
            },
            "squash": False,
            "task_completion_status": {"count": 0, "completed_count": 0},
            "has_conflicts": False,
            "blocking_discussions_resolved": True,
        }
        self.merge_requests[(number, iid)] = merge_request
        self.notes.setdefault((number, iid), [])
        return merge_request

    # --- what a service shapes -------------------------------------------------------------

    def error_reply(self, status: int, message: str) -> Reply:
        """GitLab's errors: ``{"message": "<status> <reason>"}``; a 429 from its rate limiter
        is plain text (``Retry later``)."""
        if status == 429:
            return Reply(429, body=b"Retry later\n", headers={"Content-Type": "text/plain"})
        reasons = {
            400: "400 Bad request",
            401: "401 Unauthorized",
            403: "403 Forbidden",
            404: "404 Not Found",
            405: "405 Method Not Allowed",
            413: "413 Request Entity Too Large",
            500: "500 Internal Server Error",
            502: "502 Bad Gateway",
            503: "503 Service Unavailable",
            504: "504 Gateway Timeout",
        }
        return Reply(status, json={"message": reasons.get(status, f"{status} {message}")})

    def rate_limit_headers(self, retry_after_s: int) -> dict[str, str]:
        reset = int(time.time()) + retry_after_s
        return {
            **self._limits(remaining=0, reset=reset),
            "Retry-After": str(retry_after_s),
        }

    def _limits(self, *, remaining: int | None = None, reset: int | None = None) -> dict[str, str]:
        """The ``RateLimit-*`` headers GitLab.com sends on API answers."""
        with self._lock:
            self._observed += 1
            observed = self._observed
        left = max(0, RATE_LIMIT - observed) if remaining is None else remaining
        when = reset if reset is not None else (int(time.time()) // 60 + 1) * 60
        return {
            "RateLimit-Limit": str(RATE_LIMIT),
            "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Observed": str(observed),
            "RateLimit-Remaining": str(left),
            "RateLimit-Reset": str(when),
            "RateLimit-ResetTime": datetime.fromtimestamp(when, UTC).strftime(
                "%a, %d %b %Y %H:%M:%S GMT"
            ),
        }

    def authenticate(self, request: ServiceRequest) -> Reply | None:
        token = self._token(request)
        if token is None or token not in self.tokens:
            return self.error_reply(401, "unauthorized")
        if token in self.read_only and request.method != "GET":
            return self.error_reply(403, "forbidden")
        return None

    @staticmethod
    def _token(request: ServiceRequest) -> str | None:
        if "private-token" in request.headers:
            return request.headers["private-token"]
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value:
            return value.strip()
        return None

    def _ok(self, status: int, payload: Any, **headers: str) -> Reply:
        return Reply(status, json=payload, headers={**self._limits(), **headers})

    def _project_id(self, reference: str) -> int | None:
        """A project from its id or its URL-encoded (or plain) ``namespace/path``."""
        value = unquote(reference)
        if value.isdigit():
            return int(value) if int(value) in self.projects else None
        for number, project in self.projects.items():
            if project["path_with_namespace"] == value:
                return number
        return None

    def _project(self, request: ServiceRequest) -> int:
        number = self._project_id(request.params["project"])
        if number is None:
            raise Refusal(Reply(404, json={"message": "404 Project Not Found"}))
        return number

    def _merge_request(self, request: ServiceRequest) -> dict[str, Any]:
        number = self._project(request)
        found = self.merge_requests.get((number, int(request.params["iid"])))
        if found is None:
            raise Refusal(Reply(404, json={"message": "404 Not found"}))
        return found

    # --- the API ---------------------------------------------------------------------------

    @route("GET", API + r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)")
    def get_merge_request(self, request: ServiceRequest) -> Reply:
        return self._ok(200, self._merge_request(request))

    @route("GET", API + r"/projects/(?P<project>[^/]+)/merge_requests")
    def list_merge_requests(self, request: ServiceRequest) -> Reply:
        number = self._project(request)
        state = request.query.get("state", "all")
        if state not in (*_MR_STATES, "all"):
            raise Refusal(Reply(400, json={"error": "state does not have a valid value"}))
        page, per_page = _paging(request.query)
        found = [
            mr
            for (p, _), mr in sorted(self.merge_requests.items(), key=lambda kv: -kv[0][1])
            if p == number and state in ("all", mr["state"])
        ]
        headers = _page_headers(
            f"https://gitlab.com{request.path}", request.query, page, per_page, len(found)
        )
        start = (page - 1) * per_page
        return self._ok(200, found[start : start + per_page], **headers)

    @route("POST", API + r"/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes")
    def create_note(self, request: ServiceRequest) -> Reply:
        merge_request = self._merge_request(request)
        given = _params(request)
        if "body" not in given:
            raise Refusal(Reply(400, json={"error": "body is missing"}))
        body = given["body"]
        if not isinstance(body, str):
            raise Refusal(Reply(400, json={"error": "body is invalid"}))
        problems = []
        if not body.strip():
            problems.append("can't be blank")
        if len(body) > MAX_NOTE_CHARS:
            problems.append(f"is too long (maximum is {MAX_NOTE_CHARS} characters)")
        if problems:
            raise Refusal(Reply(400, json={"message": {"note": problems}}))
        token = self._token(request) or ""
        author = self._user("project_bot" if token else "ghost")
        created = _now()
        note = {
            "id": self._id(),
            "type": None,
            "body": body,
            "attachment": None,
            "author": author,
            "created_at": created,
            "updated_at": created,
            "system": False,
            "noteable_id": merge_request["id"],
            "noteable_type": "MergeRequest",
            "project_id": merge_request["project_id"],
            "noteable_iid": merge_request["iid"],
            "commands_changes": {},
            "resolvable": False,
            "confidential": False,
            "internal": bool(given.get("internal", False)),
            "imported": False,
            "imported_from": "none",
        }
        with self._lock:
            key = (merge_request["project_id"], merge_request["iid"])
            self.notes.setdefault(key, []).append(note)
            merge_request["user_notes_count"] += 1
        return self._ok(201, note)

    def notes_on(self, project: str | int, iid: int) -> list[dict[str, Any]]:
        """The notes made on a merge request, oldest first."""
        number = project if isinstance(project, int) else self._project_id(project)
        return list(self.notes.get((number or 0, iid), []))

    # --- GitLab as a webhook sender --------------------------------------------------------

    def delivery(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        token: str | None = None,
        *,
        instance: str = "https://gitlab.com",
        webhook_uuid: str | None = None,
        **fields: Any,
    ) -> GitLabDelivery:
        """The body and headers GitLab sends for an event of ``kind`` (``merge_request``,
        ``push``, ``note``): ``payload`` as given, or a realistic one built from ``fields``
        (see :meth:`merge_request_payload` and :meth:`push_payload`). ``token`` is the hook's
        secret token, sent as ``X-Gitlab-Token``."""
        if kind not in EVENT_HEADERS:
            raise ValueError(f"kind must be one of {sorted(EVENT_HEADERS)}")
        if payload is None:
            if kind == "merge_request":
                payload = self.merge_request_payload(**fields)
            elif kind == "push":
                payload = self.push_payload(**fields)
            else:
                payload = self.note_payload(**fields)
        event_uuid = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"GitLab/{VERSION}",
            "X-Gitlab-Event": EVENT_HEADERS[kind],
            "X-Gitlab-Webhook-UUID": webhook_uuid or str(uuid.uuid4()),
            "X-Gitlab-Instance": instance,
            "X-Gitlab-Event-UUID": event_uuid,
            "Idempotency-Key": str(uuid.uuid4()),
        }
        if token is not None:
            headers["X-Gitlab-Token"] = token
        return GitLabDelivery(json.dumps(payload).encode(), headers)

    def send(self, url: str, delivery: GitLabDelivery) -> Sent:
        """POST a delivery to a receiver (Plugport's hook URL) as GitLab does."""
        return send(url, delivery.body, delivery.headers)

    def _project_block(self, path_with_namespace: str) -> dict[str, Any]:
        number = self._project_id(path_with_namespace) or self.add_project(path_with_namespace)
        project = self.projects[number]
        web_url = project["web_url"]
        return {
            "id": number,
            "name": project["name"],
            "description": "",
            "web_url": web_url,
            "avatar_url": None,
            "git_ssh_url": f"git@gitlab.com:{path_with_namespace}.git",
            "git_http_url": f"{web_url}.git",
            "namespace": project["namespace"],
            "visibility_level": 0,
            "path_with_namespace": path_with_namespace,
            "default_branch": project["default_branch"],
            "ci_config_path": "",
            "homepage": web_url,
            "url": f"git@gitlab.com:{path_with_namespace}.git",
            "ssh_url": f"git@gitlab.com:{path_with_namespace}.git",
            "http_url": f"{web_url}.git",
        }

    def _user_block(self, username: str) -> dict[str, Any]:
        user = self._user(username)
        return {
            "id": user["id"],
            "name": user["name"],
            "username": username,
            "avatar_url": user["avatar_url"],
            "email": "[REDACTED]",
        }

    def merge_request_payload(
        self,
        *,
        project: str = "acme/api",
        iid: int = 1,
        title: str = "Fix login",
        action: str = "open",
        user: str = "ada",
        source_branch: str = "fix-login",
        target_branch: str = "main",
        description: str = "",
    ) -> dict[str, Any]:
        """A ``Merge Request Hook`` body (``object_kind: merge_request``)."""
        block = self._project_block(project)
        author = self._user_block(user)
        state = _ACTION_STATE.get(action, "opened")
        now = _now()
        sha = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        return {
            "object_kind": "merge_request",
            "event_type": "merge_request",
            "user": author,
            "project": block,
            "object_attributes": {
                "id": self._id(),
                "iid": iid,
                "target_branch": target_branch,
                "source_branch": source_branch,
                "source_project_id": block["id"],
                "author_id": author["id"],
                "assignee_ids": [],
                "assignee_id": None,
                "reviewer_ids": [],
                "title": title,
                "created_at": now,
                "updated_at": now,
                "state_id": {"opened": 1, "closed": 2, "merged": 3}[state],
                "state": state,
                "blocking_discussions_resolved": True,
                "merge_status": "can_be_merged",
                "detailed_merge_status": "mergeable",
                "target_project_id": block["id"],
                "description": description,
                "draft": False,
                "work_in_progress": False,
                "url": f"{block['web_url']}/-/merge_requests/{iid}",
                "source": block,
                "target": block,
                "last_commit": {
                    "id": sha,
                    "message": f"{title}\n",
                    "title": title,
                    "timestamp": now,
                    "url": f"{block['web_url']}/-/commit/{sha}",
                    "author": {"name": author["name"], "email": "[REDACTED]"},
                },
                "labels": [],
                "action": action,
            },
            "labels": [],
            "changes": {},
            "repository": {
                "name": block["name"],
                "url": block["url"],
                "description": "",
                "homepage": block["web_url"],
            },
        }

    def push_payload(
        self,
        *,
        project: str = "acme/api",
        ref: str = "refs/heads/main",
        user: str = "ada",
        commits: list[str] | None = None,
    ) -> dict[str, Any]:
        """A ``Push Hook`` body (``object_kind: push``): one commit per message in
        ``commits``."""
        block = self._project_block(project)
        author = self._user_block(user)
        messages = ["Update README"] if commits is None else commits
        shas = [uuid.uuid4().hex + uuid.uuid4().hex[:8] for _ in messages]
        entries = [
            {
                "id": sha,
                "message": f"{message}\n",
                "title": message.splitlines()[0] if message else "",
                "timestamp": _now(),
                "url": f"{block['web_url']}/-/commit/{sha}",
                "author": {"name": author["name"], "email": "[REDACTED]"},
                "added": [],
                "modified": ["README.md"],
                "removed": [],
            }
            for sha, message in zip(shas, messages, strict=True)
        ]
        return {
            "object_kind": "push",
            "event_name": "push",
            "before": "0" * 40 if not shas else uuid.uuid4().hex + uuid.uuid4().hex[:8],
            "after": shas[-1] if shas else "0" * 40,
            "ref": ref,
            "ref_protected": ref == "refs/heads/main",
            "checkout_sha": shas[-1] if shas else None,
            "message": None,
            "user_id": author["id"],
            "user_name": author["name"],
            "user_username": user,
            "user_email": "",
            "user_avatar": author["avatar_url"],
            "project_id": block["id"],
            "project": block,
            "commits": entries,
            "total_commits_count": len(entries),
            "push_options": {},
            "repository": {
                "name": block["name"],
                "url": block["url"],
                "description": "",
                "homepage": block["web_url"],
                "git_http_url": block["git_http_url"],
                "git_ssh_url": block["git_ssh_url"],
                "visibility_level": 0,
            },
        }

    def note_payload(
        self,
        *,
        project: str = "acme/api",
        iid: int = 1,
        note: str = "Looks good",
        user: str = "ada",
        title: str = "Fix login",
    ) -> dict[str, Any]:
        """A ``Note Hook`` body for a comment on a merge request."""
        block = self._project_block(project)
        author = self._user_block(user)
        note_id = self._id()
        url = f"{block['web_url']}/-/merge_requests/{iid}"
        return {
            "object_kind": "note",
            "event_type": "note",
            "user": author,
            "project_id": block["id"],
            "project": block,
            "object_attributes": {
                "id": note_id,
                "note": note,
                "noteable_type": "MergeRequest",
                "author_id": author["id"],
                "created_at": _now(),
                "updated_at": _now(),
                "project_id": block["id"],
                "system": False,
                "action": "create",
                "url": f"{url}#note_{note_id}",
            },
            "repository": {"name": block["name"], "url": block["url"], "homepage": url},
            "merge_request": {"iid": iid, "title": title, "state": "opened", "url": url},
        }


def _params(request: ServiceRequest) -> dict[str, Any]:
    """A write's parameters: GitLab takes a JSON body or a form (or the query string)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind == "application/json":
        try:
            value = json.loads(request.body or b"{}")
        except ValueError:
            raise Refusal(Reply(400, json={"error": "400 Bad request"})) from None
        if not isinstance(value, dict):
            raise Refusal(Reply(400, json={"error": "400 Bad request"}))
        return {**request.query, **value}
    if kind == "application/x-www-form-urlencoded":
        return {**request.query, **request.form()}
    return dict(request.query)


def _paging(query: dict[str, str]) -> tuple[int, int]:
    """``page`` (1 on anything not a positive number) and ``per_page`` (default 20, at most
    100), as GitLab reads them."""
    try:
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        raise Refusal(Reply(400, json={"error": "page is invalid"})) from None
    try:
        per_page = int(query.get("per_page", str(DEFAULT_PER_PAGE)))
    except ValueError:
        raise Refusal(Reply(400, json={"error": "per_page is invalid"})) from None
    if per_page < 1:
        per_page = DEFAULT_PER_PAGE
    return page, min(per_page, MAX_PER_PAGE)


def _page_headers(
    base: str, query: dict[str, str], page: int, per_page: int, total: int
) -> dict[str, str]:
    """GitLab's offset pagination headers: ``x-page``, ``x-per-page``, ``x-next-page`` and
    ``x-prev-page`` (empty when there is none), ``x-total``, ``x-total-pages`` and a ``Link``
    with ``prev``, ``next``, ``first`` and ``last``."""
    pages = max(1, math.ceil(total / per_page))
    next_page = page + 1 if page < pages else None
    prev_page = page - 1 if page > 1 else None

    def link(number: int, rel: str) -> str:
        params = {**query, "page": str(number), "per_page": str(per_page)}
        return f'<{base}?{urlencode(params, quote_via=quote)}>; rel="{rel}"'

    links = []
    if prev_page is not None:
        links.append(link(prev_page, "prev"))
    if next_page is not None:
        links.append(link(next_page, "next"))
    links += [link(1, "first"), link(pages, "last")]
    return {
        "x-page": str(page),
        "x-per-page": str(per_page),
        "x-next-page": "" if next_page is None else str(next_page),
        "x-prev-page": "" if prev_page is None else str(prev_page),
        "x-total": str(total),
        "x-total-pages": str(pages),
        "Link": ", ".join(links),
    }
