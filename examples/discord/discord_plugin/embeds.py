"""Discord webhook bodies built from data, without I/O: a ``notify.*`` payload becomes one embed
(colour by severity, inline fields, a link, a timestamp), cut to Discord's embed limits so a
long notification is shortened, never refused; and Discord's error bodies read back as one
line. Limits: https://discord.com/developers/docs/resources/message#embed-object-embed-limits;
errors: https://discord.com/developers/docs/topics/opcodes-and-status-codes#json."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from plugport.sdk.notify import Notification

CONTENT_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
TOTAL_MAX = 6000  # title + description + field names and values + footer, per message

COLOR = {"info": 0x3498DB, "success": 0x2ECC71, "warning": 0xF1C40F, "error": 0xE74C3C}
NO_PINGS = {"parse": []}  # a notification's text must not ping @everyone or a role


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def is_web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def embed_size(embed: dict[str, Any]) -> int:
    """The characters Discord counts towards its 6000 per message."""
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += len(embed.get("footer", {}).get("text", ""))
    return size + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


def notification_embed(note: Notification, now: datetime) -> dict[str, Any]:
    """The embed for ``note`` at ``now`` (an aware datetime), within every Discord limit."""
    while True:
        embed: dict[str, Any] = {
            "title": cut(note.title, TITLE_MAX),
            "color": COLOR[note.severity],
            "timestamp": now.isoformat(),
        }
        if note.text:
            embed["description"] = cut(note.text, DESCRIPTION_MAX)
        if note.url and is_web_url(note.url):
            embed["url"] = note.url
        fields = [
            {"name": cut(k, FIELD_NAME_MAX), "value": cut(v, FIELD_VALUE_MAX), "inline": True}
            for k, v in list(note.fields.items())[:FIELDS_MAX]
        ]
        if fields:
            embed["fields"] = fields
        footer = " · ".join(p for p in (note.source, note.severity) if p)
        embed["footer"] = {"text": cut(footer, FOOTER_MAX)}
        size = embed_size(embed)
        if size <= TOTAL_MAX:
            return embed
        # Over the total: shorten the longest part (the text, then the field values) and retry.
        over = size - TOTAL_MAX
        longest = max((len(v) for v in note.fields.values()), default=0)
        if len(note.text) > 100:
            note = replace(note, text=cut(note.text, max(100, len(note.text) - over)))
        elif longest > 20:
            note = replace(note, fields={k: cut(v, longest // 2) for k, v in note.fields.items()})
        else:
            note = replace(note, fields=dict(list(note.fields.items())[: len(note.fields) // 2]))


def notification_body(note: Notification, now: datetime) -> dict[str, Any]:
    return {"embeds": [notification_embed(note, now)], "allowed_mentions": NO_PINGS}


def text_body(text: str) -> dict[str, Any]:
    """A plain message (``discord.send``)."""
    return {"content": cut(text, CONTENT_MAX), "allowed_mentions": NO_PINGS}


def describe_errors(tree: Any, at: str = "") -> list[str]:
    """Discord's ``errors`` tree as ``path: message`` lines (``embeds.0.title: Must be 256 or
    fewer in length.``)."""
    if not isinstance(tree, dict):
        return []
    lines: list[str] = []
    for key, value in tree.items():
        if key == "_errors" and isinstance(value, list):
            lines.extend(
                f"{at or 'body'}: {e.get('message', e)}" for e in value if isinstance(e, dict)
            )
        else:
            lines.extend(describe_errors(value, f"{at}.{key}" if at else str(key)))
    return lines
