"""Adaptive Cards built from data, without I/O: a ``notify.*`` payload becomes a Teams message
whose attachment is a card (a coloured title, the text, a FactSet for the fields, an
``Action.OpenUrl`` button), kept under the 28 KB Teams takes for a webhook message.
Schema: https://adaptivecards.io/explorer/; the size limit:
https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from plugport.sdk.notify import Notification

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.4"  # rendered by Teams on desktop, web and mobile
MAX_MESSAGE_BYTES = 27 * 1024  # Teams refuses over 28 KB; keep a margin for the envelope
TITLE_MAX = 500
TEXT_MAX = 6000
FACTS_MAX = 20
FACT_VALUE_MAX = 1000

# Container style and TextBlock colour per severity (Adaptive Cards' named colours).
STYLE = {"info": "accent", "success": "good", "warning": "warning", "error": "attention"}


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def is_web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def message(card: dict[str, Any]) -> dict[str, Any]:
    """The webhook body: a ``message`` with the card as its only attachment."""
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}],
    }


def encoded(body: dict[str, Any]) -> bytes:
    """UTF-8 JSON, unescaped (``\\uXXXX`` would triple the size of non-ASCII text)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def notification_card(note: Notification) -> dict[str, Any]:
    """The Adaptive Card for ``note``: the title in the severity's colour and container style,
    the text, the fields as facts, the source and severity, and an Open button to ``url``."""
    style = STYLE[note.severity]
    body: list[dict[str, Any]] = [
        {
            "type": "Container",
            "style": style,
            "bleed": True,
            "items": [
                {
                    "type": "TextBlock",
                    "text": cut(note.title, TITLE_MAX),
                    "weight": "bolder",
                    "size": "medium",
                    "color": style,
                    "wrap": True,
                }
            ],
        }
    ]
    if note.text:
        body.append({"type": "TextBlock", "text": cut(note.text, TEXT_MAX), "wrap": True})
    facts = [
        {"title": cut(k, 100), "value": cut(v, FACT_VALUE_MAX)}
        for k, v in list(note.fields.items())[:FACTS_MAX]
    ]
    if facts:
        body.append({"type": "FactSet", "facts": facts})
    footer = " · ".join(p for p in (note.source, note.severity) if p)
    body.append(
        {"type": "TextBlock", "text": footer, "size": "small", "isSubtle": True, "wrap": True}
    )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
    if note.url and is_web_url(note.url):
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open", "url": note.url}]
    return card


def notification_message(note: Notification) -> bytes:
    """The encoded webhook body for ``note``, shortened (text and fact values halved, then
    facts dropped) until it fits Teams' size limit: a shortened card beats a refused one."""
    while True:
        body = encoded(message(notification_card(note)))
        if len(body) <= MAX_MESSAGE_BYTES:
            return body
        longest = max([len(note.text), *(len(v) for v in note.fields.values())], default=0)
        if longest > 50:
            half = longest // 2
            note = replace(
                note,
                text=cut(note.text, half),
                fields={k: cut(v, half) for k, v in note.fields.items()},
            )
        elif note.fields:
            note = replace(note, fields=dict(list(note.fields.items())[: len(note.fields) // 2]))
        else:
            note = replace(note, title=cut(note.title, len(note.title) // 2))


def text_message(text: str, title: str = "") -> bytes:
    """A plain card for ``teams.send``."""
    body: list[dict[str, Any]] = []
    if title:
        body.append(
            {"type": "TextBlock", "text": cut(title, TITLE_MAX), "weight": "bolder", "wrap": True}
        )
    body.append({"type": "TextBlock", "text": cut(text, TEXT_MAX), "wrap": True})
    card = {"type": "AdaptiveCard", "version": CARD_VERSION, "body": body}
    return encoded(message(card))
