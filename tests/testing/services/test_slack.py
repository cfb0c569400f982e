"""FakeSlack against Slack's documented shapes, driven directly with httpx: the fields each
answer carries, errors as HTTP 200 ``ok: false`` for the Web API and text bodies for webhooks,
cursor pagination, the 429 with ``Retry-After``, Block Kit limits, and slash commands signed
as Slack signs them. A fake that drifts from the service fails here."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from plugport.testing.services.slack import FakeSlack, block_kit_errors, slash_command_delivery

# https://api.slack.com/methods/chat.postMessage (example response)
POST_MESSAGE_FIELDS = {"ok", "channel", "ts", "message"}
MESSAGE_FIELDS = {"type", "user", "text", "ts", "bot_id"}
# https://api.slack.com/methods/auth.test
AUTH_TEST_FIELDS = {"ok", "url", "team", "user", "team_id", "user_id", "bot_id"}
# https://api.slack.com/methods/conversations.list and the conversation object
LIST_FIELDS = {"ok", "channels", "response_metadata"}
CHANNEL_FIELDS = {
    "id",
    "name",
    "is_channel",
    "is_group",
    "is_im",
    "is_mpim",
    "is_private",
    "created",
    "is_archived",
    "is_general",
    "name_normalized",
    "is_member",
    "topic",
    "purpose",
    "num_members",
}
# https://api.slack.com/interactivity/slash-commands (the payload's fields)
SLASH_FIELDS = {
    "token",
    "team_id",
    "team_domain",
    "channel_id",
    "channel_name",
    "user_id",
    "user_name",
    "command",
    "text",
    "api_app_id",
    "response_url",
    "trigger_id",
}


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def api(slack: FakeSlack, method: str, token: str | None = "", **body: object) -> httpx.Response:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token or slack.bot_token}"
    return httpx.post(f"{slack.url}/api/{method}", content=json.dumps(body), headers=headers)


def hook(slack: FakeSlack, url: str, body: object) -> httpx.Response:
    path = urlsplit(url).path
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        slack.url + path, content=content, headers={"Content-Type": "application/json"}
    )


# --- chat.postMessage -----------------------------------------------------------------------


def test_post_message_answers_the_documented_fields(slack: FakeSlack) -> None:
    response = api(slack, "chat.postMessage", channel="#general", text="hi")
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == POST_MESSAGE_FIELDS
    assert answer["ok"] is True
    assert answer["channel"] == "C0GENERAL"
    assert set(answer["message"]) >= MESSAGE_FIELDS
    assert answer["message"]["ts"] == answer["ts"]
    [posted] = slack.posted("general")
    assert posted["text"] == "hi"


def test_post_message_takes_a_form_with_the_token_in_it(slack: FakeSlack) -> None:
    blocks = json.dumps(
        [{"type": "divider"}, {"type": "section", "text": {"type": "mrkdwn", "text": "*x*"}}]
    )
    response = httpx.post(
        f"{slack.url}/api/chat.postMessage",
        data={"token": slack.bot_token, "channel": "C0GENERAL", "blocks": blocks},
    )
    assert response.json()["ok"] is True
    assert slack.posted("general")[0]["blocks"][1]["text"]["text"] == "*x*"


def test_json_without_a_charset_gets_slacks_warning(slack: FakeSlack) -> None:
    response = httpx.post(
        f"{slack.url}/api/chat.postMessage",
        json={"channel": "general", "text": "x"},
        headers={"Authorization": f"Bearer {slack.bot_token}"},
    )
    answer = response.json()
    assert answer["ok"] is True
    assert answer["warning"] == "missing_charset"
    assert answer["response_metadata"] == {"warnings": ["missing_charset"]}


@pytest.mark.parametrize(
    ("token", "body", "error"),
    [
        (None, {"channel": "general", "text": "x"}, "not_authed"),
        ("xoxb-wrong", {"channel": "general", "text": "x"}, "invalid_auth"),
        ("", {"channel": "#nowhere", "text": "x"}, "channel_not_found"),
        ("", {"channel": "general"}, "no_text"),
        ("", {"channel": "general", "text": "x" * 40_001}, "msg_too_long"),
        ("", {"channel": "general", "blocks": "[not json"}, "invalid_blocks_format"),
    ],
)
def test_web_api_errors_are_http_200_with_ok_false(
    slack: FakeSlack, token: str | None, body: dict[str, object], error: str
) -> None:
    response = api(slack, "chat.postMessage", token, **body)
    assert response.status_code == 200
    assert response.json() == {"ok": False, "error": error}
    assert slack.messages == {}


def test_archived_and_not_joined_channels(slack: FakeSlack) -> None:
    slack.add_channel("old", is_archived=True)
    slack.add_channel("elsewhere", is_member=False)
    assert api(slack, "chat.postMessage", channel="old", text="x").json()["error"] == "is_archived"
    assert (
        api(slack, "chat.postMessage", channel="elsewhere", text="x").json()["error"]
        == "not_in_channel"
    )


def test_invalid_blocks_name_the_json_pointer(slack: FakeSlack) -> None:
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]
    answer = api(slack, "chat.postMessage", channel="general", blocks=blocks).json()
    assert answer["ok"] is False
    assert answer["error"] == "invalid_blocks"
    assert answer["errors"] == [
        "must be less than 151 characters [json-pointer:/blocks/0/text/text]"
    ]
    assert answer["response_metadata"]["messages"] == [
        "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]"
    ]


def test_block_kit_limits() -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "s"}}
    assert block_kit_errors([section] * 50) == []
    assert block_kit_errors([section] * 51) == [
        "no more than 50 items allowed [json-pointer:/blocks]"
    ]
    long_section = {"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}}
    assert block_kit_errors([long_section]) == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    assert (
        block_kit_errors([{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3000}}])
        == []
    )
    header_mrkdwn = {"type": "header", "text": {"type": "mrkdwn", "text": "h"}}
    assert block_kit_errors([header_mrkdwn]) == [
        "must be one of: plain_text [json-pointer:/blocks/0/text/type]"
    ]
    assert block_kit_errors([{"type": "video"}]) == [
        "must be a valid enum value [json-pointer:/blocks/0/type]"
    ]
    fields = {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}
    assert block_kit_errors([fields]) == [
        "must provide 1 to 10 items [json-pointer:/blocks/0/fields]"
    ]
    button = {"type": "button", "text": {"type": "plain_text", "text": "b" * 76}, "style": "loud"}
    assert block_kit_errors([{"type": "actions", "elements": [button]}]) == [
        "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
        "must be one of: primary, danger [json-pointer:/blocks/0/elements/0/style]",
    ]
    assert block_kit_errors([{"type": "section"}]) == [
        "must provide either text or fields [json-pointer:/blocks/0]"
    ]


def test_a_rate_limit_is_a_429_with_retry_after(slack: FakeSlack) -> None:
    slack.throttle(1, retry_after_s=30)
    response = api(slack, "chat.postMessage", channel="general", text="x")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    assert response.json() == {"ok": False, "error": "ratelimited"}
    assert api(slack, "chat.postMessage", channel="general", text="x").json()["ok"] is True


def test_a_server_error_is_a_5xx_page(slack: FakeSlack) -> None:
    slack.fail_next(503)
    response = api(slack, "chat.postMessage", channel="general", text="x")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert slack.messages == {}


def test_an_unknown_method(slack: FakeSlack) -> None:
    response = api(slack, "chat.nothing")
    assert (response.status_code, response.json()) == (
        404,
        {"ok": False, "error": "unknown_method"},
    )


# --- auth.test and conversations.list -------------------------------------------------------


def test_auth_test(slack: FakeSlack) -> None:
    answer = api(slack, "auth.test").json()
    assert set(answer) >= AUTH_TEST_FIELDS
    assert answer["ok"] is True
    assert api(slack, "auth.test", "xoxb-nope").json() == {"ok": False, "error": "invalid_auth"}


def test_conversations_list_pages_with_a_cursor(slack: FakeSlack) -> None:
    for i in range(5):
        slack.add_channel(f"c{i}", id=f"C9{i}")
    slack.add_channel("secret", id="C9S", is_private=True)
    headers = {"Authorization": f"Bearer {slack.bot_token}"}
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        answer = httpx.get(
            f"{slack.url}/api/conversations.list", params=params, headers=headers
        ).json()
        assert set(answer) == LIST_FIELDS
        assert all(set(c) >= CHANNEL_FIELDS for c in answer["channels"])
        assert len(answer["channels"]) <= 2
        seen += [c["name"] for c in answer["channels"]]
        pages += 1
        cursor = answer["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert (
        pages == 3
    )  # 6 public channels (general + 5), 2 a page; the private one is not a type asked for
    assert sorted(seen) == ["c0", "c1", "c2", "c3", "c4", "general"]
    both = httpx.get(
        f"{slack.url}/api/conversations.list",
        params={"types": "public_channel,private_channel", "limit": "100"},
        headers=headers,
    ).json()
    assert "secret" in [c["name"] for c in both["channels"]]
    assert both["response_metadata"]["next_cursor"] == ""


def test_conversations_list_takes_a_form_post_and_refuses_a_bad_cursor(slack: FakeSlack) -> None:
    form = {"token": slack.bot_token, "cursor": "bm90LWEtY3Vyc29y"}  # base64("not-a-cursor")
    answer = httpx.post(f"{slack.url}/api/conversations.list", data=form).json()
    assert answer == {"ok": False, "error": "invalid_cursor"}
    answer = httpx.post(
        f"{slack.url}/api/conversations.list", data={"token": slack.bot_token}
    ).json()
    assert answer["ok"] is True


# --- incoming webhooks and response URLs ----------------------------------------------------


def test_an_incoming_webhook_answers_text_ok(slack: FakeSlack) -> None:
    url = slack.incoming_webhook("general")
    assert url.startswith("https://hooks.slack.com/services/T")
    response = hook(slack, url, {"text": "hello"})
    assert (response.status_code, response.text) == (200, "ok")
    assert slack.posted("general")[0]["via"] == "incoming-webhook"


def test_incoming_webhook_errors_are_text_bodies(slack: FakeSlack) -> None:
    url = slack.incoming_webhook("general")
    cases = [
        (hook(slack, url, b"not json"), 400, "invalid_payload"),
        (hook(slack, url, {"username": "x"}), 400, "no_text"),
        (hook(slack, url, {"blocks": [{"type": "video"}]}), 400, "invalid_blocks"),
        (
            hook(slack, "https://hooks.slack.com/services/T1/B1/nope", {"text": "x"}),
            404,
            "no_service",
        ),
    ]
    for response, status, text in cases:
        assert (response.status_code, response.text) == (status, text)
    slack.revoke(url)
    response = hook(slack, url, {"text": "x"})
    assert (response.status_code, response.text) == (403, "invalid_token")
    archived = slack.add_channel("gone", is_archived=True)
    response = hook(slack, slack.incoming_webhook(archived.id), {"text": "x"})
    assert (response.status_code, response.text) == (410, "channel_is_archived")
    assert slack.messages == {}


def test_an_incoming_webhook_429_is_text_too(slack: FakeSlack) -> None:
    url = slack.incoming_webhook("general")
    slack.throttle(1, retry_after_s=2)
    response = hook(slack, url, {"text": "x"})
    assert (response.status_code, response.text, response.headers["retry-after"]) == (
        429,
        "rate_limited",
        "2",
    )


def test_a_response_url_takes_five_answers(slack: FakeSlack) -> None:
    url = slack.response_url("general")
    for _ in range(5):
        response = hook(slack, url, {"response_type": "ephemeral", "text": "hi"})
        assert (response.status_code, response.text) == (200, "ok")
    response = hook(slack, url, {"text": "sixth"})
    assert (response.status_code, response.text) == (404, "used_url")
    assert len(slack.responses) == 5
    assert hook(slack, url.replace("/commands/", "/commands/x"), {"text": "x"}).status_code == 404


# --- the sender side ------------------------------------------------------------------------


def test_a_slash_command_is_signed_as_slack_signs() -> None:
    body, headers = slash_command_delivery(
        "s3cret",
        "/plugport",
        "status",
        response_url="https://hooks.slack.com/commands/T/1/x",
        now=1_700_000_000,
    )
    assert headers["X-Slack-Request-Timestamp"] == "1700000000"
    expected = hmac.new(b"s3cret", b"v0:1700000000:" + body, hashlib.sha256).hexdigest()
    assert headers["X-Slack-Signature"] == "v0=" + expected
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    assert set(form) >= SLASH_FIELDS
    assert (form["command"], form["text"]) == ("/plugport", "status")


def test_slash_command_sends_to_a_url(slack: FakeSlack) -> None:
    slack.incoming_webhook("general")  # any endpoint of the fake receives it here
    sent = slack.slash_command(slack.url + "/commands/T0/1/nobody", "s3cret", "/plugport", "help")
    assert sent.status == 404  # an unknown response URL: Slack's text answer
    [request] = slack.received("POST", "/commands/.*")
    assert request.headers["x-slack-signature"].startswith("v0=")
    assert request.form()["response_url"].startswith("https://hooks.slack.com/commands/")
