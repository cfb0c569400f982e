"""The Sentry plugin in a real sandboxed worker: deliveries built and signed by FakeSentry,
checked by the host's hmac verifier, and tickets opened in FakeJira or FakeLinear (both mounted
in every test, so a request to the wrong tracker would show), with the plugin's own
credential to each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sentry_plugin.alerts import (
    Alert,
    Resolved,
    SentryPayloadError,
    jira_fields,
    linear_input,
    notification,
    read_delivery,
)

from plugport.errors import PluginCallError, WebhookRefusedError
from plugport.testing import PluginHandle
from plugport.testing.services.jira import FakeJira
from plugport.testing.services.linear import FakeLinear
from plugport.testing.services.sentry import Delivery, FakeSentry


@pytest.fixture
def sentry() -> FakeSentry:
    return FakeSentry()


@pytest.fixture
def trackers(plugin: PluginHandle) -> Iterator[tuple[FakeJira, FakeLinear]]:
    with FakeJira() as jira, FakeLinear() as linear:
        jira.mount(plugin)
        linear.mount(plugin)
        plugin.secrets.set("jira", jira.basic_credential)
        plugin.secrets.set("linear", linear.api_key)
        plugin.config.set(
            jira_site="acme",
            jira_project="OPS",
            linear_team_id=linear.team("ENG")["id"],
            retry_budget_s=2,
        )
        yield jira, linear


@pytest.fixture
def jira(trackers: tuple[FakeJira, FakeLinear]) -> FakeJira:
    return trackers[0]


@pytest.fixture
def linear(trackers: tuple[FakeJira, FakeLinear]) -> FakeLinear:
    return trackers[1]


def deliver(plugin: PluginHandle, sentry: FakeSentry, delivery: Delivery) -> object:
    return plugin.webhook("alert", delivery.body, delivery.headers, secret=sentry.client_secret)


# --- pure -------------------------------------------------------------------------------------


def test_reading_deliveries(sentry: FakeSentry) -> None:
    alert = read_delivery("event_alert", sentry.issue_alert("42", rule="Checkout errors").json())
    assert isinstance(alert, Alert)
    assert (alert.issue_id, alert.rule, alert.level) == ("42", "Checkout errors", "error")
    resolved = read_delivery("issue", sentry.issue("resolved", "42").json())
    assert resolved == Resolved(
        "42", "ZeroDivisionError: division by zero", "https://acme.sentry.io/issues/42/", "Ada"
    )
    assert isinstance(read_delivery("issue", sentry.issue("created", "43").json()), Alert)
    assert read_delivery("issue", sentry.issue("assigned").json()) is None
    assert read_delivery("installation", {"action": "created", "data": {}}) is None
    with pytest.raises(SentryPayloadError, match=r"no data\.event\.issue_id"):
        read_delivery("event_alert", {"action": "triggered", "data": {"event": {}}})
    with pytest.raises(SentryPayloadError, match="'data' object"):
        read_delivery("event_alert", ["not", "sentry"])


def test_ticket_requests_and_notification() -> None:
    alert = Alert(
        "42", "KeyError: 'user'", "app.views in get", "warning", "https://s/42", "api", "Rule"
    )
    fields = jira_fields(alert, "OPS", "Bug")["fields"]
    assert fields["summary"] == "[Sentry] KeyError: 'user'"
    assert fields["description"]["content"][0]["content"][0]["text"] == "Sentry issue 42 (warning)"
    assert linear_input(alert, "team")["input"]["priority"] == 3
    note = notification(alert, {"key": "OPS-1"}, new=True)
    assert note == {
        "source": "sentry",
        "title": "Sentry: KeyError: 'user'",
        "text": "app.views in get: opened OPS-1",
        "url": "https://s/42",
        "severity": "warning",
        "fields": {"Ticket": "OPS-1", "Project": "api", "Rule": "Rule"},
    }


# --- end to end -------------------------------------------------------------------------------


def test_an_alert_opens_a_jira_ticket_once_then_comments(
    plugin: PluginHandle, sentry: FakeSentry, jira: FakeJira, linear: FakeLinear
) -> None:
    ticket = deliver(plugin, sentry, sentry.issue_alert("42", title="KeyError: 'user'"))
    assert ticket == {
        "tracker": "jira",
        "key": "OPS-1",
        "id": jira.issues["OPS-1"].id,
        "url": "https://acme.atlassian.net/browse/OPS-1",
        "site": "acme",
    }
    assert jira.issues["OPS-1"].summary == "[Sentry] KeyError: 'user'"
    assert jira.issues["OPS-1"].labels == ["sentry"]
    assert plugin.storage.data == {"ticket:42": ticket}
    deliver(plugin, sentry, sentry.issue_alert("42", title="KeyError: 'user'"))
    assert list(jira.issues) == ["OPS-1"]  # no duplicate ticket
    [comment] = jira.issues["OPS-1"].comments
    assert comment["body"]["content"][0]["content"][0]["text"] == "Seen again."
    published = [e["payload"] for e in plugin.events.published]
    assert [e["topic"] for e in plugin.events.published] == ["notify.sentry"] * 2
    assert [p["text"] for p in published] == [
        "app.views.checkout in total: opened OPS-1",
        "app.views.checkout in total: seen again, commented on OPS-1",
    ]
    assert published[0]["severity"] == "error"
    assert linear.requests == []  # the other tracker was never asked
    assert plugin.command("sentry.ticket", issue_id="42") == ticket
    plugin.assert_only_declared()


def test_an_alert_opens_a_linear_ticket_then_comments(
    plugin: PluginHandle, sentry: FakeSentry, jira: FakeJira, linear: FakeLinear
) -> None:
    plugin.config.set(create_in="linear")
    ticket = deliver(plugin, sentry, sentry.issue("created", "7", level="warning"))
    assert ticket["key"] == "ENG-1"
    assert linear.issues["ENG-1"]["priority"] == 3
    [sent] = linear.received("POST")
    assert sent.headers["authorization"] == linear.api_key
    deliver(plugin, sentry, sentry.issue_alert("7"))
    assert list(linear.issues) == ["ENG-1"]
    assert linear.comments[0]["body"].startswith("Seen again.")
    assert jira.requests == []


def test_resolved_comments_on_the_ticket(
    plugin: PluginHandle, sentry: FakeSentry, jira: FakeJira
) -> None:
    assert deliver(plugin, sentry, sentry.issue("resolved", "42")) is None  # no ticket yet
    assert jira.requests == []
    deliver(plugin, sentry, sentry.issue_alert("42"))
    deliver(plugin, sentry, sentry.issue("resolved", "42"))
    [comment] = jira.issues["OPS-1"].comments
    assert comment["body"]["content"][0]["content"][0]["text"] == "Resolved in Sentry by Ada."
    assert plugin.events.published[-1]["payload"]["severity"] == "success"


def test_a_forged_delivery_is_refused_before_the_plugin_runs(
    plugin: PluginHandle, sentry: FakeSentry, jira: FakeJira
) -> None:
    forged = FakeSentry(client_secret="not-the-operators").issue_alert("42")
    with pytest.raises(WebhookRefusedError):
        deliver(plugin, sentry, forged)
    assert jira.requests == []
    assert plugin.storage.data == {}


def test_a_malformed_body_is_a_clear_error(
    plugin: PluginHandle, sentry: FakeSentry, jira: FakeJira
) -> None:
    broken = sentry.delivery("event_alert", {"action": "triggered", "data": {"event": {}}})
    with pytest.raises(PluginCallError, match=r"SentryPayloadError: .*no data\.event\.issue_id"):
        deliver(plugin, sentry, broken)
    assert jira.requests == []
    assert plugin.events.published == []


def test_jira_401_names_the_credential(
    plugin: PluginHandle, sentry: FakeSentry, jira: FakeJira
) -> None:
    plugin.secrets.set("jira", "bot@acme.test:revoked")
    with pytest.raises(
        PluginCallError,
        match=r"credential 'jira' \(HTTP 401\).*plugport secret set plugport\."
        r"sentry jira",
    ):
        deliver(plugin, sentry, sentry.issue_alert("42"))
    assert plugin.storage.data == {}  # the next delivery attempt opens the ticket
    assert plugin.events.published == []


def test_jira_429_is_retried_then_opens_the_ticket(
    plugin: PluginHandle, sentry: FakeSentry, jira: FakeJira
) -> None:
    jira.throttle(1, retry_after_s=1)
    assert deliver(plugin, sentry, sentry.issue_alert("42"))["key"] == "OPS-1"
    assert len(jira.received("POST")) == 2


def test_jira_5xx_is_not_retried_on_create(
    plugin: PluginHandle, sentry: FakeSentry, jira: FakeJira
) -> None:
    jira.fail_next(503)
    with pytest.raises(PluginCallError, match=r"Jira failed \(HTTP 503\)"):
        deliver(plugin, sentry, sentry.issue_alert("42"))
    assert len(jira.received("POST")) == 1
    assert plugin.storage.data == {}


def test_linear_rate_limit_that_keeps_coming_gives_up(
    plugin: PluginHandle, sentry: FakeSentry, linear: FakeLinear
) -> None:
    plugin.config.set(create_in="linear")
    linear.throttle(10, retry_after_s=0)
    with pytest.raises(PluginCallError, match=r"still rate-limiting \(RATELIMITED\) after 3"):
        deliver(plugin, sentry, sentry.issue_alert("42"))
    assert len(linear.received("POST")) == 3
    assert plugin.storage.data == {}
    linear.faults.clear()
    linear.throttle(1, retry_after_s=1)
    assert deliver(plugin, sentry, sentry.issue_alert("42"))["key"] == "ENG-1"


def test_linear_auth_error_names_the_credential(
    plugin: PluginHandle, sentry: FakeSentry, linear: FakeLinear
) -> None:
    plugin.config.set(create_in="linear")
    plugin.secrets.set("linear", "lin_api_revoked")
    with pytest.raises(PluginCallError, match=r"plugport secret set plugport\.sentry linear"):
        deliver(plugin, sentry, sentry.issue_alert("42"))
    assert linear.issues == {}


def test_forget_lets_the_next_alert_open_a_new_ticket(
    plugin: PluginHandle, sentry: FakeSentry, jira: FakeJira
) -> None:
    deliver(plugin, sentry, sentry.issue_alert("42"))
    assert plugin.command("sentry.forget", issue_id="42") is True
    assert deliver(plugin, sentry, sentry.issue_alert("42"))["key"] == "OPS-2"
