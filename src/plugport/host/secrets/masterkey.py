"""The master key that encrypts the host's secrets: from ``$PLUGPORT_MASTER_KEY`` (base64url of
32 bytes) or the file ``HOME/master.key``, made (mode 0600) the first time a secret is set.

The rule it protects: a key file others can read is never used (the error names the file and
``chmod 600``), and a rotation interrupted at any step can be finished: each row records the
id of the key that encrypted it, and the previous key stays in ``master.key.old`` until every
row has been re-encrypted in one transaction."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from plugport._dirs import write_atomic
from plugport.errors import InvalidInputError

__all__ = [
    "KEY_BYTES",
    "KEY_ENV",
    "KEY_FILE",
    "OLD_KEY_FILE",
    "MasterKey",
    "decode_key",
    "encode_key",
    "key_id",
    "load_master_key",
    "read_key_file",
    "rotate_master_key",
    "write_key_file",
]

KEY_ENV = "PLUGPORT_MASTER_KEY"
KEY_FILE = "master.key"
OLD_KEY_FILE = "master.key.old"
KEY_BYTES = 32


@dataclass(frozen=True)
class MasterKey:
    key: bytes = b""
    source: str = ""
    """Where it came from: the environment variable's name or the file's path."""

    @property
    def id(self) -> str:
        return key_id(self.key)

    def __repr__(self) -> str:  # never the key itself
        return f"MasterKey(id={self.id!r}, source={self.source!r})"


def key_id(key: bytes) -> str:
    """The first 8 hex digits of the key's sha256: names a key without giving it away."""
    return hashlib.sha256(key).hexdigest()[:8]


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def decode_key(text: str, *, where: str) -> bytes:
    """A key written as base64url (padding optional); ``where`` names its origin in errors."""
    cleaned = text.strip()
    try:
        key = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise InvalidInputError(
            f"{where}: not a master key; write {KEY_BYTES} random bytes as base64url, e.g. "
            "python -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'"
        )
    return key


def read_key_file(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InvalidInputError(
            f"{path}: mode {mode:o} lets others read the master key; run chmod 600 {path} "
            "(and consider the secrets exposed if others could read it)"
        )
    return decode_key(path.read_text(), where=str(path))


def write_key_file(path: Path, key: bytes) -> None:
    """Replace ``path`` with ``key`` (mode 0600 before it has its name)."""
    write_atomic(path, (encode_key(key) + "\n").encode(), mode=0o600)


def _create_key_file(path: Path) -> None:
    """A new random key at ``path``, unless another process made one first (then that one
    stands: ``link`` never replaces)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write((encode_key(os.urandom(KEY_BYTES)) + "\n").encode())
        os.chmod(name, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(name, path)
    finally:
        Path(name).unlink(missing_ok=True)


def load_master_key(home: Path, *, create: bool) -> MasterKey | None:
    """The environment variable wins over the file; ``create`` makes the file when neither
    exists (the first secret set), else there is no key (None)."""
    if env := os.environ.get(KEY_ENV):
        return MasterKey(decode_key(env, where=KEY_ENV), KEY_ENV)
    path = home / KEY_FILE
    if not path.exists():
        if not create:
            return None
        _create_key_file(path)
    return MasterKey(read_key_file(path), str(path))


def rotate_master_key(home: Path, *, new_key: bytes | None = None) -> str:
    """Re-encrypt every secret of ``home`` under a new master key and return its id. With the
    key in ``$PLUGPORT_MASTER_KEY`` the operator supplies ``new_key`` (and puts it in the
    variable afterwards); with the key file a new one is made unless given."""
    from plugport.host.secrets.store import EncryptedSecretStore

    store = EncryptedSecretStore(home)
    try:
        return store.rotate_master_key(new_key)
    finally:
        store.close()
