"""The registry's TUF repository in its database: what is published, what to serve, and the
operator's changes (initialise, rotate a role's key, replace a namespace's key).

Publishing follows the signed index's rule for several nodes: metadata is signed again only
when it is no longer true (the offered entries changed, a key changed) or past half its life,
and a node publishes by a compare-and-set of ``tuf_state.timestamp_version``, so two nodes
racing cannot publish two different files under one version; the loser serves the winner's.
The caller commits (the request's session does before the response leaves)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session, aliased
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp

from plugport.errors import ConflictError, InvalidInputError, NotFoundError, TufKeyMismatchError
from plugport.registry.models import TufMetadata, TufNamespaceKey, TufState
from plugport.registry.services.signed_index import current_entries, entries_digest
from plugport.registry.tuf.keys import OnlineKeys, load_online_keys
from plugport.registry.tuf.rules import (
    DEFAULT_LIFETIMES,
    Lifetimes,
    Published,
    Written,
    next_metadata,
    serialized,
)

__all__ = [
    "NodeKeys",
    "TufStatus",
    "check_online_keys",
    "document",
    "initialise",
    "latest_root",
    "node_keys",
    "publish",
    "replace_namespace_key",
    "status",
    "store_root",
]

_STATE_ID = 1
_MAX_ATTEMPTS = 5
NOT_ENABLED = "this registry publishes no TUF metadata (plugport registry tuf init enables it)"


def _latest(session: Session, role: str) -> TufMetadata | None:
    return session.scalars(
        select(TufMetadata)
        .where(TufMetadata.role == role)
        .order_by(TufMetadata.version.desc())
        .limit(1)
    ).first()


def latest_root(session: Session) -> Metadata[Root] | None:
    row = _latest(session, "root")
    return None if row is None else Metadata[Root].from_bytes(row.document)


def document(session: Session, role: str, version: int | None = None) -> bytes:
    """A stored file: ``role``'s given version, or its newest; :class:`NotFoundError`."""
    row = _latest(session, role) if version is None else session.get(TufMetadata, (role, version))
    if row is None:
        if latest_root(session) is None:
            raise NotFoundError("TUF metadata", f"{role}.json", NOT_ENABLED)
        shown = f"{version}.{role}.json" if version is not None else f"{role}.json"
        raise NotFoundError("TUF metadata", shown)
    return row.document


def _published(session: Session, root: Metadata[Root]) -> Published:
    newest = (
        select(TufMetadata.role, func.max(TufMetadata.version).label("version"))
        .where(TufMetadata.role != "root")
        .group_by(TufMetadata.role)
        .subquery()
    )
    rows = session.execute(
        select(TufMetadata.role, TufMetadata.document).join(
            newest,
            (TufMetadata.role == newest.c.role) & (TufMetadata.version == newest.c.version),
        )
    )
    found: dict[str, bytes] = dict(rows.all())
    top = {"targets", "snapshot", "timestamp"}
    return Published(
        root,
        Metadata[Targets].from_bytes(found["targets"]) if "targets" in found else None,
        {
            role: Metadata[Targets].from_bytes(data)
            for role, data in found.items()
            if role not in top
        },
        Metadata[Snapshot].from_bytes(found["snapshot"]) if "snapshot" in found else None,
        Metadata[Timestamp].from_bytes(found["timestamp"]) if "timestamp" in found else None,
    )


def _generations(session: Session) -> Callable[[str], int]:
    rows = session.execute(select(TufNamespaceKey.namespace, TufNamespaceKey.generation))
    known: dict[str, int] = dict(rows.all())
    return lambda namespace: known.get(namespace, 1)


def check_online_keys(root: Metadata[Root], keys: OnlineKeys) -> None:
    """A node whose online keys are not the ones root lists would publish metadata no host
    accepts: refuse (at start), naming the role."""
    for role, key in keys.public().items():
        if key.keyid not in root.signed.roles[role].keyids:
            raise TufKeyMismatchError(
                role,
                f"TUF online keys: the {role} key in this node's keys file is not the one root "
                f"version {root.signed.version} lists; give every node the same file "
                "(--tuf-keys-file) as `plugport registry tuf rotate` last wrote it",
            )


