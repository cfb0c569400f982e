"""A registry's TUF repository in memory, served to the host's TUF client, for the attack
tests; in the spirit of python-tuf's ``tests/repository_simulator.py``.

The repository is built by the registry's own rules (:func:`next_metadata`, :func:`new_root`,
:func:`rotated_root`, the online keys and the namespaces' derived keys), so what a host meets
here is what a registry publishes. Every served file is a name under ``/tuf/`` in
:attr:`TufSimulator.files`, which a test may replace with anything: metadata signed by any
key, with any version or expiry (the ``timestamp``/``snapshot``/``namespace_role`` builders),
or bytes that are not metadata at all. The host side (:class:`TufHost`) is the real
:func:`~plugport.host.tuf_client.listing` over a :class:`RegistryClient` whose transport is
this simulator. python-tuf's client reads the real clock, so metadata is dated from
``datetime.now(UTC)`` and expired metadata is made with a negative lifetime."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ed25519
from securesystemslib.signer import CryptoSigner, Key, Signer
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

from plugport._tuf_names import namespace_role
from plugport.host.client import RegistryClient
from plugport.host.tuf_client import TufListing, listing
from plugport.index import IndexEntry
from plugport.registry.tuf.keys import OnlineKeys, new_online_keys, signer_for
from plugport.registry.tuf.rules import (
    DEFAULT_LIFETIMES,
    Lifetimes,
    Published,
    Signers,
    Written,
    new_root,
    next_metadata,
    rotated_root,
    serialized,
)

__all__ = [
    "PUBLISHER_KEY_ID",
    "URL",
    "TufHost",
    "TufSimulator",
    "changed",
    "expired",
    "new_signer",
    "utcnow",
]

URL = "https://registry.test"
PUBLISHER_KEY_ID = hashlib.sha256(b"the publisher's key").hexdigest()
_DOWNLOAD = "/api/v1/plugins/{name}/versions/{version}/download"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def new_signer() -> CryptoSigner:
    """A fresh Ed25519 key: an attacker's, or an operator's next one."""
    return signer_for(ed25519.Ed25519PrivateKey.generate())


def _sign(signed: Root | Timestamp | Snapshot | Targets, signers: Iterable[Signer]) -> bytes:
    metadata: Metadata[Any] = Metadata(signed)
    for signer in signers:
        metadata.sign(signer, append=True)
    return serialized(metadata)


class TufSimulator:
    """One registry: its catalogue (``entries`` and their archives), its keys, the metadata
    its rules published (:attr:`published`) and the files it serves (:attr:`files`, which
    attacks change). Requests are recorded in :attr:`requests`."""

    def __init__(self, *, root_keys: int = 1, threshold: int = 1) -> None:
        self.root_signers: list[Signer] = [new_signer() for _ in range(root_keys)]
        self.online: OnlineKeys = new_online_keys()
        self.generations: dict[str, int] = {}
        self.entries: dict[tuple[str, str], IndexEntry] = {}
        self.archives: dict[tuple[str, str], bytes] = {}
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        root = new_root(self.root_signers, threshold, self.online.public(), now=utcnow())
        self.first_root = serialized(root)
        """Root version 1: what a host's operator configures."""
        self._serve_root(root)
        self.published = Published(root)
        self.publish()  # as `plugport registry tuf init` does

    # --- the registry's own work ----------------------------------------------------------

    @property
    def signers(self) -> Signers:
        return self.online.signers(lambda namespace: self.generations.get(namespace, 1))

    def add(self, name: str, version: str, *, data: bytes | None = None) -> IndexEntry:
        """A new archive in the catalogue (published at the next :meth:`publish`)."""
        data = data if data is not None else f"archive of {name} {version}".encode()
        entry = IndexEntry(
            name, version, hashlib.sha256(data).hexdigest(), len(data), PUBLISHER_KEY_ID, False
        )
        self.entries[name, version] = entry
        self.archives[name, version] = data
        return entry

    def remove(self, name: str, version: str) -> None:
        del self.entries[name, version]

    def publish(
        self, *, now: datetime | None = None, lifetimes: Lifetimes = DEFAULT_LIFETIMES
    ) -> list[Written]:
        """What the registry does on a ``timestamp.json`` request: sign what changed.
        Published metadata is read back from its bytes, as the registry's store does."""
        newest, written = next_metadata(
            self.published,
            list(self.entries.values()),
            self.signers,
            now=now or utcnow(),
            lifetimes=lifetimes,
        )
        for item in written:
            self.files[f"{item.version}.{item.role}.json"] = item.document
            if item.role == "timestamp":
                self.files["timestamp.json"] = item.document
        self.published = _reread(newest)
        return written

    def rotate_root(
        self,
        *,
        online: Mapping[str, Key] | None = None,
        new_root_signers: Sequence[Signer] | None = None,
        threshold: int | None = None,
    ) -> Metadata[Root]:
        """The next root, signed by the offline keys as ``plugport registry tuf rotate``
        does, and served."""
        root = rotated_root(
            self.published.root,
            self.root_signers,
            now=utcnow(),
            new_root_signers=new_root_signers,
            threshold=threshold,
            online=online,
        )
        if new_root_signers is not None:
            self.root_signers = list(new_root_signers)
        self._serve_root(root)
        self.published = replace(self.published, root=root)
        return root

    def replace_online_key(self, role: str) -> Signer:
        """A leaked online key replaced: a new key in root, every role it signs signed again.
        Returns the old (leaked) signer."""
        leaked: Signer = getattr(self.signers, role)
        self.online = self.online.replaced(role)
        self.rotate_root(online={role: self.online.public()[role]})
        self.publish()
        return leaked

    def _serve_root(self, root: Metadata[Root]) -> None:
        document = serialized(root)
        self.files[f"{root.signed.version}.root.json"] = document
        self.files["root.json"] = document

    # --- what an attacker (or a test) makes -----------------------------------------------

    def sign(self, signed: Root | Timestamp | Snapshot | Targets, *signers: Signer) -> bytes:
        return _sign(signed, signers)

    def root(
        self,
        *,
        version: int | None = None,
        online: Mapping[str, Key] | None = None,
        root_keys: Collection[Signer] | None = None,
        threshold: int | None = None,
        signers: Collection[Signer],
    ) -> bytes:
        """A root with any version, keys and signatures (unlike :func:`rotated_root`, it checks
        nothing)."""
        root = Metadata[Root].from_bytes(serialized(self.published.root)).signed
        root.version = version if version is not None else root.version + 1
        for role, key in (online or {}).items():
            for keyid in list(root.roles[role].keyids):
                root.revoke_key(keyid, role)
            root.add_key(key, role)
        if root_keys is not None:
            for keyid in list(root.roles["root"].keyids):
                root.revoke_key(keyid, "root")
            for signer in root_keys:
                root.add_key(signer.public_key, "root")
        if threshold is not None:
            root.roles["root"].threshold = threshold
        return _sign(root, signers)

    def timestamp(
        self,
        *,
        snapshot: bytes | None = None,
        version: int | None = None,
        expires: datetime | None = None,
        signer: Signer | None = None,
    ) -> bytes:
        """A timestamp describing ``snapshot`` (by default the newest published), one version
        above the newest published, signed by the timestamp key unless ``signer`` is given."""
        published = self.published.timestamp
        assert published is not None
        document = snapshot if snapshot is not None else serialized(self._snapshot())
        described = Metadata[Snapshot].from_bytes(document).signed.version
        signed = Timestamp(
            version=version if version is not None else published.signed.version + 1,
            expires=expires or utcnow() + DEFAULT_LIFETIMES.timestamp,
            snapshot_meta=MetaFile(
                described, len(document), {"sha256": hashlib.sha256(document).hexdigest()}
            ),
        )
        return _sign(signed, [signer or self.signers.timestamp])

    def snapshot(
        self,
        *,
        meta: Mapping[str, int | None] | None = None,
        version: int | None = None,
        expires: datetime | None = None,
        signer: Signer | None = None,
    ) -> bytes:
        """A snapshot listing the newest published versions, changed by ``meta`` (file name
        -> version, None to leave the file out), one version above the newest published."""
        published = self._snapshot()
        listed = {name: meta.version for name, meta in published.signed.meta.items()}
        for name, number in (meta or {}).items():
            if number is None:
                listed.pop(name, None)
            else:
                listed[name] = number
        signed = Snapshot(
            version=version if version is not None else published.signed.version + 1,
            expires=expires or utcnow() + DEFAULT_LIFETIMES.snapshot,
            meta={name: MetaFile(number) for name, number in listed.items()},
        )
        return _sign(signed, [signer or self.signers.snapshot])

    def namespace_role(
        self,
        namespace: str,
        *,
        edit: Callable[[dict[str, TargetFile]], None] | None = None,
        version: int | None = None,
        expires: datetime | None = None,
        signer: Signer | None = None,
    ) -> bytes:
        """A namespace's role with the targets published, changed by ``edit``, one version
        above the newest published, signed by the namespace's key unless ``signer`` is given."""
        published = self.published.namespaces[namespace_role(namespace)]
        targets = Metadata[Targets].from_bytes(serialized(published)).signed.targets
        if edit is not None:
            edit(targets)
        signed = Targets(
            version=version if version is not None else published.signed.version + 1,
            expires=expires or utcnow() + DEFAULT_LIFETIMES.namespace,
            targets=targets,
        )
        return _sign(signed, [signer or self.signers.namespace(namespace)])

    def _snapshot(self) -> Metadata[Snapshot]:
        assert self.published.snapshot is not None
        return self.published.snapshot

    # --- serving --------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append(path)
        if path.startswith("/tuf/"):
            document = self.files.get(path[len("/tuf/") :])
            if document is not None:
                return httpx.Response(200, content=document)
        for (name, version), data in self.archives.items():
            if path == _DOWNLOAD.format(name=name, version=version):
                return httpx.Response(200, content=data)
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})


