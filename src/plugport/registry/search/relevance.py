"""Relevance order: an exact name first, deprecated plugins last, in between by tier and
text score, ties by name. A dialect's text index scores every match before anything else can
be applied (bm25, ts_rank_cd: a microsecond or two each), so a page is found from the best-scored
few hundred matches, kept between searches (:mod:`.rankings`), and more only when filters leave
too few of them; a page is certain only up to the last candidate no match beyond could
outrank. Short words in many names need no scores to order the named plugins: those come by
downloads, off that index."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, and_, case, literal_column, select
from sqlalchemy.orm import Session

from plugport.registry.models import Plugin
from plugport.registry.search.once import once
from plugport.registry.search.query import COUNT_LIMIT, SearchQuery
from plugport.registry.search.rankings import Ranking, Rankings

__all__ = ["RelevanceSearch", "Row"]

Row = tuple[int, float | None]
"""A plugin's id and its score (None without words)."""


def _visible(rows: Sequence[Any], depth: int) -> int | None:
    """How many matches are visible, from the flags of the ``depth`` best (``rows``): all of
    them when fewer matched; past :data:`COUNT_LIMIT` when that many of the best are (as many
    as a total is ever counted to); else not known. Flags rather than a count over every
    match in the same statement: that window materialised every match before the sort, a
    quarter of scoring a common word ('chat', 5,000 matches at 100,000 plugins: 27 -> 20 ms)."""
    shown = sum(1 for row in rows if row[2])
    if len(rows) < depth:
        return shown
    return shown if shown > COUNT_LIMIT else None


