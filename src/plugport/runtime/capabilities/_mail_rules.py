"""The decisions behind ``mail.send``, pure: what a plugin may put in a message (no header
injection, no header the host sets, a size cap), the message the host builds from it (``From``
is always the operator's sender), and whether the plugin is within its hourly rate.

Rule: nothing a plugin passes reaches a header without being checked here first, and every
header that says who sent the message or where it goes (``From``, ``Sender``, ``To``, ``Cc``,
``Bcc``, ``Return-Path``, ``Message-ID``, ``Date``, MIME structure) is the host's. The relay I/O
is in ``_mailer.py``; the permission (which recipients) in ``plugport._permissions``.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from plugport._mail_addresses import check_address
from plugport.errors import InvalidInputError

__all__ = [
    "ALLOWED_HEADERS",
    "MAX_BODY_CHARS",
    "MAX_HEADERS",
    "MAX_MESSAGE_BYTES",
    "MAX_SUBJECT_CHARS",
    "POLICY",
    "WINDOW_S",
    "Draft",
    "RateDecision",
    "check_draft",
    "compose",
    "decide_rate",
    "encoded",
]

MAX_MESSAGE_BYTES = 1024 * 1024
"""The largest message as sent (headers, both bodies, their transfer encoding)."""
MAX_BODY_CHARS = 512 * 1024
MAX_SUBJECT_CHARS = 500
MAX_HEADER_CHARS = 998  # RFC 5322's line limit
MAX_HEADERS = 20
WINDOW_S = 3600.0
ALLOWED_HEADERS = frozenset(
    {
        "in-reply-to",
        "references",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "auto-submitted",
        "precedence",
        "keywords",
    }
)
"""Headers a plugin may set besides its own ``X-...`` ones; everything else is the host's."""
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,75}$")
_HOST_HEADERS = frozenset({"x-plugport-plugin"})
POLICY = email.policy.SMTP.clone(cte_type="7bit")
"""CRLF lines and 7-bit transfer encodings, so any relay takes the message as it is."""


@dataclass(frozen=True)
class Draft:
    """What a plugin asked to send, checked: ``to``/``cc`` are normalised addresses (the
    permission rule checked them against ``mail.to``)."""

    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def recipients(self) -> list[str]:
        return list(dict.fromkeys((*self.to, *self.cc)))

    @property
    def domains(self) -> list[str]:
        return sorted({a.rpartition("@")[2] for a in self.recipients})


def _header_value(value: object, argument: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"mail.send: {argument} must be text, not {type(value).__name__}")
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        raise InvalidInputError(
            f"mail.send: {argument} contains a line break or control character; header "
            "values are one line (CR/LF would inject headers)"
        )
    if len(value) > limit:
        raise InvalidInputError(f"mail.send: {argument} is longer than {limit} characters")
    return value


def _body(value: object, argument: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"mail.send: {argument} must be text, not {type(value).__name__}")
    if "\x00" in value:
        raise InvalidInputError(f"mail.send: {argument} contains a NUL character")
    if len(value) > MAX_BODY_CHARS:
        raise InvalidInputError(
            f"mail.send: {argument} is longer than {MAX_BODY_CHARS} characters "
            f"(a message may be {MAX_MESSAGE_BYTES // 1024} KiB in all)"
        )
    return value


def _extra_headers(headers: object) -> tuple[tuple[str, str], ...]:
    if headers is None:
        return ()
    if not isinstance(headers, Mapping):
        raise InvalidInputError("mail.send: headers must be a dict of header name -> text")
    if len(headers) > MAX_HEADERS:
        raise InvalidInputError(f"mail.send: at most {MAX_HEADERS} extra headers")
    checked = []
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise InvalidInputError(f"mail.send: {name!r} is not a header name")
        lower = name.lower()
        if lower in _HOST_HEADERS or not (lower.startswith("x-") or lower in ALLOWED_HEADERS):
            raise InvalidInputError(
                f"mail.send: header {name!r} is set by the host; a plugin may set its own "
                f"X-... headers and {', '.join(sorted(ALLOWED_HEADERS))}"
            )
        checked.append((name, _header_value(value, f"header {name!r}", MAX_HEADER_CHARS)))
    lowered = [n.lower() for n, _ in checked]
    if len(set(lowered)) != len(lowered):
        raise InvalidInputError("mail.send: a header is given twice (names ignore case)")
    return tuple(checked)


def check_draft(  # noqa: PLR0917 - the arguments of api.mail.send, as given
    to: Sequence[str],
    cc: Sequence[str],
    subject: object,
    text: object,
    html: object,
    reply_to: object,
    headers: object,
) -> Draft:
    """Every argument checked, or :class:`InvalidInputError` naming the argument and the rule."""
    reply: str | None = None
    if reply_to is not None:
        try:
            reply = check_address(reply_to)
        except ValueError as exc:
            raise InvalidInputError(f"mail.send: reply_to: {exc}") from None
    return Draft(
        to=tuple(to),
        cc=tuple(cc),
        subject=_header_value(subject, "subject", MAX_SUBJECT_CHARS),
        text=_body(text, "text"),
        html=None if html is None else _body(html, "html"),
        reply_to=reply,
        headers=_extra_headers(headers),
    )


def compose(
    draft: Draft, *, sender: str, plugin: str, message_id: str, now: float, name: str = ""
) -> EmailMessage:
    """The message the host sends: the plugin's draft under the operator's ``sender`` (shown
    as ``name`` when given), with the host's ``Message-ID``, ``Date`` and
    ``X-Plugport-Plugin``."""
    message = EmailMessage(policy=POLICY)
    local, _, domain = sender.rpartition("@")
    message["From"] = Address(display_name=name, username=local, domain=domain)
    message["To"] = ", ".join(draft.to)
    if draft.cc:
        message["Cc"] = ", ".join(draft.cc)
    if draft.reply_to:
        message["Reply-To"] = draft.reply_to
    message["Subject"] = draft.subject
    message["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    message["Message-ID"] = message_id
    message["X-Plugport-Plugin"] = plugin
    for header, value in draft.headers:
        message[header] = value
    message.set_content(draft.text)
    if draft.html is not None:
        message.add_alternative(draft.html, subtype="html")
    return message


def encoded(message: EmailMessage, plugin: str, limit: int = MAX_MESSAGE_BYTES) -> bytes:
    """The message as the relay receives it, or :class:`InvalidInputError` when it is over
    ``limit`` bytes."""
    data = message.as_bytes(policy=POLICY)
    if len(data) > limit:
        raise InvalidInputError(
            f"mail.send: the message is {len(data)} bytes encoded; at most {limit} "
            f"({limit // 1024} KiB) may be sent"
        )
    return data


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    sent: int
    """Messages in the window before this one."""
    retry_after_s: float
    """When not allowed: seconds until the oldest message leaves the window."""


def decide_rate(
    sent_at: Sequence[float], limit: int, now: float, window_s: float = WINDOW_S
) -> RateDecision:
    """Whether one more message fits ``limit`` per ``window_s`` (a sliding window over the
    times of the messages already sent, oldest first)."""
    recent = [t for t in sent_at if now - t < window_s]
    if len(recent) < limit:
        return RateDecision(True, limit, len(recent), 0.0)
    oldest = recent[len(recent) - limit]
    return RateDecision(False, limit, len(recent), max(0.0, oldest + window_s - now))
