"""The registry's TUF repository as data: from what it published last and what the catalogue
offers now, which metadata to sign next. Pure: signers and the time are passed in; the store
reads and writes.

The rules it protects (python-tuf's client enforces them, so breaking one here would lock
every host out): a role's version only increases; the snapshot never drops a role it listed
(a namespace whose every version left keeps an empty role); metadata is re-signed when its
content changes, when the key that must sign it changed, and when less than half of its life
is left, so a host never meets expired metadata while the registry is up."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from securesystemslib.signer import Key, Signer
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from plugport._tuf_names import TargetFacts, namespace_of_role, namespace_role, target_path
from plugport.errors import InvalidInputError
from plugport.index import IndexEntry

__all__ = [
    "DEFAULT_LIFETIMES",
    "ONLINE_ROLES",
    "Lifetimes",
    "Published",
    "Signers",
    "Written",
    "new_root",
    "next_metadata",
    "rotated_root",
    "serialized",
]

ONLINE_ROLES = ("timestamp", "snapshot", "targets")
"""The top-level roles whose keys the registry holds; root's keys stay offline."""

_SERIALIZER = JSONSerializer(compact=True)
S = TypeVar("S", Root, Targets, Snapshot, Timestamp)


@dataclass(frozen=True)
class Lifetimes:
    """How long each role's metadata is valid. Online roles are re-signed at half-life."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=90)
    namespace: timedelta = timedelta(days=30)
    snapshot: timedelta = timedelta(days=7)
    timestamp: timedelta = timedelta(days=1)


DEFAULT_LIFETIMES = Lifetimes()


@dataclass(frozen=True)
class Signers:
    """The online signers; ``namespace`` gives the signer of a namespace's role."""

    timestamp: Signer
    snapshot: Signer
    targets: Signer
    namespace: Callable[[str], Signer]


@dataclass(frozen=True)
class Published:
    """The newest metadata of each role, as stored (``None`` before the first)."""

    root: Metadata[Root]
    targets: Metadata[Targets] | None = None
    namespaces: Mapping[str, Metadata[Targets]] = field(default_factory=dict)
    """Role name (``ns.acme``) -> its newest metadata."""
    snapshot: Metadata[Snapshot] | None = None
    timestamp: Metadata[Timestamp] | None = None


@dataclass(frozen=True)
class Written:
    """One metadata file to store and serve: role, version and the exact bytes."""

    role: str
    version: int
    document: bytes


def serialized(metadata: Metadata[Any]) -> bytes:
    return metadata.to_bytes(_SERIALIZER)


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _stale(metadata: Metadata[Any] | None, signer: Signer, now: datetime, life: timedelta) -> bool:
    """Whether ``metadata`` must be signed again although its content is unchanged: none yet,
    not signed by the key that must sign it now, or less than half its life left."""
    return (
        metadata is None
        or signer.public_key.keyid not in metadata.signatures
        or metadata.signed.expires - now < life / 2
    )


def _signed(signed: S, signer: Signer) -> Metadata[S]:
    metadata = Metadata(signed)
    metadata.sign(signer)
    return metadata


def _renewed(
    old: Metadata[S] | None,
    *,
    changed: bool,
    signer: Signer,
    now: datetime,
    life: timedelta,
    make: Callable[[int, datetime], S],
) -> tuple[Metadata[S], bool]:
    """``old`` when it may stay (same content, fresh, signed by ``signer``); else
    ``make(next version, expiry)`` signed by ``signer``. The flag says which: True is new."""
    if old is not None and not changed and not _stale(old, signer, now, life):
        return old, False
    return _signed(make(_next_version(old), now + life), signer), True


def _next_version(previous: Metadata[Any] | None) -> int:
    return 1 if previous is None else previous.signed.version + 1


def _namespace_targets(targets: dict[str, TargetFile]) -> Callable[[int, datetime], Targets]:
    def make(version: int, expires: datetime) -> Targets:
        return Targets(version, expires=expires, targets=targets)

    return make


