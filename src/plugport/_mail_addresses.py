"""Email addresses and the recipient patterns of ``[permissions] mail.to``, decided from text
alone: what a valid address is, what a pattern may say, and whether a pattern admits an address.

Rule: a recipient is a bare ``local@domain`` (no display name, no comments, no CR/LF, ASCII
only, a domain name with a dot, never an address literal), so what the policy matches is exactly
what the relay is told; a pattern is an exact address or ``*@domain``, never a bare ``*``. Sits
at the bottom of the import order: the manifest validates patterns with it and the permission
rule matches recipients with it.
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.headerregistry import Address

__all__ = ["check_address", "check_recipient_pattern", "match_recipient", "pattern_covers_mail"]

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
MAX_ADDRESS_CHARS = 254


def _domain(text: str, value: str) -> str:
    domain = text.lower().rstrip(".")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DNS_LABEL.match(label) for label in labels):
        raise ValueError(
            f"{value!r} has no valid domain; write a domain name such as 'example.com' "
            "(internationalised domains in their xn-- form, no address literals)"
        )
    if labels[-1].isdigit():
        raise ValueError(f"{value!r} ends in an IP address; write a domain name")
    return domain


def check_address(value: object) -> str:
    """``value`` as a normalised address (the domain in lowercase), or ``ValueError`` saying
    what a recipient must look like."""
    if not isinstance(value, str):
        raise ValueError(f"an address must be a string such as 'ops@example.com', not {value!r}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(
            f"{value!r} contains a control character (CR/LF are refused: header injection)"
        )
    text = value.strip()
    if not text.isascii() or len(text) > MAX_ADDRESS_CHARS:
        raise ValueError(
            f"{value!r} is not a plain ASCII address of at most {MAX_ADDRESS_CHARS} characters"
        )
    local, at, domain = text.rpartition("@")
    if not at or not _LOCAL.match(local) or local.startswith(".") or ".." in local:
        raise ValueError(
            f"{value!r} is not an email address; write a bare address such as "
            "'ops@example.com' (no display name, quotes or comments)"
        )
    domain = _domain(domain, value)
    try:
        parsed = Address(addr_spec=f"{local}@{domain}")
    except (HeaderParseError, ValueError, IndexError):
        raise ValueError(f"{value!r} is not an email address") from None
    if parsed.username != local or parsed.domain != domain:
        raise ValueError(f"{value!r} is not a plain email address")
    return f"{local}@{domain}"


def check_recipient_pattern(value: str) -> str:
    """A ``mail.to`` pattern: an exact address, or ``*@domain`` for every address at one
    domain (not its subdomains). A bare ``*`` or ``*@*`` would let a plugin mail anyone."""
    text = value.strip()
    if text.startswith("*@"):
        if "*" in text[2:]:
            raise ValueError(
                f"{value!r} is too broad; '*' stands only for the whole local part, and the "
                "domain is named: '*@example.com'"
            )
        return "*@" + _domain(text[2:], value)
    if "*" in text:
        raise ValueError(
            f"{value!r} is not a recipient pattern; write an address ('ops@example.org') or "
            "every address at one domain ('*@example.com'), never a bare '*'"
        )
    try:
        return check_address(text)
    except ValueError as exc:
        raise ValueError(f"not a recipient pattern: {exc}") from None


def match_recipient(pattern: str, address: str) -> bool:
    """Whether a checked pattern admits a checked address (case-insensitively: mail systems
    treat both parts so in practice)."""
    address = address.lower()
    if pattern.startswith("*@"):
        return address.rpartition("@")[2] == pattern[2:].lower()
    return address == pattern.lower()


def pattern_covers_mail(granted: str, wanted: str) -> bool:
    """Whether every address ``wanted`` admits is admitted by ``granted``."""
    if wanted.startswith("*@"):
        return granted.lower() == wanted.lower()
    return match_recipient(granted, wanted)
