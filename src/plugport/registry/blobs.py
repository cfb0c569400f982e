"""Content-addressed storage for uploaded plugin archives: a blob is named by its sha256, so a
stored archive cannot change without changing its name, and the same upload is stored once.

Every store can list what it holds with the time each blob was last written (a ``put`` of bytes
it already holds counts as a write), and drop the leftovers of writes that never finished, so
that blobs no version refers to (a publish killed between storing its blob and committing its
row) can be collected: see :mod:`plugport.registry.orphans`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol, cast
from urllib.parse import urlsplit
from urllib.request import url2pathname

from plugport.errors import ArchiveLimitError, InvalidInputError, PlugportError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "BLOB_URL_SCHEMES",
    "S3_ENDPOINT_ENV",
    "BlobNotFoundError",
    "BlobRef",
    "BlobStamp",
    "BlobStore",
    "LocalBlobStore",
    "MemoryBlobStore",
    "S3BlobStore",
    "check_sha256",
    "open_blob_store",
]

BLOB_URL_SCHEMES = ("file", "memory", "s3")
S3_ENDPOINT_ENV = "PLUGPORT_S3_ENDPOINT_URL"

_CHUNK = 1024 * 1024
# Uploads up to this size stay in memory on their way to S3; bigger ones spill to a temp file.
_SPOOL_MAX_BYTES = 8 * 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEX2 = re.compile(r"[0-9a-f]{2}")
_FILE_MODE = 0o644
_TMP_DIR = "tmp"


@dataclass(frozen=True)
class BlobRef:
    """What a store knows about a blob once it is written; ``sha256`` is also its name."""

    sha256: str
    size: int


@dataclass(frozen=True)
class BlobStamp:
    """A blob in a listing: its name, and when it was last written (seconds since the epoch)."""

    sha256: str
    written_at: float


class BlobNotFoundError(PlugportError, LookupError):
    """No blob has this hash; a ``LookupError`` too, so code written for mappings catches it."""

    def __init__(self, sha256: str) -> None:
        self.sha256 = sha256
        super().__init__(f"no blob with sha256 {sha256}")


class BlobStore(Protocol):
    """Where archives live. ``put`` computes the name; nobody else gets to choose it."""

    def put(self, source: BinaryIO, *, max_bytes: int) -> BlobRef:
        """Store everything ``source`` yields, refusing more than ``max_bytes`` and leaving
        nothing behind when it refuses."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """A readable stream of the blob; :class:`BlobNotFoundError` when there is none."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> bool:
        """True when a blob was removed, False when there was none."""
        ...

    def stamps(self) -> Iterator[BlobStamp]:
        """Every blob held and when it was last written; a ``put`` of a blob already held
        renews its time, so an upload in progress never finds its blob looking old."""
        ...

    def discard_partial(self, before: float) -> int:
        """Remove what writes begun before ``before`` (epoch seconds) left unfinished (temp
        files, multipart uploads); how many were removed."""
        ...


def check_sha256(sha256: object) -> str:
    """Refuse anything but 64 lowercase hex digits before it gets near a path or a key, so a
    crafted "hash" such as ``../../etc/passwd`` never names a file."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise InvalidInputError(f"{sha256!r} is not a sha256 (64 lowercase hex digits)")
    return sha256


def _check_limit(max_bytes: int) -> None:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise InvalidInputError(f"max_bytes must be a non-negative integer, not {max_bytes!r}")


def _copy_hashing(source: IO[bytes], write: Callable[[bytes], object], max_bytes: int) -> BlobRef:
    """Copy ``source`` through ``write`` while hashing, stopping as soon as it is too big."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise ArchiveLimitError(
                "max_archive_bytes",
                size,
                max_bytes,
                f"the upload is larger than {max_bytes} bytes (read {size} before stopping)",
            )
        digest.update(chunk)
        write(chunk)
    return BlobRef(sha256=digest.hexdigest(), size=size)


def _fanout(sha256: str) -> str:
    # Two levels of 256 directories keep any one directory small at millions of blobs.
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


# --- local disk ------------------------------------------------------------------------------