class RelevanceSearch:
    """The relevance order of :class:`~.base.SqlSearchBackend`, which supplies the filters
    and a dialect the scoring pieces."""

    # --- what the backend supplies ---------------------------------------------------------

    def _filters(self, query: SearchQuery, *, permission: bool = True) -> list[ColumnElement[bool]]:
        """Visibility and the filters of ``query``, as ``WHERE`` clauses over ``plugins``."""
        raise NotImplementedError

    def _matching(self, query: SearchQuery, *columns: Any) -> Select[Any]:
        """``columns`` of every visible plugin matching the words and filters of ``query``."""
        raise NotImplementedError

    # --- what a dialect supplies -----------------------------------------------------------

    def _scores(self, session: Session, terms: tuple[str, ...], ids: list[int]) -> dict[int, float]:
        """The scores of those of ``ids`` that match ``terms``; higher is more relevant."""
        raise NotImplementedError

    # Relevance: a dialect either scores a plugin from its own row (``_row_score``), or its
    # text index scores every match before anything can be joined: then the best-scored
    # matches are kept between searches (``_rankings``) and ranked from there (``_top``).

    def _row_score(self, terms: tuple[str, ...]) -> ColumnElement[float] | None:
        """A plugin's score as an expression over its ``plugins`` row; None if the dialect
        has none (then relevance works from candidates, below)."""
        return None

    def _scored(self, terms: tuple[str, ...]) -> Select[Any]:
        """``(plugin_id, score)`` of every match of ``terms``, visible or not."""
        raise NotImplementedError

    def _tier(self, terms: tuple[str, ...]) -> ColumnElement[int]:
        """0 for a match (a row of ``_scored``) of every term in the name, else 1."""
        raise NotImplementedError

    def _candidates(self, ids: Sequence[int], scores: Sequence[float]) -> Subquery:
        """``(plugin_id, score, tier)`` of these, all of tier 0, as a subquery."""
        raise NotImplementedError

    def _rankings(self) -> tuple[Rankings, int]:
        """The dialect's kept rankings and how deep each goes."""
        raise NotImplementedError

    def _counts_while_scoring(self) -> bool:
        """Whether ``_scored``'s rows are ``plugins`` rows, so that scoring every match can
        count the visible ones too (see :meth:`_visible_matches`)."""
        return False

    def _named(self, terms: tuple[str, ...]) -> ColumnElement[bool]:
        """Whether a ``plugins`` row's name matches every term (then its text does too)."""
        raise NotImplementedError

    def _named_count(self, session: Session, terms: tuple[str, ...], limit: int) -> int:
        """How many plugins' names match every term, visible or not, counting up to
        ``limit``."""
        raise NotImplementedError

    def _named_known(self, session: Session, terms: tuple[str, ...], limit: int) -> bool | None:
        """Whether ``limit`` plugins' names or more match every term, when that is known
        without counting them: True, surely that many; False, surely fewer; None, not known
        (then they are counted)."""
        return None

    # --- the order -------------------------------------------------------------------------

    def _relevance_window(
        self, session: Session, query: SearchQuery, offset: int, limit: int
    ) -> list[Row]:
        """An exact name first, then deprecated plugins after the others, each by score, or
        for word sets in many names by tier, the named ones by downloads (see
        :meth:`_popular_first`), ties by name. Where a plugin's score is an expression over
        its own row, the matches are filtered first and only those that pass are scored.
        Where the text index scores every match before anything else can be applied (FTS5),
        only the best few hundred are joined to ``plugins`` and filtered, and more only when
        filters leave too few."""
        score = self._row_score(query.terms)
        if score is not None:
            ordered = self._matching(query, Plugin.id, score).order_by(
                case((Plugin.name == query.exact_name, 0), else_=1),
                case((Plugin.deprecated_reason.is_(None), 0), else_=1),
                score.desc(),
                Plugin.name,
            )
            rows = session.execute(ordered.offset(offset).limit(limit))
            return [(plugin_id, float(value)) for plugin_id, value in rows]
        exact: list[Row] = []
        named = None
        if "." in query.exact_name:  # every plugin name has one: no query needed without
            named = session.scalar(
                select(Plugin.id).where(Plugin.name == query.exact_name, *self._filters(query))
            )
        if named is not None:
            named_score = self._scores(session, query.terms, [named]).get(named)
            exact = [(named, named_score)] if named_score is not None else []
        wanted = offset + limit - len(exact)
        if self._popular_first(session, query.terms):
            popular = self._popular(session, query, named, wanted)
            if popular is not None:  # unscored: the page's hits are scored when shown
                return (exact + popular)[offset : offset + limit]
            ranked = self._ranked(session, query, None, named, wanted, popular=True)
            assert ranked is not None  # noqa: S101 - without a limit every match is certain
            return (exact + ranked)[offset : offset + limit]
        first = max(self._CANDIDATES, 2 * wanted)
        for candidates in (first, self._MORE_CANDIDATES if first < self._MORE_CANDIDATES else None):
            ranked = self._ranked(session, query, candidates, named, wanted)
            if ranked is not None:
                return (exact + ranked)[offset : offset + limit]
        ranked = self._ranked(session, query, None, named, wanted)
        assert ranked is not None  # noqa: S101 - without a limit every match is certain
        return (exact + ranked)[offset : offset + limit]

    _CANDIDATES = 200
    _MORE_CANDIDATES = 2000
    _TIERED_FROM = 500
    """Word sets found in the names of this many plugins or more rank in two tiers: the
    plugins whose name matches every word, most downloaded first, then the others by score
    (see :meth:`_popular_first`)."""

    def _popular_first(self, session: Session, terms: tuple[str, ...]) -> bool:
        """Whether the plugins named by ``terms`` rank by downloads rather than by score.

        A word set in the names of hundreds of plugins is the name of a kind of plugin
        ('slack', 'calendar', or 'da' as a word is being typed): every one of them carries
        it where it weighs most, and what tells their text scores apart is how short their
        names and descriptions are, or, for a prefix, which word it happened to start. What
        people searching for it are after is the plugin of that kind that others use, as
        marketplaces rank it. So such word sets rank in two tiers: the named plugins most
        downloaded first, ties by name, which an index on downloads serves a page at a time,
        stopping at the page; then the other matches by score. Finding the best text scores
        instead would mean scoring every named plugin (bm25, ts_rank_cd: 10-20 ms for a
        word in a thousand names at 100,000 plugins), on the first search for the word."""
        # Asked again for each window of a search that filters by host: counted once.
        return once(session, ("popular_first", terms), lambda: self._named_many(session, terms))

    def _named_many(self, session: Session, terms: tuple[str, ...]) -> bool:
        limit = self._TIERED_FROM
        known = self._named_known(session, terms, limit)
        return known if known is not None else self._named_count(session, terms, limit) >= limit

    def _popular(
        self, session: Session, query: SearchQuery, named: int | None, wanted: int
    ) -> list[Row] | None:
        """The first ``wanted`` visible, non-deprecated matches of ``query`` (but ``named``)
        whose name matches every word, most downloaded first, ties by name, unscored; None
        when there are fewer (then the page reaches into the matches ranked by score)."""
        stmt = (
            select(Plugin.id)
            .where(
                *self._filters(query),
                Plugin.deprecated_reason.is_(None),
                self._named(query.terms),
            )
            .order_by(Plugin.downloads.desc(), Plugin.name)
            .limit(wanted)
        )
        if named is not None:
            stmt = stmt.where(Plugin.id != named)
        ids = session.scalars(stmt).all()
        return [(plugin_id, None) for plugin_id in ids] if len(ids) == wanted else None

    def _top(
        self, session: Session, terms: tuple[str, ...], limit: int | None
    ) -> tuple[Subquery | None, float | None]:
        """``(plugin_id, score, tier)`` of the ``limit`` best matches of ``terms`` (all of
        them for None), visible or not, all of tier 0, and the best score a match that is not
        among them may have, or None when every match is; no subquery when nothing matches.
        Scoring a match costs a microsecond or two, so the best ``depth`` of them are kept
        between searches (:mod:`.rankings`)."""
        rankings, depth = self._rankings()

        def compute() -> Ranking:
            scored = self._scored(terms)
            score = scored.selected_columns.score
            counting = self._counts_while_scoring()
            if counting:  # whether each row kept is visible
                scored = scored.add_columns(and_(*self._filters(SearchQuery())).label("shown"))
            rows = session.execute(scored.order_by(score.desc()).limit(depth)).all()
            return Ranking(
                array("q", [row[0] for row in rows]),
                array("d", [row[1] for row in rows]),
                _visible(rows, depth) if counting else None,
            )

        ranking = rankings.best(session, terms, compute)
        if limit is None or limit > depth:
            return self._every(terms, tiered=False), None
        kept = len(ranking.ids)
        if not kept:
            return None, None
        if limit >= kept and kept < depth:  # every match
            return self._candidates(ranking.ids, ranking.scores), None
        floor = ranking.scores[min(limit, kept) - 1]  # a match not kept scores at most this
        return self._candidates(ranking.ids[:limit], ranking.scores[:limit]), floor

    def _visible_matches(self, session: Session, query: SearchQuery) -> int | None:
        """How many visible plugins match ``query`` when that is known without counting them,
        else None (count them): here, when only its words narrow it and the kept ranking of
        those words, still current, counted them. A dialect may know more."""
        if not self._counts_while_scoring() or not query.terms:
            return None
        if (query.category, query.tag, query.permission) != (None, None, None):
            return None
        rankings, _ = self._rankings()
        _, ranking = rankings.get(session, query.terms)
        return ranking.visible if ranking is not None else None

    def _every(self, terms: tuple[str, ...], *, tiered: bool) -> Subquery:
        """``(plugin_id, score, tier)`` of every match of ``terms``, visible or not: tier 0
        for those whose name matches every term if ``tiered``, else for all."""
        tier = self._tier(terms) if tiered else literal_column("0")
        return self._scored(terms).add_columns(tier.label("tier")).subquery("top")

    def _ranked(
        self,
        session: Session,
        query: SearchQuery,
        limit: int | None,
        named: int | None,
        wanted: int,
        *,
        popular: bool = False,
    ) -> list[Row] | None:
        """The visible matches (but ``named``) among the ``limit`` best ones, in relevance
        order, up to the last one whose place is certain; None when fewer than ``wanted`` are
        certain. ``popular``: every match (``limit`` None), the named ones by downloads (see
        :meth:`_popular_first`)."""
        if popular:
            top, floor = self._every(query.terms, tiered=True), None
        else:
            found, floor = self._top(session, query.terms, limit)
            if found is None:
                return []
            top = found
        deprecated = case((Plugin.deprecated_reason.is_(None), 0), else_=1)
        within = (
            case((top.c.tier == 0, Plugin.downloads), else_=top.c.score) if popular else top.c.score
        )
        stmt = (
            select(top.c.plugin_id, top.c.score, top.c.tier, deprecated)
            .join(Plugin, Plugin.id == top.c.plugin_id)
            .where(*self._filters(query))
            .order_by(deprecated, top.c.tier, within.desc(), Plugin.name)
        )
        if named is not None:
            stmt = stmt.where(Plugin.id != named)
        rows = session.execute(stmt).all()
        if floor is None:  # every match was a candidate
            return [(row[0], float(row[1])) for row in rows]
        # A match beyond the candidates scores at best the floor (and may be named before a
        # candidate with the same score), and a deprecated candidate may still be outranked by
        # a non-deprecated match beyond: only the non-deprecated above the floor are certain.
        certain: list[Row] = []
        for plugin_id, score, _, is_deprecated in rows:
            if is_deprecated or score <= floor:
                break
            certain.append((plugin_id, float(score)))
        return certain if len(certain) >= wanted else None
