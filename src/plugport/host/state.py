"""A host home's durable state, in one SQLite file (``host.sqlite``): what is installed, the
install in flight (the journal), the keys this host trusts, and the audit trail of operations.

Every change that must be all-or-nothing is one transaction here; the plugin files it refers
to live in version directories that are written before and deleted after, so the database row
is the single switch between an old and a new install."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from plugport._sqlite import connect, create_schema, immediate

__all__ = ["HostAudit", "HostState", "Installation", "Journal", "PinnedRegistry"]

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS installations (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    source_kind TEXT NOT NULL,          -- registry | url | file | dev | index
    source TEXT NOT NULL,               -- the registry URL, the URL, the file, the directory,
                                        -- or the wheel's URL on a package index
    sha256 TEXT NOT NULL,               -- of the archive or wheel ('' for a development directory)
    key_id TEXT NOT NULL,               -- the publisher key that signed it ('' for dev, and for
                                        -- an unsigned wheel the host's policy allowed)
    enabled INTEGER NOT NULL,
    requested INTEGER NOT NULL,         -- asked for by name (1) or pulled in as a dependency (0)
    permissions TEXT NOT NULL,          -- what the operator consented to (JSON)
    dependencies TEXT NOT NULL,         -- name -> specifier (JSON)
    installed_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    name TEXT PRIMARY KEY,              -- one operation in flight per plugin
    operation TEXT NOT NULL,            -- install | update
    previous TEXT,                      -- the installations row before, as JSON, or NULL
    version TEXT NOT NULL,              -- the version being put in place
    started_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS registries (
    url TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    index_version INTEGER NOT NULL,
    index_digest TEXT NOT NULL,
    pinned_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS publisher_keys (
    namespace TEXT NOT NULL,
    key_id TEXT NOT NULL,
    pinned_at REAL NOT NULL,
    PRIMARY KEY (namespace, key_id)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    outcome TEXT NOT NULL,              -- ok | refused | failed | rolled-back
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject, id);
"""


@dataclass(frozen=True)
class Installation:
    name: str
    version: str
    source_kind: str
    source: str
    sha256: str
    key_id: str
    enabled: bool
    requested: bool
    permissions: Mapping[str, Any]
    dependencies: Mapping[str, str]
    installed_at: float = 0.0
    updated_at: float = 0.0

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Installation:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Journal:
    """An install or update that has been switched in but not yet confirmed healthy: on the
    next start it is rolled back to ``previous`` (None: the plugin was not installed)."""

    name: str
    operation: str
    previous: Installation | None
    version: str
    started_at: float


@dataclass(frozen=True)
class PinnedRegistry:
    url: str
    key_id: str
    public_key_pem: str
    index_version: int
    index_digest: str


@dataclass(frozen=True)
class HostAudit:
    at: float
    actor: str
    action: str
    subject: str
    outcome: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    id: int = 0


def _installation(row: sqlite3.Row) -> Installation:
    data = dict(row)
    data["enabled"] = bool(data["enabled"])
    data["requested"] = bool(data["requested"])
    data["permissions"] = json.loads(data["permissions"])
    data["dependencies"] = json.loads(data["dependencies"])
    return Installation(**data)


