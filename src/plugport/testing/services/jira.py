"""A local fake of Jira Cloud's REST API v3: issues created, read, transitioned and commented on,
the enhanced JQL search with its ``nextPageToken`` pages, basic auth on ``<site>.atlassian.net``
and OAuth 2.0 (3LO) bearer tokens on ``api.atlassian.com/ex/jira/{cloudid}``, and Atlassian's
rate-limit answers. Shapes follow the public reference:

- issues: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/
- comments: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-comments/
- search: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/
  (``/rest/api/3/search/jql``, the endpoint that replaced ``/rest/api/3/search``)
- Atlassian Document Format: https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/
- OAuth 2.0 (3LO): https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/
- rate limiting: https://developer.atlassian.com/cloud/jira/platform/rate-limiting/

The JQL is a small subset (``project``, ``status``, ``text``/``summary ~``, ``AND``, ``ORDER BY
created``); anything else gets Jira's 400 for a query it cannot run.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from plugport.testing.services._service import (
    FakeService,
    Refusal,
    Reply,
    ServiceRequest,
    route,
)

__all__ = ["FakeJira", "JiraIssue"]

_API = r"(?:/ex/jira/(?P<cloud>[^/]+))?/rest/api/3"
_KEY = r"(?P<key>[A-Za-z0-9_-]+)"
RATE_LIMIT = 100  # what X-RateLimit-Limit says; the fake never runs out by itself

# Jira's default (simplified) workflow: every transition is global, named as its target status.
STATUSES = {
    "To Do": ("10000", "new", "To Do"),
    "In Progress": ("3", "indeterminate", "In Progress"),
    "Done": ("10001", "done", "Done"),
}
TRANSITIONS = {"11": "To Do", "21": "In Progress", "31": "Done"}
ISSUE_TYPES = {"10001": "Task", "10002": "Bug", "10003": "Story", "10004": "Epic"}


@dataclass
class JiraIssue:
    """One issue as the fake keeps it; :meth:`FakeJira.view` renders the API's shape."""

    id: str
    key: str
    project: str
    summary: str
    issuetype: str
    description: dict[str, Any] | None
    status: str = "To Do"
    labels: list[str] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    comments: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[str] = field(default_factory=list)  # the ids applied, in order


