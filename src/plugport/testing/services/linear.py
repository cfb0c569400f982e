"""A local fake of Linear's GraphQL API (``POST https://api.linear.app/graphql``): the ``teams``
connection with ``first``/``after`` pages, ``issue``, ``viewer``, and the ``issueCreate`` and
``commentCreate`` mutations, answered with exactly the fields the document selects. Shapes
follow Linear's developer docs:

- getting started, auth headers: https://linear.app/developers/graphql
- pagination (``nodes``, ``pageInfo { hasNextPage endCursor }``): https://linear.app/developers/pagination
- errors (``extensions.code``/``type``/``userPresentableMessage``): https://linear.app/developers/graphql#errors
- rate limiting (``RATELIMITED``, ``X-RateLimit-Requests-*`` with resets in epoch
  milliseconds): https://linear.app/developers/rate-limiting

Linear answers errors, a rate limit included, with HTTP 400 and the reason in the body's
``extensions``; a client must read the body, not the status. The GraphQL is a small subset:
one operation per document, fields and arguments (variables or literals), aliases and
``__typename``; fragments and directives are refused as unknown syntax.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from plugport.testing.services._service import (
    FakeService,
    Reply,
    ServiceRequest,
    route,
)

__all__ = ["FakeLinear", "LinearError"]

REQUESTS_LIMIT = 5000  # per hour, for an API key
COMPLEXITY_LIMIT = 3_000_000
MAX_PAGE = 250  # the most nodes ``first`` may ask for

# Which fields each type has; None for a scalar. Unknown fields fail validation.
SCHEMA: dict[str, dict[str, str | None]] = {
    "Query": {"teams": "TeamConnection", "issue": "Issue", "viewer": "User"},
    "Mutation": {"issueCreate": "IssuePayload", "commentCreate": "CommentPayload"},
    "TeamConnection": {"nodes": "Team", "pageInfo": "PageInfo"},
    "PageInfo": {
        "hasNextPage": None,
        "hasPreviousPage": None,
        "startCursor": None,
        "endCursor": None,
    },
    "Team": {"id": None, "key": None, "name": None, "description": None},
    "User": {"id": None, "name": None, "email": None},
    "Issue": {
        "id": None,
        "identifier": None,
        "number": None,
        "title": None,
        "description": None,
        "priority": None,
        "url": None,
        "createdAt": None,
        "team": "Team",
    },
    "Comment": {"id": None, "body": None, "url": None, "createdAt": None, "issue": "Issue"},
    "IssuePayload": {"success": None, "lastSyncId": None, "issue": "Issue"},
    "CommentPayload": {"success": None, "lastSyncId": None, "comment": "Comment"},
}
ISSUE_INPUT = {"teamId", "title", "description", "priority", "id", "labelIds", "assigneeId"}
COMMENT_INPUT = {"issueId", "body", "id", "parentId"}


class LinearError(Exception):
    """One GraphQL error in Linear's shape, turned into a 400 answer."""

    def __init__(self, code: str, kind: str, message: str, presentable: str) -> None:
        super().__init__(message)
        self.code, self.kind, self.message, self.presentable = code, kind, message, presentable

    def body(self) -> dict[str, Any]:
        return {
            "errors": [
                {
                    "message": self.message,
                    "extensions": {
                        "type": self.kind,
                        "code": self.code,
                        "userPresentableMessage": self.presentable,
                    },
                }
            ]
        }


def _invalid(message: str, presentable: str | None = None) -> LinearError:
    return LinearError("INVALID_INPUT", "invalid input", message, presentable or message)


def _validation(message: str) -> LinearError:
    return LinearError("GRAPHQL_VALIDATION_FAILED", "graphql error", message, message)


@dataclass(frozen=True)
class Selection:
    """A field of a selection set: ``alias: name(args) { children }``."""

    alias: str
    name: str
    args: dict[str, Any]
    children: tuple[Selection, ...] | None


