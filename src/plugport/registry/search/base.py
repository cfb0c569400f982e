"""What a search asks for and what it returns, the backend interface, and the SQL both
database backends share: visibility, filters, sorts, paging. Each backend adds only its
full-text match and the few JSON expressions its dialect spells differently.

Parsing is pure: :meth:`SearchQuery.parse` takes the raw query-string values and either returns
a valid query or raises :class:`~plugport.errors.InvalidInputError` naming the parameter."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    Subquery,
    and_,
    case,
    exists,
    func,
    select,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import UnaryExpression

from plugport._manifest_fields import _host_app, _tag
from plugport.errors import InvalidInputError
from plugport.manifest import CATEGORIES, PERMISSION_NAMES
from plugport.registry.models import DailyStat, Plugin, PluginVersion
from plugport.registry.services.catalog import Candidate, choose_version
from plugport.versions import parse_version

if TYPE_CHECKING:
    from alembic.runtime.environment import NameFilterParentNames, NameFilterType

__all__ = [
    "DEFAULT_PER_PAGE",
    "MAX_PER_PAGE",
    "SEARCH_SCHEMA_OBJECTS",
    "SORTS",
    "TRENDING_DAYS",
    "CategoryCount",
    "SearchBackend",
    "SearchHit",
    "SearchQuery",
    "SearchResult",
    "SqlSearchBackend",
    "include_schema_name",
    "query_terms",
]

SORTS = ("relevance", "downloads", "rating", "recent", "trending", "name")
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
MAX_PAGE = 10_000
"""Deeper pages are refused: an offset that large is a crawler, and the index is for that."""
MAX_QUERY_CHARS = 200
MAX_TERMS = 16
TRENDING_DAYS = 7

# A term is a run of letters and digits: what SQLite's unicode61 tokenizer and the text the
# PostgreSQL column indexes (punctuation turned into spaces) both treat as one token. Nothing
# else reaches a MATCH or a tsquery, so no query syntax can be injected.
_TERM = re.compile(r"[^\W_]+")

SEARCH_SCHEMA_OBJECTS = frozenset(
    {
        "plugin_search",  # SQLite: the FTS5 table; its shadow tables share the prefix
        "search_vector",  # PostgreSQL: the generated column on plugins
        "ix_plugins_search_vector",  # PostgreSQL: its GIN index
    }
)


def include_schema_name(
    name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames
) -> bool:
    """Alembic's ``include_name`` hook: leave the dialect-specific search objects that 0002
    creates out of model comparison (the models describe what every dialect has)."""
    if name is None:
        return True
    return name not in SEARCH_SCHEMA_OBJECTS and not name.startswith("plugin_search_")


def query_terms(q: str) -> tuple[str, ...]:
    """The distinct words of ``q``, lower-cased, in order; each is searched as a prefix."""
    seen: dict[str, None] = {}
    for term in _TERM.findall(q.lower()):
        seen.setdefault(term, None)
    return tuple(seen)


def _integer(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise InvalidInputError(f"{name}: {raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise InvalidInputError(f"{name}: {value} is not between {low} and {high}")
    return value


@dataclass(frozen=True)
class SearchQuery:
    """One validated search. ``sort`` None means the default: relevance when ``q`` has words,
    else downloads; relevance without words (nothing to rank by) also becomes downloads.
    ``host``/``host_version`` keep only plugins with a published, non-yanked, final version
    that declares itself compatible (the same choice ``/resolve`` makes)."""

    q: str = ""
    category: str | None = None
    tag: str | None = None
    permission: str | None = None
    host: str | None = None
    host_version: str | None = None
    sort: str | None = None
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    terms: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if len(self.q) > MAX_QUERY_CHARS:
            raise InvalidInputError(f"q: longer than {MAX_QUERY_CHARS} characters")
        terms = query_terms(self.q)
        if len(terms) > MAX_TERMS:
            raise InvalidInputError(f"q: more than {MAX_TERMS} words")
        object.__setattr__(self, "terms", terms)
        if self.category is not None and self.category not in CATEGORIES:
            raise InvalidInputError(
                f"category: {self.category!r} is not one of {', '.join(CATEGORIES)}"
            )
        if self.tag is not None:
            try:
                _tag(self.tag)
            except ValueError as exc:
                raise InvalidInputError(f"tag: {exc}") from None
        if self.permission is not None and self.permission not in PERMISSION_NAMES:
            raise InvalidInputError(
                f"permission: {self.permission!r} is not one of {', '.join(PERMISSION_NAMES)}"
            )
        self._check_host()
        sort = self.sort or ("relevance" if terms else "downloads")
        if sort not in SORTS:
            raise InvalidInputError(f"sort: {sort!r} is not one of {', '.join(SORTS)}")
        object.__setattr__(self, "sort", "downloads" if sort == "relevance" and not terms else sort)
        if not 1 <= self.page <= MAX_PAGE:
            raise InvalidInputError(f"page: {self.page} is not between 1 and {MAX_PAGE}")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise InvalidInputError(
                f"per_page: {self.per_page} is not between 1 and {MAX_PER_PAGE}"
            )

    def _check_host(self) -> None:
        if (self.host is None) != (self.host_version is None):
            raise InvalidInputError("host and host_version: give both or neither")
        if self.host is not None:
            try:
                _host_app(self.host)
            except ValueError as exc:
                raise InvalidInputError(f"host: {exc}") from None
        if self.host_version is not None:
            try:
                parse_version(self.host_version)
            except ValueError:
                raise InvalidInputError(
                    f"host_version: {self.host_version!r} is not a PEP 440 version"
                ) from None

    @classmethod
    def parse(
        cls,
        *,
        q: str | None = None,
        category: str | None = None,
        tag: str | None = None,
        permission: str | None = None,
        host: str | None = None,
        host_version: str | None = None,
        sort: str | None = None,
        page: str | None = None,
        per_page: str | None = None,
    ) -> SearchQuery:
        """From query-string values; an empty value counts as absent (what an HTML form with
        a blank field sends)."""

        def given(value: str | None) -> str | None:
            return value.strip() or None if value is not None else None

        return cls(
            q=(q or "").strip(),
            category=given(category),
            tag=given(tag),
            permission=given(permission),
            host=given(host),
            host_version=given(host_version),
            sort=given(sort),
            page=_integer("page", given(page), 1, 1, MAX_PAGE),
            per_page=_integer("per_page", given(per_page), DEFAULT_PER_PAGE, 1, MAX_PER_PAGE),
        )

    @property
    def exact_name(self) -> str:
        """What ``q`` would be if it were a plugin's full name (those always rank first)."""
        return self.q.strip().lower()

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


