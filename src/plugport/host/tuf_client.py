"""The host's TUF client: python-tuf's ``ngclient`` verifies the registry's metadata, fetching
through the registry client (its transport, timeouts, retries and offline mode), with its
trusted metadata in the host's home (one directory per registry). Offline, the same client
runs on the metadata trusted before: only an unexpired timestamp lets it answer.

python-tuf's exceptions are translated here, at the edge: a refusal is a
:class:`SignatureError` whose ``part`` names what failed ("expired", "rollback", "signature",
"length", "hash", "metadata", "target"), a download that failed is the registry client's own
error. ngclient persists a role's metadata only once it verified, so a refusal leaves what the
host trusted as it was."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tuf.api import exceptions
from tuf.api.metadata import Metadata, TargetFile, Timestamp
from tuf.api.serialization import DeserializationError
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig

from plugport._tuf_names import target_facts, target_path
from plugport.errors import OfflineError, PlugportError, RegistryResponseError, SignatureError
from plugport.host.client import RegistryClient
from plugport.index import IndexEntry

__all__ = [
    "TUF_PATH",
    "TufListing",
    "TufRoles",
    "first_root",
    "has_trusted_root",
    "listing",
    "metadata_dir",
    "trusted_roles",
]

TUF_PATH = "/tuf"
CONFIG = UpdaterConfig(
    max_root_rotations=64,
    timestamp_max_length=16 * 1024,
    snapshot_max_length=8 * 1024 * 1024,
    targets_max_length=32 * 1024 * 1024,
    app_user_agent="plugport",
)
"""Caps on what the host reads before it knows a file's length from signed metadata (root,
timestamp; snapshot and targets lengths come signed once the timestamp verified)."""


class RegistryFetcher(FetcherInterface):
    """ngclient's downloads as registry-client requests. ``offline``: only ``timestamp.json``
    is answered, from the trusted copy (ngclient then keeps it: same version), so the client
    runs on what it verified before; any other file is not there."""

    def __init__(self, client: RegistryClient, *, offline_dir: Path | None = None) -> None:
        self.client = client
        self.offline_dir = offline_dir

    def _fetch(self, url: str) -> Iterator[bytes]:
        base = f"{self.client.url}{TUF_PATH}/"
        if not url.startswith(base):
            raise exceptions.DownloadError(f"{url} is not under {base}")
        if self.offline_dir is not None:
            if url == f"{base}timestamp.json":
                return iter(((self.offline_dir / "timestamp.json").read_bytes(),))
            raise exceptions.DownloadHTTPError(f"{url}: offline", 404)
        status, chunks = self.client.stream(url[len(self.client.url) :])
        if status != 200:
            raise exceptions.DownloadHTTPError(f"{url}: HTTP {status}", status)
        return chunks


@dataclass(frozen=True)
class TufListing:
    """What the registry's TUF targets say about the versions an operation wants."""

    url: str
    version: int
    """The snapshot version the targets came through."""
    entries: Mapping[tuple[str, str], IndexEntry]
    source = "TUF metadata"

    def find(self, name: str, version: str) -> IndexEntry | None:
        return self.entries.get((name, version))


def metadata_dir(home: Path, url: str) -> Path:
    """Where a registry's trusted TUF metadata lives in a host home."""
    return home / "trust" / "tuf" / hashlib.sha256(url.encode()).hexdigest()[:16]


def has_trusted_root(directory: Path) -> bool:
    return (directory / "root.json").is_file()


def first_root(client: RegistryClient) -> bytes | None:
    """The registry's root version 1, to trust on first use; None when it serves none (no
    such file, or something that is not a TUF root: a server that answers every path alike).
    Taking the v1 index instead of a garbled root gives an attacker at first contact nothing
    it did not have: it could serve a v1 key of its own just as well."""
    status, chunks = client.stream(f"{TUF_PATH}/1.root.json")
    if status != 200:
        return None
    body = b""
    for chunk in chunks:
        body += chunk
        if len(body) > CONFIG.root_max_length:
            raise SignatureError(
                "length", f"{client.url}: root version 1 is over {CONFIG.root_max_length} bytes"
            )
    try:
        kind = json.loads(body)["signed"]["_type"]
    except (ValueError, KeyError, TypeError):
        return None
    return body if kind == "root" else None


