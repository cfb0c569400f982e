"""Collecting orphan blobs: blobs no version refers to, which a publish leaves behind when it
stops between storing its archive and committing its row (a killed process, a lost database).

The rule this module protects: a blob is removed only when no committed version refers to it,
no upload in flight on this node has claimed its digest, and it was last written before every
upload still in flight on this node began *and* at least ``min_age_s`` ago. The margin covers
uploads in flight on other nodes, which this node cannot see (a store renews a blob's write time
when an upload stores the same bytes again). The claim and the delete are decided under one
lock, with the references read again just before each delete, so an upload on this node either
sees the blob gone and stores it afresh, or keeps it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import select, union
from sqlalchemy.orm import Session, sessionmaker

from plugport.registry._periodic import periodically
from plugport.registry.blobs import BlobStamp, BlobStore
from plugport.registry.models import PluginVersion, VersionContent

__all__ = ["Collected", "InFlight", "Uploads", "collect", "collecting", "orphans"]

_log = logging.getLogger(__name__)


class InFlight:
    """One upload in progress: it claims the digest it is about to store."""

    def __init__(self, uploads: Uploads, started_at: float) -> None:
        self._uploads = uploads
        self.started_at = started_at
        self.claimed: list[str] = []

    def claim(self, sha256: str) -> None:
        """Keep ``sha256`` from being collected until this upload ends (after its commit).
        Call it before asking the store whether the blob exists."""
        with self._uploads.lock:
            self._uploads.claims[sha256] += 1
            self.claimed.append(sha256)


class Uploads:
    """The uploads in flight on this node: when each began and the digests they claimed."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.Lock()
        self.claims: Counter[str] = Counter()
        self._started: dict[int, float] = {}
        self._clock = clock

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[InFlight]:
        """An upload from its first byte until the block ends (end it after the commit)."""
        upload = InFlight(self, self._clock())
        with self.lock:
            self._started[id(upload)] = upload.started_at
        try:
            yield upload
        finally:
            with self.lock:
                del self._started[id(upload)]
                self.claims.subtract(upload.claimed)
                self.claims += Counter()  # drops the digests no upload claims any more

    def cutoff(self, limit: float) -> float:
        """``limit``, or the start of the oldest upload in flight if that is earlier."""
        with self.lock:
            return min([limit, *self._started.values()])

    def __len__(self) -> int:
        with self.lock:
            return len(self._started)


@dataclass(frozen=True)
class Collected:
    """What one pass removed: orphan blobs, and leftovers of unfinished writes."""

    blobs: tuple[str, ...]
    partial: int


def orphans(stamps: Iterable[BlobStamp], referenced: Container[str], *, cutoff: float) -> list[str]:
    """The blobs to remove: written before ``cutoff`` and referred to by no version."""
    return sorted(
        stamp.sha256
        for stamp in stamps
        if stamp.written_at < cutoff and stamp.sha256 not in referenced
    )


def _referenced(sessions: sessionmaker[Session], sha256: str | None = None) -> set[str]:
    """Archives and the files shown from them (icons, screenshots, READMEs, changelogs)."""
    archives = select(PluginVersion.sha256)
    shown = select(VersionContent.sha256)
    if sha256 is not None:
        archives = archives.where(PluginVersion.sha256 == sha256)
        shown = shown.where(VersionContent.sha256 == sha256)
    with sessions() as session:
        return set(session.scalars(union(archives, shown)))


def collect(
    store: BlobStore,
    sessions: sessionmaker[Session],
    uploads: Uploads,
    *,
    now: float,
    min_age_s: float,
) -> Collected:
    """One pass over ``store``: remove orphan blobs and unfinished writes older than the
    cutoff (see the module's rule)."""
    cutoff = uploads.cutoff(now - min_age_s)
    partial = store.discard_partial(cutoff)
    removed = []
    for sha256 in orphans(store.stamps(), _referenced(sessions), cutoff=cutoff):
        with uploads.lock:  # an upload claims under this lock: it waits for the delete
            if uploads.claims[sha256] or _referenced(sessions, sha256):
                continue  # claimed, or published since the listing
            if store.delete(sha256):
                removed.append(sha256)
    return Collected(tuple(removed), partial)


def collecting(
    store: BlobStore,
    sessions: sessionmaker[Session],
    uploads: Uploads,
    *,
    interval_s: float,
    min_age_s: float,
) -> contextlib.AbstractAsyncContextManager[None]:
    """Collect once at start, then every ``interval_s``, in a worker thread, for as long as
    the block runs (the app's lifespan); ``interval_s`` 0 turns collection off. A failed pass
    is logged and retried next time: it must not take the registry down."""

    def once() -> None:
        done = collect(store, sessions, uploads, now=time.time(), min_age_s=min_age_s)
        if done.blobs or done.partial:
            _log.info(
                "collected %d orphan blobs and %d unfinished writes", len(done.blobs), done.partial
            )

    return periodically(once, interval_s=interval_s, what="collecting orphan blobs", at_start=True)