class HostState:
    """``host.sqlite`` in a host home. One connection, serialised by a lock; every write is a
    ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, path: Path | str = ":memory:", *, clock: Any = time.time) -> None:
        self.path = str(path)
        self._clock = clock
        self._db = connect(path)
        self._db.execute("PRAGMA synchronous=FULL")  # an install is durable once committed
        self._lock = threading.RLock()
        with self.transaction() as db:
            create_schema(db, _SCHEMA)
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with immediate(self._db, self._lock) as db:
            yield db

    # --- installations ----------------------------------------------------------------------

    def installations(self) -> list[Installation]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM installations ORDER BY name").fetchall()
        return [_installation(row) for row in rows]

    def get(self, name: str) -> Installation | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM installations WHERE name = ?", (name,)).fetchone()
        return _installation(row) if row is not None else None

    @staticmethod
    def put(db: sqlite3.Connection, installation: Installation) -> None:
        """Insert or replace, inside a transaction the caller holds."""
        db.execute(
            "INSERT OR REPLACE INTO installations VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                installation.name,
                installation.version,
                installation.source_kind,
                installation.source,
                installation.sha256,
                installation.key_id,
                int(installation.enabled),
                int(installation.requested),
                json.dumps(dict(installation.permissions), sort_keys=True),
                json.dumps(dict(installation.dependencies), sort_keys=True),
                installation.installed_at,
                installation.updated_at,
            ),
        )

    @staticmethod
    def delete(db: sqlite3.Connection, name: str) -> None:
        db.execute("DELETE FROM installations WHERE name = ?", (name,))

    def set_enabled(self, name: str, enabled: bool) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE installations SET enabled = ?, updated_at = ? WHERE name = ?",
                (int(enabled), self._clock(), name),
            )

    # --- the journal ------------------------------------------------------------------------

    def journals(self) -> list[Journal]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM journal ORDER BY name").fetchall()
        return [
            Journal(
                row["name"],
                row["operation"],
                Installation.from_json(row["previous"]) if row["previous"] else None,
                row["version"],
                row["started_at"],
            )
            for row in rows
        ]

    def begin_switch(
        self,
        db: sqlite3.Connection,
        operation: str,
        new: Installation,
        previous: Installation | None,
    ) -> None:
        """Point ``new.name`` at ``new`` and remember ``previous``, in the caller's transaction:
        from here until :meth:`confirm`, a restart rolls back."""
        db.execute(
            "INSERT OR REPLACE INTO journal VALUES (?,?,?,?,?)",
            (
                new.name,
                operation,
                previous.as_json() if previous is not None else None,
                new.version,
                self._clock(),
            ),
        )
        self.put(db, new)

    @staticmethod
    def confirm(db: sqlite3.Connection, name: str) -> None:
        db.execute("DELETE FROM journal WHERE name = ?", (name,))

    def restore(self, db: sqlite3.Connection, journal: Journal) -> None:
        """Undo a switch: the previous row back (or none), the journal entry gone."""
        if journal.previous is None:
            self.delete(db, journal.name)
        else:
            self.put(db, journal.previous)
        self.confirm(db, journal.name)

    # --- trust ------------------------------------------------------------------------------

    def registry(self, url: str) -> PinnedRegistry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT url, key_id, public_key_pem, index_version, index_digest "
                "FROM registries WHERE url = ?",
                (url,),
            ).fetchone()
        return PinnedRegistry(**dict(row)) if row is not None else None

    def pin_registry(self, pinned: PinnedRegistry) -> None:
        """Remember the registry's key and the newest index seen from it. Callers only ever
        move ``index_version`` forward (the trust decision checks it first)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO registries VALUES (?,?,?,?,?,?)",
                (
                    pinned.url,
                    pinned.key_id,
                    pinned.public_key_pem,
                    pinned.index_version,
                    pinned.index_digest,
                    self._clock(),
                ),
            )

    def publisher_keys(self, namespace: str) -> set[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key_id FROM publisher_keys WHERE namespace = ?", (namespace,)
            ).fetchall()
        return {row["key_id"] for row in rows}

    @staticmethod
    def pin_publisher_key(db: sqlite3.Connection, namespace: str, key_id: str, at: float) -> bool:
        """True when ``key_id`` is newly trusted for ``namespace``."""
        cursor = db.execute(
            "INSERT OR IGNORE INTO publisher_keys VALUES (?,?,?)", (namespace, key_id, at)
        )
        return cursor.rowcount == 1

    # --- audit ------------------------------------------------------------------------------

    def audit(
        self,
        action: str,
        subject: str,
        outcome: str,
        *,
        actor: str,
        db: sqlite3.Connection | None = None,
        **detail: Any,
    ) -> None:
        """Record one operation; inside ``db``'s transaction when given (so the record and the
        change it describes commit together), else on its own."""
        row = (self._clock(), actor, action, subject, outcome, json.dumps(detail, default=str))
        sql = "INSERT INTO audit (at, actor, action, subject, outcome, detail) VALUES (?,?,?,?,?,?)"
        if db is not None:
            db.execute(sql, row)
            return
        with self.transaction() as own:
            own.execute(sql, row)

    def audit_trail(self, *, subject: str | None = None, limit: int = 100) -> list[HostAudit]:
        where, params = ("WHERE subject = ?", (subject,)) if subject else ("", ())
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM audit {where} ORDER BY id DESC LIMIT ?",  # noqa: S608 fixed text
                (*params, limit),
            ).fetchall()
        return [
            HostAudit(
                row["at"],
                row["actor"],
                row["action"],
                row["subject"],
                row["outcome"],
                json.loads(row["detail"]),
                row["id"],
            )
            for row in rows
        ]
