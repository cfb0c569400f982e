"""FakeJira against Jira Cloud's documented REST v3 shapes, driven with httpx as a client would:
field names per endpoint (written down here, so a fake that drifts fails), basic auth on the
site and bearer auth on api.atlassian.com, the error collections, the enhanced search's
token pages, and 429/5xx."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from plugport.testing.services.jira import FakeJira

# Documented fields, per endpoint (developer.atlassian.com/cloud/jira/platform/rest/v3/).
CREATED_FIELDS = {"id", "key", "self"}
ISSUE_FIELDS = {"expand", "id", "self", "key", "fields"}
TRANSITION_FIELDS = {
    "id",
    "name",
    "to",
    "hasScreen",
    "isGlobal",
    "isInitial",
    "isAvailable",
    "isConditional",
    "isLooped",
}
COMMENT_FIELDS = {"id", "self", "author", "body", "updateAuthor", "created", "updated", "jsdPublic"}
SEARCH_FIELDS = {"issues", "isLast", "nextPageToken"}
ERROR_FIELDS = {"errorMessages", "errors"}
RESOURCE_FIELDS = {"id", "url", "name", "scopes", "avatarUrl"}

SITE = "acme.atlassian.net"


def adf(text: str) -> dict[str, Any]:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira() as fake:
        yield fake


@pytest.fixture
def site(jira: FakeJira) -> Iterator[httpx.Client]:
    basic = base64.b64encode(jira.basic_credential.encode()).decode()
    headers = {"Host": SITE, "Authorization": f"Basic {basic}"}
    with httpx.Client(base_url=jira.url + "/rest/api/3", headers=headers) as client:
        yield client


def create(site: httpx.Client, summary: str = "Disk full", **extra: Any) -> httpx.Response:
    fields = {"project": {"key": "OPS"}, "summary": summary, "issuetype": {"name": "Bug"}}
    return site.post("/issue", json={"fields": {**fields, **extra}})


def test_create_then_get_an_issue(site: httpx.Client, jira: FakeJira) -> None:
    answer = create(site, description=adf("db-1 is at 100%"), labels=["sentry"])
    assert answer.status_code == 201
    created = answer.json()
    assert set(created) == CREATED_FIELDS
    assert created["key"] == "OPS-1"
    assert created["self"] == f"https://{SITE}/rest/api/3/issue/{created['id']}"
    assert answer.headers["x-ratelimit-limit"] == "100"  # on ordinary answers too
    got = site.get("/issue/OPS-1")
    assert got.status_code == 200
    issue = got.json()
    assert set(issue) == ISSUE_FIELDS
    assert issue["fields"]["summary"] == "Disk full"
    assert issue["fields"]["issuetype"]["name"] == "Bug"
    assert issue["fields"]["status"]["name"] == "To Do"
    assert issue["fields"]["description"] == adf("db-1 is at 100%")
    assert jira.issues["OPS-1"].labels == ["sentry"]
    by_id = site.get(f"/issue/{created['id']}", params={"fields": "summary"}).json()
    assert by_id["fields"] == {"summary": "Disk full"}


def test_create_refusals_use_the_error_collection(site: httpx.Client, jira: FakeJira) -> None:
    missing = site.post("/issue", json={"fields": {"project": {"key": "OPS"}}})
    assert missing.status_code == 400
    assert missing.json() == {
        "errorMessages": [],
        "errors": {
            "summary": "You must specify a summary of the issue.",
            "issuetype": "Specify an issue type",
        },
    }
    wrong = create(site, description="plain text is not ADF")
    assert wrong.json()["errors"] == {
        "description": "Operation value must be an Atlassian Document"
    }
    bad_adf = create(site, description={"type": "doc", "version": 1, "content": [{"x": 1}]})
    assert bad_adf.status_code == 400
    unknown = site.post(
        "/issue",
        json={"fields": {"project": {"key": "NOPE"}, "summary": "x", "issuetype": {"id": "99"}}},
    )
    assert unknown.json()["errors"] == {
        "project": "Specify a valid project ID or key",
        "issuetype": "Specify a valid issue type",
    }
    not_json = site.post("/issue", content=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert set(not_json.json()) == ERROR_FIELDS
    assert jira.issues == {}  # nothing was created


def test_transitions_list_apply_and_refuse(site: httpx.Client, jira: FakeJira) -> None:
    create(site)
    offered = site.get("/issue/OPS-1/transitions").json()
    assert offered["expand"] == "transitions"
    assert all(set(t) == TRANSITION_FIELDS for t in offered["transitions"])
    assert [(t["id"], t["to"]["name"]) for t in offered["transitions"]] == [
        ("21", "In Progress"),
        ("31", "Done"),
    ]
    done = site.post("/issue/OPS-1/transitions", json={"transition": {"id": "31"}})
    assert done.status_code == 204
    assert done.content == b""
    assert jira.issues["OPS-1"].status == "Done"
    unknown = site.post("/issue/OPS-1/transitions", json={"transition": {"id": "99"}})
    assert unknown.status_code == 400
    assert unknown.json() == {
        "errorMessages": ["Transition id '99' is not valid for this issue."],
        "errors": {},
    }
    assert jira.issues["OPS-1"].transitions == ["31"]  # unchanged by the refusal
    missing = site.get("/issue/OPS-9/transitions")
    assert missing.status_code == 404
    assert missing.json()["errorMessages"] == [
        "Issue does not exist or you do not have permission to see it."
    ]


def test_comments(site: httpx.Client, jira: FakeJira) -> None:
    create(site)
    answer = site.post("/issue/OPS-1/comment", json={"body": adf("seen again")})
    assert answer.status_code == 201
    assert set(answer.json()) == COMMENT_FIELDS
    assert jira.issues["OPS-1"].comments[0]["body"] == adf("seen again")
    empty = site.post("/issue/OPS-1/comment", json={})
    assert empty.status_code == 400
    assert empty.json()["errors"] == {"comment": "Comment body can not be empty!"}
    assert len(jira.issues["OPS-1"].comments) == 1


def test_search_pages_with_next_page_token(site: httpx.Client, jira: FakeJira) -> None:
    for n in range(5):
        jira.add_issue("OPS", f"disk {n}")
    jira.add_issue("OPS", "cpu", status="Done")
    jql = 'project = OPS AND text ~ "disk" ORDER BY created DESC'
    first = site.post("/search/jql", json={"jql": jql, "maxResults": 2, "fields": ["summary"]})
    page = first.json()
    assert set(page) == SEARCH_FIELDS
    assert page["isLast"] is False
    assert [i["fields"]["summary"] for i in page["issues"]] == ["disk 4", "disk 3"]
    summaries = [i["fields"]["summary"] for i in page["issues"]]
    token = page["nextPageToken"]
    while token is not None:
        page = site.get(
            "/search/jql",
            params={"jql": jql, "maxResults": "2", "fields": "summary", "nextPageToken": token},
        ).json()
        summaries += [i["fields"]["summary"] for i in page["issues"]]
        token = page.get("nextPageToken")
    assert summaries == ["disk 4", "disk 3", "disk 2", "disk 1", "disk 0"]
    assert page["isLast"] is True
    assert "nextPageToken" not in page  # left out of the last page, not null
    done = site.get("/search/jql", params={"jql": 'status = "Done"'}).json()
    assert [set(i) for i in done["issues"]] == [{"expand", "id", "self", "key"}]  # no fields


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("ORDER BY created DESC", "Unbounded JQL queries are not allowed here."),
        ("assignee = ada", "Field 'assignee' does not exist"),
        ("project = OPS OR project = DEV", "Error in the JQL Query"),
        ("project = NOPE", "The value 'NOPE' does not exist for the field 'project'."),
        ("project ~ OPS", "The operator '~' is not supported"),
    ],
)
def test_search_refuses_what_jira_refuses(site: httpx.Client, jql: str, message: str) -> None:
    answer = site.post("/search/jql", json={"jql": jql})
    assert answer.status_code == 400
    assert set(answer.json()) == ERROR_FIELDS
    assert answer.json()["errorMessages"][0].startswith(message)


def test_basic_auth_is_required_on_the_site(jira: FakeJira) -> None:
    wrong = base64.b64encode(b"bot@acme.test:wrong").decode()
    for headers in ({"Host": SITE}, {"Host": SITE, "Authorization": f"Basic {wrong}"}):
        answer = httpx.get(jira.url + "/rest/api/3/issue/OPS-1", headers=headers)
        assert answer.status_code == 401
        assert answer.text == "Client must be authenticated to access this resource."
    other = httpx.get(jira.url + "/rest/api/3/issue/OPS-1", headers={"Host": "evil.atlassian.net"})
    assert other.status_code == 404


def test_oauth_bearer_on_api_atlassian_com(jira: FakeJira) -> None:
    bearer = {"Host": "api.atlassian.com", "Authorization": f"Bearer {jira.access_token}"}
    resources = httpx.get(jira.url + "/oauth/token/accessible-resources", headers=bearer)
    [resource] = resources.json()
    assert set(resource) == RESOURCE_FIELDS
    assert resource["id"] == jira.cloud_id
    assert resource["url"] == "https://acme.atlassian.net"
    base = f"{jira.url}/ex/jira/{jira.cloud_id}/rest/api/3"
    fields = {"project": {"key": "OPS"}, "summary": "via oauth", "issuetype": {"name": "Task"}}
    created = httpx.post(base + "/issue", json={"fields": fields}, headers=bearer).json()
    assert created["self"].startswith(f"https://api.atlassian.com/ex/jira/{jira.cloud_id}/")
    refused = httpx.get(
        base + "/issue/OPS-1", headers={**bearer, "Authorization": "Bearer expired"}
    )
    assert refused.status_code == 401
    assert refused.json() == {"code": 401, "message": "Unauthorized"}
    elsewhere = httpx.get(jira.url + "/ex/jira/other-cloud/rest/api/3/issue/OPS-1", headers=bearer)
    assert elsewhere.status_code == 404


def test_throttled_and_failing(site: httpx.Client, jira: FakeJira) -> None:
    jira.throttle(1, retry_after_s=7)
    limited = create(site)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["x-ratelimit-reset"].endswith("Z")
    assert limited.headers["ratelimit-reason"] == "jira-quota-tenant-based"
    assert set(limited.json()) == ERROR_FIELDS
    jira.fail_next(503)
    assert create(site).status_code == 503
    assert jira.issues == {}
    assert create(site).status_code == 201
    assert [r.path for r in jira.received("POST")] == ["/rest/api/3/issue"] * 3