class NodeKeys:
    """A node's online keys file, read again when it changes: after ``plugport registry tuf
    rotate`` an operator replaces the file on every node and they sign with the new keys from
    their next request, no restart needed (a file that does not load keeps the keys before)."""

    def __init__(self, path: Path, keys: OnlineKeys) -> None:
        self.path = path
        self._keys = keys
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int] | None:
        try:
            found = self.path.stat()
        except OSError:
            return None
        return found.st_mtime_ns, found.st_ino

    def current(self) -> OnlineKeys:
        stamp = self._stat()
        if stamp is not None and stamp != self._stamp:
            try:
                self._keys = load_online_keys(self.path)
            except (OSError, InvalidInputError):
                return self._keys  # half-copied, say: the next request looks again
            self._stamp = stamp
        return self._keys


def node_keys(engine: Engine, path: Path) -> NodeKeys | None:
    """This node's online keys, checked at start against the root the database holds: None
    when the registry publishes no TUF metadata; refused when it does and this node has no
    keys file, or another one (it would sign what no host accepts)."""
    with Session(engine) as session:
        root = latest_root(session)
    if root is None:
        return None
    if not path.exists():
        raise InvalidInputError(
            f"this registry publishes TUF metadata (root version {root.signed.version}) but this "
            f"node has no online keys file at {path}; give every node the file `plugport "
            "registry tuf init` wrote (--tuf-keys-file, PLUGPORT_TUF_KEYS_FILE)"
        )
    keys = load_online_keys(path)
    check_online_keys(root, keys)
    return NodeKeys(path, keys)


