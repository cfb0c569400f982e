"""The signed index: the registry's one statement of which archives exist (name, version, sha256,
length, publisher key, yanked), signed with the registry key, versioned against rollback and
expiring against freeze attacks. Building and verifying are pure; only the key file is I/O.

Rollback rule: a host that has seen index version N accepts only versions >= N, and a version
equal to N only if its signed statement is byte-identical to the one it saw (compared through
:attr:`SignedIndex.digest`). A published version never changes; re-signing anything, even just to
move the expiry forward, takes a new version number.

Quarantine rule: a version the registry quarantined is never an entry of a v1 statement (its
field set is closed, and hosts that predate quarantine refuse a document with a field they do
not know, so a flag here would break them for every plugin); leaving it out makes every host,
old or new, refuse it even pinned. TUF targets carry it flagged instead (``_tuf_names``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from plugport._documents import DocumentReader
from plugport.errors import InvalidInputError, SignatureError
from plugport.signing import (
    ALGORITHM,
    PUBLIC_KEY_SUFFIX,
    fingerprint,
    generate_private_key,
    key_id,
    load_private_key,
    private_key_pem,
    public_key_pem,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = [
    "DEFAULT_TTL",
    "INDEX_TYPE",
    "IndexEntry",
    "SignedIndex",
    "build_index",
    "load_or_create_registry_key",
    "public_key_document",
    "sign_index",
    "verify_index",
]

INDEX_TYPE = "plugport/index/v1"
DEFAULT_TTL = timedelta(hours=24)

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DOCUMENT_FIELDS = frozenset({"signed", "signatures"})
_STATEMENT_FIELDS = frozenset({"_type", "version", "issued_at", "expires_at", "entries"})
_SIGNATURE_FIELDS = frozenset({"keyid", "sig"})
_SIGNATURE_BYTES = 64
_HEX_DIGITS = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class IndexEntry:
    """One published archive: what a host needs to fetch it and check what it fetched."""

    name: str
    version: str
    sha256: str
    length: int
    key_id: str  # the publisher key that signed the archive
    yanked: bool
    quarantined: bool = False
    """The registry refuses it even pinned: only TUF targets say so; a v1 index leaves such a
    version out (see the module docstring), so its entries are never quarantined."""


@dataclass(frozen=True)
class SignedIndex:
    """A verified index. ``digest`` is the sha256 of the signed statement's canonical bytes:
    keep it with ``version`` to enforce the rollback rule on the next fetch."""

    version: int
    issued_at: datetime
    expires_at: datetime
    entries: tuple[IndexEntry, ...]
    key_id: str  # the registry key whose signature verified
    signature: bytes
    digest: str
    source = "signed index"

    def find(self, name: str, version: str) -> IndexEntry | None:
        return next((e for e in self.entries if (e.name, e.version) == (name, version)), None)


_ENTRY_FIELDS = frozenset(f.name for f in fields(IndexEntry)) - {"quarantined"}
"""The closed field set of a v1 entry: what every host since v1 reads."""


# --- canonical statement (pure) --------------------------------------------------------------


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX_DIGITS


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _entry_problem(entry: IndexEntry) -> str | None:
    """What is wrong with an entry, worded for either side; None when it is fine."""
    for name in ("name", "version"):
        value = getattr(entry, name)
        if not isinstance(value, str) or not value:
            return f"{name} is not a non-empty string"
    if not _is_hex64(entry.sha256):
        return "sha256 is not 64 lowercase hex digits"
    if not _is_count(entry.length):
        return "length is not a non-negative integer"
    if not _is_hex64(entry.key_id):
        return "key_id is not 64 lowercase hex digits"
    if not isinstance(entry.yanked, bool):
        return "yanked is not true or false"
    return None


def _format_time(moment: datetime) -> str:
    return moment.strftime(_TIME_FORMAT)


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInputError(f"{what} must be timezone-aware (use datetime.now(UTC))")
    return moment.astimezone(UTC)


def _statement(
    entries: tuple[IndexEntry, ...], version: int, issued_at: datetime, expires_at: datetime
) -> dict[str, Any]:
    return {
        "_type": INDEX_TYPE,
        "version": version,
        "issued_at": _format_time(issued_at),
        "expires_at": _format_time(expires_at),
        "entries": [
            {name: getattr(entry, name) for name in sorted(_ENTRY_FIELDS)} for entry in entries
        ],
    }


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _sorted_entries(entries: Iterable[IndexEntry]) -> tuple[IndexEntry, ...]:
    return tuple(sorted(entries, key=lambda entry: (entry.name, entry.version)))


def _duplicate(entries: tuple[IndexEntry, ...]) -> IndexEntry | None:
    """The first entry that repeats its predecessor's name and version (entries are sorted)."""
    return next(
        (
            entry
            for before, entry in pairwise(entries)
            if (before.name, before.version) == (entry.name, entry.version)
        ),
        None,
    )


