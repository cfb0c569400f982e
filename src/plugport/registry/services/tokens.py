"""API tokens: random, shown once, stored as a SHA-256 with a short public prefix, with scopes,
an expiry, revocation and a last-used time. Scope checks are pure functions."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from plugport._identity import check_identity
from plugport.errors import (
    AuthenticationError,
    AuthorizationError,
    InvalidInputError,
    NotFoundError,
)
from plugport.registry.models import ApiToken, utcnow

__all__ = [
    "Principal",
    "StoredTokens",
    "authenticate",
    "check_scopes",
    "create_token",
    "get_token",
    "has_scope",
    "list_tokens",
    "require",
    "revoke_token",
    "valid_prefix",
]

TOKEN_PREFIX = "ppt_"  # noqa: S105 a public marker that makes leaked tokens greppable, not a secret
_SCOPE_RE = re.compile(r"admin|review|publish:[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
_TOKEN_RE = re.compile(r"ppt_([a-z0-9]{8})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's identity and scopes."""

    identity: str
    scopes: frozenset[str]
    token_prefix: str


def has_scope(scopes: frozenset[str], wanted: str) -> bool:
    """``admin`` may do everything; ``publish:acme`` covers only the acme namespace."""
    return "admin" in scopes or wanted in scopes


def check_scopes(scopes: list[str]) -> list[str]:
    bad = [s for s in scopes if not isinstance(s, str) or not _SCOPE_RE.fullmatch(s)]
    if bad or not scopes:
        raise InvalidInputError(
            f"scopes: {', '.join(map(repr, bad)) or 'none given'}; use admin, review or "
            "publish:<namespace>"
        )
    return sorted(set(scopes))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session,
    identity: str,
    scopes: list[str],
    *,
    expires_in: timedelta | None = None,
    description: str = "",
) -> tuple[str, ApiToken]:
    """A new token: the plaintext (shown once, never stored) and its row."""
    identity = check_identity(identity)
    prefix = secrets.token_hex(4)
    plaintext = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiToken(
        prefix=prefix,
        token_hash=_digest(plaintext),
        identity=identity,
        scopes=check_scopes(scopes),
        description=description[:200],
        expires_at=utcnow() + expires_in if expires_in is not None else None,
    )
    session.add(row)
    session.flush()
    return plaintext, row


def _valid_row(session: Session, authorization: str | None, *, now: datetime) -> ApiToken:
    if not authorization:
        raise AuthenticationError("no token: send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    match = _TOKEN_RE.fullmatch(token.strip()) if scheme.lower() == "bearer" else None
    if match is None:
        raise AuthenticationError("malformed token: expected 'Bearer ppt_<prefix>_<secret>'")
    row = session.scalar(select(ApiToken).where(ApiToken.prefix == match.group(1)))
    if row is None or not hmac.compare_digest(row.token_hash, _digest(token.strip())):
        raise AuthenticationError("unknown token")
    if row.revoked_at is not None:
        raise AuthenticationError(f"token {row.prefix} was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise AuthenticationError(f"token {row.prefix} expired at {row.expires_at.isoformat()}")
    return row


def authenticate(session: Session, authorization: str | None, *, now: datetime) -> Principal:
    """The principal behind an ``Authorization: Bearer ppt_…`` header, or why there is none."""
    row = _valid_row(session, authorization, now=now)
    row.last_used_at = now
    return Principal(row.identity, frozenset(row.scopes), row.prefix)


def valid_prefix(session: Session, authorization: str | None, *, now: datetime) -> str | None:
    """The prefix of the token in ``authorization`` if it authenticates, else None; reads
    only (the rate limiter asks this before the request runs)."""
    try:
        return _valid_row(session, authorization, now=now).prefix
    except AuthenticationError:
        return None


class StoredTokens:
    """The registry's :class:`~plugport.registry.ratelimit.TokenCheck`: tokens in its
    database, each asked about in a short read-only transaction of its own."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def prefix_of(self, authorization: str) -> str | None:
        with self._sessions() as session:
            return valid_prefix(session, authorization, now=utcnow())


def require(principal: Principal, scope: str) -> None:
    if not has_scope(principal.scopes, scope):
        raise AuthorizationError(
            scope,
            f"token {principal.token_prefix} lacks the scope {scope!r} "
            f"(it has: {', '.join(sorted(principal.scopes))})",
        )


def list_tokens(session: Session, identity: str | None = None) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.id)
    if identity is not None:
        query = query.where(ApiToken.identity == identity)
    return list(session.scalars(query))


def get_token(session: Session, prefix: str) -> ApiToken:
    row = session.scalar(select(ApiToken).where(ApiToken.prefix == prefix))
    if row is None:
        raise NotFoundError("token", prefix)
    return row


def revoke_token(session: Session, prefix: str) -> ApiToken:
    row = get_token(session, prefix)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row
