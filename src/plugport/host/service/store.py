"""The service's own state in one SQLite file (``service.sqlite`` in the data directory): the
workspaces, and the tokens that reach them. A token is random, shown once, stored as its
SHA-256 with a short visible prefix, and carries an expiry, a revocation and a last-used time.

Which token may do what is decided without I/O (:func:`authorize`)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from plugport._sqlite import connect, create_schema, immediate
from plugport.errors import (
    AuthenticationError,
    AuthorizationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)

__all__ = [
    "TOKEN_MARK",
    "FieldError",
    "Principal",
    "ServiceStore",
    "TokenInfo",
    "WorkspaceInfo",
    "authorize",
    "check_workspace_name",
    "parse_bearer",
]

TOKEN_MARK = "pph_"  # noqa: S105 a public marker that makes leaked tokens greppable
_TOKEN_RE = re.compile(r"pph_([a-z0-9]{8})_([A-Za-z0-9_-]{43})")
_WORKSPACE_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
_DAY_S = 86400.0
TOUCH_INTERVAL_S = 60.0
"""``last_used_at`` is written at most this often per token: checking a token, which every
page, tile and API request does, stays a read (a write is a commit, with its fsync, on the
event loop)."""
TokenKind = Literal["admin", "workspace"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workspaces (
    name TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    prefix TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,           -- sha256 of the whole token (never the token)
    kind TEXT NOT NULL,                 -- admin | workspace
    workspace TEXT REFERENCES workspaces (name),
    description TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL,
    last_used_at REAL
);
"""


class FieldError(InvalidInputError):
    """Bad input in one named field (``details.field`` in the API's answer)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


def check_workspace_name(name: str) -> str:
    if not isinstance(name, str) or not _WORKSPACE_RE.fullmatch(name):
        raise FieldError(
            "workspace",
            f"{name!r} is not a workspace name; use 1 to 40 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
        )
    return name


def parse_bearer(authorization: str | None) -> str:
    """The token in an ``Authorization: Bearer pph_…`` header, or why there is none."""
    if not authorization:
        raise AuthenticationError("no token: send 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("malformed token: expected 'Bearer pph_<prefix>_<secret>'")
    return token.strip()


@dataclass(frozen=True)
class WorkspaceInfo:
    name: str
    created_at: float

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "created_at": self.created_at}


@dataclass(frozen=True)
class TokenInfo:
    prefix: str
    kind: TokenKind
    workspace: str | None
    description: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None

    def public(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "kind": self.kind,
            "workspace": self.workspace,
            "description": self.description,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
        }


@dataclass(frozen=True)
class Principal:
    """Who is calling: an admin, or one workspace's token."""

    kind: TokenKind
    workspace: str | None
    prefix: str

    @property
    def actor(self) -> str:
        """How the host's audit trail names it."""
        return f"token:{self.prefix}"


def authorize(principal: Principal, workspace: str | None) -> None:
    """An admin may do everything; a workspace token only reaches its own workspace
    (``workspace=None``: an admin-only operation)."""
    if principal.kind == "admin":
        return
    if workspace is None:
        raise AuthorizationError(
            "admin", f"token {principal.prefix} is a workspace token; this needs an admin token"
        )
    if principal.workspace != workspace:
        raise AuthorizationError(
            f"workspace:{workspace}",
            f"token {principal.prefix} is not valid for workspace {workspace!r}",
        )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_info(row: sqlite3.Row) -> TokenInfo:
    data = dict(row)
    del data["token_hash"]
    return TokenInfo(**data)