def _prepare(
    entries: Iterable[IndexEntry], version: int, now: datetime, ttl: timedelta
) -> dict[str, Any]:
    if not _is_count(version):
        raise InvalidInputError(f"index version must be a non-negative integer, not {version!r}")
    if ttl < timedelta(seconds=1):
        raise InvalidInputError(f"index ttl must be at least one second, not {ttl}")
    ordered = _sorted_entries(entries)
    for entry in ordered:
        if entry.quarantined is not False:
            raise InvalidInputError(
                f"index entry {entry.name!r} {entry.version!r}: a quarantined version is left "
                "out of a v1 index, never listed"
            )
        if problem := _entry_problem(entry):
            raise InvalidInputError(f"index entry {entry.name!r} {entry.version!r}: {problem}")
    if dup := _duplicate(ordered):
        raise InvalidInputError(f"index lists {dup.name} {dup.version} twice")
    # Whole seconds: the statement's times are what is signed, so they must round-trip exactly.
    issued_at = _utc(now, "now").replace(microsecond=0)
    expires_at = (issued_at + ttl).replace(microsecond=0)
    return _statement(ordered, version, issued_at, expires_at)


def build_index(
    entries: Iterable[IndexEntry],
    *,
    version: int,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> bytes:
    """The canonical statement bytes that get signed: sorted keys, entries sorted by (name,
    version), no whitespace, whole-second UTC times ending in ``Z``."""
    return _canonical(_prepare(entries, version, now, ttl))


def sign_index(
    private_key: ed25519.Ed25519PrivateKey,
    entries: Iterable[IndexEntry],
    *,
    version: int,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> bytes:
    """The published document ``{"signed": statement, "signatures": [{"keyid", "sig"}]}``; the
    signature covers the statement's canonical bytes, whatever the document's formatting."""
    statement = _prepare(entries, version, now, ttl)
    signature = private_key.sign(_canonical(statement))
    document = {
        "signed": statement,
        "signatures": [
            {
                "keyid": key_id(private_key.public_key()),
                "sig": base64.b64encode(signature).decode("ascii"),
            }
        ],
    }
    # Compact: an index with 100,000 entries is served often, and whitespace buys nothing.
    return _canonical(document)


# --- verification (pure) ---------------------------------------------------------------------


_READER = DocumentReader("statement", "index document")
_malformed = _READER.malformed
_no_duplicates = _READER.no_duplicates
_check_fields = _READER.check_fields


def _parse_time(value: object, where: str) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            pass
        else:
            # strptime accepts "2025-1-2T3:4:5Z"; only the one canonical spelling is signed.
            if _format_time(moment) == value:
                return moment
    raise _malformed(f"{where} is not a UTC time like 2025-01-31T12:00:00Z")


def _parse_entry(obj: object, position: int) -> IndexEntry:
    where = f"entry {position}"
    raw = _check_fields(obj, _ENTRY_FIELDS, where)
    entry = IndexEntry(**raw)
    if problem := _entry_problem(entry):
        raise _malformed(f"{where}: {problem}")
    return entry


def _parse_statement(obj: object) -> tuple[int, datetime, datetime, tuple[IndexEntry, ...]]:
    statement = _check_fields(obj, _STATEMENT_FIELDS, "signed")
    if statement["_type"] != INDEX_TYPE:
        raise _malformed(f"signed _type is {statement['_type']!r}, not {INDEX_TYPE!r}")
    version = statement["version"]
    if not _is_count(version):
        raise _malformed("version is not a non-negative integer")
    issued_at = _parse_time(statement["issued_at"], "issued_at")
    expires_at = _parse_time(statement["expires_at"], "expires_at")
    if expires_at <= issued_at:
        raise _malformed("expires_at is not after issued_at")
    raw_entries = statement["entries"]
    if not isinstance(raw_entries, list):
        raise _malformed("entries is not a list")
    entries = tuple(_parse_entry(raw, position) for position, raw in enumerate(raw_entries))
    ordered = _sorted_entries(entries)
    if dup := _duplicate(ordered):
        raise _malformed(f"entries list {dup.name} {dup.version} twice")
    return version, issued_at, expires_at, ordered


def _parse_signatures(obj: object) -> dict[str, bytes]:
    if not isinstance(obj, list):
        raise _malformed("signatures is not a list")
    signatures: dict[str, bytes] = {}
    for position, raw in enumerate(obj):
        where = f"signature {position}"
        item = _check_fields(raw, _SIGNATURE_FIELDS, where)
        keyid, sig = item["keyid"], item["sig"]
        if not _is_hex64(keyid):
            raise _malformed(f"{where} keyid is not 64 lowercase hex digits")
        if keyid in signatures:
            raise _malformed(f"key {fingerprint(keyid)}… signed twice")
        if not isinstance(sig, str):
            raise _malformed(f"{where} sig is not a string")
        try:
            signatures[keyid] = base64.b64decode(sig, validate=True)
        except ValueError as exc:  # binascii.Error is a ValueError
            raise SignatureError("signature", f"{where} is not valid base64") from exc
    return signatures


def verify_index(
    document: bytes,
    public_key: ed25519.Ed25519PublicKey,
    *,
    now: datetime,
    previous_version: int | None = None,
    previous_digest: str | None = None,
) -> SignedIndex:
    """Accept only a well-formed index signed by this key, not older than what was seen before,
    and not expired. On refusal, ``SignatureError.part`` is "statement" (malformed),
    "signature" (not signed by this key), "rollback" or "expired".

    ``previous_version`` and ``previous_digest`` come from the last index accepted; with only the
    version, an index of the same version is accepted without the byte-identity check.
    """
    now = _utc(now, "now")
    try:
        parsed = json.loads(document, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:  # ValueError includes bad UTF-8
        raise _malformed("not JSON") from exc
    doc = _check_fields(parsed, _DOCUMENT_FIELDS, "document")
    version, issued_at, expires_at, entries = _parse_statement(doc["signed"])
    signatures = _parse_signatures(doc["signatures"])

    # Re-encoded from the parsed values, so the signature covers exactly what is returned.
    canonical = _canonical(_statement(entries, version, issued_at, expires_at))
    expected = key_id(public_key)
    signature = signatures.get(expected)
    if signature is None:
        signers = ", ".join(f"{fingerprint(k)}…" for k in signatures) or "no key"
        raise SignatureError(
            "signature",
            f"the index is not signed by the registry key {fingerprint(expected)}… "
            f"(signed by {signers})",
        )
    if len(signature) != _SIGNATURE_BYTES:
        raise SignatureError(
            "signature", f"signature is {len(signature)} bytes, not {_SIGNATURE_BYTES}"
        )
    try:
        public_key.verify(signature, canonical)
    except InvalidSignature as exc:
        raise SignatureError(
            "signature",
            "the index signature does not verify: its content or its signature was altered",
        ) from exc

    digest = hashlib.sha256(canonical).hexdigest()
    if previous_version is not None:
        if version < previous_version:
            raise SignatureError(
                "rollback",
                f"index version {version} is older than version {previous_version} already "
                "seen (rollback)",
            )
        if version == previous_version and previous_digest not in (None, digest):
            raise SignatureError(
                "rollback",
                f"index version {version} differs from the version {version} already seen; "
                "a published index version never changes",
            )
    if now >= expires_at:
        raise SignatureError(
            "expired",
            f"the index expired at {_format_time(expires_at)} (now {_format_time(now)}); "
            "the registry has not re-signed it",
        )
    return SignedIndex(
        version=version,
        issued_at=issued_at,
        expires_at=expires_at,
        entries=entries,
        key_id=expected,
        signature=signature,
        digest=digest,
    )


# --- the registry key ------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes, mode: int, *, exclusive: bool) -> bool:
    """Give ``path`` complete contents in one step (temp file, then ``link`` or ``replace``), so
    a concurrent reader never sees a half-written key. With ``exclusive``, False means another
    writer got there first and its file was kept."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)  # mkstemp's 0600, or the umask, would decide otherwise
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if not exclusive:
            os.replace(tmp_name, path)
            return True
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


def load_or_create_registry_key(path: Path) -> ed25519.Ed25519PrivateKey:
    """The registry's index signing key: read from ``path`` (PEM, unencrypted, mode 0600), or
    created there on first start with its public half beside it (``.pub``). Safe when several
    server processes start at once: one key wins and all of them use it."""
    if path.exists():
        return load_private_key(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = generate_private_key()
    if not _write_atomic(path, private_key_pem(key), 0o600, exclusive=True):
        return load_private_key(path)
    # Replaced, not kept: a .pub left over from an earlier key would mislead whoever pins it.
    public_path = path.with_name(path.name + PUBLIC_KEY_SUFFIX)
    _write_atomic(
        public_path, public_key_pem(key.public_key()).encode("ascii"), 0o644, exclusive=False
    )
    return key


def public_key_document(
    key: ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey,
) -> dict[str, Any]:
    """What the registry serves so hosts can pin its key: ``{"keys": [{keyid, algorithm,
    public_key_pem}]}``."""
    public = key.public_key() if isinstance(key, ed25519.Ed25519PrivateKey) else key
    return {
        "keys": [
            {
                "keyid": key_id(public),
                "algorithm": ALGORITHM,
                "public_key_pem": public_key_pem(public),
            }
        ]
    }
