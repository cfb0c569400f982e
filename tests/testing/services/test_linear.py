"""FakeLinear against Linear's documented GraphQL API, driven with httpx: the auth header forms,
answers holding exactly the selected fields, the teams connection's cursor pages, the two
mutations, Linear's error shape (HTTP 400 with extensions), RATELIMITED with its headers, 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from plugport.testing.services.linear import FakeLinear

# Documented shapes (linear.app/developers): the error object and the rate-limit headers.
ERROR_FIELDS = {"message", "extensions"}
EXTENSION_FIELDS = {"type", "code", "userPresentableMessage"}
BUDGET_HEADERS = {
    "x-ratelimit-requests-limit",
    "x-ratelimit-requests-remaining",
    "x-ratelimit-requests-reset",
    "x-complexity",
    "x-ratelimit-complexity-limit",
    "x-ratelimit-complexity-remaining",
    "x-ratelimit-complexity-reset",
}

CREATE = """
mutation IssueCreate($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { id identifier title url } }
}
"""
TEAMS = """
query Teams($first: Int, $after: String) {
  teams(first: $first, after: $after) { nodes { id key name } pageInfo { hasNextPage endCursor } }
}
"""


@pytest.fixture
def linear() -> Iterator[FakeLinear]:
    with FakeLinear() as fake:
        yield fake


def gql(
    linear: FakeLinear, query: str, variables: dict[str, Any] | None = None, auth: str | None = None
) -> httpx.Response:
    return httpx.post(
        linear.url + "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": linear.api_key if auth is None else auth},
    )


def only_error(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 400
    [error] = answer.json()["errors"]
    assert set(error) == ERROR_FIELDS
    assert set(error["extensions"]) == EXTENSION_FIELDS
    return dict(error)


def test_issue_create_answers_the_selected_fields(linear: FakeLinear) -> None:
    team = linear.team("ENG")
    variables = {"input": {"teamId": team["id"], "title": "Disk full", "priority": 2}}
    answer = gql(linear, CREATE, variables)
    assert answer.status_code == 200
    assert set(answer.headers) >= BUDGET_HEADERS
    payload = answer.json()["data"]["issueCreate"]
    assert payload["success"] is True
    assert set(payload) == {"success", "issue"}
    assert set(payload["issue"]) == {"id", "identifier", "title", "url"}
    assert payload["issue"]["identifier"] == "ENG-1"
    assert payload["issue"]["url"] == "https://linear.app/acme/issue/ENG-1/disk-full"
    assert linear.issues["ENG-1"]["priority"] == 2


def test_comment_create_on_an_issue(linear: FakeLinear) -> None:
    team = linear.team("ENG")
    gql(linear, CREATE, {"input": {"teamId": team["id"], "title": "x"}})
    comment = """mutation CommentCreate($input: CommentCreateInput!) {
      commentCreate(input: $input) { success comment { id body url } } }"""
    answer = gql(linear, comment, {"input": {"issueId": "ENG-1", "body": "again"}})
    created = answer.json()["data"]["commentCreate"]
    assert created["success"] is True
    assert created["comment"]["body"] == "again"
    assert [c["body"] for c in linear.comments] == ["again"]
    missing = gql(linear, comment, {"input": {"issueId": "ENG-9", "body": "x"}})
    assert only_error(missing)["extensions"]["code"] == "INVALID_INPUT"
    assert len(linear.comments) == 1


def test_teams_pages_with_cursors(linear: FakeLinear) -> None:
    for n in range(4):
        linear.add_team(f"T{n}", f"Team {n}")
    keys, after = [], None
    while True:
        page = gql(linear, TEAMS, {"first": 2, "after": after}).json()["data"]["teams"]
        assert set(page) == {"nodes", "pageInfo"}
        assert set(page["pageInfo"]) == {"hasNextPage", "endCursor"}
        keys += [t["key"] for t in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert keys == ["ENG", "T0", "T1", "T2", "T3"]
    literal = gql(linear, "{ teams(first: 1) { nodes { key __typename } } }").json()
    assert literal == {"data": {"teams": {"nodes": [{"key": "ENG", "__typename": "Team"}]}}}


def test_auth_header_forms(linear: FakeLinear) -> None:
    query = "query { viewer { id name } }"
    assert gql(linear, query).status_code == 200  # the key alone, no "Bearer"
    assert gql(linear, query, auth=f"Bearer {linear.access_token}").status_code == 200
    for wrong in (f"Bearer {linear.api_key}", "lin_api_wrong", ""):
        error = only_error(gql(linear, query, auth=wrong))
        assert error["extensions"] == {
            "type": "authentication error",
            "code": "AUTHENTICATION_ERROR",
            "userPresentableMessage": "You need to authenticate to access this operation.",
        }


@pytest.mark.parametrize(
    ("query", "variables", "code", "message"),
    [
        (
            "{ teams { nodes { nope } } }",
            {},
            "GRAPHQL_VALIDATION_FAILED",
            'Cannot query field "nope"',
        ),
        ("{ teams }", {}, "GRAPHQL_VALIDATION_FAILED", 'Field "teams" of type "TeamConnection"'),
        ("{ teams { nodes { id } ", {}, "GRAPHQL_VALIDATION_FAILED", "Syntax Error"),
        (CREATE, {"input": {"teamId": "nope", "title": "x"}}, "INVALID_INPUT", "Entity not found"),
        (CREATE, {"input": {"title": "x", "colour": 1}}, "GRAPHQL_VALIDATION_FAILED", "Variable"),
        (CREATE, {}, "GRAPHQL_VALIDATION_FAILED", 'Argument "input"'),
    ],
)
def test_refusals_in_linears_shape(
    linear: FakeLinear, query: str, variables: dict[str, Any], code: str, message: str
) -> None:
    error = only_error(gql(linear, query, variables))
    assert error["extensions"]["code"] == code
    assert error["message"].startswith(message)
    assert linear.issues == {}


def test_invalid_issue_input(linear: FakeLinear) -> None:
    team = linear.team("ENG")
    for bad in ({"title": ""}, {"title": "x", "priority": 9}):
        error = only_error(gql(linear, CREATE, {"input": {"teamId": team["id"], **bad}}))
        assert error["extensions"]["code"] == "INVALID_INPUT"
    assert linear.issues == {}


def test_rate_limited_and_failing(linear: FakeLinear) -> None:
    linear.throttle(1, retry_after_s=3)
    limited = gql(linear, TEAMS, {"first": 1})
    error = only_error(limited)  # HTTP 400, the reason in the body
    assert error["extensions"]["code"] == "RATELIMITED"
    assert limited.headers["x-ratelimit-requests-remaining"] == "0"
    assert int(limited.headers["x-ratelimit-requests-reset"]) > 10**12  # epoch milliseconds
    assert "retry-after" not in limited.headers
    linear.fail_next(502)
    failed = gql(linear, TEAMS, {"first": 1})
    assert failed.status_code == 502
    assert failed.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert gql(linear, TEAMS, {"first": 1}).status_code == 200
