"""plugport.teams against FakeTeams: the plugin runs in a real sandboxed worker; the host sends
its posts to the webhook URL the test set as the ``incoming`` secret, and the local fake
answers as a Teams connector or a Workflows trigger does."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest
from teams_plugin.answers import TeamsError, check_answer
from teams_plugin.cards import (
    MAX_MESSAGE_BYTES,
    notification_card,
    notification_message,
)

from plugport.errors import PluginCallError
from plugport.sdk.notify import parse_notification
from plugport.testing import PluginHandle
from plugport.testing.services.teams import FakeTeams, adaptive_card_errors, teams_message_errors

NOTE = {
    "source": "sentry",
    "title": "New issue: KeyError in checkout",
    "text": "KeyError: 'cart' in api/checkout.py:42",
    "url": "https://acme.sentry.io/issues/4711/",
    "severity": "error",
    "fields": {"Project": "api", "Events": "17"},
}
FAST = {"retry_budget_s": 1, "retry_base_s": 0.01, "retry_attempts": 3}


def eventually(check: Callable[[], bool], timeout_s: float = 3.0) -> bool:
    """Log lines reach the host from the worker on their own channel, a moment after the call
    that wrote them returned: poll for them."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def teams(plugin: PluginHandle) -> Iterator[FakeTeams]:
    with FakeTeams() as fake:
        fake.mount(plugin)
        plugin.secrets.set("incoming", fake.connector_url())
        plugin.config.set(**FAST)
        yield fake


# --- pure building --------------------------------------------------------------------------


def test_a_notification_becomes_an_adaptive_card() -> None:
    note = parse_notification(NOTE)
    assert note is not None
    card = notification_card(note)
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    title, text, facts, footer = card["body"]
    assert title["style"] == "attention"
    assert title["items"][0] == {
        "type": "TextBlock",
        "text": "New issue: KeyError in checkout",
        "weight": "bolder",
        "size": "medium",
        "color": "attention",
        "wrap": True,
    }
    assert text == {
        "type": "TextBlock",
        "text": "KeyError: 'cart' in api/checkout.py:42",
        "wrap": True,
    }
    assert facts == {
        "type": "FactSet",
        "facts": [{"title": "Project", "value": "api"}, {"title": "Events", "value": "17"}],
    }
    assert footer["text"] == "sentry · error"
    assert card["actions"] == [
        {"type": "Action.OpenUrl", "title": "Open", "url": "https://acme.sentry.io/issues/4711/"}
    ]
    assert adaptive_card_errors(card) == []
    assert teams_message_errors(json.loads(notification_message(note))) == []


def test_colour_follows_severity() -> None:
    styles = {}
    for severity in ("info", "success", "warning", "error", "unknown"):
        note = parse_notification({"title": "x", "severity": severity})
        assert note is not None
        styles[severity] = notification_card(note)["body"][0]["style"]
    assert styles == {
        "info": "accent",
        "success": "good",
        "warning": "warning",
        "error": "attention",
        "unknown": "accent",
    }


def test_a_huge_notification_is_shortened_under_the_size_limit() -> None:
    note = parse_notification(
        {"title": "big", "text": "é" * 30_000, "fields": {f"f{i}": "ü" * 5000 for i in range(40)}}
    )
    assert note is not None
    body = notification_message(note)
    assert len(body) <= MAX_MESSAGE_BYTES
    assert teams_message_errors(json.loads(body)) == []


def test_answers() -> None:
    check_answer(200, b"1")
    check_answer(202, b"")
    with pytest.raises(TeamsError, match=r"plugport secret set plugport\.teams incoming"):
        check_answer(404, b"Webhook not found or has been removed.")
    with pytest.raises(TeamsError, match="did not deliver"):
        check_answer(200, b"Webhook message delivery failed with error: 413")


# --- through the host, against the fake -----------------------------------------------------