def _targets_by_namespace(entries: Iterable[IndexEntry]) -> dict[str, dict[str, TargetFile]]:
    found: dict[str, dict[str, TargetFile]] = {}
    for entry in entries:
        path = target_path(entry.name, entry.version)
        target = TargetFile(
            entry.length,
            {"sha256": entry.sha256},
            path,
            {"custom": TargetFacts(entry.key_id, entry.yanked, entry.quarantined).custom()},
        )
        found.setdefault(entry.name.split(".", 1)[0], {})[path] = target
    return found


def next_metadata(
    published: Published,
    entries: Iterable[IndexEntry],
    signers: Signers,
    *,
    now: datetime,
    lifetimes: Lifetimes = DEFAULT_LIFETIMES,
) -> tuple[Published, list[Written]]:
    """What to publish now that the catalogue offers ``entries``: the new newest metadata and
    the files to store (none when everything published is still true and fresh)."""
    now = _whole_seconds(now)
    written: list[Written] = []
    by_namespace = _targets_by_namespace(entries)
    known = {ns for role in published.namespaces if (ns := namespace_of_role(role))}

    namespaces: dict[str, Metadata[Targets]] = {}
    keys: dict[str, Key] = {}
    roles: dict[str, DelegatedRole] = {}
    for namespace in sorted(known | set(by_namespace)):
        role = namespace_role(namespace)
        signer = signers.namespace(namespace)
        old = published.namespaces.get(role)
        targets = by_namespace.get(namespace, {})
        listed = _namespace_targets(targets)
        current, new = _renewed(
            old,
            changed=old is None or old.signed.targets != targets,
            signer=signer,
            now=now,
            life=lifetimes.namespace,
            make=listed,
        )
        if new:
            written.append(Written(role, current.signed.version, serialized(current)))
        namespaces[role] = current
        keys[signer.public_key.keyid] = signer.public_key
        roles[role] = DelegatedRole(
            role, [signer.public_key.keyid], 1, terminating=True, paths=[f"{namespace}.*/*"]
        )

    targets_md = published.targets
    delegations = Delegations(keys, roles) if roles else None
    targets_md, new = _renewed(
        targets_md,
        changed=targets_md is None or targets_md.signed.delegations != delegations,
        signer=signers.targets,
        now=now,
        life=lifetimes.targets,
        make=lambda version, expires: Targets(version, expires=expires, delegations=delegations),
    )
    if new:
        written.append(Written("targets", targets_md.signed.version, serialized(targets_md)))

    meta = {"targets.json": MetaFile(targets_md.signed.version)}
    meta |= {f"{role}.json": MetaFile(md.signed.version) for role, md in namespaces.items()}
    snapshot = published.snapshot
    snapshot_bytes: bytes | None = None
    snapshot, new = _renewed(
        snapshot,
        changed=snapshot is None or snapshot.signed.meta != meta,
        signer=signers.snapshot,
        now=now,
        life=lifetimes.snapshot,
        make=lambda version, expires: Snapshot(version, expires=expires, meta=meta),
    )
    if new:
        snapshot_bytes = serialized(snapshot)
        written.append(Written("snapshot", snapshot.signed.version, snapshot_bytes))

    timestamp = published.timestamp
    described = _describe_snapshot(snapshot, snapshot_bytes, timestamp)
    timestamp, new = _renewed(
        timestamp,
        changed=snapshot_bytes is not None or timestamp is None,
        signer=signers.timestamp,
        now=now,
        life=lifetimes.timestamp,
        make=lambda version, expires: Timestamp(version, expires=expires, snapshot_meta=described),
    )
    if new:
        written.append(Written("timestamp", timestamp.signed.version, serialized(timestamp)))

    newest = Published(published.root, targets_md, namespaces, snapshot, timestamp)
    return newest, written


def _describe_snapshot(
    snapshot: Metadata[Snapshot], document: bytes | None, timestamp: Metadata[Timestamp] | None
) -> MetaFile:
    """The timestamp's statement of the snapshot: version, and length and hash, so that a
    host reads no more than that many bytes (endless data) and only those bytes."""
    if document is None:  # the same snapshot as the last timestamp described
        if timestamp is None or timestamp.signed.snapshot_meta.version != snapshot.signed.version:
            document = serialized(snapshot)
        else:
            return timestamp.signed.snapshot_meta
    return MetaFile(
        snapshot.signed.version,
        length=len(document),
        hashes={"sha256": hashlib.sha256(document).hexdigest()},
    )


