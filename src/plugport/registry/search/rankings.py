"""Kept relevance rankings: the best-scored matches of recently searched word sets, so that
relevance does not score every match on every search; and, on the same terms, other answers
that cost a pass over the text index (how many rows hold a word, for its IDF)."""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, NamedTuple, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

__all__ = ["Kept", "Ranking", "Rankings"]

V = TypeVar("V")


class Ranking(NamedTuple):
    """Plugin ids and their scores, best first (see ``RelevanceSearch._top``), and how many
    of every match are visible when the dialect counted them while scoring (else None)."""

    ids: array[int]
    scores: array[float]
    visible: int | None = None


class Kept(Generic[V]):
    """Answers about the text index, per database, each kept under the version of the data
    it was computed from (what ``version`` reads; a dialect's text index may tell it, else
    the search generation does); the least recently used go first past ``kept``."""

    def __init__(self, version: Callable[[Session], Hashable], kept: int) -> None:
        self._read_version = version
        self._kept = kept
        self._lock = threading.Lock()
        self._by_database: WeakKeyDictionary[
            Engine | Connection, OrderedDict[Hashable, tuple[Hashable, V]]
        ] = WeakKeyDictionary()

    def get(self, session: Session, key: Hashable) -> tuple[Hashable, V | None]:
        """The index's version now, and the answer kept for it if any. An answer computed
        after this call is to be kept under this version: should the index change meanwhile,
        the entry is merely never used."""
        version = self._read_version(session)
        return version, self.at(session, key, version)

    def at(self, session: Session, key: Hashable, version: Hashable) -> V | None:
        """The answer kept for ``key`` under ``version`` (read by the caller), if any."""
        with self._lock:
            kept = self._by_database.get(session.get_bind())
            entry = kept.get(key) if kept is not None else None
            if kept is None or entry is None or entry[0] != version:
                return None
            kept.move_to_end(key)
            return entry[1]

    def clear(self) -> None:
        with self._lock:
            self._by_database.clear()

    def put(self, session: Session, key: Hashable, version: Hashable, value: V) -> None:
        with self._lock:
            kept = self._by_database.setdefault(session.get_bind(), OrderedDict())
            kept[key] = (version, value)
            kept.move_to_end(key)
            while len(kept) > self._kept:
                kept.popitem(last=False)

    def best(self, session: Session, key: Hashable, compute: Callable[[], V]) -> V:
        """The kept answer for ``key``, or ``compute()``'s, kept."""
        version, value = self.get(session, key)
        if value is None:
            value = compute()
            self.put(session, key, version, value)
        return value


class Rankings(Kept[Ranking]):
    """The best-scored matches of recently searched word sets, keyed by the words. Finding
    the best means scoring every match (bm25, ts_rank_cd: tens of milliseconds for a word in
    a fifth of 100,000 plugins). Visibility, filters and the order's other keys are applied
    afresh on every search."""