def listing(
    client: RegistryClient,
    directory: Path,
    wanted: Collection[tuple[str, str]],
    *,
    bootstrap: bytes | None,
) -> TufListing:
    """Refresh the registry's metadata (root, timestamp, snapshot, targets) and look up each
    wanted ``(name, version)``. ``bootstrap``: the root to start from (the operator's, or
    version 1 on first use); None starts from the root trusted before."""
    directory.mkdir(parents=True, exist_ok=True)
    offline = directory if client.offline else None
    if offline is not None:
        _check_unexpired(directory, client.url)
    with _translated(client.url, offline=client.offline):
        updater = Updater(
            str(directory),
            f"{client.url}{TUF_PATH}/",
            target_base_url=f"{client.url}{TUF_PATH}/targets/",
            fetcher=RegistryFetcher(client, offline_dir=offline),
            config=CONFIG,
            bootstrap=bootstrap,
        )
        updater.refresh()
        entries: dict[tuple[str, str], IndexEntry] = {}
        for name, version in wanted:
            info = updater.get_targetinfo(target_path(name, version))
            if info is not None:
                entries[name, version] = _entry(client.url, info, name, version)
    return TufListing(client.url, _version(directory / "snapshot.json"), entries)


def _check_unexpired(directory: Path, url: str) -> None:
    """Offline, nothing newer can be fetched, so a trusted timestamp whose expiry has passed
    is a refusal, said as one (as an expired v1 index is): left to ngclient, it would only
    ask for a newer snapshot, which the offline fetcher reports as "not cached". A file that
    cannot be read or parsed is left to ngclient, which refuses it in its own words."""
    try:
        timestamp = Metadata[Timestamp].from_bytes((directory / "timestamp.json").read_bytes())
    except (OSError, DeserializationError):
        return
    if timestamp.signed.is_expired():
        expires = timestamp.signed.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        raise SignatureError(
            "expired",
            f"{url}: the TUF timestamp this host trusts (version {timestamp.signed.version}) "
            f"expired at {expires}; offline, no newer one can be fetched: run once online",
        )


def _entry(url: str, info: TargetFile, name: str, version: str) -> IndexEntry:
    facts = target_facts(info.custom)
    sha256 = info.hashes.get("sha256")
    if facts is None or sha256 is None:
        raise SignatureError(
            "target",
            f"{url}: the TUF target of {name} {version} does not say which publisher key "
            "signed it, or has no sha256",
        )
    return IndexEntry(
        name, version, sha256, info.length, facts.key_id, facts.yanked, facts.quarantined
    )


def _version(path: Path) -> int:
    try:
        return int(json.loads(path.read_bytes())["signed"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


@dataclass(frozen=True)
class TufRoles:
    """The versions and expiry of the metadata a host trusts for a registry (for ``plugport
    trust status``): role -> (version, expires as written)."""

    roles: Mapping[str, tuple[int, str]]


def trusted_roles(directory: Path) -> TufRoles:
    found = {}
    for role in ("root", "timestamp", "snapshot", "targets"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            signed = json.loads((directory / f"{role}.json").read_bytes())["signed"]
            found[role] = (int(signed["version"]), str(signed["expires"]))
    return TufRoles(found)


_PARTS: tuple[tuple[type[Exception], str], ...] = (
    (exceptions.ExpiredMetadataError, "expired"),
    (exceptions.BadVersionNumberError, "rollback"),
    (exceptions.UnsignedMetadataError, "signature"),
    (exceptions.LengthOrHashMismatchError, "hash"),
    (exceptions.RepositoryError, "metadata"),
)


@contextlib.contextmanager
def _translated(url: str, *, offline: bool) -> Iterator[None]:
    try:
        yield
    except PlugportError:
        raise
    except exceptions.DownloadLengthMismatchError as exc:  # a DownloadError: before it
        raise SignatureError(
            "length", f"{url}: the registry's TUF metadata was refused: {exc}"
        ) from None
    except exceptions.DownloadHTTPError as exc:
        if offline:
            raise OfflineError("TUF metadata newer than the trusted copy", url) from None
        raise RegistryResponseError(
            exc.status_code, "tuf_download", f"{url}: the TUF metadata could not be read ({exc})"
        ) from None
    except exceptions.DownloadError as exc:
        if isinstance(exc.__cause__, PlugportError):
            raise exc.__cause__ from None
        if offline and isinstance(exc.__cause__, OSError):
            raise OfflineError("TUF metadata trusted before", url) from None
        raise RegistryResponseError(0, "tuf_download", f"{url}: {exc}") from None
    except exceptions.RepositoryError as exc:
        part = next(p for kind, p in _PARTS if isinstance(exc, kind))
        raise SignatureError(part, f"{url}: the registry's TUF metadata was refused: {exc}") from (
            None
        )