class FakeJira(FakeService):
    """Jira Cloud for one site (``site``.atlassian.net, cloud id ``cloud_id``). Accepts the
    basic credential ``email:api_token`` on the site and the bearer ``access_token`` on
    ``api.atlassian.com``; see :attr:`basic_credential`."""

    hosts: ClassVar[tuple[str, ...]] = ("*.atlassian.net", "api.atlassian.com")
    name: ClassVar[str] = "jira"

    def __init__(
        self,
        *,
        site: str = "acme",
        email: str = "bot@acme.test",
        api_token: str = "jira-api-token-stand-in",  # noqa: S107 - a test's stand-in
        access_token: str = "jira-oauth-access-stand-in",  # noqa: S107
        cloud_id: str = "11111111-2222-3333-4444-555555555555",
    ) -> None:
        super().__init__()
        self.site = site
        self.email = email
        self.api_token = api_token
        self.access_token = access_token
        self.cloud_id = cloud_id
        self.projects: dict[str, dict[str, str]] = {}
        self.issues: dict[str, JiraIssue] = {}
        self._next_id = 10000
        self._tick = 0
        self.add_project("OPS", "Operations")

    # --- what a test sets up and reads ------------------------------------------------------

    @property
    def basic_credential(self) -> str:
        """The value an operator stores for a ``basic`` credential: ``email:api_token``."""
        return f"{self.email}:{self.api_token}"

    @property
    def site_url(self) -> str:
        return f"https://{self.site}.atlassian.net"

    def add_project(self, key: str, name: str | None = None) -> dict[str, str]:
        project = {"id": str(10000 + len(self.projects)), "key": key, "name": name or key}
        with self._lock:
            self.projects[key] = project
        return project

    def add_issue(
        self, project: str, summary: str, *, status: str = "To Do", issuetype: str = "Task"
    ) -> JiraIssue:
        """Seed an issue as if someone had created it (for searches and transitions)."""
        with self._lock:
            return self._create(project, summary, issuetype, None, status=status)

    # --- what Jira shapes -------------------------------------------------------------------

    def error_reply(self, status: int, message: str) -> Reply:
        """Jira's error collection: ``{"errorMessages": [...], "errors": {...}}``."""
        return Reply(status, json={"errorMessages": [message], "errors": {}})

    def rate_limit_headers(self, retry_after_s: int) -> dict[str, str]:
        """Atlassian's 429: ``Retry-After`` in seconds, the reset as an ISO 8601 time."""
        reset = datetime.now(UTC) + timedelta(seconds=retry_after_s)
        return {
            "Retry-After": str(retry_after_s),
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
            "X-RateLimit-NearLimit": "true",
            "RateLimit-Reason": "jira-quota-tenant-based",
        }

    def handle(self, request: ServiceRequest) -> Reply:
        reply = super().handle(request)
        if reply.status == 429:
            return reply
        # Rate-limit headers on ordinary answers too, as Atlassian sends them.
        headers = {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(RATE_LIMIT - 1),
            "X-RateLimit-NearLimit": "false",
            **reply.headers,
        }
        return Reply(reply.status, reply.json, reply.body, headers)

    def authenticate(self, request: ServiceRequest) -> Reply | None:
        host = request.headers.get("host", "").split(":")[0]
        if host == "api.atlassian.com":
            return self._authenticate_oauth(request)
        given = request.headers.get("authorization", "")
        if host != f"{self.site}.atlassian.net":
            return Reply(404, body=b"Site not found", headers={"Content-Type": "text/plain"})
        if request.params.get("cloud") is not None:  # /ex/jira/ is api.atlassian.com's
            return self.error_reply(404, "null for uri")
        expected = "Basic " + base64.b64encode(self.basic_credential.encode()).decode()
        if given != expected:
            # Jira Cloud's answer to missing or wrong basic credentials is plain text.
            return Reply(
                401,
                body=b"Client must be authenticated to access this resource.",
                headers={"Content-Type": "text/plain;charset=UTF-8"},
            )
        return None

    def _authenticate_oauth(self, request: ServiceRequest) -> Reply | None:
        """api.atlassian.com: a bearer token, and a cloud id this fake's site has."""
        if request.headers.get("authorization", "") != f"Bearer {self.access_token}":
            return Reply(401, json={"code": 401, "message": "Unauthorized"})
        if request.path.startswith("/ex/jira/") and request.params.get("cloud") != self.cloud_id:
            return Reply(404, json={"code": 404, "message": "Not Found"})
        return None

    # --- OAuth 2.0 (3LO) --------------------------------------------------------------------

    @route("GET", r"/oauth/token/accessible-resources")
    def accessible_resources(self, request: ServiceRequest) -> Reply:
        return Reply(
            json=[
                {
                    "id": self.cloud_id,
                    "url": self.site_url,
                    "name": self.site,
                    "scopes": ["read:jira-work", "write:jira-work"],
                    "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/x.png",
                }
            ]
        )

    # --- issues -----------------------------------------------------------------------------

    @route("POST", _API + r"/issue")
    def create_issue(self, request: ServiceRequest) -> Reply:
        body = self._json_object(request)
        fields = body.get("fields")
        if not isinstance(fields, dict):
            raise Refusal(_invalid({}, "Can not deserialize the request: 'fields' is missing."))
        errors: dict[str, str] = {}
        project = self._project_of(fields.get("project"))
        if project is None:
            errors["project"] = "Specify a valid project ID or key"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255:
            errors["summary"] = "Summary must be less than 255 characters."
        issuetype = self._issuetype_of(fields.get("issuetype"))
        if issuetype is None:
            errors["issuetype"] = (
                "Specify an issue type"
                if "issuetype" not in fields
                else "Specify a valid issue type"
            )
        description = fields.get("description")
        if description is not None and not _is_adf(description):
            errors["description"] = "Operation value must be an Atlassian Document"
        labels = fields.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            errors["labels"] = "Operation value must be a list of strings"
        if errors or project is None or issuetype is None or not isinstance(summary, str):
            raise Refusal(_invalid(errors))
        with self._lock:
            issue = self._create(project, summary, issuetype, description)
            issue.labels = list(labels)
        return Reply(
            201, json={"id": issue.id, "key": issue.key, "self": self._self(request, issue)}
        )

    @route("GET", _API + r"/issue/" + _KEY)
    def get_issue(self, request: ServiceRequest) -> Reply:
        issue = self._issue(request.params["key"])
        return Reply(json=self.view(issue, self._base(request), _fields_param(request, None)))

    @route("GET", _API + r"/issue/" + _KEY + r"/transitions")
    def get_transitions(self, request: ServiceRequest) -> Reply:
        issue = self._issue(request.params["key"])
        base = self._base(request)
        offered = [
            {
                "id": tid,
                "name": target,
                "to": _status(base, target),
                "hasScreen": False,
                "isGlobal": True,
                "isInitial": False,
                "isAvailable": True,
                "isConditional": False,
                "isLooped": False,
            }
            for tid, target in TRANSITIONS.items()
            if target != issue.status
        ]
        return Reply(json={"expand": "transitions", "transitions": offered})

    @route("POST", _API + r"/issue/" + _KEY + r"/transitions")
    def do_transition(self, request: ServiceRequest) -> Reply:
        issue = self._issue(request.params["key"])
        body = self._json_object(request)
        transition = body.get("transition")
        tid = transition.get("id") if isinstance(transition, dict) else None
        if not isinstance(tid, str):
            raise Refusal(_invalid({}, "Missing 'transition' identifier"))
        target = TRANSITIONS.get(tid)
        if target is None or target == issue.status:
            raise Refusal(_invalid({}, f"Transition id '{tid}' is not valid for this issue."))
        with self._lock:
            issue.status = target
            issue.transitions.append(tid)
        return Reply(204)

    @route("POST", _API + r"/issue/" + _KEY + r"/comment")
    def add_comment(self, request: ServiceRequest) -> Reply:
        issue = self._issue(request.params["key"])
        body = self._json_object(request).get("body")
        if body is None or (isinstance(body, dict) and not body.get("content")):
            raise Refusal(_invalid({"comment": "Comment body can not be empty!"}))
        if not _is_adf(body):
            raise Refusal(_invalid({"comment": "Operation value must be an Atlassian Document"}))
        now = _jira_time(datetime.now(UTC))
        with self._lock:
            cid = str(self._new_id())
            comment = {
                "id": cid,
                "self": f"{self._self(request, issue)}/comment/{cid}",
                "author": self._myself(),
                "body": body,
                "updateAuthor": self._myself(),
                "created": now,
                "updated": now,
                "jsdPublic": True,
            }
            issue.comments.append(comment)
        return Reply(201, json=comment)

    # --- search (enhanced JQL) --------------------------------------------------------------

    @route("GET", _API + r"/search/jql")
    def search_get(self, request: ServiceRequest) -> Reply:
        query = request.query
        fields = _fields_param(request, []) or []
        max_results = query.get("maxResults")
        return self._search(
            request, query.get("jql", ""), query.get("nextPageToken"), max_results, fields
        )

    @route("POST", _API + r"/search/jql")
    def search_post(self, request: ServiceRequest) -> Reply:
        body = self._json_object(request)
        fields = body.get("fields", [])
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise Refusal(_invalid({}, "Invalid request payload: 'fields' is a list of names."))
        return self._search(
            request, body.get("jql", ""), body.get("nextPageToken"), body.get("maxResults"), fields
        )

    def _search(
        self, request: ServiceRequest, jql: Any, token: Any, max_results: Any, fields: list[str]
    ) -> Reply:
        if not isinstance(jql, str):
            raise Refusal(_invalid({}, "Invalid request payload: 'jql' is a string."))
        try:
            size = 50 if max_results is None else int(max_results)
        except (TypeError, ValueError):
            raise Refusal(_invalid({}, "Invalid request payload: maxResults.")) from None
        size = max(1, min(size, 5000 if set(fields) <= {"id", "key"} else 100))
        with self._lock:
            matches = self.run_jql(jql)
        start = 0
        if token is not None:
            start = _read_token(token, jql)
        page = matches[start : start + size]
        base = self._base(request)
        answer: dict[str, Any] = {
            "issues": [self.view(issue, base, fields) for issue in page],
            "isLast": start + size >= len(matches),
        }
        if not answer["isLast"]:
            # Jira leaves nextPageToken out of the last page (it is not sent as null).
            answer["nextPageToken"] = _make_token(start + size, jql)
        return Reply(json=answer)

    def run_jql(self, jql: str) -> list[JiraIssue]:
        """The issues ``jql`` selects, in its order; :class:`Refusal` with Jira's 400 for what
        the fake's subset cannot run."""
        clauses, order = _parse_jql(jql)
        if not clauses:
            raise Refusal(
                _invalid(
                    {},
                    "Unbounded JQL queries are not allowed here. Please add a search "
                    "restriction to your query.",
                )
            )
        found = list(self.issues.values())
        for name, _operator, value in clauses:
            if name == "project":
                if value.upper() not in self.projects:
                    raise Refusal(
                        _invalid({}, f"The value '{value}' does not exist for the field 'project'.")
                    )
                found = [i for i in found if i.project == value.upper()]
            elif name == "status":
                if value.lower() not in {s.lower() for s in STATUSES}:
                    raise Refusal(
                        _invalid({}, f"The value '{value}' does not exist for the field 'status'.")
                    )
                found = [i for i in found if i.status.lower() == value.lower()]
            elif name in ("text", "summary"):
                needle = value.lower()
                found = [
                    i
                    for i in found
                    if needle in i.summary.lower()
                    or (name == "text" and needle in _adf_text(i.description).lower())
                ]
        found.sort(key=lambda i: (i.created, int(i.id)), reverse=order == "DESC")
        return found

    # --- shapes -----------------------------------------------------------------------------

    def view(self, issue: JiraIssue, base: str, fields: list[str] | None) -> dict[str, Any]:
        """The issue as ``GET /issue/{key}`` and search return it; ``fields`` None: all."""
        project = self.projects[issue.project]
        every: dict[str, Any] = {
            "summary": issue.summary,
            "description": issue.description,
            "issuetype": {"id": _type_id(issue.issuetype), "name": issue.issuetype},
            "project": {
                "id": project["id"],
                "key": project["key"],
                "name": project["name"],
                "self": f"{base}/rest/api/3/project/{project['id']}",
            },
            "status": _status(base, issue.status),
            "labels": issue.labels,
            "created": _jira_time(issue.created),
            "updated": _jira_time(issue.created),
            "comment": {
                "comments": issue.comments,
                "maxResults": len(issue.comments),
                "total": len(issue.comments),
                "startAt": 0,
            },
        }
        shown = every if fields is None or "*all" in fields else {}
        if fields is not None and "*all" not in fields:
            shown = {name: every[name] for name in fields if name in every}
        view: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog",
            "id": issue.id,
            "self": f"{base}/rest/api/3/issue/{issue.id}",
            "key": issue.key,
        }
        if shown:
            view["fields"] = shown
        return view

    # --- insides ----------------------------------------------------------------------------

    def _json_object(self, request: ServiceRequest) -> dict[str, Any]:
        if "application/json" not in request.headers.get("content-type", ""):
            raise Refusal(
                Reply(
                    415,
                    json={
                        "errorMessages": [
                            "Unsupported Media Type: the body must be application/json."
                        ],
                        "errors": {},
                    },
                )
            )
        body = self.parse_json(request)
        if not isinstance(body, dict):
            raise Refusal(_invalid({}, "Invalid request payload: a JSON object is expected."))
        return body

    def _project_of(self, given: Any) -> str | None:
        if not isinstance(given, dict):
            return None
        if isinstance(given.get("key"), str) and given["key"] in self.projects:
            return str(given["key"])
        for key, project in self.projects.items():
            if given.get("id") == project["id"]:
                return key
        return None

    @staticmethod
    def _issuetype_of(given: Any) -> str | None:
        if not isinstance(given, dict):
            return None
        if isinstance(given.get("id"), str):
            return ISSUE_TYPES.get(given["id"])
        name = given.get("name")
        return name if name in ISSUE_TYPES.values() else None

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _create(
        self,
        project: str,
        summary: str,
        issuetype: str,
        description: dict[str, Any] | None,
        *,
        status: str = "To Do",
    ) -> JiraIssue:
        number = 1 + sum(1 for i in self.issues.values() if i.project == project)
        self._tick += 1  # creation times strictly increase, so ORDER BY created is stable
        created = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=self._tick)
        issue = JiraIssue(
            str(self._new_id()),
            f"{project}-{number}",
            project,
            summary,
            issuetype,
            description,
            status=status,
            created=created,
        )
        self.issues[issue.key] = issue
        return issue

    def _issue(self, key_or_id: str) -> JiraIssue:
        with self._lock:
            for issue in self.issues.values():
                if key_or_id in (issue.key, issue.id):
                    return issue
        raise Refusal(
            self.error_reply(404, "Issue does not exist or you do not have permission to see it.")
        )

    def _base(self, request: ServiceRequest) -> str:
        cloud = request.params.get("cloud")
        if cloud is not None:
            return f"https://api.atlassian.com/ex/jira/{cloud}"
        return self.site_url

    def _self(self, request: ServiceRequest, issue: JiraIssue) -> str:
        return f"{self._base(request)}/rest/api/3/issue/{issue.id}"

    def _myself(self) -> dict[str, Any]:
        return {
            "accountId": "5b10a2844c20165700ede21g",
            "displayName": "Plugport bot",
            "active": True,
            "accountType": "atlassian",
        }


