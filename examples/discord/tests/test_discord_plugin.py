"""plugport.discord against FakeDiscord: the plugin runs in a real sandboxed worker; the host
sends its posts to the webhook URL the test set as the ``incoming`` secret, and the local fake
answers as Discord does (limits, JSON error codes, rate-limit headers)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from discord_plugin.answers import DiscordError, check_answer
from discord_plugin.embeds import (
    TOTAL_MAX,
    describe_errors,
    embed_size,
    notification_body,
    notification_embed,
)

from plugport.errors import PluginCallError
from plugport.sdk.notify import parse_notification
from plugport.testing import PluginHandle
from plugport.testing.services.discord import FakeDiscord, embed_errors

NOTE = {
    "source": "gitlab",
    "title": "Pipeline #88 failed on main",
    "text": "job `test` failed after 3m12s",
    "url": "https://gitlab.com/acme/api/-/pipelines/88",
    "severity": "error",
    "fields": {"Project": "acme/api", "Branch": "main"},
}
NOW = datetime(2026, 12, 5, 16, 0, tzinfo=UTC)
FAST = {"retry_budget_s": 1, "retry_base_s": 0.01, "retry_attempts": 3}
AGENT = "DiscordBot (https://plugport.dev, 1.0.0)"


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
def discord(plugin: PluginHandle) -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        fake.mount(plugin)
        plugin.secrets.set("incoming", fake.webhook_url())
        plugin.config.set(**FAST)
        yield fake


# --- pure building --------------------------------------------------------------------------


def test_a_notification_becomes_an_embed() -> None:
    note = parse_notification(NOTE)
    assert note is not None
    embed = notification_embed(note, NOW)
    assert embed == {
        "title": "Pipeline #88 failed on main",
        "color": 0xE74C3C,
        "timestamp": "2026-12-05T16:00:00+00:00",
        "description": "job `test` failed after 3m12s",
        "url": "https://gitlab.com/acme/api/-/pipelines/88",
        "fields": [
            {"name": "Project", "value": "acme/api", "inline": True},
            {"name": "Branch", "value": "main", "inline": True},
        ],
        "footer": {"text": "gitlab · error"},
    }
    assert embed_errors(notification_body(note, NOW)) == {}


def test_a_huge_notification_fits_discords_limits() -> None:
    note = parse_notification(
        {"title": "t" * 300, "text": "d" * 9000, "fields": {f"f{i}": "v" * 2000 for i in range(40)}}
    )
    assert note is not None
    body = notification_body(note, NOW)
    [embed] = body["embeds"]
    assert len(embed["title"]) == 256
    assert len(embed["fields"]) == 25
    assert embed_size(embed) <= TOTAL_MAX
    assert embed_errors(body) == {}


def test_errors_read_as_one_line() -> None:
    tree = {
        "embeds": {
            "0": {
                "title": {"_errors": [{"code": "X", "message": "Must be 256 or fewer in length."}]}
            }
        }
    }
    assert describe_errors(tree) == ["embeds.0.title: Must be 256 or fewer in length."]
    with pytest.raises(DiscordError, match=r"plugport secret set plugport\.discord incoming"):
        check_answer(404, b'{"message": "Unknown Webhook", "code": 10015}')
    check_answer(204, b"")


# --- through the host, against the fake -----------------------------------------------------


def test_a_notification_is_posted_as_an_embed(plugin: PluginHandle, discord: FakeDiscord) -> None:
    plugin.emit("notify.gitlab", NOTE)
    [message] = discord.messages
    [embed] = message["embeds"]
    assert embed["title"] == "Pipeline #88 failed on main"
    assert embed["color"] == 0xE74C3C
    assert [f["inline"] for f in embed["fields"]] == [True, True]
    [request] = discord.received("POST")
    assert request.json()["allowed_mentions"] == {"parse": []}
    # The host adds no User-Agent; the plugin's own is what Discord sees.
    assert discord.user_agents == [AGENT]
    plugin.assert_only_declared()


def test_the_send_command_and_a_username(plugin: PluginHandle, discord: FakeDiscord) -> None:
    plugin.config.set(username="Plugport")
    assert plugin.command("discord.send", text="hello") == {"ok": True, "status": 204}
    [message] = discord.messages
    assert message["content"] == "hello"
    assert message["author"]["username"] == "Plugport"


def test_a_payload_without_a_title_is_dropped(plugin: PluginHandle, discord: FakeDiscord) -> None:
    plugin.emit("notify.gitlab", {"severity": "error"})
    assert discord.requests == []
    assert eventually(lambda: "WARNING dropped a notify event without a title" in plugin.logs)


def test_a_deleted_webhook_names_the_command_that_sets_it(
    plugin: PluginHandle, discord: FakeDiscord
) -> None:
    plugin.secrets.set("incoming", "https://discord.com/api/webhooks/1234567890/gone")
    with pytest.raises(
        PluginCallError,
        match=r"10015 Unknown Webhook.*plugport secret set plugport\.discord incoming",
    ):
        plugin.command("discord.send", text="hi")
    assert discord.messages == []


def test_a_reset_token_names_the_command_that_sets_it(
    plugin: PluginHandle, discord: FakeDiscord
) -> None:
    url = discord.webhook_url()
    plugin.secrets.set("incoming", url.rsplit("/", 1)[0] + "/old-token")
    with pytest.raises(PluginCallError, match=r"50027 Invalid Webhook Token.*plugport secret set"):
        plugin.command("discord.send", text="hi")


def test_a_429_is_retried_after_retry_after(plugin: PluginHandle, discord: FakeDiscord) -> None:
    discord.throttle(2, retry_after_s=0)
    assert plugin.command("discord.send", text="hi")["ok"] is True
    assert len(discord.received("POST")) == 3
    assert len(discord.messages) == 1


def test_a_429_that_keeps_coming_gives_up_clearly(
    plugin: PluginHandle, discord: FakeDiscord
) -> None:
    discord.throttle(10, retry_after_s=0)
    with pytest.raises(PluginCallError, match=r"kept rate-limiting the webhook \(HTTP 429\)"):
        plugin.command("discord.send", text="hi")
    assert len(discord.received("POST")) == 3
    assert discord.messages == []


def test_a_5xx_is_retried(plugin: PluginHandle, discord: FakeDiscord) -> None:
    discord.fail_next(502, 1)
    assert plugin.command("discord.send", text="hi")["ok"] is True
    assert len(discord.received("POST")) == 2


def test_a_5xx_is_not_resent_when_the_operator_said_so(
    plugin: PluginHandle, discord: FakeDiscord
) -> None:
    plugin.config.set(resend_on_server_error=False)
    discord.fail_next(500, 1)
    with pytest.raises(PluginCallError, match=r"failed the request \(HTTP 500\)"):
        plugin.command("discord.send", text="hi")
    assert len(discord.received("POST")) == 1


def test_a_refused_body_is_explained_field_by_field(
    plugin: PluginHandle, discord: FakeDiscord
) -> None:
    plugin.net.route(
        "POST",
        "https://discord.com/api/webhooks/*",
        status=400,
        json={
            "code": 50035,
            "message": "Invalid Form Body",
            "errors": {
                "content": {
                    "_errors": [
                        {
                            "code": "BASE_TYPE_MAX_LENGTH",
                            "message": "Must be 2000 or fewer in length.",
                        }
                    ]
                }
            },
        },
    )
    with pytest.raises(
        PluginCallError,
        match=r"50035 Invalid Form Body\): content: Must be 2000 or fewer in length\.",
    ):
        plugin.command("discord.send", text="hi")
