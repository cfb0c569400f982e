"""plugport.gitlab in a real sandboxed worker, against FakeGitLab: deliveries signed with the
hook's token, notes and lists through the host's network broker with the token credential, and
GitLab's failures (401, 429, 5xx, malformed bodies and answers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gitlab_plugin.api import GitLabError, answer, next_page, note_url, project_segment
from gitlab_plugin.events import PayloadError, notification
from gitlab_plugin.plugin import render_comment

from plugport.errors import PermissionDeniedError, PluginCallError, WebhookRefusedError
from plugport.testing.services.gitlab import FakeGitLab

TOKEN = "glpat-stand-in-token"
HOOK_TOKEN = "hook-stand-in-token"
NOTES = r"/api/v4/projects/[^/]+/merge_requests/\d+/notes"


@pytest.fixture
def gitlab(plugin: Any) -> Iterator[FakeGitLab]:
    with FakeGitLab(tokens=(TOKEN,)) as fake:
        fake.add_project("acme/api", project_id=42)
        fake.add_merge_request("acme/api", "Fix login", iid=7, author="ada")
        fake.mount(plugin)
        plugin.secrets.set("token", TOKEN)
        plugin.config.set(retry_budget_s=2)
        yield fake


def deliver(plugin: Any, gitlab: FakeGitLab, kind: str, **fields: Any) -> None:
    delivery = gitlab.delivery(kind, token=HOOK_TOKEN, **fields)
    plugin.webhook("events", delivery.body, delivery.headers, secret=HOOK_TOKEN)


# --- pure parts -----------------------------------------------------------------------------


def test_project_paths_are_one_encoded_segment() -> None:
    assert project_segment("acme/api") == "acme%2Fapi"
    assert project_segment(42) == "42"
    assert note_url("group/sub/app", 3) == (
        "https://gitlab.com/api/v4/projects/group%2Fsub%2Fapp/merge_requests/3/notes"
    )
    with pytest.raises(GitLabError, match="give a project"):
        project_segment(" / ")


def test_next_page_reads_x_next_page() -> None:
    assert next_page({"x-next-page": "3"}) == 3
    assert next_page({"x-next-page": ""}) is None
    assert next_page({}) is None


def test_answers_become_errors_that_say_what_to_do() -> None:
    with pytest.raises(GitLabError, match=r"plugport secret set plugport\.gitlab token") as caught:
        answer(401, {}, b'{"message": "401 Unauthorized"}', "commenting")
    assert caught.value.status == 401
    with pytest.raises(GitLabError, match=r"note can't be blank"):
        answer(400, {}, b'{"message": {"note": ["can\'t be blank"]}}', "commenting")
    with pytest.raises(GitLabError, match="404 Project Not Found"):
        answer(404, {}, b'{"message": "404 Project Not Found"}', "commenting")
    with pytest.raises(GitLabError, match="Retry-After 30 s"):
        answer(429, {"retry-after": "30"}, b"Retry later", "commenting")
    with pytest.raises(GitLabError, match="not JSON"):
        answer(200, {}, b"<html>", "commenting")


def test_notifications_for_merge_requests_and_pushes() -> None:
    fake = FakeGitLab()
    opened = fake.merge_request_payload(project="acme/api", iid=12, title="Fix login", user="ada")
    assert notification("Merge Request Hook", opened) == {
        "source": "gitlab",
        "title": "MR !12 opened: Fix login",
        "text": "ada opened merge request !12 (fix-login → main)",
        "url": "https://gitlab.com/acme/api/-/merge_requests/12",
        "severity": "info",
        "fields": {"Project": "acme/api", "Author": "ada", "Branch": "fix-login → main"},
    }
    merged = fake.merge_request_payload(action="merge")
    assert notification("Merge Request Hook", merged)["severity"] == "success"  # type: ignore[index]
    assert notification("Merge Request Hook", fake.merge_request_payload(action="update")) is None
    push = fake.push_payload(project="acme/api", commits=["One", "Two"], user="bob")
    pushed = notification("Push Hook", push)
    assert pushed is not None
    assert pushed["title"] == "bob pushed 2 commits to acme/api:main"
    assert pushed["text"].splitlines()[1].endswith(" Two")
    assert notification("Note Hook", fake.note_payload()) is None


def test_a_body_that_is_not_its_events_shape_is_refused() -> None:
    with pytest.raises(PayloadError, match="no 'object_kind'"):
        notification("Merge Request Hook", ["not", "an", "object"])
    with pytest.raises(PayloadError, match=r"'project\.path_with_namespace'"):
        notification("Merge Request Hook", {"object_kind": "merge_request", "project": {}})
    broken = FakeGitLab().push_payload()
    del broken["commits"][0]["title"]
    with pytest.raises(PayloadError, match="'title'"):
        notification("Push Hook", broken)


def test_the_open_comment_template_is_checked() -> None:
    values = {"author": "ada", "title": "T", "iid": 1, "project": "a/b"}
    assert render_comment("Thanks @$author for !$iid ($$5)", values) == "Thanks @ada for !1 ($5)"
    with pytest.raises(GitLabError, match=r"setting open_comment has an unknown placeholder \$who"):
        render_comment("Hi $who", values)


# --- in the sandbox, against FakeGitLab ------------------------------------------------------


def test_a_merge_request_opened_is_announced(plugin: Any, gitlab: FakeGitLab) -> None:
    deliver(plugin, gitlab, "merge_request", project="acme/api", iid=7, title="Fix login")
    [event] = plugin.events.published
    assert event["topic"] == "notify.gitlab"
    assert event["payload"]["title"] == "MR !7 opened: Fix login"
    assert gitlab.requests == []  # comment_on_open is off by default
    plugin.assert_only_declared()


def test_merged_closed_and_pushes_are_announced(plugin: Any, gitlab: FakeGitLab) -> None:
    deliver(plugin, gitlab, "merge_request", iid=7, action="merge")
    deliver(plugin, gitlab, "merge_request", iid=7, action="close")
    deliver(plugin, gitlab, "merge_request", iid=7, action="update")  # not announced
    deliver(plugin, gitlab, "push", commits=["Bump version"], user="bob")
    deliver(plugin, gitlab, "note")  # not announced
    titles = [e["payload"]["title"] for e in plugin.events.published]
    assert titles == [
        "MR !7 merged: Fix login",
        "MR !7 closed: Fix login",
        "bob pushed 1 commit to acme/api:main",
    ]
    plugin.config.set(notify_pushes=False)
    deliver(plugin, gitlab, "push")
    assert len(plugin.events.published) == 3


def test_a_wrong_hook_token_is_refused_before_the_plugin(plugin: Any, gitlab: FakeGitLab) -> None:
    delivery = gitlab.delivery("merge_request", token="not-the-token")
    with pytest.raises(WebhookRefusedError) as caught:
        plugin.webhook("events", delivery.body, delivery.headers, secret=HOOK_TOKEN)
    assert caught.value.status == 401
    unsigned = gitlab.delivery("merge_request")
    with pytest.raises(WebhookRefusedError):
        plugin.webhook("events", unsigned.body, unsigned.headers, secret=HOOK_TOKEN)
    assert plugin.events.published == []


def test_a_delivery_not_shaped_as_gitlabs_is_refused(plugin: Any, gitlab: FakeGitLab) -> None:
    headers = gitlab.delivery("merge_request", token=HOOK_TOKEN).headers
    bad = {"object_kind": "merge_request", "object_attributes": {"title": "x"}}
    with pytest.raises(PluginCallError, match="PayloadError: the delivery has no 'project"):
        plugin.webhook("events", bad, headers, secret=HOOK_TOKEN)
    with pytest.raises(PluginCallError, match="body is not JSON"):
        plugin.webhook("events", b"<xml/>", headers, secret=HOOK_TOKEN)
    assert plugin.events.published == []


def test_comment_on_open_posts_a_note(plugin: Any, gitlab: FakeGitLab) -> None:
    plugin.config.set(comment_on_open=True, open_comment="Thanks @$author for $project!$iid")
    deliver(plugin, gitlab, "merge_request", project="acme/api", iid=7, user="ada")
    [request] = gitlab.received("POST", NOTES)
    assert request.path == "/api/v4/projects/acme%2Fapi/merge_requests/7/notes"
    assert request.headers["private-token"] == TOKEN  # added by the host
    assert request.json() == {"body": "Thanks @ada for acme/api!7"}
    assert [n["body"] for n in gitlab.notes_on("acme/api", 7)] == ["Thanks @ada for acme/api!7"]
    assert len(plugin.events.published) == 1
    deliver(plugin, gitlab, "merge_request", iid=7, action="merge")  # no comment on merge
    assert len(gitlab.received("POST", NOTES)) == 1


def test_a_failed_open_comment_is_logged_not_announced_twice(
    plugin: Any, gitlab: FakeGitLab
) -> None:
    plugin.config.set(comment_on_open=True)
    plugin.secrets.set("token", "glpat-revoked")
    deliver(plugin, gitlab, "merge_request", iid=7)
    assert len(plugin.events.published) == 1
    assert any(
        "no comment on acme/api!7" in line and "plugport secret set plugport.gitlab token" in line
        for line in plugin.logs
    )
    assert gitlab.notes_on(42, 7) == []


def test_the_note_command(plugin: Any, gitlab: FakeGitLab) -> None:
    result = plugin.command("gitlab.note", project="acme/api", iid=7, body="Deployed to staging")
    assert result["project"] == "acme/api"
    assert result["iid"] == 7
    [note] = gitlab.notes_on(42, 7)
    assert note["id"] == result["id"]
    assert note["body"] == "Deployed to staging"
    plugin.command("gitlab.note", project=42, iid=7, body="by id")
    assert gitlab.received("POST", NOTES)[-1].path == "/api/v4/projects/42/merge_requests/7/notes"
    plugin.assert_only_declared()


def test_a_refused_token_names_the_credential_and_the_command(
    plugin: Any, gitlab: FakeGitLab
) -> None:
    plugin.secrets.set("token", "glpat-revoked")
    with pytest.raises(PluginCallError) as caught:
        plugin.command("gitlab.note", project="acme/api", iid=7, body="hi")
    message = str(caught.value)
    assert "GitLab refused the token credential" in message
    assert "plugport secret set plugport.gitlab token" in message
    assert "glpat-revoked" not in message
    assert len(gitlab.received("POST", NOTES)) == 1  # a 401 is not retried
    assert gitlab.notes_on(42, 7) == []


def test_a_missing_project_or_merge_request(plugin: Any, gitlab: FakeGitLab) -> None:
    with pytest.raises(PluginCallError, match="404 Project Not Found"):
        plugin.command("gitlab.note", project="acme/nope", iid=7, body="hi")
    with pytest.raises(PluginCallError, match="404 Not found"):
        plugin.command("gitlab.note", project="acme/api", iid=99, body="hi")
    with pytest.raises(PluginCallError, match="needs a non-empty body"):
        plugin.command("gitlab.note", project="acme/api", iid=7, body=" ")
    assert gitlab.notes_on(42, 7) == []


def test_429_is_retried_after_retry_after(plugin: Any, gitlab: FakeGitLab) -> None:
    gitlab.throttle(2, retry_after_s=0, path=NOTES)
    plugin.command("gitlab.note", project="acme/api", iid=7, body="hi")
    statuses = [r.path for r in gitlab.received("POST", NOTES)]
    assert len(statuses) == 3
    assert len(gitlab.notes_on(42, 7)) == 1


def test_429_that_keeps_coming_gives_up_clearly(plugin: Any, gitlab: FakeGitLab) -> None:
    gitlab.throttle(10, retry_after_s=1, path=NOTES)
    plugin.config.set(retry_budget_s=1)
    with pytest.raises(PluginCallError, match=r"kept rate-limiting .* \(429, Retry-After 1 s\)"):
        plugin.command("gitlab.note", project="acme/api", iid=7, body="hi")
    assert len(gitlab.received("POST", NOTES)) == 2  # the first, and one after 1 s; then budget
    assert gitlab.notes_on(42, 7) == []


def test_a_5xx_on_a_note_is_not_retried_a_5xx_on_a_read_is(plugin: Any, gitlab: FakeGitLab) -> None:
    gitlab.fail_next(502, path=NOTES)
    with pytest.raises(PluginCallError, match=r"GitLab failed commenting on acme/api!7 \(HTTP 502"):
        plugin.command("gitlab.note", project="acme/api", iid=7, body="hi")
    assert len(gitlab.received("POST", NOTES)) == 1  # a note posted twice would be a duplicate
    gitlab.fail_next(503, 2)
    listed = plugin.command("gitlab.merge_requests", project="acme/api")
    assert [mr["iid"] for mr in listed["merge_requests"]] == [7]
    assert len(gitlab.received("GET")) == 3


def test_merge_requests_are_read_page_after_page(plugin: Any, gitlab: FakeGitLab) -> None:
    for n in range(8, 13):
        gitlab.add_merge_request(42, f"Change {n}", iid=n)
    gitlab.add_merge_request(42, "Old", iid=13, state="merged")
    plugin.config.set(per_page=2)
    listed = plugin.command("gitlab.merge_requests", project="acme/api")
    assert [mr["iid"] for mr in listed["merge_requests"]] == [12, 11, 10, 9, 8, 7]
    assert listed["complete"] is True
    assert listed["merge_requests"][0] == {
        "iid": 12,
        "title": "Change 12",
        "state": "opened",
        "url": "https://gitlab.com/acme/api/-/merge_requests/12",
        "author": "ada",
    }
    pages = [r.query["page"] for r in gitlab.received("GET")]
    assert pages == ["1", "2", "3"]
    plugin.config.set(max_pages=2)
    partial = plugin.command("gitlab.merge_requests", project="acme/api")
    assert len(partial["merge_requests"]) == 4
    assert partial["complete"] is False


def test_an_answer_missing_fields_is_refused(plugin: Any, gitlab: FakeGitLab) -> None:
    plugin.net.route(
        "POST", "https://gitlab.com/api/v4/projects/*/notes", status=201, json={"id": 1}
    )
    with pytest.raises(PluginCallError, match="lacks body, noteable_iid"):
        plugin.command("gitlab.note", project="acme/api", iid=7, body="hi")


def test_a_gitlab_url_the_manifest_does_not_name_is_never_reached(
    plugin: Any, gitlab: FakeGitLab
) -> None:
    plugin.config.set(gitlab_url="https://gitlab.example.com")
    with pytest.raises(PermissionDeniedError, match=r"gitlab\.example\.com:443 is not in"):
        plugin.command("gitlab.note", project="acme/api", iid=7, body="hi")
    assert gitlab.requests == []
    plugin.assert_denied("net.fetch")
