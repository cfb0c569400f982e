"""What the marketplace pages show beyond the API's answers: a namespace's visible plugins,
a week of downloads for a few plugins, downloads per day, and the caller's own review."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugport.registry.models import DailyStat, Namespace, Plugin, Review
from plugport.registry.search.query import TRENDING_DAYS

__all__ = ["daily_downloads", "plugins_in_namespace", "review_by", "weekly_downloads"]


def plugins_in_namespace(session: Session, namespace: Namespace) -> list[Plugin]:
    """Its plugins that anyone may see (published, listed, not suspended), by name."""
    return list(
        session.scalars(
            select(Plugin)
            .where(
                Plugin.namespace_id == namespace.id,
                Plugin.listed,
                ~Plugin.suspended,
                Plugin.latest_version.is_not(None),
            )
            .order_by(Plugin.name)
        )
    )


def weekly_downloads(session: Session, plugin_ids: list[int], *, today: date) -> dict[int, int]:
    """Downloads in the trending window (the last :data:`TRENDING_DAYS` days) per plugin."""
    if not plugin_ids:
        return {}
    since = today - timedelta(days=TRENDING_DAYS - 1)
    rows = session.execute(
        select(DailyStat.plugin_id, func.sum(DailyStat.downloads))
        .where(DailyStat.plugin_id.in_(plugin_ids), DailyStat.day >= since, DailyStat.day <= today)
        .group_by(DailyStat.plugin_id)
    )
    return {int(plugin_id): int(total or 0) for plugin_id, total in rows}


def daily_downloads(
    session: Session, plugin: Plugin, *, days: int, today: date
) -> list[tuple[date, int]]:
    """Downloads of every version per day, oldest first, every day present (0 when none)."""
    since = today - timedelta(days=days - 1)
    counted = dict(
        session.execute(
            select(DailyStat.day, func.sum(DailyStat.downloads))
            .where(DailyStat.plugin_id == plugin.id, DailyStat.day >= since, DailyStat.day <= today)
            .group_by(DailyStat.day)
        ).all()
    )
    return [
        (day, int(counted.get(day) or 0))
        for day in (since + timedelta(days=n) for n in range(days))
    ]


def review_by(session: Session, plugin: Plugin, identity: str) -> Review | None:
    return session.get(Review, (plugin.id, identity))