class LocalBlobStore:
    """Blobs as files under ``root/ab/cd/<sha256>``, each written to ``root/tmp`` first and
    renamed into place, so a reader never sees a partial blob and a crash leaves only temp files.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / _TMP_DIR
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / _fanout(check_sha256(sha256))

    def put(self, source: BinaryIO, *, max_bytes: int) -> BlobRef:
        _check_limit(max_bytes)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix="upload-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as file:
                ref = _copy_hashing(source, file.write, max_bytes)
                file.flush()
                os.fchmod(file.fileno(), _FILE_MODE)  # mkstemp makes 0600
                os.fsync(file.fileno())
            final = self.root / _fanout(ref.sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            # Replacing an existing blob is harmless (same name, same bytes) and atomic.
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(final.parent)
        return ref

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self.path(sha256).open("rb")
        except FileNotFoundError as exc:
            raise BlobNotFoundError(sha256) from exc

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def delete(self, sha256: str) -> bool:
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        # Fan-out directories stay: removing them would race with a concurrent put.
        return True

    def stamps(self) -> Iterator[BlobStamp]:
        for first in _hex_dirs(self.root):
            for second in _hex_dirs(first):
                for entry in os.scandir(second):
                    if _SHA256.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                        with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                            yield BlobStamp(entry.name, entry.stat().st_mtime)

    def discard_partial(self, before: float) -> int:
        removed = 0
        for entry in os.scandir(self.tmp_dir):
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < before:
                    os.unlink(entry.path)
                    removed += 1
        return removed


def _hex_dirs(directory: Path) -> list[Path]:
    """The fan-out directories (two hex digits) under ``directory``; ``tmp`` and strays not."""
    return sorted(
        Path(entry.path)
        for entry in os.scandir(directory)
        if len(entry.name) == 2 and _HEX2.fullmatch(entry.name) and entry.is_dir()
    )


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable, not just the file's bytes."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- in memory -------------------------------------------------------------------------------


class MemoryBlobStore:
    """The in-memory fake: the same contract as the real stores, gone when the process ends."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._blobs: dict[str, bytes] = {}
        self._written: dict[str, float] = {}
        self._clock = clock

    def __len__(self) -> int:
        return len(self._blobs)

    def __iter__(self) -> Iterator[str]:
        """The hashes held, so a test can check that a refusal stored nothing."""
        return iter(list(self._blobs))

    def put(self, source: BinaryIO, *, max_bytes: int) -> BlobRef:
        _check_limit(max_bytes)
        buffer = io.BytesIO()
        ref = _copy_hashing(source, buffer.write, max_bytes)
        self._blobs[ref.sha256] = buffer.getvalue()
        self._written[ref.sha256] = self._clock()
        return ref

    def open(self, sha256: str) -> BinaryIO:
        try:
            return io.BytesIO(self._blobs[check_sha256(sha256)])
        except KeyError as exc:
            raise BlobNotFoundError(sha256) from exc

    def exists(self, sha256: str) -> bool:
        return check_sha256(sha256) in self._blobs

    def delete(self, sha256: str) -> bool:
        self._written.pop(check_sha256(sha256), None)
        return self._blobs.pop(sha256, None) is not None

    def stamps(self) -> Iterator[BlobStamp]:
        for sha256, written_at in list(self._written.items()):
            yield BlobStamp(sha256, written_at)

    def discard_partial(self, before: float) -> int:
        return 0  # a put either completes or leaves nothing


# --- S3 --------------------------------------------------------------------------------------