def publish(
    session: Session,
    keys: OnlineKeys,
    *,
    now: datetime,
    lifetimes: Lifetimes = DEFAULT_LIFETIMES,
    force: bool = False,
) -> bytes:
    """The newest timestamp, after signing whatever is no longer true or fresh (in
    ``session``'s transaction). ``force`` looks at every role even when the offered entries
    are unchanged (after a key changed)."""
    for _ in range(_MAX_ATTEMPTS):
        root = latest_root(session)
        if root is None:
            raise NotFoundError("TUF metadata", "timestamp.json", NOT_ENABLED)
        check_online_keys(root, keys)  # rotated since this node started: sign nothing
        state = session.get(TufState, _STATE_ID, populate_existing=True)
        if state is None:  # pragma: no cover - migration 0017 creates the row
            raise RuntimeError("tuf_state has no row; run `plugport registry migrate`")
        entries = current_entries(session, include_quarantined=True)
        digest = entries_digest(entries)
        newest = _latest(session, "timestamp")
        if not force and newest is not None and state.entries_digest == digest:
            timestamp = Metadata[Timestamp].from_bytes(newest.document)
            if timestamp.signed.expires - now >= lifetimes.timestamp / 2:
                return newest.document
        published = _published(session, root)
        _, written = next_metadata(
            published, entries, keys.signers(_generations(session)), now=now, lifetimes=lifetimes
        )
        if not written:
            # Another node published between our two reads (what we built on is newer than
            # ``newest``): serve what it published, never the older one read first.
            return document(session, "timestamp")
        stamped = next(w for w in written if w.role == "timestamp")
        claimed = session.execute(
            update(TufState)
            .where(TufState.id == _STATE_ID, TufState.timestamp_version == state.timestamp_version)
            .values(timestamp_version=stamped.version, entries_digest=digest)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            _store(session, written, now)
            return stamped.document
    raise RuntimeError("the TUF metadata kept changing under us; try again")


def _store(session: Session, written: list[Written], now: datetime) -> None:
    session.add_all(
        TufMetadata(role=w.role, version=w.version, document=w.document, created_at=now)
        for w in written
    )
    session.flush()
    _prune(session, now)


KEEP_SUPERSEDED = timedelta(hours=1)
"""How long a superseded version stays servable: a host that read the timestamp just before a
change still fetches the snapshot and roles it names (consistent snapshots). Far longer than
any refresh takes; without a bound, every publish would add a snapshot for ever."""


def _prune(session: Session, now: datetime) -> None:
    """Drop what no host can still need: versions of a role other than root that a newer
    version superseded more than :data:`KEEP_SUPERSEDED` ago (roots stay: a host walks every
    root from the one it trusts)."""
    newer = aliased(TufMetadata)
    superseded = (
        select(newer.role)
        .where(
            newer.role == TufMetadata.role,
            newer.version > TufMetadata.version,
            newer.created_at < now - KEEP_SUPERSEDED,
        )
        .exists()
    )
    session.execute(
        delete(TufMetadata)
        .where(TufMetadata.role != "root", superseded)
        .execution_options(synchronize_session=False)
    )


def initialise(session: Session, root: Metadata[Root], keys: OnlineKeys, *, now: datetime) -> None:
    """Store root version 1 and publish the first metadata with ``keys``; refused when this
    registry already has a root (rotate instead)."""
    if latest_root(session) is not None:
        raise ConflictError(
            "TUF root",
            "root.json",
            "this registry already has one; use `plugport registry tuf rotate` to change keys",
        )
    if root.signed.version != 1:
        raise InvalidInputError(f"the first root must be version 1, not {root.signed.version}")
    check_online_keys(root, keys)
    _store(session, [Written("root", 1, serialized(root))], now)
    publish(session, keys, now=now, force=True)


def store_root(session: Session, root: Metadata[Root], keys: OnlineKeys, *, now: datetime) -> None:
    """Store the next root (its version one above the newest) and re-sign the online
    metadata with ``keys`` (which must be the keys the new root lists)."""
    newest = latest_root(session)
    if newest is None:
        raise NotFoundError("TUF root", "root.json", NOT_ENABLED)
    if root.signed.version != newest.signed.version + 1:
        raise InvalidInputError(
            f"root version {root.signed.version} does not follow version "
            f"{newest.signed.version}: a root rotation may not skip a version"
        )
    try:
        newest.verify_delegate("root", root)
        root.verify_delegate("root", root)
    except UnsignedMetadataError as exc:
        raise InvalidInputError(f"root version {root.signed.version}: {exc}") from None
    check_online_keys(root, keys)
    _store(session, [Written("root", root.signed.version, serialized(root))], now)
    publish(session, keys, now=now, force=True)


def replace_namespace_key(
    session: Session, namespace: str, keys: OnlineKeys, *, now: datetime
) -> int:
    """A new key generation for ``namespace``: targets delegate its role to the new key, and
    what the old key signs stops verifying. Returns the new generation."""
    row = session.get(TufNamespaceKey, namespace)
    if row is None:
        row = TufNamespaceKey(namespace=namespace, generation=1)
        session.add(row)
    row.generation += 1
    row.rotated_at = now
    session.flush()
    publish(session, keys, now=now, force=True)
    return row.generation


@dataclass(frozen=True)
class TufStatus:
    root_version: int
    root_expires: datetime
    threshold: int
    versions: dict[str, int]
    """Newest version of root, timestamp, snapshot and targets, and how many namespace roles."""
    expires: dict[str, datetime]
    namespaces: int


def status(session: Session) -> TufStatus:
    root = latest_root(session)
    if root is None:
        raise NotFoundError("TUF root", "root.json", NOT_ENABLED)
    published = _published(session, root)
    versions, expires = {"root": root.signed.version}, {"root": root.signed.expires}
    for role in ("targets", "snapshot", "timestamp"):
        metadata = getattr(published, role)
        if metadata is not None:
            versions[role] = metadata.signed.version
            expires[role] = metadata.signed.expires
    return TufStatus(
        root.signed.version,
        root.signed.expires,
        root.signed.roles["root"].threshold,
        versions,
        expires,
        len(published.namespaces),
    )
