"""``storage.*``: each plugin's own key-value store in the host's SQLite file, JSON values only,
with a byte quota enforced inside the same transaction as the write it limits."""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any, cast

from plugport._permissions import RULES
from plugport.errors import InvalidInputError, ResourceLimitExceededError
from plugport.runtime._db import RuntimeDatabase
from plugport.runtime.capabilities._json import encode_json
from plugport.runtime.capabilities._record import Calls, Capability, Services
from plugport.sdk._api import StorageProxy

__all__ = [
    "MAX_KEYS_LIMIT",
    "RECORD",
    "PluginStorage",
    "StorageCalls",
    "encode_value",
    "key_problem",
]

MAX_KEYS_LIMIT = 10_000
"""The most keys one :meth:`PluginStorage.keys` call may return, so a listing stays one short
statement under the database lock."""

# C0 controls, DEL and C1 controls: invisible in logs and listings, so never part of a key.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Lone surrogates cannot be encoded as UTF-8, so SQLite could not store them.
_SURROGATE = re.compile(r"[\ud800-\udfff]")

_SCHEMA = (
    # WITHOUT ROWID: rows live in the (plugin, key) B-tree, which is also the keys() index.
    """CREATE TABLE IF NOT EXISTS plugin_storage (
        plugin TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (plugin, key)
    ) WITHOUT ROWID""",
    # A running total, so checking the quota costs one row read rather than a SUM per write.
    """CREATE TABLE IF NOT EXISTS storage_usage (
        plugin TEXT PRIMARY KEY,
        bytes INTEGER NOT NULL
    )""",
)


def key_problem(
    key: object, *, max_chars: int, name: str = "key", allow_empty: bool = False
) -> str:
    """Why ``key`` may not name a storage entry, or ``""`` if it may.

    Keys come from plugin code and are shown back to operators, so only printable, encodable
    text of bounded length is accepted."""
    if not isinstance(key, str):
        return f"{name} must be a string, got {type(key).__name__}"
    low = 0 if allow_empty else 1
    if not low <= len(key) <= max_chars:
        return f"{name} must be {low} to {max_chars} characters long, got {len(key)}"
    if found := _CONTROL.search(key):
        return (
            f"{name} must not contain control characters "
            f"(found U+{ord(found.group()):04X} at index {found.start()})"
        )
    if found := _SURROGATE.search(key):
        return (
            f"{name} must be valid Unicode text "
            f"(found lone surrogate U+{ord(found.group()):04X} at index {found.start()})"
        )
    return ""


def encode_value(value: Any) -> bytes:
    """A stored value as compact UTF-8 JSON (see :func:`encode_json` for what is refused)."""
    return encode_json(value, "value")


def _prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``, or ``None``
    when there is none.

    SQLite compares TEXT as UTF-8 bytes, which orders like code points, so ``prefix <= key <
    _prefix_end(prefix)`` is an exact, index-friendly "starts with" (``LIKE`` would need
    escaping and ignores ASCII case)."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code == 0xD800:  # surrogates cannot be bound as SQLite text; skip past them
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


