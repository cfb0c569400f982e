"""The host's secrets, encrypted at rest in ``HOME/secrets.sqlite``: AES-GCM under the master
key (:mod:`.masterkey`), each ciphertext bound to its plugin and name, so a row copied to
another plugin or name, an altered byte, or another master key fails to decrypt, loudly.

Nothing is created until the first secret is set: reading a home without secrets finds none."""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from plugport import _sqlite
from plugport.errors import InvalidInputError, NotFoundError, TrustError
from plugport.host.secrets._rules import (
    associated_data,
    check_names,
    check_value,
    fingerprint,
    fingerprint_key,
)
from plugport.host.secrets.masterkey import (
    KEY_ENV,
    KEY_FILE,
    OLD_KEY_FILE,
    MasterKey,
    load_master_key,
    read_key_file,
    write_key_file,
)
from plugport.runtime.capabilities._secret_source import SecretInfo

__all__ = ["SECRETS_FILE", "EncryptedSecretStore"]

SECRETS_FILE = "secrets.sqlite"
TOUCH_INTERVAL_S = 60.0
"""``last_used_at`` is written at most this often per secret: a read stays a read."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS secrets (
    plugin TEXT NOT NULL,
    name TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    key_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    updated_by TEXT NOT NULL,
    last_used_at REAL,
    PRIMARY KEY (plugin, name)
)
"""