class FakeLinear(FakeService):
    """Linear for one workspace (``org``). Accepts the personal API key :attr:`api_key` as
    the whole ``Authorization`` header, and the OAuth token :attr:`access_token` as
    ``Bearer <token>``."""

    hosts: ClassVar[tuple[str, ...]] = ("api.linear.app",)
    name: ClassVar[str] = "linear"

    def __init__(
        self,
        *,
        org: str = "acme",
        api_key: str = "lin_api_standIn0123456789abcdefghijklmnopqrstuv",
        access_token: str = "lin_oauth_standIn0123456789abcdef",  # noqa: S107
    ) -> None:
        super().__init__()
        self.org = org
        self.api_key = api_key
        self.access_token = access_token
        self.teams: list[dict[str, Any]] = []
        self.issues: dict[str, dict[str, Any]] = {}  # identifier -> issue
        self.comments: list[dict[str, Any]] = []
        self._sync = 1000
        self.add_team("ENG", "Engineering")

    # --- what a test sets up and reads ------------------------------------------------------

    def add_team(self, key: str, name: str) -> dict[str, Any]:
        team = {"id": str(uuid.uuid4()), "key": key, "name": name, "description": None}
        with self._lock:
            self.teams.append(team)
        return team

    def team(self, key: str) -> dict[str, Any]:
        return next(t for t in self.teams if t["key"] == key)

    # --- what Linear shapes -----------------------------------------------------------------

    def error_reply(self, status: int, message: str) -> Reply:
        if status == 429:
            return Reply(
                400,
                json=LinearError(
                    "RATELIMITED",
                    "ratelimited",
                    "Rate limit exceeded",
                    "You have exceeded the API rate limit. Please try again later.",
                ).body(),
            )
        if status >= 500:
            error = LinearError(
                "INTERNAL_SERVER_ERROR", "internal error", message, "Something went wrong."
            )
            return Reply(status, json=error.body())
        return Reply(status, json=_validation(message).body())

    def rate_limit_headers(self, retry_after_s: int) -> dict[str, str]:
        """Linear sends no ``Retry-After``: the requests budget's reset, in epoch ms."""
        reset_ms = int((time.time() + retry_after_s) * 1000)
        return {
            "X-RateLimit-Requests-Limit": str(REQUESTS_LIMIT),
            "X-RateLimit-Requests-Remaining": "0",
            "X-RateLimit-Requests-Reset": str(reset_ms),
        }

    def authenticate(self, request: ServiceRequest) -> Reply | None:
        given = request.headers.get("authorization", "")
        if given in (self.api_key, f"Bearer {self.access_token}"):
            return None
        error = LinearError(
            "AUTHENTICATION_ERROR",
            "authentication error",
            "Authentication required, not authenticated",
            "You need to authenticate to access this operation.",
        )
        return Reply(400, json=error.body())

    # --- the endpoint -----------------------------------------------------------------------

    @route("POST", r"/graphql")
    def graphql(self, request: ServiceRequest) -> Reply:
        try:
            data = self._execute(request)
        except LinearError as error:
            return Reply(400, json=error.body(), headers=self._budget_headers(0))
        return Reply(json={"data": data}, headers=self._budget_headers(1))

    def _budget_headers(self, complexity: int) -> dict[str, str]:
        reset_ms = int((time.time() + 3600) * 1000)
        return {
            "X-RateLimit-Requests-Limit": str(REQUESTS_LIMIT),
            "X-RateLimit-Requests-Remaining": str(REQUESTS_LIMIT - 1),
            "X-RateLimit-Requests-Reset": str(reset_ms),
            "X-Complexity": str(complexity),
            "X-RateLimit-Complexity-Limit": str(COMPLEXITY_LIMIT),
            "X-RateLimit-Complexity-Remaining": str(COMPLEXITY_LIMIT - complexity),
            "X-RateLimit-Complexity-Reset": str(reset_ms),
        }

    def _execute(self, request: ServiceRequest) -> dict[str, Any]:
        if "application/json" not in request.headers.get("content-type", ""):
            raise _validation("Must provide query string.")
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise _validation("Unexpected token in JSON body.") from None
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise _validation("Must provide query string.")
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            raise _validation("Variables must be provided as an Object.")
        kind, selections = parse_document(body["query"], variables)
        root = "Mutation" if kind == "mutation" else "Query"
        validate(root, selections)
        resolvers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "teams": self._teams,
            "issue": self._issue,
            "viewer": self._viewer,
            "issueCreate": self._issue_create,
            "commentCreate": self._comment_create,
        }
        with self._lock:
            return {
                s.alias: project(s, SCHEMA[root][s.name], resolvers[s.name](s.args))
                for s in selections
            }

    # --- resolvers --------------------------------------------------------------------------

    def _teams(self, args: dict[str, Any]) -> dict[str, Any]:
        first = args.get("first", 50)
        if not isinstance(first, int) or not 0 < first <= MAX_PAGE:
            raise _invalid(f"first must be between 1 and {MAX_PAGE}")
        start = 0
        after = args.get("after")
        if after is not None:
            ids = [t["id"] for t in self.teams]
            if after not in ids:
                raise _invalid("Invalid cursor: after", "The pagination cursor is not valid.")
            start = ids.index(after) + 1
        page = self.teams[start : start + first]
        return {
            "nodes": page,
            "pageInfo": {
                "hasNextPage": start + first < len(self.teams),
                "hasPreviousPage": start > 0,
                "startCursor": page[0]["id"] if page else None,
                "endCursor": page[-1]["id"] if page else None,
            },
        }

    def _find_issue(self, given: Any) -> dict[str, Any]:
        for issue in self.issues.values():
            if given in (issue["id"], issue["identifier"]):
                return issue
        raise _invalid("Entity not found: Issue", "Could not find referenced Issue.")

    def _issue(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._find_issue(args.get("id"))

    def _viewer(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "a1b2c3d4-0000-4000-8000-000000000001",
            "name": "Plugport bot",
            "email": "bot@acme.test",
        }

    def _issue_create(self, args: dict[str, Any]) -> dict[str, Any]:
        given = _input(args, ISSUE_INPUT, "IssueCreateInput")
        team = next((t for t in self.teams if t["id"] == given.get("teamId")), None)
        if team is None:
            raise _invalid("Entity not found: Team", "Could not find referenced Team.")
        title = given.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _invalid("Argument Validation Error", "Title is required.")
        priority = given.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 4:
            raise _invalid("Argument Validation Error", "Priority must be between 0 and 4.")
        description = given.get("description")
        if description is not None and not isinstance(description, str):
            raise _invalid("Argument Validation Error", "Description must be a string.")
        number = 1 + sum(1 for i in self.issues.values() if i["team"] is team)
        identifier = f"{team['key']}-{number}"
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60]
        issue = {
            "id": str(given.get("id") or uuid.uuid4()),
            "identifier": identifier,
            "number": number,
            "title": title,
            "description": description,
            "priority": priority,
            "url": f"https://linear.app/{self.org}/issue/{identifier}/{slug}",
            "createdAt": _now_iso(),
            "team": team,
        }
        if any(i["id"] == issue["id"] for i in self.issues.values()):
            raise _invalid("Entity already exists: Issue", "An issue with this id exists.")
        self.issues[identifier] = issue
        self._sync += 1
        return {"success": True, "lastSyncId": self._sync, "issue": issue}

    def _comment_create(self, args: dict[str, Any]) -> dict[str, Any]:
        given = _input(args, COMMENT_INPUT, "CommentCreateInput")
        issue = self._find_issue(given.get("issueId"))
        body = given.get("body")
        if not isinstance(body, str) or not body.strip():
            raise _invalid("Argument Validation Error", "Comment body is required.")
        cid = str(uuid.uuid4())
        comment = {
            "id": cid,
            "body": body,
            "url": f"{issue['url']}#comment-{cid[:8]}",
            "createdAt": _now_iso(),
            "issue": issue,
        }
        self.comments.append(comment)
        self._sync += 1
        return {"success": True, "lastSyncId": self._sync, "comment": comment}


