"""Plugin search behind one interface: FTS5 on SQLite, a tsvector on PostgreSQL. Both indexes
maintain themselves (triggers, a generated column), so nothing that changes a plugin has to
remember to re-index it."""

from __future__ import annotations

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from plugport.errors import PlugportError
from plugport.registry.search import pages as _pages
from plugport.registry.search import postgres as _postgres
from plugport.registry.search import sqlite as _sqlite
from plugport.registry.search.postgres import PostgresSearchBackend
from plugport.registry.search.query import (
    CategoryCount,
    Facets,
    SearchBackend,
    SearchHit,
    SearchQuery,
    SearchResult,
    include_schema_name,
)
from plugport.registry.search.sqlite import SqliteSearchBackend

__all__ = [
    "CategoryCount",
    "Facets",
    "PostgresSearchBackend",
    "SearchBackend",
    "SearchHit",
    "SearchQuery",
    "SearchResult",
    "SqliteSearchBackend",
    "clear_caches",
    "include_schema_name",
    "search_backend",
]

_BACKENDS: dict[str, SearchBackend] = {
    "sqlite": SqliteSearchBackend(),
    "postgresql": PostgresSearchBackend(),
}


def search_backend(bind: Session | Engine | Connection) -> SearchBackend:
    """The backend for the database behind ``bind`` (backends are stateless and shared)."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    name = engine.dialect.name
    try:
        return _BACKENDS[name]
    except KeyError:
        raise PlugportError(f"search supports SQLite and PostgreSQL, not {name}") from None


def clear_caches(*, words: bool = False) -> None:
    """Forget the kept FTS5 rankings and word counts and the kept API answers of every
    database, as a fresh process would have none (for measuring what a search costs without
    them); and with ``words``, SQLite's kept word lists for suggestions too (one per database,
    not per query: a process builds it once, and again at most once a minute after changes)."""
    _sqlite._RANKINGS.clear()
    _sqlite._HITS.clear()
    _postgres._RANKINGS.clear()
    _pages.clear()
    if words:
        _sqlite._VOCABULARIES.clear()
