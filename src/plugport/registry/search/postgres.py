"""Search on PostgreSQL: ``plugins.search_vector`` is a stored generated tsvector (name weight
A, tags B, display name and description C; migration 0002), GIN-indexed, ranked with
``ts_rank_cd`` with A:B:C weighted 3:2:1."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Select,
    SQLColumnExpression,
    Text,
    cast,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.orm import Session

from plugport.registry.models import Plugin
from plugport.registry.search.base import SqlSearchBackend

__all__ = ["RANK_WEIGHTS", "PostgresSearchBackend", "tsquery_text"]

RANK_WEIGHTS = "{0.1, 0.3333, 0.6667, 1.0}"
"""``ts_rank_cd`` weights for D, C, B, A: description and display name 1, tags 2, name 3."""

_VECTOR: ColumnClause[Any] = literal_column("plugins.search_vector")
_NO_PARALLEL_WORKERS = text("SET LOCAL max_parallel_workers_per_gather = 0")


def tsquery_text(terms: tuple[str, ...]) -> str:
    """``to_tsquery`` input: every term as a prefix (``term:*``), all required. Terms are
    letters and digits only, so ``&``, ``|``, ``!``, ``<->``, quotes and weights cannot be
    smuggled in."""
    return " & ".join(f"{term}:*" for term in terms)


def _matches(terms: tuple[str, ...]) -> ColumnElement[bool]:
    return _VECTOR.op("@@")(func.to_tsquery(cast("simple", REGCONFIG), tsquery_text(terms)))


def _score(terms: tuple[str, ...]) -> ColumnElement[float]:
    tsquery = func.to_tsquery(cast("simple", REGCONFIG), tsquery_text(terms))
    return func.ts_rank_cd(literal_column(f"'{RANK_WEIGHTS}'::float4[]"), _VECTOR, tsquery)


class PostgresSearchBackend(SqlSearchBackend):
    dialect = "postgresql"

    def _prepare(self, session: Session) -> None:
        # Every search reads a page off an index. With no statistics for the JSON predicates
        # of the permission indexes, the planner thinks few versions grant one and plans
        # parallel workers (or a nested loop) whose start alone costs ten times the query.
        session.execute(_NO_PARALLEL_WORKERS)

    def _match(self, stmt: Select[Any], terms: tuple[str, ...]) -> Select[Any]:
        return stmt.where(_matches(terms))

    def _row_score(self, terms: tuple[str, ...]) -> ColumnElement[float] | None:
        return _score(terms)

    def _scores(self, session: Session, terms: tuple[str, ...], ids: list[int]) -> dict[int, float]:
        rows = session.execute(
            select(Plugin.id, _score(terms)).where(_matches(terms), Plugin.id.in_(ids))
        )
        return {int(plugin_id): float(score) for plugin_id, score in rows}

    def _elements(self, json_list: SQLColumnExpression[Any]) -> Any:
        return func.json_array_elements_text(json_list).table_valued("value")

    def _json_text(self, json_column: SQLColumnExpression[Any]) -> ColumnElement[str]:
        return cast(json_column, Text)
