"""The service's own state in one SQLite file (``service.sqlite`` in the data directory): the
workspaces, the tokens that reach them, their plugins' auto-update policies, and each
workspace's appearance (the theme and mode its pages use, and each token's own choice). A
token is random, shown once, stored as its SHA-256 with a short visible prefix, and carries
an expiry, a revocation and a last-used time.

Which token may do what is decided without I/O (:func:`authorize`)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
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
    "AppearanceChoice",
    "AutoUpdateInfo",
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
CREATE TABLE IF NOT EXISTS auto_updates (
    workspace TEXT NOT NULL REFERENCES workspaces (name),
    plugin TEXT NOT NULL,
    policy TEXT NOT NULL,               -- none | patch | minor
    updated_at REAL NOT NULL,
    updated_by TEXT NOT NULL,
    failed TEXT NOT NULL,               -- version -> why its auto-update rolled back (JSON)
    held TEXT NOT NULL,                 -- the version last found waiting for consent, or ''
    PRIMARY KEY (workspace, plugin)
);
CREATE TABLE IF NOT EXISTS appearance (
    workspace TEXT NOT NULL REFERENCES workspaces (name),
    token_prefix TEXT NOT NULL,         -- '' for the workspace's default
    theme TEXT NOT NULL,                -- 'plugport:light', 'acme.nord:nord', ...
    plugin TEXT NOT NULL,               -- the theme's plugin ('' for a built-in): purged with it
    mode TEXT NOT NULL,                 -- auto | light | dark
    updated_at REAL NOT NULL,
    PRIMARY KEY (workspace, token_prefix)
);
"""
# A file made before the auto_updates or appearance table gains it on open (CREATE ... IF NOT
# EXISTS): the other tables are unchanged, so that is the whole migration.
FAILURES_KEPT = 20
"""Failed automatic updates remembered per plugin (the oldest forgotten first)."""


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
class AutoUpdateInfo:
    """One installation's auto-update policy, and what the host remembers for it."""

    plugin: str
    policy: str
    updated_at: float
    updated_by: str
    failed: Mapping[str, str]
    """Versions whose automatic update failed and was rolled back -> why (not retried)."""
    held: str

    def public(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "failed": dict(self.failed),
        }


def _auto_update(row: sqlite3.Row) -> AutoUpdateInfo:
    return AutoUpdateInfo(
        row["plugin"],
        row["policy"],
        row["updated_at"],
        row["updated_by"],
        json.loads(row["failed"]),
        row["held"],
    )


