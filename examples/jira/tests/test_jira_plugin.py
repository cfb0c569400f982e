"""The Jira plugin in a real sandboxed worker against FakeJira (plugport.testing.services.jira):
the host's broker adds the credential, the fake checks it and answers as Jira does."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from jira_plugin.api import JiraError, Settings, pick_transition, read_page, refusal, to_adf

from plugport.errors import PluginCallError
from plugport.testing import PluginHandle
from plugport.testing.services.jira import FakeJira

SITE = "https://acme.atlassian.net/rest/api/3"


@pytest.fixture
def jira(plugin: PluginHandle) -> Iterator[FakeJira]:
    with FakeJira() as fake:
        fake.mount(plugin)
        plugin.secrets.set("api_token", fake.basic_credential)
        plugin.config.set(site="acme", project="OPS", retry_budget_s=2)
        yield fake


# --- pure -------------------------------------------------------------------------------------


def test_text_becomes_adf_paragraphs() -> None:
    assert to_adf("one\ntwo\n\nthree") == {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "one"},
                    {"type": "hardBreak"},
                    {"type": "text", "text": "two"},
                ],
            },
            {"type": "paragraph", "content": [{"type": "text", "text": "three"}]},
        ],
    }


def test_settings_pick_the_endpoint_and_refuse_half_set_ones() -> None:
    token = Settings.read({"site": "https://Acme.atlassian.net/"})
    assert token.api_base == SITE
    assert token.credential == "api_token"
    oauth = Settings.read({"auth": "oauth2", "cloud_id": "c-1"})
    assert oauth.api_base == "https://api.atlassian.com/ex/jira/c-1/rest/api/3"
    assert oauth.credential == "oauth"
    with pytest.raises(JiraError, match=r"plugport config set plugport\.jira site acme"):
        Settings.read({"site": ""})
    with pytest.raises(JiraError, match=r"run the jira\.sites command"):
        Settings.read({"auth": "oauth2"})


def test_refusals_name_the_fix() -> None:
    token = Settings.read({"site": "acme"})
    assert refusal(201, None, token, {}) is None
    assert "plugport secret set plugport.jira api_token" in str(refusal(401, None, token, {}))
    oauth = Settings.read({"auth": "oauth2", "cloud_id": "c"})
    assert "plugport oauth2 connect plugport.jira oauth" in str(refusal(401, None, oauth, {}))
    body = {"errorMessages": ["bad"], "errors": {"summary": "You must specify a summary."}}
    assert refusal(400, body, token, {}) == (
        "Jira refused the request (HTTP 400): bad; summary: You must specify a summary."
    )


def test_transition_lookup_and_page_reading() -> None:
    offered = {"transitions": [{"id": "31", "name": "Finish", "to": {"name": "Done"}}]}
    assert pick_transition(offered, "done")["id"] == "31"
    assert pick_transition(offered, "FINISH")["id"] == "31"
    with pytest.raises(JiraError, match=r"no transition leads to 'Open' .*available: Done"):
        pick_transition(offered, "Open")
    with pytest.raises(JiraError, match="no 'issues' array"):
        read_page({"isLast": True})
    with pytest.raises(JiraError, match="gives no nextPageToken"):
        read_page({"issues": [], "isLast": False})


# --- against the fake -------------------------------------------------------------------------


def test_create_sends_adf_with_the_api_token(plugin: PluginHandle, jira: FakeJira) -> None:
    created = plugin.command(
        "jira.create", summary="Disk full on db-1", description="at 100%", type="Bug"
    )
    assert created == {
        "key": "OPS-1",
        "id": jira.issues["OPS-1"].id,
        "url": "https://acme.atlassian.net/browse/OPS-1",
    }
    issue = jira.issues["OPS-1"]
    assert (issue.summary, issue.issuetype) == ("Disk full on db-1", "Bug")
    assert issue.description == to_adf("at 100%")
    [sent] = jira.received("POST", "/rest/api/3/issue")
    basic = base64.b64encode(jira.basic_credential.encode()).decode()
    assert sent.headers["authorization"] == f"Basic {basic}"  # added by the host
    assert sent.headers["host"] == "acme.atlassian.net"
    plugin.assert_only_declared()


def test_create_refused_by_jira_names_the_field(plugin: PluginHandle, jira: FakeJira) -> None:
    with pytest.raises(PluginCallError, match=r"JiraError: .*HTTP 400.*issuetype: Specify a valid"):
        plugin.command("jira.create", summary="x", type="Spaceship")
    assert jira.issues == {}


def test_transition_by_status_name(plugin: PluginHandle, jira: FakeJira) -> None:
    jira.add_issue("OPS", "deploy")
    assert plugin.command("jira.transition", key="OPS-1", to="done") == {
        "key": "OPS-1",
        "status": "Done",
        "transition": "31",
    }
    assert jira.issues["OPS-1"].status == "Done"
    with pytest.raises(PluginCallError, match=r"no transition leads to 'Done'.*To Do, In Prog"):
        plugin.command("jira.transition", key="OPS-1", to="Done")  # already there
    assert jira.issues["OPS-1"].transitions == ["31"]


def test_comment(plugin: PluginHandle, jira: FakeJira) -> None:
    jira.add_issue("OPS", "deploy")
    answer = plugin.command("jira.comment", key="OPS-1", text="seen again")
    assert answer["key"] == "OPS-1"
    assert [c["body"] for c in jira.issues["OPS-1"].comments] == [to_adf("seen again")]


def test_search_follows_pages_up_to_max_results(plugin: PluginHandle, jira: FakeJira) -> None:
    for n in range(12):
        jira.add_issue("OPS", f"disk {n}")
    plugin.config.set(page_size=5)
    jql = 'project = OPS AND text ~ "disk" ORDER BY created DESC'
    everything = plugin.command("jira.search", jql=jql)
    assert [i["summary"] for i in everything["issues"]] == [f"disk {n}" for n in range(11, -1, -1)]
    assert everything["truncated"] is False
    pages = jira.received("POST", r".*/search/jql")
    assert len(pages) == 3
    assert [p.json().get("nextPageToken") is None for p in pages] == [True, False, False]
    assert pages[0].json()["fields"] == ["summary", "status", "issuetype"]
    some = plugin.command("jira.search", jql=jql, max_results=7)
    assert [i["key"] for i in some["issues"]] == [f"OPS-{n}" for n in range(12, 5, -1)]
    assert some["truncated"] is True
    assert [p.json()["maxResults"] for p in jira.received("POST", r".*/search/jql")[3:]] == [5, 2]


def test_search_refused_jql_is_explained(plugin: PluginHandle, jira: FakeJira) -> None:
    with pytest.raises(PluginCallError, match=r"HTTP 400\): Field 'assignee' does not exist"):
        plugin.command("jira.search", jql="assignee = ada")


def test_wrong_api_token_says_how_to_set_it(plugin: PluginHandle, jira: FakeJira) -> None:
    plugin.secrets.set("api_token", "bot@acme.test:revoked")
    with pytest.raises(
        PluginCallError,
        match=r"credential 'api_token' \(HTTP 401\).*plugport secret set "
        r"plugport\.jira api_token",
    ):
        plugin.command("jira.create", summary="x")
    assert jira.issues == {}
    assert len(jira.received("POST")) == 1  # a 401 is not retried


def test_429_is_retried_after_retry_after(plugin: PluginHandle, jira: FakeJira) -> None:
    jira.throttle(1, retry_after_s=1)
    assert plugin.command("jira.create", summary="x")["key"] == "OPS-1"
    assert len(jira.received("POST")) == 2
    assert len(jira.issues) == 1


def test_429_that_keeps_coming_gives_up(plugin: PluginHandle, jira: FakeJira) -> None:
    jira.throttle(10, retry_after_s=0)
    with pytest.raises(PluginCallError, match=r"still rate-limiting after 3 tries \(HTTP 429"):
        plugin.command("jira.create", summary="x")
    assert len(jira.received("POST")) == 3
    assert jira.issues == {}


def test_5xx_is_retried_for_reads_not_for_a_create(plugin: PluginHandle, jira: FakeJira) -> None:
    jira.add_issue("OPS", "deploy")
    jira.fail_next(503, path=r".*/transitions")
    assert plugin.command("jira.transition", key="OPS-1", to="In Progress")["transition"] == "21"
    assert len(jira.received("GET", r".*/transitions")) == 2
    jira.fail_next(502, path=r".*/search/jql")
    assert plugin.command("jira.search", jql="project = OPS")["issues"][0]["key"] == "OPS-1"
    jira.fail_next(500, path=r"/rest/api/3/issue")
    with pytest.raises(PluginCallError, match=r"Jira failed \(HTTP 500\)"):
        plugin.command("jira.create", summary="x")
    assert len(jira.received("POST", r"/rest/api/3/issue")) == 1  # not sent twice
    assert list(jira.issues) == ["OPS-1"]


def test_an_answer_without_a_key_is_refused(plugin: PluginHandle, jira: FakeJira) -> None:
    plugin.net.route("POST", f"{SITE}/issue", status=201, json={"id": "1"})
    with pytest.raises(PluginCallError, match="answer to creating an issue has no 'key'"):
        plugin.command("jira.create", summary="x")


def test_oauth2_goes_through_the_gateway(plugin: PluginHandle, jira: FakeJira) -> None:
    # The test kit's secrets hold a stand-in access token; the host injects it as a bearer.
    # (Its refresh on a 401 needs the host service's token store, tested in tests/host.)
    plugin.secrets.set("oauth", jira.access_token)
    assert plugin.command("jira.sites") == [
        {"cloud_id": jira.cloud_id, "url": "https://acme.atlassian.net", "name": "acme"}
    ]
    plugin.config.set(auth="oauth2", cloud_id=jira.cloud_id)
    assert plugin.command("jira.create", summary="via oauth")["key"] == "OPS-1"
    [sent] = jira.received("POST")
    assert sent.path == f"/ex/jira/{jira.cloud_id}/rest/api/3/issue"
    assert sent.headers["authorization"] == f"Bearer {jira.access_token}"
    plugin.secrets.set("oauth", "expired-token")
    with pytest.raises(PluginCallError, match=r"plugport oauth2 connect plugport\.jira oauth"):
        plugin.command("jira.create", summary="refused")
    assert list(jira.issues) == ["OPS-1"]


def test_unset_site_is_a_clear_error(plugin: PluginHandle, jira: FakeJira) -> None:
    plugin.config.set(site="")
    with pytest.raises(PluginCallError, match=r"plugport config set plugport\.jira site"):
        plugin.command("jira.create", summary="x")
    assert jira.requests == []
