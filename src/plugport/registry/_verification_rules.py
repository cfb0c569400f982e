"""Domain verification, decided without I/O: what a challenge token looks like, which domains
may be claimed, what a TXT record or a ``.well-known`` file must hold to prove one, and what a
check's outcome does to a namespace's badge.

The rule this module protects: a namespace shows a verified domain only while its owner can
still prove control of that domain; the proof is the token the registry issued for that
namespace and that domain, compared in constant time, never a prefix or a substring of
something larger.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import ip_address

__all__ = [
    "TOKEN_CHARS",
    "TXT_PREFIX",
    "WELL_KNOWN_PATH",
    "Outcome",
    "after_check",
    "check_domain",
    "check_token",
    "file_proves",
    "https_url",
    "txt_name",
    "txt_proves",
    "txt_value",
]

TXT_PREFIX = "plugport-verification="
TXT_LABEL = "_plugport"
WELL_KNOWN_PATH = "/.well-known/plugport-verification.txt"
TOKEN_CHARS = 32
"""``secrets.token_urlsafe(24)``: 192 random bits in 32 URL-safe characters."""

_TOKEN_RE = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_CHARS}}}")
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NOT_CLAIMABLE = ("localhost", "local", "internal", "invalid", "onion", "arpa")
"""Last labels that never name a domain someone can prove on the public internet."""


def check_token(token: str) -> str:
    """``token`` if it has the issued form; ValueError otherwise (a stored row was altered)."""
    if not _TOKEN_RE.fullmatch(token):
        raise ValueError(f"a verification token is {TOKEN_CHARS} URL-safe characters")
    return token


def check_domain(text: str) -> str:
    """The domain in the one form it is stored and compared in (lower case, no trailing dot,
    international names in their ``xn--`` form); ValueError saying what is wrong otherwise."""
    domain = text.strip().lower().rstrip(".")
    if not domain:
        raise ValueError("domain: give a domain name such as northwind.com")
    if "://" in domain or "/" in domain or ":" in domain or "@" in domain:
        raise ValueError(f"domain: {text!r} is not a bare domain; write e.g. northwind.com")
    try:
        ip_address(domain)
    except ValueError:
        pass
    else:
        raise ValueError(f"domain: {text!r} is an IP address; verify a domain name")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"domain: {text!r} is not a valid international domain name") from None
    labels = domain.split(".")
    if len(domain) > 253 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise ValueError(f"domain: {text!r} is not a valid domain name")
    if len(labels) < 2 or labels[-1] in _NOT_CLAIMABLE or labels[-1].isdigit():
        raise ValueError(f"domain: {text!r} is not a public domain name")
    return domain


def txt_name(domain: str) -> str:
    return f"{TXT_LABEL}.{domain}"


def txt_value(token: str) -> str:
    return f"{TXT_PREFIX}{token}"


def https_url(domain: str) -> str:
    return f"https://{domain}{WELL_KNOWN_PATH}"


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode())


def txt_proves(records: Iterable[str], token: str) -> bool:
    """True when one TXT record (its strings already joined, as DNS says a record's value
    is) is exactly ``plugport-verification=<token>``, surrounding blanks ignored. Other
    records (SPF, other services' proofs, a stale token) are allowed beside it."""
    expected = txt_value(check_token(token))
    return any(_same(record.strip(), expected) for record in records)


def file_proves(body: bytes, token: str) -> bool:
    """True when the ``.well-known`` file is the token alone, or ``plugport-verification=
    <token>`` alone, in UTF-8 (a byte-order mark and surrounding blanks ignored)."""
    check_token(token)
    try:
        text = body.decode("utf-8").removeprefix("\ufeff").strip()
    except UnicodeDecodeError:
        return False
    return _same(text, token) or _same(text, txt_value(token))


@dataclass(frozen=True)
class Outcome:
    """What a check does to one domain: its new ``status`` and ``failures`` count, and the
    audit action to record (None: nothing worth an audit record, e.g. a recheck that held)."""

    status: str
    failures: int
    action: str | None


def after_check(status: str, failures: int, proved: bool, *, allowed_failures: int) -> Outcome:
    """A pending domain becomes ``verified`` when proved; a verified one stays verified while
    proved and is ``lost`` after more than ``allowed_failures`` checks in a row fail (one DNS
    hiccup does not take a badge away; a removed record does, at the next checks). A lost
    domain proved again is verified again."""
    if proved:
        action = None if status == "verified" else "domain.verify"
        return Outcome("verified", 0, action)
    if status != "verified":
        return Outcome(status, failures + 1, None)
    if failures + 1 > allowed_failures:
        return Outcome("lost", failures + 1, "domain.lost")
    return Outcome("verified", failures + 1, None)
