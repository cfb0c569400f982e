"""plugport.slack against FakeSlack: the plugin runs in a real sandboxed worker and its fetches
go through the host's network broker (credential injection included) to the local fake."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from slack_plugin.answers import SlackError, web_api_result, webhook_result
from slack_plugin.blocks import (
    fallback_text,
    notification_blocks,
    slash_reply,
)

from plugport.errors import PluginCallError, WebhookRefusedError
from plugport.sdk.notify import parse_notification
from plugport.testing import PluginHandle
from plugport.testing.services.slack import FakeSlack, block_kit_errors, slash_command_delivery

NOTE = {
    "source": "github",
    "title": "PR #12 opened: Fix login",
    "text": "ada wants to merge 3 commits <into> main & more",
    "url": "https://github.com/acme/api/pull/12",
    "severity": "error",
    "fields": {"Repository": "acme/api", "Author": "ada"},
}
FAST = {"retry_budget_s": 1, "retry_base_s": 0.01, "retry_attempts": 3}
SIGNING = "slack-signing-s3cret"


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
def slack(plugin: PluginHandle) -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.mount(plugin)
        plugin.secrets.set("bot", fake.bot_token)
        plugin.config.set(**FAST)
        yield fake


# --- pure building --------------------------------------------------------------------------


def test_a_notification_renders_as_block_kit_slack_accepts() -> None:
    note = parse_notification(NOTE)
    assert note is not None
    blocks = notification_blocks(note)
    assert blocks == [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": ":rotating_light: PR #12 opened: Fix login",
                "emoji": True,
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "ada wants to merge 3 commits &lt;into&gt; main &amp; more",
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Repository*\nacme/api"},
                {"type": "mrkdwn", "text": "*Author*\nada"},
            ],
        },
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open", "emoji": True},
                    "url": "https://github.com/acme/api/pull/12",
                    "action_id": "open",
                    "style": "danger",
                }
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "github · error"}]},
    ]
    assert block_kit_errors(blocks) == []
    assert fallback_text(note) == ":rotating_light: PR #12 opened: Fix login"


def test_long_values_are_cut_to_slacks_limits() -> None:
    note = parse_notification(
        {"title": "t" * 400, "text": "x" * 5000, "fields": {f"k{i}": "v" * 3000 for i in range(25)}}
    )
    assert note is not None
    blocks = notification_blocks(note)
    assert block_kit_errors(blocks) == []
    assert len(blocks[0]["text"]["text"]) == 150
    assert blocks[0]["text"]["text"].endswith("…")
    assert [len(b.get("fields", [])) for b in blocks] == [0, 0, 10, 10, 0]  # 20 fields at most


def test_payloads_without_a_title_or_with_odd_values_are_handled() -> None:
    assert parse_notification({"text": "no title"}) is None
    assert parse_notification("not a dict") is None
    note = parse_notification({"title": "x", "severity": "catastrophic", "url": "javascript:x"})
    assert note is not None
    assert note.severity == "info"
    assert [b["type"] for b in notification_blocks(note)] == ["header", "context"]  # no button


def test_answers_become_errors_that_say_what_to_do() -> None:
    with pytest.raises(SlackError, match=r"plugport secret set plugport\.slack bot"):
        web_api_result("chat.postMessage", 200, b'{"ok": false, "error": "invalid_auth"}', ())
    with pytest.raises(SlackError, match="missing ts"):
        web_api_result("chat.postMessage", 200, b'{"ok": true, "channel": "C1"}', ("channel", "ts"))
    with pytest.raises(SlackError, match="not JSON"):
        web_api_result("auth.test", 200, b"<html>", ())
    with pytest.raises(SlackError, match=r"plugport secret set plugport\.slack incoming"):
        webhook_result("the incoming webhook", 403, b"invalid_token", "incoming")
    assert webhook_result("the incoming webhook", 200, b"ok", "incoming") is None


def test_slash_replies() -> None:
    status = slash_reply("status", via="bot", channel="#ops")
    assert status["response_type"] == "ephemeral"
    assert "notifications go to #ops (via bot)" in status["text"]
    assert "/plugport status" in slash_reply("help", via="bot", channel="#ops")["text"]
    assert slash_reply("<b>", via="bot", channel="#ops")["text"].startswith(
        "Unknown command `&lt;b&gt;`"
    )


# --- through the host, against the fake -----------------------------------------------------


def test_a_notification_is_posted_with_the_bot_token(
    plugin: PluginHandle, slack: FakeSlack
) -> None:
    plugin.emit("notify.github", NOTE)
    [posted] = slack.posted("general")
    assert posted["via"] == "chat.postMessage"
    assert posted["text"] == ":rotating_light: PR #12 opened: Fix login"
    assert posted["blocks"][0]["text"]["text"] == ":rotating_light: PR #12 opened: Fix login"
    [request] = slack.received("POST", r"/api/chat\.postMessage")
    assert request.headers["authorization"] == f"Bearer {slack.bot_token}"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.json()["channel"] == "#general"
    plugin.assert_only_declared()


def test_the_send_command_answers_with_the_channel_and_ts(
    plugin: PluginHandle, slack: FakeSlack
) -> None:
    slack.add_channel("ops", id="C0OPS")
    plugin.config.set(channel="ops")
    answer = plugin.command("slack.send", text="hello *ops*")
    assert answer["channel"] == "C0OPS"
    assert answer["via"] == "bot"
    assert [m["ts"] for m in slack.posted("ops")] == [answer["ts"]]


def test_via_the_incoming_webhook(plugin: PluginHandle, slack: FakeSlack) -> None:
    slack.add_channel("alerts")
    plugin.secrets.set("incoming", slack.incoming_webhook("alerts"))
    plugin.config.set(via="webhook")
    plugin.emit("notify.sentry", {**NOTE, "severity": "warning"})
    [posted] = slack.posted("alerts")
    assert posted["via"] == "incoming-webhook"
    assert posted["blocks"][0]["text"]["text"].startswith(":warning:")
    assert slack.received("POST", r"/api/.*") == []  # no Web API call, no bot token used


def test_a_payload_without_a_title_is_dropped(plugin: PluginHandle, slack: FakeSlack) -> None:
    plugin.emit("notify.github", {"text": "no title here"})
    assert slack.requests == []
    assert eventually(lambda: "WARNING dropped a notify event without a title" in plugin.logs)


def test_a_refused_bot_token_names_the_command_that_sets_it(
    plugin: PluginHandle, slack: FakeSlack
) -> None:
    plugin.secrets.set("bot", "xoxb-revoked")
    with pytest.raises(
        PluginCallError, match=r"invalid_auth.*plugport secret set plugport\.slack bot"
    ):
        plugin.command("slack.send", text="hi")
    assert slack.messages == {}


def test_a_removed_webhook_names_the_command_that_sets_it(
    plugin: PluginHandle, slack: FakeSlack
) -> None:
    url = slack.incoming_webhook("general")
    plugin.secrets.set("incoming", url)
    plugin.config.set(via="webhook")
    slack.revoke(url)
    with pytest.raises(PluginCallError, match=r"plugport secret set plugport\.slack incoming"):
        plugin.command("slack.send", text="hi")
    assert slack.messages == {}


def test_an_unknown_channel_is_explained(plugin: PluginHandle, slack: FakeSlack) -> None:
    plugin.config.set(channel="#nowhere")
    with pytest.raises(PluginCallError, match=r"channel_not_found.*invite the app"):
        plugin.command("slack.send", text="hi")


def test_a_429_is_retried_after_retry_after(plugin: PluginHandle, slack: FakeSlack) -> None:
    slack.throttle(2, retry_after_s=0)
    assert plugin.command("slack.send", text="hi")["ok"] is True
    assert len(slack.received("POST", r"/api/chat\.postMessage")) == 3
    assert len(slack.posted("general")) == 1


def test_a_429_that_keeps_coming_gives_up_clearly(plugin: PluginHandle, slack: FakeSlack) -> None:
    slack.throttle(10, retry_after_s=0)
    with pytest.raises(PluginCallError, match=r"kept rate-limiting chat\.postMessage \(HTTP 429\)"):
        plugin.command("slack.send", text="hi")
    assert len(slack.received("POST")) == 3  # retry_attempts
    assert slack.messages == {}


def test_a_5xx_is_retried(plugin: PluginHandle, slack: FakeSlack) -> None:
    slack.fail_next(503, 1)
    assert plugin.command("slack.send", text="hi")["ok"] is True
    assert len(slack.received("POST")) == 2


def test_a_5xx_is_not_resent_when_the_operator_said_so(
    plugin: PluginHandle, slack: FakeSlack
) -> None:
    plugin.config.set(resend_on_server_error=False)
    slack.fail_next(503, 1)
    with pytest.raises(PluginCallError, match=r"failed chat\.postMessage \(HTTP 503\)"):
        plugin.command("slack.send", text="hi")
    assert len(slack.received("POST")) == 1


def test_an_answer_missing_fields_is_refused(plugin: PluginHandle, slack: FakeSlack) -> None:
    plugin.net.route("POST", "https://slack.com/api/chat.postMessage", json={"ok": True})
    with pytest.raises(
        PluginCallError, match=r"answer to chat\.postMessage is missing channel, ts"
    ):
        plugin.command("slack.send", text="hi")


def test_channels_follow_the_cursor_pages(plugin: PluginHandle, slack: FakeSlack) -> None:
    for name in ("ops", "dev", "random", "alerts"):
        slack.add_channel(name, id=f"C1{name.upper()}")
    slack.add_channel("old", id="C1OLD", is_archived=True)
    plugin.config.set(page_size=2)
    listed = plugin.command("slack.channels")["channels"]
    assert sorted(c["name"] for c in listed) == ["alerts", "dev", "general", "ops", "random"]
    pages = slack.received("GET", r"/api/conversations\.list")
    assert len(pages) == 3
    assert "cursor" not in pages[0].query
    assert all(p.query["limit"] == "2" for p in pages)
    assert pages[1].query["cursor"]
    assert pages[2].query["cursor"] != pages[1].query["cursor"]


def test_channels_retry_a_5xx(plugin: PluginHandle, slack: FakeSlack) -> None:
    plugin.config.set(resend_on_server_error=False)  # a GET is retried anyway: it is idempotent
    slack.fail_next(502, 1)
    assert [c["name"] for c in plugin.command("slack.channels")["channels"]] == ["general"]
    assert len(slack.received("GET")) == 2


def test_the_slash_command_answers_through_the_response_url(
    plugin: PluginHandle, slack: FakeSlack
) -> None:
    slack.add_channel("ops", id="C0OPS")
    plugin.config.set(channel="#ops")
    body, headers = slash_command_delivery(
        SIGNING, "/plugport", "status", response_url=slack.response_url("general")
    )
    plugin.webhook("command", body, headers, secret=SIGNING)
    [reply] = slack.responses
    assert reply["response_type"] == "ephemeral"
    assert (
        reply["text"]
        == ":large_green_circle: Plugport is running; notifications go to #ops (via bot)."
    )
    [request] = slack.received("POST", r"/commands/.*")
    assert "authorization" not in request.headers  # the bot token never goes to hooks.slack.com
    plugin.assert_only_declared()


def test_a_forged_slash_command_is_refused(plugin: PluginHandle, slack: FakeSlack) -> None:
    body, headers = slash_command_delivery(
        "not-the-secret", "/plugport", "status", response_url=slack.response_url()
    )
    with pytest.raises(WebhookRefusedError):
        plugin.webhook("command", body, headers, secret=SIGNING)
    assert slack.responses == []


def test_a_slash_command_with_a_foreign_response_url_is_refused(
    plugin: PluginHandle, slack: FakeSlack
) -> None:
    body, headers = slash_command_delivery(
        SIGNING, "/plugport", "status", response_url="https://evil.example.com/commands/T1/1/x"
    )
    with pytest.raises(PluginCallError, match=r"no valid response_url"):
        plugin.webhook("command", body, headers, secret=SIGNING)
    assert slack.requests == []