# --- a small GraphQL reader (pure) -------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?)|(?P<spread>\.\.\.)"""
    r"""|(?P<var>\$[_A-Za-z][_0-9A-Za-z]*)|(?P<name>[_A-Za-z][_0-9A-Za-z]*)"""
    r"""|(?P<punct>[{}():!\[\],=@]))""",
)


def tokenize(document: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pairs; commas are insignificant in GraphQL and dropped."""
    text = re.sub(r"#[^\n]*", "", document)
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if match is None or match.lastgroup is None:
            raise _validation(f'Syntax Error: Unexpected character "{text[at:].strip()[:1]}".')
        at = match.end()
        if match.group().strip() != ",":
            tokens.append((match.lastgroup, match.group(match.lastgroup)))
    return tokens


class _Reader:
    def __init__(self, tokens: list[tuple[str, str]], variables: dict[str, Any]) -> None:
        self.tokens, self.at, self.variables = tokens, 0, variables

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise _validation("Syntax Error: Unexpected <EOF>.")
        token = self.tokens[self.at]
        if expected is not None and token[1] != expected:
            raise _validation(f'Syntax Error: Expected "{expected}", found "{token[1]}".')
        self.at += 1
        return token

    def skip_balanced(self, opening: str, closing: str) -> None:
        depth = 0
        while True:
            _, text = self.take()
            depth += (text == opening) - (text == closing)
            if depth == 0:
                return

    def selection_set(self) -> tuple[Selection, ...]:
        self.take("{")
        fields: list[Selection] = []
        while self.peek() != "}":
            kind, name = self.take()
            if kind == "spread" or name == "@":
                raise _validation("Fragments and directives are not supported by this fake.")
            if kind != "name":
                raise _validation(f'Syntax Error: Expected Name, found "{name}".')
            alias = name
            if self.peek() == ":":
                self.take(":")
                alias, name = name, self.take()[1]
            args: dict[str, Any] = {}
            if self.peek() == "(":
                self.take("(")
                while self.peek() != ")":
                    key = self.take()[1]
                    self.take(":")
                    args[key] = self.value()
                self.take(")")
            children = self.selection_set() if self.peek() == "{" else None
            fields.append(Selection(alias, name, args, children))
        self.take("}")
        if not fields:
            raise _validation('Syntax Error: Expected Name, found "}".')
        return tuple(fields)

    def value(self) -> Any:
        kind, text = self.take()
        if text == "{":
            found: dict[str, Any] = {}
            while self.peek() != "}":
                key = self.take()[1]
                self.take(":")
                found[key] = self.value()
            self.take("}")
            return found
        if text == "[":
            items = []
            while self.peek() != "]":
                items.append(self.value())
            self.take("]")
            return items
        return _scalar(kind, text, self.variables)


_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


def _scalar(kind: str, text: str, variables: dict[str, Any]) -> Any:
    if kind == "var":
        return variables.get(text[1:])
    if kind in ("string", "number"):
        return json.loads(text)  # GraphQL's strings and numbers read as JSON's do
    if kind == "name":
        return _LITERALS.get(text, text)  # true, false, null, or an enum value
    raise _validation(f'Syntax Error: Unexpected "{text}".')


def parse_document(document: str, variables: dict[str, Any]) -> tuple[str, tuple[Selection, ...]]:
    """The operation's kind (``query``/``mutation``) and its root selections."""
    reader = _Reader(tokenize(document), variables)
    kind = "query"
    if reader.peek() in ("query", "mutation", "subscription"):
        kind = reader.take()[1]
        if kind == "subscription":
            raise _validation("Subscriptions are not served over HTTP.")
        if reader.peek() not in ("(", "{"):
            reader.take()  # the operation's name
        if reader.peek() == "(":
            reader.skip_balanced("(", ")")  # variable definitions: values come from variables
    selections = reader.selection_set()
    if reader.peek() is not None:
        raise _validation("This fake runs one operation per document.")
    return kind, selections


def validate(type_name: str, selections: tuple[Selection, ...]) -> None:
    """GraphQL's field checks: every field exists on its type, objects have a selection,
    scalars do not."""
    fields = SCHEMA[type_name]
    for s in selections:
        if s.name == "__typename":
            continue
        if s.name not in fields:
            raise _validation(f'Cannot query field "{s.name}" on type "{type_name}".')
        child = fields[s.name]
        if child is None and s.children is not None:
            raise _validation(
                f'Field "{s.name}" must not have a selection since its type has no subfields.'
            )
        if child is not None:
            if s.children is None:
                raise _validation(
                    f'Field "{s.name}" of type "{child}" must have a selection of subfields.'
                )
            validate(child, s.children)


def project(selection: Selection, type_name: str | None, value: Any) -> Any:
    """``value`` cut down to what ``selection`` asks for, as GraphQL answers."""
    if selection.children is None or value is None:
        return value
    if isinstance(value, list):
        return [project(selection, type_name, item) for item in value]
    assert type_name is not None  # noqa: S101 - validate() ran first
    shaped: dict[str, Any] = {}
    for child in selection.children:
        if child.name == "__typename":
            shaped[child.alias] = type_name
            continue
        shaped[child.alias] = project(child, SCHEMA[type_name][child.name], value.get(child.name))
    return shaped


def _input(args: dict[str, Any], allowed: set[str], type_name: str) -> dict[str, Any]:
    given = args.get("input")
    if not isinstance(given, dict):
        raise _validation(f'Argument "input" of required type "{type_name}!" was not provided.')
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise _validation(
            f'Variable "$input" got invalid value; Field "{unknown[0]}" is not defined by type '
            f'"{type_name}".'
        )
    return given


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
