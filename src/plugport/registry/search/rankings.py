"""Kept relevance rankings: the best-scored matches of recently searched word sets, so that
relevance does not score every match on every search."""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import NamedTuple
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

__all__ = ["Ranking", "Rankings"]


class Ranking(NamedTuple):
    """Plugin ids and their scores, best first (see ``RelevanceSearch._top``), and how many
    of every match are visible when the dialect counted them while scoring (else None)."""

    ids: array[int]
    scores: array[float]
    visible: int | None = None


class Rankings:
    """The best-scored matches of recently searched word sets, per database, each kept under
    the version of the data it was scored from (what ``version`` reads; a dialect's text index
    may tell it, else the search generation does). Finding the best means scoring every
    match (bm25, ts_rank_cd: tens of milliseconds for a word in a fifth of 100,000 plugins).
    Visibility, filters and the order's other keys are applied afresh on every search."""

    def __init__(self, version: Callable[[Session], Hashable], kept: int) -> None:
        self._read_version = version
        self._kept = kept
        self._lock = threading.Lock()
        self._by_database: WeakKeyDictionary[
            Engine | Connection, OrderedDict[tuple[str, ...], tuple[Hashable, Ranking]]
        ] = WeakKeyDictionary()

    def get(self, session: Session, terms: tuple[str, ...]) -> tuple[Hashable, Ranking | None]:
        """The index's version now, and the ranking kept for it if any. A ranking computed
        after this call is to be kept under this version: should the index change meanwhile,
        the entry is merely never used."""
        version = self._read_version(session)
        with self._lock:
            kept = self._by_database.get(session.get_bind())
            entry = kept.get(terms) if kept is not None else None
            if kept is None or entry is None or entry[0] != version:
                return version, None
            kept.move_to_end(terms)
            return version, entry[1]

    def clear(self) -> None:
        with self._lock:
            self._by_database.clear()

    def put(
        self,
        session: Session,
        terms: tuple[str, ...],
        version: Hashable,
        ranking: Ranking,
    ) -> None:
        with self._lock:
            kept = self._by_database.setdefault(session.get_bind(), OrderedDict())
            kept[terms] = (version, ranking)
            kept.move_to_end(terms)
            while len(kept) > self._kept:
                kept.popitem(last=False)

    def best(
        self, session: Session, terms: tuple[str, ...], compute: Callable[[], Ranking]
    ) -> Ranking:
        """The kept ranking of ``terms``, or ``compute()``'s, kept."""
        version, ranking = self.get(session, terms)
        if ranking is None:
            ranking = compute()
            self.put(session, terms, version, ranking)
        return ranking
