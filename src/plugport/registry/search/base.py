"""The SQL both database backends share: visibility, filters, sorts, paging, totals. Each
backend adds only its full-text match and the few JSON expressions its dialect spells
differently. What a search asks for and returns is in :mod:`.query`; the relevance order
is in :mod:`.relevance`."""

from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Integer,
    Select,
    SQLColumnExpression,
    Table,
    and_,
    case,
    column,
    exists,
    func,
    literal_column,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.orm import Session

from plugport.manifest import PERMISSION_NAMES
from plugport.registry.models import DailyStat, Plugin, PluginVersion
from plugport.registry.search import typos
from plugport.registry.search.query import (
    COUNT_LIMIT,
    FACET_ROWS,
    FACET_TAGS,
    TRENDING_DAYS,
    CategoryCount,
    Facets,
    SearchHit,
    SearchQuery,
    SearchResult,
)
from plugport.registry.search.relevance import RelevanceSearch, Row
from plugport.registry.services.catalog import Candidate, choose_version

__all__ = ["SqlSearchBackend"]

FEW_GRANTED = 200
"""A permission asked for by at most this many plugins' latest versions is searched through
their list (see ``SqlSearchBackend._granted``)."""


def _visible() -> ColumnElement[bool]:
    """Published (a latest, non-yanked version exists), listed and not suspended. The partial
    indexes in ``models`` carry this very predicate, which is how the planners pick them."""
    return and_(Plugin.listed, ~Plugin.suspended, Plugin.latest_version.is_not(None))


def _rated() -> ColumnElement[bool]:
    # A literal, as in ix_plugins_visible_rated's predicate: a bound parameter would not match.
    return Plugin.rating_count > literal_column("0")


@functools.lru_cache(maxsize=4096)
def _accepts(
    versions: tuple[tuple[str, str | None, bool], ...], host: str, host_version: str
) -> bool:
    """Whether ``choose_version`` finds a version for ``host`` among ``(version, range for the
    host or None, yanked)``. Plugins share a handful of version numbers and ranges, so the
    PEP 440 work is mostly done once."""
    candidates = [
        Candidate(version, {host: spec} if spec is not None else {}, yanked)
        for version, spec, yanked in versions
    ]
    return choose_version(candidates, {host: host_version})[0] is not None


def _index_predicate(table: Table, name: str, dialect: str) -> ColumnElement[bool]:
    index = next(i for i in table.indexes if i.name == name)
    predicate: ColumnElement[bool] = index.dialect_options[dialect]["where"]
    return predicate


_TRENDING = table("trending", column("plugin_id", Integer), column("downloads", BigInteger))
"""Each plugin's downloads over the week to ``trending_state.through_day`` (migration 0007)."""
_STATE = table("trending_state", column("id", Integer), column("through_day", Date))


def _by_count(counts: Counter[str], limit: int | None = None) -> list[CategoryCount]:
    """The values counted, most first, ties by name, the first ``limit``; none counted 0."""
    items = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [CategoryCount(name, n) for name, n in items if n > 0]


