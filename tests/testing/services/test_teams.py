"""FakeTeams against the documented shapes, driven directly with httpx: a connector answers
``200`` with body ``1``, a Workflows trigger ``202`` with an empty body and JSON errors; a
message needs an Adaptive Card attachment whose basics Teams checks; 429 with ``Retry-After``
and 5xx on demand. A fake that drifts from the service fails here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from plugport.testing.services.teams import (
    ADAPTIVE_CARD,
    FakeTeams,
    adaptive_card_errors,
    teams_message_errors,
)

# https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
# (the "message" with an Adaptive Card attachment)
MESSAGE_FIELDS = {"type", "attachments"}
ATTACHMENT_FIELDS = {"contentType", "content"}
CARD_FIELDS = {"type", "version", "body"}
# https://learn.microsoft.com/en-us/azure/logic-apps/logic-apps-http-endpoint: errors
WORKFLOW_ERROR_FIELDS = {"code", "message"}

CARD = {
    "type": "AdaptiveCard",
    "version": "1.4",
    "body": [
        {"type": "TextBlock", "text": "Deploy finished", "weight": "Bolder", "color": "good"},
        {"type": "FactSet", "facts": [{"title": "Env", "value": "prod"}]},
        {"type": "Container", "style": "emphasis", "items": [{"type": "TextBlock", "text": "x"}]},
        {
            "type": "ColumnSet",
            "columns": [{"type": "Column", "items": [{"type": "TextBlock", "text": "y"}]}],
        },
    ],
    "actions": [{"type": "Action.OpenUrl", "title": "Open", "url": "https://example.com/d/1"}],
}


def message(card: Any = CARD) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}],
    }


@pytest.fixture
def teams() -> Iterator[FakeTeams]:
    with FakeTeams() as fake:
        yield fake


def post(teams: FakeTeams, url: str, body: Any) -> httpx.Response:
    parts = urlsplit(url)
    target = teams.url + parts.path + (f"?{parts.query}" if parts.query else "")
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(target, content=content, headers={"Content-Type": "application/json"})


def test_the_urls_look_like_teams_urls(teams: FakeTeams) -> None:
    connector = urlsplit(teams.connector_url("contoso"))
    assert connector.hostname == "contoso.webhook.office.com"
    assert connector.path.startswith("/webhookb2/")
    assert "/IncomingWebhook/" in connector.path
    workflow = urlsplit(teams.workflow_url())
    assert workflow.hostname is not None
    assert workflow.hostname.endswith(".logic.azure.com")
    assert workflow.path.endswith("/triggers/manual/paths/invoke")
    assert {"api-version", "sp", "sv", "sig"} <= {
        p.split("=")[0] for p in workflow.query.split("&")
    }


def test_a_connector_answers_200_with_1(teams: FakeTeams) -> None:
    body = message()
    assert set(body) == MESSAGE_FIELDS
    assert set(body["attachments"][0]) >= ATTACHMENT_FIELDS
    assert set(CARD) >= CARD_FIELDS
    response = post(teams, teams.connector_url(), body)
    assert (response.status_code, response.text) == (200, "1")
    assert teams.cards == [{"via": "connector", "card": CARD}]


def test_a_workflow_answers_202_with_an_empty_body(teams: FakeTeams) -> None:
    response = post(teams, teams.workflow_url(), message())
    assert response.status_code == 202
    assert response.content == b""
    assert response.headers["x-ms-workflow-run-id"]
    assert teams.cards[0]["via"] == "workflow"


def test_a_workflow_needs_its_signature(teams: FakeTeams) -> None:
    url = teams.workflow_url()
    unsigned = post(teams, url.split("&sig=")[0], message())
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "DirectApiAuthorizationRequired"
    wrong = post(teams, url.replace("sig=", "sig=0"), message())
    assert wrong.status_code == 401
    assert set(wrong.json()["error"]) == WORKFLOW_ERROR_FIELDS
    assert wrong.json()["error"]["code"] == "DirectApiInvalidAuthorizationSignature"
    assert teams.cards == []


def test_a_bad_card_is_a_400_with_the_reason(teams: FakeTeams) -> None:
    bad = {**CARD, "version": "2.0"}
    response = post(teams, teams.connector_url(), message(bad))
    assert response.status_code == 400
    assert "version must be one of 1.0, 1.1, 1.2, 1.3, 1.4, 1.5" in response.text
    response = post(teams, teams.workflow_url(), message(bad))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequestContent"
    response = post(teams, teams.connector_url(), b"{not json")
    assert (response.status_code, response.text) == (
        400,
        "Bad payload received by generic incoming webhook.",
    )
    assert teams.cards == []


def test_message_and_card_rules() -> None:
    assert teams_message_errors(message()) == []
    assert teams_message_errors({"type": "note", "attachments": []}) == ["'type' must be 'message'"]
    assert teams_message_errors({"type": "message", "attachments": []}) == [
        "'attachments' must be a non-empty array"
    ]
    assert teams_message_errors(
        {"type": "message", "attachments": [{"contentType": "text/html"}]}
    ) == [f"attachments[0].contentType must be '{ADAPTIVE_CARD}'"]
    assert adaptive_card_errors({"type": "Card", "version": "1.4", "body": []}) == [
        "card.type must be 'AdaptiveCard'"
    ]
    assert adaptive_card_errors({**CARD, "body": [{"type": "Video"}]}) == [
        "card.body[0].type 'Video' is not a supported element "
        "(ActionSet, ColumnSet, Container, FactSet, Image, TextBlock)"
    ]
    assert adaptive_card_errors({**CARD, "body": [{"type": "TextBlock"}]}) == [
        "card.body[0].text is required"
    ]
    assert adaptive_card_errors(
        {**CARD, "body": [{"type": "FactSet", "facts": [{"title": "x"}]}]}
    ) == ["card.body[0].facts[0] needs string 'title' and 'value'"]
    assert adaptive_card_errors(
        {**CARD, "actions": [{"type": "Action.OpenUrl", "url": "ftp://x"}]}
    ) == ["card.actions[0].url must be an absolute http(s) URL"]
    assert adaptive_card_errors({**CARD, "actions": [{"type": "Action.Submit"}]}) == [
        "card.actions[0].type 'Action.Submit' is not a supported action"
    ]


def test_a_message_over_28_kb_is_refused(teams: FakeTeams) -> None:
    big = {**CARD, "body": [{"type": "TextBlock", "text": "x" * 29_000}]}
    response = post(teams, teams.connector_url(), message(big))
    assert response.status_code == 413
    assert teams.cards == []


def test_a_removed_connector_is_a_404(teams: FakeTeams) -> None:
    url = teams.connector_url()
    teams.remove(url)
    assert post(teams, url, message()).status_code == 404


def test_429_and_5xx(teams: FakeTeams) -> None:
    url = teams.connector_url()
    teams.throttle(1, retry_after_s=3)
    response = post(teams, url, message())
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert "HTTP error 429" in response.text
    teams.fail_next(502)
    assert post(teams, url, message()).status_code == 502
    workflow = teams.workflow_url()
    teams.throttle(1, retry_after_s=1)
    throttled = post(teams, workflow, message())
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "WorkflowRequestsThrottled"
    assert teams.cards == []
    assert post(teams, url, message()).status_code == 200
