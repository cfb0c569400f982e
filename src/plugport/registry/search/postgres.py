"""Search on PostgreSQL: ``plugins.search_vector`` is a stored generated tsvector (name weight
A, tags and categories B, display name and description C; migrations 0002, 0023), GIN-indexed,
ranked with ``ts_rank_cd`` with A:B:C weighted 3:2:1. Words in hundreds of names rank the
plugins they name first, most downloaded first (``RelevanceSearch._popular_first`` in
:mod:`.relevance`), counted off ``ix_plugins_name_words`` (migration 0016)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Connection,
    Engine,
    Float,
    Integer,
    Select,
    SQLColumnExpression,
    Subquery,
    Text,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REGCONFIG
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from plugport.registry.models import Plugin
from plugport.registry.search import typos
from plugport.registry.search.base import SqlSearchBackend
from plugport.registry.search.once import generation, search_settings
from plugport.registry.search.query import ESTIMATE_MARGIN, SearchQuery
from plugport.registry.search.rankings import Rankings

__all__ = ["RANK_WEIGHTS", "PostgresSearchBackend", "tsquery_text"]

RANK_WEIGHTS = "{0.1, 0.3333, 0.6667, 1.0}"
"""``ts_rank_cd`` weights for D, C, B, A: description and display name 1, tags 2, name 3."""

_VECTOR: ColumnClause[Any] = literal_column("plugins.search_vector")


def tsquery_text(terms: tuple[str, ...]) -> str:
    """``to_tsquery`` input: every term as a prefix (``term:*``), all required. Terms are
    letters and digits only, so ``&``, ``|``, ``!``, ``<->``, quotes and weights cannot be
    smuggled in."""
    return " & ".join(f"{term}:*" for term in terms)


def _tsquery(terms: tuple[str, ...]) -> ColumnElement[Any]:
    """Every term as a prefix, all required, as a ``tsquery`` of the 'simple' configuration
    (the one every indexed vector is built with)."""
    return func.to_tsquery(cast("simple", REGCONFIG), tsquery_text(terms))


def _matches(terms: tuple[str, ...]) -> ColumnElement[bool]:
    return _VECTOR.op("@@")(_tsquery(terms))


_NAME_WORDS: ColumnClause[Any] = literal_column(
    "to_tsvector('simple'::regconfig, translate(plugins.name, './@:', '    '))"
)
"""The name's part of ``search_vector`` (weight A), as ``ix_plugins_name_words`` (0016) indexes
it: written out, parameters and all, or the planner would not match the index."""


_NAME_VECTOR: ColumnClause[Any] = literal_column("plugins.name_vector")
"""The same words, stored (0026), where ``ix_plugins_popular_walk`` carries them."""


def _in_name(terms: tuple[str, ...]) -> ColumnElement[bool]:
    """Whether every term matches in the name; then it matches ``search_vector`` too."""
    return _NAME_WORDS.op("@@")(_tsquery(terms))


def _score(terms: tuple[str, ...]) -> ColumnElement[float]:
    return func.ts_rank_cd(literal_column(f"'{RANK_WEIGHTS}'::float4[]"), _VECTOR, _tsquery(terms))


RANKING_DEPTH = 2000
"""How many of the best-scored matches of a word set are kept between searches."""
RANKINGS_KEPT = 256
"""Word sets kept per database (least recently used go first)."""

# ts_rank_cd scores a plugin from its own text alone, which no change leaves unchanged without
# raising the search generation (migration 0006).
_RANKINGS = Rankings(generation, RANKINGS_KEPT)

_TRGM_SCHEMA = text(
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
    " WHERE e.extname = 'pg_trgm'"
)


_TRGM_SCHEMAS: WeakKeyDictionary[Engine | Connection, str] = WeakKeyDictionary()


def _trgm_schema(session: Session) -> str:
    """The schema ``pg_trgm`` is in: a database's own, read once per engine (the extension
    is created by migration 0023 and not moved while nodes run)."""
    bind = session.get_bind()
    schema = _TRGM_SCHEMAS.get(bind)
    if schema is None:
        schema = _TRGM_SCHEMAS[bind] = str(session.execute(_TRGM_SCHEMA).scalar_one())
    return schema


@functools.lru_cache(maxsize=16)
def _similar_words(schema: str, terms: int) -> TextClause:
    """For each of ``terms`` words (``:term0``, ``:term1``...; the row's ``n`` says which),
    the ``search_words`` nearest it, off its trigram index (0023), and those one edit away
    off its primary key (ranked as :func:`typos.Vocabulary.similar` ranks them); ``pg_trgm``
    is named by its schema, which need not be on the search path. Every word of a search in
    one statement: each was a round trip of its own.

    Two branches, each on its own index: as one ``WHERE ... OR word = ANY(:edits)``, the
    planner costed the few hundred edits' probes above a sequential scan and tested every
    word's trigrams instead (4 ms of 5,300 words, and growing with the vocabulary, where
    these take 0.5 ms)."""

    def nearest(i: int) -> str:
        similarity = f'"{schema}".similarity(word, :term{i})'
        return (
            f"(SELECT {i} AS n, word, max(similarity) AS similarity FROM ("  # noqa: S608
            f" SELECT word, {similarity} AS similarity FROM search_words"
            f' WHERE word OPERATOR("{schema}".%) :term{i} AND {similarity} >= :least'
            f" UNION ALL SELECT word, :edited FROM search_words WHERE word = ANY(:edits{i})"
            f") AS found WHERE word NOT LIKE :prefix{i}"
            " GROUP BY word ORDER BY similarity DESC, word LIMIT :limit)"
        )

    each = " UNION ALL ".join(nearest(i) for i in range(terms))
    return text(
        f"SELECT n, word, similarity FROM ({each}) AS nearest"  # noqa: S608
        " ORDER BY n, similarity DESC, word"
    )


def _starting(term: str) -> tuple[str, str] | None:
    """The range of ``name_words`` keys (in the "C" collation: code point order) that start
    with ``term``; None for a term ending in the last code point, which has no successor."""
    last = ord(term[-1])
    if last >= 0x10FFFF:
        return None
    return term, term[:-1] + chr(last + 1)


@functools.lru_cache(maxsize=8)
def _name_word_bounds(terms: int) -> TextClause:
    """For each of ``terms`` key ranges: the most plugins one of its words is named in, and
    the sum over its words (None when no name has one)."""
    return text(
        " UNION ALL ".join(
            f"(SELECT max(plugins) AS most, sum(plugins) AS total FROM name_words"  # noqa: S608
            f" WHERE word >= :lo{i} AND word < :hi{i})"
            for i in range(terms)
        )
    )


class PostgresSearchBackend(SqlSearchBackend):
    dialect = "postgresql"

    def _prepare(self, session: Session) -> None:
        # Every search reads a page off an index. With no statistics for the JSON predicates
        # of the permission indexes, the planner thinks few versions grant one and plans
        # parallel workers (or a nested loop) whose start alone costs ten times the query.
        # Nor JIT: a plan that reads every visible plugin costs over jit_above_cost, and
        # compiling its expressions took 8-12 ms of a 30 ms count, on every such search.
        # Both for the rest of the transaction, set with its first generation read if any.
        search_settings(session)

    def _match(self, stmt: Select[Any], terms: tuple[str, ...]) -> Select[Any]:
        return stmt.where(_matches(terms))

    # Relevance from candidates, as on SQLite: ordering every match by ts_rank_cd on every
    # search cost 40-170 ms for a common word at 100,000 plugins; the best are kept instead.

    def _scored(self, terms: tuple[str, ...]) -> Select[Any]:
        columns: list[Any] = [Plugin.id.label("plugin_id"), _score(terms).label("score")]
        return select(*columns).where(_matches(terms))

    def _tier(self, terms: tuple[str, ...]) -> ColumnElement[int]:
        return case((_in_name(terms), 0), else_=1)

    def _candidates(self, ids: Sequence[int], scores: Sequence[float]) -> Subquery:
        pairs = (
            func.unnest(
                literal(list(ids), ARRAY(Integer)),
                literal(list(scores), ARRAY(Float)),
            )
            .table_valued("plugin_id", "score")
            .render_derived("pairs")
        )
        return select(pairs.c.plugin_id, pairs.c.score, literal_column("0").label("tier")).subquery(
            "top"
        )

    def _rankings(self) -> tuple[Rankings, int]:
        return _RANKINGS, RANKING_DEPTH

    def _counts_while_scoring(self) -> bool:
        # Scoring reads every match's row already: counting the visible ones there costs
        # little, where counting them apart reads the words' GIN posting lists again (a
        # prefix's every word: 5-6 ms for 'config email' at 100,000 plugins).
        return True

    def _named(self, terms: tuple[str, ...]) -> ColumnElement[bool]:
        # Tested row by row while walking the downloads of the plugins a page may show: the
        # name's words are stored beside the order in ix_plugins_popular_walk (0026), so
        # the walk reads index pages alone, where testing weight A of search_vector fetched
        # every row walked.
        return _NAME_VECTOR.op("@@")(_tsquery(terms))

    def _named_known(self, session: Session, terms: tuple[str, ...], limit: int) -> bool | None:
        # The words each term starts, off name_words' key (0029), each with how many plugins
        # have it in their name: one short range read where counting the names matching a
        # common word, up to 500, read that many off the GIN index (1.3-1.7 ms at 100,000
        # plugins). A word in ``limit`` names makes its every prefix match that many; a term
        # whose words are in fewer names together matches fewer, and so do all the terms.
        params: dict[str, str] = {}
        for i, term in enumerate(terms):
            bounds = _starting(term)
            if bounds is None:
                return None
            params[f"lo{i}"], params[f"hi{i}"] = bounds
        rows = session.execute(_name_word_bounds(len(terms)), params).all()
        if any(total is None or total < limit for _, total in rows):
            return False
        if len(terms) == 1 and rows[0][0] >= limit:
            return True
        return None

    def _named_count(self, session: Session, terms: tuple[str, ...], limit: int) -> int:
        capped = select(Plugin.id).where(_in_name(terms)).limit(limit).subquery()
        return session.scalar(select(func.count()).select_from(capped)) or 0

    def _load(
        self, session: Session, ids: list[int], terms: tuple[str, ...]
    ) -> tuple[dict[int, Plugin], dict[int, float]]:
        # A score is an expression over the plugin's own row here: read with it, in one trip.
        if not terms:
            return super()._load(session, ids, terms)
        score = case((_matches(terms), _score(terms)), else_=None)
        rows = session.execute(select(Plugin, score).where(Plugin.id.in_(ids))).all()
        plugins = {plugin.id: plugin for plugin, _ in rows}
        return plugins, {plugin.id: float(value) for plugin, value in rows if value is not None}

    def _scores(self, session: Session, terms: tuple[str, ...], ids: list[int]) -> dict[int, float]:
        rows = session.execute(
            select(Plugin.id, _score(terms)).where(_matches(terms), Plugin.id.in_(ids))
        )
        return {int(plugin_id): float(score) for plugin_id, score in rows}

    def _surely_more(
        self, session: Session, query: SearchQuery, stmt: Select[Any], limit: int
    ) -> bool:
        # Counting the first thousand matches of a word in a tenth of 100,000 plugins reads
        # some 9,000 rows (8 ms), or the word's whole GIN posting lists to read a thousand
        # rows off them (6-10 ms for a prefix). The planner's estimate costs a plan (under a
        # millisecond) and, from the text column's word statistics, came within 10% for single
        # words and 1.5x for two at 100,000 plugins; only an estimate far beyond the limit
        # is trusted, and a total past the limit is shown as "at least" it anyway.
        compiled = stmt.compile(
            dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
        )
        plan = (
            session.connection()
            .exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params)
            .scalar_one()
        )
        return float(plan[0]["Plan"]["Plan Rows"]) >= ESTIMATE_MARGIN * limit

    def _similar(self, session: Session, term: str, limit: int) -> list[typos.Similar]:
        return self._similar_each(session, [term], limit)[term]

    def _similar_each(
        self, session: Session, terms: list[str], limit: int
    ) -> dict[str, list[typos.Similar]]:
        terms = list(dict.fromkeys(terms))  # a word given twice is looked up once
        found: dict[str, list[typos.Similar]] = {term: [] for term in terms}
        if not terms:
            return found
        params: dict[str, Any] = {"least": typos.SIMILARITY, "edited": typos.EDITED}
        params["limit"] = limit
        for i, term in enumerate(terms):
            params |= {
                f"term{i}": term,
                f"edits{i}": sorted(typos.edits(term)),
                f"prefix{i}": f"{term}%",
            }
        rows = session.execute(_similar_words(_trgm_schema(session), len(terms)), params)
        # search_words has no counts (see migration 0023): ties go by the word alone
        for n, word, similarity in rows:
            found[terms[n]].append(typos.Similar(str(word), round(float(similarity), 4), 0))
        return found

    def _contains(self, json_list: SQLColumnExpression[Any], value: str) -> ColumnElement[bool]:
        # Off ix_plugins_tags_values / ix_plugins_categories_values (0024): the expression is
        # theirs, written the same way.
        return cast(json_list, JSONB).op("@>")(cast(literal(json.dumps([value])), JSONB))

    def _elements(self, json_list: SQLColumnExpression[Any]) -> Any:
        return func.json_array_elements_text(json_list).table_valued("value")

    def _json_text(self, json_column: SQLColumnExpression[Any]) -> ColumnElement[str]:
        return cast(json_column, Text)