def _reread(published: Published) -> Published:
    """``published`` as the store gives it back: parsed from the bytes it stored."""

    def again(metadata: Metadata[Any] | None) -> Metadata[Any] | None:
        return None if metadata is None else Metadata.from_bytes(serialized(metadata))

    root = again(published.root)
    assert root is not None
    return Published(
        root,
        again(published.targets),
        {role: Metadata.from_bytes(serialized(md)) for role, md in published.namespaces.items()},
        again(published.snapshot),
        again(published.timestamp),
    )


@dataclass
class TufHost:
    """A host of one registry: its trusted TUF metadata in ``home`` and the operator's root
    (:attr:`TufSimulator.first_root`), as the host's fetcher calls the TUF client."""

    simulator: TufSimulator
    home: Path

    @property
    def directory(self) -> Path:
        return self.home / "tuf"

    def client(self, *, offline: bool = False) -> RegistryClient:
        return RegistryClient(
            URL,
            cache_dir=self.home / "cache",
            offline=offline,
            transport=self.simulator.transport(),
        )

    def listing(
        self, wanted: Collection[tuple[str, str]] = (), *, offline: bool = False
    ) -> TufListing:
        with self.client(offline=offline) as client:
            return listing(client, self.directory, wanted, bootstrap=self.simulator.first_root)

    def trusted(self) -> dict[str, bytes]:
        """Every file the host keeps for the registry (metadata and archives), by path."""
        return {
            str(path.relative_to(self.home)): path.read_bytes()
            for path in sorted(self.home.rglob("*"))
            if path.is_file()
        }

    def version(self, role: str) -> int:
        document = (self.directory / f"{role}.json").read_bytes()
        return int(Metadata.from_bytes(document).signed.version)


def changed(before: Mapping[str, bytes], after: Mapping[str, bytes]) -> set[str]:
    """The paths whose bytes differ (added, removed or rewritten)."""
    return {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}


def expired() -> datetime:
    """An expiry already past."""
    return utcnow() - timedelta(minutes=1)
