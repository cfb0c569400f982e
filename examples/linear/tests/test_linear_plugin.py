"""The Linear plugin in a real sandboxed worker against FakeLinear
(plugport.testing.services.linear): the host adds the API key, the fake checks it and answers
with Linear's shapes, errors and rate limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from linear_plugin.graphql import LinearError, Wait, created, outcome, teams_page

from plugport.errors import PluginCallError
from plugport.testing import PluginHandle
from plugport.testing.services.linear import FakeLinear


@pytest.fixture
def linear(plugin: PluginHandle) -> Iterator[FakeLinear]:
    with FakeLinear() as fake:
        fake.mount(plugin)
        plugin.secrets.set("api_key", fake.api_key)
        plugin.config.set(team_id=fake.team("ENG")["id"], retry_budget_s=2)
        yield fake


# --- pure -------------------------------------------------------------------------------------


def test_outcome_reads_the_body_not_the_status() -> None:
    assert outcome(200, {"data": {"x": 1}}, {}, 0) == {"x": 1}
    limited = {
        "errors": [{"message": "Rate limit exceeded", "extensions": {"code": "RATELIMITED"}}]
    }
    reset = {"x-ratelimit-requests-reset": "12500"}
    assert outcome(400, limited, reset, 10.0) == Wait(2.5)
    with pytest.raises(LinearError, match=r"plugport secret set plugport\.linear api_key"):
        outcome(400, {"errors": [{"extensions": {"code": "AUTHENTICATION_ERROR"}}]}, {}, 0)
    refused = {
        "errors": [
            {
                "message": "m",
                "extensions": {"code": "INVALID_INPUT", "userPresentableMessage": "Bad team"},
            }
        ]
    }
    with pytest.raises(LinearError, match=r"refused the request \(INVALID_INPUT\): Bad team"):
        outcome(400, refused, {}, 0)
    with pytest.raises(LinearError, match="has no 'data'"):
        outcome(200, {"nothing": True}, {}, 0)


def test_payload_readers() -> None:
    data = {"issueCreate": {"success": True, "issue": {"id": "1", "identifier": "ENG-1"}}}
    assert created(data, "issueCreate", "issue", ("identifier",)) == {"identifier": "ENG-1"}
    with pytest.raises(LinearError, match="did not confirm issueCreate"):
        created({"issueCreate": {"success": False}}, "issueCreate", "issue", ("id",))
    page = {"teams": {"nodes": [{"id": "t", "key": "K", "name": "N"}], "pageInfo": {}}}
    assert teams_page(page) == ([{"id": "t", "key": "K", "name": "N"}], None)
    with pytest.raises(LinearError, match="no endCursor"):
        teams_page({"teams": {"nodes": [], "pageInfo": {"hasNextPage": True}}})


# --- against the fake -------------------------------------------------------------------------


def test_create_an_issue(plugin: PluginHandle, linear: FakeLinear) -> None:
    answer = plugin.command("linear.create", title="Disk full", description="db-1", priority=2)
    assert answer == {
        "id": linear.issues["ENG-1"]["id"],
        "identifier": "ENG-1",
        "title": "Disk full",
        "url": "https://linear.app/acme/issue/ENG-1/disk-full",
    }
    assert (linear.issues["ENG-1"]["description"], linear.issues["ENG-1"]["priority"]) == (
        "db-1",
        2,
    )
    [sent] = linear.received("POST", "/graphql")
    assert sent.headers["authorization"] == linear.api_key  # the key itself, no "Bearer"
    assert sent.json()["variables"]["input"]["teamId"] == linear.team("ENG")["id"]
    plugin.assert_only_declared()


def test_comment_on_an_issue(plugin: PluginHandle, linear: FakeLinear) -> None:
    plugin.command("linear.create", title="x")
    answer = plugin.command("linear.comment", issue="ENG-1", body="seen again")
    assert answer["url"].startswith("https://linear.app/acme/issue/ENG-1/x#comment-")
    assert [c["body"] for c in linear.comments] == ["seen again"]
    with pytest.raises(PluginCallError, match=r"INVALID_INPUT\): Could not find referenced Issue"):
        plugin.command("linear.comment", issue="ENG-404", body="x")
    assert len(linear.comments) == 1


def test_teams_follow_pages(plugin: PluginHandle, linear: FakeLinear) -> None:
    for n in range(4):
        linear.add_team(f"T{n}", f"Team {n}")
    plugin.config.set(page_size=2)
    teams = plugin.command("linear.teams")
    assert [t["key"] for t in teams] == ["ENG", "T0", "T1", "T2", "T3"]
    sent = [r.json()["variables"] for r in linear.received("POST")]
    assert sent == [
        {"first": 2, "after": None},
        {"first": 2, "after": linear.teams[1]["id"]},
        {"first": 2, "after": linear.teams[3]["id"]},
    ]


def test_wrong_key_says_how_to_set_it(plugin: PluginHandle, linear: FakeLinear) -> None:
    plugin.secrets.set("api_key", "lin_api_revoked")
    with pytest.raises(
        PluginCallError, match=r"credential 'api_key'.*plugport secret set plugport\.linear api_key"
    ):
        plugin.command("linear.create", title="x")
    assert linear.issues == {}
    assert len(linear.received("POST")) == 1


def test_rate_limited_waits_for_the_reset_then_succeeds(
    plugin: PluginHandle, linear: FakeLinear
) -> None:
    linear.throttle(1, retry_after_s=1)
    assert plugin.command("linear.create", title="x")["identifier"] == "ENG-1"
    assert len(linear.received("POST")) == 2
    assert len(linear.issues) == 1


def test_rate_limited_that_keeps_coming_gives_up(plugin: PluginHandle, linear: FakeLinear) -> None:
    linear.throttle(10, retry_after_s=0)
    with pytest.raises(PluginCallError, match=r"still rate-limiting \(RATELIMITED\) after 3 tries"):
        plugin.command("linear.create", title="x")
    assert len(linear.received("POST")) == 3
    assert linear.issues == {}


def test_5xx_retried_for_reads_not_for_mutations(plugin: PluginHandle, linear: FakeLinear) -> None:
    linear.fail_next(502)
    assert [t["key"] for t in plugin.command("linear.teams")] == ["ENG"]
    assert len(linear.received("POST")) == 2
    linear.fail_next(503)
    with pytest.raises(PluginCallError, match=r"Linear failed \(HTTP 503\)"):
        plugin.command("linear.create", title="x")
    assert len(linear.received("POST")) == 3  # the mutation was sent once
    assert linear.issues == {}


def test_invalid_input_is_linears_message(plugin: PluginHandle, linear: FakeLinear) -> None:
    plugin.config.set(team_id="not-a-team")
    with pytest.raises(PluginCallError, match=r"\(INVALID_INPUT\): Could not find referenced Team"):
        plugin.command("linear.create", title="x")
    plugin.config.set(team_id="")
    with pytest.raises(PluginCallError, match=r"run linear\.teams"):
        plugin.command("linear.create", title="x")
    assert linear.issues == {}


def test_an_answer_without_the_issue_is_refused(plugin: PluginHandle, linear: FakeLinear) -> None:
    plugin.net.route(
        "POST",
        "https://api.linear.app/graphql",
        json={"data": {"issueCreate": {"success": True, "issue": None}}},
    )
    with pytest.raises(PluginCallError, match=r"issueCreate answer lacks issue id, identifier"):
        plugin.command("linear.create", title="x")