class ServiceStore:
    """``service.sqlite``: one connection, serialised by a lock, like the host's own state."""

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self._clock = clock
        self._db = connect(path)
        self._lock = threading.RLock()
        with self._transaction() as db:
            create_schema(db, _SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with immediate(self._db, self._lock) as db:
            yield db

    # --- workspaces ---------------------------------------------------------------------------

    def create_workspace(self, name: str) -> WorkspaceInfo:
        check_workspace_name(name)
        info = WorkspaceInfo(name, self._clock())
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM workspaces WHERE name = ?", (name,)).fetchone():
                raise ConflictError("workspace", name, "exists already")
            db.execute("INSERT INTO workspaces VALUES (?, ?)", (info.name, info.created_at))
        return info

    def delete_workspace(self, name: str) -> int:
        """Forget ``name`` and revoke every token of it, in one transaction; how many tokens
        that revoked. The tokens stay listed (revoked) for the record."""
        with self._transaction() as db:
            if db.execute("DELETE FROM workspaces WHERE name = ?", (name,)).rowcount == 0:
                raise NotFoundError("workspace", name)
            return db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE workspace = ? AND revoked_at IS NULL",
                (self._clock(), name),
            ).rowcount

    def workspace(self, name: str) -> WorkspaceInfo | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM workspaces WHERE name = ?", (name,)).fetchone()
        return WorkspaceInfo(**dict(row)) if row is not None else None

    def workspaces(self) -> list[WorkspaceInfo]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM workspaces ORDER BY name").fetchall()
        return [WorkspaceInfo(**dict(row)) for row in rows]

    # --- tokens -------------------------------------------------------------------------------

    def create_token(
        self,
        kind: TokenKind,
        workspace: str | None = None,
        *,
        expires_days: float | None = None,
        description: str = "",
    ) -> tuple[str, TokenInfo]:
        """A new token: the plaintext (shown once, never stored) and what is kept of it."""
        if kind == "workspace":
            if workspace is None or self.workspace(check_workspace_name(workspace)) is None:
                raise NotFoundError("workspace", str(workspace))
        elif workspace is not None:
            raise FieldError("workspace", "an admin token belongs to no workspace")
        if expires_days is not None and not 0 < expires_days <= 3650:
            raise FieldError("expires_days", f"{expires_days:g} is not within 0 to 3650")
        prefix = secrets.token_hex(4)
        plaintext = f"{TOKEN_MARK}{prefix}_{secrets.token_urlsafe(32)}"
        now = self._clock()
        info = TokenInfo(
            prefix=prefix,
            kind=kind,
            workspace=workspace,
            description=description[:200],
            created_at=now,
            expires_at=now + expires_days * _DAY_S if expires_days is not None else None,
            revoked_at=None,
            last_used_at=None,
        )
        with self._transaction() as db:
            db.execute(
                "INSERT INTO tokens VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    info.prefix,
                    _digest(plaintext),
                    info.kind,
                    info.workspace,
                    info.description,
                    info.created_at,
                    info.expires_at,
                    None,
                    None,
                ),
            )
        return plaintext, info

    def authenticate(self, token: str) -> Principal:
        """The principal behind a token, or why there is none (unknown, revoked, expired)."""
        match = _TOKEN_RE.fullmatch(token)
        if match is None:
            raise AuthenticationError("malformed token: expected pph_<prefix>_<secret>")
        prefix = match.group(1)
        now = self._clock()
        with self._lock:
            row = self._db.execute("SELECT * FROM tokens WHERE prefix = ?", (prefix,)).fetchone()
        if row is None or not hmac.compare_digest(row["token_hash"], _digest(token)):
            raise AuthenticationError("unknown token")
        if row["revoked_at"] is not None:
            raise AuthenticationError(f"token {prefix} was revoked")
        if row["expires_at"] is not None and row["expires_at"] <= now:
            raise AuthenticationError(f"token {prefix} has expired")
        if row["last_used_at"] is None or now - row["last_used_at"] >= TOUCH_INTERVAL_S:
            with self._transaction() as db:
                db.execute("UPDATE tokens SET last_used_at = ? WHERE prefix = ?", (now, prefix))
        return Principal(row["kind"], row["workspace"], prefix)

    def tokens(self, workspace: str | None = None) -> list[TokenInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM tokens WHERE ? IS NULL OR workspace = ? ORDER BY created_at",
                (workspace, workspace),
            ).fetchall()
        return [_token_info(row) for row in rows]

    def revoke(self, prefix: str) -> TokenInfo:
        with self._transaction() as db:
            row = db.execute("SELECT * FROM tokens WHERE prefix = ?", (prefix,)).fetchone()
            if row is None:
                raise NotFoundError("token", prefix)
            if row["revoked_at"] is None:
                db.execute(
                    "UPDATE tokens SET revoked_at = ? WHERE prefix = ?", (self._clock(), prefix)
                )
            row = db.execute("SELECT * FROM tokens WHERE prefix = ?", (prefix,)).fetchone()
        return _token_info(row)
