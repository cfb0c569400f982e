"""Block Kit messages built from data, without I/O: a ``notify.*`` payload becomes a header,
a mrkdwn section, a fields section, a button and a context line, each cut to the length Slack
accepts (a message Slack refuses is a lost notification, so nothing here may exceed a limit).
Limits: https://api.slack.com/reference/block-kit/blocks."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from plugport.sdk.notify import Notification

HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
FIELDS_MAX = 10  # per section
BUTTON_TEXT_MAX = 75
URL_MAX = 3000
FALLBACK_MAX = 4000  # the notification text in push notifications and screen readers
BLOCKS_MAX = 50  # blocks per message

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*$")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_ITEM = re.compile(r"^(\s*)[-*+]\s+")

EMOJI = {
    "info": ":information_source:",
    "success": ":white_check_mark:",
    "warning": ":warning:",
    "error": ":rotating_light:",
}


def cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: only ``&``, ``<`` and ``>`` are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def is_web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and len(url) <= URL_MAX


def fallback_text(note: Notification) -> str:
    """The message's ``text``: what notifications and screen readers show instead of blocks."""
    return cut(f"{EMOJI[note.severity]} {note.title}", FALLBACK_MAX)


def notification_blocks(note: Notification) -> list[dict[str, Any]]:
    """The Block Kit blocks for ``note``; severity shows as an emoji and the button's style."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": cut(f"{EMOJI[note.severity]} {note.title}", HEADER_MAX),
                "emoji": True,
            },
        }
    ]
    if note.text:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": cut(escape(note.text), SECTION_MAX)},
            }
        )
    items = list(note.fields.items())
    for start in range(0, min(len(items), 2 * FIELDS_MAX), FIELDS_MAX):
        chunk = items[start : start + FIELDS_MAX]
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": cut(f"*{escape(k)}*\n{escape(v)}", FIELD_MAX)}
                    for k, v in chunk
                ],
            }
        )
    if note.url and is_web_url(note.url):
        button: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": "Open", "emoji": True},
            "url": note.url,
            "action_id": "open",
        }
        if note.severity == "error":
            button["style"] = "danger"
        elif note.severity == "success":
            button["style"] = "primary"
        blocks.append({"type": "actions", "elements": [button]})
    context = " · ".join(p for p in (note.source, note.severity) if p)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(context)}]})
    return blocks


def text_blocks(text: str) -> list[dict[str, Any]]:
    """A plain message (``slack.send``) as one mrkdwn section."""
    return [{"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_MAX)}}]


HELP = (
    "*/plugport* commands:\n"
    "• `/plugport status`: where this workspace's notifications go\n"
    "• `/plugport help`: this list"
)


def slash_reply(text: str, *, via: str, channel: str) -> dict[str, Any]:
    """The ephemeral answer to ``/plugport <text>`` (only the caller sees it)."""
    word = text.strip().split(" ", 1)[0].lower()
    if word == "status":
        where = "the incoming webhook's channel" if via == "webhook" else channel
        answer = (
            f":large_green_circle: Plugport is running; notifications go to {where} (via {via})."
        )
    elif word in ("help", ""):
        answer = HELP
    else:
        answer = f"Unknown command `{cut(escape(word), 40)}`.\n{HELP}"
    return {"response_type": "ephemeral", "text": answer, "blocks": text_blocks(answer)}


def markdown_to_mrkdwn(markdown: str) -> str:
    """GitHub-flavoured Markdown (what the GitHub tasks return) in Slack's mrkdwn: headings and
    ``**bold**`` as ``*bold*``, ``[text](url)`` as ``<url|text>``, list markers as bullets,
    HTML comments dropped, ``&``/``<``/``>`` escaped; code spans and fences are the same in
    both. Slack has no tables: their rows stay as text."""
    lines = [_mrkdwn_line(line) for line in _COMMENT.sub("", markdown).splitlines()]
    return "\n".join(lines).strip("\n")


def _mrkdwn_line(line: str) -> str:
    links: list[str] = []

    def keep(match: re.Match[str]) -> str:
        links.append(f"<{match[2]}|{escape(match[1]).replace('|', '¦')}>")
        return f"\x00{len(links) - 1}\x00"

    text = escape(_LINK.sub(keep, line))
    heading = _HEADING.match(text)
    if heading:
        text = f"*{heading[1]}*" if heading[1] else ""
    text = _BOLD.sub(lambda m: f"*{m[1] or m[2]}*", text)
    text = _ITEM.sub(lambda m: f"{m[1]}• ", text)
    return re.sub("\x00(\\d+)\x00", lambda m: links[int(m[1])], text)


def markdown_blocks(markdown: str) -> list[dict[str, Any]]:
    """Markdown as mrkdwn sections, split between lines to stay within a section's 3000
    characters (a longer line is cut), at most 50 blocks (the rest is cut, marked)."""
    chunks: list[str] = []
    current = ""
    for whole in markdown_to_mrkdwn(markdown).splitlines():
        line = cut(whole, SECTION_MAX)
        if current and len(current) + 1 + len(line) > SECTION_MAX:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current.strip():
        chunks.append(current)
    if len(chunks) > BLOCKS_MAX:
        chunks = [*chunks[: BLOCKS_MAX - 1], "… (cut: the message is longer than Slack allows)"]
    return [{"type": "section", "text": {"type": "mrkdwn", "text": c}} for c in chunks if c.strip()]
