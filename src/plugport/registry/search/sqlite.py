"""Search on SQLite with FTS5: ``plugin_search`` is an external-content index over
``plugins`` (name, tags, display_name, description, categories), kept in step by triggers
that migration 0002 creates (0023 adds the categories), ranked with bm25 weighting the name
3, tags and categories 2, the rest 1. Words in hundreds of names rank the plugins they name
first, most downloaded first (``RelevanceSearch._popular_first`` in :mod:`.relevance`), found
by a query restricted to the name column."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Select,
    SQLColumnExpression,
    String,
    Subquery,
    bindparam,
    case,
    column,
    func,
    literal_column,
    select,
    table,
    text,
    type_coerce,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from plugport.registry.models import Plugin
from plugport.registry.search import bm25, typos
from plugport.registry.search.base import SqlSearchBackend
from plugport.registry.search.once import once
from plugport.registry.search.query import ESTIMATE_MARGIN, SearchQuery
from plugport.registry.search.rankings import Kept, Rankings

__all__ = ["BM25_WEIGHTS", "SqliteSearchBackend", "match_expression"]

BM25_WEIGHTS = (3.0, 2.0, 1.0, 1.0, 2.0)
"""Per column of ``plugin_search``, in order: name, tags, display_name, description, and
categories (migration 0023), weighted as tags."""

_FTS = table("plugin_search", column("rowid"))
_FTS_NAME: ColumnClause[Any] = literal_column("plugin_search")


RANKING_DEPTH = 2000
"""How many of the best-scored matches of a word set are kept between searches."""
RANKINGS_KEPT = 256
"""Word sets kept per database (least recently used go first): 32 KB each at most."""

# FTS5's structure record (id 10) and averages record (id 1).
_INDEX_VERSION = text("SELECT id, block FROM plugin_search_data WHERE id IN (1, 10)")


def _index_version(session: Session) -> tuple[tuple[int, bytes], ...]:
    """Any insert, update or delete of indexed text rewrites both records when it commits:
    an FTS5 ranking (bm25 depends on every document) is exact while they are unchanged.
    ``(id, block)`` of each, by id; a table never written to has neither. Read once per
    transaction: the kept rankings, word counts and word list of one search all ask."""

    def read() -> tuple[tuple[int, bytes], ...]:
        rows = session.execute(_INDEX_VERSION).all()
        return tuple((int(record), bytes(block)) for record, block in sorted(rows))

    return once(session, "fts5_version", read)


_RANKINGS = Rankings(_index_version, RANKINGS_KEPT)

HITS_KEPT = 4096
"""Terms whose row counts (FTS5's IDF) are kept per database: 100 bytes each or so."""
_HITS: Kept[int] = Kept(_index_version, HITS_KEPT)
_HOLDING = text("SELECT count(*) FROM plugin_search WHERE plugin_search MATCH :match")

_COLUMNS = ("name", "tags", "display_name", "description", "categories")
"""``plugin_search``'s columns, in its order: ``plugins`` columns of the same names."""
_PAGE_TEXT = text(
    f"SELECT p.id, {', '.join(f'p.{name}' for name in _COLUMNS)}, d.sz"  # noqa: S608
    " FROM plugins AS p JOIN plugin_search_docsize AS d ON d.id = p.id WHERE p.id IN :ids"
).bindparams(bindparam("ids", expanding=True))
"""The indexed text of some plugins as FTS5 read it (lists as their stored JSON), and the
token count FTS5 stored for each of their columns."""

# FTS5's own word list (0023): the words of names, tags, display names and categories, with
# how many times plugins have each in one of them, how many have it in the one where most do,
# and how many in their name. Reading it walks the whole index, so it is kept (``typos``).
_WORDS = text(
    "SELECT term, sum(doc), max(doc), sum(CASE WHEN col = 'name' THEN doc ELSE 0 END)"
    " FROM plugin_search_words"
    " WHERE col IN ('name', 'tags', 'display_name', 'categories') GROUP BY term"
)


# How many visible plugins have a value in their tags or categories (0027, kept by triggers).
_LISTED = text("SELECT plugins FROM plugin_list_counts WHERE list = :list AND value = :value")
_CATEGORIES = text("SELECT value, plugins FROM plugin_list_counts WHERE list = 'categories'")


def _words(session: Session) -> list[tuple[str, int, int, int]]:
    return [
        (str(term), int(n), int(most), int(named))
        for term, n, most, named in session.execute(_WORDS)
    ]


_VOCABULARIES = typos.KeptVocabularies(_index_version, _words)


def match_expression(terms: tuple[str, ...]) -> str:
    """Every term must match, each as a prefix (as-you-type). Terms are letters and digits
    only, and quoted besides, so ``OR``, ``NEAR``, ``name:``, ``^`` are plain words here."""
    return " ".join(f'"{term}"*' for term in terms)


def _phrase(value: str) -> str:
    """``value`` as an FTS5 string: the phrase of its words, nothing of it syntax."""
    return '"' + value.replace('"', '""') + '"'


def _matches(terms: tuple[str, ...]) -> ColumnElement[bool]:
    return _FTS_NAME.op("MATCH")(match_expression(terms))


def _name_hits(terms: tuple[str, ...]) -> Select[Any]:
    """The rowids of the plugins whose name matches every term: the index queried with the
    name column alone."""
    return (
        select(literal_column("rowid"))
        .select_from(text("plugin_search"))
        .where(_FTS_NAME.op("MATCH")(f"{{name}} : ({match_expression(terms)})"))
    )


def _joined(stmt: Select[Any], match: ColumnElement[bool], name: str) -> Select[Any]:
    """``stmt`` joined to the text index's rows that ``match``: joined rather than IN (...),
    so the planner walks the index's matches and can stop at a LIMIT, where IN would first
    collect every one."""
    hits = select(_FTS.c.rowid.label("plugin_id")).where(match).subquery(name)
    return stmt.join(hits, hits.c.plugin_id == Plugin.id)


def _score() -> ColumnElement[float]:
    return -func.bm25(_FTS_NAME, *BM25_WEIGHTS)  # bm25 is lower-is-better


class SqliteSearchBackend(SqlSearchBackend):
    dialect = "sqlite"

    def _match(self, stmt: Select[Any], terms: tuple[str, ...]) -> Select[Any]:
        return _joined(stmt, _matches(terms), "hits")

    def _narrowed(self, stmt: Select[Any], query: SearchQuery) -> Select[Any]:
        # Counting the plugins with a tag (or category) in 3% of 100,000 walks the visible
        # plugins' lists until a thousand have it: some 30,000 rows (5 ms); with a word, its
        # matches until a thousand have it (10,000 rows for a category in a tenth, 11 ms).
        # The index knows the plugins whose list has the value's words (a superset: 'task' is
        # also a word of 'task-manager'), in plugin order: asked in the same MATCH as the
        # words, it hands over the rows that have both, and the exact test runs on those alone.
        listed = [
            f"{{{name}}} : {_phrase(value)}"
            for name, value in (("tags", query.tag), ("categories", query.category))
            if value is not None
        ]
        if query.terms:
            listed.insert(0, f"({match_expression(query.terms)})")
        if not listed:
            return stmt
        return _joined(stmt, _FTS_NAME.op("MATCH")(" AND ".join(listed)), "hits")

    def _scored(self, terms: tuple[str, ...]) -> Select[Any]:
        return select(_FTS.c.rowid.label("plugin_id"), _score().label("score")).where(
            _matches(terms)
        )

    def _tier(self, terms: tuple[str, ...]) -> ColumnElement[int]:
        # A second query of the index restricted to the name, read once into a list; the '+'
        # keeps FTS5 from running the outer query once per rowid in it.
        return case((self._unindexed(_FTS.c.rowid).in_(_name_hits(terms)), 0), else_=1)

    def _named(self, terms: tuple[str, ...]) -> ColumnElement[bool]:
        # The name's matches read once into a list, and the '+' keeps the planner from
        # looking each of them up by id and sorting them all: it walks the order's index
        # (downloads) instead, testing each plugin against the list, and stops at the page.
        return self._unindexed(Plugin.id.expression).in_(_name_hits(terms))

    def _visible_matches(self, session: Session, query: SearchQuery) -> int | None:
        # A tag or a category alone: its count is kept on write (0027), one row to read, where
        # counting would walk its plugins until a thousand passed (3-5 ms at 100,000).
        alone = not query.terms and query.permission is None
        if alone and query.category is None and query.tag is not None:
            return self._listed(session, "tags", query.tag)
        if alone and query.tag is None and query.category is not None:
            return self._listed(session, "categories", query.category)
        return super()._visible_matches(session, query)

    def _listed(self, session: Session, listed: str, value: str) -> int:
        return int(session.execute(_LISTED, {"list": listed, "value": value}).scalar() or 0)

    def _category_counts(self, session: Session) -> Counter[str]:
        # Kept on write (0027): grouping the visible plugins' lists read every one of them
        # (20 ms at 100,000 plugins, on the first look after each change).
        return Counter({str(name): int(n) for name, n in session.execute(_CATEGORIES)})

    def _named_known(self, session: Session, terms: tuple[str, ...], limit: int) -> bool | None:
        # Counting the names a word is in, up to 500, reads that many rows off the index's
        # name column (1-2 ms for a word in many names at 100,000 plugins). The kept word list
        # knows how many names have each common word: a prefix of one in ``limit`` names or
        # more is in at least that many. Only while the list is of the index as it is: a
        # stale one could tell a word's order otherwise than the next page of it is told.
        vocabulary = _VOCABULARIES.current(session) if len(terms) == 1 else None
        if vocabulary is not None and vocabulary.named_at_least(terms[0]) >= limit:
            return True
        return None

    def _named_count(self, session: Session, terms: tuple[str, ...], limit: int) -> int:
        capped = _name_hits(terms).limit(limit).subquery()
        return session.scalar(select(func.count()).select_from(capped)) or 0

    def _candidates(self, ids: Sequence[int], scores: Sequence[float]) -> Subquery:
        pairs = func.json_each(json.dumps(list(zip(ids, scores, strict=True)))).table_valued(
            "value"
        )
        return select(
            func.json_extract(pairs.c.value, "$[0]").label("plugin_id"),
            func.json_extract(pairs.c.value, "$[1]").label("score"),
            literal_column("0").label("tier"),
        ).subquery("top")

    def _rankings(self) -> tuple[Rankings, int]:
        return _RANKINGS, RANKING_DEPTH

    def _scores(self, session: Session, terms: tuple[str, ...], ids: list[int]) -> dict[int, float]:
        scores: dict[int, float] = {}
        rest = ids
        if all(term.isascii() for term in terms):
            scores, rest = self._scores_here(session, terms, ids)
        if rest:
            scores |= self._scores_by_index(session, terms, rest)
        return scores

    def _scores_here(
        self, session: Session, terms: tuple[str, ...], ids: list[int]
    ) -> tuple[dict[int, float], list[int]]:
        """bm25 of those of ``ids`` that match, worked out from their text (see :mod:`.bm25`),
        and the ids left to FTS5 (text that is not ASCII, or not as FTS5 counted it)."""
        records = _index_version(session)
        averages = dict(records).get(1)
        whole = bm25.totals(averages) if averages else None
        if whole is None or not whole.rows:
            return {}, ids
        scores: dict[int, float] = {}
        decided: set[int] = set()
        hits: list[int] | None = None
        for plugin_id, *columns, sizes in session.execute(_PAGE_TEXT, {"ids": ids}):
            size = bm25.varints(sizes)
            found = bm25.frequencies(columns, size, terms, BM25_WEIGHTS)
            if found is None:
                continue
            decided.add(plugin_id)
            if not all(found):  # a term it does not hold: no match
                continue
            if hits is None:
                hits = [self._holding(session, term, records) for term in terms]
            scores[plugin_id] = bm25.score(found, sum(size), hits, whole)
        return scores, [plugin_id for plugin_id in ids if plugin_id not in decided]

    def _holding(self, session: Session, term: str, version: Hashable) -> int:
        """How many rows hold ``term`` (as a prefix), as FTS5's bm25 counts them; kept."""
        held = _HITS.at(session, term, version)
        if held is None:
            match = match_expression((term,))
            held = int(session.execute(_HOLDING, {"match": match}).scalar_one())
            _HITS.put(session, term, version, held)
        return held

    def _scores_by_index(
        self, session: Session, terms: tuple[str, ...], ids: list[int]
    ) -> dict[int, float]:
        # FTS5 runs the whole query once per value of a ``rowid IN (...)`` it is handed, and
        # setting up a prefix query merges every matching term's list (~5 ms for a common
        # word at 100,000 plugins; 20 ids took 90 ms). Handed only the range, it runs once;
        # the IN, hidden from it by the '+', is tested before bm25 is computed.
        rowid = _FTS.c.rowid
        wanted = self._unindexed(rowid).in_(ids) if len(ids) > 1 else rowid == ids[0]
        rows = session.execute(
            select(rowid, _score()).where(
                _matches(terms), rowid >= min(ids), rowid <= max(ids), wanted
            )
        )
        return {int(plugin_id): float(score) for plugin_id, score in rows}

    def _similar(self, session: Session, term: str, limit: int) -> list[typos.Similar]:
        return _VOCABULARIES.get(session).similar(term, limit)

    def _surely_more(
        self, session: Session, query: SearchQuery, stmt: Select[Any], limit: int
    ) -> bool:
        # Counting the first thousand visible matches of a word in a tenth of 100,000 plugins
        # joins them to ``plugins`` one by one (1-2 ms, the costliest statement of such a
        # search after scoring its page). The word list kept for suggestions knows how many
        # plugins have each common word in their name, tags or categories (at least); one
        # word alone found in twice the limit's plugins is trusted to find the limit, as
        # PostgreSQL trusts its planner's estimate, and "at least" is what is shown anyway.
        # Not when the list has yet to be built (the first suggestion builds it), nor with
        # filters, which may leave fewer.
        filtered = (query.category, query.tag, query.permission) != (None, None, None)
        if filtered or len(query.terms) != 1:
            return False
        vocabulary = _VOCABULARIES.kept(session)
        return (
            vocabulary is not None
            and vocabulary.plugins_at_least(query.terms[0]) >= ESTIMATE_MARGIN * limit
        )

    def _elements(self, json_list: SQLColumnExpression[Any]) -> Any:
        return func.json_each(json_list).table_valued("value")

    def _json_text(self, json_column: SQLColumnExpression[Any]) -> ColumnElement[str]:
        return type_coerce(json_column, String)  # stored as text already

    def _unindexed(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        # '+column': with both columns of a lookup equal, SQLite prefers the unique index on
        # (plugin_id, version) and reads every manifest, where the partial index of versions
        # granting the permission would answer without one.
        return UnaryExpression(column, operator=operators.custom_op("+"))
