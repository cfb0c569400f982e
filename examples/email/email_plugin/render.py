"""From a ``notify.*`` payload and the operator's templates to a subject, a plain-text part and
an HTML part, without I/O. Templates are ``string.Template`` strings (``$title``): substitution
only, never code. In the HTML part every value from the payload is HTML-escaped before it is
placed; ``$text`` is the escaped text rendered as Markdown by the converter the caller passes
(so raw HTML in an event never reaches a mail client), and links keep only http, https and
mailto targets."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from string import Template
from typing import Any

__all__ = [
    "SEVERITIES",
    "Rendered",
    "TemplateError",
    "check_template",
    "notice",
    "recipients",
    "render",
]

SEVERITIES = ("info", "success", "warning", "error")
COLORS = {"info": "#2f6fde", "success": "#2e9d4f", "warning": "#d98b14", "error": "#d0342c"}
PLACEHOLDERS = ("title", "text", "source", "severity", "url", "fields")
HTML_ONLY = ("link", "color")
MAX_SUBJECT = 250
_SAFE_URL = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)


class TemplateError(ValueError):
    """A template setting that cannot be rendered; ``setting`` names it."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"setting {setting}: {message}")
        self.setting = setting


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def notice(payload: Any) -> dict[str, Any] | None:
    """The payload as the convention has it (all strings, ``fields`` a mapping), or None for
    one without a ``title`` (the convention says: drop it)."""
    if not isinstance(payload, Mapping):
        return None
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip():
        return None
    severity = str(payload.get("severity") or "info")
    fields = payload.get("fields")
    return {
        "title": title,
        "text": str(payload.get("text") or ""),
        "source": str(payload.get("source") or "plugport"),
        "severity": severity if severity in SEVERITIES else "info",
        "url": str(payload.get("url") or ""),
        "fields": (
            {str(k): str(v) for k, v in fields.items()} if isinstance(fields, Mapping) else {}
        ),
    }


def check_template(setting: str, template: str, *, html_part: bool = False) -> None:
    """Refuse a template with a placeholder that does not exist or a stray ``$``, naming the
    setting and what is allowed."""
    allowed = PLACEHOLDERS + (HTML_ONLY if html_part else ())
    try:
        names = Template(template).get_identifiers()
    except ValueError:  # pragma: no cover - get_identifiers skips invalid placeholders
        names = []
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise TemplateError(
            setting,
            f"unknown placeholder ${unknown[0]}; use "
            f"{', '.join('$' + n for n in allowed)} (write $$ for a dollar sign)",
        )
    if not Template(template).is_valid():
        raise TemplateError(setting, "a $ that starts no placeholder; write $$ for a dollar sign")


def _substitute(setting: str, template: str, values: Mapping[str, str], html_part: bool) -> str:
    check_template(setting, template, html_part=html_part)
    return Template(template).substitute(values)


def _fields_text(fields: Mapping[str, str]) -> str:
    return "\n".join(f"{key}: {value}" for key, value in fields.items())


def _fields_html(fields: Mapping[str, str]) -> str:
    if not fields:
        return ""
    rows = "".join(
        f'<tr><th align="left" style="padding: 2px 12px 2px 0">{html.escape(k)}</th>'
        f"<td>{html.escape(v)}</td></tr>"
        for k, v in fields.items()
    )
    return f"<table>{rows}</table>"


def _safe_links(markup: str) -> str:
    """Drop ``href``/``src`` values that are not http, https or mailto (``javascript:``)."""

    def keep(match: re.Match[str]) -> str:
        target = html.unescape(match.group(2))
        return match.group(0) if _SAFE_URL.match(target.strip()) else f'{match.group(1)}="#"'

    return re.sub(r'\b(href|src)="([^"]*)"', keep, markup)


def render(
    payload: Mapping[str, Any],
    templates: Mapping[str, str],
    markdown: Callable[[str], str] = lambda escaped: f"<p>{escaped}</p>",
) -> Rendered:
    """The message for a :func:`notice`. ``templates`` holds ``subject_template``,
    ``text_template`` and ``html_template``; ``markdown`` turns already-escaped text into HTML."""
    plain = {
        "title": payload["title"],
        "text": payload["text"],
        "source": payload["source"],
        "severity": payload["severity"],
        "url": payload["url"],
        "fields": _fields_text(payload["fields"]),
    }
    subject = _substitute("subject_template", templates["subject_template"], plain, False)
    subject = " ".join(subject.split())[:MAX_SUBJECT]  # a subject is one line
    text = _substitute("text_template", templates["text_template"], plain, False)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    url = payload["url"] if _SAFE_URL.match(payload["url"]) else ""
    escaped = {key: html.escape(value) for key, value in plain.items()}
    rich = {
        **escaped,
        "url": html.escape(url),
        "text": _safe_links(markdown(html.escape(payload["text"], quote=False))),
        "fields": _fields_html(payload["fields"]),
        "link": f'<p><a href="{html.escape(url)}">Open in {escaped["source"]}</a></p>'
        if url
        else "",
        "color": COLORS[payload["severity"]],
    }
    body = _substitute("html_template", templates["html_template"], rich, True)
    return Rendered(subject, text, body)


def recipients(
    severity: str, to: Sequence[str], errors_to: Sequence[str], min_severity: str = "info"
) -> list[str]:
    """Who gets a notification of ``severity``: ``to``, plus ``errors_to`` for errors; nobody
    below ``min_severity``. Each address once, in order."""
    if SEVERITIES.index(severity) < SEVERITIES.index(min_severity):
        return []
    chosen = [*to, *(errors_to if severity == "error" else ())]
    return list(dict.fromkeys(address.strip().lower() for address in chosen if address.strip()))