_S3_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def _s3_error_code(exc: Exception) -> str:
    response: Any = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3BlobStore:
    """Blobs as objects ``prefix/ab/cd/<sha256>`` in one bucket, for registry nodes that share
    storage. The key is the hash, so an upload is spooled locally until the hash is known."""

    # boto3 ships no type information; the client is ``Any`` at this boundary.
    _client: Any

    def __init__(
        self, bucket: str, prefix: str = "", *, client: Any = None, endpoint_url: str | None = None
    ) -> None:
        if not bucket:
            raise InvalidInputError("an S3 blob store needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        try:
            # Imported by name so mypy sees Any whether or not the optional extra is installed.
            boto3: Any = importlib.import_module("boto3")
            botocore_exceptions: Any = importlib.import_module("botocore.exceptions")
        except ImportError as exc:
            raise InvalidInputError(
                "S3 blob storage needs boto3: pip install 'plugport[s3]'"
            ) from exc
        if client is None:
            endpoint_url = endpoint_url or os.environ.get(S3_ENDPOINT_ENV) or None
            client = boto3.client("s3", endpoint_url=endpoint_url)
        self._client = client
        self._client_error: type[Exception] = botocore_exceptions.ClientError

    def key(self, sha256: str) -> str:
        name = _fanout(check_sha256(sha256))
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, source: BinaryIO, *, max_bytes: int) -> BlobRef:
        _check_limit(max_bytes)
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX_BYTES) as spool:
            ref = _copy_hashing(source, spool.write, max_bytes)
            if self.exists(ref.sha256):  # content-addressed: an existing object is this one
                self._touch(ref.sha256)
            else:
                spool.seek(0)
                self._client.upload_fileobj(spool, self.bucket, self.key(ref.sha256))
        return ref

    def _touch(self, sha256: str) -> None:
        """Renew the object's LastModified (a copy onto itself, inside S3), so that an orphan
        published again is not collected as an old one."""
        key = self.key(sha256)
        self._client.copy_object(
            Bucket=self.bucket,
            Key=key,
            CopySource={"Bucket": self.bucket, "Key": key},
            Metadata={"written-at": str(int(time.time()))},
            MetadataDirective="REPLACE",
        )

    def open(self, sha256: str) -> BinaryIO:
        """A forward-only stream straight from S3 (``read`` and ``close``; no ``seek``)."""
        key = self.key(sha256)
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        except self._client_error as exc:
            if _s3_error_code(exc) in _S3_MISSING:
                raise BlobNotFoundError(sha256) from exc
            raise
        return cast("BinaryIO", response["Body"])

    def exists(self, sha256: str) -> bool:
        key = self.key(sha256)
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except self._client_error as exc:
            if _s3_error_code(exc) in _S3_MISSING:
                return False
            raise
        return True

    def delete(self, sha256: str) -> bool:
        # S3 deletes a missing key without complaint, so ask first to answer truthfully.
        if not self.exists(sha256):
            return False
        self._client.delete_object(Bucket=self.bucket, Key=self.key(sha256))
        return True

    def stamps(self) -> Iterator[BlobStamp]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = str(item["Key"]).rsplit("/", 1)[-1]
                if _SHA256.fullmatch(name) and item["Key"] == self.key(name):
                    yield BlobStamp(name, item["LastModified"].timestamp())

    def discard_partial(self, before: float) -> int:
        """Abort multipart uploads begun before ``before`` (``upload_fileobj`` uses them for
        big archives; a killed one keeps its parts, billed, until aborted)."""
        removed = 0
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""
        )
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Initiated"].timestamp() < before:
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        return removed


# --- configuration ---------------------------------------------------------------------------


def _unsupported(url: str, why: str) -> InvalidInputError:
    return InvalidInputError(
        f"blob store URL {url!r} {why}; use file:///PATH, memory:// or s3://BUCKET/PREFIX"
    )


def open_blob_store(
    url: str | None, data_dir: Path, *, s3_endpoint_url: str | None = None
) -> BlobStore:
    """The store a setting names: none means files under ``data_dir/blobs``;
    ``s3_endpoint_url`` is the S3-compatible server an ``s3://`` URL is on (default AWS)."""
    if url is None:
        return LocalBlobStore(data_dir / "blobs")
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise _unsupported(url, "names a remote host; give an absolute path")
        if parts.query or parts.fragment:
            raise _unsupported(url, "has a query or fragment")
        if not parts.path:
            return LocalBlobStore(data_dir / "blobs")
        return LocalBlobStore(Path(url2pathname(parts.path)))
    if parts.scheme == "memory":
        if parts.netloc or parts.path.strip("/") or parts.query or parts.fragment:
            raise _unsupported(url, "has more than the scheme")
        return MemoryBlobStore()
    if parts.scheme == "s3":
        if not parts.netloc:
            raise _unsupported(url, "names no bucket")
        if parts.query or parts.fragment:
            raise _unsupported(url, "has a query or fragment")
        return S3BlobStore(parts.netloc, parts.path, endpoint_url=s3_endpoint_url)
    raise _unsupported(url, f"has an unsupported scheme {parts.scheme or '(none)'!r}")
