"""FakeGitLab against what GitLab's REST API v4 and webhook documentation say: the fields of
each answer, authentication, error bodies, offset pagination headers, rate-limit headers and
the webhook delivery headers. A fake that drifts from the documented shapes fails here."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any, ClassVar

import httpx
import pytest

from plugport.testing.services.gitlab import FakeGitLab

TOKEN = "glpat-test-token"  # noqa: S105 - a test's stand-in
HOOK_TOKEN = "hook-secret"  # noqa: S105 - a test's stand-in

# https://docs.gitlab.com/api/merge_requests/#get-single-mr (the fields a client reads)
MERGE_REQUEST_FIELDS = {
    "id",
    "iid",
    "project_id",
    "title",
    "description",
    "state",
    "created_at",
    "updated_at",
    "merged_by",
    "merge_user",
    "merged_at",
    "closed_by",
    "closed_at",
    "target_branch",
    "source_branch",
    "user_notes_count",
    "upvotes",
    "downvotes",
    "author",
    "assignees",
    "reviewers",
    "source_project_id",
    "target_project_id",
    "labels",
    "draft",
    "milestone",
    "merge_when_pipeline_succeeds",
    "detailed_merge_status",
    "sha",
    "merge_commit_sha",
    "squash_commit_sha",
    "reference",
    "references",
    "web_url",
    "time_stats",
    "squash",
    "has_conflicts",
    "blocking_discussions_resolved",
}
USER_FIELDS = {"id", "username", "name", "state", "avatar_url", "web_url"}
# https://docs.gitlab.com/api/notes/#create-new-merge-request-note
NOTE_FIELDS = {
    "id",
    "type",
    "body",
    "attachment",
    "author",
    "created_at",
    "updated_at",
    "system",
    "noteable_id",
    "noteable_type",
    "project_id",
    "noteable_iid",
    "resolvable",
    "confidential",
    "internal",
    "imported",
    "imported_from",
}
# https://docs.gitlab.com/api/rest/#pagination-link-header and #other-pagination-headers
PAGINATION_HEADERS = {
    "x-page",
    "x-per-page",
    "x-next-page",
    "x-prev-page",
    "x-total",
    "x-total-pages",
    "link",
}
# https://docs.gitlab.com/user/gitlab_com/#rate-limits-on-gitlabcom
RATE_LIMIT_HEADERS = {
    "ratelimit-limit",
    "ratelimit-observed",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-resettime",
}
# https://docs.gitlab.com/user/project/integrations/webhooks/#delivery-headers
DELIVERY_HEADERS = {
    "Content-Type",
    "User-Agent",
    "X-Gitlab-Event",
    "X-Gitlab-Event-UUID",
    "X-Gitlab-Instance",
    "X-Gitlab-Webhook-UUID",
    "X-Gitlab-Token",
    "Idempotency-Key",
}
# https://docs.gitlab.com/user/project/integrations/webhook_events/#merge-request-events
MR_HOOK_ATTRIBUTES = {
    "id",
    "iid",
    "title",
    "url",
    "action",
    "state",
    "source_branch",
    "target_branch",
    "author_id",
    "description",
    "created_at",
    "updated_at",
    "last_commit",
    "source_project_id",
    "target_project_id",
}
HOOK_PROJECT_FIELDS = {"id", "name", "web_url", "path_with_namespace", "default_branch"}
# https://docs.gitlab.com/user/project/integrations/webhook_events/#push-events
PUSH_FIELDS = {
    "object_kind",
    "event_name",
    "before",
    "after",
    "ref",
    "checkout_sha",
    "user_id",
    "user_name",
    "user_username",
    "project_id",
    "project",
    "commits",
    "total_commits_count",
    "repository",
}
COMMIT_FIELDS = {"id", "message", "title", "timestamp", "url", "author", "added", "modified"}


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab(tokens=(TOKEN,)) as fake:
        fake.add_project("acme/api", project_id=42)
        fake.add_merge_request("acme/api", "Fix login", iid=7, author="ada")
        yield fake


@pytest.fixture
def client(gitlab: FakeGitLab) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gitlab.url + "/api/v4", headers={"PRIVATE-TOKEN": TOKEN}) as c:
        yield c


def test_a_merge_request_has_the_documented_fields(client: httpx.Client) -> None:
    for project in ("42", "acme%2Fapi"):
        answer = client.get(f"/projects/{project}/merge_requests/7")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/json")
        body = answer.json()
        assert body.keys() >= MERGE_REQUEST_FIELDS
        assert body["author"].keys() >= USER_FIELDS
        assert (body["iid"], body["project_id"], body["state"]) == (7, 42, "opened")
        assert body["web_url"] == "https://gitlab.com/acme/api/-/merge_requests/7"
        assert body["references"]["full"] == "acme/api!7"
        assert answer.headers.keys() >= RATE_LIMIT_HEADERS


def test_bearer_tokens_work_and_bad_ones_get_401(gitlab: FakeGitLab) -> None:
    url = gitlab.url + "/api/v4/projects/42/merge_requests/7"
    assert httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    for headers in ({}, {"PRIVATE-TOKEN": "glpat-wrong"}, {"Authorization": "Bearer nope"}):
        refused = httpx.get(url, headers=headers)
        assert refused.status_code == 401
        assert refused.json() == {"message": "401 Unauthorized"}


def test_a_read_only_token_cannot_write(gitlab: FakeGitLab, client: httpx.Client) -> None:
    gitlab.read_only.add(TOKEN)
    refused = client.post("/projects/42/merge_requests/7/notes", json={"body": "hi"})
    assert (refused.status_code, refused.json()) == (403, {"message": "403 Forbidden"})
    assert gitlab.notes_on(42, 7) == []


def test_missing_projects_and_merge_requests_are_404(client: httpx.Client) -> None:
    project = client.get("/projects/acme%2Fnope/merge_requests/7")
    assert (project.status_code, project.json()) == (404, {"message": "404 Project Not Found"})
    merge_request = client.get("/projects/42/merge_requests/99")
    assert (merge_request.status_code, merge_request.json()) == (404, {"message": "404 Not found"})


def test_a_note_is_created_and_kept(gitlab: FakeGitLab, client: httpx.Client) -> None:
    created = client.post("/projects/acme%2Fapi/merge_requests/7/notes", json={"body": "LGTM"})
    assert created.status_code == 201
    note = created.json()
    assert note.keys() >= NOTE_FIELDS
    assert (note["body"], note["noteable_type"], note["noteable_iid"]) == (
        "LGTM",
        "MergeRequest",
        7,
    )
    assert note["project_id"] == 42
    assert note["system"] is False
    assert gitlab.notes_on("acme/api", 7) == [note]
    form = client.post("/projects/42/merge_requests/7/notes", data={"body": "as a form"})
    assert form.status_code == 201
    assert client.get("/projects/42/merge_requests/7").json()["user_notes_count"] == 2


def test_a_note_without_a_body_is_refused_as_gitlab_does(
    gitlab: FakeGitLab, client: httpx.Client
) -> None:
    missing = client.post("/projects/42/merge_requests/7/notes", json={})
    assert (missing.status_code, missing.json()) == (400, {"error": "body is missing"})
    blank = client.post("/projects/42/merge_requests/7/notes", json={"body": "  "})
    assert (blank.status_code, blank.json()) == (400, {"message": {"note": ["can't be blank"]}})
    on_nothing = client.post("/projects/42/merge_requests/99/notes", json={"body": "x"})
    assert on_nothing.status_code == 404
    assert gitlab.notes_on(42, 7) == []


def test_lists_page_with_gitlabs_offset_headers(gitlab: FakeGitLab, client: httpx.Client) -> None:
    for n in range(8, 13):  # 6 merge requests in all: iids 7..12
        gitlab.add_merge_request(42, f"Change {n}", iid=n)
    first = client.get("/projects/42/merge_requests", params={"per_page": 4})
    assert first.status_code == 200
    assert first.headers.keys() >= PAGINATION_HEADERS
    assert [mr["iid"] for mr in first.json()] == [12, 11, 10, 9]
    assert {k: first.headers[k] for k in PAGINATION_HEADERS - {"link"}} == {
        "x-page": "1",
        "x-per-page": "4",
        "x-next-page": "2",
        "x-prev-page": "",
        "x-total": "6",
        "x-total-pages": "2",
    }
    base = "https://gitlab.com/api/v4/projects/42/merge_requests"
    assert first.headers["link"] == (
        f'<{base}?per_page=4&page=2>; rel="next", '
        f'<{base}?per_page=4&page=1>; rel="first", '
        f'<{base}?per_page=4&page=2>; rel="last"'
    )
    second = client.get("/projects/42/merge_requests", params={"per_page": 4, "page": 2})
    assert [mr["iid"] for mr in second.json()] == [8, 7]
    assert (second.headers["x-next-page"], second.headers["x-prev-page"]) == ("", "1")
    assert 'rel="prev"' in second.headers["link"]
    assert 'rel="next"' not in second.headers["link"]
    default = client.get("/projects/42/merge_requests")
    assert default.headers["x-per-page"] == "20"
    assert client.get("/projects/42/merge_requests?per_page=500").headers["x-per-page"] == "100"


def test_lists_filter_by_state(gitlab: FakeGitLab, client: httpx.Client) -> None:
    gitlab.add_merge_request(42, "Shipped", iid=8, state="merged")
    merged = client.get("/projects/42/merge_requests", params={"state": "merged"})
    assert [mr["iid"] for mr in merged.json()] == [8]
    assert merged.headers["x-total"] == "1"
    bad = client.get("/projects/42/merge_requests", params={"state": "sideways"})
    assert bad.status_code == 400
    assert "state" in bad.json()["error"]


def test_throttled_requests_get_429_with_retry_after(
    gitlab: FakeGitLab, client: httpx.Client
) -> None:
    gitlab.throttle(1, retry_after_s=30)
    limited = client.get("/projects/42/merge_requests/7")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "30"
    assert limited.headers.keys() >= RATE_LIMIT_HEADERS
    assert limited.headers["ratelimit-remaining"] == "0"
    reset = int(limited.headers["ratelimit-reset"])
    assert time.time() + 25 < reset <= time.time() + 31
    assert limited.text == "Retry later\n"
    assert client.get("/projects/42/merge_requests/7").status_code == 200


def test_rate_limit_headers_count_down(client: httpx.Client) -> None:
    one = client.get("/projects/42/merge_requests/7").headers
    two = client.get("/projects/42/merge_requests/7").headers
    assert int(two["ratelimit-observed"]) == int(one["ratelimit-observed"]) + 1
    assert int(two["ratelimit-remaining"]) == int(one["ratelimit-remaining"]) - 1
    assert one["ratelimit-limit"] == "2000"


def test_server_errors_have_gitlabs_body(gitlab: FakeGitLab, client: httpx.Client) -> None:
    gitlab.fail_next(500)
    failed = client.get("/projects/42/merge_requests/7")
    assert (failed.status_code, failed.json()) == (500, {"message": "500 Internal Server Error"})
    gitlab.fail_next(502)
    assert client.get("/projects/42/merge_requests/7").status_code == 502


def test_a_merge_request_delivery_is_shaped_as_gitlab_sends_it(gitlab: FakeGitLab) -> None:
    delivery = gitlab.delivery(
        "merge_request", token=HOOK_TOKEN, project="acme/api", iid=7, action="merge"
    )
    assert set(delivery.headers) == DELIVERY_HEADERS
    assert delivery.headers["X-Gitlab-Event"] == "Merge Request Hook"
    assert delivery.headers["X-Gitlab-Token"] == HOOK_TOKEN
    assert delivery.headers["X-Gitlab-Instance"] == "https://gitlab.com"
    assert delivery.headers["User-Agent"].startswith("GitLab/")
    assert delivery.headers["X-Gitlab-Event-UUID"] != delivery.headers["Idempotency-Key"]
    payload = delivery.json()
    assert (payload["object_kind"], payload["event_type"]) == ("merge_request", "merge_request")
    assert payload["object_attributes"].keys() >= MR_HOOK_ATTRIBUTES
    assert payload["project"].keys() >= HOOK_PROJECT_FIELDS
    assert {"id", "name", "username", "avatar_url"} <= payload["user"].keys()
    attributes = payload["object_attributes"]
    assert (attributes["action"], attributes["state"], attributes["iid"]) == ("merge", "merged", 7)
    assert attributes["url"] == "https://gitlab.com/acme/api/-/merge_requests/7"
    assert payload["project"]["path_with_namespace"] == "acme/api"


def test_push_and_note_deliveries(gitlab: FakeGitLab) -> None:
    push = gitlab.delivery("push", token=HOOK_TOKEN, commits=["One", "Two"], ref="refs/heads/dev")
    assert push.headers["X-Gitlab-Event"] == "Push Hook"
    payload = push.json()
    assert payload.keys() >= PUSH_FIELDS
    assert payload["object_kind"] == "push"
    assert payload["total_commits_count"] == 2
    assert all(commit.keys() >= COMMIT_FIELDS for commit in payload["commits"])
    assert payload["after"] == payload["commits"][-1]["id"]
    note = gitlab.delivery("note", token=HOOK_TOKEN, note="Nice")
    assert note.headers["X-Gitlab-Event"] == "Note Hook"
    assert note.json()["object_attributes"]["note"] == "Nice"
    with pytest.raises(ValueError, match="kind must be one of"):
        gitlab.delivery("pipeline")


class _Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[tuple[dict[str, str], Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.got.append((dict(self.headers.items()), json.loads(body)))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def test_send_posts_the_delivery(gitlab: FakeGitLab) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        delivery = gitlab.delivery("push", token=HOOK_TOKEN)
        sent = gitlab.send(f"http://127.0.0.1:{server.server_address[1]}/hooks", delivery)
    finally:
        server.shutdown()
        server.server_close()
    assert sent.status == 202
    [(headers, payload)] = _Receiver.got
    assert headers["X-Gitlab-Event"] == "Push Hook"
    assert headers["X-Gitlab-Token"] == HOOK_TOKEN
    assert payload == delivery.json()
