"""What a search asks for and what it returns, and the interface every backend implements.

Parsing is pure: :meth:`SearchQuery.parse` takes the raw query-string values and either returns
a valid query or raises :class:`~plugport.errors.InvalidInputError` naming the parameter."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session

from plugport._manifest_fields import _host_app, _tag
from plugport.errors import InvalidInputError
from plugport.manifest import CATEGORIES, PERMISSION_NAMES
from plugport.registry.models import Plugin
from plugport.versions import parse_version

if TYPE_CHECKING:
    from alembic.runtime.environment import NameFilterParentNames, NameFilterType

__all__ = [
    "COUNT_LIMIT",
    "DEFAULT_PER_PAGE",
    "ESTIMATE_MARGIN",
    "FACET_ROWS",
    "FACET_TAGS",
    "MAX_PER_PAGE",
    "SEARCH_SCHEMA_OBJECTS",
    "SORTS",
    "TRENDING_DAYS",
    "CategoryCount",
    "Facets",
    "SearchBackend",
    "SearchHit",
    "SearchQuery",
    "SearchResult",
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
COUNT_LIMIT = 1_000
"""Totals are exact up to here. Counting further means visiting every match (tens of
milliseconds at 100,000 plugins); past it a result says "at least this many"."""
ESTIMATE_MARGIN = 2
"""A count is left out when the database expects this many times the limit's matches or more
(PostgreSQL's planner, SQLite's kept word list: ``SqlSearchBackend._surely_more``)."""

# A term is a run of letters and digits: what SQLite's unicode61 tokenizer and the text the
# PostgreSQL column indexes (punctuation turned into spaces) both treat as one token. Nothing
# else reaches a MATCH or a tsquery, so no query syntax can be injected.
_TERM = re.compile(r"[^\W_]+")

SEARCH_SCHEMA_OBJECTS = frozenset(
    {
        "plugin_search",  # SQLite: the FTS5 table; its shadow tables share the prefix
        "search_vector",  # PostgreSQL: the generated column on plugins
        "ix_plugins_search_vector",  # PostgreSQL: its GIN index
        "ix_plugins_name_words",  # PostgreSQL: the name's words alone (0016)
        # the visible plugins' categories and tags, to count them: 0005 builds it differently
        # per dialect (PostgreSQL has no b-tree on json), so it is not in the models
        "ix_plugins_visible_lists",
        # the search generation (0006) and trending (0007): kept by triggers, not models
        "search_state",
        "trending",
        "trending_state",
        "ix_trending_downloads",
        # the words of names, tags and categories for "did you mean" (0023, PostgreSQL; on
        # SQLite FTS5's own word list, plugin_search_words)
        "search_words",
        "ix_search_words_trigrams",
        # PostgreSQL: the values of the tag and category lists (0024)
        "ix_plugins_tags_values",
        "ix_plugins_categories_values",
        # PostgreSQL: the name's words, stored, and the walk of popular-first pages (0026)
        "name_vector",
        "ix_plugins_popular_walk",
        # SQLite: how many visible plugins have each tag and category, kept by triggers (0027)
        "plugin_list_counts",
        # PostgreSQL: the visible rated plugins in the order of a rating page (0028)
        "ix_plugins_rating_walk",
        # PostgreSQL: how many plugins have each word in their name, kept by triggers (0029)
        "name_words",
    }
)


def include_schema_name(
    name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames
) -> bool:
    """Alembic's ``include_name`` hook: leave the dialect-specific search objects that 0002
    and 0005 create out of model comparison (the models describe what every dialect has)."""
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
    granted: frozenset[int] | None = field(default=None, compare=False, repr=False)
    """Set by the backend, not by callers: every plugin that ``permission`` matches, when
    there are few, so the other filters test membership rather
    than each plugin's latest version."""
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
    """Every match, not just this page, when ``total_is_estimate`` is false. Otherwise an
    estimate: :data:`COUNT_LIMIT` when counting stopped there (there are at least that many)
    or PostgreSQL's planner expects several times as many (see ``PostgresSearchBackend``), or
    the host filter was applied to the first few hundred matches only and the rest
    extrapolated."""
    query: SearchQuery
    total_is_estimate: bool = False
    did_you_mean: tuple[str, ...] = ()
    """Corrected queries, best first, when the words found fewer than a few plugins."""
    corrected_q: str | None = None
    """The corrected query whose matches follow those of ``q`` (all of them, when ``q``
    found none): the first of ``did_you_mean``."""


@dataclass(frozen=True)
class CategoryCount:
    name: str
    count: int


@dataclass(frozen=True)
class Facets:
    """How many matches each filter value would leave, every other filter kept: counted over
    at most :data:`FACET_ROWS` matches, so lower bounds when ``capped``. The host filter is
    not applied (it is decided per version, in Python, a page at a time)."""

    categories: list[CategoryCount]
    tags: list[CategoryCount]
    permissions: list[CategoryCount]
    capped: bool = False


FACET_ROWS = 2_000
"""Matches facets are counted over at most (a page never waits for more)."""
FACET_TAGS = 12
"""The most common tags shown."""


class SearchBackend(Protocol):
    """Finds visible plugins. Implementations keep their index in step with ``plugins`` by
    themselves (triggers, generated columns): services never call them to re-index."""

    def search(self, session: Session, query: SearchQuery, *, today: date) -> SearchResult:
        """One page of matches, ranked; ``today`` anchors the trending window."""
        ...

    def categories(self, session: Session) -> list[CategoryCount]:
        """How many visible plugins are in each category, most populated first."""
        ...

    def facets(self, session: Session, query: SearchQuery) -> Facets:
        """What each category, tag and permission would leave of ``query``'s matches."""
        ...