@dataclass(frozen=True)
class AppearanceChoice:
    """A stored choice of theme and mode: a workspace's default (``token_prefix`` empty) or
    one token's own."""

    theme: str
    mode: str
    token_prefix: str = ""
    updated_at: float = 0.0

    def public(self) -> dict[str, Any]:
        return {"theme": self.theme, "mode": self.mode, "updated_at": self.updated_at}


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
        """Forget ``name`` (its plugins' auto-update policies and its appearance choices too)
        and revoke every token of it, in one transaction; how many tokens that revoked. The
        tokens stay listed (revoked) for the record."""
        with self._transaction() as db:
            db.execute("DELETE FROM auto_updates WHERE workspace = ?", (name,))
            db.execute("DELETE FROM appearance WHERE workspace = ?", (name,))
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
            db.execute("DELETE FROM appearance WHERE token_prefix = ?", (prefix,))
            row = db.execute("SELECT * FROM tokens WHERE prefix = ?", (prefix,)).fetchone()
        return _token_info(row)

    # --- auto-update policies -----------------------------------------------------------------

    def auto_updates(self, workspace: str) -> dict[str, AutoUpdateInfo]:
        """plugin -> its policy, for every plugin of ``workspace`` that was given one."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM auto_updates WHERE workspace = ? ORDER BY plugin", (workspace,)
            ).fetchall()
        return {row["plugin"]: _auto_update(row) for row in rows}

    def set_auto_update(
        self, workspace: str, plugin: str, policy: str, *, actor: str
    ) -> AutoUpdateInfo:
        """Set ``plugin``'s policy (its remembered failures stay)."""
        now = self._clock()
        with self._transaction() as db:
            if not db.execute("SELECT 1 FROM workspaces WHERE name = ?", (workspace,)).fetchone():
                raise NotFoundError("workspace", workspace)
            db.execute(
                "INSERT INTO auto_updates VALUES (?, ?, ?, ?, ?, '{}', '') "
                "ON CONFLICT (workspace, plugin) DO UPDATE SET policy = excluded.policy, "
                "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (workspace, plugin, policy, now, actor[:200]),
            )
            row = db.execute(
                "SELECT * FROM auto_updates WHERE workspace = ? AND plugin = ?",
                (workspace, plugin),
            ).fetchone()
        return _auto_update(row)

    def auto_update_failed(self, workspace: str, plugin: str, version: str, reason: str) -> bool:
        """Remember that the automatic update of ``plugin`` to ``version`` failed (it is not
        tried again); False when the plugin has no policy any more (purged meanwhile)."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT failed FROM auto_updates WHERE workspace = ? AND plugin = ?",
                (workspace, plugin),
            ).fetchone()
            if row is None:
                return False
            failed = json.loads(row["failed"])
            failed.pop(version, None)
            failed[version] = reason[:500]
            kept = dict(list(failed.items())[-FAILURES_KEPT:])
            db.execute(
                "UPDATE auto_updates SET failed = ? WHERE workspace = ? AND plugin = ?",
                (json.dumps(kept), workspace, plugin),
            )
        return True

    def auto_update_held(self, workspace: str, plugin: str, version: str) -> bool:
        """Note ``version`` as the one waiting for consent; True when that is news (so it is
        audited once, not at every check)."""
        with self._transaction() as db:
            return (
                db.execute(
                    "UPDATE auto_updates SET held = ? WHERE workspace = ? AND plugin = ? "
                    "AND held != ?",
                    (version, workspace, plugin, version),
                ).rowcount
                > 0
            )

    # --- appearance ---------------------------------------------------------------------------

    def appearance(self, workspace: str, token_prefix: str = "") -> AppearanceChoice | None:
        """The stored choice of a token (or, ``token_prefix`` empty, the workspace's default)."""
        with self._lock:
            row = self._db.execute(
                "SELECT theme, mode, token_prefix, updated_at FROM appearance "
                "WHERE workspace = ? AND token_prefix = ?",
                (workspace, token_prefix),
            ).fetchone()
        return AppearanceChoice(**dict(row)) if row is not None else None

    def appearances(self, workspace: str) -> list[AppearanceChoice]:
        """Every choice stored for ``workspace``: its default first, then the tokens'."""
        with self._lock:
            rows = self._db.execute(
                "SELECT theme, mode, token_prefix, updated_at FROM appearance "
                "WHERE workspace = ? ORDER BY token_prefix",
                (workspace,),
            ).fetchall()
        return [AppearanceChoice(**dict(row)) for row in rows]

    def set_appearance(
        self, workspace: str, token_prefix: str, theme: str, plugin: str, mode: str
    ) -> AppearanceChoice:
        """Store a choice (checked by the caller: the theme exists and is readable)."""
        choice = AppearanceChoice(theme, mode, token_prefix, self._clock())
        with self._transaction() as db:
            if (
                db.execute("SELECT 1 FROM workspaces WHERE name = ?", (workspace,)).fetchone()
                is None
            ):
                raise NotFoundError("workspace", workspace)
            db.execute(
                "INSERT OR REPLACE INTO appearance VALUES (?, ?, ?, ?, ?, ?)",
                (workspace, token_prefix, theme, plugin, mode, choice.updated_at),
            )
        return choice

    def clear_appearance(self, workspace: str, token_prefix: str = "") -> bool:
        """Forget one choice; whether there was one."""
        with self._transaction() as db:
            return (
                db.execute(
                    "DELETE FROM appearance WHERE workspace = ? AND token_prefix = ?",
                    (workspace, token_prefix),
                ).rowcount
                > 0
            )

    def forget_auto_update(self, workspace: str, plugin: str) -> bool:
        """Drop ``plugin``'s policy and failures (uninstall --purge)."""
        with self._transaction() as db:
            return (
                db.execute(
                    "DELETE FROM auto_updates WHERE workspace = ? AND plugin = ?",
                    (workspace, plugin),
                ).rowcount
                > 0
            )

    def forget_plugin_themes(self, workspace: str, plugin: str) -> int:
        """Forget every choice of ``plugin``'s themes in ``workspace`` (uninstall --purge); how
        many there were."""
        with self._transaction() as db:
            return db.execute(
                "DELETE FROM appearance WHERE workspace = ? AND plugin = ?", (workspace, plugin)
            ).rowcount