class PluginStorage:
    """The store behind a plugin's ``storage`` permission. ``plugin`` is part of every primary
    key, so one plugin can never read, list or overwrite another's entries; the caller (the
    broker) supplies it from the connection, never from the plugin's request."""

    def __init__(
        self,
        db: RuntimeDatabase,
        *,
        max_key_chars: int = 256,
        max_value_bytes: int = 1024 * 1024,
    ) -> None:
        self.db = db
        self.max_key_chars = max_key_chars
        self.max_value_bytes = max_value_bytes
        with db.transaction() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def get(self, plugin: str, key: str, default: Any = None) -> Any:
        self._check_key(key)
        rows = self.db.execute(
            "SELECT value FROM plugin_storage WHERE plugin = ? AND key = ?", (plugin, key)
        )
        if not rows:
            return default
        return json.loads(cast(bytes, rows[0][0]))

    def set(self, plugin: str, key: str, value: Any, *, quota_bytes: int) -> int:
        """Store ``value`` under ``key`` and return the plugin's usage afterwards.

        A write that would take the plugin over ``quota_bytes`` is refused and changes nothing;
        one that does not grow usage is allowed even over quota, so a plugin whose quota was
        lowered can still shrink its data. A quota of 0 means storage is switched off."""
        self._check_key(key)
        if isinstance(quota_bytes, bool) or not isinstance(quota_bytes, int) or quota_bytes < 0:
            raise InvalidInputError(f"quota_bytes must be an integer >= 0, got {quota_bytes!r}")
        blob = encode_value(value)
        if len(blob) > self.max_value_bytes:
            raise ResourceLimitExceededError(
                plugin,
                "storage",
                f"the value for key {key!r} is {len(blob)} bytes; "
                f"one value may be at most {self.max_value_bytes} bytes",
            )
        key_bytes = len(key.encode("utf-8"))
        new_size = key_bytes + len(blob)
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT length(value) FROM plugin_storage WHERE plugin = ? AND key = ?",
                (plugin, key),
            ).fetchone()
            old_size = key_bytes + row[0] if row else 0
            used = _usage(conn, plugin)
            grows = new_size - old_size
            if grows > 0 and used + grows > quota_bytes:
                raise ResourceLimitExceededError(
                    plugin,
                    "storage",
                    f"writing key {key!r} would exceed the storage quota of {quota_bytes} bytes; "
                    f"the plugin uses {used}, this write needs {grows} more",
                )
            if quota_bytes == 0:  # switched off: not even a shrinking overwrite
                raise ResourceLimitExceededError(
                    plugin,
                    "storage",
                    f"storage is switched off (a quota of 0 bytes); the plugin uses {used} "
                    "and may only delete",
                )
            conn.execute(
                "INSERT INTO plugin_storage (plugin, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
                (plugin, key, blob),
            )
            _add_usage(conn, plugin, grows)
        return used + grows

    def delete(self, plugin: str, key: str) -> bool:
        self._check_key(key)
        key_bytes = len(key.encode("utf-8"))
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT length(value) FROM plugin_storage WHERE plugin = ? AND key = ?",
                (plugin, key),
            ).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM plugin_storage WHERE plugin = ? AND key = ?", (plugin, key))
            _add_usage(conn, plugin, -(key_bytes + row[0]))
        return True

    def keys(self, plugin: str, prefix: str = "", *, limit: int = 1000) -> list[str]:
        """The plugin's keys starting with ``prefix`` (literally: ``%`` and ``_`` are plain
        characters), in code-point order, at most ``limit`` of them."""
        if problem := key_problem(
            prefix, max_chars=self.max_key_chars, name="prefix", allow_empty=True
        ):
            raise InvalidInputError(problem)
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= MAX_KEYS_LIMIT
        ):
            raise InvalidInputError(
                f"limit must be an integer from 1 to {MAX_KEYS_LIMIT}, got {limit!r}"
            )
        end = _prefix_end(prefix)
        if end is None:
            sql = (
                "SELECT key FROM plugin_storage WHERE plugin = ? AND key >= ? ORDER BY key LIMIT ?"
            )
            params: tuple[object, ...] = (plugin, prefix, limit)
        else:
            sql = (
                "SELECT key FROM plugin_storage WHERE plugin = ? AND key >= ? AND key < ? "
                "ORDER BY key LIMIT ?"
            )
            params = (plugin, prefix, end, limit)
        return [str(key) for (key,) in self.db.execute(sql, params)]

    def usage(self, plugin: str) -> int:
        """Bytes the plugin holds: UTF-8 key plus JSON value, summed over its entries."""
        rows = self.db.execute("SELECT bytes FROM storage_usage WHERE plugin = ?", (plugin,))
        return cast(int, rows[0][0]) if rows else 0

    def clear(self, plugin: str) -> int:
        """Remove every entry of ``plugin`` (on uninstall) and return how many there were."""
        with self.db.transaction() as conn:
            removed = conn.execute("DELETE FROM plugin_storage WHERE plugin = ?", (plugin,))
            conn.execute("DELETE FROM storage_usage WHERE plugin = ?", (plugin,))
            return removed.rowcount

    def _check_key(self, key: object) -> None:
        if problem := key_problem(key, max_chars=self.max_key_chars):
            raise InvalidInputError(problem)


def _usage(conn: sqlite3.Connection, plugin: str) -> int:
    row = conn.execute("SELECT bytes FROM storage_usage WHERE plugin = ?", (plugin,)).fetchone()
    return int(row[0]) if row else 0


def _add_usage(conn: sqlite3.Connection, plugin: str, delta: int) -> None:
    conn.execute(
        "INSERT INTO storage_usage (plugin, bytes) VALUES (?, ?) "
        "ON CONFLICT (plugin) DO UPDATE SET bytes = bytes + excluded.bytes",
        (plugin, delta),
    )


class StorageCalls(Calls):
    """``api.storage.*`` for one plugin: its quota is what the host granted."""

    def get(self, key: str, default: Any = None) -> Any:
        return self.services.storage.get(self.plugin, key, default)

    def set(self, key: str, value: Any) -> int:
        quota = self.grants.permissions.storage
        return self.services.storage.set(self.plugin, key, value, quota_bytes=quota)

    def delete(self, key: str) -> bool:
        return self.services.storage.delete(self.plugin, key)

    def keys(self, prefix: str = "", limit: int = 1000) -> list[str]:
        return self.services.storage.keys(self.plugin, prefix, limit=limit)

    def usage(self) -> dict[str, int]:
        used = self.services.storage.usage(self.plugin)
        return {"used_bytes": used, "quota_bytes": self.grants.permissions.storage}


def _purge(services: Services, plugin: str) -> None:
    services.storage.clear(plugin)


RECORD = Capability("storage", RULES["storage"], StorageCalls, StorageProxy, _purge)