class SqlSearchBackend(RelevanceSearch):
    """The SQL both backends share; a subclass supplies the dialect's pieces.

    Every order reads a page without touching every match: the browse orders off partial
    indexes over the visible plugins; relevance from the best-scored few hundred matches (more
    only when filters leave too few of them), and for words in hundreds of names from the most
    downloaded of the plugins they name (:meth:`_popular_first`); rating and trending as a
    small sorted head (the rated plugins, the plugins downloaded this week) followed by
    everything else by name. Totals are counted only up to :data:`COUNT_LIMIT`."""

    dialect: ClassVar[str]
    _HOST_BATCH = 20
    """The host filter's first window is twice the page it fills, and at least this long."""

    # --- what a dialect supplies ---------------------------------------------------------

    def _match(self, stmt: Select[Any], terms: tuple[str, ...]) -> Select[Any]:
        """``stmt`` (over ``plugins``) narrowed to the plugins whose text matches all
        ``terms`` as prefixes."""
        raise NotImplementedError

    def _elements(self, json_list: SQLColumnExpression[Any]) -> Any:
        """The items of a JSON list column as a table-valued function with a ``value``
        column, correlated to the outer row."""
        raise NotImplementedError

    def _json_text(self, json_column: SQLColumnExpression[Any]) -> ColumnElement[str]:
        """A JSON column as its stored text."""
        raise NotImplementedError

    def _prepare(self, session: Session) -> None:
        """Settings for the rest of the session's transaction, before the first search."""

    def _unindexed(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """``column``, hidden from index choice where the planner would otherwise take a worse
        index for it."""
        return column

    def _similar(self, session: Session, term: str, limit: int) -> list[typos.Similar]:
        """The ``limit`` words of the index most similar to ``term`` (see :mod:`.typos`)."""
        raise NotImplementedError

    def _similar_each(
        self, session: Session, terms: list[str], limit: int
    ) -> dict[str, list[typos.Similar]]:
        """:meth:`_similar` of each of ``terms``; a dialect may ask for all in one trip."""
        return {term: self._similar(session, term, limit) for term in terms}

    def _narrowed(self, stmt: Select[Any], query: SearchQuery) -> Select[Any]:
        """``stmt`` (the visible plugins that pass the filters of ``query``) narrowed to the
        matches of its words, to count them, with whatever else lets the database find them
        sooner: the same rows."""
        return self._match(stmt, query.terms) if query.terms else stmt

    def _surely_more(
        self, session: Session, query: SearchQuery, stmt: Select[Any], limit: int
    ) -> bool:
        """Whether ``query`` (whose matches ``stmt`` selects) is expected to find many times
        ``limit`` rows, so that counting up to ``limit`` can be left out (see
        :meth:`_count`)."""
        return False

    # --- filters -------------------------------------------------------------------------

    def _contains(self, json_list: SQLColumnExpression[Any], value: str) -> ColumnElement[bool]:
        """Whether a JSON list of tags or categories holds ``value``. Such values are letters,
        digits and '-' only, so ``"value"`` occurs in the list's text when the list holds it:
        that substring test rules out almost every row without parsing any JSON, and the
        exact test runs on the few that remain."""
        items = self._elements(json_list)
        return and_(
            self._json_text(json_list).contains(f'"{value}"', autoescape=True),
            exists(select(items.c.value).where(items.c.value == value)),
        )

    def _grant_predicate(self, permission: str) -> ColumnElement[bool]:
        """Whether a version row is published and asks for ``permission``: the predicate of
        ``ix_plugin_versions_grants_<permission>`` itself, so the planner can use that index
        and never read a manifest."""
        return _index_predicate(
            PluginVersion.__table__,  # type: ignore[arg-type]
            f"ix_plugin_versions_grants_{permission}",
            self.dialect,
        )

    def _grants(self, permission: str) -> ColumnElement[bool]:
        """Whether the plugin's latest published version asks for ``permission``; tested per
        plugin, for orders that walk the plugins and stop at a full page."""
        return exists(
            select(literal_column("1"))
            .select_from(PluginVersion)
            .where(self._latest_grants(permission))
        )

    def _filters(self, query: SearchQuery, *, permission: bool = True) -> list[ColumnElement[bool]]:
        filters = [_visible()]
        if query.category is not None:
            filters.append(self._contains(Plugin.categories, query.category))
        if query.tag is not None:
            filters.append(self._contains(Plugin.tags, query.tag))
        if query.permission is not None and permission:
            if query.granted is not None:
                filters.append(Plugin.id.in_(sorted(query.granted)))
            else:
                filters.append(self._grants(query.permission))
        return filters

    def _granted(self, session: Session, permission: str) -> frozenset[int] | None:
        """The visible plugins whose latest published version asks for ``permission``, read
        off its partial index, when there are at most :data:`FEW_GRANTED`; else None. A rare
        permission is then a short list to test membership of: walking every plugin in the
        order asked for and testing each one's latest version would visit all of them. (A
        common one stops the walk soon; finding out which it is reads that many rows.)"""
        stmt = (
            select(Plugin.id)
            .join(PluginVersion, self._latest_grants(permission))
            .where(_visible())
            .limit(FEW_GRANTED + 1)
        )
        ids = session.scalars(stmt).all()
        return frozenset(ids) if len(ids) <= FEW_GRANTED else None

    def _latest_grants(self, permission: str) -> ColumnElement[bool]:
        """Join condition: a plugin's latest published version, asking for ``permission``."""
        return and_(
            PluginVersion.plugin_id == Plugin.id,
            self._unindexed(PluginVersion.version.expression) == Plugin.latest_version,
            self._grant_predicate(permission),
        )

    def _matching(self, query: SearchQuery, *columns: Any) -> Select[Any]:
        """``columns`` of every visible plugin matching the words and filters of ``query``."""
        stmt = select(*columns).where(*self._filters(query))
        return self._match(stmt, query.terms) if query.terms else stmt

    # --- one window of the order ---------------------------------------------------------

    def _window(
        self, session: Session, query: SearchQuery, offset: int, limit: int, *, today: date
    ) -> list[Row]:
        """The matches at ``offset`` .. ``offset + limit`` in ``query``'s order; ties always
        fall back to the name, so windows never overlap. A match's score may be None where
        the order did not need it: :meth:`_hits` scores those of the page it shows."""
        if query.sort == "relevance" and query.terms:
            return self._relevance_window(session, query, offset, limit)
        if query.sort == "rating":
            rated = (
                self._matching(query, Plugin.id)
                .where(_rated())
                .order_by(
                    (Plugin.rating_sum * literal_column("1.0") / Plugin.rating_count).desc(),
                    Plugin.rating_count.desc(),
                    Plugin.name,
                )
                .limit(offset + limit)
            )
            rows = self._split_window(
                session,
                offset,
                limit,
                [(row[0], None) for row in session.execute(rated)],
                tail=self._matching(query, Plugin.id).where(~_rated()),
            )
        elif query.sort == "trending":
            self._trending(session, today)
            downloaded = _TRENDING.c.downloads > literal_column("0")
            rows = self._split_window(
                session,
                offset,
                limit,
                self._walk_trending(session, query, offset + limit),
                tail=self._matching(query, Plugin.id).where(
                    Plugin.id.not_in(select(_TRENDING.c.plugin_id).where(downloaded))
                ),
            )
        else:
            stmt = self._matching(query, Plugin.id)
            if query.sort == "downloads":
                stmt = stmt.order_by(Plugin.downloads.desc())
            elif query.sort == "recent":
                stmt = stmt.order_by(Plugin.updated_at.desc())
            stmt = stmt.order_by(Plugin.name)
            ids = session.scalars(stmt.offset(offset).limit(limit)).all()
            rows = [(plugin_id, None) for plugin_id in ids]
        return rows

    def _split_window(
        self, session: Session, offset: int, limit: int, head: list[Row], *, tail: Select[Any]
    ) -> list[Row]:
        """A window of an order that is a small head in its own order followed by ``tail``
        (the other matches) by name. ``head`` holds its first ``offset + limit`` rows, or all
        of them when shorter; that is also how long it is."""
        end = offset + limit
        if len(head) == end:
            return head[offset:]
        taken = head[offset:]
        skip = max(0, offset - len(head))
        rest = session.scalars(
            tail.order_by(Plugin.name).offset(skip).limit(limit - len(taken))
        ).all()
        return taken + [(plugin_id, None) for plugin_id in rest]

    def _trending(self, session: Session, today: date) -> None:
        """Make ``trending`` the week to ``today``. Triggers keep it in step with every count
        written; only when the day moves on is the week summed afresh, once, by whichever
        search comes first, in the caller's transaction (should it roll back, the next search
        sums again). On PostgreSQL, moving ``through_day`` waits for the counts being written
        to commit, and counts written after wait for the move and see the new week."""
        through_day = select(_STATE.c.through_day).where(_STATE.c.id == 1)
        if session.execute(through_day).scalar() == today:
            return
        moved = session.connection().execute(
            update(_STATE)
            .where(
                _STATE.c.id == 1,
                or_(_STATE.c.through_day.is_(None), _STATE.c.through_day < today),
            )
            .values(through_day=today)
        )
        if not moved.rowcount:  # moved by another search meanwhile, or this node is behind
            return
        since = today - timedelta(days=TRENDING_DAYS - 1)
        summed = (
            select(DailyStat.plugin_id, func.sum(DailyStat.downloads))
            .where(DailyStat.day >= since, DailyStat.day <= today)
            .group_by(DailyStat.plugin_id)
            .having(func.sum(DailyStat.downloads) != 0)
        )
        session.execute(_TRENDING.delete())
        session.execute(_TRENDING.insert().from_select(["plugin_id", "downloads"], summed))

    def _walk_trending(self, session: Session, query: SearchQuery, end: int) -> list[Row]:
        """The first ``end`` visible matches of ``query`` among the plugins downloaded this
        week, most downloads first, ties by name (all of them when fewer). ``trending`` is read
        off its index a stretch at a time, each stretch ending with a whole run of equal counts
        (so that ties are ordered by name across stretches), and only the plugins of a stretch
        are tested against the words and filters: a join would test every match instead."""
        kept: list[Row] = []
        step = max(2 * end, 200)
        below: int | None = None
        while len(kept) < end:
            stretch = (
                select(_TRENDING.c.plugin_id, _TRENDING.c.downloads)
                .where(_TRENDING.c.downloads > literal_column("0"))
                .order_by(_TRENDING.c.downloads.desc())
                .limit(step)
            )
            if below is not None:
                stretch = stretch.where(_TRENDING.c.downloads < below)
            counts: dict[int, int] = {row[0]: row[1] for row in session.execute(stretch)}
            if not counts:
                break
            below = min(counts.values())
            if len(counts) == step:  # the last run of equal counts may go on: all of it
                rest = select(_TRENDING.c.plugin_id).where(_TRENDING.c.downloads == below)
                counts.update((plugin_id, below) for plugin_id in session.scalars(rest))
            matching = session.execute(
                self._matching(query, Plugin.id, Plugin.name).where(Plugin.id.in_(list(counts)))
            )
            ordered = sorted(
                ((row[0], row[1]) for row in matching), key=lambda row: (-counts[row[0]], row[1])
            )
            kept += [(plugin_id, None) for plugin_id, _ in ordered]
            if len(counts) < step:
                break
        return kept[:end]

    # --- search ------------------------------------------------------------------------------

    def search(self, session: Session, query: SearchQuery, *, today: date) -> SearchResult:
        self._prepare(session)
        result = self._search(session, query, today)
        if (
            query.terms
            and query.page == 1
            and result.total < typos.FEW_RESULTS
            and not any(hit.plugin.name == query.exact_name for hit in result.hits)
        ):
            return self._with_corrections(session, result, today)
        return result

    def _search(self, session: Session, query: SearchQuery, today: date) -> SearchResult:
        if query.permission is not None and query.granted is None:
            granted = self._granted(session, query.permission)
            if granted is not None:
                if not granted:
                    return SearchResult([], 0, query, False)
                query = replace(query, granted=granted)
        if query.host is not None and query.host_version is not None:
            return self._search_for_host(session, query, query.host, query.host_version, today)
        rows = self._window(session, query, query.offset, query.per_page, today=today)
        if len(rows) < query.per_page and (rows or query.offset == 0):
            total, estimate = query.offset + len(rows), False  # the page holds the last match
        else:
            total, estimate = self._count(session, query)
        return SearchResult(self._hits(session, rows, query.terms), total, query, estimate)

    def _with_corrections(
        self, session: Session, result: SearchResult, today: date
    ) -> SearchResult:
        """A first page that found fewer than a few plugins, followed by the matches of the
        best corrected query (all of them when it found none), and the corrected queries to
        offer. Only words of :data:`~.typos.MIN_TERM` letters or more, and letters only, are
        corrected (a name's 'pomodoro4946' is no misspelling), and not when the query is a
        plugin's full name (then it found what it looked for)."""
        query = result.query
        similar = self._similar_each(
            session,
            [term for term in query.terms if len(term) >= typos.MIN_TERM and term.isalpha()],
            typos.SUGGESTIONS,
        )
        offered = typos.corrections(query.terms, similar)
        if not offered:
            return result
        corrected = self._search(session, replace(query, q=offered[0]), today)
        seen = {hit.plugin.id for hit in result.hits}
        added = [hit for hit in corrected.hits if hit.plugin.id not in seen]
        hits = (result.hits + added)[: query.per_page]
        total = result.total + corrected.total - (len(corrected.hits) - len(added))
        return replace(
            result,
            hits=hits,
            total=total,
            total_is_estimate=result.total_is_estimate or corrected.total_is_estimate,
            did_you_mean=tuple(offered),
            corrected_q=offered[0] if corrected.hits else None,
        )

    def _count(self, session: Session, query: SearchQuery) -> tuple[int, bool]:
        """Every match up to :data:`COUNT_LIMIT`, and whether there are more."""
        counted = self._visible_matches(session, query)
        if counted is not None:
            return (COUNT_LIMIT, True) if counted > COUNT_LIMIT else (counted, False)
        few = query.granted is not None
        stmt = select(Plugin.id).where(*self._filters(query, permission=few))
        if query.permission is not None and not few:
            # Joined, not EXISTS: the planner may then start from the (smaller) versions that
            # grant it, where testing every plugin in turn would read up to 20 for each match.
            stmt = stmt.join(PluginVersion, self._latest_grants(query.permission))
        stmt = self._narrowed(stmt, query)
        if self._surely_more(session, query, stmt, COUNT_LIMIT):
            return COUNT_LIMIT, True
        capped = stmt.limit(COUNT_LIMIT + 1).subquery("capped")
        count = session.scalar(select(func.count()).select_from(capped)) or 0
        return (COUNT_LIMIT, True) if count > COUNT_LIMIT else (count, False)

    def _hits(self, session: Session, rows: list[Row], terms: tuple[str, ...]) -> list[SearchHit]:
        """The plugins of a page, each with its score for ``terms`` (scored here where the
        order did not need it)."""
        if not rows:
            return []
        ids = [plugin_id for plugin_id, _ in rows]
        unscored = bool(terms) and any(score is None for _, score in rows)
        plugins, scores = self._load(session, ids, terms if unscored else ())
        return [
            SearchHit(plugins[plugin_id], scores.get(plugin_id) if score is None else score)
            for plugin_id, score in rows
        ]

    def _load(
        self, session: Session, ids: list[int], terms: tuple[str, ...]
    ) -> tuple[dict[int, Plugin], dict[int, float]]:
        """The plugins of ``ids``, and the scores for ``terms`` of those that match (none
        without terms)."""
        plugins = {p.id: p for p in session.scalars(select(Plugin).where(Plugin.id.in_(ids)))}
        return plugins, self._scores(session, terms, ids) if terms else {}

    def _search_for_host(
        self, session: Session, query: SearchQuery, host: str, host_version: str, today: date
    ) -> SearchResult:
        """PEP 440 ranges cannot be evaluated in SQL, and compatibility depends on the version
        asked about, so nothing can be precomputed: walk the matches of every other filter in
        order, a window at a time, keeping those whose versions ``choose_version`` accepts (as
        ``/resolve`` would) until the page is full. The total is then extrapolated from the
        share kept so far, unless the walk reached the end."""
        unfiltered = replace(query, host=None, host_version=None)
        wanted = query.offset + query.per_page
        kept: list[Row] = []
        checked = 0
        batch = max(self._HOST_BATCH, 2 * wanted)
        while True:
            window = self._window(session, unfiltered, checked, batch, today=today)
            compatible = self._compatible(session, [row[0] for row in window], host, host_version)
            kept += [row for row in window if row[0] in compatible]
            checked += len(window)
            if len(window) < batch:
                total, estimate = len(kept), False
                break
            if len(kept) > wanted:
                matches, _ = self._count(session, unfiltered)
                total = max(len(kept), round(len(kept) / checked * matches))
                estimate = True
                break
            batch = min(2 * batch, 2000)
        page = kept[query.offset : wanted]
        return SearchResult(self._hits(session, page, query.terms), total, query, estimate)

    def _compatible(
        self, session: Session, ids: list[int], host: str, host_version: str
    ) -> set[int]:
        versions: dict[int, list[tuple[str, str | None, bool]]] = {}
        if ids:
            rows = session.execute(
                select(
                    PluginVersion.plugin_id,
                    PluginVersion.version,
                    PluginVersion.manifest[("engines", host)].as_string(),
                    PluginVersion.yanked_reason.is_not(None),
                ).where(
                    PluginVersion.plugin_id.in_(ids),
                    PluginVersion.status == "published",
                    PluginVersion.signer_revoked_at.is_(None),  # withdrawn: not offered
                )
            )
            for plugin_id, version, engine_range, yanked in rows:
                versions.setdefault(plugin_id, []).append((version, engine_range, bool(yanked)))
        return {
            plugin_id
            for plugin_id, published in versions.items()
            if _accepts(tuple(sorted(published)), host, host_version)
        }

    def categories(self, session: Session) -> list[CategoryCount]:
        self._prepare(session)
        return _by_count(self._category_counts(session))

    def _category_counts(self, session: Session) -> Counter[str]:
        """How many visible plugins are in each category. Grouped by the stored list: a few
        hundred distinct lists, however many plugins, then split here."""
        text = self._json_text(Plugin.categories)
        counts: Counter[str] = Counter()
        for stored, n in session.execute(
            select(text, func.count()).where(_visible()).group_by(text)
        ):
            for name in json.loads(stored) or ():
                counts[str(name)] += int(n)
        return counts

    def facets(self, session: Session, query: SearchQuery) -> Facets:
        """Each facet over the matches of ``query`` without its own filter (what choosing
        another value would leave), the first :data:`FACET_ROWS` of them. Lists are grouped by
        their stored text first: a few hundred distinct lists among thousands of plugins."""
        self._prepare(session)
        capped = False

        def lists(column: Any, without: SearchQuery) -> Counter[str]:
            nonlocal capped
            text = self._json_text(column).label("list")
            matches = self._matching(without, text).limit(FACET_ROWS + 1).subquery("matches")
            counts: Counter[str] = Counter()
            rows = session.execute(
                select(matches.c.list, func.count()).group_by(matches.c.list)
            ).all()
            if sum(int(n) for _, n in rows) > FACET_ROWS:
                capped = True
            for stored, n in rows:
                for value in json.loads(stored) if stored else ():
                    counts[str(value)] += int(n)
            return counts

        uncategorised = replace(query, category=None)
        if not (query.terms or query.tag or query.permission or query.host):  # every plugin
            categories = self._category_counts(session)  # exact, as /categories has them
        else:
            categories = lists(Plugin.categories, uncategorised)
        tags = lists(Plugin.tags, replace(query, tag=None))
        # Every permission in one pass over the matches' latest versions.
        unpermitted = replace(query, permission=None)
        matches = (
            self._matching(unpermitted, Plugin.id, Plugin.latest_version)
            .limit(FACET_ROWS + 1)
            .subquery("matches")
        )
        grants = [
            func.coalesce(func.sum(case((self._grant_predicate(name), 1), else_=0)), 0)
            for name in PERMISSION_NAMES
        ]
        matched = func.count(matches.c.id)
        row = session.execute(
            select(matched, *grants)
            .select_from(matches)
            .outerjoin(
                PluginVersion,
                and_(
                    PluginVersion.plugin_id == matches.c.id,
                    PluginVersion.version == matches.c.latest_version,
                ),
            )
        ).one()
        capped = capped or int(row[0]) > FACET_ROWS
        permissions = Counter(
            {name: int(n) for name, n in zip(PERMISSION_NAMES, row[1:], strict=True)}
        )
        return Facets(
            categories=_by_count(categories),
            tags=_by_count(tags, FACET_TAGS),
            permissions=_by_count(permissions),
            capped=capped,
        )
