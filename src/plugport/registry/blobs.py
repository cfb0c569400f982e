"""Content-addressed storage for uploaded plugin archives: a blob is named by its sha256, so a
stored archive cannot change without changing its name, and the same upload is stored once.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import re
import tempfile
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
_FILE_MODE = 0o644
_TMP_DIR = "tmp"


@dataclass(frozen=True)
class BlobRef:
    """What a store knows about a blob once it is written; ``sha256`` is also its name."""

    sha256: str
    size: int


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

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

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
        return ref

    def open(self, sha256: str) -> BinaryIO:
        try:
            return io.BytesIO(self._blobs[check_sha256(sha256)])
        except KeyError as exc:
            raise BlobNotFoundError(sha256) from exc

    def exists(self, sha256: str) -> bool:
        return check_sha256(sha256) in self._blobs

    def delete(self, sha256: str) -> bool:
        return self._blobs.pop(check_sha256(sha256), None) is not None


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

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None) -> None:
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
            client = boto3.client("s3", endpoint_url=os.environ.get(S3_ENDPOINT_ENV) or None)
        self._client = client
        self._client_error: type[Exception] = botocore_exceptions.ClientError

    def key(self, sha256: str) -> str:
        name = _fanout(check_sha256(sha256))
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, source: BinaryIO, *, max_bytes: int) -> BlobRef:
        _check_limit(max_bytes)
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX_BYTES) as spool:
            ref = _copy_hashing(source, spool.write, max_bytes)
            if not self.exists(ref.sha256):  # content-addressed: an existing object is this one
                spool.seek(0)
                self._client.upload_fileobj(spool, self.bucket, self.key(ref.sha256))
        return ref

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


# --- configuration ---------------------------------------------------------------------------


def _unsupported(url: str, why: str) -> InvalidInputError:
    return InvalidInputError(
        f"blob store URL {url!r} {why}; use file:///PATH, memory:// or s3://BUCKET/PREFIX"
    )


def open_blob_store(url: str | None, data_dir: Path) -> BlobStore:
    """The store a setting names: none means files under ``data_dir/blobs``."""
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
        return S3BlobStore(parts.netloc, parts.path)
    raise _unsupported(url, f"has an unsupported scheme {parts.scheme or '(none)'!r}")
