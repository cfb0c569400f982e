"""Search on PostgreSQL: ``plugins.search_vector`` is a stored generated tsvector (name weight
A, tags B, display name and description C; migration 0002), GIN-indexed, ranked with
``ts_rank_cd`` with A:B:C weighted 3:2:1."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    SQLColumnExpression,
    Subquery,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.types import BigInteger

from plugport.registry.models import Plugin
from plugport.registry.search.base import SqlSearchBackend

__all__ = ["RANK_WEIGHTS", "PostgresSearchBackend", "tsquery_text"]

RANK_WEIGHTS = "{0.1, 0.3333, 0.6667, 1.0}"
"""``ts_rank_cd`` weights for D, C, B, A: description and display name 1, tags 2, name 3."""

_VECTOR: ColumnClause[Any] = literal_column("plugins.search_vector")


def tsquery_text(terms: tuple[str, ...]) -> str:
    """``to_tsquery`` input: every term as a prefix (``term:*``), all required. Terms are
    letters and digits only, so ``&``, ``|``, ``!``, ``<->``, quotes and weights cannot be
    smuggled in."""
    return " & ".join(f"{term}:*" for term in terms)


class PostgresSearchBackend(SqlSearchBackend):
    dialect = "postgresql"

    def _hits(self, terms: tuple[str, ...]) -> Subquery:
        tsquery = func.to_tsquery(cast("simple", REGCONFIG), tsquery_text(terms))
        rank = func.ts_rank_cd(literal_column(f"'{RANK_WEIGHTS}'::float4[]"), _VECTOR, tsquery)
        return (
            select(Plugin.id.label("plugin_id"), rank.label("score"))
            .where(_VECTOR.op("@@")(tsquery))
            .subquery("hits")
        )

    def _elements(self, json_list: SQLColumnExpression[Any]) -> Any:
        return func.json_array_elements_text(json_list).table_valued("value")

    def _requests(self, manifest: SQLColumnExpression[Any], permission: str) -> ColumnElement[bool]:
        def at(path: str) -> ColumnElement[Any]:  # the JSON at a constant path
            return manifest.op("#>")(literal_column(f"'{{permissions,{path}}}'"))

        def text_at(path: str) -> ColumnElement[Any]:
            return manifest.op("#>>")(literal_column(f"'{{permissions,{path}}}'"))

        def length(path: str) -> ColumnElement[Any]:
            return func.coalesce(func.json_array_length(at(path)), 0)

        if permission == "storage":
            return func.coalesce(cast(text_at("storage"), BigInteger), 0) > 0
        if permission == "config":
            return text_at("config") == "true"
        if permission == "events":
            return length("events,publish") + length("events,subscribe") > 0
        return length(permission) > 0  # network, ui