@dataclass(frozen=True)
class SearchHit:
    plugin: Plugin
    score: float | None
    """Backend-specific (bm25 on SQLite, ts_rank_cd on PostgreSQL), higher is better; None
    when the query has no words."""


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    total: int
    """Every match, not just this page."""
    query: SearchQuery


@dataclass(frozen=True)
class CategoryCount:
    name: str
    count: int


class SearchBackend(Protocol):
    """Finds visible plugins. Implementations keep their index in step with ``plugins`` by
    themselves (triggers, generated columns): services never call them to re-index."""

    def search(self, session: Session, query: SearchQuery, *, today: date) -> SearchResult:
        """One page of matches, ranked; ``today`` anchors the trending window."""
        ...

    def categories(self, session: Session) -> list[CategoryCount]:
        """How many visible plugins are in each category, most populated first."""
        ...


def _visible() -> ColumnElement[bool]:
    """Published (a latest, non-yanked version exists), listed and not suspended."""
    return and_(Plugin.listed, ~Plugin.suspended, Plugin.latest_version.is_not(None))


class SqlSearchBackend:
    """The SQL both backends share; a subclass supplies the dialect's pieces."""

    dialect: ClassVar[str]
    _HOST_CHUNK = 500

    # --- what a dialect supplies ---------------------------------------------------------

    def _hits(self, terms: tuple[str, ...]) -> Subquery:
        """``(plugin_id, score)`` of every plugin whose text matches all ``terms`` as
        prefixes; higher score is more relevant."""
        raise NotImplementedError

    def _elements(self, json_list: SQLColumnExpression[Any]) -> Any:
        """The items of a JSON list column as a table-valued function with a ``value``
        column, correlated to the outer row."""
        raise NotImplementedError

    def _requests(self, manifest: SQLColumnExpression[Any], permission: str) -> ColumnElement[bool]:
        """Whether a manifest asks for ``permission`` (a non-empty list, a positive storage
        quota, ``config = true``)."""
        raise NotImplementedError

    # --- shared --------------------------------------------------------------------------

    def _contains(self, json_list: SQLColumnExpression[Any], value: str) -> ColumnElement[bool]:
        items = self._elements(json_list)
        return exists(select(items.c.value).where(items.c.value == value))

    def _filters(self, query: SearchQuery) -> list[ColumnElement[bool]]:
        filters = [_visible()]
        if query.category is not None:
            filters.append(self._contains(Plugin.categories, query.category))
        if query.tag is not None:
            filters.append(self._contains(Plugin.tags, query.tag))
        if query.permission is not None:
            filters.append(
                exists(
                    select(PluginVersion.id).where(
                        PluginVersion.plugin_id == Plugin.id,
                        PluginVersion.version == Plugin.latest_version,
                        PluginVersion.status == "published",
                        self._requests(PluginVersion.manifest, query.permission),
                    )
                )
            )
        return filters

    def _matching(
        self, query: SearchQuery, *columns: Any
    ) -> tuple[Select[Any], ColumnElement[Any] | None]:
        """``columns`` (plus the score when there are words) of every match, and the score."""
        hits = self._hits(query.terms) if query.terms else None
        score = hits.c.score if hits is not None else None
        stmt = select(*columns, *([score] if score is not None else []))
        if hits is not None:
            stmt = stmt.join(hits, hits.c.plugin_id == Plugin.id)
        return stmt.where(*self._filters(query)), score

    def _ordered(self, query: SearchQuery, *columns: Any, today: date) -> Select[Any]:
        """The matches in ``query``'s order; ties always fall back to the name, so pages
        never overlap."""
        stmt, score = self._matching(query, *columns)
        by_name = Plugin.name.asc()
        order: list[UnaryExpression[Any] | ColumnElement[Any]]
        if query.sort == "relevance" and score is not None:
            order = [
                case((Plugin.name == query.exact_name, 0), else_=1),
                case((Plugin.deprecated_reason.is_(None), 0), else_=1),
                score.desc(),
            ]
        elif query.sort == "rating":
            average = case(
                (Plugin.rating_count > 0, Plugin.rating_sum * 1.0 / Plugin.rating_count), else_=0
            )
            order = [average.desc(), Plugin.rating_count.desc()]
        elif query.sort == "recent":
            order = [Plugin.updated_at.desc()]
        elif query.sort == "trending":
            since = today - timedelta(days=TRENDING_DAYS - 1)
            weekly = (
                select(DailyStat.plugin_id, func.sum(DailyStat.downloads).label("downloads"))
                .where(DailyStat.day >= since, DailyStat.day <= today)
                .group_by(DailyStat.plugin_id)
                .subquery("weekly")
            )
            stmt = stmt.outerjoin(weekly, weekly.c.plugin_id == Plugin.id)
            order = [func.coalesce(weekly.c.downloads, 0).desc()]
        elif query.sort == "name":
            order = []
        else:  # downloads
            order = [Plugin.downloads.desc()]
        return stmt.order_by(*order, by_name)

    def search(self, session: Session, query: SearchQuery, *, today: date) -> SearchResult:
        if query.host is not None and query.host_version is not None:
            return self._search_for_host(session, query, query.host, query.host_version, today)
        rows = session.execute(
            self._ordered(query, Plugin, today=today).offset(query.offset).limit(query.per_page)
        ).all()
        counted = self._matching(query, Plugin.id)[0].subquery()
        total = session.scalar(select(func.count()).select_from(counted)) or 0
        hits = [SearchHit(row[0], float(row[1]) if len(row) > 1 else None) for row in rows]
        return SearchResult(hits, total, query)

    def _search_for_host(
        self, session: Session, query: SearchQuery, host: str, host_version: str, today: date
    ) -> SearchResult:
        """PEP 440 ranges cannot be evaluated in SQL, and compatibility depends on the version
        asked about, so nothing can be precomputed: rank the matches of every other filter in
        SQL, then keep those whose versions ``choose_version`` accepts, as ``/resolve`` would."""
        ranked = session.execute(self._ordered(query, Plugin.id, today=today)).all()
        compatible = self._compatible(session, [row[0] for row in ranked], host, host_version)
        kept = [row for row in ranked if row[0] in compatible]
        page = kept[query.offset : query.offset + query.per_page]
        plugins = {
            p.id: p
            for p in session.scalars(select(Plugin).where(Plugin.id.in_([row[0] for row in page])))
        }
        hits = [SearchHit(plugins[row[0]], float(row[1]) if len(row) > 1 else None) for row in page]
        return SearchResult(hits, len(kept), query)

    def _compatible(
        self, session: Session, ids: list[int], host: str, host_version: str
    ) -> set[int]:
        candidates: dict[int, list[Candidate]] = {}
        for start in range(0, len(ids), self._HOST_CHUNK):
            chunk = ids[start : start + self._HOST_CHUNK]
            rows = session.execute(
                select(
                    PluginVersion.plugin_id,
                    PluginVersion.version,
                    PluginVersion.manifest,
                    PluginVersion.yanked_reason,
                ).where(PluginVersion.plugin_id.in_(chunk), PluginVersion.status == "published")
            )
            for plugin_id, version, manifest, yanked_reason in rows:
                engines = dict(manifest.get("engines") or {})
                candidates.setdefault(plugin_id, []).append(
                    Candidate(version, engines, yanked_reason is not None)
                )
        return {
            plugin_id
            for plugin_id, versions in candidates.items()
            if choose_version(versions, {host: host_version})[0] is not None
        }

    def categories(self, session: Session) -> list[CategoryCount]:
        items = self._elements(Plugin.categories)
        count = func.count().label("count")
        rows = session.execute(
            select(items.c.value, count)
            .select_from(Plugin)
            .join(items, true())
            .where(_visible())
            .group_by(items.c.value)
            .order_by(count.desc(), items.c.value)
        )
        return [CategoryCount(str(name), int(n)) for name, n in rows]
