"""Ratings and reviews (one per identity per plugin, editable) and usage statistics that hosts
report (installs, uninstalls) next to the downloads the registry counts itself."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugport.errors import InvalidInputError, NotFoundError
from plugport.registry.models import DailyStat, Plugin, Review, utcnow
from plugport.registry.services import catalog

__all__ = ["delete_review", "record_usage", "reviews_of", "stats_of", "upsert_review"]


def _rerate(session: Session, plugin: Plugin) -> None:
    count, total = session.execute(
        select(func.count(), func.coalesce(func.sum(Review.stars), 0)).where(
            Review.plugin_id == plugin.id
        )
    ).one()
    plugin.rating_count, plugin.rating_sum = int(count), int(total)


def upsert_review(session: Session, plugin: Plugin, identity: str, stars: int, text: str) -> Review:
    if not 1 <= stars <= 5:
        raise InvalidInputError(f"stars: 1 to 5, not {stars}")
    review = session.get(Review, (plugin.id, identity))
    if review is None:
        review = Review(plugin_id=plugin.id, identity=identity, stars=stars, text=text)
        session.add(review)
    else:
        review.stars, review.text, review.updated_at = stars, text, utcnow()
    session.flush()
    _rerate(session, plugin)
    return review


def delete_review(session: Session, plugin: Plugin, identity: str) -> None:
    review = session.get(Review, (plugin.id, identity))
    if review is None:
        raise NotFoundError("review", f"{identity} on {plugin.name}")
    session.delete(review)
    session.flush()
    _rerate(session, plugin)


def reviews_of(session: Session, plugin: Plugin, *, page: int, per_page: int) -> list[Review]:
    query = (
        select(Review)
        .where(Review.plugin_id == plugin.id)
        .order_by(Review.updated_at.desc(), Review.identity)
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return list(session.scalars(query))


def record_usage(
    session: Session, plugin: Plugin, version: str, event: str, *, today: date
) -> None:
    """A host reports that it installed or uninstalled ``version``."""
    if event not in ("install", "uninstall"):
        raise InvalidInputError(f"event: 'install' or 'uninstall', not {event!r}")
    catalog.get_version(session, plugin, version)
    catalog.bump_daily(session, plugin, version, today, f"{event}s")


def stats_of(session: Session, plugin: Plugin, *, days: int, today: date) -> dict[str, Any]:
    if not 1 <= days <= 366:
        raise InvalidInputError(f"days: 1 to 366, not {days}")
    since = today - timedelta(days=days - 1)
    rows = session.scalars(
        select(DailyStat)
        .where(DailyStat.plugin_id == plugin.id, DailyStat.day >= since)
        .order_by(DailyStat.day, DailyStat.version)
    ).all()
    daily: list[dict[str, Any]] = [
        {
            "day": r.day.isoformat(),
            "version": r.version,
            "downloads": r.downloads,
            "installs": r.installs,
            "uninstalls": r.uninstalls,
        }
        for r in rows
    ]
    totals = {k: sum(int(d[k]) for d in daily) for k in ("downloads", "installs", "uninstalls")}
    return {
        "name": plugin.name,
        "since": since.isoformat(),
        "days": days,
        "totals": totals,
        "daily": daily,
    }
