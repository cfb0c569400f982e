"""Search on SQLite with FTS5: ``plugin_search`` is an external-content index over
``plugins`` (name, tags, display_name, description), kept in step by triggers that migration
0002 creates, ranked with bm25 weighting the name 3, tags 2, the rest 1."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    SQLColumnExpression,
    Subquery,
    column,
    func,
    literal_column,
    select,
    table,
)

from plugport.registry.search.base import SqlSearchBackend

__all__ = ["BM25_WEIGHTS", "SqliteSearchBackend", "match_expression"]

BM25_WEIGHTS = (3.0, 2.0, 1.0, 1.0)
"""Per column of ``plugin_search``, in order: name, tags, display_name, description."""

_FTS = table("plugin_search", column("rowid"))
_FTS_NAME: ColumnClause[Any] = literal_column("plugin_search")


def match_expression(terms: tuple[str, ...]) -> str:
    """Every term must match, each as a prefix (as-you-type). Terms are letters and digits
    only, and quoted besides, so ``OR``, ``NEAR``, ``name:``, ``^`` are plain words here."""
    return " ".join(f'"{term}"*' for term in terms)


class SqliteSearchBackend(SqlSearchBackend):
    dialect = "sqlite"

    def _hits(self, terms: tuple[str, ...]) -> Subquery:
        rank = -func.bm25(_FTS_NAME, *BM25_WEIGHTS)  # bm25 is lower-is-better
        return (
            select(_FTS.c.rowid.label("plugin_id"), rank.label("score"))
            .where(_FTS_NAME.op("MATCH")(match_expression(terms)))
            .subquery("hits")
        )

    def _elements(self, json_list: SQLColumnExpression[Any]) -> Any:
        return func.json_each(json_list).table_valued("value")

    def _requests(self, manifest: SQLColumnExpression[Any], permission: str) -> ColumnElement[bool]:
        def length(path: str) -> ColumnElement[Any]:
            return func.coalesce(func.json_array_length(manifest, f"$.permissions.{path}"), 0)

        if permission == "storage":
            return func.coalesce(func.json_extract(manifest, "$.permissions.storage"), 0) > 0
        if permission == "config":
            return func.coalesce(func.json_extract(manifest, "$.permissions.config"), 0) == 1
        if permission == "events":
            return length("events.publish") + length("events.subscribe") > 0
        return length(permission) > 0  # network, ui
