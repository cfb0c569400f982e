"""The signed index as a service: what it lists right now, and the document to serve.

The document is re-signed only when it is no longer true (the published versions changed) or
is past half its life; otherwise every node serves the stored bytes. Re-signing takes the next
version number with a compare-and-set on ``index_state``, so two nodes racing cannot issue two
different documents under one number (the loser serves the winner's).

Losing that race never touches the caller's transaction: a compare-and-set that matched no row
changed nothing, so there is nothing to roll back; the loser reads the row again (the winner's
document, visible once it committed: PostgreSQL's UPDATE waits for the winner's row lock, and
SQLite's for its write lock) and serves it. The caller commits (the API's request session does
before the response leaves), so a host sees a document only once it is durable."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import astuple
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugport.errors import IndexKeyMismatchError
from plugport.index import IndexEntry, sign_index
from plugport.registry.models import IndexState, Plugin, PluginVersion
from plugport.registry.services.index_key import SETTING_HINT, signer_of
from plugport.signing import key_id

__all__ = ["current_document", "current_entries", "entries_digest", "is_current"]

_STATE_ID = 1
_MAX_ATTEMPTS = 5


def current_entries(
    session: Session, *, plugin_id: int | None = None, include_quarantined: bool = False
) -> list[IndexEntry]:
    """What this registry offers: every published version of every plugin that is not
    suspended, yanked ones included (downloadable by exact version), withdrawn ones not (signed
    with a key the publisher revoked: hosts refuse them, so the index must not point at them),
    quarantined ones not (an admin refused them to every host, even pinned), sorted by name and
    version text. ``plugin_id`` narrows it to one plugin: the versions API lists exactly these,
    so what hosts resolve from is what the index vouches for. ``include_quarantined`` adds the
    quarantined versions, flagged: the TUF targets list them so installed hosts are told.

    The one definition of "offered": the signed index is made of it, and whatever else
    publishes the catalogue to hosts must be too."""
    query = (
        select(
            Plugin.name,
            PluginVersion.version,
            PluginVersion.sha256,
            PluginVersion.length,
            PluginVersion.key_id,
            PluginVersion.yanked_reason.is_not(None),
            PluginVersion.quarantined_reason.is_not(None),
        )
        .join(Plugin, Plugin.id == PluginVersion.plugin_id)
        .where(
            PluginVersion.status == "published",
            ~Plugin.suspended,
            PluginVersion.signer_revoked_at.is_(None),
        )
        .order_by(Plugin.name, PluginVersion.version)
    )
    if plugin_id is not None:
        query = query.where(PluginVersion.plugin_id == plugin_id)
    if not include_quarantined:
        query = query.where(PluginVersion.quarantined_reason.is_(None))
    return [
        IndexEntry(name, version, sha256, length, key, bool(yanked), bool(quarantined))
        for name, version, sha256, length, key, yanked, quarantined in session.execute(query)
    ]


def entries_digest(entries: Sequence[IndexEntry]) -> str:
    """A fingerprint of what the index lists (not of when it was signed). The quarantine
    flag counts only when set, so entries without it keep the fingerprint they had before
    quarantine existed (an upgrade re-signs nothing)."""
    canonical = json.dumps(
        [astuple(e)[:-1] + ((True,) if e.quarantined else ()) for e in entries],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def is_current(state: IndexState, digest: str, *, now: datetime, ttl: timedelta) -> bool:
    """Whether the stored document may still be served: it lists exactly ``digest``'s entries
    and has at least half its life left (hosts that cache it get a useful window)."""
    return (
        state.document is not None
        and state.entries_digest == digest
        and state.expires_at is not None
        and state.expires_at - now >= ttl / 2
    )


def current_document(
    session: Session,
    key: ed25519.Ed25519PrivateKey,
    *,
    now: datetime,
    ttl: timedelta,
    rotate: bool = False,
) -> bytes:
    """The signed index to serve now; signs and stores a new version (in ``session``'s
    transaction, for the caller to commit) when needed. A document signed by another key is
    never served or replaced by this node (:class:`IndexKeyMismatchError`) unless ``rotate``:
    two nodes that each made a key of their own would otherwise take turns re-signing it."""
    ours = key_id(key.public_key())
    for _ in range(_MAX_ATTEMPTS):
        # Read again on every attempt: after a lost race the catalogue may have moved too,
        # and a document must never list less than what was committed before it was signed.
        entries = current_entries(session)
        digest = entries_digest(entries)
        state = session.get(IndexState, _STATE_ID, populate_existing=True)
        if state is None:  # pragma: no cover - migration 0003 creates the row
            raise RuntimeError("index_state has no row; run `plugport registry migrate`")
        signer = signer_of(state.document)
        if signer is not None and signer != ours and not rotate:
            raise IndexKeyMismatchError(signer, f"is {ours[:16]}…", SETTING_HINT)
        if signer == ours and is_current(state, digest, now=now, ttl=ttl) and state.document:
            return state.document
        version = state.version + 1
        document = sign_index(key, entries, version=version, now=now, ttl=ttl)
        issued = session.execute(
            update(IndexState)
            .where(IndexState.id == _STATE_ID, IndexState.version == state.version)
            .values(
                version=version,
                entries_digest=digest,
                expires_at=(now + ttl).replace(microsecond=0),
                document=document,
            )
            .execution_options(synchronize_session=False)
        )
        if issued.rowcount == 1:  # type: ignore[attr-defined]
            return document
        # Another node or request issued one first; nothing was written here: look again.
    raise RuntimeError("the signed index kept changing under us; try again")
