"""The registry client's disk cache: metadata responses with their ETag and the time they were
fetched, and archives by content (sha256). Writes are atomic (temp file + rename in the same
directory) and private (files 0600, directories 0700), so a crash or a concurrent reader never
sees half an entry, and an entry that does not read back is simply a miss. A client that must
write nothing (a read-only command on a home that does not exist) keeps its metadata in
:class:`MemoryMetadataCache` instead."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from plugport.archive import sha256_file

__all__ = [
    "ArchiveCache",
    "CachedResponse",
    "Incoming",
    "MemoryMetadataCache",
    "MetadataCache",
    "MetadataStore",
    "private_dir",
]

ARCHIVE_SUFFIX = ".plugport"
_TEMP_PREFIX = ".tmp-"


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this user can enter (created if needed)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _write_atomic(target: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=_TEMP_PREFIX)  # mode 0600
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temp, target)
    except BaseException:
        _discard(temp)
        raise


@dataclass(frozen=True)
class CachedResponse:
    """A 200 response as stored: the request it answers, its body and its validator."""

    key: str
    body: bytes
    etag: str | None
    fetched_at: float
    status: int = 200


class MetadataStore(Protocol):
    def get(self, key: str) -> CachedResponse | None: ...

    def put(self, entry: CachedResponse) -> None: ...

    def forget(self, key: str) -> None: ...


class MemoryMetadataCache:
    """For the client's life only; nothing on disk."""

    def __init__(self) -> None:
        self._entries: dict[str, CachedResponse] = {}

    def get(self, key: str) -> CachedResponse | None:
        return self._entries.get(key)

    def put(self, entry: CachedResponse) -> None:
        self._entries[entry.key] = entry

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)


class MetadataCache:
    """One file per request key (named by the key's sha256): a JSON header line, then the
    body's bytes exactly as the registry sent them."""

    def __init__(self, root: Path) -> None:
        self.dir = private_dir(root / "meta")

    def path(self, key: str) -> Path:
        return self.dir / hashlib.sha256(key.encode()).hexdigest()

    def get(self, key: str) -> CachedResponse | None:
        try:
            raw = self.path(key).read_bytes()
        except OSError:
            return None
        header, sep, body = raw.partition(b"\n")
        try:
            meta = json.loads(header) if sep else None
        except ValueError:
            return None
        if not isinstance(meta, dict) or meta.get("key") != key:
            return None  # damaged, or (in theory) another key with the same hash
        etag, fetched_at, status = meta.get("etag"), meta.get("fetched_at"), meta.get("status")
        if not (etag is None or isinstance(etag, str)) or not isinstance(fetched_at, int | float):
            return None
        if not isinstance(status, int):
            return None
        return CachedResponse(key, body, etag, float(fetched_at), status)

    def forget(self, key: str) -> None:
        _discard(self.path(key))

    def put(self, entry: CachedResponse) -> None:
        header = {
            "key": entry.key,
            "etag": entry.etag,
            "fetched_at": entry.fetched_at,
            "status": entry.status,
        }
        _write_atomic(self.path(entry.key), json.dumps(header).encode() + b"\n" + entry.body)


@dataclass
class Incoming:
    """A download in progress: a private temp file next to where the archive will live."""

    file: BinaryIO
    path: Path


class ArchiveCache:
    """Archives at ``archives/<sha256>.plugport``; the name is a claim, so every read re-hashes."""

    def __init__(self, root: Path) -> None:
        self.dir = private_dir(root / "archives")

    def path(self, sha256: str) -> Path:
        return self.dir / f"{sha256}{ARCHIVE_SUFFIX}"

    def verified(self, sha256: str, length: int) -> Path | None:
        """The cached archive if its bytes still have this hash and length; a damaged one is
        deleted (and ``None`` returned) so that it is fetched again."""
        path = self.path(sha256)
        try:
            size = path.stat().st_size
        except OSError:
            return None
        if size != length or sha256_file(path) != (sha256, length):
            _discard(path)
            return None
        return path

    @contextlib.contextmanager
    def incoming(self) -> Iterator[Incoming]:
        """A temp file for a download; removed unless :meth:`commit` moved it into place."""
        fd, name = tempfile.mkstemp(dir=self.dir, prefix=_TEMP_PREFIX, suffix=".part")
        temp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                yield Incoming(out, temp)
        finally:
            _discard(temp)

    def commit(self, incoming: Incoming, sha256: str) -> Path:
        """Move a checked download into place (the caller has verified hash and length)."""
        incoming.file.close()
        target = self.path(sha256)
        os.replace(incoming.path, target)
        return target
