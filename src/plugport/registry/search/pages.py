"""Search answers for the API, encoded once and kept between requests while they are exact.

Whether a kept answer is exact is one indexed read: ``search_state.generation``, which
triggers (migration 0006) raise in the transaction of every change a search depends on, on
whichever node or process made it. The generation is read before an answer is computed and
the answer kept under it: should the data change meanwhile, the answer is merely never used.
Download counts do not raise the generation (each download would throw every page away): a
kept answer may show them, and order by them (downloads, trending), up to
:data:`PAGE_CACHE_S` behind.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import astuple, replace
from datetime import date
from weakref import WeakKeyDictionary

import msgspec
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from plugport.registry.search.once import generation as search_generation
from plugport.registry.search.query import Facets, SearchQuery, SearchResult
from plugport.registry.services import catalog

__all__ = [
    "PAGES_KEPT",
    "PAGE_BYTES_KEPT",
    "PAGE_CACHE_S",
    "categories_json",
    "clear",
    "facets",
    "search_json",
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
        generation = search_generation(session)
        now = time.monotonic()
        with self._lock:
            kept = self._by_database.get(database)
            entry = kept.entries.get(key) if kept is not None else None
            if (
                kept is not None
                and entry is not None
                and entry.generation == generation
                and now < entry.expires_at
                and now - entry.kept_at < PAGE_CACHE_S
            ):
                kept.entries.move_to_end(key)
                return entry.body
        body, expires_at = compute()
        entry = _Entry(generation, now, expires_at or now + PAGE_CACHE_S, body)
        with self._lock:
            self._by_database.setdefault(database, _Kept()).put(key, entry)
        return body

    def clear(self) -> None:
        with self._lock:
            self._by_database.clear()


_PAGES = _Pages()


def clear() -> None:
    """Forget every kept answer of every database."""
    _PAGES.clear()


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

    key = ("plugins", astuple(query)[1:], query.exact_name, today)

    def compute() -> tuple[bytes, float | None]:
        result = search_backend(session).search(session, query, today=today)
        return _search_body(result), None

    return _PAGES.answer(session, key, compute)


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

    return _PAGES.answer(session, ("categories",), compute)