# --- pure helpers ------------------------------------------------------------------------------


def _invalid(errors: dict[str, str], *messages: str) -> Reply:
    return Reply(400, json={"errorMessages": list(messages), "errors": errors})


def _type_id(name: str) -> str:
    return next(tid for tid, known in ISSUE_TYPES.items() if known == name)


def _status(base: str, name: str) -> dict[str, Any]:
    sid, category, _ = STATUSES[name]
    return {
        "self": f"{base}/rest/api/3/status/{sid}",
        "id": sid,
        "name": name,
        "statusCategory": {"key": category, "name": name},
    }


def _jira_time(when: datetime) -> str:
    """Jira's timestamps: ``2025-01-01T00:00:01.000+0000``."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.000%z")


def _fields_param(request: ServiceRequest, default: list[str] | None) -> list[str] | None:
    given = request.query.get("fields")
    if given is None:
        return default
    return [name.strip() for name in given.split(",") if name.strip()]


def _make_token(offset: int, jql: str) -> str:
    raw = json.dumps({"o": offset, "q": jql}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_token(token: Any, jql: str) -> int:
    """The offset a page token stands for; a token from another query is refused as Jira
    refuses a stale or foreign one."""
    try:
        padded = str(token) + "=" * (-len(str(token)) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        if data["q"] != jql:
            raise ValueError("another query's token")
        return int(data["o"])
    except (ValueError, KeyError, TypeError):
        raise Refusal(_invalid({}, "The provided next page token is invalid or expired.")) from None


_ADF_BLOCKS = frozenset(
    {
        "paragraph",
        "heading",
        "bulletList",
        "orderedList",
        "listItem",
        "codeBlock",
        "blockquote",
        "rule",
        "panel",
        "table",
        "tableRow",
        "tableCell",
        "tableHeader",
        "mediaSingle",
    }
)
_ADF_INLINE = frozenset({"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status"})


def _is_adf(value: Any) -> bool:
    """ADF's basics: a ``doc`` of version 1 whose content is known block nodes, text nodes
    carrying a non-empty ``text``, marks a list of ``{type}``."""
    if not isinstance(value, dict) or value.get("type") != "doc" or value.get("version") != 1:
        return False
    content = value.get("content")
    return isinstance(content, list) and all(_is_node(node) for node in content)


def _is_node(node: Any) -> bool:
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        return False
    kind = node["type"]
    if kind == "text":
        marks = node.get("marks", [])
        return (
            isinstance(node.get("text"), str)
            and node["text"] != ""
            and isinstance(marks, list)
            and all(isinstance(m, dict) and isinstance(m.get("type"), str) for m in marks)
        )
    if kind not in _ADF_BLOCKS and kind not in _ADF_INLINE:
        return False
    content = node.get("content", [])
    return isinstance(content, list) and all(_is_node(child) for child in content)


def _adf_text(value: Any) -> str:
    if isinstance(value, dict):
        own = value.get("text", "") if value.get("type") == "text" else ""
        return str(own) + " ".join(_adf_text(child) for child in value.get("content", []))
    return ""


_CLAUSE = re.compile(
    r"\s*(?P<field>[A-Za-z]+)\s*(?P<op>=|~)\s*(?:\"(?P<quoted>[^\"]*)\"|(?P<bare>[^\s\"]+))\s*"
)
_ORDER = re.compile(r"\s*ORDER\s+BY\s+created(?:\s+(?P<dir>ASC|DESC))?\s*", re.IGNORECASE)
_FIELDS = {"project": "=", "status": "=", "text": "~", "summary": "~"}


def _parse_jql(jql: str) -> tuple[list[tuple[str, str, str]], str]:
    """``a = b AND c ~ "d" ORDER BY created DESC`` into clauses and an order."""
    order = "ASC"
    where = jql
    at = re.search(r"\bORDER\s+BY\b", jql, re.IGNORECASE)
    if at is not None:
        where, tail = jql[: at.start()], jql[at.start() :]
        match = _ORDER.fullmatch(tail)
        if match is None:
            raise Refusal(
                _invalid({}, f"Error in the JQL Query: cannot order by '{tail.strip()}'.")
            )
        order = (match.group("dir") or "ASC").upper()
    clauses: list[tuple[str, str, str]] = []
    if not where.strip():
        return clauses, order
    for part in re.split(r"\s+AND\s+", where.strip(), flags=re.IGNORECASE):
        if re.search(r"\s(OR|NOT)\s|^\s*NOT\s", f" {part} ", re.IGNORECASE):
            raise Refusal(
                _invalid({}, "Error in the JQL Query: the operators OR and NOT are not supported.")
            )
        match = _CLAUSE.fullmatch(part)
        if match is None:
            raise Refusal(_invalid({}, f"Error in the JQL Query: cannot parse '{part.strip()}'."))
        name = match.group("field").lower()
        if name not in _FIELDS:
            raise Refusal(
                _invalid(
                    {},
                    f"Field '{match.group('field')}' does not exist or you do not have "
                    "permission to view it.",
                )
            )
        operator = match.group("op")
        if operator != _FIELDS[name]:
            raise Refusal(
                _invalid(
                    {},
                    f"The operator '{operator}' is not supported by the '{name}' field.",
                )
            )
        value = match.group("quoted") if match.group("quoted") is not None else match.group("bare")
        clauses.append((name, operator, value))
    return clauses, order
