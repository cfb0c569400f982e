"""Search answers for the API, encoded once and kept between requests while they are exact.

Whether a kept answer is exact is one indexed read: ``search_state.generation``, which
triggers (migration 0006) raise in the transaction of every change a search depends on, on
whichever node or process made it. The generation is read before an answer is computed and
the answer kept under it: should the data change meanwhile, the answer is merely never used.
Download counts do not raise the generation (each download would throw every page away): a
kept answer may show them, and order by them (downloads, trending), up to
:data:`PAGE_CACHE_S` behind.

With a freshness bound (``search_freshness_ms``, set per database by :func:`configure`) the
generation read is itself reused for that long: a kept answer is then served with no database
read at all, on the event loop, before any thread or connection is involved (:func:`kept`).
A change made through this process's engine is seen at once (its commit forgets the reused
generation); one made by another node or process, within the bound.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import astuple, replace
from datetime import date
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

import msgspec
from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

from plugport.registry.search.once import generation as search_generation
from plugport.registry.search.query import Facets, SearchQuery, SearchResult
from plugport.registry.services import catalog

__all__ = [
    "CATEGORIES_KEY",
    "PAGES_KEPT",
    "PAGE_BYTES_KEPT",
    "PAGE_CACHE_S",
    "categories_json",
    "clear",
    "configure",
    "facets",
    "kept",
    "search_json",
    "search_key",
]

PAGE_CACHE_S = 30.0
"""How long a kept answer is used at most: how far behind its download counts may be (the
same 30 s the responses' ``Cache-Control: max-age`` already allows any cache in between)."""
PAGES_KEPT = 1024
"""Answers kept per database at most (least recently used go first)."""
PAGE_BYTES_KEPT = 16 * 1024 * 1024
"""And their bodies' total size at most, per database: an answer of 20 plugins is ~10 KB,
one of 100 ~50 KB."""

_ENCODER = msgspec.json.Encoder()

_READS = re.compile(r"\s*\(?\s*(SELECT|EXPLAIN|SHOW)\b", re.IGNORECASE)
"""Statements that change nothing; a transaction that sent any other statement and committed
may have changed what search shows."""
_WROTE = "plugport.search.wrote"


class _Known(NamedTuple):
    """A database's search generation as last read, when, and how many of this process's
    writing transactions had committed then."""

    generation: int
    read_at: float
    writes: int


class _Freshness:
    """A database's freshness bound and this process's count of its committed writes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.writes = 0
        self.known: _Known | None = None


class _Entry(msgspec.Struct):
    generation: int
    kept_at: float
    expires_at: float
    body: bytes


class _Kept:
    """One database's answers, least recently used first, and their total size."""

    def __init__(self) -> None:
        self.entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self.size = 0

    def put(self, key: Hashable, entry: _Entry) -> None:
        replaced = self.entries.pop(key, None)
        self.size += len(entry.body) - (len(replaced.body) if replaced is not None else 0)
        self.entries[key] = entry
        while self.entries and (len(self.entries) > PAGES_KEPT or self.size > PAGE_BYTES_KEPT):
            self.size -= len(self.entries.popitem(last=False)[1].body)


class _Pages:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_database: WeakKeyDictionary[Engine | Connection, _Kept] = WeakKeyDictionary()
        self._freshness: WeakKeyDictionary[Engine | Connection, _Freshness] = WeakKeyDictionary()

    def configure(self, database: Engine, seconds: float) -> None:
        """Reuse ``database``'s generation read for ``seconds`` (0: read it for every answer),
        forgetting it whenever a transaction of this process that wrote commits."""
        with self._lock:
            fresh = self._freshness.get(database)
            if fresh is not None:
                fresh.seconds, fresh.known = seconds, None
                return
            fresh = self._freshness[database] = _Freshness(seconds)

        def sent(connection: Connection, _c: Any, statement: str, *_: Any) -> None:
            if not _READS.match(statement):
                connection.info[_WROTE] = True

        def committed(connection: Connection) -> None:
            if connection.info.pop(_WROTE, False):
                with self._lock:
                    fresh.writes += 1
                    fresh.known = None

        def rolled_back(connection: Connection) -> None:
            connection.info.pop(_WROTE, None)

        event.listen(database, "before_cursor_execute", sent)
        event.listen(database, "commit", committed)
        event.listen(database, "rollback", rolled_back)

    def _fresh_generation(self, database: Engine | Connection, now: float) -> int | None:
        """The generation read within the bound, with no write of this process since (the
        lock held)."""
        fresh = self._freshness.get(database)
        if fresh is None or fresh.known is None:
            return None
        known = fresh.known
        if known.writes != fresh.writes or now - known.read_at >= fresh.seconds:
            return None
        return known.generation

    def _read_generation(self, session: Session) -> int:
        database = session.get_bind()
        with self._lock:
            fresh = self._freshness.get(database)
            writes = fresh.writes if fresh is not None else 0
            read_at = time.monotonic()
        generation = search_generation(session)
        with self._lock:
            if fresh is not None and fresh.seconds > 0 and writes == fresh.writes:
                fresh.known = _Known(generation, read_at, writes)
        return generation

    def _kept_body(
        self, database: Engine | Connection, key: Hashable, generation: int, now: float
    ) -> bytes | None:
        """The body kept for ``key`` under ``generation``, if still to be used (lock held)."""
        kept = self._by_database.get(database)
        entry = kept.entries.get(key) if kept is not None else None
        if (
            kept is None
            or entry is None
            or entry.generation != generation
            or now >= entry.expires_at
            or now - entry.kept_at >= PAGE_CACHE_S
        ):
            return None
        kept.entries.move_to_end(key)
        return entry.body

    def kept(self, database: Engine | Connection, key: Hashable) -> bytes | None:
        """The answer for ``key`` when one is kept under a generation read within the
        database's freshness bound: no database read, no thread. None otherwise."""
        now = time.monotonic()
        with self._lock:
            generation = self._fresh_generation(database, now)
            if generation is None:
                return None
            return self._kept_body(database, key, generation, now)

    def answer(
        self,
        session: Session,
        key: Hashable,
        compute: Callable[[], tuple[bytes, float | None]],
    ) -> bytes:
        """The kept answer for ``key`` if the data has not changed since it was computed;
        else ``compute()``'s (the body, and a monotonic time it must not be used after, or
        None), kept."""
        database = session.get_bind()
        body = self.kept(database, key)
        if body is not None:
            return body
        now = time.monotonic()
        generation = self._read_generation(session)  # what is computed is kept under it
        with self._lock:
            body = self._kept_body(database, key, generation, now)
            if body is not None:
                return body
        body, expires_at = compute()
        entry = _Entry(generation, now, expires_at or now + PAGE_CACHE_S, body)
        with self._lock:
            self._by_database.setdefault(database, _Kept()).put(key, entry)
        return body

    def clear(self) -> None:
        with self._lock:
            self._by_database.clear()
            for fresh in self._freshness.values():
                fresh.known = None


_PAGES = _Pages()


def clear() -> None:
    """Forget every kept answer of every database (and every generation read reused)."""
    _PAGES.clear()


def configure(database: Engine, *, freshness_s: float) -> None:
    """Serve ``database``'s kept answers without reading its generation for up to
    ``freshness_s`` after the last read (see the module's note); 0 reads it every time."""
    _PAGES.configure(database, freshness_s)


def kept(database: Engine, key: Hashable) -> bytes | None:
    """The kept answer for ``key`` (:func:`search_key`, ``("categories",)``) if one can be
    served without touching the database; else None (ask :func:`search_json`)."""
    return _PAGES.kept(database, key)


def search_key(query: SearchQuery, today: date) -> Hashable:
    """What answers to ``query`` are kept under: queries that differ only in what parsing
    normalises away (the case of ``q``, repeated words) share one."""
    return ("plugins", astuple(query)[1:], query.exact_name, today)


def _search_body(result: SearchResult) -> bytes:
    query = result.query
    return _ENCODER.encode(
        {
            "items": [
                {**catalog.plugin_summary(hit.plugin), "score": hit.score} for hit in result.hits
            ],
            "total": result.total,
            # Counting stops at COUNT_LIMIT matches, and the host filter may extrapolate:
            # then ``total`` is a lower bound / estimate, and this says so.
            "total_is_estimate": result.total_is_estimate,
            "page": query.page,
            "per_page": query.per_page,
            # When the words found fewer than a few plugins: corrected queries, best first,
            # and the one whose matches follow (all of them when q found none).
            "did_you_mean": list(result.did_you_mean),
            "corrected_q": result.corrected_q,
        }
    )


def search_json(session: Session, query: SearchQuery, *, today: date) -> bytes:
    """``GET /api/v1/plugins``'s body for ``query``. Queries that differ only in what
    parsing normalises away (the case of ``q``, repeated words) share one answer."""
    from plugport.registry.search import search_backend  # here: the package imports this module

    def compute() -> tuple[bytes, float | None]:
        result = search_backend(session).search(session, query, today=today)
        return _search_body(result), None

    return _PAGES.answer(session, search_key(query, today), compute)


def facets(session: Session, query: SearchQuery) -> Facets:
    """The search page's facet counts for ``query``, kept as answers are: counting them reads
    up to :data:`~.query.FACET_ROWS` matches three times, where a page reads twenty."""
    from plugport.registry.search import search_backend  # here: the package imports this module

    key = ("facets", astuple(replace(query, sort=None, page=1))[1:], query.exact_name)

    def compute() -> tuple[bytes, float | None]:
        return _ENCODER.encode(search_backend(session).facets(session, query)), None

    return msgspec.json.decode(_PAGES.answer(session, key, compute), type=Facets)


def categories_json(session: Session) -> bytes:
    """``GET /api/v1/categories``'s body."""
    from plugport.registry.search import search_backend  # here: the package imports this module

    def compute() -> tuple[bytes, float | None]:
        counts = search_backend(session).categories(session)
        return _ENCODER.encode([{"name": c.name, "count": c.count} for c in counts]), None

    return _PAGES.answer(session, CATEGORIES_KEY, compute)


CATEGORIES_KEY: Hashable = ("categories",)
"""What ``/api/v1/categories``'s answer is kept under."""