# --- root (offline keys) ---------------------------------------------------------------------


def _check_threshold(signers: Sequence[Signer], threshold: int) -> None:
    if threshold < 1:
        raise InvalidInputError(f"root threshold: must be at least 1, not {threshold}")
    if len(signers) < threshold:
        raise InvalidInputError(
            f"root threshold: {threshold} signatures needed but only {len(signers)} root "
            "key(s) given"
        )


def new_root(
    root_signers: Sequence[Signer],
    threshold: int,
    online: Mapping[str, Key],
    *,
    now: datetime,
    lifetimes: Lifetimes = DEFAULT_LIFETIMES,
) -> Metadata[Root]:
    """Root version 1: ``root_signers``' keys with ``threshold``, the online roles' keys
    (``online`` maps each of :data:`ONLINE_ROLES` to its key), consistent snapshots on."""
    _check_threshold(root_signers, threshold)
    if set(online) != set(ONLINE_ROLES):
        raise InvalidInputError(f"online keys: expected {', '.join(ONLINE_ROLES)}")
    root = Root(expires=_whole_seconds(now) + lifetimes.root, consistent_snapshot=True)
    root.roles["root"] = Role([], threshold)
    for signer in root_signers:
        root.add_key(signer.public_key, "root")
    for role, key in online.items():
        root.add_key(key, role)
    metadata = Metadata(root)
    for signer in root_signers:
        metadata.sign(signer, append=True)
    return metadata


def rotated_root(
    previous: Metadata[Root],
    old_signers: Sequence[Signer],
    *,
    now: datetime,
    new_root_signers: Sequence[Signer] | None = None,
    threshold: int | None = None,
    online: Mapping[str, Key] | None = None,
    lifetimes: Lifetimes = DEFAULT_LIFETIMES,
) -> Metadata[Root]:
    """The next root version: new root keys (``new_root_signers`` and ``threshold``) and/or
    new keys for some online roles. Signed by the old root keys and, when they change, by the
    new ones too: a host accepts root N+1 only with a threshold of both root N's keys and its
    own."""
    root = Metadata.from_bytes(serialized(previous)).signed  # a copy to change
    root.version += 1
    root.expires = _whole_seconds(now) + lifetimes.root
    for role, key in (online or {}).items():
        if role not in ONLINE_ROLES:
            raise InvalidInputError(f"role {role!r}: not one of {', '.join(ONLINE_ROLES)}")
        for keyid in list(root.roles[role].keyids):
            root.revoke_key(keyid, role)
        root.add_key(key, role)
    _check_root_keys(previous, old_signers)
    signers = list(old_signers)
    if new_root_signers is not None:
        wanted = threshold if threshold is not None else root.roles["root"].threshold
        _check_threshold(new_root_signers, wanted)
        for keyid in list(root.roles["root"].keyids):
            root.revoke_key(keyid, "root")
        root.roles["root"].threshold = wanted
        for signer in new_root_signers:
            root.add_key(signer.public_key, "root")
        signers += new_root_signers
    metadata = Metadata(root)
    seen: set[str] = set()
    for signer in signers:
        if signer.public_key.keyid not in seen:
            seen.add(signer.public_key.keyid)
            metadata.sign(signer, append=True)
    return metadata


def _check_root_keys(previous: Metadata[Root], signers: Sequence[Signer]) -> None:
    """Enough of root N's own keys to sign root N+1, or a refusal naming how many."""
    role = previous.signed.roles["root"]
    ours = {s.public_key.keyid for s in signers} & set(role.keyids)
    if len(ours) < role.threshold:
        raise InvalidInputError(
            f"root keys: root version {previous.signed.version} needs {role.threshold} of its "
            f"own {len(role.keyids)} keys to sign the next root; {len(ours)} of the keys given "
            "are among them"
        )