class EncryptedSecretStore:
    """A :class:`~plugport.runtime.capabilities.SecretStore` in one SQLite file of ``home``.
    ``master_key`` (32 bytes) overrides ``$PLUGPORT_MASTER_KEY`` and ``HOME/master.key``."""

    def __init__(
        self,
        home: Path,
        *,
        master_key: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.home = Path(home)
        self.path = self.home / SECRETS_FILE
        self._given = None if master_key is None else MasterKey(master_key, "master_key")
        if master_key is not None and len(master_key) != 32:
            raise InvalidInputError("master_key: give 32 bytes")
        self._clock = clock
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._key: MasterKey | None = None

    # --- the SecretStore API --------------------------------------------------------------

    def get(self, plugin: str, name: str) -> bytes:
        with self._lock:
            db = self._connection(create=False)
            if db is not None:
                self._master(create=False)  # finishes a rotation a crash interrupted
            row = None if db is None else _row(db, plugin, name)
            if db is None or row is None:
                raise NotFoundError(
                    "secret", f"{plugin}/{name}", f"set it with plugport secret set {plugin} {name}"
                )
            value = self._decrypt(row)
            now = self._clock()
            if row["last_used_at"] is None or now - row["last_used_at"] >= TOUCH_INTERVAL_S:
                with _sqlite.immediate(db, self._lock):
                    db.execute(
                        "UPDATE secrets SET last_used_at = ? WHERE plugin = ? AND name = ?",
                        (now, plugin, name),
                    )
            return value

    def set(self, plugin: str, name: str, value: bytes, *, actor: str = "operator") -> SecretInfo:
        check_names(plugin, name)
        check_value(plugin, name, value)
        with self._lock:
            key = self._master(create=True)
            assert key is not None  # noqa: S101 - create=True makes one
            db = self._connection(create=True)
            assert db is not None  # noqa: S101 - create=True makes it
            nonce = os.urandom(12)
            sealed = AESGCM(key.key).encrypt(nonce, value, associated_data(plugin, name))
            now = self._clock()
            with _sqlite.immediate(db, self._lock):
                db.execute(
                    "INSERT INTO secrets (plugin, name, nonce, ciphertext, key_id, fingerprint, "
                    "created_at, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (plugin, name) DO UPDATE SET nonce = excluded.nonce, "
                    "ciphertext = excluded.ciphertext, key_id = excluded.key_id, "
                    "fingerprint = excluded.fingerprint, updated_at = excluded.updated_at, "
                    "updated_by = excluded.updated_by",
                    (
                        plugin,
                        name,
                        nonce,
                        sealed,
                        key.id,
                        fingerprint(fingerprint_key(key.key), value),
                        now,
                        now,
                        actor,
                    ),
                )
                row = _row(db, plugin, name)
            assert row is not None  # noqa: S101 - just written
            return _info(row)

    def delete(self, plugin: str, name: str) -> bool:
        with self._lock:
            db = self._connection(create=False)
            if db is None:
                return False
            with _sqlite.immediate(db, self._lock):
                gone = db.execute(
                    "DELETE FROM secrets WHERE plugin = ? AND name = ?", (plugin, name)
                ).rowcount
            return gone > 0

    def list(self, plugin: str | None = None) -> builtins.list[SecretInfo]:
        with self._lock:
            db = self._connection(create=False)
            if db is None:
                return []
            where, params = ("WHERE plugin = ?", (plugin,)) if plugin else ("", ())
            rows = db.execute(
                f"SELECT * FROM secrets {where} ORDER BY plugin, name",  # noqa: S608 fixed text
                params,
            ).fetchall()
            return [_info(row) for row in rows]

    def purge(self, plugin: str) -> int:
        with self._lock:
            db = self._connection(create=False)
            if db is None:
                return 0
            with _sqlite.immediate(db, self._lock):
                count: int = db.execute("DELETE FROM secrets WHERE plugin = ?", (plugin,)).rowcount
            return count

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # --- the master key -------------------------------------------------------------------

    def key_source(self) -> str:
        """Where the master key comes from (an environment variable or a file); 'none' yet."""
        with self._lock:
            key = self._master(create=False)
            return key.source if key is not None else "none"

    def rotate_master_key(self, new_key: bytes | None = None) -> str:
        """Re-encrypt every row under a new key in one transaction; returns its id. With the
        key file, the old key is kept as ``master.key.old`` while the new file is written and
        until the transaction commits, so a crash at any step is finished on the next open."""
        with self._lock:
            old = self._master(create=False)
            if old is None:
                raise InvalidInputError(
                    f"no master key yet in {self.home} (it is made when the first secret is "
                    "set): nothing to rotate"
                )
            from_env = old.source in (KEY_ENV, "master_key")
            if from_env and new_key is None:
                raise InvalidInputError(
                    f"the master key comes from {old.source}: give the new one with "
                    "--new-key-env NAME (a variable holding 32 random bytes as base64url)"
                )
            new = MasterKey(new_key or os.urandom(32), old.source)
            if new.id == old.id:
                raise InvalidInputError("the new master key is the current one; give another")
            db = self._connection(create=False)
            if not from_env:
                write_key_file(self.home / OLD_KEY_FILE, old.key)
                write_key_file(self.home / KEY_FILE, new.key)
            if db is not None:
                self._reencrypt(db, {old.id: old}, new)
            self._key = new
            if self._given is not None:
                self._given = new
            (self.home / OLD_KEY_FILE).unlink(missing_ok=True)
            return new.id

    def _master(self, *, create: bool) -> MasterKey | None:
        if self._key is None:
            self._key = self._given or load_master_key(self.home, create=create)
            if self._key is not None:
                self._resume_rotation(self._key)
        return self._key

    def _resume_rotation(self, current: MasterKey) -> None:
        """A rotation stopped after the new key file was written: re-encrypt what the old key
        (``master.key.old``) still holds, then drop it."""
        old_path = self.home / OLD_KEY_FILE
        if not old_path.exists():
            return
        old = MasterKey(read_key_file(old_path), str(old_path))
        db = self._connection(create=False)
        if db is not None and old.id != current.id:
            self._reencrypt(db, {old.id: old}, current)
        left = (
            0
            if db is None
            else db.execute("SELECT count(*) FROM secrets WHERE key_id = ?", (old.id,)).fetchone()[
                0
            ]
        )
        if not left or old.id == current.id:
            old_path.unlink(missing_ok=True)

    def _reencrypt(self, db: sqlite3.Connection, old: dict[str, MasterKey], new: MasterKey) -> None:
        mark = fingerprint_key(new.key)
        with _sqlite.immediate(db, self._lock):
            for row in db.execute("SELECT * FROM secrets").fetchall():
                if row["key_id"] == new.id:
                    continue
                if row["key_id"] not in old:
                    raise TrustError(
                        f"secret {row['plugin']}/{row['name']} in {self.path} was encrypted "
                        f"with master key {row['key_id']}, neither the current one "
                        f"({next(iter(old))}) nor the new one; nothing was changed"
                    )
                value = self._decrypt(row, old[row["key_id"]])
                nonce = os.urandom(12)
                sealed = AESGCM(new.key).encrypt(
                    nonce, value, associated_data(row["plugin"], row["name"])
                )
                db.execute(
                    "UPDATE secrets SET nonce = ?, ciphertext = ?, key_id = ?, fingerprint = ? "
                    "WHERE plugin = ? AND name = ?",
                    (nonce, sealed, new.id, fingerprint(mark, value), row["plugin"], row["name"]),
                )

    # --- the file -------------------------------------------------------------------------

    def _connection(self, *, create: bool) -> sqlite3.Connection | None:
        if self._db is None:
            if not create and not self.path.exists():
                return None
            fresh = not self.path.exists()
            self._db = _sqlite.connect(self.path)
            if fresh:
                os.chmod(self.path, 0o600)
            with _sqlite.immediate(self._db, self._lock):
                _sqlite.create_schema(self._db, _SCHEMA)
        return self._db

    def _decrypt(self, row: sqlite3.Row, key: MasterKey | None = None) -> bytes:
        where = f"secret {row['plugin']}/{row['name']} in {self.path}"
        if key is None:
            key = self._master(create=False)
        if key is None:
            raise TrustError(
                f"{where}: there is no master key (set {KEY_ENV} or restore "
                f"{self.home / KEY_FILE} from the backup that holds this {SECRETS_FILE})"
            )
        if row["key_id"] != key.id:
            raise TrustError(
                f"{where} was encrypted with master key {row['key_id']}, but the key from "
                f"{key.source} is {key.id}; use the master key that was backed up with "
                f"{SECRETS_FILE}"
            )
        try:
            return AESGCM(key.key).decrypt(
                row["nonce"], row["ciphertext"], associated_data(row["plugin"], row["name"])
            )
        except InvalidTag:
            raise TrustError(
                f"{where} failed to decrypt: the row was altered or copied from another "
                "plugin or name; set it again with plugport secret set "
                f"{row['plugin']} {row['name']}"
            ) from None


def _row(db: sqlite3.Connection, plugin: str, name: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM secrets WHERE plugin = ? AND name = ?", (plugin, name)
    ).fetchone()
    return row


def _info(row: sqlite3.Row) -> SecretInfo:
    return SecretInfo(
        row["plugin"],
        row["name"],
        row["fingerprint"],
        row["created_at"],
        row["updated_at"],
        row["updated_by"],
        row["last_used_at"],
    )