def test_a_notification_is_posted_to_the_connector(plugin: PluginHandle, teams: FakeTeams) -> None:
    plugin.emit("notify.sentry", NOTE)
    [posted] = teams.cards
    assert posted["via"] == "connector"
    assert posted["card"]["body"][0]["items"][0]["text"] == "New issue: KeyError in checkout"
    [request] = teams.received("POST")
    assert request.path.startswith("/webhookb2/")
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    plugin.assert_only_declared()


def test_a_workflows_url_works_the_same(plugin: PluginHandle, teams: FakeTeams) -> None:
    plugin.secrets.set("incoming", teams.workflow_url())
    assert plugin.command("teams.send", text="hello", title="Check") == {"ok": True, "status": 202}
    [posted] = teams.cards
    assert posted["via"] == "workflow"
    assert [b["text"] for b in posted["card"]["body"]] == ["Check", "hello"]


def test_a_payload_without_a_title_is_dropped(plugin: PluginHandle, teams: FakeTeams) -> None:
    plugin.emit("notify.github", {"text": "untitled"})
    assert teams.requests == []
    assert eventually(lambda: "WARNING dropped a notify event without a title" in plugin.logs)


def test_a_removed_webhook_names_the_command_that_sets_it(
    plugin: PluginHandle, teams: FakeTeams
) -> None:
    url = teams.connector_url()
    plugin.secrets.set("incoming", url)
    teams.remove(url)
    with pytest.raises(
        PluginCallError, match=r"HTTP 404.*plugport secret set plugport\.teams incoming"
    ):
        plugin.command("teams.send", text="hi")
    assert teams.cards == []


def test_a_workflow_with_a_wrong_signature_names_the_command(
    plugin: PluginHandle, teams: FakeTeams
) -> None:
    plugin.secrets.set("incoming", teams.workflow_url().replace("sig=", "sig=x"))
    with pytest.raises(
        PluginCallError, match=r"HTTP 401.*plugport secret set plugport\.teams incoming"
    ):
        plugin.command("teams.send", text="hi")


def test_a_429_is_retried_after_retry_after(plugin: PluginHandle, teams: FakeTeams) -> None:
    teams.throttle(2, retry_after_s=0)
    assert plugin.command("teams.send", text="hi")["ok"] is True
    assert len(teams.received("POST")) == 3
    assert len(teams.cards) == 1


def test_a_429_that_keeps_coming_gives_up_clearly(plugin: PluginHandle, teams: FakeTeams) -> None:
    teams.throttle(10, retry_after_s=0)
    with pytest.raises(PluginCallError, match=r"kept rate-limiting the webhook \(HTTP 429\)"):
        plugin.command("teams.send", text="hi")
    assert len(teams.received("POST")) == 3
    assert teams.cards == []


def test_a_5xx_is_retried(plugin: PluginHandle, teams: FakeTeams) -> None:
    teams.fail_next(502, 1)
    assert plugin.command("teams.send", text="hi")["ok"] is True
    assert len(teams.received("POST")) == 2


def test_a_5xx_is_not_resent_when_the_operator_said_so(
    plugin: PluginHandle, teams: FakeTeams
) -> None:
    plugin.config.set(resend_on_server_error=False)
    teams.fail_next(503, 1)
    with pytest.raises(PluginCallError, match=r"failed the request \(HTTP 503\)"):
        plugin.command("teams.send", text="hi")
    assert len(teams.received("POST")) == 1


def test_a_refused_card_is_a_clear_error(plugin: PluginHandle, teams: FakeTeams) -> None:
    # The connector's own odd answer: 200 with an error text instead of "1".
    plugin.net.route(
        "POST",
        "https://*.webhook.office.com/*",
        body="Webhook message delivery failed with error: Microsoft Teams endpoint returned 400",
    )
    with pytest.raises(
        PluginCallError, match=r"did not deliver the message: Webhook message delivery failed"
    ):
        plugin.command("teams.send", text="hi")
