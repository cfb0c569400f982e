"""FakeDiscord against Discord's documented shapes, driven directly with httpx: ``?wait=true``
answers the message object and otherwise ``204``; every answer carries the ``X-RateLimit-*``
headers; a spent bucket is a 429 with ``Retry-After`` and the documented JSON; errors carry
Discord's JSON codes (``50035`` with a per-field ``errors`` tree, ``10015``, ``50027``). A fake
that drifts from the service fails here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from plugport.testing.services.discord import BUCKET_LIMIT, FakeDiscord, embed_errors

# https://discord.com/developers/docs/resources/message#message-object
MESSAGE_FIELDS = {
    "id",
    "channel_id",
    "author",
    "content",
    "timestamp",
    "edited_timestamp",
    "tts",
    "mention_everyone",
    "mentions",
    "mention_roles",
    "attachments",
    "embeds",
    "pinned",
    "type",
    "webhook_id",
}
# https://discord.com/developers/docs/topics/rate-limits#header-format
RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-reset-after",
    "x-ratelimit-bucket",
}
# https://discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit
RATE_LIMIT_BODY = {"message", "retry_after", "global"}
AGENT = {"User-Agent": "DiscordBot (https://plugport.dev, 1.0.0)"}


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


def execute(
    discord: FakeDiscord, url: str, body: Any, *, wait: bool = False, agent: bool = True
) -> httpx.Response:
    path = urlsplit(url).path
    headers = {"Content-Type": "application/json", **(AGENT if agent else {})}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    client = httpx.Client(headers={"User-Agent": ""} if not agent else None)
    with client:
        return client.post(
            discord.url + path + ("?wait=true" if wait else ""), content=content, headers=headers
        )


def test_execute_answers_204_or_the_message_with_wait(discord: FakeDiscord) -> None:
    url = discord.webhook_url()
    response = execute(discord, url, {"content": "hi"})
    assert response.status_code == 204
    assert response.content == b""
    assert set(response.headers) >= RATE_LIMIT_HEADERS
    waited = execute(
        discord, url, {"content": "again", "embeds": [{"title": "t", "color": 0x2ECC71}]}, wait=True
    )
    assert waited.status_code == 200
    message = waited.json()
    assert set(message) >= MESSAGE_FIELDS
    assert message["content"] == "again"
    assert message["embeds"] == [{"type": "rich", "title": "t", "color": 0x2ECC71}]
    assert message["webhook_id"] == urlsplit(url).path.split("/")[3]
    assert [m["content"] for m in discord.messages] == ["hi", "again"]


def test_the_versioned_path_works_too(discord: FakeDiscord) -> None:
    url = discord.webhook_url().replace("/api/webhooks/", "/api/v10/webhooks/")
    assert execute(discord, url, {"content": "v10"}).status_code == 204


def test_unknown_webhook_and_invalid_token(discord: FakeDiscord) -> None:
    url = discord.webhook_url()
    unknown = execute(discord, "https://discord.com/api/webhooks/1/abc", {"content": "x"})
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"message": "Unknown Webhook", "code": 10015},
    )
    wrong = execute(discord, url.rsplit("/", 1)[0] + "/wrong", {"content": "x"})
    assert (wrong.status_code, wrong.json()) == (
        401,
        {"message": "Invalid Webhook Token", "code": 50027},
    )
    assert discord.messages == []


def test_a_client_without_a_user_agent_is_refused(discord: FakeDiscord) -> None:
    response = execute(discord, discord.webhook_url(), {"content": "x"}, agent=False)
    assert response.status_code == 403
    assert response.text == "error code: 1010"
    assert discord.messages == []


def test_an_invalid_form_body_names_each_field(discord: FakeDiscord) -> None:
    body = {"embeds": [{"title": "t" * 257, "fields": [{"name": "n", "value": "v" * 1025}]}]}
    response = execute(discord, discord.webhook_url(), body)
    assert response.status_code == 400
    assert response.json() == {
        "code": 50035,
        "message": "Invalid Form Body",
        "errors": {
            "embeds": {
                "0": {
                    "title": {
                        "_errors": [
                            {
                                "code": "BASE_TYPE_MAX_LENGTH",
                                "message": "Must be 256 or fewer in length.",
                            }
                        ]
                    },
                    "fields": {
                        "0": {
                            "value": {
                                "_errors": [
                                    {
                                        "code": "BASE_TYPE_MAX_LENGTH",
                                        "message": "Must be 1024 or fewer in length.",
                                    }
                                ]
                            }
                        }
                    },
                }
            }
        },
    }
    assert discord.messages == []


def test_embed_limits() -> None:
    assert embed_errors({"embeds": [{"title": "x"}] * 10}) == {}
    assert embed_errors({"embeds": [{"title": "x"}] * 11})["embeds"]["_errors"][0]["message"] == (
        "Must be 10 or fewer in length."
    )
    assert embed_errors({"embeds": [{"description": "d" * 4096}]}) == {}
    assert "description" in embed_errors({"embeds": [{"description": "d" * 4097}]})["embeds"]["0"]
    assert (
        "fields"
        in embed_errors({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]})["embeds"]["0"]
    )
    assert embed_errors({"embeds": [{"fields": [{"name": "n" * 257, "value": "v"}]}]})["embeds"][
        "0"
    ]["fields"]["0"]["name"]["_errors"][0]["code"] == ("BASE_TYPE_MAX_LENGTH")
    assert embed_errors({"embeds": [{"fields": [{"value": "v"}]}]})["embeds"]["0"]["fields"]["0"][
        "name"
    ]["_errors"][0]["code"] == ("BASE_TYPE_REQUIRED")
    total = [{"description": "d" * 4000}, {"description": "d" * 2001}]
    assert embed_errors({"embeds": total}) == {
        "embeds": {
            "_errors": [
                {
                    "code": "MAX_EMBED_SIZE_EXCEEDED",
                    "message": "Embed size exceeds maximum size of 6000",
                }
            ]
        }
    }
    assert embed_errors({"embeds": [{"color": "red"}]})["embeds"]["0"]["color"]["_errors"][0][
        "code"
    ] == ("NUMBER_TYPE_COERCE")
    assert "color" in embed_errors({"embeds": [{"color": 0x1000000}]})["embeds"]["0"]
    assert "timestamp" in embed_errors({"embeds": [{"timestamp": "yesterday"}]})["embeds"]["0"]
    assert embed_errors({"embeds": [{"timestamp": "2026-12-05T16:00:00.000Z"}]}) == {}
    assert "content" in embed_errors({"content": "c" * 2001})


def test_empty_and_non_json_bodies(discord: FakeDiscord) -> None:
    url = discord.webhook_url()
    empty = execute(discord, url, {})
    assert (empty.status_code, empty.json()["code"]) == (400, 50006)
    broken = execute(discord, url, b"{nope")
    assert (broken.status_code, broken.json()["code"]) == (400, 50109)


def test_a_spent_bucket_is_a_429_with_the_documented_body(discord: FakeDiscord) -> None:
    url = discord.webhook_url()
    remaining = []
    for _ in range(BUCKET_LIMIT):
        response = execute(discord, url, {"content": "x"})
        assert response.status_code == 204
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
    assert remaining == list(range(BUCKET_LIMIT - 1, -1, -1))
    throttled = execute(discord, url, {"content": "x"})
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    assert throttled.headers["x-ratelimit-scope"] == "user"
    body = throttled.json()
    assert set(body) == RATE_LIMIT_BODY
    assert body["message"] == "You are being rate limited."
    assert body["global"] is False
    assert 0 < body["retry_after"] <= 2
    assert len(discord.messages) == BUCKET_LIMIT


def test_throttle_and_5xx_on_demand(discord: FakeDiscord) -> None:
    url = discord.webhook_url()
    discord.throttle(1, retry_after_s=0)
    response = execute(discord, url, {"content": "x"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "0"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert set(response.json()) == RATE_LIMIT_BODY
    discord.fail_next(502)
    assert execute(discord, url, {"content": "x"}).status_code == 502
    assert discord.messages == []
    assert execute(discord, url, {"content": "x"}).status_code == 204
